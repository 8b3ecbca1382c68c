"""The taskiq broker a ``helpdesk worker`` process consumes (``backend.ingest.worker:broker``).

On start it opens the whole stack once (Postgres, vectors, embeddings, object store) and the
sync scheduler; every job then runs through the same services the API would use (syncs,
webhook drains, review drafts).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from taskiq import TaskiqEvents, TaskiqState

from backend.config import Settings
from backend.ingest.jobs import SYNC_TASK_NAME, build_broker, run_sync_job
from backend.observability.logging import configure_logging
from backend.replies.jobs import REVIEW_DRAFTS_TASK_NAME, run_review_drafts
from backend.stack import open_stack
from backend.webhooks.jobs import DRAIN_TASK_NAME, run_webhook_drain

settings = Settings()
broker = build_broker(settings.redis_url, settings.redis_cluster_nodes)
broker.register_task(run_sync_job, task_name=SYNC_TASK_NAME)
broker.register_task(run_webhook_drain, task_name=DRAIN_TASK_NAME)
broker.register_task(run_review_drafts, task_name=REVIEW_DRAFTS_TASK_NAME)
_resources = AsyncExitStack()


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_worker_stack(state: TaskiqState) -> None:
    configure_logging(settings.log_level, json=settings.log_json)
    app_state = await _resources.enter_async_context(open_stack(settings, run_scheduler=True))
    state.sync_service = app_state.sync
    # open_stack built its own broker; this worker consumes ``broker`` (webhook drains and
    # review drafts too).
    state.webhook_service = app_state.webhooks
    state.review_reply_service = app_state.replies


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def close_worker_stack(_state: TaskiqState) -> None:
    await _resources.aclose()
