"""Review replies with approval: drafted after ingest, approved or edited by an agent,
published to the platform; negative reviews raise an alert; ticket drafts go to the helpdesk
as private notes when the company turned that on.

Drafting is off the ingest path: the ingest hook (:meth:`ReviewReplyService.on_reviews_indexed`)
only enqueues the new reviews' ids, and a queued job (backend.replies.jobs) runs
:meth:`ReviewReplyService.draft_reviews` — one model call and maybe one alert per review — so
a slow or failing model provider or alert endpoint never slows a sync or a webhook drain.
Each automatic draft's model call is recorded as an interaction of the company (task
``review_reply``, no API key), like an agent's ``POST /v1/review-reply``, so analytics count
its tokens and cost.

States (``review_replies.state``)::

    draft ──approve──▶ approved ──publish──▶ published
      │  └──edit────▶ edited ────publish──▶ published
      └──reject (from draft, approved or edited)──▶ rejected

``publishing`` is held only while the platform call runs: a second publish meanwhile gets
409 ``publish_in_progress`` (a claim older than the longest call, left by a process that
died, is taken over), and a publish of a published reply answers the recorded result
without calling the platform again, so publishing twice never posts twice. A failed publish
returns the reply to the state it came from, with the platform's answer recorded.

Every action is appended to the audit log in the transaction that makes it (actor: the API
key or widget token that acted, ``system:ingest`` for drafts and alerts).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit

import structlog

from backend.assistant.types import ReviewContext
from backend.clock import Clock
from backend.db.models import Document, ReviewReply
from backend.db.repositories import audit_log as audit_repo
from backend.db.repositories import review_replies as reply_repo
from backend.db.session import Database
from backend.egress import Egress, EgressRefused
from backend.errors import BadRequest, Conflict, NotFound
from backend.ingest.connectors import ConnectorService
from backend.ingest.indexer import IndexedReview
from backend.language import base_language, rating_sentiment
from backend.llm.providers.review_reply import read_review
from backend.replies.outbound import OutboundCaller, PlatformAnswer
from backend.replies.platforms import (
    PlannedCall,
    PublishNotPossible,
    review_reply_call,
    ticket_note_call,
)
from backend.secretbox import SecretBox
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import TenantRows, open_rows

_log = structlog.get_logger("helpdesk.replies")

ReviewDrafter = Callable[[CompanyId, ReviewContext, str], Awaitable[str]]
"""(company id, review, the review's external id) → the reply text (the assistant's
``review_reply`` task, recorded as the company's interaction about that review)."""

EnqueueReviewDrafts = Callable[[CompanyId, Sequence[uuid.UUID]], Awaitable[None]]
"""(company id, review document ids) → queued for :meth:`ReviewReplyService.draft_reviews`;
raises :class:`~backend.errors.StoreUnavailable` when the job queue is down."""

SYSTEM_ACTOR: Final = "system:ingest"
ALERT_PLATFORM: Final = "alert_webhook"
EDITABLE: Final = frozenset({"draft", "approved", "edited"})
PUBLISHABLE: Final = frozenset({"approved", "edited"})
_MAX_TOPICS: Final = 8
_ALERT_QUOTE_CHARS: Final = 300
_STARS_SCALE: Final = Decimal(5)
_MAX_REVIEW_CHARS: Final = 4000  # as much of a review as ingest hands the hook


def _alert_associated_data(company_id: CompanyId) -> bytes:
    # Binds the sealed URL to its company and purpose: it cannot be replayed as a
    # connector secret or into another company's row.
    return b"\x00".join((b"reply-alert-webhook", company_id.encode()))


@dataclass(frozen=True, slots=True)
class ReplyLimits:
    """Bounds and defaults from the settings (backend/config.py)."""

    max_reply_chars: int
    default_alert_threshold: float
    """Stars out of 5 at or below which a review raises an alert."""
    max_review_age: timedelta
    """Older reviews (a first sync's backlog) get neither a draft nor an alert."""
    publish_stale_after: timedelta
    """The longest one publish call can take (every attempt, wait and backoff): a
    ``publishing`` claim older than this was abandoned and may be taken over."""


@dataclass(frozen=True, slots=True)
class ReplySettingsView:
    alert_webhook_host: str | None
    alert_rating_threshold: float
    ticket_notes_enabled: bool


@dataclass(frozen=True, slots=True)
class NoteResult:
    platform: str
    ticket_id: str
    answer: PlatformAnswer


def _escape_slack(text: str) -> str:
    # Slack's incoming-webhook text treats &, < and > as markup (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _topics(text: str, language: str | None) -> list[dict[str, str]]:
    """Key topics: the aspects the review names (food, delivery, staff…), each with the
    polarity of the clause that names it — the reading the reply composer does."""
    base = base_language(language) or "en"
    found: dict[str, str] = {}
    for clause in read_review(text, base):
        if clause.aspect and clause.aspect.casefold() not in found:
            polarity = {1: "positive", -1: "negative"}.get(clause.polarity, "neutral")
            found[clause.aspect.casefold()] = polarity
        if len(found) >= _MAX_TOPICS:
            break
    return [{"topic": topic, "sentiment": mood} for topic, mood in found.items()]


def _review_from_row(document: Document) -> IndexedReview | None:
    """The review as its stored row says it is now; ``None`` once the owner has replied."""
    metadata = document.metadata_ or {}
    if metadata.get("has_reply"):
        return None
    rating, scale = metadata.get("rating"), metadata.get("rating_scale")
    return IndexedReview(
        document_id=document.id,
        connector_id=document.connector_id,
        source=document.source,
        external_id=document.external_id,
        title=document.title,
        # The review's own text: without an owner reply it is the row's whole body.
        text=document.body[:_MAX_REVIEW_CHARS],
        rating=float(rating) if isinstance(rating, int | float) else None,
        rating_scale=float(scale) if isinstance(scale, int | float) and scale > 0 else 5.0,
        language=document.language,
        author=document.requester,
        url=document.url,
        created_at=document.source_created_at,
    )


def _sentiment(review: IndexedReview, topics: Sequence[dict[str, str]]) -> str:
    if review.rating is not None:
        return rating_sentiment(review.rating, review.rating_scale)
    moods = [t["sentiment"] for t in topics]
    if moods.count("negative") > moods.count("positive"):
        return "negative"
    return "positive" if moods.count("positive") > moods.count("negative") else "neutral"


class ReviewReplyService:
    def __init__(
        self,
        *,
        database: Database,
        connectors: ConnectorService,
        egress: Egress,
        secrets: SecretBox,
        clock: Clock,
        drafter: ReviewDrafter,
        enqueue_drafts: EnqueueReviewDrafts,
        caller: OutboundCaller,
        limits: ReplyLimits,
    ) -> None:
        self.database = database
        self.connectors = connectors
        self.egress = egress
        self.secrets = secrets
        self.clock = clock
        self.drafter = drafter
        self.enqueue_drafts = enqueue_drafts
        self.caller = caller
        self.limits = limits

    # ------------------------------------------------------------------ ingest hook

    async def on_reviews_indexed(
        self, company_id: CompanyId, reviews: Sequence[IndexedReview]
    ) -> None:
        """Ingest hook: queue a draft for every recent review new to the company (and an alert
        for the negative ones) — only their ids, for :meth:`draft_reviews`. Reviews older
        than ``max_review_age`` are left alone, so a first sync's years of backlog neither
        spend a model call each nor flood the alert channel. A failure to enqueue is logged,
        never allowed to fail the sync."""
        oldest = self.clock.now() - self.limits.max_review_age
        recent = [
            review.document_id
            for review in reviews
            if review.created_at is None or review.created_at >= oldest
        ]
        if not recent:
            return
        try:
            await self.enqueue_drafts(company_id, recent)
        except Exception:
            # The reviews are indexed; only their drafts are missing. A re-sync does not
            # bring them back (unchanged reviews do not reach this hook): an agent can
            # still draft with POST /v1/review-reply. See the README's review replies.
            _log.exception(
                "review drafts could not be queued", company_id=company_id, reviews=len(recent)
            )

    async def draft_reviews(self, company_id: CompanyId, document_ids: Sequence[uuid.UUID]) -> int:
        """The queued job: re-read each review under the company's session (gone, or answered
        by its owner meanwhile: skipped), draft a reply for it and alert if it is negative.
        Safe to repeat: a review that has its draft already costs no model call, and its
        alert is sent at most once (still sent if an earlier run stopped between the two).
        Returns how many drafts this run wrote; a failure is logged per review."""
        async with self.database.tenant_session(company_id) as session:
            rows = await reply_repo.get_review_documents(session, document_ids)
        drafted = 0
        for row in rows:
            review = _review_from_row(row)
            if review is None:
                continue
            try:
                reply = await self.draft_for(company_id, review)
                if reply is not None:
                    drafted += 1
                else:
                    reply = await self._unalerted_draft(company_id, review.document_id)
                if reply is not None:
                    await self.alert_if_negative(company_id, reply, review.text)
            except Exception:
                _log.exception(
                    "review reply job failed", company_id=company_id, review=review.external_id
                )
        return drafted

    async def _unalerted_draft(
        self, company_id: CompanyId, document_id: uuid.UUID
    ) -> ReviewReply | None:
        """The review's reply if it is still an untouched draft whose alert was never
        claimed: a run that stopped after drafting left it (an agent's later work, or a
        re-sync of a review someone already handled, raises nothing)."""
        async with self.database.tenant_session(company_id) as session:
            reply = await reply_repo.get_reply_for_document(session, document_id)
        if reply is None or reply.state != "draft" or reply.alerted_at is not None:
            return None
        return reply

    async def draft_for(self, company_id: CompanyId, review: IndexedReview) -> ReviewReply | None:
        """Draft a reply for a review that has none yet (``None`` when it already had one)."""
        async with self.database.tenant_session(company_id) as session:
            existing = await session.execute(
                reply_repo.exists_for_document_statement(review.document_id)
            )
            if existing.first() is not None:
                return None
        text = review.text.strip() or review.title.strip() or "-"
        context = ReviewContext(
            text=text,
            rating=review.rating,
            rating_scale=review.rating_scale,
            language=review.language,
            author=review.author,
            platform=review.source,
        )
        try:
            draft = (await self.drafter(company_id, context, review.external_id))[
                : self.limits.max_reply_chars
            ]
        except Exception:
            # No draft (the model route failed): the reply still enters the queue, empty,
            # for an agent to write, and a negative review still raises its alert.
            _log.exception(
                "review reply draft failed", company_id=company_id, review=review.external_id
            )
            draft = ""
        topics = _topics(review.text, review.language)
        values: dict[str, Any] = {
            "company_id": company_id,
            "document_id": review.document_id,
            "connector_id": review.connector_id,
            "source": review.source,
            "external_id": review.external_id,
            "review_url": review.url,
            "language": review.language,
            "rating": review.rating,
            "rating_scale": review.rating_scale,
            "sentiment": _sentiment(review, topics),
            "topics": topics,
            "draft": draft,
            "reply_text": draft,
            "state": "draft",
            "updated_by": SYSTEM_ACTOR,
        }
        async with self.database.tenant_session(company_id) as session:
            reply = await reply_repo.insert_draft(session, values)
            if reply is not None:
                await audit_repo.append_audit_entry(
                    session,
                    company_id=company_id,
                    actor=SYSTEM_ACTOR,
                    action="review_reply.drafted",
                    target=str(reply.id),
                    details={"review": review.external_id, "sentiment": values["sentiment"]},
                )
        return reply

    # ------------------------------------------------------------------ alerts

    async def alert_if_negative(
        self, company_id: CompanyId, reply: ReviewReply, review_text: str
    ) -> str | None:
        """Send the company's alert for a negative review, once per review. Returns the
        alert status written (``sent``, ``failed``, ``no_webhook``), ``None`` if not negative
        or already alerted."""
        async with open_rows(self.database, company_id) as rows:
            settings = await self.settings(rows)
        if not self._is_negative(reply, settings.alert_rating_threshold):
            return None
        url = await self._alert_url(company_id)
        async with self.database.tenant_session(company_id) as session:
            if not await reply_repo.claim_alert(session, reply.id, self.clock.now()):
                return None
            if url is None:
                await reply_repo.set_alert_status(session, reply.id, "no_webhook")
                return "no_webhook"
        answer = await self._send_alert(url, reply, review_text)
        status = "sent" if answer.ok else "failed"
        async with self.database.tenant_session(company_id) as session:
            await reply_repo.set_alert_status(session, reply.id, status)
            await audit_repo.append_audit_entry(
                session,
                company_id=company_id,
                actor=SYSTEM_ACTOR,
                action="review_reply.alerted",
                target=str(reply.id),
                details={"status": status, "http_status": answer.status},
            )
        return status

    def _is_negative(self, reply: ReviewReply, threshold: float) -> bool:
        if reply.rating is None:
            return reply.sentiment == "negative"
        scale = reply.rating_scale or _STARS_SCALE
        stars = Decimal(reply.rating) / Decimal(scale) * _STARS_SCALE
        return stars <= Decimal(str(threshold))

    async def _send_alert(self, url: str, reply: ReviewReply, review_text: str) -> PlatformAnswer:
        quote = review_text.strip().replace("\n", " ")
        if len(quote) > _ALERT_QUOTE_CHARS:
            quote = quote[:_ALERT_QUOTE_CHARS].rstrip() + "…"
        rating = (
            f"{reply.rating.normalize():f}/{reply.rating_scale.normalize():f}"
            if reply.rating is not None
            else "unrated"
        )
        lines = [
            f"Negative review ({rating}) on {reply.source}: “{quote}”"
            if quote
            else f"Negative review ({rating}) on {reply.source}",
            f"Draft reply {reply.id} is waiting for approval.",
        ]
        if reply.review_url:
            lines.append(reply.review_url)
        try:
            scope = self.egress.policy.scope(ALERT_PLATFORM, [url])
        except EgressRefused as exc:
            # Vetted when it was set; the operator's allow-list may have changed since.
            return PlatformAnswer(
                ok=False, status=None, excerpt=str(exc), answered_at=self.clock.now()
            )
        return await self.caller.send(
            scope, "POST", url, json={"text": _escape_slack("\n".join(lines))}, where="alert"
        )

    async def _send_planned(self, call: PlannedCall) -> PlatformAnswer:
        """One planned platform call (publish, ticket note) through the egress policy."""
        return await self.caller.send(
            self.egress.policy.scope(call.platform, call.base_urls),
            call.method,
            call.url,
            json=call.json,
            headers=call.headers,
            auth=call.auth,
            where=call.where,
        )

    # ------------------------------------------------------------------ settings

    async def _alert_url(self, company_id: CompanyId) -> str | None:
        async with self.database.tenant_session(company_id) as session:
            row = await reply_repo.get_settings(session)
        if row is None or row.alert_webhook_encrypted is None:
            return None
        return self.secrets.decrypt(
            row.alert_webhook_encrypted, _alert_associated_data(company_id)
        ).decode()

    async def settings(self, rows: TenantRows) -> ReplySettingsView:
        row = await reply_repo.get_settings(rows.session)
        host = None
        if row is not None and row.alert_webhook_encrypted is not None:
            url = self.secrets.decrypt(
                row.alert_webhook_encrypted, _alert_associated_data(rows.company_id)
            ).decode()
            host = urlsplit(url).hostname
        threshold = (
            float(row.alert_rating_threshold)
            if row is not None and row.alert_rating_threshold is not None
            else self.limits.default_alert_threshold
        )
        return ReplySettingsView(
            alert_webhook_host=host,
            alert_rating_threshold=threshold,
            ticket_notes_enabled=bool(row is not None and row.ticket_notes_enabled),
        )

    async def vet_alert_url(self, url: str) -> str:
        """The URL, once the egress policy allows it: https (plain http only with the test
        loopback setting), Slack's webhook host or the operator's allow-list, no user info,
        query or fragment, and a name that resolves to public addresses only. Checked again
        at every send (the name may point elsewhere by then)."""
        try:
            origin = self.egress.policy.check_base_url(ALERT_PLATFORM, url)
            literal = self.egress.policy.check_host(ALERT_PLATFORM, origin.host)
            addresses = (
                [literal]
                if literal is not None
                else await self.egress.resolver.resolve(origin.host, origin.port)
            )
            self.egress.policy.check_addresses(addresses)
        except EgressRefused as exc:
            raise BadRequest(
                f"the alert webhook URL is refused: {exc.reason}", code="alert_webhook_refused"
            ) from None
        except ValueError:  # urlsplit: a malformed authority ("https://[x")
            raise BadRequest(
                "the alert webhook URL is not a URL", code="alert_webhook_refused"
            ) from None
        return url

    async def update_settings(
        self, rows: TenantRows, changes: dict[str, Any], *, actor: str
    ) -> ReplySettingsView:
        """Change the given settings only. ``alert_webhook_url``: ``None`` removes it."""
        company_id = rows.company_id
        values: dict[str, Any] = {}
        details: dict[str, Any] = {}
        if "alert_webhook_url" in changes:
            url = changes["alert_webhook_url"]
            if url is None:
                values["alert_webhook_encrypted"] = None
                details["alert_webhook"] = "removed"
            else:
                vetted = await self.vet_alert_url(str(url))
                values["alert_webhook_encrypted"] = self.secrets.encrypt(
                    vetted.encode(), _alert_associated_data(company_id)
                )
                details["alert_webhook_host"] = urlsplit(vetted).hostname
        if "alert_rating_threshold" in changes:
            threshold = changes["alert_rating_threshold"]
            values["alert_rating_threshold"] = (
                None if threshold is None else Decimal(str(threshold))
            )
            details["alert_rating_threshold"] = threshold
        if "ticket_notes_enabled" in changes:
            values["ticket_notes_enabled"] = bool(changes["ticket_notes_enabled"])
            details["ticket_notes_enabled"] = values["ticket_notes_enabled"]
        await reply_repo.save_settings(rows.session, company_id, values)
        await audit_repo.append_audit_entry(
            rows.session,
            company_id=company_id,
            actor=actor,
            action="reply_settings.updated",
            details=details,
        )
        return await self.settings(rows)

    # ------------------------------------------------------------------ workflow

    async def list(
        self, rows: TenantRows, *, states: Sequence[str] | None, limit: int, before: Any = None
    ) -> list[ReviewReply]:
        return await reply_repo.list_replies(
            rows.session, states=states, limit=limit, created_before=before
        )

    async def get(self, rows: TenantRows, reply_id: uuid.UUID) -> ReviewReply:
        reply = await reply_repo.get_reply(rows.session, reply_id)
        if reply is None:
            raise NotFound("no such review reply", code="review_reply_not_found")
        return reply

    async def _transition(
        self,
        rows: TenantRows,
        reply_id: uuid.UUID,
        *,
        actor: str,
        action: str,
        allowed: frozenset[str],
        apply: Callable[[ReviewReply], dict[str, Any] | None],
    ) -> ReviewReply:
        """Lock the row, check its state, apply the change and audit it, in one transaction.
        ``apply`` returns the audit details, or ``None`` for a repeat that changes nothing."""
        session = rows.session
        reply = await reply_repo.get_reply(session, reply_id, for_update=True)
        if reply is None:
            raise NotFound("no such review reply", code="review_reply_not_found")
        if reply.state not in allowed:
            raise Conflict(f"a {reply.state} reply cannot be {action}", code="invalid_reply_state")
        details = apply(reply)
        if details is not None:
            reply.updated_by = actor
            reply.updated_at = self.clock.now()
            await audit_repo.append_audit_entry(
                session,
                company_id=rows.company_id,
                actor=actor,
                action=f"review_reply.{action}",
                target=str(reply.id),
                details=details,
            )
        await session.flush()
        await session.refresh(reply)
        return reply

    async def approve(self, rows: TenantRows, reply_id: uuid.UUID, *, actor: str) -> ReviewReply:
        def apply(reply: ReviewReply) -> dict[str, Any] | None:
            if reply.state != "draft":
                return None  # approving an approved or edited reply again changes nothing
            reply.state = "approved"
            reply.approved_by, reply.approved_at = actor, self.clock.now()
            return {"from": "draft"}

        return await self._transition(
            rows, reply_id, actor=actor, action="approved", allowed=EDITABLE, apply=apply
        )

    async def reject(
        self, rows: TenantRows, reply_id: uuid.UUID, *, actor: str, reason: str | None
    ) -> ReviewReply:
        def apply(reply: ReviewReply) -> dict[str, Any] | None:
            if reply.state == "rejected":
                return None
            previous, reply.state = reply.state, "rejected"
            return {"from": previous, "reason": reason}

        return await self._transition(
            rows,
            reply_id,
            actor=actor,
            action="rejected",
            allowed=EDITABLE | {"rejected"},
            apply=apply,
        )

    async def edit(
        self, rows: TenantRows, reply_id: uuid.UUID, *, actor: str, text: str
    ) -> ReviewReply:
        """An edit is the editor's approval of the new text (state ``edited``)."""
        cleaned = text.strip()
        if not cleaned:
            raise BadRequest("the reply text is empty", code="empty_reply")
        if len(cleaned) > self.limits.max_reply_chars:
            raise BadRequest(
                f"the reply is longer than {self.limits.max_reply_chars} characters",
                code="reply_too_long",
            )

        def apply(reply: ReviewReply) -> dict[str, Any] | None:
            previous = reply.state
            reply.reply_text, reply.state = cleaned, "edited"
            reply.approved_by, reply.approved_at = actor, self.clock.now()
            return {"from": previous, "chars": len(cleaned)}

        return await self._transition(
            rows, reply_id, actor=actor, action="edited", allowed=EDITABLE, apply=apply
        )

    async def publish(
        self, company_id: CompanyId, reply_id: uuid.UUID, *, actor: str
    ) -> ReviewReply:
        """Post the approved text to the platform, once."""
        async with self.database.tenant_session(company_id) as session:
            reply = await reply_repo.get_reply(session, reply_id, for_update=True)
            if reply is None:
                raise NotFound("no such review reply", code="review_reply_not_found")
            if reply.state == "published":
                return reply  # already posted: the recorded answer, no second post
            if reply.state == "publishing":
                # A claim older than the longest a publish can take was left by a process
                # that died mid-call: the platform may or may not have the reply, and only
                # publishing again (Google's PUT replaces it) can tell the agent for sure.
                if reply.updated_at >= self.clock.now() - self.limits.publish_stale_after:
                    raise Conflict("this reply is being published", code="publish_in_progress")
                reply.state = reply.state_before_publish or "approved"
            if reply.state not in PUBLISHABLE:
                raise Conflict(
                    f"a {reply.state} reply cannot be published; approve or edit it first",
                    code="reply_not_approved",
                )
            reply.state_before_publish, reply.state = reply.state, "publishing"
            reply.publish_attempts += 1
            reply.updated_by, reply.updated_at = actor, self.clock.now()
            claimed = (reply.connector_id, reply.document_id, reply.external_id, reply.reply_text)
        try:
            call = await self._reply_call(company_id, *claimed)
        except Exception:
            await self._release(company_id, reply_id)
            raise
        answer = await self._send_planned(call)
        async with self.database.tenant_session(company_id) as session:
            reply = await reply_repo.get_reply(session, reply_id, for_update=True)
            if reply is None:  # the review was deleted meanwhile
                raise NotFound("no such review reply", code="review_reply_not_found")
            reply.platform_status = answer.status
            reply.platform_answer = answer.excerpt
            reply.platform_answered_at = answer.answered_at
            reply.updated_by, reply.updated_at = actor, self.clock.now()
            if answer.ok:
                reply.state = "published"
                reply.published_by, reply.published_at = actor, answer.answered_at
            else:
                reply.state = reply.state_before_publish or "approved"
            await audit_repo.append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="review_reply.published" if answer.ok else "review_reply.publish_failed",
                target=str(reply.id),
                details={"http_status": answer.status, "platform": call.platform},
            )
            await session.flush()
            await session.refresh(reply)
        if not answer.ok:
            raise PublishFailed(answer)
        return reply

    async def _reply_call(
        self,
        company_id: CompanyId,
        connector_id: uuid.UUID | None,
        document_id: uuid.UUID,
        external_id: str,
        text: str,
    ) -> PlannedCall:
        if connector_id is None:
            raise PublishNotPossible("the review's connector is gone: nothing to publish with")
        async with open_rows(self.database, company_id) as rows:
            connector = await self.connectors.get(rows, connector_id)
            documents = await reply_repo.get_review_documents(rows.session, [document_id])
        config = self.connectors.open(connector)
        metadata = documents[0].metadata_ if documents else {}
        return review_reply_call(config, external_id=external_id, metadata=metadata, text=text)

    async def _release(self, company_id: CompanyId, reply_id: uuid.UUID) -> None:
        """Undo a publish claim when nothing was sent (the call could not even be built)."""
        async with self.database.tenant_session(company_id) as session:
            reply = await reply_repo.get_reply(session, reply_id, for_update=True)
            if reply is not None and reply.state == "publishing":
                reply.state = reply.state_before_publish or "approved"
                reply.publish_attempts -= 1

    # ------------------------------------------------------------------ ticket notes

    async def post_ticket_note(
        self,
        company_id: CompanyId,
        *,
        connector_id: uuid.UUID,
        ticket_id: str,
        text: str,
        table: str,
        actor: str,
    ) -> NoteResult:
        """Add ``text`` to a helpdesk ticket as a private note, if the company turned it on."""
        async with open_rows(self.database, company_id) as rows:
            if not (await self.settings(rows)).ticket_notes_enabled:
                raise PublishNotPossible(
                    "posting drafts as private notes is off for this company (reply settings: "
                    "ticket_notes_enabled)",
                    code="ticket_notes_disabled",
                )
            connector = await self.connectors.get(rows, connector_id)
        config = self.connectors.open(connector)
        call = ticket_note_call(config, ticket_id=ticket_id, text=text, table=table)
        answer = await self._send_planned(call)
        async with self.database.tenant_session(company_id) as session:
            await audit_repo.append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="ticket_note.posted" if answer.ok else "ticket_note.failed",
                target=call.where,
                details={"platform": call.platform, "http_status": answer.status},
            )
        if not answer.ok:
            raise PublishFailed(answer)
        return NoteResult(platform=call.platform, ticket_id=call.where, answer=answer)


class PublishFailed(Conflict):
    """The platform refused or did not answer (502: the failure is upstream)."""

    def __init__(self, answer: PlatformAnswer) -> None:
        super().__init__(
            {
                "platform_status": answer.status,
                "platform_answer": answer.excerpt,
                "retryable": answer.retryable,
            },
            code="platform_refused" if not answer.retryable else "platform_unavailable",
            status_code=502,
        )
        self.answer = answer
