"""What only the server engine promises: versioned collections behind an alias, one per
company (``per_company``) or one shared by every company (``shared``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from qdrant_client import AsyncQdrantClient
from vector_points import DIM, SPARSE, axis, chunk

from backend.errors import BadRequest
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
    store = QdrantServerVectorStore(client, dense_dimension=DIM, layout="per_company")
    await store.ensure_company("acme")
    await store.ensure_company("acme")
    assert await aliases(client) == {"hd_acme": "hd_acme_v1"}
    assert await collections(client) == {"hd_acme_v1"}
    await store.close()


async def test_reindex_swap_replaces_the_live_collection() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = QdrantServerVectorStore(client, dense_dimension=DIM, layout="per_company")
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
    store = QdrantServerVectorStore(client, dense_dimension=DIM, layout="per_company")
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
    store = QdrantServerVectorStore(client, dense_dimension=DIM, layout="per_company")
    await store.upsert("acme", [chunk("acme", "a", "text", dense=axis(0))])
    await store.upsert("acme-eu", [chunk("acme-eu", "a", "text", dense=axis(0))])
    await store.reindex_swap("acme", batches([chunk("acme", "b", "text", dense=axis(0))]))
    await store.drop_company("acme")
    assert await aliases(client) == {"hd_acme-eu": "hd_acme-eu_v1"}
    assert await collections(client) == {"hd_acme-eu_v1"}
    assert await store.count("acme-eu") == 1
    await store.close()


# --- the shared layout -------------------------------------------------------------------


def shared_store(client: AsyncQdrantClient) -> QdrantServerVectorStore:
    return QdrantServerVectorStore(client, dense_dimension=DIM, layout="shared")


async def test_every_company_shares_one_collection_per_vector_layout() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = shared_store(client)
    for company in ("acme", "globex", "initech"):
        await store.upsert(company, [chunk(company, "t1", "hello", dense=axis(0))])
    assert await aliases(client) == {"hd_shared_8d": "hd_shared_8d_v1"}
    assert await collections(client) == {"hd_shared_8d_v1"}
    # Same document id in three companies: three points, each counted by its own company.
    assert (await client.count("hd_shared_8d", exact=True)).count == 3
    assert [await store.count(c) for c in ("acme", "globex", "initech")] == [1, 1, 1]
    await store.close()


async def test_drop_company_in_the_shared_collection_removes_only_its_points() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = shared_store(client)
    await store.upsert("acme", [chunk("acme", "a", "acme text", dense=axis(0))])
    await store.upsert("globex", [chunk("globex", "a", "globex text", dense=axis(0))])
    await store.drop_company("acme")
    assert await store.count("acme") == 0
    [hit] = await store.query("globex", dense=axis(0), mode=SearchMode.DENSE)
    assert hit.payload.company_id == "globex"
    assert await collections(client) == {"hd_shared_8d_v1"}
    # The company can start again in the same collection.
    await store.upsert("acme", [chunk("acme", "b", "again", dense=axis(1))])
    assert await store.count("acme") == 1
    await store.close()


async def test_reindex_in_the_shared_collection_replaces_only_that_company() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = shared_store(client)
    await store.upsert(
        "acme",
        [
            chunk("acme", "old", "old text", dense=axis(0)),
            chunk("acme", "kept", "kept, old wording", dense=axis(2)),
        ],
    )
    await store.upsert("globex", [chunk("globex", "old", "globex old", dense=axis(0))])

    name = await store.reindex_swap(
        "acme",
        batches(
            [chunk("acme", "kept", "kept, new wording", dense=axis(2))],
            [chunk("acme", "new", "new text", dense=axis(1))],
        ),
    )

    assert name == "hd_shared_8d"
    hits = await store.query("acme", dense=axis(0), limit=5, mode=SearchMode.DENSE)
    assert sorted(h.payload.document_id for h in hits) == ["kept", "new"]
    assert {h.payload.text for h in hits} == {"kept, new wording", "new text"}
    # The other company's point with the same document id was not touched.
    [globex] = await store.query("globex", dense=axis(0), mode=SearchMode.DENSE)
    assert globex.payload.text == "globex old"
    await store.close()


async def test_a_failed_shared_reindex_never_empties_the_company() -> None:
    client = AsyncQdrantClient(location=":memory:")
    store = shared_store(client)
    await store.upsert("acme", [chunk("acme", "old", "old text", dense=axis(0))])
    with pytest.raises(Exception, match="belongs to company 'globex'"):
        await store.reindex_swap(
            "acme",
            batches(
                [chunk("acme", "new1", "new", dense=axis(0))],
                [chunk("globex", "x", "not ours", dense=axis(0))],
            ),
        )
    # Old and the new points written so far, none lost; globex got nothing.
    assert await store.count("acme") == 2
    assert await store.count("globex") == 0
    await store.close()


async def test_promotion_needs_a_sharded_server() -> None:
    store = shared_store(AsyncQdrantClient(location=":memory:"))
    with pytest.raises(BadRequest) as refused:
        await store.promote_tenant("acme")
    assert refused.value.code == "sharding_unavailable"
    await store.close()


async def test_a_per_company_collection_is_adopted_into_the_shared_one() -> None:
    client = AsyncQdrantClient(location=":memory:")
    before = QdrantServerVectorStore(client, dense_dimension=DIM, layout="per_company")
    await before.upsert(
        "acme",
        [chunk("acme", f"d{i}", f"ticket {i}", dense=axis(i), internal=i == 0) for i in range(5)],
    )
    await before.upsert("globex", [chunk("globex", "g", "globex", dense=axis(0))])
    expected = await before.query("acme", dense=axis(1), limit=5, mode=SearchMode.DENSE)

    after = shared_store(client)
    assert await after.adopt_per_company("acme", batch_size=2) == 5
    assert await after.adopt_per_company("acme") == 0  # nothing left to adopt
    hits = await after.query("acme", dense=axis(1), limit=5, mode=SearchMode.DENSE)
    # Same points, same payloads, same best match (the others tie at score 0).
    assert sorted((str(h.id), h.payload.model_dump_json()) for h in hits) == sorted(
        (str(h.id), h.payload.model_dump_json()) for h in expected
    )
    assert hits[0].payload.document_id == expected[0].payload.document_id == "d1"
    sparse = await after.query(
        "acme", sparse=SPARSE.encode_query("ticket"), limit=5, mode=SearchMode.SPARSE
    )
    assert len(sparse) == 5
    assert "hd_acme" not in await aliases(client)
    # Another company's old collection is left for its own adoption.
    assert (await aliases(client))["hd_globex"] == "hd_globex_v1"
    assert await after.count("globex") == 0
    await after.close()
