"""A short-lived, in-process memory of resolved credentials.

Resolving an API key costs a database transaction on every request; a few seconds of
memory removes that from the hot path. The price is a bounded revocation delay: a key
revoked in another process keeps working here for at most ``ttl_seconds`` (revocations
made through this process's admin API or services take effect at once — they clear it).
Set ``HELPDESK_AUTH_CACHE_SECONDS=0`` for immediate revocation everywhere.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from backend.tenancy.service import Tenant


class CredentialCache:
    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[float, Tenant]] = OrderedDict()

    def get(self, credential_digest: str) -> Tenant | None:
        if self._ttl <= 0:
            return None
        entry = self._entries.get(credential_digest)
        if entry is None:
            return None
        expires, tenant = entry
        if expires <= self._monotonic():
            del self._entries[credential_digest]
            return None
        return tenant

    def put(self, credential_digest: str, tenant: Tenant) -> None:
        if self._ttl <= 0:
            return
        self._entries[credential_digest] = (self._monotonic() + self._ttl, tenant)
        self._entries.move_to_end(credential_digest)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
