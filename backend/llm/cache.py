"""Cached responses, per company, voided at once when the company's knowledge changes.

A response is stored under a hash of everything that determines it (the task, the
normalised inputs, the route — providers and models — and, where the caller adds them, the
company's settings and knowledge generation), inside the company's Redis hash tag
(``hd:{company}:…``) through :class:`backend.cache.TenantCache`, so two companies never
share an entry and a company's entries are purged together.

Invalidation. Each company has a cache *epoch*: a random token stored beside its entries.
Every entry records the epoch it was computed under, and a lookup reads the epoch and the
entry in one round trip (``MGET``; both keys share the hash tag, so one slot in a cluster)
and serves the entry only if the two match. Anything that changes what an answer could say
— a sync that changed documents, a deletion, a GDPR erasure (and any future way of
changing a company's assistant settings, which a shared cache does not key on) — calls
:meth:`ResponseCache.invalidate`, which draws a new token: every older entry is dead at
once, in every process, with no database read on the hit path.

Why this is safe under races: a caller reads the epoch *before* it retrieves and generates,
and stores its result under that epoch. If knowledge changes in between, the result is
stored under an epoch that is already dead and is never served. If the epoch key is lost
(a Redis restart, an eviction), the next lookup draws a fresh token, which voids everything
older — losing it can only cost hits, never serve a stale answer.

The in-process cache is private to one process, so an invalidation in another process
(``helpdesk ingest`` against a shared database) could not reach it; callers on that backend
(``backend.shared`` is false) also key on the knowledge generation read from Postgres.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from backend.cache import CACHE_REQUESTS, CacheBackend, TenantCache

KEY_VERSION: Final = "v2"
_EPOCH_NAMESPACE: Final = "epoch"
_EPOCH_KEY: Final = "responses"


def response_key(material: dict[str, Any], *, route: Sequence[str]) -> str:
    """The cache key: a hash of the normalised inputs (task, question, ticket, filters…
    and anything else the caller puts in ``material``) and the route that would answer."""
    payload = {"v": KEY_VERSION, "inputs": material, "route": list(route)}
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _new_epoch() -> bytes:
    return secrets.token_hex(8).encode()


@dataclass(frozen=True)
class CacheLookup:
    """What a lookup found: the entry (``None`` on a miss) and the epoch to store under
    (``None`` when the cache is unreachable: then nothing is stored)."""

    value: dict[str, Any] | None
    epoch: str | None


class ResponseCache:
    """Get/put finished responses for one company, by namespace (one per task)."""

    def __init__(self, backend: CacheBackend, company_id: str, *, ttl_seconds: int) -> None:
        self._cache = TenantCache(backend, company_id)
        self._ttl = ttl_seconds

    @staticmethod
    def namespace_for(task: str) -> str:
        # One namespace per task, so hit/miss metrics are per task.
        return f"answer-{task.replace('_', '-')}"

    async def lookup(self, namespace: str, key: str) -> CacheLookup:
        found = await self._lookup(namespace, key)
        result = "miss" if found.value is None else "hit"
        CACHE_REQUESTS.labels(namespace=namespace, result=result).inc()
        return found

    async def _lookup(self, namespace: str, key: str) -> CacheLookup:
        raw_epoch, raw_entry = await self._cache.get_many(
            (_EPOCH_NAMESPACE, _EPOCH_KEY), (namespace, key)
        )
        if raw_epoch is None:
            # First use, or the token was lost: a fresh one voids anything stored before.
            raw_epoch = await self._cache.set_if_absent(_EPOCH_NAMESPACE, _EPOCH_KEY, _new_epoch())
            return CacheLookup(None, raw_epoch.decode() if raw_epoch is not None else None)
        epoch = raw_epoch.decode()
        if raw_entry is None:
            return CacheLookup(None, epoch)
        try:
            entry = orjson.loads(raw_entry)
        except orjson.JSONDecodeError:
            return CacheLookup(None, epoch)
        if not isinstance(entry, dict) or entry.get("epoch") != epoch:
            return CacheLookup(None, epoch)
        value = entry.get("value")
        return CacheLookup(value if isinstance(value, dict) else None, epoch)

    async def put(self, namespace: str, key: str, value: dict[str, Any], *, epoch: str) -> None:
        """Store ``value`` under the epoch its lookup returned (read before computing it)."""
        await self._cache.set_json(namespace, key, {"epoch": epoch, "value": value}, self._ttl)

    async def invalidate(self) -> None:
        """Void every cached response of this company (new knowledge, deletions)."""
        await void_cached_answers(self._cache)


async def void_cached_answers(cache: TenantCache) -> None:
    """Draw a new epoch for the company of ``cache``: every older entry is dead at once."""
    await cache.set(_EPOCH_NAMESPACE, _EPOCH_KEY, _new_epoch())


class ResponseInvalidator:
    """The hook ingest calls when a company's knowledge changed (see the module doc)."""

    def __init__(self, backend: CacheBackend) -> None:
        self._backend = backend

    async def __call__(self, company_id: str) -> None:
        # The TTL is irrelevant to invalidation; ResponseCache only needs the backend.
        await ResponseCache(self._backend, company_id, ttl_seconds=1).invalidate()
