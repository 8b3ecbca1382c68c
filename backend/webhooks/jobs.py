"""The webhook drain as a task on the existing taskiq broker (backend.ingest.jobs)."""

from __future__ import annotations

import uuid

import structlog
from taskiq import AsyncBroker, Context, TaskiqDepends

from backend.ingest.jobs import send_task
from backend.tenancy.company_id import validate_company_id
from backend.webhooks.service import EnqueueDrain, WebhookService

_log = structlog.get_logger("helpdesk.webhooks")

DRAIN_TASK_NAME = "helpdesk.webhook_drain"


async def run_webhook_drain(
    company_id: str, connector_id: str, context: Context = TaskiqDepends()
) -> int:
    """The task: re-read the connector's waiting items; returns how many were fetched."""
    service: WebhookService = context.state.webhook_service
    # Where the job enters: its company id is checked once, here.
    result = await service.drain(validate_company_id(company_id), uuid.UUID(connector_id))
    _log.info(
        "webhook drain finished",
        company_id=company_id,
        connector_id=connector_id,
        fetched=result.fetched,
        upserted=result.upserted,
        deleted=result.deleted,
        failed=result.failed,
    )
    return result.fetched


def register_drain_task(broker: AsyncBroker) -> EnqueueDrain:
    """Register the task on ``broker`` (API and worker alike) and return its enqueuer."""
    task = broker.register_task(run_webhook_drain, task_name=DRAIN_TASK_NAME)

    async def enqueue(company_id: str, connector_id: uuid.UUID) -> None:
        await send_task(task, company_id, str(connector_id))

    return enqueue
