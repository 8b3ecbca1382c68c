"""The LLM router: which provider writes a given text, and what happens when it can't.

For each request the router builds a plan: the route for (company, task) from
:class:`RouteConfig`, replaced by the company's own choice of configured providers when it
made one (:mod:`backend.llm.company_choice`), narrowed by the company's monthly budget (the
stricter of the operator's and the company's) (normal chain → cheaper
``economy_chain`` → extractive only), with the extractive composer appended as the last
resort of every chain. It then walks the chain:

- each provider gets up to ``RetryPolicy.max_attempts`` tries for retryable failures,
  sleeping (on the injected clock) for the server's ``Retry-After`` when it sent one and it
  is within bounds, else with exponential backoff; a ``Retry-After`` beyond
  ``max_retry_after_s`` moves on to the next provider at once;
- a provider whose circuit breaker is open is skipped without a call;
- ``complete`` is bounded by the route's ``timeout_s``; ``stream`` bounds each wait for the
  next event by it (so a stalled stream times out, a long healthy one does not);
- a stream that fails before its first token falls back like ``complete``; once text was
  sent it cannot be taken back, so the stream ends with a :class:`StreamFailed` event.

Results are priced from the price table and recorded in the budget ledger. The router never
raises for a provider failure or an exhausted budget: the extractive composer answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.llm.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from backend.llm.budget import BudgetLedger, BudgetPolicy, BudgetStatus, CompanyBudget
from backend.llm.clock import Clock, SystemClock, month_of
from backend.llm.company_choice import (
    DEFAULT_ROUTE,
    NO_CHOICES,
    CompanyChoices,
    CompanyChoicesSource,
)
from backend.llm.errors import LLMConfigError, ProviderError, ProviderTimeout
from backend.llm.pricing import PriceTable
from backend.llm.providers.base import LLMProvider
from backend.llm.providers.extractive import PROVIDER_NAME as EXTRACTIVE
from backend.llm.providers.extractive import ExtractiveComposer
from backend.llm.text import estimate_prompt_tokens, estimate_tokens
from backend.llm.types import (
    Completed,
    LLMRequest,
    LLMResult,
    StreamEvent,
    StreamFailed,
    Task,
    TextDelta,
    Usage,
)
from backend.tenancy.company_id import CompanyId, CompanyIdField

logger = structlog.get_logger("backend.llm.router")


class TaskRoute(BaseModel):
    """Provider names to try in order; the extractive composer is implicitly last."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: tuple[str, ...] = ()
    economy_chain: tuple[str, ...] = Field(
        default=(), description="Used once the company passes its budget's economy threshold."
    )
    timeout_s: float = Field(default=30.0, gt=0)


class CompanyRoutes(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: TaskRoute | None = None
    tasks: dict[Task, TaskRoute] = Field(default_factory=dict)


class RouteConfig(BaseModel):
    """Routes per task, with per-company overrides. JSON form (``HELPDESK_LLM_ROUTES``)::

        {"default": {"chain": ["openai", "local"], "economy_chain": ["local"]},
         "tasks": {"summarize": {"chain": ["local"], "timeout_s": 20}},
         "companies": {"acme": {"default": {"chain": ["anthropic", "openai"]},
                                "tasks": {"review_reply": {"chain": []}}}}}

    Lookup order: the company's task route, the company's default, the task route, the
    global default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: TaskRoute = TaskRoute()
    tasks: dict[Task, TaskRoute] = Field(default_factory=dict)
    companies: dict[CompanyIdField, CompanyRoutes] = Field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: str) -> RouteConfig:
        try:
            return cls.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as exc:
            raise LLMConfigError(f"invalid LLM routes: {exc}") from exc

    def route_for(self, company_id: str, task: Task) -> TaskRoute:
        company = self.companies.get(CompanyId(company_id))
        if company is not None:
            if task in company.tasks:
                return company.tasks[task]
            if company.default is not None:
                return company.default
        return self.tasks.get(task, self.default)

    def provider_names(self) -> set[str]:
        routes = [self.default, *self.tasks.values()]
        for company in self.companies.values():
            routes.extend(company.tasks.values())
            if company.default is not None:
                routes.append(company.default)
        return {name for route in routes for name in (*route.chain, *route.economy_chain)}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 2  # per provider, first try included
    base_delay_s: float = 0.5
    max_delay_s: float = 4.0
    max_retry_after_s: float = 10.0  # wait longer than this and the next provider is better


@dataclass(frozen=True, slots=True)
class RoutePlan:
    chain: tuple[str, ...]
    timeout_s: float
    budget: BudgetStatus | None


class LLMRouter:
    def __init__(
        self,
        providers: Sequence[LLMProvider],
        routes: RouteConfig | None = None,
        *,
        ledger: BudgetLedger | None = None,
        budgets: BudgetPolicy | None = None,
        prices: PriceTable | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        company_choices: CompanyChoicesSource | None = None,
    ) -> None:
        """``company_choices``: each company's own routes and budget (read per request)."""
        self._clock: Clock = clock or SystemClock()
        self._company_choices = company_choices
        self._routes = routes or RouteConfig()
        self._ledger = ledger
        self._budgets = budgets or BudgetPolicy()
        self._prices = prices or PriceTable()
        self._retry = retry or RetryPolicy()
        self._providers: dict[str, LLMProvider] = {}
        for provider in providers:
            if provider.name in self._providers:
                raise LLMConfigError(f"two providers are named {provider.name!r}")
            self._providers[provider.name] = provider
        extractive = self._providers.setdefault(EXTRACTIVE, ExtractiveComposer())
        self._extractive = extractive
        unknown = self._routes.provider_names() - set(self._providers)
        if unknown:
            raise LLMConfigError(
                f"routes name providers that are not configured: {sorted(unknown)}; "
                f"configured: {sorted(self._providers)}"
            )
        policy = breaker or BreakerPolicy()
        self._breakers = {name: CircuitBreaker(policy, self._clock) for name in self._providers}

    @property
    def providers(self) -> Mapping[str, LLMProvider]:
        return dict(self._providers)

    @property
    def routes(self) -> RouteConfig:
        return self._routes

    def breaker_state(self, provider: str) -> BreakerState:
        return self._breakers[provider].state

    # ------------------------------------------------------------------------------ plan

    async def company_choices(self, company_id: str) -> CompanyChoices:
        """The company's own LLM choices; none when they cannot be read (answering goes on
        with the operator's routes and budget)."""
        if self._company_choices is None:
            return NO_CHOICES
        try:
            return await self._company_choices(company_id)
        except Exception:
            logger.exception("llm_company_choices_lookup_failed", company_id=company_id)
            return NO_CHOICES

    def limits_for(self, company_id: str, choices: CompanyChoices) -> CompanyBudget:
        """The operator's limits, made stricter by the company's own monthly budget."""
        limits = self._budgets.limits_for(company_id)
        own = choices.monthly_budget_usd
        if own is None:
            return limits
        operator = limits.monthly_cost_usd
        return limits.model_copy(
            update={"monthly_cost_usd": own if operator is None else min(own, operator)}
        )

    async def budget_status(
        self, company_id: str, choices: CompanyChoices | None = None
    ) -> BudgetStatus | None:
        """The company's spend this month against its limits; None when it has no limits."""
        if choices is None:
            choices = await self.company_choices(company_id)
        limits = self.limits_for(company_id, choices)
        if self._ledger is None or limits.unlimited:
            return None
        month = month_of(self._clock.now())
        try:
            tokens, cost = await self._ledger.spent(company_id, month)
        except Exception:
            # The ledger being down must not take answering down with it; spend is still
            # recorded (or logged) after the call.
            logger.exception("llm_budget_lookup_failed", company_id=company_id)
            return None
        return BudgetStatus(limits.state(tokens, cost), month, tokens, cost, limits)

    def route_for(self, company_id: str, task: Task, choices: CompanyChoices) -> TaskRoute:
        """The operator's route, with the company's chain for this task (or its preferred
        provider first) when it chose one. Only configured providers are kept: a name an
        operator has since removed is skipped, never resolved to anything else."""
        route = self._routes.route_for(company_id, task)
        if task in choices.tasks:
            chain: tuple[str, ...] = choices.tasks[task]
        elif choices.route is not None and choices.route != DEFAULT_ROUTE:
            chain = (choices.route, *route.chain)
        else:
            return route
        if EXTRACTIVE in chain:
            # The extractive composer always answers: whatever follows it is unreachable
            # (and the plan appends it as the last resort anyway).
            chain = chain[: chain.index(EXTRACTIVE)]
        known = tuple(dict.fromkeys(name for name in chain if name in self._providers))
        if len(known) < len(chain):
            logger.warning(
                "llm_company_route_unknown_provider",
                company_id=company_id,
                task=task,
                chosen=list(chain),
                configured=sorted(self._providers),
            )
        return route.model_copy(update={"chain": known})

    async def plan(self, req: LLMRequest) -> RoutePlan:
        choices = await self.company_choices(req.company_id)
        route = self.route_for(req.company_id, req.task, choices)
        budget = await self.budget_status(req.company_id, choices)
        state = budget.state if budget is not None else "ok"
        if state == "ok":
            names = route.chain
        elif state == "economy":
            names = route.economy_chain
        else:
            names = ()
        chain = tuple(dict.fromkeys([*(n for n in names if n != EXTRACTIVE), EXTRACTIVE]))
        return RoutePlan(chain, route.timeout_s, budget)

    # -------------------------------------------------------------------------- complete

    async def complete(self, req: LLMRequest) -> LLMResult:
        plan = await self.plan(req)
        for name in plan.chain:
            result = await self._complete_with(name, req, plan.timeout_s)
            if result is not None:
                return await self._finish(req, result)
        # Unreachable while the extractive composer is in the chain; kept as the guarantee.
        return await self._finish(req, await self._extractive.complete(req))

    async def _complete_with(
        self, name: str, req: LLMRequest, timeout_s: float
    ) -> LLMResult | None:
        provider = self._providers[name]
        if name == EXTRACTIVE:
            return await provider.complete(req)
        breaker = self._breakers[name]
        attempt = 0
        while True:
            attempt += 1
            if not breaker.try_acquire():
                logger.info("llm_provider_skipped", provider=name, reason="circuit_open")
                return None
            try:
                async with asyncio.timeout(timeout_s):
                    result = await provider.complete(req)
            except asyncio.CancelledError:
                # The caller gave up: that says nothing about the provider, but a half-open
                # probe slot must not stay claimed forever.
                breaker.release()
                raise
            except TimeoutError:
                error: ProviderError = ProviderTimeout(
                    f"no result within {timeout_s}s", provider=name
                )
            except ProviderError as exc:
                error = exc
            except Exception as exc:
                logger.exception("llm_provider_crashed", provider=name)
                error = ProviderError(f"unexpected {type(exc).__name__}", provider=name)
            else:
                breaker.record_success()
                return result
            delay = self._after_failure(name, breaker, error, attempt, req)
            if delay is None:
                return None
            await self._clock.sleep(delay)

    # ---------------------------------------------------------------------------- stream

    async def stream(self, req: LLMRequest) -> AsyncGenerator[StreamEvent, None]:
        """Text deltas, then exactly one :class:`Completed` or :class:`StreamFailed`."""
        plan = await self.plan(req)
        for name in plan.chain:
            provider = self._providers[name]
            breaker = self._breakers[name]
            exempt = name == EXTRACTIVE
            attempt = 0
            while True:
                attempt += 1
                if not exempt and not breaker.try_acquire():
                    logger.info("llm_provider_skipped", provider=name, reason="circuit_open")
                    break
                sent: list[str] = []
                events = provider.stream(req)
                try:
                    while True:
                        try:
                            async with asyncio.timeout(None if exempt else plan.timeout_s):
                                event = await anext(events)
                        except StopAsyncIteration:
                            raise ProviderError(
                                "stream ended without a result", provider=name
                            ) from None
                        if isinstance(event, TextDelta):
                            sent.append(event.text)
                            yield event
                        else:
                            breaker.record_success()
                            yield Completed(await self._finish(req, event.result))
                            return
                except (asyncio.CancelledError, GeneratorExit):
                    breaker.release()  # the client left; free a half-open probe slot
                    raise
                except TimeoutError:
                    error: ProviderError = ProviderTimeout(
                        f"no event within {plan.timeout_s}s", provider=name
                    )
                except ProviderError as exc:
                    error = exc
                except Exception as exc:
                    logger.exception("llm_provider_crashed", provider=name)
                    error = ProviderError(f"unexpected {type(exc).__name__}", provider=name)
                finally:
                    await _close(events)
                if sent:
                    # Text already reached the client: switching provider now would splice
                    # two different answers together, so the stream ends with the error.
                    self._after_failure(name, breaker, error, self._retry.max_attempts, req)
                    await self._record_partial(req, provider, "".join(sent))
                    yield StreamFailed(
                        code=error.code,
                        detail=str(error.detail),
                        provider=name,
                        model=provider.model,
                        partial_text="".join(sent),
                    )
                    return
                delay = self._after_failure(name, breaker, error, attempt, req)
                if delay is None:
                    break
                await self._clock.sleep(delay)
        yield Completed(await self._finish(req, await self._extractive.complete(req)))

    # ------------------------------------------------------------------------- shared

    def _after_failure(
        self,
        name: str,
        breaker: CircuitBreaker,
        error: ProviderError,
        attempt: int,
        req: LLMRequest,
    ) -> float | None:
        """Note the failure; return how long to wait before retrying, or None to move on."""
        if error.counts_for_breaker:
            breaker.record_failure()
        else:
            breaker.release()
        delay: float | None = None
        if error.retryable and attempt < self._retry.max_attempts:
            if error.retry_after is not None:
                if error.retry_after <= self._retry.max_retry_after_s:
                    delay = error.retry_after
            else:
                delay = min(self._retry.base_delay_s * 2 ** (attempt - 1), self._retry.max_delay_s)
        logger.warning(
            "llm_provider_failed",
            provider=name,
            company_id=req.company_id,
            task=req.task,
            error=error.code,
            detail=str(error.detail),
            attempt=attempt,
            retry_in_s=delay,
            breaker=breaker.state,
        )
        return delay

    async def _finish(self, req: LLMRequest, result: LLMResult) -> LLMResult:
        priced = replace(result, cost_usd=self._prices.cost(result.model, result.usage))
        await self._record(
            req.company_id, priced.usage, priced.cost_usd, priced.provider, priced.model
        )
        return priced

    async def _record_partial(self, req: LLMRequest, provider: LLMProvider, text: str) -> None:
        # The provider billed the tokens it streamed even though the answer broke off.
        usage = Usage(
            estimate_prompt_tokens(req.system, [m.content for m in req.messages]),
            estimate_tokens(text),
        )
        cost = self._prices.cost(provider.model, usage)
        await self._record(req.company_id, usage, cost, provider.name, provider.model)

    async def _record(
        self, company_id: str, usage: Usage, cost: float, provider: str, model: str
    ) -> None:
        if self._ledger is None:
            return
        try:
            await self._ledger.record(company_id, usage, cost, provider, model)
        except Exception:
            logger.exception(
                "llm_usage_record_failed",
                company_id=company_id,
                provider=provider,
                tokens=usage.total_tokens,
                cost_usd=cost,
            )


async def _close(events: Any) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
