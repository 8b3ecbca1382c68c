"""The reply service as the process wires it (from the settings)."""

from __future__ import annotations

from datetime import timedelta

from backend.assistant.service import AssistantService, ReviewReplyWork, TaskCall
from backend.assistant.types import ReviewContext
from backend.clock import Clock
from backend.config import Settings
from backend.db.session import Database
from backend.egress import Egress
from backend.egress.transport import DEFAULT_TIMEOUT
from backend.ingest.connectors import ConnectorService
from backend.replies.outbound import MAX_BACKOFF_S, OutboundCaller, RetryRule
from backend.replies.service import EnqueueReviewDrafts, ReplyLimits, ReviewReplyService
from backend.retrieval.access import AGENT_SCOPE
from backend.secretbox import SecretBox
from backend.tenancy.company_id import CompanyId
from backend.tenancy.service import Tenant

SYSTEM_VIA = "system"
"""The ``Tenant.via`` of work the service does for a company on its own (no API key)."""


def longest_call(settings: Settings) -> timedelta:
    """The longest one outbound reply call can take: every attempt timing out, with the
    longest wait between attempts (a Retry-After up to the bound, or the backoff cap)."""
    per_attempt = (DEFAULT_TIMEOUT.read or 0.0) + (DEFAULT_TIMEOUT.connect or 0.0)
    between = max(settings.reply_max_retry_after_s, MAX_BACKOFF_S)
    return timedelta(seconds=settings.reply_max_attempts * (per_attempt + between))


def build_reply_service(
    settings: Settings,
    *,
    database: Database,
    connectors: ConnectorService,
    egress: Egress,
    secrets: SecretBox,
    clock: Clock,
    assistant: AssistantService,
    enqueue_drafts: EnqueueReviewDrafts,
) -> ReviewReplyService:
    async def draft(company_id: CompanyId, review: ReviewContext, review_ref: str) -> str:
        # The assistant's review_reply task: rating-aware, in the review's language, in the
        # company's tone, citing only public knowledge. The id was checked where the reply
        # job entered. It goes through the same call as POST /v1/review-reply, so the model
        # call is recorded as the company's interaction (its analytics count the tokens and
        # cost) — with no API key, which marks it as the service's own. The review's id as
        # its reference lets a requester's erasure find it with the review.
        tenant = Tenant(company_id=company_id, api_key_id=None, key_prefix=None, via=SYSTEM_VIA)
        call = TaskCall(
            task="review_reply",
            inputs=review.model_dump(mode="json"),
            question=review.text[:500],
            ticket_ref=review_ref,
            work=ReviewReplyWork(review, scope=AGENT_SCOPE),
        )
        return (await assistant.complete(tenant, call)).answer

    return ReviewReplyService(
        database=database,
        connectors=connectors,
        egress=egress,
        secrets=secrets,
        clock=clock,
        drafter=draft,
        enqueue_drafts=enqueue_drafts,
        caller=OutboundCaller(
            egress,
            clock,
            RetryRule(
                max_attempts=settings.reply_max_attempts,
                max_retry_after_s=settings.reply_max_retry_after_s,
                excerpt_chars=settings.reply_answer_excerpt_chars,
            ),
        ),
        limits=ReplyLimits(
            max_reply_chars=settings.reply_max_chars,
            default_alert_threshold=settings.reply_alert_rating_threshold,
            max_review_age=timedelta(days=settings.reply_max_review_age_days),
            publish_stale_after=longest_call(settings),
        ),
    )
