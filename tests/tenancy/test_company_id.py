from __future__ import annotations

import pytest

from backend.errors import InvalidCompanyId
from backend.tenancy.api_keys import generate_api_key, hash_api_key, looks_like_api_key
from backend.tenancy.company_id import company_id_from_domain, validate_company_id


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("acme.freshdesk.com", "acme"),
        ("https://acme.freshdesk.com/a/tickets/1", "acme"),
        ("ACME.service-now.com", "acme"),
        ("globex.zendesk.com", "globex"),
        ("support.initech.co.uk", "support-initech-co-uk"),
        ("helpdesk.example.com:8443", "helpdesk-example-com"),
    ],
)
def test_company_id_from_domain(domain: str, expected: str) -> None:
    assert company_id_from_domain(domain) == expected


@pytest.mark.parametrize("bad", ["", "-a", "a-", "A", "a_b", "a.b", "x" * 64, "ünï"])
def test_invalid_company_ids_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidCompanyId):
        validate_company_id(bad)


@pytest.mark.parametrize("good", ["a", "0", "acme", "acme-2", "x" * 63])
def test_valid_company_ids(good: str) -> None:
    assert validate_company_id(good) == good


def test_api_keys_are_random_prefixed_and_hashed() -> None:
    first, second = generate_api_key(), generate_api_key()
    assert first.plaintext != second.plaintext
    assert first.plaintext.startswith(first.prefix)
    assert first.prefix.startswith("hdk_")
    assert len(first.prefix) == 12
    assert looks_like_api_key(first.plaintext)
    assert hash_api_key(first.plaintext) == first.key_hash
    assert first.plaintext.encode() not in first.key_hash
    assert not looks_like_api_key(first.plaintext + "!")
