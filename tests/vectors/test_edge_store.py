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
