"""The webhook drain as a task on the existing taskiq broker (backend.ingest.jobs)."""

from __future__ import annotations

import uuid

import structlog
from redis.exceptions import RedisError
from taskiq import AsyncBroker, Context, TaskiqDepends
from taskiq.exceptions import SendTaskError

from backend.errors import StoreUnavailable
from backend.webhooks.service import EnqueueDrain, WebhookService

_log = structlog.get_logger("helpdesk.webhooks")

DRAIN_TASK_NAME = "helpdesk.webhook_drain"


async def run_webhook_drain(
    company_id: str, connector_id: str, context: Context = TaskiqDepends()
) -> int:
    """The task: re-read the connector's waiting items; returns how many were fetched."""
    service: WebhookService = context.state.webhook_service
    result = await service.drain(company_id, uuid.UUID(connector_id))
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
        try:
            await task.kiq(company_id, str(connector_id))
        except (ConnectionError, OSError, RedisError, SendTaskError) as exc:
            raise StoreUnavailable("redis", "the job queue is unavailable") from exc

    return enqueue
