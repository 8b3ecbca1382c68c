"""Token audiences on every /v1 endpoint, against knowledge ingested through a real sync.

What each credential gets (and why):

| endpoint | API key | agent token | customer token |
|---|---|---|---|
| POST /v1/search | all | all (*) | filtered: public articles |
| POST /v1/answer(/stream) | all | all (*) | filtered: public articles |
| ... with a `ticket` | all | own ticket (*) | 403 audience_forbidden |
| POST /v1/draft-reply(/stream) | 200 | own ticket (*) | 403 (ticket tool) |
| POST /v1/review-reply(/stream) | 200 | 200 | 403 (speaks for the company) |
| POST /v1/similar-tickets | 200 | 200 (*) | 403 (returns tickets) |
| POST /v1/summarize | 200 | own ticket (*) | 403 (ticket tool) |
| GET  /v1/tickets/{id} | 200 | own ticket (*) | 403 (ticket) |
| GET  /v1/company | 200 | 200 | 403 (settings) |
| POST /v1/feedback | 201 | 201 | 201 (rates an answer) |
| management (**) | 200 | 403 api_key_required | 403 api_key_required |

(**) widget-tokens, interactions, audit-log, connectors, sync-runs, documents, privacy.
(*) a token scoped to one ticket sees internal content of that ticket only: the retrieval
filter admits internal chunks only from its ticket. Search and answer are filtered rather
than refused for customers because public articles are exactly what a customer widget is
for; everything else either exists to work on tickets or exposes company internals.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from backend.retrieval import AGENT_SCOPE, CUSTOMER_SCOPE, AccessScope, SearchFilters
from backend.stack import Stack
from backend.tenancy.widget_tokens import TOKEN_SCHEME, WidgetTokenSigner, _b64
from tests.api.test_assistant_api import sync_file, write_jsonl
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
SECRET_NOTE = "Use override code 4471 to unlock the smart lock remotely."
OTHER_NOTE = "Battery recall batch 9932 is confidential until Friday."

KNOWLEDGE = [
    {
        "id": "kb-lock",
        "title": "Smart lock will not open",
        "body": "If the smart lock is stuck, open the app and choose Emergency unlock. The "
        "override takes a minute; keep the phone near the lock.",
    },
    {
        "id": "kb-battery",
        "title": "Smart lock battery",
        "body": "Replace the smart lock battery every twelve months with four AA cells.",
    },
    {
        "id": "t-1",
        "kind": "ticket",
        "title": "Smart lock override code needed",
        "status": "resolved",
        "requester": "jane@example.com",
        "body": "My smart lock is stuck and I need the override code to open the door.",
        "conversation": [
            {"author_role": "agent", "internal": True, "text": SECRET_NOTE},
            {"author_role": "agent", "text": "We unlocked it remotely for you."},
        ],
    },
    {
        "id": "t-2",
        "kind": "ticket",
        "title": "Smart lock battery drains fast",
        "status": "resolved",
        "requester": "max@example.com",
        "body": "The smart lock battery is empty after two weeks; is there an override?",
        "conversation": [
            {"author_role": "agent", "internal": True, "text": OTHER_NOTE},
            {"author_role": "agent", "text": "We sent a replacement battery pack."},
        ],
    },
    {
        "id": "r-1",
        "kind": "review",
        "title": "Great lock",
        "requester": "Kim Reviewer",
        "body": "The smart lock override saved me when I was locked out.",
    },
]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    # The in-process cache: one process, so an agent's cached search is there to be (not)
    # served to a customer.
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@dataclass
class Setup:
    acme: CompanyWithKey
    globex: CompanyWithKey
    state: Stack

    async def token(
        self, client: httpx.AsyncClient, audience: str | None = None, ticket: str | None = None
    ) -> dict[str, str]:
        body: dict[str, Any] = {}
        if audience is not None:
            body["audience"] = audience
        if ticket is not None:
            body["ticket_id"] = ticket
        response = await client.post("/v1/widget-tokens", headers=self.acme.headers, json=body)
        assert response.status_code == 201, response.text
        minted = response.json()
        assert minted["audience"] == (audience or "agent")
        return {"Authorization": f"Bearer {minted['token']}", "X-Company-ID": self.acme.company_id}


@pytest.fixture
async def setup(app: FastAPI, make_company: MakeCompany, tmp_path: Path) -> Setup:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    await sync_file(state, acme.company_id, write_jsonl(tmp_path / "acme.jsonl", KNOWLEDGE))
    return Setup(acme, globex, state)


def _texts(body: Any) -> str:
    return orjson.dumps(body).decode()


async def _search(client: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> Any:
    response = await client.post(
        "/v1/search", headers=headers, json={"query": "smart lock override code", **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_search_is_filtered_by_audience_and_ticket_scope(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    # The API key (and an unscoped agent token) see everything, the private note included.
    by_key = await _search(client, setup.acme.headers, limit=10)
    assert "4471" in _texts(by_key)
    assert {r["kind"] for r in by_key} >= {"article", "ticket", "review"}
    agent = await setup.token(client)
    assert "4471" in _texts(await _search(client, agent, limit=10))

    # A token for ticket t-2 sees its own note but not t-1's (the reported leak).
    scoped = await setup.token(client, ticket="t-2")
    found = await _search(client, scoped, limit=10)
    assert "4471" not in _texts(found)
    assert all(not r["internal"] for r in found if r["external_id"] != "ticket:t-2")
    assert any(r["external_id"] == "ticket:t-1" for r in found)  # its public part is fine
    assert "9932" in _texts(await _search(client, scoped, query="battery recall batch", limit=10))

    # A customer token: published articles only, whatever it asks for; the agent's cached
    # result for the same query is not served to it.
    customer = await setup.token(client, audience="customer")
    public = await _search(client, customer, limit=10)
    assert public, "customers still get the public articles"
    assert {r["kind"] for r in public} == {"article"}
    assert not any(r["internal"] for r in public)
    assert "4471" not in _texts(public) and "9932" not in _texts(public)
    assert await _search(client, customer, filters={"kinds": ["ticket", "review"]}) == []
    asked_internal = await _search(client, customer, include_internal=True, limit=10)
    assert {r["kind"] for r in asked_internal} == {"article"}


async def test_the_retrieval_filter_itself_enforces_the_scope(setup: Setup) -> None:
    """Below the handlers: the retriever applies the scope as vector-store conditions."""
    retriever = setup.state.assistant.assistant.retriever
    company = setup.acme.company_id
    everything = await retriever.search(company, "smart lock override code", limit=10)
    assert any(p.internal for p in everything)
    public = await retriever.search(
        company, "smart lock override code", limit=10, scope=CUSTOMER_SCOPE
    )
    assert public and all(p.kind == "article" and not p.internal for p in public)
    scoped = await retriever.search(
        company, "override code", limit=10, scope=AccessScope(ticket_id="t-2")
    )
    assert all(p.external_id == "ticket:t-2" for p in scoped if p.internal)
    similar = await retriever.similar_tickets(
        company, "smart lock override code", scope=AccessScope(ticket_id="t-2"), limit=5
    )
    assert "4471" not in " ".join(p.text for p in similar)
    # Asking a customer scope for tickets only leaves nothing to search.
    assert SearchFilters(kinds=("ticket",)).to_vector_filter(scope=CUSTOMER_SCOPE) is None
    agent_filter = SearchFilters().to_vector_filter(scope=AGENT_SCOPE)
    assert agent_filter is not None and agent_filter.internal_only_from is None


async def test_answers_follow_the_audience(client: httpx.AsyncClient, setup: Setup) -> None:
    question = {"question": "override code to unlock the smart lock remotely"}
    by_key = (await client.post("/v1/answer", headers=setup.acme.headers, json=question)).json()
    assert any(c["internal"] for c in by_key["context"])

    customer = await setup.token(client, audience="customer")
    public = (await client.post("/v1/answer", headers=customer, json=question)).json()
    assert public["context"], public
    assert all(c["kind"] == "article" and not c["internal"] for c in public["context"])
    assert "4471" not in _texts(public)
    streamed = await client.post("/v1/answer/stream", headers=customer, json=question)
    assert streamed.status_code == 200
    assert "4471" not in streamed.text and "event: done" in streamed.text

    scoped = await setup.token(client, ticket="t-2")
    narrowed = (await client.post("/v1/answer", headers=scoped, json=question)).json()
    assert "4471" not in _texts(narrowed)

    with_ticket = await client.post(
        "/v1/answer",
        headers=customer,
        json={**question, "ticket": {"id": "t-1", "subject": "lock", "description": "stuck"}},
    )
    assert with_ticket.status_code == 403
    assert with_ticket.json()["error"] == "audience_forbidden"


TICKET = {"id": "t-2", "subject": "Battery", "description": "My smart lock battery is empty."}
TICKET_TOOLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/draft-reply", {"ticket": TICKET}),
    ("POST", "/v1/draft-reply/stream", {"ticket": TICKET}),
    ("POST", "/v1/review-reply", {"review": {"text": "The lock broke.", "rating": 1}}),
    ("POST", "/v1/review-reply/stream", {"review": {"text": "The lock broke.", "rating": 1}}),
    ("POST", "/v1/similar-tickets", {"query": "smart lock override"}),
    ("POST", "/v1/summarize", {"ticket": {**TICKET, "conversation": []}}),
    ("GET", "/v1/tickets/t-2", None),
    ("GET", "/v1/company", None),
]


async def test_customer_tokens_get_no_ticket_tools_or_company_settings(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    customer = await setup.token(client, audience="customer")
    agent = await setup.token(client, ticket="t-2")
    for method, path, body in TICKET_TOOLS:
        refused = await client.request(method, path, headers=customer, json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json() == {
            "error": "audience_forbidden",
            "detail": refused.json()["detail"],
        }
        for headers, scoped in ((setup.acme.headers, False), (agent, True)):
            allowed = await client.request(method, path, headers=headers, json=body)
            assert allowed.status_code == 200, (path, allowed.text)
            if scoped:  # the t-2 token never sees t-1's private note
                assert "4471" not in allowed.text, path


async def test_ticket_scoped_agent_tokens_stay_on_their_ticket(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    scoped = await setup.token(client, ticket="t-2")
    other = {"ticket": {**TICKET, "id": "t-1"}}
    for path in ("/v1/draft-reply", "/v1/summarize"):
        response = await client.post(path, headers=scoped, json=other)
        assert response.status_code == 403
        assert response.json()["error"] == "ticket_out_of_scope"
    assert (await client.get("/v1/tickets/t-1", headers=scoped)).status_code == 403
    own = (await client.get("/v1/tickets/t-2", headers=scoped)).json()
    assert any(m["internal"] and "9932" in m["text"] for m in own["conversation"])
    similar = (
        await client.post(
            "/v1/similar-tickets", headers=scoped, json={"query": "smart lock override code"}
        )
    ).json()
    assert "4471" not in _texts(similar)


_NO_SUCH = uuid.uuid4()
# (method, path, body, status with an API key)
KEY_ONLY: list[tuple[str, str, dict[str, Any] | None, int]] = [
    ("POST", "/v1/widget-tokens", {}, 201),
    ("GET", "/v1/interactions", None, 200),
    ("GET", "/v1/audit-log", None, 200),
    ("GET", "/v1/connectors", None, 200),
    ("POST", "/v1/connectors", {"platform": "nope", "name": "x"}, 400),
    ("GET", f"/v1/connectors/{_NO_SUCH}", None, 404),
    ("PATCH", f"/v1/connectors/{_NO_SUCH}", {"name": "renamed"}, 404),
    ("DELETE", f"/v1/connectors/{_NO_SUCH}", None, 404),
    ("POST", f"/v1/connectors/{_NO_SUCH}/sync", None, 404),
    ("GET", f"/v1/connectors/{_NO_SUCH}/sync-runs", None, 200),
    ("GET", f"/v1/sync-runs/{_NO_SUCH}", None, 404),
    ("GET", "/v1/documents", None, 200),
    ("DELETE", f"/v1/documents/{_NO_SUCH}", None, 404),
    ("POST", "/v1/privacy/access-requester", {"requester": "jane@example.com"}, 200),
    ("POST", "/v1/privacy/erase-requester", {"requester": "nobody@example.com"}, 200),
]


async def test_management_endpoints_need_an_api_key_for_both_audiences(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    documents = (await client.get("/v1/documents", headers=setup.acme.headers)).json()
    ticket = next(d for d in documents if d["external_id"] == "ticket:t-1")
    endpoints = [*KEY_ONLY, ("GET", f"/v1/documents/{ticket['id']}", None, 200)]
    for audience in ("agent", "customer"):
        headers = await setup.token(client, audience=audience)
        for method, path, body, _ in endpoints:
            response = await client.request(method, path, headers=headers, json=body)
            assert response.status_code == 403, (audience, method, path, response.text)
            assert response.json()["error"] == "api_key_required"
    for method, path, body, expected in endpoints:
        response = await client.request(method, path, headers=setup.acme.headers, json=body)
        assert response.status_code == expected, (method, path, response.text)


async def test_documents_mark_internal_notes(client: httpx.AsyncClient, setup: Setup) -> None:
    documents = (await client.get("/v1/documents", headers=setup.acme.headers)).json()
    ticket = next(d for d in documents if d["external_id"] == "ticket:t-1")
    detail = (await client.get(f"/v1/documents/{ticket['id']}", headers=setup.acme.headers)).json()
    assert "4471" not in detail["body"]
    assert detail["has_internal"] is True
    assert [n["text"] for n in detail["internal_notes"]] == [SECRET_NOTE]
    assert [p["internal"] for p in detail["parts"]].count(True) == 1
    assert "parts" not in detail["metadata"]
    article = next(d for d in documents if d["external_id"] == "article:kb-lock")
    plain = (await client.get(f"/v1/documents/{article['id']}", headers=setup.acme.headers)).json()
    assert plain["has_internal"] is False and "Emergency unlock" in plain["body"]


async def test_feedback_from_a_customer_token(client: httpx.AsyncClient, setup: Setup) -> None:
    customer = await setup.token(client, audience="customer")
    answer = (
        await client.post("/v1/answer", headers=customer, json={"question": "battery change"})
    ).json()
    given = await client.post(
        "/v1/feedback",
        headers=customer,
        json={"interaction_id": answer["interaction_id"], "rating": "up"},
    )
    assert given.status_code == 201


async def test_minting_audiences_and_old_tokens(client: httpx.AsyncClient, setup: Setup) -> None:
    bad = await client.post(
        "/v1/widget-tokens",
        headers=setup.acme.headers,
        json={"audience": "customer", "ticket_id": "t-1"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "customer_token_ticket"
    unknown = await client.post(
        "/v1/widget-tokens", headers=setup.acme.headers, json={"audience": "admin"}
    )
    assert unknown.status_code == 422

    # A token minted before audiences existed has no "a" claim: it is an agent token.
    signer: WidgetTokenSigner = setup.state.widget_signer
    minted = (await client.post("/v1/widget-tokens", headers=setup.acme.headers, json={})).json()
    claims = signer.verify(minted["token"], now=setup.state.clock.now())
    payload = _b64(
        orjson.dumps(
            {
                "c": claims.company_id,
                "k": str(claims.api_key_id),
                "t": None,
                "e": int(claims.expires_at.timestamp()),
            }
        )
    )
    legacy = f"{TOKEN_SCHEME}{payload}.{signer._sign(payload)}"
    assert signer.verify(legacy, now=setup.state.clock.now()).audience == "agent"
    headers = {"Authorization": f"Bearer {legacy}", "X-Company-ID": setup.acme.company_id}
    assert (await client.get("/v1/company", headers=headers)).status_code == 200
    assert "4471" in _texts(await _search(client, headers, limit=10))

    # Another company's customer token does not open this company.
    other = await client.post(
        "/v1/widget-tokens", headers=setup.globex.headers, json={"audience": "customer"}
    )
    foreign = {
        "Authorization": f"Bearer {other.json()['token']}",
        "X-Company-ID": setup.acme.company_id,
    }
    refused = await client.post("/v1/search", headers=foreign, json={"query": "lock"})
    assert refused.status_code == 403 and refused.json()["error"] == "company_mismatch"
