"""One canonical form for a requester identifier, used at ingest and at erasure alike.

Platforms and people write the same requester differently: ``Jane.Doe@Example.com`` and
``jane.doe@example.com``, ``+44 20 7946 0958`` and ``020 7946 0958``, full-width digits from
a Japanese form. If ingest stored one spelling and an erasure request gave another, the
request would find nothing. So both sides call :func:`normalize_requester`:

- every identifier: Unicode NFKC (full-width letters, digits and ``＠`` become ASCII),
  surrounding whitespace removed, inner runs of whitespace collapsed;
- an e-mail address (it has an ``@``): lower-cased (mailbox names are case-insensitive at
  every helpdesk platform we ingest) and a ``mailto:`` prefix dropped;
- a phone number (only digits, ``+``, spaces and ``-().\\/``, at least 6 digits): E.164
  (``+442079460958``) via Google's libphonenumber (the ``phonenumbers`` package); numbers
  without a country code are read in ``default_region`` (``HELPDESK_PRIVACY_PHONE_REGION``).
  A number libphonenumber cannot place is kept as its digits;
- anything else (platform ids such as ``zendesk-user:42``, reviewer names) keeps its case.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

import phonenumbers

DEFAULT_PHONE_REGION: Final = "US"
_PHONE_CHARS: Final = re.compile(r"^\+?[0-9\s\-().\\/]+$")
_WHITESPACE: Final = re.compile(r"\s+")
_MIN_PHONE_DIGITS: Final = 6


def _clean(value: str) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def normalize_phone(value: str, default_region: str | None = DEFAULT_PHONE_REGION) -> str | None:
    """E.164 for a phone number, the bare digits for one that cannot be placed, ``None`` for
    text that is not a phone number at all."""
    text = _clean(value)
    if not _PHONE_CHARS.fullmatch(text):
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) < _MIN_PHONE_DIGITS:
        return None
    # "00" is the international prefix in most of the world: 0044… is +44….
    candidate = "+" + digits[2:] if text.startswith("00") else text
    try:
        parsed = phonenumbers.parse(candidate, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return ("+" if text.startswith("+") else "") + digits
    if not phonenumbers.is_possible_number(parsed):
        return ("+" if text.startswith("+") else "") + digits
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_requester(
    value: str | None, default_region: str | None = DEFAULT_PHONE_REGION
) -> str | None:
    """The canonical form of a requester identifier (see the module doc); ``None`` stays
    ``None`` and an identifier that is empty after cleaning becomes ``None``."""
    if value is None:
        return None
    text = _clean(value)
    if not text:
        return None
    if "@" in text:
        return text.removeprefix("mailto:").removeprefix("MAILTO:").replace(" ", "").lower()
    phone = normalize_phone(text, default_region)
    if phone is not None:
        return phone
    return text


def lookup_forms(value: str, default_region: str | None = DEFAULT_PHONE_REGION) -> list[str]:
    """Every stored spelling an erasure or access request must match: the canonical form,
    plus the request as given and lower-cased, for rows ingested before identifiers were
    normalized."""
    forms: list[str] = []
    for form in (normalize_requester(value, default_region), value.strip(), value.strip().lower()):
        if form and form not in forms:
            forms.append(form)
    return forms
