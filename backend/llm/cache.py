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
import unicodedata
from collections.abc import Sequence
from typing import Any

import orjson

from backend.cache import CacheBackend, TenantCache
from backend.llm.types import LLMRequest

KEY_VERSION = "v1"


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def response_key(
    req: LLMRequest,
    *,
    route: Sequence[str],
    knowledge_generation: int,
    extra: dict[str, Any] | None = None,
) -> str:
    material = {
        "v": KEY_VERSION,
        "task": req.task,
        "route": list(route),
        "generation": knowledge_generation,
        "system": _normalise(req.system),
        "messages": [(m.role, _normalise(m.content)) for m in req.messages],
        "passages": [
            (p.id, hashlib.sha256(p.text.encode()).hexdigest()[:16], p.internal)
            for p in req.passages
        ],
        "language": req.language,
        "tone": dict(sorted((req.tone or {}).items())),
        "rating": req.rating,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "extra": extra or {},
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
