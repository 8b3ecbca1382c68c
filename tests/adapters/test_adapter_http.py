"""Shared adapter HTTP behaviour: Link parsing, Retry-After, the rate limiter and retries."""

from __future__ import annotations

import random
from collections import deque
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from backend.adapters.base import FetchFailure, ManualClock
from backend.adapters.http import (
    RateLimiter,
    normalize_hostname,
    parse_link_header,
    parse_rate_limit_reset,
    request_with_retries,
)
from backend.retry_after import parse_retry_after

START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
URL = "https://acme.example/api/items"


def scripted(*steps: httpx.Response | Exception) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    queue = deque(steps)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = queue.popleft() if queue else httpx.Response(200, json={"ok": True})
        if isinstance(step, Exception):
            raise step
        return step

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), seen


def test_parse_link_header() -> None:
    header = (
        '<https://x.example/api?page=2&per_page=10>; rel="next", '
        '<https://x.example/api?page=9>;rel="last", <https://x.example/a>; rel="prev first"'
    )
    assert parse_link_header(header) == {
        "next": "https://x.example/api?page=2&per_page=10",
        "last": "https://x.example/api?page=9",
        "prev": "https://x.example/a",
        "first": "https://x.example/a",
    }
    assert parse_link_header(None) == {}
    assert parse_link_header("garbage") == {}


def test_retry_after_and_reset_forms() -> None:
    assert parse_retry_after("30", START) == 30.0
    assert (
        parse_retry_after(format_datetime(START + timedelta(seconds=45), usegmt=True), START)
        == 45.0
    )
    assert parse_retry_after("soon", START) is None
    assert parse_rate_limit_reset(str(int(START.timestamp()) + 20), START) == 20.0
    assert parse_rate_limit_reset("12", START) == 12.0


def test_normalize_hostname() -> None:
    assert normalize_hostname("https://Acme.Freshdesk.com/") == "acme.freshdesk.com"
    assert normalize_hostname("acme", default_suffix=".service-now.com") == "acme.service-now.com"
    for bad in ("acme.com/path", "acme.com:8080", "", "a b.com", "ftp://x.com"):
        with pytest.raises(ValueError, match="host name"):
            normalize_hostname(bad)


async def test_token_bucket_spaces_requests() -> None:
    clock = ManualClock(START)
    limiter = RateLimiter(2.0, burst=2, clock=clock)
    for _ in range(4):
        await limiter.acquire()
    # Two from the burst, then one every half second.
    assert clock.sleeps == [0.5, 0.5]


async def test_limiter_pauses_when_the_platform_reports_an_empty_budget() -> None:
    clock = ManualClock(START)
    limiter = RateLimiter.unlimited(clock=clock)
    reset_at = int(START.timestamp()) + 42
    limiter.observe(
        httpx.Response(
            200, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_at)}
        )
    )
    await limiter.acquire()
    assert clock.sleeps == [42.0]
    limiter.observe(httpx.Response(200, headers={"X-Ratelimit-Remaining": "12"}))
    await limiter.acquire()
    assert clock.sleeps == [42.0]


async def test_retry_after_http_date_is_honoured() -> None:
    clock = ManualClock(START)
    when = format_datetime(START + timedelta(seconds=120), usegmt=True)
    client, seen = scripted(httpx.Response(429, headers={"Retry-After": when}))
    async with client:
        result = await request_with_retries(
            client, "GET", URL, limiter=RateLimiter.unlimited(clock=clock), clock=clock
        )
    assert isinstance(result, httpx.Response) and result.status_code == 200
    assert clock.sleeps == [120.0] and len(seen) == 2


async def test_persistent_server_errors_become_a_failure_value() -> None:
    clock = ManualClock(START)
    client, seen = scripted(*[httpx.Response(503, text="down") for _ in range(4)])
    async with client:
        result = await request_with_retries(
            client,
            "GET",
            URL,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
            max_attempts=4,
            base_delay=1.0,
            rng=random.Random(7),
            where="ticket:9",
        )
    assert isinstance(result, FetchFailure)
    assert (result.where, result.status_code, result.retryable) == ("ticket:9", 503, True)
    assert len(seen) == 4
    # Exponential backoff with jitter: each delay within [ceiling/2, ceiling].
    assert len(clock.sleeps) == 3
    for attempt, delay in enumerate(clock.sleeps, start=1):
        ceiling = 2.0 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


async def test_client_errors_are_not_retried() -> None:
    clock = ManualClock(START)
    client, seen = scripted(httpx.Response(404, json={"description": "not found"}))
    async with client:
        result = await request_with_retries(
            client, "GET", URL, limiter=RateLimiter.unlimited(clock=clock), clock=clock
        )
    assert isinstance(result, FetchFailure) and not result.retryable
    assert result.status_code == 404 and len(seen) == 1 and clock.sleeps == []


async def test_transport_errors_retry_then_give_up() -> None:
    clock = ManualClock(START)
    client, seen = scripted(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"))
    async with client:
        result = await request_with_retries(
            client,
            "GET",
            URL,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
            max_attempts=2,
        )
    assert isinstance(result, FetchFailure) and result.retryable
    assert "timed out" in result.message and result.status_code is None
    assert len(seen) == 2


async def test_a_retry_after_beyond_the_limit_is_returned_not_slept() -> None:
    clock = ManualClock(START)
    client, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
    async with client:
        result = await request_with_retries(
            client,
            "GET",
            URL,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
            max_retry_after=600,
        )
    assert isinstance(result, FetchFailure)
    assert result.retry_after == 3600.0 and result.retryable and len(seen) == 1
    assert clock.sleeps == []
