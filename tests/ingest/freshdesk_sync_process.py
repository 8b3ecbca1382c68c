"""Run one Freshdesk connector sync in its own process, as a worker would.

Used by the killed-run test: the stack comes from ``HELPDESK_*`` environment variables
through ``open_stack`` (the test's database, a temporary data dir, the shared credentials
key); only the HTTP client differs, reaching the test's replay server on 127.0.0.1.

    python -m tests.ingest.freshdesk_sync_process COMPANY CONNECTOR_ID DOMAIN PORT
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from backend.adapters.http import RateLimiter
from backend.config import Settings
from backend.egress import Egress, EgressPolicy, StaticResolver
from backend.embeddings.sparse import SparseEncoder
from backend.ingest.sync import IndexingParts, SyncService
from backend.stack import open_stack
from bench.freshdesk_replay import LoopbackTransport


async def sync_once(company_id: str, connector_id: uuid.UUID, domain: str, port: int) -> None:
    settings = Settings()
    async with open_stack(settings) as state:
        # The platform name resolves to the replay on loopback: only the test-only policy
        # accepts that, and it still runs in front of the replay transport.
        egress = Egress(
            EgressPolicy(allow_loopback_for_tests=True),
            resolver=StaticResolver({domain: "127.0.0.1"}),
            transport=LoopbackTransport({domain: port}),
        )
        service = SyncService(
            database=state.database,
            connectors=state.connectors,
            parts=IndexingParts(
                vectors=state.vectors,
                dense=state.dense,
                sparse=SparseEncoder(),
                blobs=state.blobs,
            ),
            egress=egress,
            clock=state.clock,
            limiter_for=lambda _connector: RateLimiter.unlimited(clock=state.clock),
        )
        run = await service.request_sync(company_id, connector_id, trigger="manual")
        print(f"run {run.id}", flush=True)
        finished = await service.run(company_id, run.id)
        print(f"finished {finished.status}", flush=True)


if __name__ == "__main__":
    company, connector, host, port_text = sys.argv[1:5]
    asyncio.run(sync_once(company, uuid.UUID(connector), host, int(port_text)))
