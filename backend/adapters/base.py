"""The contract between platform adapters and the ingest pipeline.

An adapter turns one platform's API into :class:`SourceDocument` values, one :class:`Page` at a
time. Each page carries the next checkpoint: a small typed pydantic model that the ingest
pipeline stores (as JSON) after the page is persisted, so a killed sync resumes where it stopped.
Nothing an adapter fetches is dropped silently: documents that could not be fetched come back as
:class:`FetchFailure` values, and documents the platform deleted come back as :class:`Deletion`
values so they leave the index too.

Adapters never build their own HTTP client, rate limiter or clock; they are injected, so tests
replay the platform at the protocol level (``httpx.MockTransport``) and never really sleep.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from backend.clock import Clock, ManualClock, SystemClock


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as a tz-aware UTC datetime; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A datetime normalized to tz-aware UTC at validation time."""


class DocumentKind(StrEnum):
    TICKET = "ticket"
    CONVERSATION = "conversation"
    ARTICLE = "article"
    REVIEW = "review"


PartFormat = Literal["text", "html", "markdown"]
PartLabel = Literal[
    "subject",
    "description",
    "reply",
    "note",
    "resolution",
    "section",
    "review",
    "owner_reply",
    "attachment",
]
AuthorRole = Literal["customer", "agent", "system", "owner"]


class DocumentPart(BaseModel):
    """One piece of a document's text: a subject, a description, one reply, one note, ..."""

    model_config = ConfigDict(frozen=True)

    text: str
    format: PartFormat = "text"
    label: PartLabel
    author_role: AuthorRole | None = None
    # Private notes / work notes: internal knowledge that may inform an agent but must never be
    # quoted to a customer. Retrieval and the assistant mark content from these parts.
    internal: bool = False
    created_at: UtcDatetime | None = None
    author_name: str | None = None
    """Who wrote it, as the platform names them (a contact's or agent's display name)."""
    author_email: str | None = None
    """The sender's address where the platform gives one; kept out of chunk text (PII)."""
    author_id: str | None = None
    """The platform's user id of the author (``user_id``, ``author_id``, ``sys_created_by``)."""
    attachment_name: str | None = None
    """For ``label="attachment"``: the file name; the text is what was extracted from it."""


class SourceDocument(BaseModel):
    """A normalized document from one source, with the raw payload it was built from."""

    source: str
    """Platform name: freshdesk, servicenow, zendesk, google_business, trustpilot, ..."""
    external_id: str
    """Stable within the source, prefixed by entity type: ``ticket:123``, ``article:45``."""
    kind: DocumentKind
    title: str
    parts: list[DocumentPart]
    url: str | None = None
    status: str | None = None
    """Normalized: open, pending, resolved, closed, published, draft, ..."""
    language: str | None = None
    """Language code when the platform states one; detection happens later in ingest."""
    rating: float | None = Field(default=None, ge=1, le=5)
    """Reviews only, on a 1-5 scale; may be missing even for reviews."""
    tags: list[str] = Field(default_factory=list)
    requester: str | None = None
    """Customer email or handle, so one requester's data can be deleted (GDPR)."""
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Priority, category, custom fields: filterable facts that are not body text."""
    raw: dict[str, Any] = Field(default_factory=dict)
    """The payload as fetched; the object store keeps it so a re-index never refetches."""


class Deletion(BaseModel):
    """A document the platform no longer serves (deleted, spam, archived): remove it."""

    model_config = ConfigDict(frozen=True)

    source: str
    external_id: str
    reason: str
    """deleted, spam, archived, ..."""


class FetchFailure(BaseModel):
    """Something that could not be fetched. A value, never a silent skip."""

    model_config = ConfigDict(frozen=True)

    where: str
    """The URL or entity id (``ticket:123``) that failed."""
    message: str
    status_code: int | None = None
    retryable: bool
    """True when trying again later may succeed (5xx, 429, timeouts, transport errors)."""
    retry_after: float | None = None
    """Seconds the platform asked us to wait, when it said so and we did not wait that long."""


class Checkpoint(BaseModel):
    """Base of every adapter's cursor. Subclasses add their own typed fields.

    Checkpoints are plain pydantic models: ``model_dump_json()`` to store,
    ``Adapter.checkpoint_type.model_validate_json()`` to resume.
    """

    model_config = ConfigDict(frozen=True)

    has_more: bool = True


CheckpointT = TypeVar("CheckpointT", bound=Checkpoint)
CredentialsT = TypeVar("CredentialsT", bound=BaseModel)
SettingsT = TypeVar("SettingsT", bound=BaseModel)


class Page(BaseModel, Generic[CheckpointT]):
    """One unit of work from an adapter: what it found and where to continue.

    A failure of one entity (one ticket's conversations, one folder) is reported and skipped:
    the checkpoint moves past it. A failure that stops progress (the listing itself fails)
    comes back with ``blocked=True`` and the checkpoint unchanged: the caller should end the
    run there (recording the failures) and resume from that checkpoint later, not loop.
    """

    documents: list[SourceDocument] = Field(default_factory=list)
    deletions: list[Deletion] = Field(default_factory=list)
    failures: list[FetchFailure] = Field(default_factory=list)
    checkpoint: CheckpointT
    """Where the next ``fetch_page`` call continues; store it after persisting this page."""
    blocked: bool = False
    """True when a failure stopped progress and ``checkpoint`` is the one passed in."""
    counts: dict[str, int] = Field(default_factory=dict)
    """Counters the sync run adds up, by reason: items deliberately not indexed
    (``skipped.draft_article``, ...) and attachment outcomes (``attachments_indexed``,
    ``attachments_skipped.image``, ``attachments_skipped.too_large``, ...)."""

    @property
    def has_more(self) -> bool:
        return self.checkpoint.has_more


class FetchedItem(BaseModel):
    """What re-reading one item gave: the document, or its deletion, or why neither."""

    documents: list[SourceDocument] = Field(default_factory=list)
    deletions: list[Deletion] = Field(default_factory=list)
    failures: list[FetchFailure] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


@runtime_checkable
class ItemFetcher(Protocol):
    """An adapter that can re-read one item on demand (a webhook said it changed).

    ``item_ref`` is the adapter's own reference: the external id (``ticket:123``,
    ``incident:<sys_id>``, ``review:<id>``) or, where that is not enough to find it again,
    the platform's resource name (Google: ``accounts/a/locations/l/reviews/r``). An item the
    platform no longer serves comes back as a :class:`Deletion`; failures are values.
    """

    async def fetch_item(self, item_ref: str) -> FetchedItem: ...


def unreadable_item(failure: FetchFailure, *, source: str, external_id: str) -> FetchedItem:
    """What a failed read of one item means: its deletion when the platform no longer has it
    (404, 410), else the failure (the scheduled sync tries again)."""
    if failure.status_code in (404, 410):
        return FetchedItem(
            deletions=[Deletion(source=source, external_id=external_id, reason="deleted")]
        )
    return FetchedItem(failures=[failure])


@runtime_checkable
class Adapter(Protocol[CredentialsT, CheckpointT]):
    """What ingest needs from a platform adapter.

    Implementations are constructed as ``Adapter(settings=..., credentials=..., client=...,
    limiter=..., clock=...)`` with validated pydantic settings and credentials (secrets as
    ``SecretStr``), an injected ``httpx.AsyncClient``, a :class:`backend.adapters.http.RateLimiter`
    and a :class:`Clock`; :func:`backend.adapters.registry.build_adapter` does this from user
    input.

    ``fetch_page`` never raises for platform trouble (HTTP errors, bad payloads): it returns
    failures inside the page and a checkpoint that either moves past the failed item or, for
    failures that stop progress, stays where it was so the next sync retries.

    Incremental sync contract. Ingest stores the last checkpoint a sync produced and passes it
    to ``fetch_page`` at the next scheduled sync:

    - ``initial_checkpoint(since=None)`` starts a full backfill, or one limited to items
      updated at or after ``since``.
    - A checkpoint with ``has_more=True`` continues the round it belongs to (a resumed run).
    - A checkpoint with ``has_more=False`` (a finished round) starts the *next incremental
      round* from the watermarks saved in it (updated-since windows, export cursors, file
      signatures), including the platform's deletion feed where it has one. It never starts
      over from scratch and never answers "nothing" forever. Inclusive watermarks re-read
      the boundary: items already emitted there are either skipped by id or re-emitted
      unchanged (ingest skips unchanged content by hash); each checkpoint type says which.
    - A round with no changes on the platform yields no new or changed documents.
    - If the first page of a new round is blocked, the page carries that round's starting
      checkpoint (``has_more=True``): retrying it runs the same incremental round.
    """

    source: ClassVar[str]
    checkpoint_type: type[CheckpointT]
    credentials: CredentialsT

    def initial_checkpoint(self, since: datetime | None = None) -> CheckpointT:
        """Where a first sync starts; ``since`` limits it to items updated at or after then."""
        ...

    async def fetch_page(self, checkpoint: CheckpointT) -> Page[CheckpointT]: ...


__all__ = [
    "Adapter",
    "AuthorRole",
    "Checkpoint",
    "CheckpointT",
    "Clock",
    "CredentialsT",
    "Deletion",
    "DocumentKind",
    "DocumentPart",
    "FetchFailure",
    "FetchedItem",
    "ItemFetcher",
    "ManualClock",
    "Page",
    "PartFormat",
    "PartLabel",
    "SettingsT",
    "SourceDocument",
    "SystemClock",
    "UtcDatetime",
    "as_utc",
    "unreadable_item",
]
