"""Running a connector's sync: fetch pages, index them, checkpoint after each one.

A sync is a four-stage pipeline (fetch → plan → embed → write) joined by small queues, so
the platform is being read, the next page normalized and chunked, and the object
store/Qdrant/Postgres written while the model embeds the page in between. Pages stay in
order, and a page's checkpoint is saved only after that page is fully written: a killed sync
resumes from the last saved checkpoint and re-reads at most the pages that were in flight,
which the content hashes then skip.

One sync per connector at a time: the database refuses a second queued or running run
(a partial unique index). A running sync writes a heartbeat every ``heartbeat_every``
seconds (and with every page); a run whose heartbeat is older than ``takeover_after`` lost
its worker. It is then taken over — by the reaper in the scheduler process
(:meth:`backend.ingest.jobs.SyncScheduler.reap`, no request needed), by a redelivered job
for it, or by the next sync request — which marks it ``abandoned`` (with why, in its
errors) and creates a new run ``resumed_from`` it that continues from the connector's last
saved checkpoint. A worker that finds its run taken over stops writing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from backend.adapters.base import Checkpoint, Page
from backend.adapters.http import RateLimiter
from backend.adapters.registry import build_adapter, connector_base_urls
from backend.blobs import BlobStore
from backend.clock import Clock
from backend.db.models import Connector, SyncRun
from backend.db.repositories import companies as company_repo
from backend.db.repositories import connectors as connector_repo
from backend.db.repositories import sync_runs as run_repo
from backend.db.session import Database
from backend.egress import Egress, EgressRefused, EgressScope
from backend.embeddings.dense import DenseEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.errors import AppError, Conflict, NotFound
from backend.ingest.connectors import ConnectorConfig, ConnectorService
from backend.ingest.file_imports import FILE_PLATFORMS, FileImportPolicy
from backend.ingest.indexer import (
    DocumentRoom,
    IndexCounts,
    KnowledgeChanged,
    KnowledgeIndexer,
    OpenTicketsIndexed,
    PlannedBatch,
    PreparedBatch,
    ReviewsIndexed,
)
from backend.privacy.identifiers import DEFAULT_PHONE_REGION
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import TenantScope, open_scope
from backend.tenancy.service import company_suspended
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
    phone_region: str | None = DEFAULT_PHONE_REGION
    """Region for requester phone numbers written without a country code."""
    document_room: DocumentRoom | None = None
    """The plan's document limit (backend.tenancy.plans); ``None``: unlimited."""
    open_tickets_indexed: OpenTicketsIndexed | None = None
    """Triage of new and updated open tickets (see backend.insight.triage)."""
    reviews_indexed: ReviewsIndexed | None = None
    """Drafts and alerts for new reviews (see backend.replies)."""

    def indexer(
        self, database: Database, *, connector_id: uuid.UUID | None = None, reindex: bool = False
    ) -> KnowledgeIndexer:
        """The one place a :class:`KnowledgeIndexer` is wired (syncs, uploads, the CLI, a
        re-index). A ``reindex`` one skips plan limits and open-ticket triage: a re-index
        adds no documents and changes no ticket or review."""
        return KnowledgeIndexer(
            database=database,
            vectors=self.vectors,
            dense=self.dense,
            sparse=self.sparse,
            blobs=self.blobs,
            connector_id=connector_id,
            knowledge_changed=self.knowledge_changed,
            phone_region=self.phone_region,
            document_room=None if reindex else self.document_room,
            open_tickets_indexed=None if reindex else self.open_tickets_indexed,
            reviews_indexed=None if reindex else self.reviews_indexed,
        )

    def scope(
        self, database: Database, company_id: CompanyId
    ) -> AbstractAsyncContextManager[TenantScope]:
        """A job's tenant scope over these stores (see :mod:`backend.tenancy.scope`)."""
        return open_scope(
            database,
            company_id,
            vectors=self.vectors,
            blobs=self.blobs,
            void_answers=self.knowledge_changed,
        )


class SyncService:
    def __init__(
        self,
        *,
        database: Database,
        connectors: ConnectorService,
        parts: IndexingParts,
        egress: Egress,
        clock: Clock,
        files: FileImportPolicy | None = None,
        takeover_after: timedelta = timedelta(seconds=45),
        heartbeat_every: float = 10.0,
        limiter_for: LimiterFactory | None = None,
    ) -> None:
        self.database = database
        self.connectors = connectors
        self.parts = parts
        # Every adapter gets a client from here, scoped to its connector's own origins: the
        # one place outbound calls are checked (backend.egress).
        self.egress = egress
        # File imports read only below the operator's import root, re-checked every sync.
        self.files = files if files is not None else FileImportPolicy.refuse_all()
        self.clock = clock
        if heartbeat_every * 3 > takeover_after.total_seconds():
            raise ValueError("the heartbeat must beat at least 3 times per takeover window")
        self.takeover_after = takeover_after
        self.heartbeat_every = heartbeat_every
        # Injected so a shared budget (several connectors on one account) or an unlimited
        # one (benchmarks against a local replay) can replace the per-platform default.
        self.limiter_for = limiter_for

    async def request_sync(
        self, company_id: str, connector_id: uuid.UUID, *, trigger: str
    ) -> SyncRun:
        """Create a queued run, or refuse with 409 while another one is active (403
        ``company_suspended`` for a suspended company)."""
        async with self.database.tenant_session(company_id) as session:
            company = await company_repo.get_company(session, company_id)
            if company is not None and company.status != "active":
                raise company_suspended(company_id)
            connector = await connector_repo.get_connector(session, connector_id)
            if connector is None:
                raise NotFound("no such connector", code="connector_not_found")
            active = await run_repo.get_active_sync_run(session, connector_id)
            resumed_from = None
            if (
                active is not None
                and self._is_stale(active)
                and await self._abandon(session, active, by="a new sync request") is not None
            ):
                resumed_from, active = active.id, None
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
                        resumed_from=resumed_from,
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
        return last is not None and self.clock.now() - last > self.takeover_after

    async def _abandon(self, session: Any, run: SyncRun, *, by: str) -> SyncRun | None:
        """Mark a silent run abandoned (if no one else did); the caller creates its successor."""
        now = self.clock.now()
        last = run.heartbeat_at or run.started_at or run.created_at
        silent = int((now - last).total_seconds()) if last else None
        abandoned = await run_repo.abandon_if_stale(
            session,
            run.id,
            cutoff=now - self.takeover_after,
            now=now,
            error={
                "message": f"worker lost: no heartbeat for {silent} s; taken over by {by}",
                "event": "abandoned",
                "last_heartbeat_at": last.isoformat() if last else None,
            },
        )
        if abandoned is not None:
            _log.warning(
                "sync worker lost; run taken over",
                company_id=run.company_id,
                run_id=str(run.id),
                silent_s=silent,
                by=by,
            )
        return abandoned

    async def take_over(self, company_id: str, run_id: uuid.UUID, *, by: str) -> SyncRun | None:
        """If ``run_id`` is still silent past the takeover threshold: mark it abandoned and
        return a new queued run resumed from it (the caller runs or enqueues it). ``None``
        when it is alive again or another process took it over first."""
        async with self.database.tenant_session(company_id) as session:
            run = await run_repo.get_sync_run(session, run_id)
            if run is None or run.status not in ("queued", "running") or not self._is_stale(run):
                return None
            if await self._abandon(session, run, by=by) is None:
                return None
            return await run_repo.insert_sync_run(
                session,
                company_id=company_id,
                connector_id=run.connector_id,
                trigger="takeover",
                status="queued",
                resumed_from=run.id,
            )

    async def stale_runs(self, company_id: str, *, include_queued: bool) -> list[SyncRun]:
        """Runs of ``company_id`` silent past the takeover threshold."""
        cutoff = self.clock.now() - self.takeover_after
        async with self.database.tenant_session(company_id) as session:
            runs = await run_repo.list_stale_running_runs(session, cutoff=cutoff)
            if include_queued:
                runs += await run_repo.list_stale_queued_runs(session, cutoff=cutoff)
        return runs

    async def run(
        self,
        company_id: CompanyId,
        run_id: uuid.UUID,
        *,
        progress: ProgressCallback | None = None,
    ) -> SyncRun:
        """Execute a queued run to the end (or until the platform blocks it)."""
        async with self.database.tenant_session(company_id) as session:
            run = await run_repo.get_sync_run(session, run_id)
            if run is None:
                raise NotFound("no such sync run", code="sync_run_not_found")
            company = await company_repo.get_company(session, company_id)
            if run.status == "queued" and (company is None or company.status != "active"):
                # Queued before the company was suspended: the job is dropped, not run.
                await run_repo.update_sync_run(
                    session,
                    run_id,
                    status="cancelled",
                    finished_at=self.clock.now(),
                    errors=[{"message": "company suspended"}],
                )
                await session.refresh(run)
                return run
            now = self.clock.now()
            claimed = (
                await run_repo.claim_queued_run(session, run_id, now=now)
                if run.status == "queued"
                else None
            )
            connector = await connector_repo.get_connector(session, run.connector_id)
        if claimed is None:
            return await self._redelivered(company_id, run, progress)
        if connector is None:
            raise NotFound("no such connector", code="connector_not_found")
        started = now
        status, totals = "failed", IndexCounts()
        try:
            config = self.connectors.open(connector)
            checked = await self._check_targets(company_id, run_id, connector, config)
            if checked is not None:
                settings, scope = checked
                async with self.egress.client(scope) as client:
                    adapter = build_adapter(
                        connector.platform,
                        settings,
                        config.credentials,
                        client=client,
                        limiter=self.limiter_for(connector) if self.limiter_for else None,
                        clock=self.clock,
                    )
                    checkpoint_type: type[Checkpoint] = adapter.checkpoint_type
                    checkpoint = (
                        checkpoint_type.model_validate(connector.checkpoint)
                        if connector.checkpoint
                        else adapter.initial_checkpoint()
                    )
                    indexer = self.parts.indexer(self.database, connector_id=connector.id)
                    blocked = await self._with_heartbeat(
                        company_id,
                        run_id,
                        self._pipeline(
                            company_id,
                            run_id,
                            connector.id,
                            adapter,
                            checkpoint,
                            indexer,
                            totals,
                            progress,
                        ),
                    )
                # Reconciliation also finishes what a webhook drain left keyword-only (an
                # incremental sync would not fetch those documents again).
                totals.upserted += await self.parts.indexer(
                    self.database, connector_id=connector.id, reindex=True
                ).complete_left_behind(company_id)
                status = "failed" if blocked else "succeeded"
        except RunTakenOver:
            status = "abandoned"  # its successor carries on; nothing of ours to finish
        except Exception as exc:
            _log.exception("sync failed", company_id=company_id, run_id=str(run_id))
            # The leaf's type and message (cut short): adapters turn upstream answers into
            # failure values with fixed texts, so no upstream body reaches this.
            await self._record(
                company_id, run_id, IndexCounts(errors=[{"message": root_cause(exc)}])
            )
            raise
        finally:
            async with self.parts.scope(self.database, company_id) as tenant:
                session = tenant.session
                # Only a run still ours is finished: one taken over stays 'abandoned'.
                await run_repo.finish_sync_run(
                    session, run_id, status=status, finished_at=self.clock.now()
                )
                if status == "succeeded":
                    await connector_repo.mark_synced(session, connector.id, at=started)
                if totals.changed:
                    # New knowledge: answers cached before it die once this commits.
                    await tenant.knowledge_changed()
                finished = await run_repo.get_sync_run(session, run_id)
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

    async def _check_targets(
        self, company_id: str, run_id: uuid.UUID, connector: Connector, config: ConnectorConfig
    ) -> tuple[Any, EgressScope] | None:
        """What the adapter may touch: the checked real path of a file import (below the
        import root, before a byte is read) and the origins its client may reach. A refusal
        is recorded on the run with the rule's fixed text (nothing about whether the target
        exists or what it would answer) and ``None`` comes back."""
        try:
            settings: Any = config.settings
            if connector.platform in FILE_PLATFORMS:
                settings = self.files.resolve_settings(
                    connector.platform, config.settings.model_dump(mode="json")
                )
            scope = self.egress.policy.scope(
                connector.platform, connector_base_urls(connector.platform, config.settings)
            )
        except (EgressRefused, AppError) as exc:
            reason = exc.reason if isinstance(exc, EgressRefused) else str(exc.detail)
            _log.warning("sync refused", company_id=company_id, run_id=str(run_id))
            await self._record(
                company_id, run_id, IndexCounts(errors=[{"message": f"refused: {reason}"}])
            )
            return None
        return settings, scope

    async def _redelivered(
        self, company_id: CompanyId, run: SyncRun, progress: ProgressCallback | None
    ) -> SyncRun:
        """A job for a run that is not queued: a redelivery (its worker died, or the queue
        delivered twice) or a late job. A silent run is adopted — taken over and resumed
        here; a live one is left to its worker; a finished one needs nothing."""
        if run.status in ("queued", "running") and self._is_stale(run):
            successor = await self.take_over(company_id, run.id, by="a redelivered job")
            if successor is not None:
                return await self.run(company_id, successor.id, progress=progress)
        if run.status == "abandoned":
            async with self.database.tenant_session(company_id) as session:
                successor = await run_repo.get_successor(session, run.id)
            _log.info(
                "job for an abandoned run: its successor carries on",
                company_id=company_id,
                run_id=str(run.id),
                successor=str(successor.id) if successor else None,
            )
            return successor or run
        _log.info(
            "job for a run that is not queued; nothing to do",
            company_id=company_id,
            run_id=str(run.id),
            status=run.status,
        )
        return run

    async def _with_heartbeat(
        self, company_id: str, run_id: uuid.UUID, work: Awaitable[bool]
    ) -> bool:
        """Run ``work`` while proving every ``heartbeat_every`` seconds that this worker is
        alive. If the run was taken over meanwhile (this worker was frozen past the
        threshold), stop: another worker owns the connector now."""
        task: asyncio.Future[bool] = asyncio.ensure_future(work)

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_every)
                try:
                    async with self.database.tenant_session(company_id) as session:
                        alive = await run_repo.touch_heartbeat(
                            session, run_id, now=self.clock.now()
                        )
                except Exception:  # a database blip: the next beat tries again
                    _log.warning("sync heartbeat failed", run_id=str(run_id), exc_info=True)
                    continue
                if not alive:
                    _log.error("sync run was taken over; stopping", run_id=str(run_id))
                    task.cancel()
                    return

        beater = asyncio.create_task(beat())
        try:
            return await task
        except asyncio.CancelledError:
            if beater.done():
                raise RunTakenOver(f"run {run_id} was taken over by another worker") from None
            raise
        finally:
            beater.cancel()
            await asyncio.gather(beater, return_exceptions=True)

    async def _pipeline(
        self,
        company_id: CompanyId,
        run_id: uuid.UUID,
        connector_id: uuid.UUID,
        adapter: Any,
        checkpoint: Checkpoint,
        indexer: KnowledgeIndexer,
        totals: IndexCounts,
        progress: ProgressCallback | None,
    ) -> bool:
        pages: asyncio.Queue[Page[Any] | None] = asyncio.Queue(maxsize=2)
        planned: asyncio.Queue[tuple[Page[Any], PlannedBatch] | None] = asyncio.Queue(maxsize=1)
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

        # Four stages, each a page behind the previous one: while the model encodes page n,
        # page n+1 is normalized and chunked and page n-1 is written, so the model (the
        # one cost that cannot shrink) rarely waits, however short the documents are.
        async def plan() -> None:
            while (page := await pages.get()) is not None:
                await planned.put((page, await indexer.plan(company_id, page.documents)))
            await planned.put(None)

        async def embed() -> None:
            while (item := await planned.get()) is not None:
                page, batch = item
                await prepared.put((page, await indexer.embed(batch)))
            await prepared.put(None)

        async def write() -> None:
            nonlocal blocked
            while (item := await prepared.get()) is not None:
                page, batch = item
                # A company suspended or deleted mid-sync stops at the next page.
                await self._ensure_company_active(company_id)
                counts = await indexer.write(batch, page.deletions)
                counts.failed += len(page.failures)
                counts.errors.extend(f.model_dump(mode="json") for f in page.failures)
                counts.by_reason = dict(page.counts)
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
            group.create_task(plan())
            group.create_task(embed())
            group.create_task(write())
        return blocked

    async def _ensure_company_active(self, company_id: str) -> None:
        async with self.database.tenant_session(company_id) as session:
            company = await company_repo.get_company(session, company_id)
        if company is None or company.status != "active":
            raise company_suspended(company_id)

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
                counts=counts.by_reason,
                chunks=counts.chunks,
            )
            await run_repo.update_sync_run(session, run_id, heartbeat_at=self.clock.now())
            if checkpoint is not None:
                connector_id, value = checkpoint
                await connector_repo.save_checkpoint(
                    session, connector_id, value.model_dump(mode="json")
                )


class RunTakenOver(Exception):
    """This worker's run was marked abandoned and resumed elsewhere while it was silent."""


def root_cause(exc: BaseException) -> str:
    """``Type: message`` of the exception that started it all, for the run's error text: a
    TaskGroup's ``ExceptionGroup`` is unwrapped to its first real leaf (cancellations of the
    sibling stages are noise). Upstream response bodies are not quoted: only the leaf's
    type and message, cut to 300 characters."""
    leaf: BaseException = exc
    while isinstance(leaf, BaseExceptionGroup):
        inner = [e for e in leaf.exceptions if not isinstance(e, asyncio.CancelledError)]
        leaf = (inner or list(leaf.exceptions))[0]
    return f"{type(leaf).__name__}: {leaf}"[:300]
