"""Password hashing with argon2id (``argon2-cffi``, its RFC 9106 low-memory profile).

Hashing and verifying take tens of milliseconds of CPU on purpose, so both run in a worker
thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """A hash to verify against when the e-mail is unknown, so that an unknown address
    costs as long as a wrong password (no account discovery by timing)."""
    return _HASHER.hash("decoy password, never a real one")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _decoy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; ``None`` (no password yet) never matches,
    after spending the same time as a real check."""
    return await asyncio.to_thread(_verify, stored, password)
