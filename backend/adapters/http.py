"""HTTP behaviour shared by every adapter: rate limiting, retries, ``Link`` paging.

- :class:`RateLimiter` is a token bucket that also obeys what the platform says about its own
  budget (``X-RateLimit-Remaining``/``X-RateLimit-Reset``, ``Retry-After``), so concurrent
  fetches for one connector slow down together.
- :func:`request_with_retries` sends one request, retrying transient trouble (5xx, 408,
  timeouts, transport errors) with exponential backoff and jitter and honouring ``429`` +
  ``Retry-After``; when it gives up it returns a :class:`FetchFailure` value instead of raising.
- :func:`parse_link_header` reads RFC 8288 ``Link: <...>; rel="next"`` headers.

All waiting goes through the injected :class:`Clock`, so tests never really sleep.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx

from backend.adapters.base import Clock, FetchFailure
from backend.egress.policy import EgressRefused
from backend.egress.transport import FILE_DOWNLOAD
from backend.retry_after import parse_retry_after

# Statuses worth another attempt: the server may answer differently in a moment.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})

# A reset header above this is an epoch timestamp (ServiceNow, GitHub style); below it a number
# of seconds from now (Zendesk's ``ratelimit-reset``, IETF draft style). 2001-09-09 in epoch.
_EPOCH_THRESHOLD = 1_000_000_000


def _header(headers: httpx.Headers, *names: str) -> str | None:
    for name in names:
        value: str | None = headers.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def parse_rate_limit_reset(value: str | None, now: datetime) -> float | None:
    """Seconds until an ``X-RateLimit-Reset`` moment: epoch seconds, or seconds from now."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return parse_retry_after(value, now)
    if number > _EPOCH_THRESHOLD:
        return max(0.0, number - now.timestamp())
    return max(0.0, number)


_LINK_RE = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_PARAM_RE = re.compile(r";\s*([a-zA-Z0-9*_-]+)\s*=\s*(\"[^\"]*\"|[^;,\s]+)")


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map each ``rel`` of an RFC 8288 ``Link`` header to its URL.

    ``<https://x/api?page=2>; rel="next", <https://x/api?page=9>; rel="last"`` →
    ``{"next": "https://x/api?page=2", "last": "https://x/api?page=9"}``. A ``rel`` holding
    several space-separated relation types maps each of them. The first link for a rel wins.
    """
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK_RE.finditer(value):
        url, params = match.group(1).strip(), match.group(2)
        for name, raw in _PARAM_RE.findall(params):
            if name.lower() != "rel":
                continue
            for rel in raw.strip('"').split():
                links.setdefault(rel.lower(), url)
    return links


def next_link(response: httpx.Response) -> str | None:
    """The ``rel="next"`` URL of a response, if any."""
    return parse_link_header(response.headers.get("link")).get("next")


class RateLimiter:
    """A token bucket shared by every request of one connector.

    ``requests_per_second`` tokens refill continuously up to ``burst``; each request takes one.
    Responses are fed back through :meth:`observe`: when the platform reports an exhausted
    budget (``X-RateLimit-Remaining: 0`` with a reset time) or sends ``Retry-After``, every
    caller pauses until then, not just the one that saw it.
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        burst: int = 1,
        clock: Clock,
    ) -> None:
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.requests_per_second = requests_per_second
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._refilled_at = self.clock.now()
        self._paused_until: datetime | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def per_minute(cls, requests: float, *, clock: Clock, burst: int = 1) -> RateLimiter:
        return cls(requests / 60.0, burst=burst, clock=clock)

    @classmethod
    def unlimited(cls, *, clock: Clock) -> RateLimiter:
        """No local budget; only what the platform reports is honoured (tests, scripts)."""
        return cls(1e9, burst=1_000_000, clock=clock)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (extends, never shortens, a pause)."""
        until = self.clock.now() + timedelta(seconds=max(0.0, seconds))
        if self._paused_until is None or until > self._paused_until:
            self._paused_until = until

    def _refill(self, now: datetime) -> None:
        elapsed = (now - self._refilled_at).total_seconds()
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.requests_per_second)
        self._refilled_at = now

    async def acquire(self) -> None:
        """Wait until a request may be sent, then take a token."""
        async with self._lock:
            while True:
                now = self.clock.now()
                if self._paused_until is not None:
                    wait = (self._paused_until - now).total_seconds()
                    if wait > 0:
                        await self.clock.sleep(wait)
                        continue
                    self._paused_until = None
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await self.clock.sleep((1.0 - self._tokens) / self.requests_per_second)

    def observe(self, response: httpx.Response) -> None:
        """Learn from a response's rate-limit headers."""
        now = self.clock.now()
        headers = response.headers
        if response.status_code in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"), now)
            if retry_after is not None:
                self.pause_for(retry_after)
                return
        # Freshdesk spells it X-Ratelimit-Remaining, Zendesk X-Rate-Limit-Remaining, ServiceNow
        # X-RateLimit-Remaining; httpx headers are case-insensitive, the hyphenation is not.
        remaining = _header(
            headers, "x-ratelimit-remaining", "x-rate-limit-remaining", "ratelimit-remaining"
        )
        if remaining is None:
            return
        try:
            exhausted = float(remaining) <= 0
        except ValueError:
            return
        if not exhausted:
            return
        reset = parse_rate_limit_reset(
            _header(headers, "x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset"), now
        )
        if reset is None:
            reset = parse_retry_after(headers.get("retry-after"), now)
        if reset is not None:
            self.pause_for(reset)


def backoff_delay(
    attempt: int,
    *,
    base_delay: float,
    max_delay: float,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped at max_delay.

    ``attempt`` counts from 1 (the delay after the first failed attempt).
    """
    ceiling = min(max_delay, base_delay * 2.0 ** (attempt - 1))
    draw: float = rng.random() if rng is not None else random.random()
    return ceiling / 2 + draw * ceiling / 2


async def request_with_retries(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limiter: RateLimiter,
    clock: Clock,
    max_attempts: int = 5,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    json: Any = None,
    request_timeout: float | None = None,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    max_retry_after: float = 900.0,
    rng: random.Random | None = None,
    where: str | None = None,
    file_download: bool = False,
) -> httpx.Response | FetchFailure:
    """Send one request; return the first non-error response, or a :class:`FetchFailure`.

    - 2xx: returned as is (the caller parses it).
    - 3xx: a non-retryable failure; redirects are never followed (the egress transport
      refuses them too). ``file_download`` (attachments only): the request may reach the
      platform's file hosts and a 3xx is returned unread, for the caller to follow hop by
      hop through the same client and policy.
    - A request the egress policy refuses (:class:`backend.egress.EgressRefused`): a
      non-retryable failure naming the rule.
    - 429: waits ``Retry-After`` (seconds or HTTP date) through the limiter, so other callers
      wait too; without the header, exponential backoff. A ``Retry-After`` longer than
      ``max_retry_after`` is not waited out here: a retryable failure carrying it comes back.
    - 408/425/5xx, timeouts and transport errors: exponential backoff with jitter.
    - Any other 4xx: a non-retryable failure at once (bad credentials, missing entity, ...).

    ``where`` names the failing thing in the failure (defaults to the URL).
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    label = where or url
    request_kwargs: dict[str, Any] = {}
    if params is not None:
        request_kwargs["params"] = params
    if headers is not None:
        request_kwargs["headers"] = headers
    if auth is not None:
        request_kwargs["auth"] = auth
    if json is not None:
        request_kwargs["json"] = json
    if request_timeout is not None:
        request_kwargs["timeout"] = request_timeout
    if file_download:
        request_kwargs["extensions"] = {FILE_DOWNLOAD: True}

    failure = FetchFailure(where=label, message="no attempt made", retryable=True)
    for attempt in range(1, max_attempts + 1):
        await limiter.acquire()
        try:
            response = await client.request(method, url, **request_kwargs)
        except EgressRefused as exc:
            # The policy's reason is a fixed text; nothing of the target is echoed.
            return FetchFailure(where=label, message=str(exc), retryable=False)
        except httpx.TimeoutException as exc:
            failure = FetchFailure(
                where=label, message=f"timed out: {type(exc).__name__}", retryable=True
            )
        except httpx.TransportError as exc:
            # The class only: an exception's text may carry addresses or upstream bytes.
            failure = FetchFailure(
                where=label, message=f"transport error: {type(exc).__name__}", retryable=True
            )
        else:
            limiter.observe(response)
            status = response.status_code
            if 300 <= status < 400:
                await response.aclose()
                if file_download:
                    return response
                return FetchFailure(
                    where=label,
                    message=f"HTTP {status}: redirects are not followed",
                    status_code=status,
                    retryable=False,
                )
            if status < 400:
                return response
            await response.aclose()
            # Never the body: it is the upstream's text (an internal service's, in an SSRF)
            # and a sync run's errors are shown to the tenant.
            message = f"HTTP {status}: {status_reason(status)}"
            if status not in RETRYABLE_STATUSES:
                return FetchFailure(
                    where=label, message=message, status_code=status, retryable=False
                )
            retry_after = parse_retry_after(response.headers.get("retry-after"), clock.now())
            failure = FetchFailure(
                where=label,
                message=message,
                status_code=status,
                retryable=True,
                retry_after=retry_after,
            )
            if retry_after is not None:
                if retry_after > max_retry_after:
                    return failure
                if attempt < max_attempts:
                    # The limiter was paused by observe(); acquire() at the top of the next
                    # attempt waits exactly the advertised time. Make sure of it even when the
                    # status is one observe() does not read Retry-After for.
                    limiter.pause_for(retry_after)
                continue
        if attempt < max_attempts:
            await clock.sleep(
                backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay, rng=rng)
            )
    return failure


def status_reason(status: int) -> str:
    """A fixed description of an HTTP status (its standard phrase), never the body."""
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "upstream error"


async def get_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    limiter: RateLimiter,
    clock: Clock,
    where: str | None = None,
    **kwargs: Any,
) -> tuple[Any, httpx.Response] | FetchFailure:
    """GET ``url`` with retries and decode its JSON body; a bad body is a failure value too."""
    result = await request_with_retries(
        client, "GET", url, limiter=limiter, clock=clock, where=where, **kwargs
    )
    if isinstance(result, FetchFailure):
        return result
    try:
        return result.json(), result
    except ValueError:
        return FetchFailure(
            where=where or url,
            message="response is not JSON",
            status_code=result.status_code,
            retryable=False,
        )


__all__ = [
    "RETRYABLE_STATUSES",
    "RateLimiter",
    "backoff_delay",
    "get_json",
    "next_link",
    "normalize_hostname",
    "parse_link_header",
    "parse_rate_limit_reset",
    "request_with_retries",
    "status_reason",
]


_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def normalize_hostname(value: str, *, default_suffix: str | None = None) -> str:
    """A bare host name from user input: ``https://Acme.freshdesk.com/`` → ``acme.freshdesk.com``.

    A single label (``acme``) gets ``default_suffix`` appended when one is given. Raises
    ``ValueError`` (which pydantic reports as a validation error) for anything else, so a
    connector can never point the adapter at a path, a port or another scheme.
    """
    host = value.strip().lower()
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    host = host.rstrip("/")
    if default_suffix is not None and host and "." not in host:
        host = f"{host}{default_suffix}"
    if not _HOSTNAME_RE.fullmatch(host):
        raise ValueError(f"not a host name: {value!r}")
    return host
