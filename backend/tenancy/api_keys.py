"""API key material: random, shown once, stored as a SHA-256 hash with a visible prefix.

Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching needed);
the prefix (``hdk_`` + 8 characters) lets people tell keys apart in listings and logs.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass

KEY_SCHEME = "hdk_"
_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 43  # 43 base62 characters ≈ 256 bits
PREFIX_LENGTH = len(KEY_SCHEME) + 8


@dataclass(frozen=True)
class NewApiKey:
    plaintext: str
    prefix: str
    key_hash: bytes


def generate_api_key() -> NewApiKey:
    plaintext = KEY_SCHEME + "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))
    return NewApiKey(plaintext, plaintext[:PREFIX_LENGTH], hash_api_key(plaintext))


def hash_api_key(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode("utf-8")).digest()


def looks_like_api_key(value: str) -> bool:
    return (
        value.startswith(KEY_SCHEME)
        and len(value) == len(KEY_SCHEME) + _SECRET_LENGTH
        and all(c in _ALPHABET for c in value[len(KEY_SCHEME) :])
    )
