"""The router over real HTTP providers talking to local wire-protocol servers: fallback
chains, Retry-After on the injected clock, timeouts, the circuit breaker, budgets, per-company
routes and streaming fallback."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from backend.llm.breaker import BreakerPolicy, CircuitBreaker
from backend.llm.budget import BudgetPolicy, CompanyBudget, InMemoryBudgetLedger
from backend.llm.builder import build_router_from_settings
from backend.llm.clock import month_of
from backend.llm.company_choice import CompanyChoices
from backend.llm.errors import LLMConfigError
from backend.llm.pricing import PriceTable
from backend.llm.providers.anthropic import AnthropicProvider
from backend.llm.providers.openai_compatible import OpenAICompatibleProvider
from backend.llm.router import LLMRouter, RetryPolicy, RouteConfig, TaskRoute
from backend.llm.types import (
    ChatMessage,
    Completed,
    LLMRequest,
    Passage,
    StreamEvent,
    StreamFailed,
    TextDelta,
    Usage,
)
from tests.llm.payloads import (
    ANTHROPIC_MODEL,
    OPENAI_MODEL_SNAPSHOT,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    openai_completion,
    openai_error,
    openai_stream,
)
from tests.llm.wire import FakeClock, Reply, ScriptedServer

PASSAGES = (
    Passage(
        id="kb-reset",
        title="Reset your password",
        text=(
            "To reset your password, open Settings and choose Security. "
            "The reset link expires after 24 hours."
        ),
    ),
)


def _request(company_id: str = "acme", task: str = "answer") -> LLMRequest:
    return LLMRequest(
        task=task,  # type: ignore[arg-type]
        company_id=company_id,
        system="Answer from the passages.",
        messages=[ChatMessage("user", "How do I reset my password?")],
        passages=PASSAGES,
    )


def _router(
    server: ScriptedServer,
    second_server: ScriptedServer,
    client: httpx.AsyncClient,
    clock: FakeClock,
    *,
    routes: RouteConfig | None = None,
    ledger: InMemoryBudgetLedger | None = None,
    budgets: BudgetPolicy | None = None,
    max_attempts: int = 2,
    breaker: BreakerPolicy | None = None,
) -> LLMRouter:
    openai = OpenAICompatibleProvider(
        name="openai", base_url=server.url, model="gpt-4o-mini", api_key="sk-x", client=client
    )
    anthropic = AnthropicProvider(
        api_key="sk-ant", model=ANTHROPIC_MODEL, base_url=second_server.url, client=client
    )
    return LLMRouter(
        [openai, anthropic],
        routes or RouteConfig(default=TaskRoute(chain=("openai", "anthropic"), timeout_s=5)),
        ledger=ledger,
        budgets=budgets,
        clock=clock,
        retry=RetryPolicy(max_attempts=max_attempts, base_delay_s=0.5, max_retry_after_s=10),
        breaker=breaker or BreakerPolicy(failure_threshold=5, cooldown_s=30),
    )


async def _collect(router: LLMRouter, request: LLMRequest) -> list[StreamEvent]:
    return [event async for event in router.stream(request)]


# ---------------------------------------------------------------------------- complete


async def test_server_errors_retry_with_backoff_then_fall_back(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    server.script(openai_error(500, "boom"), openai_error(502, "bad gateway"))
    second_server.script(anthropic_message("Open Settings, then Security [1]."))
    result = await _router(server, second_server, http_client, clock).complete(_request())

    assert (result.provider, result.model) == ("anthropic", ANTHROPIC_MODEL)
    assert result.cited_passage_ids == ("kb-reset",)
    assert len(server.requests) == 2
    assert clock.sleeps == [0.5]  # one backoff between the two attempts, none after


async def test_rate_limit_waits_retry_after_on_the_clock(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    server.script(
        openai_error(429, "Rate limit reached", headers={"retry-after": "3"}),
        openai_completion("Open Settings [1]."),
    )
    result = await _router(server, second_server, http_client, clock).complete(_request())

    assert result.provider == "openai"
    assert result.model == OPENAI_MODEL_SNAPSHOT
    assert clock.sleeps == [3.0]
    assert len(server.requests) == 2
    assert second_server.requests == []


async def test_retry_after_beyond_bound_goes_to_next_provider(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    server.script(openai_error(429, "quota", headers={"retry-after": "600"}))
    second_server.script(anthropic_message("Open Settings [1]."))
    result = await _router(server, second_server, http_client, clock).complete(_request())

    assert result.provider == "anthropic"
    assert clock.sleeps == []
    assert len(server.requests) == 1


async def test_anthropic_overloaded_is_retried_then_succeeds(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    routes = RouteConfig(default=TaskRoute(chain=("anthropic",)))
    second_server.script(
        anthropic_error(529, "overloaded_error", "Overloaded", {"retry-after": "2"}),
        anthropic_message("Open Settings [1]."),
    )
    router = _router(server, second_server, http_client, clock, routes=routes)
    result = await router.complete(_request())
    assert result.provider == "anthropic"
    assert clock.sleeps == [2.0]


async def test_timeout_falls_back(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    routes = RouteConfig(default=TaskRoute(chain=("openai", "anthropic"), timeout_s=0.2))
    server.script(Reply(hang_s=1.0, body=b"{}"))
    second_server.script(anthropic_message("Open Settings [1]."))
    router = _router(server, second_server, http_client, clock, routes=routes, max_attempts=1)
    result = await router.complete(_request())
    assert result.provider == "anthropic"


async def test_malformed_response_is_not_retried(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    server.script(
        Reply(headers={"content-type": "application/json"}, body=b"<html>proxy error</html>")
    )
    second_server.script(anthropic_message("Open Settings [1]."))
    result = await _router(server, second_server, http_client, clock).complete(_request())
    assert result.provider == "anthropic"
    assert len(server.requests) == 1
    assert clock.sleeps == []


async def test_every_provider_failing_ends_in_extractive(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    server.script(openai_error(500, "down"), openai_error(500, "down"))
    second_server.script(
        anthropic_error(500, "api_error", "down"), anthropic_error(500, "api_error", "down")
    )
    result = await _router(server, second_server, http_client, clock).complete(_request())

    assert (result.provider, result.model) == ("extractive", "extractive-v2")
    assert result.cited_passage_ids == ("kb-reset",)
    assert "open Settings and choose Security" in result.text
    assert result.cost_usd == 0.0


# ---------------------------------------------------------------------- circuit breaker


async def test_circuit_breaker_opens_half_opens_and_closes(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    router = _router(
        server,
        second_server,
        http_client,
        clock,
        max_attempts=1,
        breaker=BreakerPolicy(failure_threshold=2, cooldown_s=30),
    )
    server.script(openai_error(500, "down"), openai_error(500, "down"))
    second_server.script(*(anthropic_message("fallback") for _ in range(3)))

    for _ in range(2):
        assert (await router.complete(_request())).provider == "anthropic"
    assert router.breaker_state("openai") == "open"

    # Open: the provider is skipped without a request.
    assert (await router.complete(_request())).provider == "anthropic"
    assert len(server.requests) == 2

    clock.advance(29)
    assert router.breaker_state("openai") == "open"
    clock.advance(1)
    assert router.breaker_state("openai") == "half_open"

    # Half-open: one probe goes through; its success closes the circuit.
    server.script(openai_completion("recovered"))
    result = await router.complete(_request())
    assert result.provider == "openai"
    assert router.breaker_state("openai") == "closed"
    assert len(server.requests) == 3


async def test_failed_probe_reopens_the_circuit(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    router = _router(
        server,
        second_server,
        http_client,
        clock,
        max_attempts=1,
        breaker=BreakerPolicy(failure_threshold=1, cooldown_s=10),
    )
    server.script(openai_error(500, "down"), openai_error(503, "still down"))
    second_server.script(*(anthropic_message("fallback") for _ in range(3)))

    await router.complete(_request())
    assert router.breaker_state("openai") == "open"
    clock.advance(10)
    assert (await router.complete(_request())).provider == "anthropic"  # the probe failed
    assert router.breaker_state("openai") == "open"
    assert (await router.complete(_request())).provider == "anthropic"
    assert len(server.requests) == 2


async def test_bad_request_does_not_trip_the_breaker(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    router = _router(
        server,
        second_server,
        http_client,
        clock,
        breaker=BreakerPolicy(failure_threshold=1, cooldown_s=10),
    )
    server.script(openai_error(400, "maximum context length exceeded"))
    second_server.script(anthropic_message("fallback"))
    assert (await router.complete(_request())).provider == "anthropic"
    assert router.breaker_state("openai") == "closed"
    assert len(server.requests) == 1  # a rejected request is not retried


# ------------------------------------------------------------------------------ budgets


def _budget_routes() -> RouteConfig:
    return RouteConfig(default=TaskRoute(chain=("anthropic",), economy_chain=("openai",)))


async def test_usage_and_cost_are_recorded_from_the_price_table(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    ledger = InMemoryBudgetLedger(clock)
    router = _router(
        server, second_server, http_client, clock, routes=_budget_routes(), ledger=ledger
    )
    second_server.script(
        anthropic_message("Open Settings [1].", input_tokens=1200, output_tokens=300)
    )
    result = await router.complete(_request())

    expected_cost = PriceTable().cost(ANTHROPIC_MODEL, Usage(1200, 300))
    assert expected_cost > 0
    assert result.cost_usd == pytest.approx(expected_cost)
    month = month_of(clock.now())
    assert ledger.records == [
        ("acme", month, Usage(1200, 300), result.cost_usd, "anthropic", ANTHROPIC_MODEL)
    ]
    tokens, cost = await ledger.spent("acme", month)
    assert tokens == 1500
    assert cost == pytest.approx(expected_cost)
    assert await ledger.spent("globex", month) == (0, 0.0)


async def test_budget_economy_then_exhausted_then_next_month(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    ledger = InMemoryBudgetLedger(clock)
    budgets = BudgetPolicy(companies={"acme": CompanyBudget(monthly_cost_usd=10.0, economy_at=0.8)})
    router = _router(
        server,
        second_server,
        http_client,
        clock,
        routes=_budget_routes(),
        ledger=ledger,
        budgets=budgets,
    )
    month = month_of(clock.now())

    ledger.add_spend("acme", month, tokens=0, cost=8.5)  # past 80 %: the cheaper chain
    server.script(openai_completion("Open Settings [1]."))
    plan = await router.plan(_request())
    assert plan.budget is not None and plan.budget.state == "economy"
    assert (await router.complete(_request())).provider == "openai"

    ledger.add_spend("acme", month, tokens=0, cost=2.0)  # over the limit: no model at all
    result = await router.complete(_request())
    assert result.provider == "extractive"
    events = await _collect(router, _request())
    assert isinstance(events[-1], Completed) and events[-1].result.provider == "extractive"
    assert len(server.requests) == 1
    assert second_server.requests == []

    # Another company is untouched by acme's spend (it has the default: no limit).
    second_server.script(anthropic_message("Open Settings [1]."))
    assert (await router.complete(_request("globex"))).provider == "anthropic"

    clock.advance(31 * 24 * 3600)  # a new month starts with nothing spent
    second_server.script(anthropic_message("Open Settings [1]."))
    assert (await router.complete(_request())).provider == "anthropic"


async def test_token_budget(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    ledger = InMemoryBudgetLedger(clock)
    budgets = BudgetPolicy(default=CompanyBudget(monthly_tokens=1000))
    router = _router(
        server,
        second_server,
        http_client,
        clock,
        routes=_budget_routes(),
        ledger=ledger,
        budgets=budgets,
    )
    second_server.script(
        anthropic_message("Open Settings [1].", input_tokens=900, output_tokens=150)
    )
    assert (await router.complete(_request())).provider == "anthropic"
    # That one call used up the month's tokens.
    assert (await router.complete(_request())).provider == "extractive"


class _BrokenLedger:
    async def spent(self, company_id: str, month: str) -> tuple[int, float]:
        raise ConnectionError("database is down")

    async def record(
        self, company_id: str, usage: Usage, cost: float, provider: str, model: str
    ) -> None:
        raise ConnectionError("database is down")


async def test_ledger_failure_never_fails_the_answer(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    openai = OpenAICompatibleProvider(
        name="openai", base_url=server.url, model="gpt-4o-mini", client=http_client
    )
    router = LLMRouter(
        [openai],
        RouteConfig(default=TaskRoute(chain=("openai",))),
        ledger=_BrokenLedger(),
        budgets=BudgetPolicy(default=CompanyBudget(monthly_cost_usd=1)),
        clock=clock,
    )
    server.script(openai_completion("Open Settings [1]."))
    assert (await router.complete(_request())).provider == "openai"


# ------------------------------------------------------------------------------ routes


async def test_per_company_and_per_task_routes(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    routes = RouteConfig.from_json(
        """{"default": {"chain": ["openai"]},
            "tasks": {"summarize": {"chain": []}},
            "companies": {"acme": {"tasks": {"draft_reply": {"chain": ["anthropic"]}}}}}"""
    )
    router = _router(server, second_server, http_client, clock, routes=routes)
    server.script(openai_completion("a"), openai_completion("b"))
    second_server.script(anthropic_message("c"))

    assert (await router.complete(_request("acme", "draft_reply"))).provider == "anthropic"
    assert (await router.complete(_request("acme", "answer"))).provider == "openai"
    assert (await router.complete(_request("globex", "draft_reply"))).provider == "openai"
    assert (await router.complete(_request("globex", "summarize"))).provider == "extractive"


def test_routes_must_name_configured_providers(http_client: httpx.AsyncClient) -> None:
    with pytest.raises(LLMConfigError):
        build_router_from_settings(
            client=http_client, routes_json='{"default": {"chain": ["openai"]}}'
        )
    with pytest.raises(LLMConfigError):
        build_router_from_settings(
            client=http_client, routes_json='{"companies": {"Not Valid": {}}}'
        )
    with pytest.raises(LLMConfigError):
        build_router_from_settings(client=http_client, routes_json="{not json")


async def test_nothing_configured_means_extractive(http_client: httpx.AsyncClient) -> None:
    router = build_router_from_settings(client=http_client)
    assert set(router.providers) == {"extractive"}
    result = await router.complete(_request())
    assert (result.provider, result.model) == ("extractive", "extractive-v2")


async def test_builder_wires_configured_providers(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    router = build_router_from_settings(
        client=http_client,
        clock=clock,
        openai_base_url=server.url + "/v1",
        openai_api_key="sk-x",
        anthropic_api_key="sk-ant",
        anthropic_base_url=second_server.url,
        local_base_url=server.url,
        local_model="smollm2",
        budgets_json='{"companies": {"acme": {"monthly_cost_usd": 5}}}',
        prices_json='{"smollm2": {"input": 0.01, "output": 0.02}}',
    )
    assert set(router.providers) == {"openai", "anthropic", "local", "extractive"}
    plan = await router.plan(_request())
    assert plan.chain == ("openai", "anthropic", "local", "extractive")
    server.script(openai_completion("hello"))
    assert (await router.complete(_request())).provider == "openai"
    assert server.requests[0].headers["authorization"] == "Bearer sk-x"


# ---------------------------------------------------------------------------- streaming


async def test_stream_falls_back_when_first_provider_fails_before_text(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    server.script(openai_error(503, "unavailable"), openai_error(503, "unavailable"))
    second_server.script(anthropic_stream(["Open ", "Settings [1]."]))
    events = await _collect(_router(server, second_server, http_client, clock), _request())

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Open ", "Settings [1]."]
    assert isinstance(events[-1], Completed)
    assert events[-1].result.provider == "anthropic"
    assert events[-1].result.cited_passage_ids == ("kb-reset",)
    assert events[-1].result.cost_usd == pytest.approx(
        PriceTable().cost(ANTHROPIC_MODEL, Usage(42, 11))
    )


async def test_stream_stalled_before_text_falls_back(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    routes = RouteConfig(default=TaskRoute(chain=("openai", "anthropic"), timeout_s=0.3))
    server.script(openai_stream(["late"], pause_s=1.0))
    second_server.script(anthropic_stream(["On time."]))
    router = _router(server, second_server, http_client, clock, routes=routes, max_attempts=1)
    events = await _collect(router, _request())
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["On time."]
    assert isinstance(events[-1], Completed) and events[-1].result.provider == "anthropic"


async def test_stream_failing_after_text_ends_with_error_event(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    ledger = InMemoryBudgetLedger(clock)
    # The connection drops after the role chunk and two text chunks.
    server.script(openai_stream(["Open ", "Settings", " and then"], cut_after=3))
    router = _router(server, second_server, http_client, clock, ledger=ledger)
    events = await _collect(router, _request())

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Open ", "Settings"]
    final = events[-1]
    assert isinstance(final, StreamFailed)
    assert (final.provider, final.partial_text) == ("openai", "Open Settings")
    assert final.code == "llm_unavailable"
    assert not any(isinstance(e, Completed) for e in events)
    assert second_server.requests == []  # no silent switch mid-answer
    assert clock.sleeps == []
    # The streamed tokens were billed by the provider, so they are recorded (estimated).
    (record,) = ledger.records
    assert record[4] == "openai" and record[2].completion_tokens > 0


async def test_stream_error_event_after_text(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    routes = RouteConfig(default=TaskRoute(chain=("anthropic", "openai")))
    second_server.script(anthropic_stream(["Open ", "Settings", "!"], error_after=1))
    events = await _collect(
        _router(server, second_server, http_client, clock, routes=routes), _request()
    )
    assert [type(e).__name__ for e in events] == ["TextDelta", "StreamFailed"]
    assert isinstance(events[-1], StreamFailed) and events[-1].code == "llm_server_error"
    assert server.requests == []


async def test_stream_ends_in_extractive_when_all_fail(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    server.script(openai_error(500, "down"))
    second_server.script(anthropic_error(401, "authentication_error", "invalid x-api-key"))
    router = _router(server, second_server, http_client, clock, max_attempts=1)
    events = await _collect(router, _request())

    final = events[-1]
    assert isinstance(final, Completed)
    assert final.result.provider == "extractive"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == final.result.text
    assert sum(isinstance(e, TextDelta) for e in events) > 3  # word chunks, not one blob


async def test_stream_consumer_can_stop_early(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    server.script(openai_stream(["one ", "two ", "three"], pause_s=0.05))
    stream = _router(server, second_server, http_client, clock).stream(_request())
    first = await anext(stream)
    assert first == TextDelta("one ")
    await stream.aclose()  # e.g. the SSE client went away; the upstream request is closed


def test_half_open_lets_one_probe_through(clock: FakeClock) -> None:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, cooldown_s=5), clock)
    for _ in range(3):
        assert breaker.try_acquire()
        breaker.record_failure()
    assert breaker.state == "open" and not breaker.try_acquire()
    clock.advance(5)
    assert breaker.try_acquire()  # the probe
    assert not breaker.try_acquire()  # a concurrent call waits for the probe's verdict
    breaker.record_success()
    assert breaker.consecutive_failures == 0
    assert breaker.try_acquire() and breaker.try_acquire()  # closed: everyone goes through


async def test_cancelled_probe_frees_the_slot(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    router = _router(
        server,
        second_server,
        http_client,
        clock,
        max_attempts=1,
        breaker=BreakerPolicy(failure_threshold=1, cooldown_s=10),
    )
    server.script(openai_error(500, "down"), Reply(hang_s=1.0, body=b"{}"))
    second_server.script(anthropic_message("fallback"))
    await router.complete(_request())
    clock.advance(10)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(router.complete(_request()), timeout=0.2)  # the caller gives up
    assert router.breaker_state("openai") == "half_open"
    server.script(openai_completion("recovered"))
    assert (await router.complete(_request())).provider == "openai"


# ------------------------------------------------------------------ company choices


async def test_company_choices_narrow_routes_and_budgets(
    server: ScriptedServer,
    second_server: ScriptedServer,
    http_client: httpx.AsyncClient,
    clock: FakeClock,
) -> None:
    """A company's own route keeps only configured providers; its budget only tightens the
    operator's; choices that cannot be read leave the operator's routes in place."""
    stored = {
        "acme": CompanyChoices(route="anthropic", monthly_budget_usd=5.0),
        # "local" was configured once and removed by the operator since.
        "globex": CompanyChoices(tasks={"answer": ("local", "openai")}, monthly_budget_usd=50),
    }

    async def choices(company_id: str) -> CompanyChoices:
        if company_id == "broken":
            raise ConnectionError("settings unreadable")
        return stored.get(company_id, CompanyChoices())

    ledger = InMemoryBudgetLedger(clock)
    router = LLMRouter(
        _router(server, second_server, http_client, clock).providers.values(),
        RouteConfig(default=TaskRoute(chain=("openai",), economy_chain=("openai",), timeout_s=5)),
        ledger=ledger,
        budgets=BudgetPolicy(default=CompanyBudget(monthly_cost_usd=10.0)),
        clock=clock,
        company_choices=choices,
    )
    assert (await router.plan(_request("acme"))).chain == ("anthropic", "openai", "extractive")
    assert (await router.plan(_request("acme", "summarize"))).chain[0] == "anthropic"
    assert (await router.plan(_request("globex"))).chain == ("openai", "extractive")
    assert (await router.plan(_request("globex", "summarize"))).chain == ("openai", "extractive")
    assert (await router.plan(_request("broken"))).chain == ("openai", "extractive")

    month = month_of(clock.now())
    ledger.add_spend("acme", month, tokens=0, cost=4.5)  # 90 % of its own $5
    ledger.add_spend("globex", month, tokens=0, cost=9.5)  # 95 % of the operator's $10
    acme = await router.plan(_request("acme"))
    assert acme.budget is not None and acme.budget.state == "economy"
    assert acme.budget.limits.monthly_cost_usd == 5.0
    globex = await router.plan(_request("globex"))
    assert globex.budget is not None and globex.budget.limits.monthly_cost_usd == 10.0
    assert globex.budget.state == "economy"
