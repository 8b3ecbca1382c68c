"""The cache: Redis, Redis Cluster or an in-process LRU, reached only through tenant prefixes.

A :class:`CacheBackend` stores raw keys. Application code never sees one: it holds a
:class:`TenantCache` built for one company, and every key it touches becomes
``hd:{company_id}:<namespace>:<key>``. The braces are a Redis Cluster hash tag, so all of a
company's keys hash to one slot, live on one node, and :meth:`TenantCache.purge` can find
and delete them together.

The cache is an accelerator, never a source of truth: when Redis is unreachable, reads miss
and writes are dropped, an error counter goes up, and the request carries on. Only purges
(GDPR deletion, tenant removal) raise, because a deletion that silently did nothing is worse
than one that visibly failed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

import orjson
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from backend.errors import BadRequest, Unavailable
from backend.tenancy.company_id import validate_company_id

__all__ = [
    "CACHE_ERRORS",
    "CACHE_REQUESTS",
    "KEY_PREFIX",
    "CacheBackend",
    "MemoryCacheBackend",
    "RedisCacheBackend",
    "TenantCache",
    "build_cache_backend",
    "escape_glob",
]

KEY_PREFIX: Final = "hd"
"""First segment of every key this service writes, so a shared Redis can tell ours apart."""

# Labels stay low-cardinality on purpose: company ids would create one series per tenant.
CACHE_ERRORS = Counter(
    "helpdesk_cache_errors",
    "Cache operations that failed because the cache backend was unreachable or erred.",
    ["operation"],
)
CACHE_REQUESTS = Counter(
    "helpdesk_cache_requests",
    "Cache reads by namespace and result (hit or miss).",
    ["namespace", "result"],
)

_NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_MAX_KEY_LENGTH = 512
_DELETE_BATCH = 500
_SCAN_COUNT = 500

T = TypeVar("T")


@runtime_checkable
class CacheBackend(Protocol):
    """Raw key/value storage with TTLs. Reached only through :class:`TenantCache`.

    ``get``/``set``/``delete``/``incr``/``ping`` never raise on an unreachable server: they
    degrade to a miss, a no-op, ``None`` or ``False``. ``delete_matching`` raises
    :class:`backend.errors.Unavailable` (code ``cache_unavailable``) instead, see module doc.
    """

    @property
    def shared(self) -> bool:
        """True when every process of the deployment sees the same entries (Redis)."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, *keys: str) -> list[bytes | None]:
        """One round trip for several keys (all under one hash tag); misses are ``None``."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: bytes) -> bytes | None:
        """Store ``value`` unless the key exists; return what the key holds afterwards
        (``None`` if the cache is down)."""
        ...

    async def delete(self, *keys: str) -> int: ...

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int | None:
        """Add ``amount``; a new counter gets ``ttl_seconds``. ``None`` if the cache is down."""
        ...

    async def delete_matching(self, pattern: str) -> int:
        """Delete every key matching a Redis glob ``pattern``; return how many were deleted.

        A pattern containing a Redis Cluster hash tag is served by the one node owning that
        slot, so callers should always pass a tagged pattern.
        """
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


def escape_glob(text: str) -> str:
    """Escape Redis glob metacharacters so ``text`` matches itself literally."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _ttl_milliseconds(ttl_seconds: float | None) -> int | None:
    if ttl_seconds is None:
        return None
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    return max(1, round(ttl_seconds * 1000))


# --- Redis -----------------------------------------------------------------------------------

_REDIS_FAILURES: Final = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


class RedisCacheBackend:
    """A standalone Redis or a Redis Cluster behind one interface.

    Build it with :meth:`from_url` or :meth:`from_cluster_nodes`. Timeouts are short and
    retries off: a slow cache must not slow a request down by more than a fraction of a
    second. After a connection failure the backend skips Redis for ``cooldown_seconds``
    so a dead server does not cost a connect attempt on every request.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        cooldown_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._down_until = 0.0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = 0.5,
        cooldown_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> RedisCacheBackend:
        client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=socket_timeout,
            socket_timeout=socket_timeout,
            # redis-py >= 6 retries connection errors with exponential backoff by default,
            # which turns one dead cache into seconds of latency per request.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        return cls(client, cooldown_seconds=cooldown_seconds, clock=clock)

    @classmethod
    def from_cluster_nodes(
        cls,
        nodes: str | list[tuple[str, int]],
        *,
        password: str | None = None,
        socket_timeout: float = 0.5,
        cooldown_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> RedisCacheBackend:
        """``nodes`` is ``"host:port,host:port"`` or a list of pairs; any reachable seed works."""
        seeds = parse_cluster_nodes(nodes) if isinstance(nodes, str) else nodes
        if not seeds:
            raise ValueError("a Redis Cluster needs at least one seed node")
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in seeds],
            password=password,
            socket_connect_timeout=socket_timeout,
            socket_timeout=socket_timeout,
            # One immediate retry lets the client refresh its slot map after a failover.
            retry=Retry(NoBackoff(), 1),
        )
        return cls(client, cooldown_seconds=cooldown_seconds, clock=clock)

    @property
    def is_cluster(self) -> bool:
        return isinstance(self._client, RedisCluster)

    @property
    def shared(self) -> bool:
        return True

    async def _guarded(
        self, operation: str, call: Callable[[], Awaitable[T]]
    ) -> tuple[bool, T | None]:
        """Run ``call``; on a cache failure count it and return ``(False, None)``."""
        if self._clock() < self._down_until:
            CACHE_ERRORS.labels(operation=operation).inc()
            return False, None
        try:
            return True, await call()
        except _REDIS_FAILURES:
            CACHE_ERRORS.labels(operation=operation).inc()
            self._down_until = self._clock() + self._cooldown_seconds
            return False, None

    async def get(self, key: str) -> bytes | None:
        _, value = await self._guarded("get", lambda: self._client.get(key))
        # The clients are built with decode_responses=False, so values come back as bytes.
        return value if isinstance(value, bytes) else None

    async def get_many(self, *keys: str) -> list[bytes | None]:
        # MGET is one command: in a cluster every key must hash to one slot, which keys of
        # one company do (they share its hash tag).
        _, values = await self._guarded("get", lambda: self._client.mget(list(keys)))
        if not isinstance(values, list):
            return [None] * len(keys)
        return [value if isinstance(value, bytes) else None for value in values]

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        px = _ttl_milliseconds(ttl_seconds)
        await self._guarded("set", lambda: self._client.set(key, value, px=px))

    async def set_if_absent(self, key: str, value: bytes) -> bytes | None:
        async def call() -> bytes | None:
            if await self._client.set(key, value, nx=True):
                return value
            # Someone else's value won the race (or was there already): use theirs.
            current = await self._client.get(key)
            return current if isinstance(current, bytes) else None

        _, stored = await self._guarded("set", call)
        return stored

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        _, count = await self._guarded("delete", lambda: self._client.delete(*keys))
        return int(count or 0)

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int | None:
        px = _ttl_milliseconds(ttl_seconds)

        async def call() -> int:
            value = int(await self._client.incrby(key, amount))
            # Only the call that created the counter sets its lifetime; later increments
            # keep the original window (a fixed-window counter, as rate limits expect).
            if px is not None and value == amount:
                await self._client.pexpire(key, px)
            return value

        _, value = await self._guarded("incr", call)
        return value

    async def delete_matching(self, pattern: str) -> int:
        try:
            deleted = 0
            batch: list[bytes] = []
            async for key in self._scan(pattern):
                batch.append(key)
                if len(batch) >= _DELETE_BATCH:
                    deleted += int(await self._client.delete(*batch))
                    batch.clear()
            if batch:
                deleted += int(await self._client.delete(*batch))
            return deleted
        except _REDIS_FAILURES as exc:
            CACHE_ERRORS.labels(operation="delete_matching").inc()
            raise Unavailable(
                "the cache could not be purged; retry when it is reachable",
                code="cache_unavailable",
            ) from exc

    async def _scan(self, pattern: str) -> AsyncIterator[bytes]:
        if isinstance(self._client, RedisCluster):
            # In a cluster, SCAN only sees the node it is sent to. A tagged pattern's keys all
            # hash to one slot, so ask the primary that owns it rather than every node.
            # (During a live reshard some keys may sit on the importing node for a moment;
            # the purge would then need repeating, which callers do on failure anyway.)
            await self._client.initialize()
            node = self._client.get_node_from_key(pattern)
            if node is None:
                raise RedisClusterException(f"no node owns the slot of {pattern!r}")
            cursor = 0
            while True:
                raw_cursor, keys = await self._client.execute_command(
                    "SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_COUNT, target_nodes=node
                )
                for key in keys:
                    yield bytes(key)
                # redis-py's cluster client answers SCAN with a {node name: cursor} map.
                if isinstance(raw_cursor, dict):
                    raw_cursor = raw_cursor[node.name]
                cursor = int(raw_cursor)
                if cursor == 0:
                    return
        else:
            async for key in self._client.scan_iter(match=pattern, count=_SCAN_COUNT):
                yield key

    async def ping(self) -> bool:
        ok, result = await self._guarded("ping", lambda: self._client.ping())
        return ok and bool(result)

    async def close(self) -> None:
        await self._client.aclose()


def parse_cluster_nodes(nodes: str) -> list[tuple[str, int]]:
    """``"10.0.0.1:7000, 10.0.0.2:7001"`` → ``[("10.0.0.1", 7000), ("10.0.0.2", 7001)]``."""
    seeds: list[tuple[str, int]] = []
    for item in nodes.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"cluster node {item!r} is not host:port")
        seeds.append((host.strip("[]"), int(port)))
    return seeds


# --- In-process ------------------------------------------------------------------------------


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a Redis glob (``*``, ``?``, ``[...]``, ``[^...]``, ``\\x``) to a regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("^")
                if negate:
                    body = body[1:]
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


class MemoryCacheBackend:
    """An in-process cache for the embedded default and tests: TTL-aware, bounded LRU.

    Per process, so replicas do not share it; that is acceptable for a cache, and the
    embedded default runs one process.
    """

    def __init__(
        self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        # key -> (value, expires_at or None); order is least- to most-recently used.
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    def __len__(self) -> int:
        self._evict_expired()
        return len(self._entries)

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at = entry[1]
        if expires_at is not None and expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def _store(self, key: str, value: bytes, expires_at: float | None) -> None:
        self._entries[key] = (value, expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def _evict_expired(self) -> None:
        now = self._clock()
        expired = [k for k, (_, exp) in self._entries.items() if exp is not None and exp <= now]
        for key in expired:
            del self._entries[key]

    @property
    def shared(self) -> bool:
        return False

    async def get(self, key: str) -> bytes | None:
        entry = self._live(key)
        return None if entry is None else entry[0]

    async def get_many(self, *keys: str) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        px = _ttl_milliseconds(ttl_seconds)
        self._store(key, bytes(value), None if px is None else self._clock() + px / 1000)

    async def set_if_absent(self, key: str, value: bytes) -> bytes | None:
        entry = self._live(key)
        if entry is not None:
            return entry[0]
        self._store(key, bytes(value), None)
        return bytes(value)

    async def delete(self, *keys: str) -> int:
        deleted = 0
        for key in keys:
            if self._live(key) is not None:
                del self._entries[key]
                deleted += 1
        return deleted

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int | None:
        px = _ttl_milliseconds(ttl_seconds)
        entry = self._live(key)
        if entry is None:
            expires_at = None if px is None else self._clock() + px / 1000
            value = amount
        else:
            try:
                value = int(entry[0]) + amount
            except ValueError:
                # Same contract as Redis INCRBY on a non-integer value.
                raise BadRequest(
                    "cached value is not an integer", code="cache_type_error"
                ) from None
            expires_at = entry[1]
        self._store(key, str(value).encode(), expires_at)
        return value

    async def delete_matching(self, pattern: str) -> int:
        regex = _glob_to_regex(pattern)
        self._evict_expired()
        matching = [key for key in self._entries if regex.fullmatch(key)]
        for key in matching:
            del self._entries[key]
        return len(matching)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()


def build_cache_backend(
    redis_url: str | None, cluster_nodes: str | None, *, max_memory_entries: int = 10_000
) -> CacheBackend:
    """The backend the settings ask for: a cluster, a standalone Redis, or in-process.

    ``HELPDESK_REDIS_CLUSTER_NODES`` wins over ``HELPDESK_REDIS_URL`` when both are set,
    because a cluster's nodes also answer a standalone client until a MOVED reply.
    """
    if cluster_nodes and cluster_nodes.strip():
        return RedisCacheBackend.from_cluster_nodes(cluster_nodes)
    if redis_url:
        return RedisCacheBackend.from_url(redis_url)
    return MemoryCacheBackend(max_memory_entries)


# --- Tenant view -----------------------------------------------------------------------------


class TenantCache:
    """One company's view of the cache: the only way application code reaches a key.

    Keys are composed as ``hd:{company_id}:<namespace>:<key>``. The namespace is a short
    lower-case word (``answers``, ``ratelimit``...) that also labels the hit/miss metric;
    the key is free text except for ``{``/``}`` (which would read as a second hash tag to
    humans and tools) and control characters. No method accepts a full key, so holding
    company A's ``TenantCache`` gives no way to read or change company B's entries.
    """

    def __init__(self, backend: CacheBackend, company_id: str) -> None:
        self._backend = backend
        self._company_id = validate_company_id(company_id)
        self._prefix = f"{KEY_PREFIX}:{{{self._company_id}}}:"

    @property
    def company_id(self) -> str:
        return self._company_id

    def full_key(self, namespace: str, key: str) -> str:
        """The stored key for ``(namespace, key)``, for logs and tests; validated."""
        return self._prefix + _check_namespace(namespace) + ":" + _check_key(key)

    async def get(self, namespace: str, key: str) -> bytes | None:
        value = await self._backend.get(self.full_key(namespace, key))
        CACHE_REQUESTS.labels(namespace=namespace, result="miss" if value is None else "hit").inc()
        return value

    async def set(
        self, namespace: str, key: str, value: bytes, ttl_seconds: float | None = None
    ) -> None:
        await self._backend.set(self.full_key(namespace, key), value, ttl_seconds)

    async def get_many(self, *entries: tuple[str, str]) -> list[bytes | None]:
        """Several ``(namespace, key)`` entries in one round trip (one hash tag, one slot).
        Not counted in the hit/miss metric: the caller knows which reads were hits."""
        return await self._backend.get_many(*(self.full_key(ns, key) for ns, key in entries))

    async def set_if_absent(self, namespace: str, key: str, value: bytes) -> bytes | None:
        """Store ``value`` (no TTL) unless the entry exists; return the entry's value now."""
        return await self._backend.set_if_absent(self.full_key(namespace, key), value)

    async def get_json(self, namespace: str, key: str) -> Any | None:
        """The JSON value stored at ``key``, or ``None`` on a miss or unreadable entry."""
        raw = await self.get(namespace, key)
        if raw is None:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None

    async def set_json(
        self, namespace: str, key: str, value: Any, ttl_seconds: float | None = None
    ) -> None:
        await self.set(namespace, key, orjson.dumps(value), ttl_seconds)

    async def delete(self, namespace: str, key: str) -> bool:
        return await self._backend.delete(self.full_key(namespace, key)) > 0

    async def incr(
        self, namespace: str, key: str, amount: int = 1, ttl_seconds: float | None = None
    ) -> int | None:
        """Add to a counter (created with ``ttl_seconds``); ``None`` if the cache is down."""
        return await self._backend.incr(self.full_key(namespace, key), amount, ttl_seconds)

    async def purge_namespace(self, namespace: str) -> int:
        """Delete this company's keys in one namespace. Raises ``Unavailable`` if down."""
        pattern = escape_glob(self._prefix + _check_namespace(namespace) + ":") + "*"
        return await self._backend.delete_matching(pattern)

    async def purge(self) -> int:
        """Delete every key of this company (tenant removal). Raises ``Unavailable`` if down."""
        return await self._backend.delete_matching(escape_glob(self._prefix) + "*")


def _check_namespace(namespace: str) -> str:
    if not _NAMESPACE_RE.fullmatch(namespace):
        raise BadRequest(
            "cache namespace must be 1-32 characters of a-z, 0-9, '_' and '-'",
            code="invalid_cache_key",
        )
    return namespace


def _check_key(key: str) -> str:
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise BadRequest(
            f"cache key must be 1-{_MAX_KEY_LENGTH} characters", code="invalid_cache_key"
        )
    if "{" in key or "}" in key or any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise BadRequest(
            "cache key must not contain braces or control characters", code="invalid_cache_key"
        )
    return key
