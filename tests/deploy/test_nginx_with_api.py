"""nginx (from nginx.conf) in front of the real API on loopback: ordinary requests and their
request id pass through, Server-Sent Events arrive unbuffered, and the per-IP rate limit
answers 429 with our error body once the burst is spent.

Each test gets its own nginx, so the rate-limit zone starts empty for each; the API process is
shared by the module.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.conftest import NGINX_CONF, RunningApi, RunningNginx, running_nginx

pytestmark = pytest.mark.slow


@pytest.fixture
def nginx(api_server: RunningApi) -> Iterator[RunningNginx]:
    with running_nginx(api_server.upstream) as running:
        yield running


def test_request_passes_through_with_its_request_id(nginx: RunningNginx) -> None:
    request_id = f"deploy-{secrets.token_hex(6)}"
    response = httpx.get(f"{nginx.base_url}/healthz", headers={"X-Request-ID": request_id})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}
    # The API echoes the id it received (it mints its own otherwise), so getting ours back
    # proves nginx forwarded it; nginx adds no second copy.
    assert response.headers.get_list("x-request-id") == [request_id]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_request_id_minted_by_nginx_reaches_the_api(nginx: RunningNginx) -> None:
    response = httpx.get(f"{nginx.base_url}/healthz")
    assert response.status_code == 200
    [request_id] = response.headers.get_list("x-request-id")
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)


def test_event_stream_passes_through_unbuffered(nginx: RunningNginx) -> None:
    count, interval_ms = 6, 400
    stream_span_s = (count - 1) * interval_ms / 1000  # first event to last, at the API

    arrivals: list[float] = []
    started = time.monotonic()
    with httpx.stream(
        "GET",
        f"{nginx.base_url}/healthz/stream",
        params={"count": count, "interval_ms": interval_ms},
        timeout=httpx.Timeout(10.0),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers.get("x-accel-buffering") == "no"
        for line in response.iter_lines():
            if line == "event: heartbeat":
                arrivals.append(time.monotonic() - started)

    assert len(arrivals) == count
    # Buffered, every event would arrive in one lump when the stream ends. Unbuffered, the
    # first arrives long before the end and the arrivals spread over the stream's span.
    # Margins are wide (half the span) for a busy machine.
    assert arrivals[0] < stream_span_s / 2, arrivals
    assert arrivals[-1] - arrivals[0] > stream_span_s / 2, arrivals


async def test_rate_limit_answers_429_with_our_error_body(nginx: RunningNginx) -> None:
    rate_per_s, burst = _api_rate_limit()
    attempts = 3 * (burst + rate_per_s)

    async with httpx.AsyncClient(
        base_url=nginx.base_url, limits=httpx.Limits(max_connections=16)
    ) as client:
        started = time.monotonic()
        responses = await asyncio.gather(*(client.get("/healthz") for _ in range(attempts)))
        elapsed = time.monotonic() - started

    statuses = [r.status_code for r in responses]
    passed = statuses.count(200)
    limited = [r for r in responses if r.status_code == 429]
    assert passed + len(limited) == attempts, set(statuses)
    assert limited, f"no 429 in {attempts} requests over {elapsed:.2f}s"
    # nginx lets through the burst plus what the rate refills meanwhile (+1 for the first
    # request and +1 for rounding at the edges); anything more means the limit is not applied.
    assert passed <= burst + 2 + rate_per_s * elapsed, (passed, elapsed)

    rejected = limited[0]
    assert rejected.headers["content-type"].startswith("application/json")
    body = rejected.json()
    assert body["error"] == "rate_limited"
    assert isinstance(body["detail"], str) and body["detail"]
    assert rejected.headers["retry-after"] == "1"
    assert re.fullmatch(r"[0-9a-f]{32}", rejected.headers["x-request-id"])


def _api_rate_limit() -> tuple[int, int]:
    """(requests per second, burst) for the API locations, as configured in nginx.conf."""
    text = NGINX_CONF.read_text()
    zone = re.search(
        r"limit_req_zone\s+\$binary_remote_addr\s+zone=helpdesk_api:\S+"
        r"\s+rate=(\d+)r/s;",
        text,
    )
    api_location = re.search(r"location / \{(.*?)\}", text, re.DOTALL)
    assert zone and api_location, "nginx.conf has no helpdesk_api rate limit"
    burst = re.search(r"limit_req zone=helpdesk_api burst=(\d+)", api_location.group(1))
    assert burst, "the API location applies no limit_req"
    return int(zone.group(1)), int(burst.group(1))
