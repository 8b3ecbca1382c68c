"""Per-company PII redaction for text that leaves for an external model provider.

Email addresses, phone numbers, payment card numbers (only digit runs that pass the Luhn
check, so order numbers survive) and Korean resident registration numbers become fixed
placeholders. Redaction is lossy by design: the model never needs a customer's card number
to write a reply, and a placeholder tells it that something was there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

EMAIL: Final = "[EMAIL]"
PHONE: Final = "[PHONE]"
CARD: Final = "[CARD]"
KR_RRN: Final = "[KR_RRN]"

_EMAIL_RE: Final = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
# YYMMDD-GNNNNNN; the gender/century digit is 1-4 for citizens, 5-8 for registered
# foreigners (whose numbers follow the same layout).
_KR_RRN_RE: Final = re.compile(
    r"(?<!\d)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?-?\s?[1-8]\d{6}(?!\d)"
)
# 13-19 digits, optionally grouped by single spaces or hyphens (how people type cards).
_CARD_RE: Final = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE_RE: Final = re.compile(
    # Not part of a longer digit run ("4111 1111 1111 1112" is a card-like number, and
    # the middle of it is not a phone number).
    r"(?<![\w+])(?<!\d{4}[\s.-])(?:"
    # International: +82 10-1234-5678, +1 (415) 555-0132, +44 20 7946 0958
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,3}"
    # Grouped national: 010-1234-5678, 02-123-4567, (415) 555-0132, 03-1234-5678
    r"|\(?0?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{4}"
    # Korean mobile without separators: 01012345678
    r"|01[016789]\d{7,8}"
    r")(?!\w|[\s.-]\d{4})"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass
class RedactionReport:
    """How many of each kind were replaced (for logs and tests; never the values)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, placeholder: str) -> None:
        self.counts[placeholder] = self.counts.get(placeholder, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact_pii(text: str, report: RedactionReport | None = None) -> str:
    """``text`` with emails, Korean RRNs, Luhn-valid card numbers and phone numbers replaced.

    Order matters: emails first (their digits are not phone numbers), RRNs before cards and
    phones (13 digits could pass for either), cards before phones.
    """
    sink = report if report is not None else RedactionReport()

    def email(match: re.Match[str]) -> str:
        sink.add(EMAIL)
        return EMAIL

    def rrn(match: re.Match[str]) -> str:
        sink.add(KR_RRN)
        return KR_RRN

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if not luhn_valid(digits):
            return match.group(0)
        sink.add(CARD)
        return CARD

    def phone(match: re.Match[str]) -> str:
        if sum(ch.isdigit() for ch in match.group(0)) < 7:
            return match.group(0)
        sink.add(PHONE)
        return PHONE

    text = _EMAIL_RE.sub(email, text)
    text = _KR_RRN_RE.sub(rrn, text)
    text = _CARD_RE.sub(card, text)
    return _PHONE_RE.sub(phone, text)
