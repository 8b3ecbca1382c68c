"""Review drafts and alerts as a task on the existing taskiq broker (backend.ingest.jobs).

Ingest only enqueues (:meth:`ReviewReplyService.on_reviews_indexed`): one message per written
page of one company's reviews, carrying the company id and the review documents' ids — no
customer text. The task re-reads each review under the company's tenant session, so a job
that waited in the queue acts on the review as it is now (gone, or answered by the owner
meanwhile: skipped), then drafts and alerts. Redelivery is harmless: a review gets one draft
(``insert_draft``) and one alert (``claim_alert``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog
from taskiq import AsyncBroker, Context, TaskiqDepends

from backend.ingest.jobs import send_task
from backend.replies.service import EnqueueReviewDrafts, ReviewReplyService
from backend.tenancy.company_id import CompanyId, validate_company_id

_log = structlog.get_logger("helpdesk.replies")

REVIEW_DRAFTS_TASK_NAME = "helpdesk.review_drafts"


async def run_review_drafts(
    company_id: str, document_ids: list[str], context: Context = TaskiqDepends()
) -> int:
    """The task: draft (and alert) the reviews; returns how many drafts it wrote."""
    service: ReviewReplyService = context.state.review_reply_service
    # Where the job enters: its company id is checked once, here.
    drafted = await service.draft_reviews(
        validate_company_id(company_id), [uuid.UUID(value) for value in document_ids]
    )
    _log.info(
        "review drafts finished",
        company_id=company_id,
        reviews=len(document_ids),
        drafted=drafted,
    )
    return drafted


def register_review_drafts_task(broker: AsyncBroker) -> EnqueueReviewDrafts:
    """Register the task on ``broker`` (API and worker alike) and return its enqueuer."""
    task = broker.register_task(run_review_drafts, task_name=REVIEW_DRAFTS_TASK_NAME)

    async def enqueue(company_id: CompanyId, document_ids: Sequence[uuid.UUID]) -> None:
        await send_task(task, company_id, [str(value) for value in document_ids])

    return enqueue
