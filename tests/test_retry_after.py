"""The one ``Retry-After`` parser every outbound client uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx

from backend.retry_after import parse_retry_after, parse_retry_after_headers

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_delta_seconds_and_http_date_are_read_against_the_callers_clock() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(" 2.5 ", NOW) == 2.5
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, NOW) == 90.0


def test_past_dates_and_negative_numbers_mean_now_and_garbage_means_unknown() -> None:
    earlier = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0
    assert parse_retry_after("-3", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_openai_millisecond_header_wins_over_the_standard_one() -> None:
    headers = httpx.Headers({"Retry-After-Ms": "1500", "Retry-After": "9"})
    assert parse_retry_after_headers(headers, NOW) == 1.5
    assert parse_retry_after_headers(httpx.Headers({"retry-after": "9"}), NOW) == 9.0
    assert (
        parse_retry_after_headers(httpx.Headers({"retry-after-ms": "x", "retry-after": "4"}), NOW)
        == 4.0
    )
    assert parse_retry_after_headers(httpx.Headers({}), NOW) is None
