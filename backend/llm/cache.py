"""Cached responses, per company, keyed so that new knowledge voids old answers at once.

The key is a hash of everything that determines a response: the task, the route (the
providers and models that would answer), the normalised prompt inputs, the ids and text of
the retrieved passages, and the company's knowledge generation (bumped by every sync that
changes something). Entries live under the company's Redis hash tag (``hd:{company}:…``)
through :class:`backend.cache.TenantCache`, so two companies never share an entry, and a
company's entries are purged together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from backend.cache import CacheBackend, TenantCache

KEY_VERSION = "v1"


def response_key(
    material: dict[str, Any], *, route: Sequence[str], knowledge_generation: int
) -> str:
    """The cache key: the normalised prompt inputs (task, messages, passage ids and text
    hashes, language, tone…), the route that would answer, and the knowledge generation."""
    payload = {
        "v": KEY_VERSION,
        "inputs": material,
        "route": list(route),
        "generation": knowledge_generation,
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ResponseCache:
    """Get/put a finished response body for one company and task."""

    def __init__(self, backend: CacheBackend, company_id: str, *, ttl_seconds: int) -> None:
        self._cache = TenantCache(backend, company_id)
        self._ttl = ttl_seconds

    @staticmethod
    def _namespace(task: str) -> str:
        # One namespace per task, so hit/miss metrics are per task.
        return f"answer-{task.replace('_', '-')}"

    async def get(self, task: str, key: str) -> dict[str, Any] | None:
        value = await self._cache.get_json(self._namespace(task), key)
        return value if isinstance(value, dict) else None

    async def put(self, task: str, key: str, value: dict[str, Any]) -> None:
        await self._cache.set_json(self._namespace(task), key, value, self._ttl)
