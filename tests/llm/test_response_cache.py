"""The response cache's epochs: an entry is served only under the epoch it was stored in,
an invalidation (or a lost epoch key) voids every older entry of that company and of no
other, and an unreachable Redis degrades to misses — on the in-process cache, a real Redis
and a real 6-node Redis Cluster."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from backend.cache import CacheBackend, MemoryCacheBackend, RedisCacheBackend, TenantCache
from backend.llm.cache import ResponseCache, ResponseInvalidator, response_key
from tests.cluster_fixtures import CACHE_TEST_REDIS_URL as REDIS_URL
from tests.cluster_fixtures import cache_backend, redis_cluster

__all__ = ["cache_backend", "redis_cluster"]  # imported so pytest can find the fixtures
NAMESPACE = ResponseCache.namespace_for("answer")


@pytest.fixture
async def companies(cache_backend: CacheBackend) -> AsyncIterator[tuple[str, str]]:
    a, b = f"rc-{secrets.token_hex(4)}", f"rc-{secrets.token_hex(4)}"
    yield a, b
    for company in (a, b):
        await TenantCache(cache_backend, company).purge()


def key_for(question: str) -> str:
    return response_key({"task": "answer", "inputs": {"question": question}}, route=["x:y"])


async def test_an_entry_is_served_until_the_company_is_invalidated(
    cache_backend: CacheBackend, companies: tuple[str, str]
) -> None:
    a, b = (ResponseCache(cache_backend, c, ttl_seconds=60) for c in companies)
    key = key_for("How do I reset my password?")

    first = await a.lookup(NAMESPACE, key)
    assert first.value is None
    assert first.epoch is not None
    await a.put(NAMESPACE, key, {"text": "Open Settings."}, epoch=first.epoch)
    hit = await a.lookup(NAMESPACE, key)
    assert hit.value == {"text": "Open Settings."}
    assert hit.epoch == first.epoch

    # The same key in another company is another entry.
    other = await b.lookup(NAMESPACE, key)
    assert other.value is None
    assert other.epoch is not None
    await b.put(NAMESPACE, key, {"text": "Ask your admin."}, epoch=other.epoch)

    await ResponseInvalidator(cache_backend)(companies[0])
    voided = await a.lookup(NAMESPACE, key)
    assert voided.value is None
    assert voided.epoch not in (None, first.epoch)
    # Company B's entry outlives company A's invalidation.
    assert (await b.lookup(NAMESPACE, key)).value == {"text": "Ask your admin."}


async def test_a_result_computed_across_an_invalidation_is_never_served(
    cache_backend: CacheBackend, companies: tuple[str, str]
) -> None:
    cache = ResponseCache(cache_backend, companies[0], ttl_seconds=60)
    key = key_for("refunds")
    before = await cache.lookup(NAMESPACE, key)
    assert before.epoch is not None
    # Knowledge changes while the answer is being generated from the old knowledge...
    await cache.invalidate()
    await cache.put(NAMESPACE, key, {"text": "stale"}, epoch=before.epoch)
    # ...so what was stored under the old epoch is not served under the new one.
    assert (await cache.lookup(NAMESPACE, key)).value is None


async def test_losing_the_epoch_key_voids_older_entries(
    cache_backend: CacheBackend, companies: tuple[str, str]
) -> None:
    cache = ResponseCache(cache_backend, companies[0], ttl_seconds=60)
    key = key_for("shipping")
    found = await cache.lookup(NAMESPACE, key)
    assert found.epoch is not None
    await cache.put(NAMESPACE, key, {"text": "3 to 5 days"}, epoch=found.epoch)
    # A restart without persistence, or an eviction, loses the token but not the entry.
    assert await TenantCache(cache_backend, companies[0]).delete("epoch", "responses")
    after = await cache.lookup(NAMESPACE, key)
    assert after.value is None
    assert after.epoch not in (None, found.epoch)


async def test_get_many_and_set_if_absent_on_every_backend(
    cache_backend: CacheBackend, companies: tuple[str, str]
) -> None:
    tenant = TenantCache(cache_backend, companies[0])
    await tenant.set("answer-answer", "k1", b"one")
    assert await tenant.get_many(("answer-answer", "k1"), ("answer-answer", "missing")) == [
        b"one",
        None,
    ]
    assert await tenant.set_if_absent("epoch", "probe", b"first") == b"first"
    assert await tenant.set_if_absent("epoch", "probe", b"second") == b"first"


async def test_an_unreachable_redis_is_a_miss_and_stores_nothing() -> None:
    down = RedisCacheBackend.from_url("redis://127.0.0.1:1/0", socket_timeout=0.2)
    try:
        cache = ResponseCache(down, "acme", ttl_seconds=60)
        found = await cache.lookup(NAMESPACE, key_for("anything"))
        assert found.value is None
        assert found.epoch is None
        await cache.invalidate()  # logged and counted, never raised
    finally:
        await down.close()


def test_the_shared_flag_tells_process_local_caches_apart() -> None:
    assert MemoryCacheBackend().shared is False
    assert RedisCacheBackend.from_url(REDIS_URL).shared is True
