"""Interactions written in batches: ids are handed out at once, rows land in one
transaction per company (under that company's row-level security), readers that flush see
them, a row that can never be written is dropped after a few tries without blocking the
others, and closing writes what is queued — against the real Postgres."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import REGISTRY

from backend.assistant.recorder import InteractionRecorder
from backend.clock import SystemClock
from backend.db.repositories import interactions as interaction_repo
from backend.db.session import Database
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


def row(question: str) -> dict[str, Any]:
    return {
        "task": "answer",
        "question": question,
        "ticket_ref": None,
        "answer": f"answer to {question}",
        "citations": [{"index": 1, "document_id": "d1"}],
        "provider": "extractive",
        "model": "extractive-v1",
        "latency_ms": 3,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
        "cache_hit": True,
        "api_key_id": None,
    }


async def ids_of(database: Database, company_id: str) -> set[uuid.UUID]:
    async with database.tenant_session(company_id) as session:
        found = await interaction_repo.list_interactions(session, task=None, limit=500, offset=0)
    return {i.id for i in found}


async def test_rows_are_batched_per_company_and_isolated(
    database: Database, make_company: MakeCompany
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    # A long interval: nothing is written until a reader flushes.
    recorder = InteractionRecorder(database, SystemClock(), flush_interval_s=60, batch_size=1000)
    try:
        acme_ids = {recorder.record(company_id=acme.company_id, **row(f"a{i}")) for i in range(30)}
        globex_ids = {recorder.record(company_id=globex.company_id, **row("g")) for _ in range(3)}
        assert recorder.pending == 33
        assert await ids_of(database, acme.company_id) == set()

        await recorder.flush()
        assert recorder.pending == 0
        assert await ids_of(database, acme.company_id) == acme_ids
        # Each company sees its own rows only.
        assert await ids_of(database, globex.company_id) == globex_ids
    finally:
        await recorder.close()


async def test_the_background_writer_flushes_by_itself(
    database: Database, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    recorder = InteractionRecorder(database, SystemClock(), flush_interval_s=0.01, batch_size=5)
    try:
        ids = {recorder.record(company_id=acme.company_id, **row(f"q{i}")) for i in range(12)}
        for _ in range(200):
            if recorder.pending == 0 and await ids_of(database, acme.company_id) == ids:
                break
            await _tick()
        assert await ids_of(database, acme.company_id) == ids
    finally:
        await recorder.close()


async def test_a_row_that_cannot_be_written_is_dropped_without_blocking_others(
    database: Database, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    dropped_before = REGISTRY.get_sample_value("helpdesk_interactions_dropped_total") or 0.0
    recorder = InteractionRecorder(database, SystemClock(), flush_interval_s=60)
    try:
        # No such company: the foreign key refuses the row on every try.
        recorder.record(company_id="no-such-company", **row("orphan"))
        kept = recorder.record(company_id=acme.company_id, **row("kept"))
        await recorder.flush()
        assert await ids_of(database, acme.company_id) == {kept}
        assert recorder.pending == 1
        for _ in range(10):
            await recorder.flush()
        assert recorder.pending == 0
        dropped = REGISTRY.get_sample_value("helpdesk_interactions_dropped_total") or 0.0
        assert dropped == dropped_before + 1
    finally:
        await recorder.close()


async def test_close_writes_what_is_queued(database: Database, make_company: MakeCompany) -> None:
    acme = await make_company("acme")
    recorder = InteractionRecorder(database, SystemClock(), flush_interval_s=60)
    queued = recorder.record(company_id=acme.company_id, **row("last words"))
    await recorder.close()
    assert await ids_of(database, acme.company_id) == {queued}


async def _tick() -> None:
    await asyncio.sleep(0.01)
