"""Build the router from plain settings values (the app passes ``HELPDESK_LLM_*`` through).

Providers exist only when configured:

- ``openai``: any OpenAI-compatible endpoint, enabled by a base URL or an API key (a key
  alone means OpenAI itself, ``https://api.openai.com/v1``);
- ``anthropic``: enabled by an API key;
- ``local``: an OpenAI-compatible server on the machine or the cluster (llama.cpp's server,
  Ollama at ``http://127.0.0.1:11434/v1``, vLLM), enabled by its base URL; it needs no key;
- ``extractive``: always present, and the last resort of every chain.

With no routes JSON, every task uses the configured providers in the order openai,
anthropic, local, with ``local`` as the economy chain; with nothing configured at all, the
extractive composer answers everything.
"""

from __future__ import annotations

import httpx

from backend.llm.breaker import BreakerPolicy
from backend.llm.budget import BudgetLedger, BudgetPolicy
from backend.llm.clock import Clock
from backend.llm.company_choice import CompanyChoicesSource
from backend.llm.errors import LLMConfigError
from backend.llm.pricing import PriceTable
from backend.llm.providers.anthropic import DEFAULT_BASE_URL as ANTHROPIC_BASE_URL
from backend.llm.providers.anthropic import AnthropicProvider
from backend.llm.providers.base import LLMProvider
from backend.llm.providers.openai_compatible import OpenAICompatibleProvider
from backend.llm.router import LLMRouter, RetryPolicy, RouteConfig, TaskRoute

OPENAI_BASE_URL = "https://api.openai.com/v1"


def build_router_from_settings(
    *,
    client: httpx.AsyncClient,
    ledger: BudgetLedger | None = None,
    clock: Clock | None = None,
    openai_base_url: str | None = None,
    openai_api_key: str | None = None,
    openai_model: str = "gpt-4o-mini",
    anthropic_api_key: str | None = None,
    anthropic_base_url: str = ANTHROPIC_BASE_URL,
    anthropic_model: str = "claude-haiku-4-5",
    local_base_url: str | None = None,
    local_model: str = "local",
    routes_json: str | None = None,
    budgets_json: str | None = None,
    prices_json: str | None = None,
    timeout_s: float = 30.0,
    connect_timeout_s: float = 5.0,
    max_attempts: int = 2,
    max_retry_after_s: float = 10.0,
    breaker_failures: int = 5,
    breaker_cooldown_s: float = 30.0,
    company_choices: CompanyChoicesSource | None = None,
) -> LLMRouter:
    """A ready router. ``client`` is shared by all HTTP providers and owned by the caller."""
    if timeout_s <= 0 or connect_timeout_s <= 0:
        raise LLMConfigError("LLM timeouts must be positive")
    if max_attempts < 1 or breaker_failures < 1:
        raise LLMConfigError("max_attempts and breaker_failures must be at least 1")
    http_timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
    providers: list[LLMProvider] = []
    if openai_base_url or openai_api_key:
        providers.append(
            OpenAICompatibleProvider(
                name="openai",
                base_url=openai_base_url or OPENAI_BASE_URL,
                model=openai_model,
                api_key=openai_api_key,
                client=client,
                timeout=http_timeout,
            )
        )
    if anthropic_api_key:
        providers.append(
            AnthropicProvider(
                api_key=anthropic_api_key,
                model=anthropic_model,
                base_url=anthropic_base_url,
                client=client,
                timeout=http_timeout,
            )
        )
    if local_base_url:
        providers.append(
            OpenAICompatibleProvider(
                name="local",
                base_url=local_base_url,
                model=local_model,
                client=client,
                timeout=http_timeout,
            )
        )

    if routes_json:
        routes = RouteConfig.from_json(routes_json)
    else:
        names = tuple(p.name for p in providers)
        economy = ("local",) if "local" in names else ()
        routes = RouteConfig(
            default=TaskRoute(chain=names, economy_chain=economy, timeout_s=timeout_s)
        )

    if budgets_json:
        try:
            budgets = BudgetPolicy.model_validate_json(budgets_json)
        except ValueError as exc:
            raise LLMConfigError(f"invalid LLM budgets: {exc}") from exc
    else:
        budgets = BudgetPolicy()

    return LLMRouter(
        providers,
        routes,
        ledger=ledger,
        budgets=budgets,
        prices=PriceTable.from_json(prices_json),
        clock=clock,
        retry=RetryPolicy(max_attempts=max_attempts, max_retry_after_s=max_retry_after_s),
        breaker=BreakerPolicy(failure_threshold=breaker_failures, cooldown_s=breaker_cooldown_s),
        company_choices=company_choices,
    )
