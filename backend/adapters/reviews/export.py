"""Review exports (CSV, TSV, JSON, JSONL) from platforms without an API → SourceDocuments.

Naver, Kakao and similar Korean platforms offer no review API to businesses; owners download
or scrape exports whose columns differ per platform and per tool. Columns are matched by a
list of candidate names per field (overridable), ratings may be missing or on a 1-10 scale and
are normalized to 1-5 with the original kept, and a malformed row becomes a
:class:`FetchFailure` value naming the file and row while the rest of the export still syncs.

The public exports of the big platforms are recognised by their own column names:

- Trustpilot's business export (CSV): ``Review Id``, ``Review Created (UTC)``/``Review Date``/
  ``Review Time``, ``Review Title``, ``Review Content``, ``Review Stars``/``Stars``,
  ``Consumer Name``, ``Reply Text``/``Reply Content``, ``Reply Date``, ``Review Language``.
- Google Business Profile (Google Takeout ``reviews.json``): the API's review objects,
  ``reviewId``, ``reviewer.displayName``, ``starRating`` (``ONE``..``FIVE``), ``comment``,
  ``createTime``, ``updateTime``, ``reviewReply.comment``, ``reviewReply.updateTime``; nested
  objects are flattened to dotted column names.
- Naver and Kakao (CSV/JSON): Korean headers such as ``작성자``/``닉네임``, ``리뷰내용``/
  ``후기``, ``별점``/``평점``, ``작성일``/``방문일``, ``사장님 답글``/``사장님 댓글``,
  ``답글 작성일``.

Anything else is mapped with ``columns`` (``helpdesk ingest reviews --map title=Headline``).
A row whose platform is not given is labelled by the export it came from when its columns
say so (Trustpilot, Google), else by the connector's ``platform`` setting.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.adapters.base import (
    Checkpoint,
    Clock,
    DocumentKind,
    DocumentPart,
    FetchFailure,
    Page,
    SourceDocument,
)
from backend.adapters.files.tabular import (
    ExportFormat,
    ExportRecord,
    ExportSnapshot,
    NoCredentials,
    TimeZoneName,
    load_export,
    parse_export_date,
    pick,
)
from backend.adapters.http import RateLimiter
from backend.adapters.reviews.ratings import GOOGLE_STAR_RATINGS, normalize_rating, parse_rating

SOURCE = "review_export"

_PLATFORM_RE = re.compile(r"[^a-z0-9]+")


def _names(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


class ReviewColumns(BaseModel):
    """Candidate column names per field, first match wins; give one name to pin a column."""

    model_config = ConfigDict(frozen=True)

    review_id: list[str] = [
        "review_id", "reviewId", "id", "review_no", "리뷰id", "리뷰번호", "번호",
    ]  # fmt: skip
    author: list[str] = [
        "author", "reviewer", "nickname", "user", "user_name", "writer",
        "Consumer Name", "consumer_display_name", "reviewer.displayName", "reviewer_name",
        "작성자", "닉네임", "작성자명", "고객명",
    ]  # fmt: skip
    rating: list[str] = [
        "rating", "score", "stars", "star", "grade", "Review Stars", "starRating",
        "평점", "별점", "점수",
    ]  # fmt: skip
    text: list[str] = [
        "text", "review", "content", "comment", "body", "document", "review_text",
        "Review Content", "Review Text", "review_body",
        "내용", "리뷰", "리뷰내용", "리뷰 내용", "후기", "후기내용",
    ]  # fmt: skip
    title: list[str] = ["title", "subject", "Review Title", "headline", "제목", "리뷰제목"]
    date: list[str] = [
        "date", "created_at", "created", "review_date", "written_at", "time",
        "Review Created (UTC)", "Review Created", "Review Time", "createTime",
        "작성일", "작성일자", "작성일시", "날짜", "등록일", "등록일시", "방문일", "방문일자",
    ]  # fmt: skip
    reply: list[str] = [
        "reply", "owner_reply", "response", "owner_response", "Reply Text", "Reply Content",
        "Company Reply", "reviewReply.comment",
        "답글", "사장님답글", "사장님 답글", "사장님 댓글", "사장님댓글", "답변", "답글내용",
    ]  # fmt: skip
    reply_date: list[str] = [
        "reply_date", "replied_at", "Reply Date", "Reply Date (UTC)",
        "Company Reply Date (UTC)", "Reply Time", "reviewReply.updateTime",
        "답글작성일", "답글 작성일", "답글 등록일", "답변일",
    ]  # fmt: skip
    platform: list[str] = ["platform", "site", "channel", "플랫폼"]
    language: list[str] = ["language", "lang", "Review Language", "languageCode", "언어"]

    @field_validator("*", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: str | list[str]) -> list[str]:
        return _names(value)


class ReviewExportSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    """The export file, on a disk this worker can read."""
    format: ExportFormat | None = None
    """Inferred from the file name when not given."""
    platform: str = "export"
    """Platform of rows without a platform column: naver, kakao, ..."""
    columns: ReviewColumns = Field(default_factory=ReviewColumns)
    rating_scale: int | None = Field(default=None, ge=2, le=100)
    """Top of the rating scale; ``None`` infers it per file (10 if any rating exceeds 5)."""
    zero_means_missing: bool = True
    """Several platforms write 0 for "no rating given"."""
    date_formats: list[str] = Field(default_factory=list)
    timezone: TimeZoneName = "UTC"
    """Zone of timestamps without one; Korean platforms export local time (Asia/Seoul)."""
    language: str | None = None
    """Language of rows without a language column (e.g. "ko")."""
    encoding: str = "utf-8-sig"
    delimiter: str | None = None
    batch_size: int = Field(default=500, ge=1, le=10_000)


ReviewExportCredentials = NoCredentials


class ReviewExportCheckpoint(Checkpoint):
    """How many records of which version of the export are done.

    A finished checkpoint (``has_more=False``) passed back to ``fetch_page`` is the next round:
    on an unchanged file (same ``fingerprint``) it has nothing to do; a replaced export (new
    ``fingerprint``) is read again from the top, and the reviews ingest already has come back
    as unchanged re-emissions that it skips by content hash.
    """

    fingerprint: str | None = None
    offset: int = Field(default=0, ge=0)
    rating_scale: int | None = None


FIELD_NAMES: tuple[str, ...] = tuple(ReviewColumns.model_fields)
"""The fields ``--map FIELD=COLUMN`` may name."""


def parse_column_map(pairs: list[str]) -> dict[str, list[str]]:
    """``["title=Headline", "reply=Our answer"]`` → ``{"title": ["Headline"], ...}``.

    Raises ValueError naming the bad pair and the known fields.
    """
    mapping: dict[str, list[str]] = {}
    for pair in pairs:
        field_name, separator, column = pair.partition("=")
        field_name, column = field_name.strip(), column.strip()
        if not separator or not column or field_name not in FIELD_NAMES:
            raise ValueError(
                f"bad mapping {pair!r}: expected FIELD=COLUMN with FIELD one of "
                f"{', '.join(FIELD_NAMES)}"
            )
        mapping.setdefault(field_name, []).append(column)
    return mapping


def flatten(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects (Google Takeout's ``reviewer``, ``reviewReply``) as dotted columns."""
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# Columns only one platform's export has: how an unlabelled export is recognised.
_SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("trustpilot", frozenset({"consumername", "reviewcontent"})),
    ("trustpilot", frozenset({"consumername", "reviewtitle"})),
    ("google", frozenset({"starrating", "reviewerdisplayname"})),
    ("google", frozenset({"starrating", "reviewid"})),
)


def _column_key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name).casefold()


def detect_platform(fields: dict[str, Any]) -> str | None:
    keys = {_column_key(name) for name in fields}
    for platform, signature in _SIGNATURES:
        if signature <= keys:
            return platform
    return None


def platform_slug(value: str) -> str:
    return _PLATFORM_RE.sub("-", value.strip().lower()).strip("-") or "export"


def infer_rating_scale(records: list[ExportRecord], columns: ReviewColumns) -> int:
    """10 when any readable rating exceeds 5 (Naver's 1-10 points), else 5."""
    for record in records:
        _, raw = pick(record.fields, columns.rating)
        try:
            number = parse_rating(raw)
        except ValueError:
            continue
        if number is not None and number > 5:
            return 10
    return 5


class ReviewExportAdapter:
    """Reviews from one export file, ``batch_size`` rows per page."""

    source: ClassVar[str] = SOURCE
    checkpoint_type: type[ReviewExportCheckpoint] = ReviewExportCheckpoint

    def __init__(
        self,
        *,
        settings: ReviewExportSettings,
        credentials: ReviewExportCredentials | None = None,
        client: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials or ReviewExportCredentials()
        self.zone = ZoneInfo(settings.timezone)
        self._snapshot: ExportSnapshot | None = None

    def initial_checkpoint(self, since: datetime | None = None) -> ReviewExportCheckpoint:
        # An export is a snapshot: every row is read; ingest skips unchanged reviews.
        return ReviewExportCheckpoint()

    async def fetch_page(self, checkpoint: ReviewExportCheckpoint) -> Page[ReviewExportCheckpoint]:
        loaded = await asyncio.to_thread(
            load_export,
            Path(self.settings.path),
            declared_format=self.settings.format,
            encoding=self.settings.encoding,
            delimiter=self.settings.delimiter,
        )
        if isinstance(loaded, FetchFailure):
            return Page(failures=[loaded], checkpoint=checkpoint, blocked=True)
        if loaded.fingerprint != checkpoint.fingerprint:
            records = [item for item in loaded.items if isinstance(item, ExportRecord)]
            scale = self.settings.rating_scale or infer_rating_scale(records, self.settings.columns)
            checkpoint = ReviewExportCheckpoint(
                fingerprint=loaded.fingerprint, rating_scale=scale, offset=0
            )
        elif not checkpoint.has_more:
            return Page(checkpoint=checkpoint)

        end = checkpoint.offset + self.settings.batch_size
        documents: list[SourceDocument] = []
        failures: list[FetchFailure] = []
        scale = checkpoint.rating_scale or 5
        file_name = Path(self.settings.path).name
        for item in loaded.items[checkpoint.offset : end]:
            if isinstance(item, FetchFailure):
                failures.append(item)
                continue
            try:
                documents.append(self._document(item, scale=scale, file_name=file_name))
            except (ValueError, ValidationError) as exc:
                failures.append(
                    FetchFailure(
                        where=f"{file_name}:{item.number}", message=str(exc), retryable=False
                    )
                )
        done = end >= len(loaded.items)
        advanced = checkpoint.model_copy(
            update={"offset": min(end, len(loaded.items)), "has_more": not done}
        )
        return Page(documents=documents, failures=failures, checkpoint=advanced)

    def _document(self, record: ExportRecord, *, scale: int, file_name: str) -> SourceDocument:
        columns = self.settings.columns
        fields = flatten(record.fields)
        used: set[str] = set()

        def value(candidates: list[str]) -> Any:
            name, found = pick(fields, candidates)
            if name is not None:
                used.add(name)
            return found

        text = str(value(columns.text) or "").strip()
        title = str(value(columns.title) or "").strip()
        author = str(value(columns.author) or "").strip() or None
        raw_rating = value(columns.rating)
        raw_date = value(columns.date)
        reply = str(value(columns.reply) or "").strip()
        raw_reply_date = value(columns.reply_date)
        labelled = value(columns.platform)
        default_platform = self.settings.platform
        if default_platform == "export":
            default_platform = detect_platform(fields) or default_platform
        platform = platform_slug(str(labelled or default_platform))
        language = str(value(columns.language) or self.settings.language or "").strip() or None
        review_id = str(value(columns.review_id) or "").strip()

        original = parse_rating(GOOGLE_STAR_RATINGS.get(str(raw_rating), raw_rating))
        if raw_rating == "STAR_RATING_UNSPECIFIED":
            original = None
        if original is not None and original == 0 and self.settings.zero_means_missing:
            original = None
        rating = normalize_rating(original, scale) if original is not None else None
        if not text and not title and rating is None:
            raise ValueError("row has neither review text nor a rating")
        created = parse_export_date(raw_date, formats=self.settings.date_formats, zone=self.zone)
        replied = parse_export_date(
            raw_reply_date, formats=self.settings.date_formats, zone=self.zone
        )
        if not review_id:
            # No id column: derive a stable one from what the row says, so a re-import of
            # the same export updates rather than duplicates.
            digest = hashlib.sha256(
                "\x1f".join([author or "", str(raw_date or ""), title, text]).encode()
            ).hexdigest()
            review_id = f"sha256-{digest[:20]}"

        parts: list[DocumentPart] = []
        if text:
            parts.append(
                DocumentPart(text=text, label="review", author_role="customer", created_at=created)
            )
        if reply:
            parts.append(
                DocumentPart(
                    text=reply, label="owner_reply", author_role="owner", created_at=replied
                )
            )
        stars = f"{rating:g}-star " if rating is not None else ""
        metadata: dict[str, Any] = {
            "platform": platform,
            "file": file_name,
            "row": record.number,
            "rating_original": raw_rating if original is not None else None,
            "rating_scale": scale if original is not None else None,
            "has_text": bool(text),
            "has_reply": bool(reply),
            "extra": {key: val for key, val in fields.items() if key not in used} or None,
        }
        return SourceDocument(
            source=SOURCE,
            external_id=f"review:{platform}:{review_id}",
            kind=DocumentKind.REVIEW,
            title=title or f"{stars}{platform} review by {author or 'a customer'}",
            parts=parts,
            status="replied" if reply else "unreplied",
            language=language,
            rating=rating,
            requester=author,
            created_at=created,
            updated_at=max((t for t in (created, replied) if t is not None), default=None),
            metadata={key: val for key, val in metadata.items() if val is not None},
            raw={"record": fields, "row": record.number, "file": file_name},
        )
