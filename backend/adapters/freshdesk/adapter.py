"""Freshdesk v2 adapter: solution articles, then tickets with conversations, then deletions.

One ``fetch_page`` call reads one listing page (plus, for tickets, each ticket's conversations).
The checkpoint says which phase and where within it; see :class:`FreshdeskCheckpoint`.

Platform rules this follows (developers.freshdesk.com/api):

- Basic auth with the API key as user name and ``X`` as password.
- ``GET /api/v2/tickets`` lists only tickets from the last 30 days unless ``updated_since`` is
  given; ``updated_since`` is inclusive; ``per_page`` is at most 100 and ``page`` at most 300.
- Deleted and spam tickets never appear in the plain listing, only under ``filter=deleted`` /
  ``filter=spam``: those listings are how deletions reach the index.
- ``Link: <...>; rel="next"`` is present while more pages exist.
- ``X-Ratelimit-Remaining`` and ``429`` + ``Retry-After`` (handled in :mod:`..http`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from backend.adapters.attachments import (
    AttachmentReader,
    AttachmentResults,
    AttachmentSettings,
)
from backend.adapters.base import (
    Checkpoint,
    Clock,
    Deletion,
    FetchedItem,
    FetchFailure,
    Page,
    SourceDocument,
    unreadable_item,
)
from backend.adapters.freshdesk.documents import (
    SOURCE,
    article_attachment_refs,
    article_document,
    attachment_refs,
    parse_time,
    people_names,
    ticket_deletion,
    ticket_document,
    ticket_external_id,
)
from backend.adapters.http import RateLimiter, get_json, next_link, normalize_hostname
from backend.adapters.windowing import EdgeRow, UpdatedWindow, record_digest

# Freshdesk will not list tickets before the account existed; any date before the product
# launched (2010) means "everything" for a first full sync.
FULL_SYNC_SINCE = datetime(2000, 1, 1, tzinfo=UTC)


class FreshdeskSettings(BaseModel):
    """Non-secret connector settings."""

    model_config = ConfigDict(extra="forbid")

    domain: str = Field(description="Helpdesk host, e.g. acme.freshdesk.com (or just acme).")
    per_page: int = Field(default=100, ge=1, le=100)
    max_pages: int = Field(
        default=300, ge=1, le=300, description="Freshdesk refuses page numbers above 300."
    )
    include_articles: bool = True
    include_draft_articles: bool = False
    include_translations: bool = Field(
        default=True,
        description="Also read every language the help desk publishes (supported_languages "
        "of /api/v2/settings/helpdesk): one document per translated article.",
    )
    include_deletions: bool = True
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    view_tickets_for_attachments: bool = Field(
        default=False,
        description="The ticket listing has no attachments: read each changed ticket "
        "(GET /tickets/{id}, one more API call per ticket) to index its description's files. "
        "Conversation attachments come with the conversations either way.",
    )
    conversation_concurrency: int = Field(default=4, ge=1, le=16)
    max_attempts: int = Field(default=5, ge=1, le=10)

    @field_validator("domain")
    @classmethod
    def _valid_domain(cls, value: str) -> str:
        return normalize_hostname(value, default_suffix=".freshdesk.com")


class FreshdeskCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(min_length=1)


class FreshdeskPhase(StrEnum):
    ARTICLES = "articles"
    TICKETS = "tickets"
    DELETED = "deleted"
    SPAM = "spam"
    DONE = "done"


class CategoryRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str | None = None


class FolderRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str | None = None
    category_id: int
    category_name: str | None = None


class FreshdeskCheckpoint(Checkpoint):
    """Where a Freshdesk sync continues.

    Articles walk categories → folders → article pages (``pending_*`` are queues, the head
    in progress). Tickets use an inclusive ``updated_since`` window rolled forward page by
    page (:class:`UpdatedWindow`). Deletions read ``filter=deleted`` then ``filter=spam`` the
    same way, each in its own window, which starts at ``deletions_since`` in the first round.

    A finished checkpoint (``has_more=False``, phase ``done``) passed back to ``fetch_page``
    starts the next incremental round: articles again (the solutions API has no
    updated-since filter, so every article is listed again; those whose content digest matches
    ``article_versions`` are skipped, not re-emitted, and drafts are reported again as
    deletions), then tickets from the saved window (``tickets.since`` with
    its ``edge``: tickets already emitted at the inclusive bound are skipped when their listed
    payload is unchanged, and emitted again when it changed within that same second), then the
    deleted and spam listings from their saved windows (de-duplicated at the edge the same
    way). Edge tickets whose conversations were read within their own second (``tickets.
    unsettled``) have them read once more after that second has closed, counted as
    ``refetched.edge_second``: a note added in that second leaves the listed row unchanged.
    """

    phase: FreshdeskPhase = FreshdeskPhase.ARTICLES
    languages_listed: bool = False
    primary_language: str | None = None
    """The account's primary language: what the default solution endpoints serve."""
    languages: tuple[str, ...] = ()
    """The other languages the account publishes (``supported_languages``)."""
    article_language: int = Field(default=0, ge=0)
    """Within the folder at the head of ``pending_folders``: 0 for the default listing,
    ``n`` for ``languages[n - 1]``."""
    article_versions: dict[str, str] = Field(default_factory=dict)
    """Article key (``31``, ``31:fr``) → digest of the article as listed in the last finished
    article listing: unchanged articles are not emitted again (so their attachments are not
    downloaded every round)."""
    articles_seen: dict[str, str] = Field(default_factory=dict)
    """The same, for the article listing in progress; it replaces ``article_versions`` when
    the listing ends (so removed articles drop out)."""
    categories_listed: bool = False
    pending_categories: tuple[CategoryRef, ...] = ()
    pending_folders: tuple[FolderRef, ...] = ()
    article_page: int = Field(default=1, ge=1)
    tickets: UpdatedWindow
    deletions_since: datetime
    """Where the deleted and spam listings start before they have a window of their own."""
    deleted: UpdatedWindow | None = None
    """Rolling window of the ``filter=deleted`` listing, kept across rounds."""
    spam: UpdatedWindow | None = None
    """Rolling window of the ``filter=spam`` listing, kept across rounds."""


_PHASE_ORDER = (
    FreshdeskPhase.ARTICLES,
    FreshdeskPhase.TICKETS,
    FreshdeskPhase.DELETED,
    FreshdeskPhase.SPAM,
    FreshdeskPhase.DONE,
)

# A fetch_page call keeps stepping through steps that yield nothing (an empty category, the
# categories listing) so callers do not persist a stream of empty pages; bounded so one call
# stays short.
_MAX_EMPTY_STEPS = 20


# Article fields that change without the article changing: view and vote counters, and the
# signed (expiring) attachment links.
_VOLATILE_ARTICLE_FIELDS = ("hits", "thumbs_up", "thumbs_down", "feedback_count")


def _article_version(article: dict[str, Any]) -> str:
    """A digest of what an article says, for telling a changed article from a re-listed one."""
    stable = {k: v for k, v in article.items() if k not in _VOLATILE_ARTICLE_FIELDS}
    attachments = article.get("attachments")
    if isinstance(attachments, list):
        stable["attachments"] = [
            {k: a.get(k) for k in ("id", "name", "size", "updated_at")}
            for a in attachments
            if isinstance(a, dict)
        ]
    return record_digest(stable)


def _format_since(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FreshdeskAdapter:
    source: ClassVar[str] = SOURCE
    checkpoint_type: type[FreshdeskCheckpoint] = FreshdeskCheckpoint

    def __init__(
        self,
        *,
        settings: FreshdeskSettings,
        credentials: FreshdeskCredentials,
        client: httpx.AsyncClient,
        limiter: RateLimiter,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self._client = client
        self._limiter = limiter
        self._clock = clock
        self._base = f"https://{settings.domain}/api/v2"
        # The same client, limiter and clock as the API calls: downloads obey the same egress
        # policy and rate budget.
        self._attachments = AttachmentReader(
            settings.attachments,
            client=client,
            limiter=limiter,
            clock=clock,
            max_attempts=settings.max_attempts,
        )

    # -- protocol ---------------------------------------------------------------------------

    def initial_checkpoint(self, since: datetime | None = None) -> FreshdeskCheckpoint:
        start = since.astimezone(UTC) if since is not None else FULL_SYNC_SINCE
        # updated_since has one-second resolution; flooring keeps the bound inclusive.
        start = start.replace(microsecond=0)
        phase = (
            FreshdeskPhase.ARTICLES if self.settings.include_articles else FreshdeskPhase.TICKETS
        )
        return FreshdeskCheckpoint(
            phase=phase, tickets=UpdatedWindow(since=start), deletions_since=start
        )

    async def fetch_page(self, checkpoint: FreshdeskCheckpoint) -> Page[FreshdeskCheckpoint]:
        if not checkpoint.has_more:
            # The ingest pipeline hands back the last checkpoint of the previous sync: a
            # finished round means "continue incrementally from its watermarks".
            checkpoint = self._next_round(checkpoint)
        page = await self._step(checkpoint)
        for _ in range(_MAX_EMPTY_STEPS):
            if (
                page.documents
                or page.deletions
                or page.failures
                or page.counts
                or not page.has_more
            ):
                break
            page = await self._step(page.checkpoint)
        return page

    def _next_round(self, finished: FreshdeskCheckpoint) -> FreshdeskCheckpoint:
        """The start of the incremental round that follows the finished round ``finished``."""
        # Each saved window continues at page 1: its start is the newest updated_at listed so
        # far and its edge the rows already emitted at exactly that second (with digests).
        # The page is reset because a round can end on a later page of the same window (an empty or
        # all-edge last page), while new rows sort onto page 1.
        return self.initial_checkpoint().model_copy(
            update={
                "tickets": finished.tickets.model_copy(update={"page": 1}),
                "deletions_since": finished.deletions_since,
                "deleted": finished.deleted and finished.deleted.model_copy(update={"page": 1}),
                "spam": finished.spam and finished.spam.model_copy(update={"page": 1}),
                "article_versions": finished.article_versions,
            }
        )

    async def fetch_item(self, item_ref: str) -> FetchedItem:
        """One ticket with its conversations (``ticket:<id>``): ``GET /api/v2/tickets/<id>``.
        A 404 (deleted for good) and tickets flagged deleted or spam come back as deletions."""
        kind, _, raw_id = item_ref.partition(":")
        if kind != "ticket" or not raw_id.isdigit():
            return FetchedItem(
                failures=[FetchFailure(where=item_ref, message="not a ticket", retryable=False)]
            )
        result = await self._get(f"/tickets/{raw_id}", {"include": "requester"}, item_ref)
        if isinstance(result, FetchFailure):
            return unreadable_item(result, source=SOURCE, external_id=item_ref)
        ticket, _ = result
        if not isinstance(ticket, dict) or "id" not in ticket:
            failure = FetchFailure(where=item_ref, message="unexpected payload", retryable=False)
            return FetchedItem(failures=[failure])
        documents, deletions, failures, counts = await self._tickets_with_conversations([ticket])
        return FetchedItem(
            documents=documents, deletions=deletions, failures=failures, counts=counts
        )

    # -- steps ------------------------------------------------------------------------------

    async def _step(self, checkpoint: FreshdeskCheckpoint) -> Page[FreshdeskCheckpoint]:
        match checkpoint.phase:
            case FreshdeskPhase.ARTICLES:
                return await self._articles_step(checkpoint)
            case FreshdeskPhase.TICKETS:
                return await self._tickets_step(checkpoint)
            case FreshdeskPhase.DELETED | FreshdeskPhase.SPAM:
                return await self._deletions_step(checkpoint)
            case FreshdeskPhase.DONE:
                return Page(checkpoint=checkpoint.model_copy(update={"has_more": False}))

    def _next_phase(self, checkpoint: FreshdeskCheckpoint) -> FreshdeskCheckpoint:
        phase = _PHASE_ORDER[_PHASE_ORDER.index(checkpoint.phase) + 1]
        if phase is FreshdeskPhase.DELETED and not self.settings.include_deletions:
            phase = FreshdeskPhase.DONE
        update: dict[str, Any] = {"phase": phase, "has_more": phase is not FreshdeskPhase.DONE}
        if checkpoint.phase is FreshdeskPhase.ARTICLES:
            # The article listing is complete: what it saw is the new baseline.
            update.update(article_versions=checkpoint.articles_seen, articles_seen={})
        return checkpoint.model_copy(update=update)

    async def _get(
        self, path_or_url: str, params: dict[str, Any] | None, where: str
    ) -> tuple[Any, httpx.Response] | FetchFailure:
        url = path_or_url if path_or_url.startswith("https://") else f"{self._base}{path_or_url}"
        return await get_json(
            self._client,
            url,
            limiter=self._limiter,
            clock=self._clock,
            where=where,
            params=params,
            # Freshdesk's documented scheme: the API key as user name, any password ("X").
            auth=(self.credentials.api_key.get_secret_value(), "X"),
            max_attempts=self.settings.max_attempts,
        )

    @staticmethod
    def _blocked(
        checkpoint: FreshdeskCheckpoint, failure: FetchFailure
    ) -> Page[FreshdeskCheckpoint]:
        return Page(failures=[failure], checkpoint=checkpoint, blocked=True)

    async def _languages_step(self, checkpoint: FreshdeskCheckpoint) -> Page[FreshdeskCheckpoint]:
        """Which languages the help desk publishes: ``GET /api/v2/settings/helpdesk``."""
        result = await self._get("/settings/helpdesk", None, "settings/helpdesk")
        listed = checkpoint.model_copy(update={"languages_listed": True})
        if isinstance(result, FetchFailure):
            if result.retryable or result.status_code == 401:
                # Try again later; a wrong key would fail every other call too.
                return self._blocked(checkpoint, result)
            # The key may not read settings (it is an admin endpoint on some plans): index the
            # default language and say why the translations are missing.
            return Page(failures=[result], checkpoint=listed)
        body, _ = result
        primary = body.get("primary_language") if isinstance(body, dict) else None
        supported = body.get("supported_languages") if isinstance(body, dict) else None
        languages = tuple(
            dict.fromkeys(
                str(code)
                for code in (supported if isinstance(supported, list) else [])
                if isinstance(code, str) and code and code != primary
            )
        )
        return Page(
            checkpoint=listed.model_copy(
                update={
                    "primary_language": primary if isinstance(primary, str) else None,
                    "languages": languages,
                }
            )
        )

    async def _articles_step(self, checkpoint: FreshdeskCheckpoint) -> Page[FreshdeskCheckpoint]:
        if self.settings.include_translations and not checkpoint.languages_listed:
            return await self._languages_step(checkpoint)
        if not checkpoint.categories_listed:
            categories: list[CategoryRef] = []
            url: str | None = "/solutions/categories"
            while url is not None:
                result = await self._get(url, None, "solutions/categories")
                if isinstance(result, FetchFailure):
                    return self._blocked(checkpoint, result)
                body, response = result
                categories.extend(CategoryRef(id=c["id"], name=c.get("name")) for c in body)
                url = next_link(response)
            return Page(
                checkpoint=checkpoint.model_copy(
                    update={"categories_listed": True, "pending_categories": tuple(categories)}
                )
            )

        if checkpoint.pending_categories:
            category, *rest = checkpoint.pending_categories
            where = f"solutions/category:{category.id}"
            folders: list[FolderRef] = []
            url = f"/solutions/categories/{category.id}/folders"
            while url is not None:
                result = await self._get(url, None, where)
                if isinstance(result, FetchFailure):
                    if result.retryable:
                        return self._blocked(checkpoint, result)
                    # Gone or forbidden: report it and carry on with the other categories.
                    return Page(
                        failures=[result],
                        checkpoint=checkpoint.model_copy(
                            update={"pending_categories": tuple(rest)}
                        ),
                    )
                body, response = result
                folders.extend(
                    FolderRef(
                        id=f["id"],
                        name=f.get("name"),
                        category_id=category.id,
                        category_name=category.name,
                    )
                    for f in body
                )
                url = next_link(response)
            return Page(
                checkpoint=checkpoint.model_copy(
                    update={
                        "pending_categories": tuple(rest),
                        "pending_folders": (*checkpoint.pending_folders, *folders),
                    }
                )
            )

        if checkpoint.pending_folders:
            return await self._folder_articles_step(checkpoint)

        return Page(checkpoint=self._next_phase(checkpoint))

    async def _folder_articles_step(
        self, checkpoint: FreshdeskCheckpoint
    ) -> Page[FreshdeskCheckpoint]:
        """One page of one folder's articles, in the default language or one translation."""
        folder, *remaining = checkpoint.pending_folders
        language_index = checkpoint.article_language
        language = checkpoint.languages[language_index - 1] if language_index else None
        path = f"/solutions/folders/{folder.id}/articles" + (f"/{language}" if language else "")
        where = f"solutions/folder:{folder.id}" + (f"/{language}" if language else "")
        result = await self._get(
            path, {"per_page": self.settings.per_page, "page": checkpoint.article_page}, where
        )
        # After this folder's last page: its next language, or the next folder.
        if language_index < len(checkpoint.languages):
            next_listing = checkpoint.model_copy(
                update={"article_language": language_index + 1, "article_page": 1}
            )
        else:
            next_listing = checkpoint.model_copy(
                update={
                    "pending_folders": tuple(remaining),
                    "article_page": 1,
                    "article_language": 0,
                }
            )
        if isinstance(result, FetchFailure):
            if result.retryable:
                return self._blocked(checkpoint, result)
            if language is not None and result.status_code == 404:
                # A folder not translated into this language has nothing to list.
                return Page(checkpoint=next_listing)
            return Page(failures=[result], checkpoint=next_listing)
        body, response = result
        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures: list[FetchFailure] = []
        counts: Counter[str] = Counter()
        seen = dict(checkpoint.articles_seen)
        for article in body if isinstance(body, list) else []:
            key = f"{article['id']}:{language}" if language else str(article["id"])
            version = _article_version(article)
            seen[key] = version
            is_draft = article.get("status") == 1
            if is_draft and not self.settings.include_draft_articles:
                draft = article_document(
                    article,
                    domain=self.settings.domain,
                    folder_name=folder.name,
                    category_name=folder.category_name,
                    language=language,
                    primary_language=checkpoint.primary_language,
                )
                # A published article moved back to draft must leave the index; counted, so
                # the sync run says why it is not there.
                deletions.append(
                    Deletion(source=SOURCE, external_id=draft.external_id, reason="draft")
                )
                counts["skipped.draft_article"] += 1
                continue
            if checkpoint.article_versions.get(key) == version:
                # Unchanged since the last round (the solutions API has no updated-since
                # filter, so every article is listed again): nothing to emit or download.
                continue
            files = await self._attachments.read_all(
                article_attachment_refs(article), where=f"article:{article['id']}"
            )
            counts.update(files.counts)
            failures.extend(files.failures)
            documents.append(
                article_document(
                    article,
                    domain=self.settings.domain,
                    folder_name=folder.name,
                    category_name=folder.category_name,
                    language=language,
                    primary_language=checkpoint.primary_language,
                    attachments=files,
                )
            )
        following = (
            checkpoint.model_copy(update={"article_page": checkpoint.article_page + 1})
            if next_link(response) is not None
            else next_listing
        )
        return Page(
            documents=documents,
            deletions=deletions,
            failures=failures,
            counts=dict(counts),
            checkpoint=following.model_copy(update={"articles_seen": seen}),
        )

    async def _tickets_step(self, checkpoint: FreshdeskCheckpoint) -> Page[FreshdeskCheckpoint]:
        window = checkpoint.tickets
        params: dict[str, Any] = {
            "updated_since": _format_since(window.since),
            "order_by": "updated_at",
            "order_type": "asc",
            "per_page": self.settings.per_page,
            "page": window.page,
            # The listing omits the description unless asked for (accounts created after
            # 2018-11-30), and gives only requester_id without include=requester.
            "include": "description,requester",
        }
        result = await self._get(
            "/tickets", params, f"tickets?updated_since={params['updated_since']}"
        )
        if isinstance(result, FetchFailure):
            return self._blocked(checkpoint, result)
        tickets, response = result

        fresh: list[dict[str, Any]] = []
        seen: list[EdgeRow] = []
        failures: list[FetchFailure] = []
        read_at = self._clock.now()
        # Unsettled edge tickets are re-read once the edge second has surely closed: by our
        # clock, or because this page lists a newer second (Freshdesk's clock has moved past it,
        # and the window is about to roll beyond the edge, after which it never lists them again).
        # Known limit: when more than per_page tickets share the edge second, the newer second
        # shows up only on a later page, so unsettled ones on the first page are not re-read
        # unless our clock has already passed EDGE_SETTLE (> 100 tickets in one second, read
        # within a minute of it, and a note added within that same second).
        listed_times = (parse_time(ticket.get("updated_at")) for ticket in tickets)
        edge_closed = window.second_closed(read_at) or any(
            updated is not None and updated > window.since for updated in listed_times
        )
        rechecked = 0
        for ticket in tickets:
            updated_at = parse_time(ticket.get("updated_at"))
            if updated_at is None:
                failures.append(
                    FetchFailure(
                        where=ticket_external_id(ticket.get("id")),
                        message="ticket without a valid updated_at",
                        retryable=False,
                    )
                )
                continue
            key = str(ticket["id"])
            digest = record_digest(ticket)
            seen.append((key, updated_at, digest))
            # The inclusive bound re-lists tickets emitted at the window edge: skip those whose
            # listed payload is unchanged. updated_at has one-second resolution, so a ticket
            # changed again within that second comes back with the same updated_at and a new
            # digest: that one is emitted.
            if window.is_new(key, updated_at, digest):
                fresh.append(ticket)
            elif edge_closed and window.needs_recheck(key, updated_at, digest):
                # Freshdesk quirk: updated_at has one-second resolution and a note or reply
                # added within the second the ticket was last read leaves the listed row as it
                # was (same updated_at, same digest), so only its conversations can tell. Read
                # them once more now that the second has closed; ingest's content hash skips
                # re-embedding when nothing was added.
                fresh.append(ticket)
                rechecked += 1

        threads = await self._tickets_with_conversations(fresh)
        documents, deletions, thread_failures, counts = threads
        failures.extend(thread_failures)
        if rechecked:
            counts = {**counts, "refetched.edge_second": rechecked}
        emitted = {document.external_id for document in documents}
        read = [
            str(ticket["id"]) for ticket in fresh if ticket_external_id(ticket["id"]) in emitted
        ]

        following, more, capped = self._roll(
            window,
            seen,
            listed=len(tickets),
            more=next_link(response) is not None,
            where=f"tickets?updated_since={_format_since(window.since)}",
            read=read,
            read_at=read_at,
        )
        failures.extend(capped)
        # Once the listing ends, the window's start is the high-water mark the next round
        # resumes from (see _next_round).
        advanced = checkpoint.model_copy(update={"tickets": following})
        return Page(
            documents=documents,
            deletions=deletions,
            failures=failures,
            counts=counts,
            checkpoint=advanced if more else self._next_phase(advanced),
        )

    def _roll(
        self,
        window: UpdatedWindow,
        seen: list[EdgeRow],
        *,
        listed: int,
        more: bool,
        where: str,
        read: Collection[str] = (),
        read_at: datetime | None = None,
    ) -> tuple[UpdatedWindow, bool, list[FetchFailure]]:
        """The window after one page of an ``updated_since`` listing that listed ``seen``
        (``listed`` rows in all; ``read``: tickets whose conversations were read at
        ``read_at``), whether the listing goes on, and a failure when the page cap hid rows."""
        if not more and window.page >= self.settings.max_pages and listed >= self.settings.per_page:
            # At the page cap a full page may not advertise a next page even though more
            # rows exist: only a short page proves the listing ended.
            more = True
        following = window.advance(seen, read=read, read_at=read_at)
        if not more or following.page <= self.settings.max_pages:
            return following, more, []
        # More than max_pages x per_page rows share one updated_at second (a bulk update).
        # Freshdesk refuses page numbers above the cap, and the window cannot roll inside one
        # second, so the rest of that second is unreachable through this listing: say so, and
        # move on to the next second.
        failure = FetchFailure(
            where=where,
            message=(
                f"{self.settings.max_pages} pages of tickets updated at "
                f"{_format_since(window.since)} and maybe more; Freshdesk lists no "
                "further pages, so any others from that second were skipped"
            ),
            retryable=False,
        )
        return UpdatedWindow(since=window.since + timedelta(seconds=1)), True, [failure]

    async def _tickets_with_conversations(
        self, tickets: list[dict[str, Any]]
    ) -> tuple[list[SourceDocument], list[Deletion], list[FetchFailure], dict[str, int]]:
        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures: list[FetchFailure] = []
        counts: Counter[str] = Counter()
        to_fetch: list[dict[str, Any]] = []
        for ticket in tickets:
            # Defensive: a ticket flagged spam/deleted must leave the index, not be indexed.
            if ticket.get("deleted"):
                deletions.append(ticket_deletion(ticket, "deleted"))
            elif ticket.get("spam"):
                deletions.append(ticket_deletion(ticket, "spam"))
            else:
                to_fetch.append(ticket)

        gate = asyncio.Semaphore(self.settings.conversation_concurrency)

        async def thread_of(
            ticket: dict[str, Any],
        ) -> tuple[SourceDocument, AttachmentResults] | FetchFailure:
            async with gate:
                conversations = await self._conversations(ticket["id"])
                if isinstance(conversations, FetchFailure):
                    return conversations
                if self.settings.view_tickets_for_attachments and "attachments" not in ticket:
                    viewed = await self._get(
                        f"/tickets/{ticket['id']}", None, ticket_external_id(ticket["id"])
                    )
                    if isinstance(viewed, FetchFailure):
                        return viewed
                    ticket = {**ticket, "attachments": viewed[0].get("attachments") or []}
                files = await self._attachments.read_all(
                    attachment_refs(ticket, conversations, people_names(ticket)),
                    where=ticket_external_id(ticket["id"]),
                )
            document = ticket_document(
                ticket, conversations, domain=self.settings.domain, attachments=files
            )
            return document, files

        results = await asyncio.gather(*(thread_of(t) for t in to_fetch))
        for result in results:
            if isinstance(result, FetchFailure):
                # Indexing the ticket without its thread would store a wrong document that the
                # next sync would not revisit (its updated_at is unchanged); report it instead.
                failures.append(result)
            else:
                document, files = result
                documents.append(document)
                counts.update(files.counts)
                failures.extend(files.failures)
        return documents, deletions, failures, dict(counts)

    async def _conversations(self, ticket_id: int) -> list[dict[str, Any]] | FetchFailure:
        conversations: list[dict[str, Any]] = []
        url: str | None = f"/tickets/{ticket_id}/conversations"
        params: dict[str, Any] | None = {"per_page": self.settings.per_page}
        while url is not None:
            result = await self._get(url, params, ticket_external_id(ticket_id))
            if isinstance(result, FetchFailure):
                return result
            body, response = result
            conversations.extend(body)
            url = next_link(response)
            params = None  # the next link carries the query
        return conversations

    async def _deletions_step(self, checkpoint: FreshdeskCheckpoint) -> Page[FreshdeskCheckpoint]:
        reason = "deleted" if checkpoint.phase is FreshdeskPhase.DELETED else "spam"
        # Each filtered listing keeps its own rolling window across rounds, like the tickets:
        # one shared bound would re-list the other listing's older rows every round.
        saved = checkpoint.deleted if reason == "deleted" else checkpoint.spam
        window = saved or UpdatedWindow(since=checkpoint.deletions_since)
        params = {
            "filter": reason,
            # The 30-day default applies to filtered listings too. This relies on deleting a
            # ticket or marking it spam bumping its updated_at (not stated by the API docs),
            # so a ticket last edited before the window still shows up once deleted.
            "updated_since": _format_since(window.since),
            # Oldest first, so the window can roll forward page by page and a ticket deleted
            # while we page lands at the end instead of shifting unread rows onto read pages.
            "order_by": "updated_at",
            "order_type": "asc",
            "per_page": self.settings.per_page,
            "page": window.page,
        }
        result = await self._get("/tickets", params, f"tickets?filter={reason}")
        if isinstance(result, FetchFailure):
            return self._blocked(checkpoint, result)
        tickets, response = result
        deletions: list[Deletion] = []
        seen: list[EdgeRow] = []
        for ticket in tickets:
            updated_at = parse_time(ticket.get("updated_at"))
            key = str(ticket["id"])
            # A deletion carries no content: the id alone identifies it at the edge.
            digest = reason
            if updated_at is not None:
                seen.append((key, updated_at, digest))
            # The inclusive bound re-lists deletions emitted at the window edge (by this round
            # or the previous one): skip those. Without a timestamp: emit it, it is idempotent.
            if updated_at is None or window.is_new(key, updated_at, digest):
                deletions.append(ticket_deletion(ticket, reason))
        following, more, failures = self._roll(
            window,
            seen,
            listed=len(tickets),
            more=next_link(response) is not None,
            where=f"tickets?filter={reason}&updated_since={params['updated_since']}",
        )
        advanced = checkpoint.model_copy(update={reason: following})
        return Page(
            deletions=deletions,
            failures=failures,
            checkpoint=advanced if more else self._next_phase(advanced),
        )
