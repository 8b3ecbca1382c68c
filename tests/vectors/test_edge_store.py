"""What only the embedded engine promises: one shard directory per company, on disk, and
one owner process per directory (a second is refused at start; the healthcheck calls the
engine)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from vector_points import DIM, axis, chunk

from backend.vectors import EdgeVectorStore, SearchMode, namespace_for
from backend.vectors.edge import EngineInUse


def directory_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())  # owner.lock is a file


async def test_each_company_gets_its_own_shard_directory(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    await store.upsert("acme", [chunk("acme", "t1", "hello", dense=axis(0))])
    await store.upsert("globex", [chunk("globex", "t1", "hello", dense=axis(0))])
    await store.close()
    assert directory_names(tmp_path) == [
        namespace_for("acme"),
        namespace_for("globex"),
    ]


async def test_reads_never_create_a_shard(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path / "root", dense_dimension=DIM)
    assert await store.count("acme") == 0
    assert await store.query("acme", dense=axis(0), mode=SearchMode.DENSE) == []
    await store.delete_documents("acme", ["d1"])
    await store.close()
    assert not (tmp_path / "root" / namespace_for("acme")).exists()


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    first = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    await first.upsert(
        "acme", [chunk("acme", "t1", "note", dense=axis(0), internal=True, tags=["x"])]
    )
    await first.close()

    second = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    [hit] = await second.query("acme", dense=axis(0), mode=SearchMode.DENSE)
    assert hit.payload.internal is True
    assert hit.payload.tags == ["x"]
    assert await second.count("acme") == 1
    await second.close()


async def test_drop_company_deletes_the_directory(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    await store.upsert("acme", [chunk("acme", "t1", "hello", dense=axis(0))])
    await store.drop_company("acme")
    assert not (tmp_path / namespace_for("acme")).exists()
    await store.close()


_HOLDER = """
import sys, time
from pathlib import Path
from backend.vectors.edge import EdgeVectorStore
store = EdgeVectorStore(Path(sys.argv[1]), dense_dimension=4)
print("holding", flush=True)
time.sleep(120)
"""


def _start_holder(root: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


async def test_a_second_process_on_the_same_directory_is_refused_at_start(
    tmp_path: Path,
) -> None:
    holder = await asyncio.to_thread(_start_holder, tmp_path)
    try:
        with pytest.raises(EngineInUse) as refused:
            EdgeVectorStore(tmp_path, dense_dimension=DIM)
        assert f"pid {holder.pid}" in str(refused.value)
        assert "HELPDESK_QDRANT_URL" in str(refused.value)
    finally:
        holder.kill()
        await asyncio.to_thread(holder.wait, 30)
    # The kernel released the lock with the process: the directory can be owned again.
    store = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    assert await store.healthcheck()
    await store.close()


async def test_the_healthcheck_calls_the_engine(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    assert await store.healthcheck()
    # A real shard was opened and counted, not only the folder looked at.
    assert (tmp_path / "_healthcheck" / "edge_config.json").exists()
    await store.close()
    assert not await store.healthcheck()
    # A closed store gave its directory up; a successor owns it.
    successor = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    assert await successor.healthcheck()
    await successor.close()


# --- many companies: shards open lazily and close under budgets ---------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_the_open_shard_budget_closes_the_least_recently_used(tmp_path: Path) -> None:
    budget, extra = 2, 2
    companies = [f"co{i}" for i in range(budget + extra)]
    store = EdgeVectorStore(tmp_path, dense_dimension=DIM, max_open_shards=budget)
    for index, company in enumerate(companies[:budget]):
        await store.upsert(company, [chunk(company, f"d{index}", "hello", dense=axis(index))])
    fds_at_budget = open_fds()
    for index, company in enumerate(companies[budget:], start=budget):
        await store.upsert(company, [chunk(company, f"d{index}", "hello", dense=axis(index))])
        assert store.open_shard_count() <= budget
    # Every company, evicted or not, answers with its own point after reopening.
    for _round in range(2):
        for index, company in enumerate(companies):
            [hit] = await store.query(company, dense=axis(index), mode=SearchMode.DENSE)
            assert (hit.payload.company_id, hit.payload.document_id) == (company, f"d{index}")
            assert await store.count(company) == 1
            assert store.open_shard_count() <= budget
    # Touching twice as many companies as the budget holds no more descriptors than the
    # budget's worth of open shards did.
    assert open_fds() <= fds_at_budget
    await store.close()


async def test_the_least_recently_used_shard_is_the_one_closed(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path, dense_dimension=DIM, max_open_shards=2)
    for index, company in enumerate(("a1", "b2")):
        await store.upsert(company, [chunk(company, "d", "hello", dense=axis(index))])
    await store.count("a1")  # a1 is now more recent than b2
    await store.upsert("c3", [chunk("c3", "d", "hello", dense=axis(2))])
    with capture_logs() as logs:
        await store.count("a1")  # still open: not a cold read
        await store.count("b2")  # evicted: opened again
    cold = [entry for entry in logs if entry["event"] == "vectors.cold_search"]
    assert [entry["company_id"] for entry in cold] == ["b2"]
    await store.close()


async def test_the_memory_budget_closes_shards_too(tmp_path: Path) -> None:
    # A budget smaller than any shard keeps only the shard in use open.
    store = EdgeVectorStore(tmp_path, dense_dimension=DIM, open_shards_memory_bytes=1)
    for index, company in enumerate(("a1", "b2", "c3")):
        await store.upsert(company, [chunk(company, "d", "hello", dense=axis(index))])
        assert store.open_shard_count() == 1
    assert [await store.count(c) for c in ("a1", "b2", "c3")] == [1, 1, 1]
    await store.close()


async def test_a_cold_first_search_is_measured_and_logged(tmp_path: Path) -> None:
    first = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    await first.upsert("acme", [chunk("acme", "t1", "hello", dense=axis(0))])
    await first.close()
    store = EdgeVectorStore(tmp_path, dense_dimension=DIM)
    with capture_logs() as logs:
        [hit] = await store.query("acme", dense=axis(0), mode=SearchMode.DENSE)
        await store.query("acme", dense=axis(0), mode=SearchMode.DENSE)  # warm: not logged
        assert await store.query("nobody", dense=axis(0), mode=SearchMode.DENSE) == []
    assert hit.payload.document_id == "t1"
    [cold] = [entry for entry in logs if entry["event"] == "vectors.cold_search"]
    assert cold["company_id"] == "acme"
    assert 0 < cold["open_ms"] <= cold["total_ms"]
    assert cold["open_shards"] == 1
    await store.close()


def test_budgets_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_open_shards"):
        EdgeVectorStore(tmp_path / "a", dense_dimension=DIM, max_open_shards=0)
    with pytest.raises(ValueError, match="open_shards_memory_bytes"):
        EdgeVectorStore(tmp_path / "b", dense_dimension=DIM, open_shards_memory_bytes=0)
