"""What every provider is, and the HTTP plumbing the HTTP providers share.

A provider turns an :class:`~backend.llm.types.LLMRequest` into text, either at once
(``complete``) or as a stream of :class:`TextDelta` events ending with one
:class:`Completed`. Providers raise :class:`~backend.llm.errors.ProviderError` subclasses and
never retry or fall back themselves: that is the router's job. Providers leave
``cost_usd`` at 0; the router prices results from its price table.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from backend.llm.errors import (
    ProviderError,
    ProviderMalformedResponse,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from backend.llm.types import Completed, LLMRequest, LLMResult, TextDelta
from backend.retry_after import parse_retry_after_headers

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=5.0)


@runtime_checkable
class LLMProvider(Protocol):
    """A source of generated text. ``name`` is how routes refer to it."""

    name: str
    model: str

    async def complete(self, req: LLMRequest) -> LLMResult: ...

    def stream(self, req: LLMRequest) -> AsyncIterator[TextDelta | Completed]: ...


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str


async def iter_sse(response: httpx.Response) -> AsyncIterator[SSEEvent]:
    """Server-sent events as the spec frames them: fields until a blank line, then dispatch."""
    event = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield SSEEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):  # comment / keep-alive
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:  # a final event without its trailing blank line
        yield SSEEvent(event or "message", "\n".join(data))


def _error_message(body: str) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return body[:300] or "no body"
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            kind = error.get("type")
            return f"{kind}: {error['message']}" if isinstance(kind, str) else error["message"]
        if isinstance(error, str):
            return error
    return body[:300]


def error_from_status(
    provider: str, status: int, headers: httpx.Headers, body: str
) -> ProviderError:
    """Map a non-2xx HTTP answer to the typed error the router acts on."""
    message = f"HTTP {status}: {_error_message(body)}"
    # An HTTP date is absolute: compared with the wall clock, as no clock is injected here.
    retry_after = parse_retry_after_headers(headers, datetime.now(UTC))
    if status == 429:
        return ProviderRateLimited(
            message, provider=provider, status=status, retry_after=retry_after
        )
    if status == 408:
        return ProviderTimeout(message, provider=provider, status=status)
    if status >= 500:
        # Includes Anthropic's 529 overloaded_error; some servers send Retry-After with 503.
        return ProviderServerError(
            message, provider=provider, status=status, retry_after=retry_after
        )
    return ProviderRequestRejected(message, provider=provider, status=status)


@contextmanager
def transport_errors(provider: str) -> Iterator[None]:
    """Turn httpx's transport failures into provider errors."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"timed out: {type(exc).__name__}", provider=provider) from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(
            f"transport failure: {type(exc).__name__}: {exc}", provider=provider
        ) from exc


async def raise_for_status(provider: str, response: httpx.Response) -> None:
    if response.status_code // 100 != 2:
        body = (await response.aread()).decode("utf-8", errors="replace")
        raise error_from_status(provider, response.status_code, response.headers, body)


def json_object(provider: str, raw: str | bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise ProviderMalformedResponse(f"invalid JSON: {exc}", provider=provider) from exc
    if not isinstance(payload, dict):
        raise ProviderMalformedResponse("expected a JSON object", provider=provider)
    return payload


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def non_negative_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
