"""Interactions written through the durable outbox: ids are handed out at once, each row is
on disk before the answer leaves, rows land in one transaction per company (under that
company's row-level security), readers that flush see them, a row Postgres refuses (a NUL
byte, a deleted company) is quarantined without costing its batch, a killed process's
outbox is adopted and written exactly once, and closing writes what is queued — against
the real Postgres."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from backend.assistant.recorder import InteractionRecorder
from backend.clock import SystemClock
from backend.db.repositories import interactions as interaction_repo
from backend.db.session import Database
from backend.outbox import QUARANTINE_NAME, FileOutbox
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
    database: Database, make_company: MakeCompany, tmp_path: Path
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    # A long interval: nothing is written until a reader flushes.
    recorder = InteractionRecorder(
        database, SystemClock(), outbox=FileOutbox(tmp_path), flush_interval_s=60, batch_size=1000
    )
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
    database: Database, make_company: MakeCompany, tmp_path: Path
) -> None:
    acme = await make_company("acme")
    recorder = InteractionRecorder(
        database, SystemClock(), outbox=FileOutbox(tmp_path), flush_interval_s=0.01, batch_size=5
    )
    try:
        ids = {recorder.record(company_id=acme.company_id, **row(f"q{i}")) for i in range(12)}
        for _ in range(200):
            if recorder.pending == 0 and await ids_of(database, acme.company_id) == ids:
                break
            await _tick()
        assert await ids_of(database, acme.company_id) == ids
    finally:
        await recorder.close()


def quarantined_total(kind: str = "interaction") -> float:
    return REGISTRY.get_sample_value("helpdesk_outbox_quarantined_total", {"kind": kind}) or 0.0


async def test_a_bad_row_is_quarantined_and_the_rest_of_its_batch_is_written(
    database: Database, make_company: MakeCompany, tmp_path: Path
) -> None:
    acme = await make_company("acme")
    before = quarantined_total()
    recorder = InteractionRecorder(
        database, SystemClock(), outbox=FileOutbox(tmp_path), flush_interval_s=60
    )
    try:
        good = [recorder.record(company_id=acme.company_id, **row(f"q{i}")) for i in range(5)]
        # Postgres refuses a NUL byte in text: the batch fails, the row is found and kept.
        nul = recorder.record(company_id=acme.company_id, **row("bad\x00question"))
        good += [recorder.record(company_id=acme.company_id, **row(f"r{i}")) for i in range(5)]
        # No such company: the foreign key refuses the row however often it is tried.
        orphan = recorder.record(company_id="no-such-company", **row("orphan"))
        await recorder.flush()

        assert await ids_of(database, acme.company_id) == set(good)
        assert recorder.pending == 0
        assert quarantined_total() == before + 2
        kept = [
            json.loads(line)
            for line in (tmp_path / QUARANTINE_NAME).read_text("utf-8").splitlines()
        ]
        assert {k["record"]["row"]["id"] for k in kept} == {str(nul), str(orphan)}
        assert all(k["reason"] for k in kept)
    finally:
        await recorder.close()


_KILLED_WRITER = textwrap.dedent(
    """
    import json, os, signal, sys, uuid
    from pathlib import Path
    from backend.outbox import FileOutbox
    outbox = FileOutbox(Path(sys.argv[1]))
    record = json.loads(sys.argv[2])
    for i in range(int(sys.argv[3])):
        question = {"id": str(uuid.uuid4()), "question": f"served before the crash {i}"}
        outbox.append({**record, "row": {**record["row"], **question}})
    outbox.seal()  # one sealed segment and one still open when the process dies
    outbox.append(record)
    print(outbox.directory, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _write_then_die(root: Path, record: dict[str, Any], count: int) -> Path:
    """Run a process that appends ``count`` records plus ``record`` and is SIGKILLed."""
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(root), json.dumps(record), str(count)],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    left_behind = Path(killed.stdout.decode().strip())
    assert left_behind.is_dir()
    return left_behind


async def test_a_killed_processs_outbox_is_adopted_and_written_once(
    database: Database, make_company: MakeCompany, tmp_path: Path
) -> None:
    acme = await make_company("acme")
    last = {
        **row("the last one"),
        "id": str(uuid.uuid4()),
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    record = {"kind": "interaction", "company_id": acme.company_id, "row": last}
    left_behind = await asyncio.to_thread(_write_then_die, tmp_path, record, 3)

    for _ in range(2):  # a second adopter finds nothing left to write twice
        recorder = InteractionRecorder(
            database, SystemClock(), outbox=FileOutbox(tmp_path), flush_interval_s=60
        )
        await recorder.start()
        await recorder.close()
    async with database.tenant_session(acme.company_id) as session:
        found = await interaction_repo.list_interactions(session, task=None, limit=50, offset=0)
    questions = sorted(i.question for i in found)
    assert questions == sorted(
        [f"served before the crash {i}" for i in range(3)] + ["the last one"]
    )
    assert not await asyncio.to_thread(left_behind.exists)


async def test_close_writes_what_is_queued(
    database: Database, make_company: MakeCompany, tmp_path: Path
) -> None:
    acme = await make_company("acme")
    recorder = InteractionRecorder(
        database, SystemClock(), outbox=FileOutbox(tmp_path), flush_interval_s=60
    )
    queued = recorder.record(company_id=acme.company_id, **row("last words"))
    await recorder.close()
    assert await ids_of(database, acme.company_id) == {queued}


async def _tick() -> None:
    await asyncio.sleep(0.01)


async def test_rows_beyond_the_memory_budget_wait_on_disk_and_are_written(
    database: Database, make_company: MakeCompany, tmp_path: Path
) -> None:
    acme = await make_company("acme")
    # No memory budget at all: every sealed segment is dropped from memory, read back later.
    recorder = InteractionRecorder(
        database, SystemClock(), outbox=FileOutbox(tmp_path), flush_interval_s=60, max_in_memory=0
    )
    try:
        ids = {recorder.record(company_id=acme.company_id, **row(f"q{i}")) for i in range(3)}
        await recorder.flush()
        ids |= {recorder.record(company_id=acme.company_id, **row(f"r{i}")) for i in range(2)}
        await recorder.flush()
        assert recorder.pending == 0
        assert await ids_of(database, acme.company_id) == ids
    finally:
        await recorder.close()
