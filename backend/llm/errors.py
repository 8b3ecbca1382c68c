"""Typed failures of model providers.

Providers raise these; the router turns them into retries, fallbacks and circuit-breaker
state, and never lets one escape to a caller (the extractive composer always answers). They
are :class:`~backend.errors.AppError` subclasses so that, should one surface anyway (a caller
using a provider directly), the API renders it with a stable code.
"""

from __future__ import annotations

from backend.errors import AppError


class LLMConfigError(AppError):
    """Routes, budgets or provider settings that cannot work (found when building the router)."""

    status_code = 500
    code = "llm_config_invalid"


class ProviderError(AppError):
    """A model provider failed to produce a result.

    ``retryable``: the same call may succeed if repeated (after ``retry_after`` seconds when
    the server said so). ``counts_for_breaker``: the failure says something about the
    provider's health, so it moves the provider's circuit breaker towards open.
    """

    status_code = 502
    code = "llm_provider_error"
    retryable = False
    counts_for_breaker = True

    def __init__(
        self,
        detail: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.status = status
        self.retry_after = retry_after


class ProviderRateLimited(ProviderError):
    """HTTP 429: the provider asks us to slow down, usually with ``Retry-After``."""

    status_code = 503
    code = "llm_rate_limited"
    retryable = True


class ProviderServerError(ProviderError):
    """HTTP 5xx (Anthropic's 529 "overloaded" included) or an error event inside a stream."""

    code = "llm_server_error"
    retryable = True


class ProviderTimeout(ProviderError):
    status_code = 504
    code = "llm_timeout"
    retryable = True


class ProviderUnavailable(ProviderError):
    """The provider could not be reached (connection refused, DNS, TLS, reset)."""

    status_code = 503
    code = "llm_unavailable"
    retryable = True


class ProviderMalformedResponse(ProviderError):
    """The provider answered something that is not the protocol (bad JSON, missing fields,
    a stream that ended without its terminator)."""

    code = "llm_malformed_response"


class ProviderRequestRejected(ProviderError):
    """HTTP 4xx other than 429: our request or credentials are wrong; repeating won't help.

    Bad requests (400, 413, 422: e.g. a prompt longer than the context) say nothing about the
    provider's health; authentication and permission failures (401, 403, 404) do, since every
    later call will fail the same way until someone fixes the configuration.
    """

    code = "llm_request_rejected"

    def __init__(
        self,
        detail: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, provider=provider, status=status, retry_after=retry_after)
        self.counts_for_breaker = status in (401, 403, 404)
