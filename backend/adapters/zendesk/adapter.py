"""Zendesk Support and Help Center → SourceDocuments.

- Tickets: the cursor-based incremental export
  ``GET /api/v2/incremental/tickets/cursor.json?start_time=…`` then ``?cursor=<after_cursor>``
  until ``end_of_stream``. Deleted tickets stay in the export with ``status: "deleted"`` and
  become :class:`Deletion` values.
- Comments of each ticket: ``GET /api/v2/tickets/{id}/comments?page[size]=100`` with cursor
  pagination (``meta.has_more``, ``links.next``).
- Articles: ``GET /api/v2/help_center/incremental/articles?start_time=…``; each page names the
  next ``start_time`` in ``next_page`` and ``end_time``. One article on demand (a webhook):
  ``GET /api/v2/help_center/articles/{id}.json``.

One :meth:`ZendeskAdapter.fetch_page` call is one export page (with the comments of its
tickets); the checkpoint after it is the export's own cursor, so a resumed sync neither repeats
nor skips tickets.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import ValidationError

from backend.adapters.attachments import AttachmentReader, AttachmentResults
from backend.adapters.base import (
    Clock,
    Deletion,
    FetchedItem,
    FetchFailure,
    Page,
    SourceDocument,
    unreadable_item,
)
from backend.adapters.http import RateLimiter, get_json
from backend.adapters.zendesk.documents import (
    SOURCE,
    Users,
    article_attachment_refs,
    article_document,
    article_external_id,
    attachment_refs,
    ticket_document,
    ticket_external_id,
    users_by_id,
)
from backend.adapters.zendesk.models import (
    ZendeskCheckpoint,
    ZendeskCredentials,
    ZendeskPhase,
    ZendeskSettings,
)

TICKET_EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
ARTICLE_EXPORT_PATH = "/api/v2/help_center/incremental/articles.json"


class ZendeskAdapter:
    """Tickets (with comments) and Help Center articles of one Zendesk account."""

    source: ClassVar[str] = SOURCE
    checkpoint_type: type[ZendeskCheckpoint] = ZendeskCheckpoint

    def __init__(
        self,
        *,
        settings: ZendeskSettings,
        credentials: ZendeskCredentials,
        client: httpx.AsyncClient,
        limiter: RateLimiter,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.client = client
        self.limiter = limiter
        self.clock = clock
        self._headers: dict[str, str] = {"Accept": "application/json"}
        self._auth = credentials.apply(self._headers)
        # Downloads use the same client, limiter and clock as the API: one egress policy.
        self._attachments = AttachmentReader(
            settings.attachments,
            client=client,
            limiter=limiter,
            clock=clock,
            max_attempts=settings.max_attempts,
        )

    # -- protocol -------------------------------------------------------------------------

    def initial_checkpoint(self, since: datetime | None = None) -> ZendeskCheckpoint:
        start = int(since.timestamp()) if since is not None else 0
        # The incremental exports refuse a start_time less than a minute in the past.
        start = max(0, min(start, int(self.clock.now().timestamp()) - 60))
        first = self._first_phase()
        return ZendeskCheckpoint(
            phase=first or "tickets",
            ticket_start_time=start,
            article_start_time=start,
            has_more=first is not None,
        )

    async def fetch_page(self, checkpoint: ZendeskCheckpoint) -> Page[ZendeskCheckpoint]:
        if not checkpoint.has_more:
            # A finished round: the next sync continues from the saved cursors.
            first = self._first_phase()
            if first is None:
                return Page(checkpoint=checkpoint)
            checkpoint = checkpoint.model_copy(update={"phase": first, "has_more": True})
        if checkpoint.phase == "tickets" and self.settings.include_tickets:
            return await self._fetch_tickets(checkpoint)
        if checkpoint.phase == "articles" and self.settings.include_articles:
            return await self._fetch_articles(checkpoint)
        return Page(checkpoint=self._after(checkpoint, checkpoint.phase))

    async def fetch_item(self, item_ref: str) -> FetchedItem:
        """One ticket with its comments (``ticket:<id>``): ``GET /api/v2/tickets/<id>.json``;
        or one Help Center article (``article:<id>``), built as the incremental article export
        builds it (:meth:`_fetch_article`). A 404 (or 410), a ticket with status ``deleted``
        and an article the sync would not index come back as deletions."""
        kind, _, raw_id = item_ref.partition(":")
        if kind == "article" and raw_id.isdigit():
            return await self._fetch_article(item_ref, raw_id)
        if kind != "ticket" or not raw_id.isdigit():
            return FetchedItem(failures=[_shape_failure(item_ref, "not a ticket or an article")])
        url = f"{self.settings.api_root}/api/v2/tickets/{raw_id}.json"
        result = await self._get(url, params=None, where=item_ref)
        if isinstance(result, FetchFailure):
            return unreadable_item(result, source=SOURCE, external_id=item_ref)
        body, _ = result
        ticket = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(ticket, dict) or "id" not in ticket:
            return FetchedItem(failures=[_shape_failure(item_ref, "no 'ticket' in response")])
        if ticket.get("status") == "deleted":
            deletion = Deletion(source=SOURCE, external_id=item_ref, reason="deleted")
            return FetchedItem(deletions=[deletion])
        thread = await self._fetch_comments(ticket["id"])
        if isinstance(thread, FetchFailure):
            return FetchedItem(failures=[thread])
        comments, users = thread
        files = await self._attachments.read_all(
            attachment_refs(comments, ticket.get("requester_id"), users),
            where=item_ref,
            headers=self._headers,
            auth=self._auth,
            credentials_host=urlsplit(self.settings.agent_root).hostname,
        )
        try:
            document = ticket_document(
                ticket,
                comments,
                agent_root=self.settings.agent_root,
                users=users,
                attachments=files,
            )
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            return FetchedItem(failures=[_shape_failure(item_ref, str(exc)), *files.failures])
        return FetchedItem(documents=[document], failures=files.failures, counts=dict(files.counts))

    async def _fetch_article(self, item_ref: str, article_id: str) -> FetchedItem:
        """``GET /api/v2/help_center/articles/<id>.json``, then the same document, files,
        translations and draft rule as the export (:meth:`_article_documents`)."""
        if not self.settings.include_articles:
            # The sync indexes none of this account's articles; a webhook adds none either.
            return FetchedItem(counts={"skipped.article_not_included": 1})
        path = f"/api/v2/help_center/articles/{article_id}.json"
        article = await self._read_article(item_ref, path)
        if isinstance(article, dict):
            source_locale = str(article.get("source_locale") or "").lower()
            if source_locale and str(article.get("locale") or "").lower() != source_locale:
                # Without a locale in the path Zendesk may answer in another translation (the
                # help center's default locale); the export's article is the source-locale one.
                path = f"/api/v2/help_center/{source_locale}/articles/{article_id}.json"
                article = await self._read_article(item_ref, path)
        if isinstance(article, FetchFailure):
            # 404/410: deleted or archived; the article's own document leaves the index.
            return unreadable_item(article, source=SOURCE, external_id=item_ref)
        return await self._article_documents(article)

    async def _read_article(self, item_ref: str, path: str) -> dict[str, Any] | FetchFailure:
        result = await self._get(self.settings.api_root + path, params=None, where=item_ref)
        if isinstance(result, FetchFailure):
            return result
        body, _ = result
        article = body.get("article") if isinstance(body, dict) else None
        if not isinstance(article, dict) or str(article.get("id")) != item_ref.partition(":")[2]:
            return _shape_failure(item_ref, "no 'article' in response")
        return article

    # -- phases ---------------------------------------------------------------------------

    def _first_phase(self) -> ZendeskPhase | None:
        if self.settings.include_tickets:
            return "tickets"
        if self.settings.include_articles:
            return "articles"
        return None

    def _after(self, checkpoint: ZendeskCheckpoint, phase: str) -> ZendeskCheckpoint:
        """The checkpoint once ``phase`` has reached the end of its stream."""
        if phase == "tickets" and self.settings.include_articles:
            return checkpoint.model_copy(update={"phase": "articles", "has_more": True})
        return checkpoint.model_copy(update={"has_more": False})

    async def _get(self, url: str, *, params: dict[str, Any] | None, where: str) -> Any:
        return await get_json(
            self.client,
            url,
            limiter=self.limiter,
            clock=self.clock,
            where=where,
            params=params,
            headers=self._headers,
            auth=self._auth,
            max_attempts=self.settings.max_attempts,
        )

    async def _fetch_tickets(self, checkpoint: ZendeskCheckpoint) -> Page[ZendeskCheckpoint]:
        params: dict[str, Any] = {"per_page": self.settings.tickets_per_page}
        if checkpoint.ticket_cursor is not None:
            params["cursor"] = checkpoint.ticket_cursor
        else:
            params["start_time"] = checkpoint.ticket_start_time
        url = self.settings.api_root + TICKET_EXPORT_PATH
        result = await self._get(url, params=params, where="tickets:incremental")
        if isinstance(result, FetchFailure):
            # Progress stops here: keep the cursor so the next attempt asks for the same page.
            return Page(failures=[result], checkpoint=checkpoint, blocked=True)
        body, _ = result
        tickets = body.get("tickets") if isinstance(body, dict) else None
        if not isinstance(tickets, list):
            return Page(
                failures=[_shape_failure("tickets:incremental", "no 'tickets' list in response")],
                checkpoint=checkpoint,
                blocked=True,
            )

        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures: list[FetchFailure] = []
        counts: Counter[str] = Counter()
        for ticket in tickets:
            if not isinstance(ticket, dict) or "id" not in ticket:
                failures.append(_shape_failure("tickets:incremental", "ticket without an id"))
                continue
            if ticket.get("status") == "deleted":
                # The cursor export keeps deleted tickets (unless exclude_deleted=true) so that
                # consumers can remove them; the comments endpoint would 404 for them anyway.
                deletions.append(
                    Deletion(
                        source=SOURCE,
                        external_id=ticket_external_id(ticket["id"]),
                        reason="deleted",
                    )
                )
                continue
            # No same-second gap here (unlike Freshdesk's conversations): a comment can only be
            # added by updating its ticket, which moves the ticket after the export's cursor
            # (not a timestamp, and rows are not de-duplicated by (id, updated_at)), and the
            # export leaves out changes from the minute before the request, so the cursor
            # never sits inside a second that is still open.
            thread = await self._fetch_comments(ticket["id"])
            if isinstance(thread, FetchFailure):
                failures.append(thread)
                continue
            comments, users = thread
            files = await self._attachments.read_all(
                attachment_refs(comments, ticket.get("requester_id"), users),
                where=ticket_external_id(ticket["id"]),
                # content_url on the account's own host needs the API credentials when the
                # account requires sign-in for attachments; any other host gets none.
                headers=self._headers,
                auth=self._auth,
                credentials_host=urlsplit(self.settings.agent_root).hostname,
            )
            counts.update(files.counts)
            failures.extend(files.failures)
            try:
                documents.append(
                    ticket_document(
                        ticket,
                        comments,
                        agent_root=self.settings.agent_root,
                        users=users,
                        attachments=files,
                    )
                )
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                failures.append(_shape_failure(ticket_external_id(ticket["id"]), str(exc)))

        # after_cursor is the resume point even at end_of_stream: the next round starts there.
        # An empty export may come back without one; then the old cursor still holds.
        cursor = body.get("after_cursor") or checkpoint.ticket_cursor
        advanced = checkpoint.model_copy(update={"ticket_cursor": cursor})
        if body.get("end_of_stream", True):
            advanced = self._after(advanced, "tickets")
        return Page(
            documents=documents,
            deletions=deletions,
            failures=failures,
            counts=dict(counts),
            checkpoint=advanced,
        )

    async def _fetch_comments(
        self, ticket_id: int | str
    ) -> tuple[list[dict[str, Any]], Users] | FetchFailure:
        """The ticket's comments, with their authors sideloaded (``include=users``)."""
        where = ticket_external_id(ticket_id)
        url: str | None = f"{self.settings.api_root}/api/v2/tickets/{ticket_id}/comments.json"
        params: dict[str, Any] | None = {
            "page[size]": self.settings.comments_page_size,
            "include": "users",
        }
        comments: list[dict[str, Any]] = []
        users: Users = {}
        while url is not None:
            result = await self._get(url, params=params, where=where)
            if isinstance(result, FetchFailure):
                return result
            body, _ = result
            page = body.get("comments") if isinstance(body, dict) else None
            if not isinstance(page, list):
                return _shape_failure(where, "no 'comments' list in response")
            comments.extend(item for item in page if isinstance(item, dict))
            users.update(users_by_id(body.get("users")))
            meta = body.get("meta") or {}
            next_url = (body.get("links") or {}).get("next")
            if not meta.get("has_more") or not next_url:
                break
            # links.next already carries page[size] and page[after]; send it as given.
            url, params = self._local(next_url), None
        return comments, users

    async def _fetch_articles(self, checkpoint: ZendeskCheckpoint) -> Page[ZendeskCheckpoint]:
        url = self.settings.api_root + ARTICLE_EXPORT_PATH
        start = checkpoint.article_start_time
        result = await self._get(url, params={"start_time": start}, where="articles:incremental")
        if isinstance(result, FetchFailure):
            return Page(failures=[result], checkpoint=checkpoint, blocked=True)
        body, _ = result
        articles = body.get("articles") if isinstance(body, dict) else None
        if not isinstance(articles, list):
            return Page(
                failures=[_shape_failure("articles:incremental", "no 'articles' list in response")],
                checkpoint=checkpoint,
                blocked=True,
            )

        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures: list[FetchFailure] = []
        counts: Counter[str] = Counter()
        for article in articles:
            if not isinstance(article, dict) or "id" not in article:
                failures.append(_shape_failure("articles:incremental", "article without an id"))
                continue
            built = await self._article_documents(article)
            documents.extend(built.documents)
            deletions.extend(built.deletions)
            failures.extend(built.failures)
            counts.update(built.counts)

        next_page = body.get("next_page")
        next_start = _start_time_of(next_page) if next_page else None
        end_time = body.get("end_time")
        new_start = next_start if next_start is not None else end_time
        if not isinstance(new_start, int):
            new_start = start
        if next_page and new_start <= start:
            # Time-based paging cannot move past a second holding more articles than one page
            # (next_page would repeat the same start_time forever). Step over that second and
            # say so rather than loop.
            failures.append(
                FetchFailure(
                    where="articles:incremental",
                    message=f"more articles changed at {start} than fit one page; skipped ahead",
                    retryable=False,
                )
            )
            new_start = start + 1
        advanced = checkpoint.model_copy(update={"article_start_time": new_start})
        if not next_page:
            advanced = self._after(advanced, "articles")
        return Page(
            documents=documents,
            deletions=deletions,
            failures=failures,
            counts=dict(counts),
            checkpoint=advanced,
        )

    async def _article_documents(self, article: dict[str, Any]) -> FetchedItem:
        """What one article becomes, for the export and for a webhook's re-read alike: its
        document with its attached files, or its deletion when it is a draft and drafts are
        not indexed; then, when translations are read, each translation's."""
        counts: Counter[str] = Counter()
        built = FetchedItem()
        if article.get("draft") and not self.settings.include_draft_articles:
            # A draft is not published knowledge; if it was published before, it leaves.
            built.deletions.append(
                Deletion(
                    source=SOURCE, external_id=article_external_id(article["id"]), reason="draft"
                )
            )
            counts["skipped.draft_article"] += 1
        else:
            files = await self._article_files(article)
            counts.update(files.counts)
            built.failures.extend(files.failures)
            try:
                built.documents.append(article_document(article, attachments=files))
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                built.failures.append(_shape_failure(article_external_id(article["id"]), str(exc)))
        if self.settings.include_translations:
            translated = await self._translations(article)
            built.documents.extend(translated.documents)
            built.deletions.extend(translated.deletions)
            built.failures.extend(translated.failures)
            counts.update(translated.counts)
        built.counts = dict(counts)
        return built

    async def _article_files(self, article: dict[str, Any]) -> AttachmentResults:
        """A published article's attached files (``/help_center/articles/{id}/attachments``).

        Not listed at all when attachments are disabled (it costs one call per article).
        """
        if not self.settings.attachments.enabled:
            return AttachmentResults()
        where = f"{article_external_id(article['id'])}/attachments"
        url = (
            f"{self.settings.api_root}/api/v2/help_center/articles/{article['id']}/attachments.json"
        )
        result = await self._get(url, params=None, where=where)
        if isinstance(result, FetchFailure):
            return AttachmentResults(failures=[result])
        body, _ = result
        items = body.get("article_attachments") if isinstance(body, dict) else None
        return await self._attachments.read_all(
            article_attachment_refs(items if isinstance(items, list) else []),
            where=article_external_id(article["id"]),
            headers=self._headers,
            auth=self._auth,
            credentials_host=urlsplit(self.settings.agent_root).hostname,
        )

    async def _translations(self, article: dict[str, Any]) -> Page[ZendeskCheckpoint]:
        """One changed article's translations other than its source locale.

        ``GET /api/v2/help_center/articles/{id}/translations.json`` lists every locale with
        its own title, body, draft flag and ``outdated`` mark (offset pages, ``next_page``).
        The result is returned as a page body (no checkpoint meaning).
        """
        where = f"{article_external_id(article['id'])}/translations"
        url: str | None = (
            f"{self.settings.api_root}/api/v2/help_center/articles/{article['id']}"
            "/translations.json"
        )
        collected = Page[ZendeskCheckpoint](checkpoint=ZendeskCheckpoint())
        source_locale = str(article.get("source_locale") or article.get("locale") or "").lower()
        while url is not None:
            result = await self._get(url, params=None, where=where)
            if isinstance(result, FetchFailure):
                collected.failures.append(result)
                return collected
            body, _ = result
            listed = body.get("translations") if isinstance(body, dict) else None
            if not isinstance(listed, list):
                collected.failures.append(_shape_failure(where, "no 'translations' list"))
                return collected
            for translation in listed:
                if not isinstance(translation, dict):
                    continue
                locale = str(translation.get("locale") or "").lower()
                if not locale or locale == source_locale:
                    continue  # the source translation is the article itself
                document = article_document(article, translation=translation)
                if translation.get("draft") and not self.settings.include_draft_articles:
                    collected.deletions.append(
                        Deletion(source=SOURCE, external_id=document.external_id, reason="draft")
                    )
                    collected.counts["skipped.draft_article"] = (
                        collected.counts.get("skipped.draft_article", 0) + 1
                    )
                    continue
                collected.documents.append(document)
            next_page = body.get("next_page")
            url = self._local(next_page) if isinstance(next_page, str) and next_page else None
        return collected

    def _local(self, url: str) -> str:
        """Point an absolute link from Zendesk at the configured API root (replay servers)."""
        if self.settings.base_url is None:
            return url
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.settings.api_root}{parts.path}{query}"


def _start_time_of(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("start_time")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def _shape_failure(where: str, message: str) -> FetchFailure:
    return FetchFailure(where=where, message=f"unexpected payload: {message}", retryable=False)
