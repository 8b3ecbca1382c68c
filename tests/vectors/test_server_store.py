"""What only the server engine promises: versioned collections behind a per-company alias."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from qdrant_client import AsyncQdrantClient
from vector_points import DIM, axis, chunk

from backend.vectors import ChunkPoint, QdrantServerVectorStore, SearchMode

pytestmark = pytest.mark.filterwarnings(
    "ignore:Payload indexes have no effect in the local Qdrant:UserWarning"
)


async def aliases(client: AsyncQdrantClient) -> dict[str, str]:
    response = await client.get_aliases()
    return {a.alias_name: a.collection_name for a in response.aliases}


async def collections(client: AsyncQdrantClient) -> set[str]:
    return {c.name for c in (await client.get_collections()).collections}


async def batches(*groups: Sequence[ChunkPoint]) -> AsyncIterator[Sequence[ChunkPoint]]:
    for group in groups:
        yield group


async def test_company_collection_sits_behind_an_alias() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = QdrantServerVectorStore(client, dense_dimension=DIM)
    await store.ensure_company("acme")
    await store.ensure_company("acme")
    assert await aliases(client) == {"hd_acme": "hd_acme_v1"}
    assert await collections(client) == {"hd_acme_v1"}
    await store.close()


async def test_reindex_swap_replaces_the_live_collection() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = QdrantServerVectorStore(client, dense_dimension=DIM)
    await store.upsert("acme", [chunk("acme", "old", "old text", dense=axis(0))])

    new_name = await store.reindex_swap(
        "acme",
        batches(
            [chunk("acme", "new1", "new text", dense=axis(0))],
            [chunk("acme", "new2", "more new text", dense=axis(1))],
        ),
    )

    assert new_name == "hd_acme_v2"
    assert await aliases(client) == {"hd_acme": "hd_acme_v2"}
    assert await collections(client) == {"hd_acme_v2"}
    hits = await store.query("acme", dense=axis(0), limit=5, mode=SearchMode.DENSE)
    assert [h.payload.document_id for h in hits] == ["new1", "new2"]
    await store.close()


async def test_a_failed_reindex_leaves_the_live_collection_alone() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = QdrantServerVectorStore(client, dense_dimension=DIM)
    await store.upsert("acme", [chunk("acme", "old", "old text", dense=axis(0))])

    with pytest.raises(Exception, match="belongs to company 'globex'"):
        await store.reindex_swap(
            "acme",
            batches(
                [chunk("acme", "new1", "new", dense=axis(0))],
                [chunk("globex", "x", "not ours", dense=axis(0))],
            ),
        )

    assert await aliases(client) == {"hd_acme": "hd_acme_v1"}
    assert await collections(client) == {"hd_acme_v1"}
    assert await store.count("acme") == 1
    await store.close()


async def test_drop_company_removes_alias_and_every_version() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = QdrantServerVectorStore(client, dense_dimension=DIM)
    await store.upsert("acme", [chunk("acme", "a", "text", dense=axis(0))])
    await store.upsert("acme-eu", [chunk("acme-eu", "a", "text", dense=axis(0))])
    await store.reindex_swap("acme", batches([chunk("acme", "b", "text", dense=axis(0))]))
    await store.drop_company("acme")
    assert await aliases(client) == {"hd_acme-eu": "hd_acme-eu_v1"}
    assert await collections(client) == {"hd_acme-eu_v1"}
    assert await store.count("acme-eu") == 1
    await store.close()
