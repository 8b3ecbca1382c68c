"""Per-company PII redaction for text that leaves for an external model provider.

What is found, and by what:

- **phone numbers** — Google's libphonenumber (the ``phonenumbers`` package): numbers it
  finds *valid* for their region, tried as written in the US, the UK, Korea and Japan, so
  ``+82 10-1234-5678``, ``(415) 555-0132``, ``4155550132``, ``0044 20 7946 0958`` (00 is the
  international prefix from Europe) and ``010-1234-5678`` all count, while order numbers,
  dates and prices do not;
- **emails** — a pattern;
- **payment cards** — 13-19 digits, grouped by spaces, hyphens, dots or slashes, that pass
  the Luhn check (``stdnum.luhn``), so order numbers that merely look long survive;
- **US social security numbers** — ``AAA-GG-SSSS`` (hyphens or spaces) that
  ``stdnum.us.ssn`` accepts (no 000/666/9xx area, no 00 group, no 0000 serial, not a
  known advertising number);
- **IBANs** — country code, check digits and account, with or without spaces, whose
  ISO 7064 checksum and country length hold (``stdnum.iban``);
- **Korean resident registration numbers** — ``YYMMDD-GNNNNNNN`` with a real month and day
  and a gender/century digit 1-8 (numbers issued since October 2020 carry no checksum, so
  none is required).

Matching runs on an NFKC view of the text, so full-width ``＠`` and digits
(``０１０－１２３４－５６７８``) are found too; replacements are made in the original text.
Each kind becomes a fixed placeholder. Redaction is lossy by design: the model never needs
a customer's card number to write a reply, and a placeholder tells it something was there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

EMAIL: Final = "[EMAIL]"
PHONE: Final = "[PHONE]"
CARD: Final = "[CARD]"
KR_RRN: Final = "[KR_RRN]"
US_SSN: Final = "[US_SSN]"
IBAN: Final = "[IBAN]"

PHONE_REGIONS: Final = ("US", "GB", "KR", "JP")
"""Regions whose national formats are tried for numbers written without a country code."""

_EMAIL_RE: Final = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
# YYMMDD-GNNNNNN; the gender/century digit is 1-4 for citizens, 5-8 for registered
# foreigners (whose numbers follow the same layout).
_KR_RRN_RE: Final = re.compile(
    r"(?<!\d)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?-?\s?[1-8]\d{6}(?!\d)"
)
_SSN_RE: Final = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
# Country, check digits, then the account in groups (spaces optional); the candidate is
# shortened group by group until the checksum holds (a following code word may cling on).
_IBAN_RE: Final = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# 13-19 digits, optionally grouped by single spaces, hyphens, dots or slashes. No card
# number starts with 0 (the issuer prefixes start at 1), which keeps "0044 7911 123456" a
# phone number even when its digits happen to pass the Luhn check.
_CARD_RE: Final = re.compile(r"(?<![\d./-])[1-9](?:[ ./-]?\d){12,18}(?![\d])(?![./-]\d)")


def luhn_valid(digits: str) -> bool:
    return digits.isdigit() and luhn.is_valid(digits)


@dataclass
class RedactionReport:
    """How many of each kind were replaced (for logs and tests; never the values)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, placeholder: str) -> None:
        self.counts[placeholder] = self.counts.get(placeholder, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _nfkc_view(text: str) -> tuple[str, list[int]]:
    """NFKC of ``text`` character by character, and for each character of the result the
    index of the original character it came from (so spans map back)."""
    if text.isascii():
        return text, list(range(len(text)))
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = char if char.isascii() else unicodedata.normalize("NFKC", char)
        out.append(folded)
        origin.extend([index] * len(folded))
    return "".join(out), origin


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for match in _EMAIL_RE.finditer(text):
        yield match.span()


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN_RE.finditer(text):
        candidate = match.group(0)
        while len(candidate.replace(" ", "")) >= 15:
            if stdnum_iban.is_valid(candidate):
                yield match.start(), match.start() + len(candidate)
                break
            candidate = candidate[: max(candidate.rfind(" "), len(candidate) - 4)].rstrip()


def _rrns(text: str) -> Iterator[tuple[int, int]]:
    for match in _KR_RRN_RE.finditer(text):
        yield match.span()


def _ssns(text: str) -> Iterator[tuple[int, int]]:
    for match in _SSN_RE.finditer(text):
        if stdnum_ssn.is_valid(re.sub(r"\D", "", match.group(0))):
            yield match.span()


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for match in _CARD_RE.finditer(text):
        if luhn_valid(re.sub(r"\D", "", match.group(0))):
            yield match.span()


def _phones(text: str, regions: Sequence[str]) -> Iterator[tuple[int, int]]:
    if sum(ch.isdigit() for ch in text) < 7:
        return
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        ):
            yield match.start, match.end


def find_pii(text: str, *, regions: Sequence[str] = PHONE_REGIONS) -> list[tuple[int, int, str]]:
    """``(start, end, placeholder)`` spans in ``text``, non-overlapping, in text order.

    Kinds are tried most specific first (an IBAN's digits could pass for a card, an RRN's
    for a phone number); a later kind never claims characters an earlier one took.
    """
    view, origin = _nfkc_view(text)
    taken: list[tuple[int, int, str]] = []

    def claim(spans: Iterator[tuple[int, int]], placeholder: str) -> None:
        for start, end in spans:
            if end > start and all(end <= s or start >= e for s, e, _ in taken):
                taken.append((start, end, placeholder))

    claim(_emails(view), EMAIL)
    claim(_ibans(view), IBAN)
    claim(_rrns(view), KR_RRN)
    claim(_ssns(view), US_SSN)
    claim(_cards(view), CARD)
    claim(_phones(view, regions), PHONE)
    return sorted((origin[s], origin[e - 1] + 1, kind) for s, e, kind in taken)


def redact_pii(
    text: str,
    report: RedactionReport | None = None,
    *,
    regions: Sequence[str] = PHONE_REGIONS,
) -> str:
    """``text`` with every email, phone number, card, SSN, IBAN and Korean RRN replaced by
    its placeholder (see the module docstring for what counts)."""
    sink = report if report is not None else RedactionReport()
    pieces: list[str] = []
    position = 0
    for start, end, placeholder in find_pii(text, regions=regions):
        pieces.append(text[position:start])
        pieces.append(placeholder)
        sink.add(placeholder)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
