"""Running a connector's sync: fetch pages, index them, checkpoint after each one.

A sync is a three-stage pipeline (fetch → prepare → write) joined by small queues, so the
platform is being read and the object store/Qdrant/Postgres are being written while the
model embeds the page in between. Pages stay in order, and a page's checkpoint is saved only
after that page is fully written: a killed sync resumes from the last saved checkpoint and
re-reads at most the pages that were in flight, which the content hashes then skip.

One sync per connector at a time: the database refuses a second queued or running run
(a partial unique index), and a run whose worker died is taken over once its heartbeat is
older than ``stale_after``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy.exc import IntegrityError

from backend.adapters.base import Checkpoint, Page
from backend.adapters.http import RateLimiter
from backend.adapters.registry import build_adapter
from backend.blobs import BlobStore
from backend.clock import Clock
from backend.db.models import Connector, SyncRun
from backend.db.repositories import companies as company_repo
from backend.db.repositories import connectors as connector_repo
from backend.db.repositories import sync_runs as run_repo
from backend.db.session import Database
from backend.embeddings.dense import DenseEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.errors import Conflict, NotFound
from backend.ingest.connectors import ConnectorService
from backend.ingest.indexer import (
    IndexCounts,
    KnowledgeChanged,
    KnowledgeIndexer,
    OpenTicketsIndexed,
    PreparedBatch,
)
from backend.vectors import VectorStore

_log = structlog.get_logger("helpdesk.sync")

ProgressCallback = Callable[[IndexCounts], Awaitable[None] | None]
LimiterFactory = Callable[[Connector], RateLimiter | None]
"""The rate limiter for one connector's adapter; ``None`` means the platform's default
budget (see :class:`backend.adapters.registry.AdapterSpec`)."""


@dataclass(frozen=True)
class IndexingParts:
    """What a sync writes to, besides Postgres."""

    vectors: VectorStore
    dense: DenseEncoder
    sparse: SparseEncoder
    blobs: BlobStore
    knowledge_changed: KnowledgeChanged | None = None
    open_tickets_indexed: OpenTicketsIndexed | None = None
    """Triage of new and updated open tickets (see backend.insight.triage)."""


class SyncService:
    def __init__(
        self,
        *,
        database: Database,
        connectors: ConnectorService,
        parts: IndexingParts,
        http: httpx.AsyncClient,
        clock: Clock,
        stale_after: timedelta = timedelta(minutes=30),
        limiter_for: LimiterFactory | None = None,
    ) -> None:
        self.database = database
        self.connectors = connectors
        self.parts = parts
        self.http = http
        self.clock = clock
        self.stale_after = stale_after
        # Injected so a shared budget (several connectors on one account) or an unlimited
        # one (benchmarks against a local replay) can replace the per-platform default.
        self.limiter_for = limiter_for

    async def request_sync(
        self, company_id: str, connector_id: uuid.UUID, *, trigger: str
    ) -> SyncRun:
        """Create a queued run, or refuse with 409 while another one is active."""
        async with self.database.tenant_session(company_id) as session:
            connector = await connector_repo.get_connector(session, connector_id)
            if connector is None:
                raise NotFound("no such connector", code="connector_not_found")
            active = await run_repo.get_active_sync_run(session, connector_id)
            if active is not None and self._is_stale(active):
                await run_repo.update_sync_run(
                    session,
                    active.id,
                    status="failed",
                    finished_at=self.clock.now(),
                    errors=[*active.errors, {"message": "worker lost (no heartbeat)"}],
                )
                await session.flush()
                active = None
            if active is not None:
                raise Conflict(
                    f"a sync of this connector is already {active.status} ({active.id})",
                    code="sync_in_progress",
                )
            try:
                async with session.begin_nested():
                    run = await run_repo.insert_sync_run(
                        session,
                        company_id=company_id,
                        connector_id=connector_id,
                        trigger=trigger,
                        status="queued",
                    )
            except IntegrityError as exc:  # another request won the race
                raise Conflict(
                    "a sync of this connector is already queued", code="sync_in_progress"
                ) from exc
        return run

    async def abandon(self, company_id: str, run_id: uuid.UUID, *, reason: str) -> None:
        async with self.database.tenant_session(company_id) as session:
            await run_repo.update_sync_run(
                session,
                run_id,
                status="failed",
                finished_at=self.clock.now(),
                errors=[{"message": reason}],
            )

    def _is_stale(self, run: SyncRun) -> bool:
        last = run.heartbeat_at or run.started_at or run.created_at
        return last is not None and self.clock.now() - last > self.stale_after

    async def run(
        self, company_id: str, run_id: uuid.UUID, *, progress: ProgressCallback | None = None
    ) -> SyncRun:
        """Execute a queued run to the end (or until the platform blocks it)."""
        async with self.database.tenant_session(company_id) as session:
            run = await run_repo.get_sync_run(session, run_id)
            if run is None:
                raise NotFound("no such sync run", code="sync_run_not_found")
            if run.status != "queued":
                raise Conflict(f"sync run is {run.status}", code="sync_run_not_queued")
            connector = await connector_repo.get_connector(session, run.connector_id)
            if connector is None:
                raise NotFound("no such connector", code="connector_not_found")
            now = self.clock.now()
            await run_repo.update_sync_run(
                session, run_id, status="running", started_at=now, heartbeat_at=now
            )
        started = now
        status, totals = "failed", IndexCounts()
        try:
            config = self.connectors.open(connector)
            adapter = build_adapter(
                connector.platform,
                config.settings,
                config.credentials,
                client=self.http,
                limiter=self.limiter_for(connector) if self.limiter_for else None,
                clock=self.clock,
            )
            checkpoint_type: type[Checkpoint] = adapter.checkpoint_type
            checkpoint = (
                checkpoint_type.model_validate(connector.checkpoint)
                if connector.checkpoint
                else adapter.initial_checkpoint()
            )
            indexer = KnowledgeIndexer(
                database=self.database,
                vectors=self.parts.vectors,
                dense=self.parts.dense,
                sparse=self.parts.sparse,
                blobs=self.parts.blobs,
                connector_id=connector.id,
                open_tickets_indexed=self.parts.open_tickets_indexed,
            )
            blocked = await self._pipeline(
                company_id, run_id, connector.id, adapter, checkpoint, indexer, totals, progress
            )
            status = "failed" if blocked else "succeeded"
        except Exception as exc:
            _log.exception("sync failed", company_id=company_id, run_id=str(run_id))
            await self._record(
                company_id,
                run_id,
                IndexCounts(errors=[{"message": f"{type(exc).__name__}: {exc}"[:500]}]),
            )
            raise
        finally:
            async with self.database.tenant_session(company_id) as session:
                await run_repo.finish_sync_run(
                    session, run_id, status=status, finished_at=self.clock.now()
                )
                if status == "succeeded":
                    await connector_repo.mark_synced(session, connector.id, at=started)
                if totals.changed:
                    await company_repo.bump_knowledge_generation(session, company_id)
                finished = await run_repo.get_sync_run(session, run_id)
            if totals.changed and self.parts.knowledge_changed is not None:
                # New knowledge, committed: answers cached before it die at once.
                await self.parts.knowledge_changed(company_id)
        _log.info(
            "sync finished",
            company_id=company_id,
            run_id=str(run_id),
            status=status,
            fetched=totals.fetched,
            upserted=totals.upserted,
            deleted=totals.deleted,
        )
        assert finished is not None
        return finished

    async def _pipeline(
        self,
        company_id: str,
        run_id: uuid.UUID,
        connector_id: uuid.UUID,
        adapter: Any,
        checkpoint: Checkpoint,
        indexer: KnowledgeIndexer,
        totals: IndexCounts,
        progress: ProgressCallback | None,
    ) -> bool:
        pages: asyncio.Queue[Page[Any] | None] = asyncio.Queue(maxsize=2)
        prepared: asyncio.Queue[tuple[Page[Any], PreparedBatch] | None] = asyncio.Queue(maxsize=1)
        blocked = False

        async def fetch() -> None:
            current = checkpoint
            while True:
                page: Page[Any] = await adapter.fetch_page(current)
                await pages.put(page)
                if page.blocked or not page.has_more:
                    break
                current = page.checkpoint
            await pages.put(None)

        async def prepare() -> None:
            while (page := await pages.get()) is not None:
                batch = await indexer.prepare(company_id, page.documents)
                await prepared.put((page, batch))
            await prepared.put(None)

        async def write() -> None:
            nonlocal blocked
            while (item := await prepared.get()) is not None:
                page, batch = item
                counts = await indexer.write(batch, page.deletions)
                counts.failed += len(page.failures)
                counts.errors.extend(f.model_dump(mode="json") for f in page.failures)
                await self._record(
                    company_id, run_id, counts, checkpoint=(connector_id, page.checkpoint)
                )
                totals.add(counts)
                if progress is not None:
                    result = progress(counts)
                    if result is not None:
                        await result
                blocked = blocked or page.blocked

        async with asyncio.TaskGroup() as group:
            group.create_task(fetch())
            group.create_task(prepare())
            group.create_task(write())
        return blocked

    async def _record(
        self,
        company_id: str,
        run_id: uuid.UUID,
        counts: IndexCounts,
        checkpoint: tuple[uuid.UUID, Checkpoint] | None = None,
    ) -> None:
        async with self.database.tenant_session(company_id) as session:
            await run_repo.add_sync_counts(
                session,
                run_id,
                fetched=counts.fetched,
                upserted=counts.upserted,
                unchanged=counts.unchanged,
                deleted=counts.deleted,
                failed=counts.failed,
                errors=counts.errors,
            )
            await run_repo.update_sync_run(session, run_id, heartbeat_at=self.clock.now())
            if checkpoint is not None:
                connector_id, value = checkpoint
                await connector_repo.save_checkpoint(
                    session, connector_id, value.model_dump(mode="json")
                )
