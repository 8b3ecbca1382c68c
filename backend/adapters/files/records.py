"""Knowledge-base or ticket exports as CSV, TSV, JSON or JSONL files → SourceDocuments.

For any helpdesk without an adapter: one record per document, fields found by candidate
column names (overridable). Records whose status says they were removed (deleted, archived,
spam) become :class:`Deletion` values; malformed records become :class:`FetchFailure` values.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.adapters.base import (
    Checkpoint,
    Clock,
    Deletion,
    DocumentKind,
    DocumentPart,
    FetchFailure,
    Page,
    PartFormat,
    PartLabel,
    SourceDocument,
)
from backend.adapters.files.tabular import (
    ExportFormat,
    ExportRecord,
    NoCredentials,
    TimeZoneName,
    load_export,
    parse_export_date,
    pick,
)
from backend.adapters.http import RateLimiter

SOURCE = "file_export"

_KINDS: dict[str, DocumentKind] = {
    "ticket": DocumentKind.TICKET,
    "case": DocumentKind.TICKET,
    "incident": DocumentKind.TICKET,
    "request": DocumentKind.TICKET,
    "article": DocumentKind.ARTICLE,
    "kb": DocumentKind.ARTICLE,
    "knowledge": DocumentKind.ARTICLE,
    "faq": DocumentKind.ARTICLE,
    "solution": DocumentKind.ARTICLE,
    "conversation": DocumentKind.CONVERSATION,
    "chat": DocumentKind.CONVERSATION,
    "review": DocumentKind.REVIEW,
}
_BODY_LABEL: dict[DocumentKind, PartLabel] = {
    DocumentKind.TICKET: "description",
    DocumentKind.ARTICLE: "section",
    DocumentKind.CONVERSATION: "reply",
    DocumentKind.REVIEW: "review",
}
REMOVED_STATUSES = frozenset({"deleted", "archived", "spam", "removed", "trashed"})


def _names(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


class RecordColumns(BaseModel):
    """Candidate field names per document field, first match wins."""

    model_config = ConfigDict(frozen=True)

    id: list[str] = ["id", "external_id", "article_id", "ticket_id", "number", "sys_id", "key"]
    title: list[str] = ["title", "subject", "name", "short_description", "question", "제목"]
    body: list[str] = [
        "body", "content", "text", "description", "answer", "html", "markdown", "본문", "내용",
    ]  # fmt: skip
    url: list[str] = ["url", "html_url", "link", "permalink"]
    kind: list[str] = ["kind", "type", "doc_type", "document_type"]
    status: list[str] = ["status", "state"]
    updated_at: list[str] = ["updated_at", "updated", "modified", "last_modified", "sys_updated_on"]
    created_at: list[str] = ["created_at", "created", "sys_created_on"]
    language: list[str] = ["language", "lang", "locale"]
    tags: list[str] = ["tags", "labels", "label_names", "keywords"]
    requester: list[str] = ["requester", "requester_email", "customer_email", "email"]
    conversation: list[str] = ["conversation", "messages", "thread", "comments"]
    """A JSON list of ``{author_role, text, internal, created_at}`` after the first message."""

    @field_validator("*", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: str | list[str]) -> list[str]:
        return _names(value)


class RecordExportSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    format: ExportFormat | None = None
    columns: RecordColumns = Field(default_factory=RecordColumns)
    default_kind: DocumentKind = DocumentKind.ARTICLE
    """Kind of records without a kind field."""
    body_format: PartFormat = "text"
    date_formats: list[str] = Field(default_factory=list)
    timezone: TimeZoneName = "UTC"
    encoding: str = "utf-8-sig"
    delimiter: str | None = None
    batch_size: int = Field(default=500, ge=1, le=10_000)


FileCredentials = NoCredentials


class RecordExportCheckpoint(Checkpoint):
    """Records done of which version (size and mtime) of the export file.

    A finished checkpoint (``has_more=False``) passed back to ``fetch_page`` is the next round:
    on an unchanged file (same ``fingerprint``) it has nothing to do; a replaced file is read
    again from the top, so records ingest already has come back as unchanged re-emissions
    (skipped by content hash) and records marked deleted/archived come back as deletions.
    """

    fingerprint: str | None = None
    offset: int = Field(default=0, ge=0)


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(tag).strip() for tag in value if str(tag).strip()]
    # CSV exports flatten lists as "a, b" or "a|b" or "a;b".
    text = str(value)
    for separator in "|;":
        text = text.replace(separator, ",")
    return [tag.strip() for tag in text.split(",") if tag.strip()]


class RecordExportAdapter:
    """Documents from one CSV/TSV/JSON/JSONL export, ``batch_size`` records per page."""

    source: ClassVar[str] = SOURCE
    checkpoint_type: type[RecordExportCheckpoint] = RecordExportCheckpoint

    def __init__(
        self,
        *,
        settings: RecordExportSettings,
        credentials: FileCredentials | None = None,
        client: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials or FileCredentials()
        self.zone = ZoneInfo(settings.timezone)

    def initial_checkpoint(self, since: datetime | None = None) -> RecordExportCheckpoint:
        return RecordExportCheckpoint()

    async def fetch_page(self, checkpoint: RecordExportCheckpoint) -> Page[RecordExportCheckpoint]:
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
            checkpoint = RecordExportCheckpoint(fingerprint=loaded.fingerprint)
        elif not checkpoint.has_more:
            return Page(checkpoint=checkpoint)

        end = checkpoint.offset + self.settings.batch_size
        file_name = Path(self.settings.path).name
        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures: list[FetchFailure] = []
        for item in loaded.items[checkpoint.offset : end]:
            if isinstance(item, FetchFailure):
                failures.append(item)
                continue
            try:
                result = self._convert(item, file_name)
            except (ValueError, ValidationError) as exc:
                result = FetchFailure(
                    where=f"{file_name}:{item.number}", message=str(exc), retryable=False
                )
            if isinstance(result, SourceDocument):
                documents.append(result)
            elif isinstance(result, Deletion):
                deletions.append(result)
            else:
                failures.append(result)
        advanced = checkpoint.model_copy(
            update={"offset": min(end, len(loaded.items)), "has_more": end < len(loaded.items)}
        )
        return Page(
            documents=documents, deletions=deletions, failures=failures, checkpoint=advanced
        )

    def _thread(self, raw: Any, formats: list[str], zone: ZoneInfo) -> list[DocumentPart]:
        """Replies and notes of a ticket export; private notes stay flagged internal."""
        if isinstance(raw, str) and raw.strip().startswith("["):
            try:
                raw = orjson.loads(raw)  # CSV exports carry the thread as a JSON cell
            except orjson.JSONDecodeError:
                return []
        if not isinstance(raw, list):
            return []
        parts = []
        for message in raw:
            if not isinstance(message, dict) or not str(message.get("text") or "").strip():
                continue
            internal = bool(message.get("internal") or message.get("private"))
            role = str(message.get("author_role") or "agent")
            parts.append(
                DocumentPart(
                    text=str(message["text"]).strip(),
                    format=self.settings.body_format,
                    label="note" if internal else "reply",
                    author_role=role if role in {"customer", "agent", "system"} else "agent",
                    internal=internal,
                    created_at=parse_export_date(
                        message.get("created_at"), formats=formats, zone=zone
                    ),
                )
            )
        return parts

    def _convert(
        self, record: ExportRecord, file_name: str
    ) -> SourceDocument | Deletion | FetchFailure:
        columns = self.settings.columns
        fields = record.fields
        where = f"{file_name}:{record.number}"

        def value(candidates: list[str]) -> Any:
            return pick(fields, candidates)[1]

        record_id = str(value(columns.id) or "").strip()
        if not record_id:
            return FetchFailure(where=where, message="record has no id", retryable=False)
        raw_kind = str(value(columns.kind) or "").strip().lower()
        kind = _KINDS.get(raw_kind) if raw_kind else self.settings.default_kind
        if kind is None:
            return FetchFailure(where=where, message=f"unknown kind {raw_kind!r}", retryable=False)
        external_id = f"{kind.value}:{record_id}"
        status = str(value(columns.status) or "").strip().lower() or None
        if status in REMOVED_STATUSES:
            return Deletion(source=SOURCE, external_id=external_id, reason=status)
        title = str(value(columns.title) or "").strip()
        body = str(value(columns.body) or "").strip()
        if not title and not body:
            return FetchFailure(
                where=where, message="record has neither title nor body", retryable=False
            )
        formats, zone = self.settings.date_formats, self.zone
        parts = (
            [DocumentPart(text=body, format=self.settings.body_format, label=_BODY_LABEL[kind])]
            if body
            else []
        )
        parts.extend(self._thread(value(columns.conversation), formats, zone))
        requester = value(columns.requester)
        return SourceDocument(
            source=SOURCE,
            external_id=external_id,
            kind=kind,
            title=title or f"{kind.value.capitalize()} {record_id}",
            parts=parts,
            url=str(value(columns.url) or "").strip() or None,
            status=status,
            language=str(value(columns.language) or "").strip() or None,
            tags=_tags(value(columns.tags)),
            requester=str(requester).strip().lower() if requester else None,
            created_at=parse_export_date(value(columns.created_at), formats=formats, zone=zone),
            updated_at=parse_export_date(value(columns.updated_at), formats=formats, zone=zone),
            metadata={"file": file_name, "row": record.number},
            raw={"record": fields, "row": record.number, "file": file_name},
        )
