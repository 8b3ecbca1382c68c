"""The reply service as the process wires it (from the settings)."""

from __future__ import annotations

from datetime import timedelta

from backend.assistant import Assistant
from backend.assistant.types import ReviewContext
from backend.clock import Clock
from backend.config import Settings
from backend.db.session import Database
from backend.egress import Egress
from backend.ingest.connectors import ConnectorService
from backend.replies.outbound import OutboundCaller, RetryRule
from backend.replies.service import ReplyLimits, ReviewReplyService
from backend.secretbox import SecretBox


def build_reply_service(
    settings: Settings,
    *,
    database: Database,
    connectors: ConnectorService,
    egress: Egress,
    secrets: SecretBox,
    clock: Clock,
    assistant: Assistant,
) -> ReviewReplyService:
    async def draft(company_id: str, review: ReviewContext) -> str:
        # The assistant's review_reply task: rating-aware, in the review's language, in the
        # company's tone, citing only public knowledge.
        return (await assistant.review_reply(company_id, review)).text

    return ReviewReplyService(
        database=database,
        connectors=connectors,
        egress=egress,
        secrets=secrets,
        clock=clock,
        drafter=draft,
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
        ),
    )
