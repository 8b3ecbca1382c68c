"""A folder of Markdown and HTML articles (any knowledge-base export) → SourceDocuments.

Each file is one article, identified by its path relative to the folder, so renaming a file is
a deletion plus a new article and editing it updates the same one. The checkpoint walks the
sorted paths (a cursor) and remembers each file's modification time and size: a re-run reads
only files that changed, and files that disappeared come back as :class:`Deletion` values at
the end of each round. Disk access runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from selectolax.lexbor import LexborHTMLParser

from backend.adapters.base import (
    Checkpoint,
    Clock,
    Deletion,
    DocumentKind,
    DocumentPart,
    FetchFailure,
    Page,
    SourceDocument,
)
from backend.adapters.files.records import FileCredentials
from backend.adapters.files.tabular import parse_export_date
from backend.adapters.http import RateLimiter

SOURCE = "article_folder"

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdx"})
HTML_SUFFIXES = frozenset({".html", ".htm"})

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_ATX_H1 = re.compile(r"^#[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_SETEXT_H1 = re.compile(r"^(?P<title>[^\n#>\-=][^\n]*)\r?\n=+[ \t]*$", re.MULTILINE)


class ArticleFolderSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    root: str
    """The folder; sub-folders are included, hidden files and folders are not."""
    base_url: str | None = None
    """Where the articles are published: the URL is ``base_url/<relative path>``."""
    batch_size: int = Field(default=200, ge=1, le=5_000)
    encoding: str = "utf-8"


class ArticleFolderCheckpoint(Checkpoint):
    """``cursor``: the last relative path done this round (sorted order); ``known``: the
    ``mtime_ns:size`` signature of every file already turned into a document.

    A finished checkpoint (``has_more=False``) passed back to ``fetch_page`` starts the next
    round: the folder is walked again, files whose signature is in ``known`` are skipped
    (de-duplicated, not re-emitted), changed and new files are read, and files in ``known``
    that are gone become deletions.
    """

    cursor: str | None = None
    known: dict[str, str] = Field(default_factory=dict)


def scan_folder(root: Path) -> dict[str, str]:
    """Relative POSIX path → ``mtime_ns:size`` of each article file under ``root``.

    A file whose real path leaves ``root`` (a symlink to ``/etc/passwd.md``, or into
    another company's import) is skipped: an import reads only below its own folder.
    """
    listing: dict[str, str] = {}
    real_root = Path(os.path.realpath(root))
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not Path(os.path.realpath(path)).is_relative_to(real_root):
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        suffix = path.suffix.lower()
        if suffix not in MARKDOWN_SUFFIXES and suffix not in HTML_SUFFIXES:
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # removed while listing: it is simply not there
        if path.is_file():
            listing[relative.as_posix()] = f"{stat.st_mtime_ns}:{stat.st_size}"
    return listing


def external_id_for(relative: str) -> str:
    return f"article:{relative}"


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a Markdown file; raises ValueError for unreadable front matter."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"unreadable front matter: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("front matter is not a mapping")
    return data, text[match.end() :]


def markdown_title(body: str) -> str | None:
    for pattern in (_ATX_H1, _SETEXT_H1):
        match = pattern.search(body)
        if match:
            return match.group(1).strip()
    return None


def _string_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return []


def _front_matter_time(value: Any) -> datetime | None:
    # YAML already turns unquoted dates into date/datetime objects.
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return datetime.fromisoformat(value.isoformat()).replace(tzinfo=UTC)
    return parse_export_date(value)


def read_article(
    root: Path, relative: str, settings: ArticleFolderSettings
) -> SourceDocument | Deletion | FetchFailure | None:
    """One file as a document (or a Deletion for a draft); ``None`` when it vanished."""
    path = root / relative
    if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root)):
        return FetchFailure(where=relative, message="outside the import folder", retryable=False)
    try:
        text = path.read_text(encoding=settings.encoding)
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        return FetchFailure(
            where=relative, message=f"not {settings.encoding} text: {exc.reason}", retryable=False
        )
    except OSError as exc:
        return FetchFailure(
            where=relative, message=f"cannot read the file ({type(exc).__name__})", retryable=True
        )
    external_id = external_id_for(relative)
    url = f"{settings.base_url.rstrip('/')}/{relative}" if settings.base_url else None
    try:
        if path.suffix.lower() in HTML_SUFFIXES:
            return _html_article(text, relative, external_id, url, modified)
        return _markdown_article(text, relative, external_id, url, modified)
    except (ValueError, ValidationError) as exc:
        return FetchFailure(where=relative, message=str(exc), retryable=False)


def _markdown_article(
    text: str, relative: str, external_id: str, url: str | None, modified: datetime
) -> SourceDocument | Deletion:
    front, body = split_front_matter(text)
    if front.get("draft") is True or str(front.get("status", "")).lower() == "draft":
        # An unpublished draft is not knowledge yet; if it was published before, it leaves.
        return Deletion(source=SOURCE, external_id=external_id, reason="draft")
    title = str(front.get("title") or "").strip() or markdown_title(body) or Path(relative).stem
    updated = _front_matter_time(front.get("updated") or front.get("updated_at")) or modified
    created = _front_matter_time(front.get("date") or front.get("created_at"))
    language = front.get("lang") or front.get("language")
    return SourceDocument(
        source=SOURCE,
        external_id=external_id,
        kind=DocumentKind.ARTICLE,
        title=title,
        parts=[DocumentPart(text=body.strip(), format="markdown", label="section")]
        if body.strip()
        else [],
        url=str(front.get("url") or "") or url,
        status="published",
        language=str(language) if language else None,
        tags=_string_list(front.get("tags")),
        created_at=created,
        updated_at=updated,
        metadata={"path": relative},
        raw={"path": relative, "front_matter": _jsonable(front), "text": text},
    )


def _html_article(
    text: str, relative: str, external_id: str, url: str | None, modified: datetime
) -> SourceDocument:
    tree = LexborHTMLParser(text)
    title = ""
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        if node is not None and node.text(strip=True):
            title = node.text(strip=True)
            break
    html_node = tree.css_first("html")
    language = html_node.attributes.get("lang") if html_node is not None else None
    body_node = tree.body
    body = body_node.html if body_node is not None and body_node.html else text
    return SourceDocument(
        source=SOURCE,
        external_id=external_id,
        kind=DocumentKind.ARTICLE,
        title=title or Path(relative).stem,
        parts=[DocumentPart(text=body, format="html", label="section")],
        url=url,
        status="published",
        language=language or None,
        updated_at=modified,
        metadata={"path": relative},
        raw={"path": relative, "text": text},
    )


def _jsonable(value: Any) -> Any:
    """Front matter with dates as ISO strings, so the raw payload stays JSON."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    return value


def read_articles(
    root: Path, relatives: Iterable[str], settings: ArticleFolderSettings
) -> list[tuple[str, SourceDocument | Deletion | FetchFailure | None]]:
    return [(relative, read_article(root, relative, settings)) for relative in relatives]


class ArticleFolderAdapter:
    """Markdown and HTML articles under one folder."""

    source: ClassVar[str] = SOURCE
    checkpoint_type: type[ArticleFolderCheckpoint] = ArticleFolderCheckpoint

    def __init__(
        self,
        *,
        settings: ArticleFolderSettings,
        credentials: FileCredentials | None = None,
        client: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials or FileCredentials()
        self.root = Path(settings.root)

    def initial_checkpoint(self, since: datetime | None = None) -> ArticleFolderCheckpoint:
        return ArticleFolderCheckpoint()

    async def fetch_page(
        self, checkpoint: ArticleFolderCheckpoint
    ) -> Page[ArticleFolderCheckpoint]:
        if not self.root.is_dir():
            failure = FetchFailure(where=self.root.name, message="not a folder", retryable=False)
            return Page(failures=[failure], checkpoint=checkpoint, blocked=True)
        if not checkpoint.has_more:
            # A finished round: look again from the first path; unchanged files are skipped.
            checkpoint = checkpoint.model_copy(update={"has_more": True, "cursor": None})
        listing = await asyncio.to_thread(scan_folder, self.root)
        cursor = checkpoint.cursor
        pending = sorted(path for path in listing if cursor is None or path > cursor)
        batch = pending[: self.settings.batch_size]
        known = dict(checkpoint.known)
        changed = [path for path in batch if known.get(path) != listing[path]]
        results = await asyncio.to_thread(read_articles, self.root, changed, self.settings)

        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures: list[FetchFailure] = []
        for relative, result in results:
            if isinstance(result, FetchFailure):
                failures.append(result)  # not remembered: the next round tries it again
                continue
            if result is None:
                continue  # vanished since listing; the end of the round reports it
            known[relative] = listing[relative]
            if isinstance(result, Deletion):
                deletions.append(result)
            else:
                documents.append(result)

        if len(pending) > len(batch):
            advanced = checkpoint.model_copy(update={"cursor": batch[-1], "known": known})
        else:
            # The listing is exhausted: whatever we knew that is gone now was deleted.
            for relative in sorted(set(known) - set(listing)):
                deletions.append(
                    Deletion(source=SOURCE, external_id=external_id_for(relative), reason="deleted")
                )
                del known[relative]
            advanced = checkpoint.model_copy(
                update={"cursor": None, "known": known, "has_more": False}
            )
        return Page(
            documents=documents, deletions=deletions, failures=failures, checkpoint=advanced
        )
