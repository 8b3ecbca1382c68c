"""AES-256-GCM for connector credentials at rest.

A sealed value is ``version (1 byte) ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16)``.
The associated data binds it to where it belongs (company and connector, see
:func:`connector_associated_data`): copied into another company's row, it no longer
decrypts, even with the right key. The version byte leaves room to change the format or
rotate keys later without guessing what old rows hold.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.errors import AppError
from backend.tenancy.company_id import validate_company_id

__all__ = [
    "KEY_BYTES",
    "EncryptionKeyError",
    "SecretBox",
    "SecretDecryptionError",
    "connector_associated_data",
    "decode_key",
    "generate_key",
    "load_or_create_key",
]

KEY_BYTES: Final = 32
FORMAT_VERSION: Final = 1
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_HEADER_BYTES: Final = 1 + _NONCE_BYTES


class EncryptionKeyError(AppError):
    """The configured encryption key is missing, malformed or the wrong length."""

    status_code = 500
    code = "invalid_encryption_key"


class SecretDecryptionError(AppError):
    """A sealed secret could not be opened: tampered, moved to another row, or re-keyed."""

    status_code = 500
    code = "secret_decryption_failed"


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        length = len(key) if isinstance(key, bytes | bytearray) else "non-bytes"
        raise EncryptionKeyError(
            f"the encryption key must be exactly {KEY_BYTES} bytes (got {length}); "
            "generate one with: python -c 'import base64,os; "
            "print(base64.b64encode(os.urandom(32)).decode())'"
        )
    return bytes(key)


def decode_key(encoded: str) -> bytes:
    """Decode a base64 key (the ``HELPDESK_ENCRYPTION_KEY`` form) and check its length."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EncryptionKeyError("the encryption key is not valid base64") from exc
    return _check_key(key)


def connector_associated_data(company_id: str, connector_id: str) -> bytes:
    """The associated data that binds a connector's credentials to their row.

    NUL separators keep it unambiguous (neither part can contain one), and the label keeps
    a connector ciphertext from ever being accepted where another kind of secret is read.
    """
    validate_company_id(company_id)
    if not connector_id or "\x00" in connector_id:
        raise ValueError("connector_id must be non-empty and contain no NUL")
    return b"\x00".join(
        [b"helpdesk/connector-credentials", company_id.encode(), connector_id.encode()]
    )


class SecretBox:
    """Seals and opens small secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(_check_key(key))
        self._key = key

    def derive_key(self, purpose: bytes) -> bytes:
        """A 32-byte key for another purpose (e.g. signing), derived with HMAC-SHA256 so
        neither key reveals the other."""
        return hmac.new(self._key, b"helpdesk derive: " + purpose, hashlib.sha256).digest()

    @classmethod
    def from_base64(cls, encoded: str) -> SecretBox:
        return cls(decode_key(encoded))

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        # 96-bit random nonces: safe for far more messages than a credentials table holds
        # (NIST's bound for random nonces under one key is 2**32 encryptions).
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, associated_data)
        return bytes([FORMAT_VERSION]) + nonce + sealed

    def decrypt(self, token: bytes, associated_data: bytes) -> bytes:
        if len(token) < _HEADER_BYTES + _TAG_BYTES:
            raise SecretDecryptionError("sealed secret is truncated")
        if token[0] != FORMAT_VERSION:
            raise SecretDecryptionError(f"unknown sealed-secret format version {token[0]}")
        nonce, sealed = token[1:_HEADER_BYTES], token[_HEADER_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, associated_data)
        except InvalidTag:
            raise SecretDecryptionError(
                "sealed secret does not verify: it was altered, belongs to another "
                "company or connector, or was sealed with a different key"
            ) from None


def load_or_create_key(path: Path | str) -> bytes:
    """The development key at ``path`` (base64 text), created with mode 0600 if missing.

    Production sets ``HELPDESK_ENCRYPTION_KEY`` instead; a key file next to the data is only
    as safe as the disk it is on. Creation is atomic (write a private temporary file, then
    hard-link it into place), so concurrent first starts agree on one key.
    """
    path = Path(path)
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    encoded = base64.b64encode(generate_key()) + b"\n"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # another process won the race: use its key
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # A key readable by others is a leak waiting to happen; tighten it rather than refuse,
        # since this is the development default.
        path.chmod(0o600)
    return decode_key(path.read_text(encoding="ascii"))
