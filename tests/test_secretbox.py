"""AES-256-GCM sealing of connector credentials."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from backend.errors import AppError, InvalidCompanyId
from backend.secretbox import (
    KEY_BYTES,
    EncryptionKeyError,
    SecretBox,
    SecretDecryptionError,
    connector_associated_data,
    decode_key,
    generate_key,
    load_or_create_key,
)

CREDENTIALS = b'{"api_key": "fd-live-9f8e7d", "domain": "acme.freshdesk.com"}'


def test_round_trip_with_versioned_layout() -> None:
    box = SecretBox(generate_key())
    ad = connector_associated_data("acme", "conn-1")
    token = box.encrypt(CREDENTIALS, ad)
    assert token[0] == 1
    assert len(token) == 1 + 12 + len(CREDENTIALS) + 16
    assert CREDENTIALS not in token
    assert box.decrypt(token, ad) == CREDENTIALS
    # A fresh nonce each time: the same secret never seals to the same bytes.
    assert box.encrypt(CREDENTIALS, ad) != token


def test_every_altered_byte_is_detected() -> None:
    box = SecretBox(generate_key())
    ad = connector_associated_data("acme", "conn-1")
    token = box.encrypt(CREDENTIALS, ad)
    for position in range(1, len(token)):
        tampered = bytearray(token)
        tampered[position] ^= 0x01
        with pytest.raises(SecretDecryptionError):
            box.decrypt(bytes(tampered), ad)


def test_ciphertext_moved_to_another_company_or_connector_fails() -> None:
    box = SecretBox(generate_key())
    token = box.encrypt(CREDENTIALS, connector_associated_data("acme", "conn-1"))
    for company, connector in (("beta", "conn-1"), ("acme", "conn-2"), ("acme-conn", "1")):
        with pytest.raises(SecretDecryptionError) as caught:
            box.decrypt(token, connector_associated_data(company, connector))
        assert caught.value.code == "secret_decryption_failed"
        assert "another company or connector" in str(caught.value.detail)


def test_wrong_key_truncation_and_unknown_version_fail_clearly() -> None:
    ad = connector_associated_data("acme", "conn-1")
    token = SecretBox(generate_key()).encrypt(CREDENTIALS, ad)
    with pytest.raises(SecretDecryptionError):
        SecretBox(generate_key()).decrypt(token, ad)
    box = SecretBox(generate_key())
    with pytest.raises(SecretDecryptionError, match="truncated"):
        box.decrypt(token[:20], ad)
    with pytest.raises(SecretDecryptionError, match="version 2"):
        box.decrypt(b"\x02" + token[1:], ad)


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33, 64])
def test_key_length_is_validated(length: int) -> None:
    with pytest.raises(EncryptionKeyError) as caught:
        SecretBox(os.urandom(length))
    assert caught.value.code == "invalid_encryption_key"
    assert isinstance(caught.value, AppError)


def test_base64_keys() -> None:
    key = generate_key()
    box = SecretBox.from_base64(base64.b64encode(key).decode() + "\n")
    ad = connector_associated_data("acme", "c")
    assert SecretBox(key).decrypt(box.encrypt(b"x", ad), ad) == b"x"
    with pytest.raises(EncryptionKeyError, match="base64"):
        decode_key("not base64 at all!")
    with pytest.raises(EncryptionKeyError, match="exactly 32 bytes"):
        decode_key(base64.b64encode(os.urandom(16)).decode())


def test_associated_data_validates_its_parts() -> None:
    with pytest.raises(InvalidCompanyId):
        connector_associated_data("Not A Slug", "conn-1")
    with pytest.raises(ValueError, match="connector_id"):
        connector_associated_data("acme", "")


def test_load_or_create_key_creates_a_private_file_once(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "encryption.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == key
    assert load_or_create_key(path) == key
    assert sorted(p.name for p in path.parent.iterdir()) == ["encryption.key"]


def test_load_or_create_key_tightens_loose_permissions(tmp_path: Path) -> None:
    path = tmp_path / "encryption.key"
    key = generate_key()
    path.write_text(base64.b64encode(key).decode())
    path.chmod(0o644)
    assert load_or_create_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_load_or_create_key_rejects_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "encryption.key"
    path.write_text(base64.b64encode(b"short").decode())
    with pytest.raises(EncryptionKeyError):
        load_or_create_key(path)
