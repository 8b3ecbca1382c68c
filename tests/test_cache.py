"""The cache against a real Redis, a real six-node Redis Cluster and the in-process LRU."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.crc import key_slot

from backend.cache import (
    CacheBackend,
    MemoryCacheBackend,
    RedisCacheBackend,
    TenantCache,
    build_cache_backend,
    escape_glob,
)
from backend.errors import AppError, InvalidCompanyId, Unavailable
from tests.cluster_fixtures import (
    CACHE_TEST_REDIS_URL as REDIS_URL,
)
from tests.cluster_fixtures import (
    RedisClusterInfo,
    cache_backend,
    redis_cluster,
)

__all__ = ["cache_backend", "redis_cluster"]  # imported so pytest can find the fixtures


def new_company() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def tenants(
    cache_backend: CacheBackend,
) -> AsyncIterator[tuple[TenantCache, TenantCache]]:
    a, b = TenantCache(cache_backend, new_company()), TenantCache(cache_backend, new_company())
    yield a, b
    await a.purge()
    await b.purge()


async def test_set_get_delete_round_trip(tenants: tuple[TenantCache, TenantCache]) -> None:
    cache, _ = tenants
    assert await cache.get("answers", "q1") is None
    await cache.set("answers", "q1", b"\x00binary\xff")
    assert await cache.get("answers", "q1") == b"\x00binary\xff"
    await cache.set_json("answers", "q2", {"text": "안녕하세요", "citations": [1, 2]})
    assert await cache.get_json("answers", "q2") == {"text": "안녕하세요", "citations": [1, 2]}
    assert await cache.delete("answers", "q1") is True
    assert await cache.delete("answers", "q1") is False
    assert await cache.get("answers", "q1") is None


async def test_ttl_expires_entries(tenants: tuple[TenantCache, TenantCache]) -> None:
    cache, _ = tenants
    await cache.set("answers", "short", b"v", ttl_seconds=0.15)
    await cache.set("answers", "long", b"v", ttl_seconds=60)
    assert await cache.get("answers", "short") == b"v"
    await asyncio.sleep(0.3)
    assert await cache.get("answers", "short") is None
    assert await cache.get("answers", "long") == b"v"


async def test_incr_counts_and_keeps_first_window(
    tenants: tuple[TenantCache, TenantCache],
) -> None:
    cache, other = tenants
    assert await cache.incr("ratelimit", "minute", ttl_seconds=0.2) == 1
    assert await cache.incr("ratelimit", "minute", 4, ttl_seconds=0.2) == 5
    assert await other.incr("ratelimit", "minute") == 1
    await asyncio.sleep(0.35)
    # The window set by the first increment expired; the next one starts a new counter.
    assert await cache.incr("ratelimit", "minute", ttl_seconds=0.2) == 1
    assert await other.get("ratelimit", "minute") == b"1"


async def test_another_company_cannot_see_or_purge_keys(
    tenants: tuple[TenantCache, TenantCache],
) -> None:
    a, b = tenants
    await a.set("answers", "shared-name", b"a's answer")
    await a.set("similar", "t-1", b"a's list")
    assert await b.get("answers", "shared-name") is None
    assert await b.delete("answers", "shared-name") is False

    await b.set("answers", "shared-name", b"b's answer")
    assert await b.purge() == 1
    assert await a.get("answers", "shared-name") == b"a's answer"
    assert await a.get("similar", "t-1") == b"a's list"

    assert await a.purge_namespace("similar") == 1
    assert await a.get("answers", "shared-name") == b"a's answer"
    assert await a.purge() == 1
    assert await a.get("answers", "shared-name") is None


async def test_keys_carry_the_tenant_hash_tag() -> None:
    cache = TenantCache(MemoryCacheBackend(), "acme")
    assert cache.full_key("answers", "abc:def") == "hd:{acme}:answers:abc:def"


@pytest.mark.parametrize(
    ("namespace", "key"),
    [
        ("answers", "{other}"),
        ("answers", "x}"),
        ("answers", ""),
        ("answers", "line\nbreak"),
        ("answers", "k" * 513),
        ("Answers", "k"),
        ("ans:wers", "k"),
        ("a*", "k"),
        ("", "k"),
    ],
)
async def test_malformed_keys_are_rejected(namespace: str, key: str) -> None:
    cache = TenantCache(MemoryCacheBackend(), "acme")
    with pytest.raises(AppError) as caught:
        await cache.set(namespace, key, b"v")
    assert caught.value.code == "invalid_cache_key"


def test_company_id_is_validated() -> None:
    with pytest.raises(InvalidCompanyId):
        TenantCache(MemoryCacheBackend(), "Acme*")
    with pytest.raises(InvalidCompanyId):
        TenantCache(MemoryCacheBackend(), "{acme}")


async def test_glob_characters_in_keys_do_not_widen_a_purge() -> None:
    backend = MemoryCacheBackend()
    cache = TenantCache(backend, "acme")
    await cache.set("answers", "*", b"star")
    await cache.set("answers", "[x]", b"bracket")
    await cache.set("answerz", "k", b"other namespace")
    assert await cache.purge_namespace("answers") == 2
    assert await cache.get("answerz", "k") == b"other namespace"
    assert escape_glob("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert await backend.delete_matching(escape_glob("hd:{acme}:answerz:k")) == 1


async def test_memory_backend_is_a_bounded_lru() -> None:
    clock = FakeClock()
    backend = MemoryCacheBackend(max_entries=3, clock=clock)
    for key in ("a", "b", "c"):
        await backend.set(key, key.encode())
    assert await backend.get("a") == b"a"  # "a" is now the most recently used
    await backend.set("d", b"d")
    assert await backend.get("b") is None  # least recently used went first
    assert [await backend.get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]

    await backend.set("ttl", b"v", ttl_seconds=5)
    clock.now += 4.9
    assert await backend.get("ttl") == b"v"
    clock.now += 0.2
    assert await backend.get("ttl") is None
    assert len(backend) == 2


async def test_hits_and_misses_are_counted_per_namespace() -> None:
    cache = TenantCache(MemoryCacheBackend(), new_company())
    hits = sample("helpdesk_cache_requests_total", {"namespace": "metrics", "result": "hit"})
    misses = sample("helpdesk_cache_requests_total", {"namespace": "metrics", "result": "miss"})
    await cache.get("metrics", "k")
    await cache.set("metrics", "k", b"v")
    await cache.get("metrics", "k")
    await cache.get("metrics", "k")
    labels_hit = {"namespace": "metrics", "result": "hit"}
    labels_miss = {"namespace": "metrics", "result": "miss"}
    assert sample("helpdesk_cache_requests_total", labels_hit) == hits + 2
    assert sample("helpdesk_cache_requests_total", labels_miss) == misses + 1


async def test_unreachable_redis_degrades_to_misses_and_counts_errors() -> None:
    clock = FakeClock()
    backend = RedisCacheBackend.from_url(f"redis://127.0.0.1:{closed_port()}/0", clock=clock)
    cache = TenantCache(backend, "acme")
    before = {
        op: sample("helpdesk_cache_errors_total", {"operation": op})
        for op in ("get", "set", "incr", "delete", "ping", "delete_matching")
    }

    assert await cache.get("answers", "k") is None
    clock.now += 5  # past the cool-down, so each call really tries the server
    await cache.set("answers", "k", b"v", ttl_seconds=10)
    clock.now += 5
    assert await cache.incr("ratelimit", "k") is None
    clock.now += 5
    assert await cache.delete("answers", "k") is False
    clock.now += 5
    assert await backend.ping() is False
    with pytest.raises(Unavailable) as caught:
        await cache.purge()
    assert caught.value.code == "cache_unavailable"

    for op in before:
        assert sample("helpdesk_cache_errors_total", {"operation": op}) == before[op] + 1, op
    await backend.close()


async def test_cool_down_skips_redis_after_a_failure() -> None:
    clock = FakeClock()
    port = closed_port()
    backend = RedisCacheBackend.from_url(f"redis://127.0.0.1:{port}/0", clock=clock)
    assert await backend.get("hd:{acme}:answers:k") is None

    # Start a real server on that port: during the cool-down it is still not asked.
    server = await asyncio.create_subprocess_exec(
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        probe = Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                if await probe.ping():
                    break
            except OSError:
                pass
            await asyncio.sleep(0.05)
        await probe.aclose()
        assert await backend.ping() is False
        clock.now += 1.5
        assert await backend.ping() is True
        await backend.set("k", b"v")
        assert await backend.get("k") == b"v"
    finally:
        await backend.close()
        server.terminate()
        await server.wait()


async def test_unreachable_cluster_degrades_to_misses() -> None:
    backend = build_cache_backend(None, f"127.0.0.1:{closed_port()},127.0.0.1:{closed_port()}")
    before = sample("helpdesk_cache_errors_total", {"operation": "get"})
    cache = TenantCache(backend, "acme")
    assert await cache.get("answers", "k") is None
    await cache.set("answers", "k", b"v")
    assert sample("helpdesk_cache_errors_total", {"operation": "get"}) == before + 1
    await backend.close()


async def test_build_cache_backend_picks_what_is_configured(
    redis_cluster: RedisClusterInfo,
) -> None:
    assert isinstance(build_cache_backend(None, None), MemoryCacheBackend)
    standalone = build_cache_backend(REDIS_URL, None)
    assert isinstance(standalone, RedisCacheBackend)
    assert not standalone.is_cluster
    assert await standalone.ping()
    await standalone.close()
    cluster = build_cache_backend(REDIS_URL, redis_cluster.nodes_setting)
    assert isinstance(cluster, RedisCacheBackend)
    assert cluster.is_cluster
    assert await cluster.ping()
    await cluster.close()


async def _owner_port(cluster: RedisClusterInfo, slot: int) -> int:
    """The port of the primary serving ``slot``, asked from the cluster itself."""
    node = Redis(host=cluster.host, port=cluster.ports[0])
    try:
        for start, end, primary, *_ in await node.execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return int(primary[1])
    finally:
        await node.aclose()
    raise AssertionError(f"slot {slot} is not served")


async def _count_in_slot(cluster: RedisClusterInfo, port: int, slot: int) -> int:
    node = Redis(host=cluster.host, port=port)
    try:
        return int(await node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
    finally:
        await node.aclose()


async def test_cluster_keeps_a_tenant_in_one_slot_and_purges_it(
    redis_cluster: RedisClusterInfo,
) -> None:
    backend = RedisCacheBackend.from_cluster_nodes(redis_cluster.seeds)
    # Pick two tenants whose slots live on different primaries, so the purge must go to the
    # right node rather than happen to be sent to the only one.
    a = TenantCache(backend, new_company())
    a_slot = key_slot(a.full_key("answers", "x").encode())
    a_port = await _owner_port(redis_cluster, a_slot)
    while True:
        b = TenantCache(backend, new_company())
        b_slot = key_slot(b.full_key("answers", "x").encode())
        b_port = await _owner_port(redis_cluster, b_slot)
        if b_port != a_port:
            break
    try:
        keys = [("answers", f"q{i}") for i in range(40)] + [("similar", f"t{i}") for i in range(5)]
        for namespace, key in keys:
            await a.set(namespace, key, b"a")
            await b.set(namespace, key, b"b")
        assert {key_slot(a.full_key(ns, k).encode()) for ns, k in keys} == {a_slot}
        assert await _count_in_slot(redis_cluster, a_port, a_slot) == len(keys)
        assert await _count_in_slot(redis_cluster, b_port, b_slot) == len(keys)

        assert await a.purge_namespace("similar") == 5
        assert await a.purge() == 40
        assert await _count_in_slot(redis_cluster, a_port, a_slot) == 0
        assert await a.get("answers", "q0") is None
        assert await b.get("answers", "q0") == b"b"
        assert await _count_in_slot(redis_cluster, b_port, b_slot) == len(keys)
    finally:
        await a.purge()
        await b.purge()
        await backend.close()
