"""The shared layout on a real Qdrant server, checked at the protocol: the collection is
custom-sharded with a fallback shard key, ``company_id`` is a tenant index, every request
names the company's shard key with the shared one as fallback, and a promotion runs
Qdrant's tiered-multitenancy steps in order. qdrant-client's local mode has no shards, so
these requests go to a fake of the REST API (tests/vectors/qdrant_rest_fake.py)."""

from __future__ import annotations

import pytest
from qdrant_rest_fake import FakeQdrant
from vector_points import DIM, axis, chunk

from backend.vectors import QdrantServerVectorStore, SearchMode


async def no_wait(_seconds: float) -> None:
    return None


def sharded_store(fake: FakeQdrant) -> QdrantServerVectorStore:
    return QdrantServerVectorStore(
        fake.client(),
        dense_dimension=DIM,
        layout="shared",
        custom_sharding=True,
        sleep=no_wait,
        promotion_poll_s=1.0,
        promotion_timeout_s=10.0,
    )


async def test_the_shared_collection_is_custom_sharded_with_a_tenant_index() -> None:
    fake = FakeQdrant()
    store = sharded_store(fake)
    await store.ensure_company("acme")
    await store.ensure_company("globex")  # the collection exists: nothing more is created

    created = next(r for r in fake.requests if r.path == "/collections/hd_shared_8d_v1")
    assert created.method == "PUT"
    assert created.body["sharding_method"] == "custom"
    tenant_index = next(
        r.body
        for r in fake.requests
        if r.path.endswith("/index") and r.body["field_name"] == "company_id"
    )
    assert tenant_index["field_schema"] == {"type": "keyword", "is_tenant": True}
    assert fake.shard_keys["hd_shared_8d_v1"] == {"_shared": "Active"}
    assert fake.aliases == {"hd_shared_8d": "hd_shared_8d_v1"}
    assert sum(r.path == "/collections/hd_shared_8d_v1" for r in fake.requests) == 1
    await store.close()


async def test_every_request_routes_by_the_company_shard_key_with_fallback() -> None:
    fake = FakeQdrant()
    store = sharded_store(fake)
    await store.upsert("acme", [chunk("acme", "t1", "hello", dense=axis(0))])
    await store.query("acme", dense=axis(0), mode=SearchMode.DENSE)
    await store.count("acme")
    await store.delete_documents("acme", ["t1"])

    routed = [r for r in fake.requests if "/points" in r.path]
    assert [r.path.rsplit("/", 1)[-1] for r in routed] == ["points", "query", "count", "delete"]
    for request in routed:
        assert request.body["shard_key"] == {"target": "acme", "fallback": "_shared"}
    # Reads and deletes also carry the tenant condition.
    for request in routed[1:]:
        tenant = {"key": "company_id", "match": {"value": "acme"}}
        assert tenant in request.body["filter"]["must"]
    await store.close()


async def test_promotion_copies_then_switches_then_cleans_up() -> None:
    fake = FakeQdrant(polls_until_active=2)
    store = sharded_store(fake)
    await store.ensure_company("bigco")
    fake.requests.clear()

    promotion = await store.promote_tenant("bigco")

    assert fake.calls() == [
        ("PUT", "/collections/hd_shared_8d_v1/shards"),
        ("POST", "/collections/hd_shared_8d_v1/cluster"),
        ("POST", "/collections/hd_shared_8d_v1/points/delete"),
    ]
    create, replicate, clean = (r for r in fake.requests if r.method != "GET")
    assert create.body == {"shard_key": "bigco", "initial_state": "Partial"}
    assert replicate.body["replicate_points"]["from_shard_key"] == "_shared"
    assert replicate.body["replicate_points"]["to_shard_key"] == "bigco"
    tenant = {"key": "company_id", "match": {"value": "bigco"}}
    assert replicate.body["replicate_points"]["filter"]["must"] == [tenant]
    # The copies leave the shared shard only once the new shard is active.
    assert clean.body["shard_key"] == "_shared"
    assert clean.body["filter"]["must"] == [tenant]
    polls = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/cluster")]
    assert len(polls) >= 3
    assert fake.shard_keys["hd_shared_8d_v1"]["bigco"] == "Active"
    assert promotion.steps[-1] == "deleted bigco's points from '_shared'"
    await store.close()


async def test_a_second_promotion_only_repeats_the_idempotent_clean_up() -> None:
    fake = FakeQdrant(polls_until_active=0)
    store = sharded_store(fake)
    await store.promote_tenant("bigco")
    fake.requests.clear()
    await store.promote_tenant("bigco")
    assert fake.calls() == [("POST", "/collections/hd_shared_8d_v1/points/delete")]
    await store.close()


async def test_a_promotion_that_never_activates_times_out_and_keeps_the_shared_copy() -> None:
    fake = FakeQdrant(polls_until_active=10_000)
    store = sharded_store(fake)
    with pytest.raises(TimeoutError, match="run the promotion again to resume"):
        await store.promote_tenant("bigco")
    # Nothing was deleted from the shared shard: the company is still served from it.
    assert not any(r.path.endswith("/points/delete") for r in fake.requests)
    await store.close()


async def test_dropping_a_promoted_company_removes_its_shard_key() -> None:
    fake = FakeQdrant(polls_until_active=0)
    store = sharded_store(fake)
    await store.promote_tenant("bigco")
    await store.drop_company("bigco")
    assert "bigco" not in fake.shard_keys["hd_shared_8d_v1"]
    assert "_shared" in fake.shard_keys["hd_shared_8d_v1"]
    await store.close()
