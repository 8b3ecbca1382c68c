"""Scheduled and on-demand syncs on taskiq, a maintained asyncio job queue.

With Redis configured, jobs go through a Redis stream (acknowledged, redelivered if a worker
dies) and ``helpdesk worker`` processes run them; in the embedded default the same task runs
in-process on taskiq's in-memory broker. The job payload is only (company id, run id): the
work itself, and all tenant data, stay behind ``tenant_session``.

The scheduler is a small loop that enqueues due connectors once a minute; duplicates from
several loops are harmless because the database admits one active run per connector. Beside
it runs the reaper (:meth:`SyncScheduler.reap`, every ``sync_reaper_interval_s``): a sync
whose worker died is taken over and re-queued from its checkpoint without anyone asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from typing import Any

import structlog
from redis.exceptions import RedisError
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, Context, InMemoryBroker, TaskiqDepends
from taskiq.exceptions import SendTaskError

from backend.clock import Clock
from backend.db.models import SyncRun
from backend.db.repositories import connectors as connector_repo
from backend.db.session import Database
from backend.errors import Conflict, Forbidden, NotFound, StoreUnavailable
from backend.ingest.sync import SyncService
from backend.tenancy.company_id import validate_company_id
from backend.tenancy.service import COMPANY_SUSPENDED, list_companies

_log = structlog.get_logger("helpdesk.jobs")

SYNC_TASK_NAME = "helpdesk.sync_connector"
QUEUE_NAME = "helpdesk:jobs"
_QUEUE_DOWN = "the job queue (Redis) is unavailable; try again shortly"


async def send_task(task: AsyncTaskiqDecoratedTask[..., Any], *args: Any) -> None:
    """Queue one call of ``task``; a broker that cannot take it is :class:`StoreUnavailable`
    (503), whichever job it was: syncs, webhook drains, review drafts."""
    try:
        await task.kiq(*args)
    except (ConnectionError, OSError, RedisError, SendTaskError) as exc:
        # taskiq wraps the broker's connection error in SendTaskError.
        raise StoreUnavailable("redis", _QUEUE_DOWN) from exc


def build_broker(redis_url: str | None, cluster_nodes: str | None) -> AsyncBroker:
    if cluster_nodes:
        from taskiq_redis import RedisStreamClusterBroker

        first = cluster_nodes.split(",")[0].strip()
        return RedisStreamClusterBroker(url=f"redis://{first}", queue_name=QUEUE_NAME)
    if redis_url:
        from taskiq_redis import RedisStreamBroker

        return RedisStreamBroker(url=redis_url, queue_name=QUEUE_NAME)
    return InMemoryBroker()


async def run_sync_job(company_id: str, run_id: str, context: Context = TaskiqDepends()) -> str:
    """The task: run one queued sync. Returns the run's final status, or ``dropped`` for a
    job whose run no longer may run: cancelled (its company suspended), or gone with a
    deleted company. Jobs already on the queue cannot be picked out of it selectively, so
    they are refused here instead."""
    service: SyncService = context.state.sync_service
    try:
        # Where a job enters: its company id is checked once, here.
        run = await service.run(validate_company_id(company_id), uuid.UUID(run_id))
    except (NotFound, Conflict) as exc:
        _log.info("sync job dropped", company_id=company_id, run_id=run_id, reason=exc.code)
        return "dropped"
    except Forbidden as exc:
        if exc.code != COMPANY_SUSPENDED:
            raise
        _log.info("sync job stopped", company_id=company_id, run_id=run_id, reason=exc.code)
        return "dropped"
    if run.status == "cancelled":
        # Cancelled before this job reached it (its company suspended or deleted).
        _log.info("sync job dropped", company_id=company_id, run_id=run_id, reason="cancelled")
        return "dropped"
    return run.status


class JobQueue:
    """Enqueues syncs on the broker; also the place a worker gets its task registered."""

    def __init__(self, broker: AsyncBroker, sync_service: SyncService) -> None:
        self.broker = broker
        broker.state.sync_service = sync_service
        self._sync_task = broker.register_task(run_sync_job, task_name=SYNC_TASK_NAME)
        self.sync_service = sync_service
        self._started = False

    @property
    def in_process(self) -> bool:
        return isinstance(self.broker, InMemoryBroker)

    async def start(self) -> None:
        """Connect the broker. A Redis outage at start must not take the API down (answers
        still work without Redis): we log it and connect again on the next enqueue."""
        try:
            await self.broker.startup()
            self._started = True
        except (ConnectionError, OSError, RedisError) as exc:
            _log.warning(
                "job broker unavailable at start; will retry on enqueue", error=type(exc).__name__
            )

    async def _ensure_started(self) -> None:
        if not self._started:
            try:
                await self.broker.startup()
            except (ConnectionError, OSError, RedisError) as exc:
                raise StoreUnavailable("redis", _QUEUE_DOWN) from exc
            self._started = True

    async def finish_in_process(self) -> None:
        """Wait for the jobs running on this process's in-memory broker (with Redis, workers
        run them and there is nothing to wait for). A command that ingests and then exits
        calls it, so the review drafts its sync queued are not lost with the process."""
        if isinstance(self.broker, InMemoryBroker):
            await self.broker.wait_all()

    async def stop(self) -> None:
        if self._started:
            await self.broker.shutdown()

    async def enqueue_sync(self, run: SyncRun) -> None:
        await self._ensure_started()
        await send_task(self._sync_task, run.company_id, str(run.id))

    async def request_and_enqueue(
        self, company_id: str, connector_id: uuid.UUID, *, trigger: str
    ) -> SyncRun:
        run = await self.sync_service.request_sync(company_id, connector_id, trigger=trigger)
        try:
            await self.enqueue_sync(run)
        except Exception:
            # Nothing will ever run it: free the connector for the next attempt.
            await self.sync_service.abandon(company_id, run.id, reason="could not be queued")
            raise
        return run


class SyncScheduler:
    """Finds connectors whose schedule is due and enqueues a sync for each."""

    def __init__(self, database: Database, jobs: JobQueue, clock: Clock) -> None:
        self.database = database
        self.jobs = jobs
        self.clock = clock

    async def tick(self) -> int:
        """Enqueue every due connector once; returns how many syncs were enqueued."""
        enqueued, offset = 0, 0
        now = self.clock.now()
        while companies := await list_companies(self.database, limit=500, offset=offset):
            offset += len(companies)
            for company in companies:
                if company.status != "active":
                    continue  # suspended: nothing of it runs
                async with self.database.tenant_session(company.company_id) as session:
                    connectors = await connector_repo.list_scheduled_connectors(session)
                for connector in connectors:
                    assert connector.schedule_minutes is not None
                    due = connector.last_sync_at is None or (
                        now - connector.last_sync_at
                        >= timedelta(minutes=connector.schedule_minutes)
                    )
                    if not due:
                        continue
                    with contextlib.suppress(Conflict):  # already queued or running
                        await self.jobs.request_and_enqueue(
                            company.company_id, connector.id, trigger="scheduled"
                        )
                        enqueued += 1
        return enqueued

    async def reap(self) -> int:
        """Take over every sync whose worker went silent (see :mod:`backend.ingest.sync`)
        and queue its successor; returns how many were taken over. Queued runs that no one
        claimed count only with in-process jobs, whose queue died with its process (a Redis
        stream keeps them, and redelivers)."""
        taken, offset = 0, 0
        service = self.jobs.sync_service
        while companies := await list_companies(self.database, limit=500, offset=offset):
            offset += len(companies)
            for company in companies:
                stale = await service.stale_runs(
                    company.company_id, include_queued=self.jobs.in_process
                )
                for run in stale:
                    successor = await service.take_over(
                        company.company_id, run.id, by="the sync reaper"
                    )
                    if successor is None:
                        continue
                    try:
                        await self.jobs.enqueue_sync(successor)
                    except Exception:
                        await service.abandon(
                            company.company_id, successor.id, reason="could not be queued"
                        )
                        raise
                    taken += 1
        return taken

    async def reap_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                count = await self.reap()
                if count:
                    _log.warning("abandoned syncs taken over", count=count)
            except StoreUnavailable as exc:  # an outage: the next tick tries again
                _log.warning("sync reaper tick skipped", store=exc.store)
            except Exception:
                _log.exception("sync reaper tick failed")

    async def run_forever(self, interval_seconds: float = 60.0) -> None:
        while True:
            try:
                count = await self.tick()
                if count:
                    _log.info("scheduled syncs enqueued", count=count)
            except StoreUnavailable as exc:
                _log.warning("scheduler tick skipped", store=exc.store)
            except Exception:
                _log.exception("scheduler tick failed")
            await asyncio.sleep(interval_seconds)
