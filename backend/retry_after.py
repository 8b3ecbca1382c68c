"""``Retry-After``: how long a server that refused us asks us to wait.

One parser for every outbound client (helpdesk adapters, LLM providers, embedding servers),
so each reads the header the same way: delta-seconds or an HTTP date (RFC 9110 §10.2.3), and
OpenAI's millisecond variant ``retry-after-ms`` where a caller has the whole header set.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when absent or unreadable.

    ``now`` is the caller's clock (aware UTC): an HTTP date is an absolute moment, so the wait
    is measured from it. A moment in the past, or a negative number, means "now" (0.0).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a date without a zone is read as UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_retry_after_headers(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait from a response's headers: ``retry-after-ms`` first, then ``Retry-After``.

    OpenAI and Azure OpenAI send the millisecond-precision variant beside the standard header.
    ``headers`` must look names up case-insensitively (``httpx.Headers`` does).
    """
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"), now)
