"""A Freshdesk connector synced end to end: a replay of the Freshdesk v2 API over real HTTP
(``bench/freshdesk_replay.py``, StackFAQ-shaped data) → SyncService → real Postgres, the
embedded Qdrant engine and the local object store.

Covers the first sync, an idempotent second one, a deletion that reaches all three stores,
tenant isolation, and a sync killed with SIGKILL in another process, taken over by the
reaper (no request) and resumed here; and a redelivered job for a dead worker's run adopted.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from taskiq import InMemoryBroker

from backend.adapters.http import RateLimiter
from backend.blobs import LocalBlobStore, TenantBlobs
from backend.clock import SystemClock
from backend.db.models import Document, SyncRun
from backend.db.provisioning import DatabaseUrls
from backend.db.repositories import sync_runs as run_repo
from backend.db.session import Database
from backend.embeddings.dense import SentenceTransformerEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.errors import Conflict, NotFound
from backend.ingest.connectors import ConnectorService
from backend.ingest.indexer import document_uuid
from backend.ingest.jobs import JobQueue, SyncScheduler
from backend.ingest.stored_documents import raw_payload
from backend.ingest.sync import IndexingParts, SyncService
from backend.secretbox import SecretBox
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import open_rows
from backend.vectors import VectorStore, point_id
from backend.vectors.factory import build_vector_store
from backend.vectors.types import SearchMode, VectorFilter
from bench.freshdesk_replay import (
    API_KEY,
    DOMAIN,
    FreshdeskDataset,
    FreshdeskReplayServer,
    running_replay,
)
from tests.conftest import CompanyWithKey

pytestmark = pytest.mark.slow

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = "freshdesk"


@pytest.fixture(scope="session")
def encoder() -> SentenceTransformerEncoder:
    """The local model, loaded once for this module's tests."""
    model = SentenceTransformerEncoder()
    model.encode_batch(["warm up"])
    return model


@dataclass
class Stores:
    database: Database
    vectors: VectorStore
    blobs: LocalBlobStore
    connectors: ConnectorService
    secret_key: str

    def sync_service(
        self,
        replay: FreshdeskReplayServer,
        encoder: SentenceTransformerEncoder,
        *,
        takeover_after: timedelta = timedelta(seconds=45),
    ) -> SyncService:
        clock = SystemClock()
        return SyncService(
            database=self.database,
            connectors=self.connectors,
            parts=IndexingParts(
                vectors=self.vectors, dense=encoder, sparse=SparseEncoder(), blobs=self.blobs
            ),
            egress=replay.egress(),
            clock=clock,
            takeover_after=takeover_after,
            heartbeat_every=0.5,
            # The replay's X-Ratelimit headers still apply; the 50/minute default would
            # make a 90-document test take minutes.
            limiter_for=lambda _connector: RateLimiter.unlimited(clock=clock),
        )


def open_stores(
    database: Database, data_dir: Path, encoder: SentenceTransformerEncoder, key: str
) -> Stores:
    # The same layout open_stack uses under data_dir, so a worker process and this test
    # process can take turns on one embedded index.
    return Stores(
        database=database,
        vectors=build_vector_store(None, None, data_dir, dense_dimension=encoder.dimension),
        blobs=LocalBlobStore(data_dir / "objects"),
        connectors=ConnectorService(SecretBox.from_base64(key)),
        secret_key=key,
    )


@pytest.fixture
async def stores(
    database: Database, tmp_path: Path, encoder: SentenceTransformerEncoder
) -> AsyncIterator[Stores]:
    opened = open_stores(
        database, tmp_path / "data", encoder, base64.b64encode(os.urandom(32)).decode()
    )
    yield opened
    await opened.vectors.close()


@pytest.fixture
def replay() -> Iterator[FreshdeskReplayServer]:
    with running_replay(FreshdeskDataset.load(articles=15, tickets=60)) as server:
        yield server


async def create_connector(stores: Stores, company_id: str, *, per_page: int) -> uuid.UUID:
    async with open_rows(stores.database, CompanyId(company_id)) as scope:
        connector = await stores.connectors.create(
            scope,
            platform="freshdesk",
            name="helpdesk",
            settings={"domain": DOMAIN, "per_page": per_page},
            credentials={"api_key": API_KEY},
            schedule_minutes=None,
            actor="test",
        )
    return connector.id


async def sync(service: SyncService, company_id: str, connector_id: uuid.UUID) -> SyncRun:
    run = await service.request_sync(company_id, connector_id, trigger="manual")
    return await service.run(company_id, run.id)


async def document_chunks(database: Database, company_id: str) -> dict[str, int]:
    """external_id → chunk_count of every document the company has."""
    async with database.tenant_session(company_id) as session:
        rows = await session.execute(select(Document.external_id, Document.chunk_count))
        return {row.external_id: row.chunk_count for row in rows}


async def assert_index_matches(stores: Stores, company_id: str, dimension: int) -> int:
    """Qdrant holds exactly the chunks Postgres records: one point per (document, chunk),
    each with its deterministic id, and nothing else. Returns the number of points."""
    chunks = await document_chunks(stores.database, company_id)
    expected = {
        point_id(company_id, SOURCE, external_id, index)
        for external_id, count in chunks.items()
        for index in range(count)
    }
    assert await stores.vectors.count(company_id) == len(expected) == sum(chunks.values())
    # A dense query wide enough to return every point lists each id once.
    hits = await stores.vectors.query(
        company_id, dense=[1.0] + [0.0] * (dimension - 1), mode=SearchMode.DENSE, limit=1000
    )
    ids = [hit.id for hit in hits]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    for hit in hits:
        assert hit.payload.company_id == company_id
        assert hit.payload.external_id is not None
        assert hit.payload.document_id == str(
            document_uuid(company_id, SOURCE, hit.payload.external_id)
        )
    return len(expected)


async def test_freshdesk_sync_end_to_end(
    stores: Stores,
    replay: FreshdeskReplayServer,
    encoder: SentenceTransformerEncoder,
    make_company: MakeCompany,
) -> None:
    acme = (await make_company("fd")).company_id
    other = (await make_company("other")).company_id
    connector_id = await create_connector(stores, acme, per_page=20)
    service = stores.sync_service(replay, encoder)
    articles, tickets = len(replay.dataset.articles), len(replay.dataset.tickets)

    first = await sync(service, acme, connector_id)
    assert first.status == "succeeded", first.errors
    assert (first.fetched, first.upserted, first.failed) == (articles + tickets,) * 2 + (0,)

    async with stores.database.tenant_session(acme) as session:
        result = await session.execute(select(Document.kind, func.count()).group_by(Document.kind))
        kinds = {kind: count for kind, count in result}
    assert kinds == {"article": articles, "ticket": tickets}
    points = await assert_index_matches(stores, acme, encoder.dimension)
    assert points >= articles + tickets

    blobs = TenantBlobs(stores.blobs, acme)
    stored = [key async for key in blobs.list_documents(SOURCE)]
    assert len(stored) == articles + tickets
    first_ticket = replay.dataset.tickets[0]
    raw = raw_payload(await blobs.get_document(SOURCE, f"ticket:{first_ticket['id']}"))
    assert raw is not None
    assert raw["ticket"]["subject"] == first_ticket["subject"]
    # The replay's agent reply (from the gold article) came through the conversations API.
    assert [c["ticket_id"] for c in raw["conversations"]] == [first_ticket["id"]]

    # Another company sees none of it, in any store.
    assert await document_chunks(stores.database, other) == {}
    assert await stores.vectors.count(other) == 0
    assert (
        await stores.vectors.query(
            other,
            dense=await encoder.embed_query(first_ticket["subject"]),
            mode=SearchMode.DENSE,
            limit=10,
        )
        == []
    )
    assert [key async for key in TenantBlobs(stores.blobs, other).list_documents(SOURCE)] == []
    with pytest.raises(NotFound):
        async with open_rows(stores.database, CompanyId(other)) as rows:
            await stores.connectors.get(rows, connector_id)
    with pytest.raises(NotFound):
        await service.request_sync(other, connector_id, trigger="manual")

    # Nothing changed on the platform: nothing is written again.
    second = await sync(service, acme, connector_id)
    assert second.status == "succeeded", second.errors
    assert (second.upserted, second.deleted, second.failed) == (0, 0, 0)
    assert second.unchanged == second.fetched
    assert await stores.vectors.count(acme) == points

    # An agent deletes a ticket: it shows up under filter=deleted and leaves every store.
    gone = replay.dataset.tickets[5]
    gone_id = f"ticket:{gone['id']}"
    gone_chunks = (await document_chunks(stores.database, acme))[gone_id]
    replay.dataset.delete_ticket(gone["id"], at=datetime.now(UTC))
    third = await sync(service, acme, connector_id)
    assert third.status == "succeeded", third.errors
    assert (third.deleted, third.upserted) == (1, 0)
    assert gone_id not in await document_chunks(stores.database, acme)
    gone_document = str(document_uuid(acme, SOURCE, gone_id))
    assert await stores.vectors.count(acme, VectorFilter(document_ids=(gone_document,))) == 0
    assert await blobs.get_document(SOURCE, gone_id) is None
    assert await assert_index_matches(stores, acme, encoder.dimension) == points - gone_chunks


async def active_run(database: Database, company_id: str, connector_id: uuid.UUID) -> SyncRun:
    async with database.tenant_session(company_id) as session:
        runs = await run_repo.list_sync_runs(session, connector_id=connector_id, limit=1)
    assert runs, "the worker has not created its run yet"
    return runs[0]


async def successor_of(database: Database, company_id: str, run_id: uuid.UUID) -> SyncRun | None:
    async with database.tenant_session(company_id) as session:
        return await run_repo.get_successor(session, run_id)


async def wait_finished(database: Database, company_id: str, run_id: uuid.UUID) -> SyncRun:
    for _ in range(1200):
        async with database.tenant_session(company_id) as session:
            run = await run_repo.get_sync_run(session, run_id)
        assert run is not None
        if run.status not in ("queued", "running"):
            return run
        await asyncio.sleep(0.05)
    pytest.fail(f"run {run_id} did not finish in 60 s")


async def test_a_redelivered_job_for_a_dead_workers_run_adopts_it(
    stores: Stores,
    replay: FreshdeskReplayServer,
    encoder: SentenceTransformerEncoder,
    make_company: MakeCompany,
) -> None:
    company_id = (await make_company("redeliver")).company_id
    connector_id = await create_connector(stores, company_id, per_page=25)
    service = stores.sync_service(replay, encoder, takeover_after=timedelta(seconds=30))
    run = await service.request_sync(company_id, connector_id, trigger="manual")
    # A worker claimed it and died 5 minutes ago (its heartbeat froze then).
    frozen = datetime.now(UTC) - timedelta(minutes=5)
    async with stores.database.tenant_session(company_id) as session:
        await session.execute(
            update(SyncRun)
            .where(SyncRun.id == run.id)
            .values(status="running", started_at=frozen, heartbeat_at=frozen)
        )

    # The queue redelivers the job: it is adopted, not thrown away.
    resumed = await service.run(company_id, run.id)
    assert resumed.status == "succeeded", resumed.errors
    assert resumed.resumed_from == run.id
    assert resumed.fetched == len(replay.dataset.articles) + len(replay.dataset.tickets)
    async with stores.database.tenant_session(company_id) as session:
        old = await run_repo.get_sync_run(session, run.id)
    assert old is not None and old.status == "abandoned"
    assert "a redelivered job" in old.errors[-1]["message"]

    # A late second delivery of the same job is a no-op that points at the successor.
    again = await service.run(company_id, run.id)
    assert again.id == resumed.id


async def test_killed_sync_resumes_without_duplicates_or_losses(
    database: Database,
    database_urls: DatabaseUrls,
    tmp_path: Path,
    encoder: SentenceTransformerEncoder,
    make_company: MakeCompany,
) -> None:
    data_dir = tmp_path / "data"
    key = base64.b64encode(os.urandom(32)).decode()
    # Small pages and a little latency per request, so the kill lands mid-sync.
    dataset = FreshdeskDataset.load(articles=5, tickets=60)
    total = len(dataset.articles) + len(dataset.tickets)
    page_size = 5
    company_id = (await make_company("kill")).company_id
    stores = open_stores(database, data_dir, encoder, key)
    connector_id = await create_connector(stores, company_id, per_page=page_size)
    await stores.vectors.close()  # the worker process owns the embedded index until killed

    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(
        HELPDESK_DATABASE_URL=database_urls.runtime_url,
        HELPDESK_AUTO_MIGRATE="false",
        HELPDESK_DATA_DIR=str(data_dir),
        HELPDESK_ENCRYPTION_KEY=key,
        HELPDESK_SCHEDULER_ENABLED="false",
        HELPDESK_LOG_LEVEL="WARNING",
    )
    with running_replay(dataset, conversations="none", latency_s=0.05) as replay:
        worker = subprocess.Popen(  # noqa: ASYNC220 - returns at once; polled below
            [
                sys.executable,
                "-m",
                "tests.ingest.freshdesk_sync_process",
                company_id,
                str(connector_id),
                DOMAIN,
                str(replay.port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            # Wait until at least two pages were written and checkpointed.
            for _ in range(3000):
                assert worker.poll() is None, worker.communicate()[0].decode()[-3000:]
                async with database.tenant_session(company_id) as session:
                    runs = await run_repo.list_sync_runs(
                        session, connector_id=connector_id, limit=1
                    )
                if runs and runs[0].fetched >= 2 * page_size:
                    break
                await asyncio.sleep(0.02)
            else:
                pytest.fail("the worker checkpointed fewer than two pages in 60 s")
            worker.send_signal(signal.SIGKILL)
            await asyncio.to_thread(worker.wait, 30)
        finally:
            if worker.poll() is None:
                worker.kill()
        killed = await active_run(database, company_id, connector_id)
        assert killed.status == "running"
        assert 2 * page_size <= killed.fetched < total
        assert len(await document_chunks(database, company_id)) < total

        stores = open_stores(database, data_dir, encoder, key)
        try:
            # Its heartbeat is recent: a normal service still sees a sync in progress.
            with pytest.raises(Conflict):
                await stores.sync_service(replay, encoder).request_sync(
                    company_id, connector_id, trigger="manual"
                )
            # No one asks again: the reaper (as the scheduler process runs it) notices the
            # silent run once it passes the takeover threshold and queues its successor.
            takeover_after = timedelta(seconds=2)
            service = stores.sync_service(replay, encoder, takeover_after=takeover_after)
            jobs = JobQueue(InMemoryBroker(), service)
            await jobs.start()
            reaper = SyncScheduler(database, jobs, SystemClock())
            silent_since = killed.heartbeat_at
            assert silent_since is not None
            for _ in range(600):
                successor = await successor_of(database, company_id, killed.id)
                if successor is not None:
                    break
                await reaper.reap()
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the reaper never took the dead worker's run over")
            assert successor.created_at - silent_since < timedelta(seconds=60)
            assert successor.trigger == "takeover"
            resumed = await wait_finished(database, company_id, successor.id)
            await jobs.stop()
            assert resumed.status == "succeeded", resumed.errors
            async with database.tenant_session(company_id) as session:
                taken_over = await run_repo.get_sync_run(session, killed.id)
            assert taken_over is not None and taken_over.status == "abandoned"
            assert any(
                e.get("event") == "abandoned" and "worker lost" in e.get("message", "")
                for e in taken_over.errors
            )
            assert resumed.resumed_from == killed.id

            # Resumed from the last checkpoint: only unsaved pages are read again, so the two
            # runs together read each document exactly once.
            assert killed.fetched + resumed.fetched == total
            assert resumed.upserted + resumed.unchanged == resumed.fetched
            chunks = await document_chunks(database, company_id)
            assert set(chunks) == {f"article:{a['id']}" for a in dataset.articles} | {
                f"ticket:{t['id']}" for t in dataset.tickets
            }
            await assert_index_matches(stores, company_id, encoder.dimension)
            blobs = TenantBlobs(stores.blobs, company_id)
            assert len([key async for key in blobs.list_documents(SOURCE)]) == total
        finally:
            await stores.vectors.close()
