"""Company settings change what the assistant does (issue 16), through the real API and
Postgres: LLM routes among the operator's providers, the stricter monthly budget, reply
languages and the widget token audiences. Two scripted OpenAI-compatible servers on loopback
stand for the operator's `openai` and `local` providers."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from backend.db.session import Database
from backend.llm.company_choice import CachedCompanyChoices, CompanyChoices
from backend.tenancy import service
from backend.tenancy.scope import open_rows
from tests.conftest import CompanyWithKey
from tests.console.conftest import ConsoleUser, SignIn
from tests.llm.payloads import openai_completion
from tests.llm.wire import FakeClock, ScriptedServer

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]

# The operator caps this company at nothing: its own budget cannot loosen that.
CAPPED_PREFIX = "capped"


@pytest.fixture
def hosted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def local() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def capped_company_id() -> str:
    return f"{CAPPED_PREFIX}-{secrets.token_hex(4)}"


@pytest.fixture
async def app(
    settings: Settings, hosted: ScriptedServer, local: ScriptedServer, capped_company_id: str
) -> AsyncIterator[FastAPI]:
    configured = settings.model_copy(
        update={
            "llm_openai_base_url": f"{hosted.url}/v1",
            "llm_openai_api_key": None,
            "llm_local_base_url": f"{local.url}/v1",
            "llm_max_attempts": 1,
            "llm_routes": json.dumps({"default": {"chain": ["openai", "local"]}}),
            "llm_budgets": json.dumps(
                {
                    "default": {"monthly_cost_usd": 100},
                    "companies": {capped_company_id: {"monthly_cost_usd": 0}},
                }
            ),
        }
    )
    application = create_app(configured)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


def _ticket(subject: str, text: str = "I cannot reset my password.") -> dict[str, object]:
    # A new subject each call: no answer comes from the response cache.
    return {"ticket": {"subject": f"{subject} {secrets.token_hex(3)}", "description": text}}


async def _draft(client: httpx.AsyncClient, company: CompanyWithKey, subject: str) -> str:
    response = await client.post("/v1/draft-reply", json=_ticket(subject), headers=company.headers)
    assert response.status_code == 200, response.text
    provider = response.json()["provider"]
    assert isinstance(provider, str)
    return provider


async def _patch(owner: ConsoleUser, body: dict[str, object]) -> httpx.Response:
    return await owner.client.patch("/v1/company/settings", json=body, headers=owner.unsafe)


async def test_company_routes_and_budget_steer_the_router(
    make_company: MakeCompany,
    console_user: SignIn,
    client: httpx.AsyncClient,
    hosted: ScriptedServer,
    local: ScriptedServer,
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    owner = await console_user(acme, "owner")

    hosted.script(openai_completion("Hosted answer."))
    assert await _draft(client, acme, "before") == "openai"

    # The company prefers the operator's local model: it answers first from the next call.
    changed = await _patch(owner, {"llm": {"route": "local"}})
    assert changed.status_code == 200, changed.text
    local.script(openai_completion("Local answer."))
    assert await _draft(client, acme, "preferred") == "local"
    # Another company keeps the operator's route.
    hosted.script(openai_completion("Hosted answer."))
    assert await _draft(client, globex, "other company") == "openai"

    # A per-task chain wins over the preferred provider for that task only.
    changed = await _patch(owner, {"llm": {"route": "local", "tasks": {"draft_reply": []}}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["llm"]["tasks"] == {"draft_reply": []}
    assert await _draft(client, acme, "extractive only") == "extractive"
    local.script(openai_completion("Local answer."))
    asked = await client.post(
        "/v1/answer", json={"question": "How do I reset it?"}, headers=acme.headers
    )
    assert asked.status_code == 200 and asked.json()["provider"] == "local", asked.text

    # The console sends only `route` and the budget: the per-task routes stay.
    changed = await _patch(owner, {"llm": {"route": "openai", "monthly_budget_usd": None}})
    assert changed.json()["llm"]["tasks"] == {"draft_reply": []}, changed.text

    # A budget of zero: only the extractive composer answers (the operator allows $100).
    changed = await _patch(owner, {"llm": {"route": None, "tasks": None, "monthly_budget_usd": 0}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["llm"] == {"route": None, "tasks": None, "monthly_budget_usd": 0}
    before = len(hosted.requests) + len(local.requests)
    assert await _draft(client, acme, "no budget") == "extractive"
    assert len(hosted.requests) + len(local.requests) == before, "no model was called"
    hosted.script(openai_completion("Hosted answer."))
    assert await _draft(client, globex, "other budget") == "openai"

    # Cleared: the operator's route and budget again.
    cleared = await _patch(owner, {"llm": None})
    assert cleared.status_code == 200 and cleared.json()["llm"] is None
    hosted.script(openai_completion("Hosted answer."))
    assert await _draft(client, acme, "cleared") == "openai"


async def test_a_company_budget_never_loosens_the_operators(
    database: Database,
    console_user: SignIn,
    client: httpx.AsyncClient,
    capped_company_id: str,
) -> None:
    await service.create_company(database, company_id=capped_company_id, name="Cap", actor="t")
    async with open_rows(database, capped_company_id) as rows:
        issued = await service.issue_api_key(rows, name="test", actor="test")
    capped = CompanyWithKey(capped_company_id, issued.plaintext, str(issued.key.id))
    owner = await console_user(capped, "owner")
    changed = await _patch(owner, {"llm": {"monthly_budget_usd": 1000}})
    assert changed.status_code == 200, changed.text
    assert await _draft(client, capped, "capped") == "extractive"


async def test_routes_name_configured_providers_only(
    make_company: MakeCompany, console_user: SignIn
) -> None:
    owner = await console_user(await make_company("acme"), "owner")
    assert (await _patch(owner, {"llm": {"route": "openai"}})).status_code == 200
    for bad in (
        {"llm": {"route": "http://169.254.169.254/v1"}},
        {"llm": {"route": "anthropic"}},  # a provider this operator did not configure
        {"llm": {"tasks": {"answer": ["local", "https://evil.example/v1"]}}},
        {"llm": {"tasks": {"translate": ["local"]}}},
        {"llm": {"tasks": {"answer": ["local"] * 6}}},
    ):
        refused = await _patch(owner, bad)
        assert refused.status_code in (400, 422), (bad, refused.text)
        assert set(refused.json()) >= {"error", "detail"}
    unknown = await _patch(owner, {"llm": {"route": "http://169.254.169.254/v1"}})
    assert unknown.json()["error"] == "unknown_llm_provider"
    # Nothing was written by a refused change.
    read = await owner.client.get("/v1/company/settings")
    assert read.json()["llm"] == {"route": "openai", "tasks": None, "monthly_budget_usd": None}


async def test_replies_follow_the_company_languages(
    make_company: MakeCompany,
    console_user: SignIn,
    client: httpx.AsyncClient,
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    owner = await console_user(acme, "owner")
    # Models stay out of it: the extractive composer writes in the language asked for.
    assert (await _patch(owner, {"llm": {"tasks": {"draft_reply": []}}})).status_code == 200
    english = "I cannot reset my password, the link in the email does not work."

    async def language(company: CompanyWithKey) -> str:
        response = await client.post(
            "/v1/draft-reply", json=_ticket("Password", english), headers=company.headers
        )
        assert response.status_code == 200, response.text
        value = response.json()["language"]
        assert isinstance(value, str)
        return value

    assert await language(acme) == "en"
    assert (await _patch(owner, {"languages": ["ko", "ja"]})).status_code == 200
    assert await language(acme) == "ko"  # English is not listed: the first language
    assert await language(globex) == "en"  # another company's settings do not leak
    assert (await _patch(owner, {"languages": ["ko", "en-GB"]})).status_code == 200
    assert await language(acme) == "en"  # listed (by its base language): kept


async def test_audiences_decide_which_widget_tokens_are_minted(
    make_company: MakeCompany, console_user: SignIn, client: httpx.AsyncClient
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    owner = await console_user(acme, "owner")

    async def mint(company: CompanyWithKey, audience: str) -> httpx.Response:
        return await client.post(
            "/v1/widget-tokens", json={"audience": audience}, headers=company.headers
        )

    customer = await mint(acme, "customer")
    assert customer.status_code == 201, customer.text
    token = {
        "Authorization": f"Bearer {customer.json()['token']}",
        "X-Company-ID": acme.company_id,
    }
    # A customer token neither reads nor changes the settings.
    read = await client.get("/v1/company/settings", headers=token)
    assert read.status_code == 403, read.text
    changed = await client.patch(
        "/v1/company/settings", json={"audiences": ["customer"]}, headers=token
    )
    assert changed.status_code == 403, changed.text
    assert (await owner.client.get("/v1/company/settings")).json()["audiences"] is None

    assert (await _patch(owner, {"audiences": ["agent"]})).status_code == 200
    refused = await mint(acme, "customer")
    assert refused.status_code == 403
    assert refused.json()["error"] == "audience_not_allowed"
    assert (await mint(acme, "agent")).status_code == 201
    assert (await mint(globex, "customer")).status_code == 201  # no leak to another company

    assert (await _patch(owner, {"audiences": []})).status_code == 200
    assert (await mint(acme, "agent")).status_code == 403
    assert (await _patch(owner, {"audiences": None})).status_code == 200
    assert (await mint(acme, "customer")).status_code == 201


async def test_choices_are_cached_briefly_and_forgotten_on_change() -> None:
    clock = FakeClock()
    stored: dict[str, dict[str, object]] = {"acme": {"llm": {"route": "local"}}}
    reads: list[str] = []

    async def load(company_id: str) -> dict[str, object]:
        reads.append(company_id)
        return stored.get(company_id, {})

    choices = CachedCompanyChoices(load, clock, ttl_s=30)
    assert (await choices("acme")).route == "local"
    stored["acme"] = {"llm": {"route": "openai"}}
    assert (await choices("acme")).route == "local"  # within the cache time
    clock.advance(31)
    assert (await choices("acme")).route == "openai"
    stored["acme"] = {"llm": {"monthly_budget_usd": 5}}
    choices.forget("acme")
    assert await choices("acme") == CompanyChoices(monthly_budget_usd=5)
    assert await choices("globex") == CompanyChoices()
    assert reads == ["acme", "acme", "acme", "globex"]


async def test_preferring_the_extractive_composer_calls_no_model(
    make_company: MakeCompany,
    console_user: SignIn,
    client: httpx.AsyncClient,
    hosted: ScriptedServer,
    local: ScriptedServer,
) -> None:
    acme = await make_company("acme")
    owner = await console_user(acme, "owner")
    changed = await _patch(owner, {"llm": {"route": "extractive"}})
    assert changed.status_code == 200, changed.text
    assert await _draft(client, acme, "extractive preferred") == "extractive"
    assert hosted.requests == [] and local.requests == []
