"""What only the embedded engine promises: one shard directory per company, on disk."""

from __future__ import annotations

from pathlib import Path

from vector_points import DIM, axis, chunk

from backend.vectors import EdgeVectorStore, SearchMode, namespace_for


def directory_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


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
