"""Triage over HTTP and on ingest: suggestions voted by the company's own solved tickets,
"no suggestion" for what it never solved, stored with the ticket, accuracy from verdicts,
and nothing of another company ever votes, shows or changes."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from backend.api.v1.triage import require_agent
from backend.errors import Forbidden
from backend.tenancy.service import Tenant
from tests.conftest import CompanyWithKey
from tests.insight.conftest import MakeCompany, ingest, ticket

ACME_SOLVED = [
    ticket(
        "1",
        "Password reset email never arrived",
        "I asked for a password reset link twice and no email came.",
        category="Account",
        group="identity",
        priority="high",
        tags=("login", "email"),
    ),
    ticket(
        "2",
        "Cannot log in after changing my password",
        "My new password is rejected at the login page.",
        category="Account",
        group="identity",
        priority="high",
        tags=("login",),
    ),
    ticket(
        "3",
        "Locked out of my account",
        "Too many wrong passwords and now my account is locked, how do I sign in again?",
        category="Account",
        group="identity",
        priority="high",
        tags=("login",),
    ),
    ticket(
        "4",
        "Refund for a duplicate charge",
        "I was charged twice for my subscription this month, please refund one payment.",
        category="Billing",
        group="billing",
        priority="low",
        tags=("refund",),
    ),
    ticket(
        "5",
        "Money back for annual plan",
        "I want a refund of my annual plan that I bought last week.",
        category="Billing",
        group="billing",
        priority="low",
        tags=("refund",),
    ),
    ticket(
        "6",
        "Invoice shows the wrong amount",
        "My invoice charged more than the price on your website.",
        category="Billing",
        group="billing",
        priority="low",
        tags=("invoice",),
    ),
]
# Globex files the same kind of tickets under other values: none may reach Acme.
GLOBEX_SOLVED = [
    ticket("1", "Password reset link not received", "The password reset email never "
           "arrives in my inbox.", category="Security", group="globex-sec", priority="urgent",
           tags=("globex-only",)),
    ticket("2", "Forgot my password", "I cannot remember my password and the reset email "
           "is missing.", category="Security", group="globex-sec", priority="urgent",
           tags=("globex-only",)),
]  # fmt: skip


@dataclass
class Companies:
    acme: CompanyWithKey
    globex: CompanyWithKey


@pytest.fixture
async def companies(app: FastAPI, make_company: MakeCompany) -> Companies:
    acme, globex = await make_company("acme"), await make_company("globex")
    await ingest(app, acme.company_id, ACME_SOLVED)
    await ingest(app, globex.company_id, GLOBEX_SOLVED)
    return Companies(acme, globex)


async def test_suggestions_are_voted_by_the_companys_own_solved_tickets(
    client: httpx.AsyncClient, companies: Companies
) -> None:
    acme, globex = companies.acme, companies.globex
    response = await client.post(
        "/v1/triage",
        json={"text": "I never got the password reset email, I can't log in"},
        headers=acme.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    suggestions = body["suggestions"]
    assert suggestions["category"]["value"] == "Account"
    assert suggestions["group"]["value"] == "identity"
    assert suggestions["priority"]["value"] == "high"
    assert "login" in suggestions["tags"]["values"]
    assert suggestions["language"]["value"] == "en"
    assert suggestions["sentiment"]["value"] in {"negative", "neutral"}
    assert 0 < suggestions["category"]["confidence"] <= 1
    voters = {n["external_id"] for n in body["neighbors"]}
    assert voters and voters <= {f"ticket:{t}" for t in "123456"}
    every_value = {c["value"] for s in suggestions.values() for c in s["candidates"]} | set(
        suggestions["tags"]["values"]
    )
    assert not every_value & {"Security", "globex-sec", "urgent", "globex-only"}

    # The same words at Globex are voted by Globex's tickets only.
    response = await client.post(
        "/v1/triage",
        json={"text": "I never got the password reset email, I can't log in"},
        headers=globex.headers,
    )
    assert response.json()["suggestions"]["category"]["value"] == "Security"


async def test_what_the_company_never_solved_gets_no_suggestion(
    client: httpx.AsyncClient, companies: Companies
) -> None:
    response = await client.post(
        "/v1/triage",
        json={"text": "What is the boiling point of water on top of Mount Everest?"},
        headers=companies.acme.headers,
    )
    assert response.status_code == 200
    suggestions = response.json()["suggestions"]
    for name in ("category", "group", "priority", "tags"):
        assert suggestions[name]["value"] is None, (name, suggestions[name])


async def test_open_tickets_are_triaged_on_ingest_and_stored_per_company(
    app: FastAPI, client: httpx.AsyncClient, companies: Companies
) -> None:
    acme, globex = companies.acme, companies.globex
    await ingest(
        app,
        acme.company_id,
        [ticket("900", "Refund please", "You charged my card twice, I want my money back.",
                status="open")],
    )  # fmt: skip
    stored = await client.get("/v1/triage/tickets/900", headers=acme.headers)
    assert stored.status_code == 200, stored.text
    assert stored.json()["suggestions"]["category"]["value"] == "Billing"
    assert stored.json()["suggestions"]["group"]["value"] == "billing"
    # Globex sees nothing of Acme's ticket or its suggestions.
    assert (await client.get("/v1/triage/tickets/900", headers=globex.headers)).status_code == 404
    # Solved tickets are not triaged on ingest (nothing to suggest for closed work).
    assert (await client.get("/v1/triage/tickets/4", headers=acme.headers)).status_code == 404
    # Triage by id re-runs and stores it; an unknown ticket is a 404 with the error body.
    again = await client.post("/v1/triage", json={"ticket_id": "900"}, headers=acme.headers)
    assert again.status_code == 200
    assert again.json()["suggestions"]["category"]["value"] == "Billing"
    missing = await client.post("/v1/triage", json={"ticket_id": "900"}, headers=globex.headers)
    assert missing.status_code == 404
    assert missing.json()["error"] == "ticket_not_found"
    bad = await client.post("/v1/triage", json={}, headers=acme.headers)
    assert bad.status_code in (400, 422) and "error" in bad.json()


async def test_accuracy_comes_from_accepted_and_overridden_suggestions(
    client: httpx.AsyncClient, companies: Companies
) -> None:
    acme, globex = companies.acme, companies.globex
    verdicts = [
        {"ticket_id": "900", "field": "category", "suggested": "Billing", "accepted": True},
        {"ticket_id": "901", "field": "category", "suggested": "Billing", "accepted": True},
        {"ticket_id": "902", "field": "category", "suggested": "Account", "accepted": False,
         "chosen": "Billing"},
        {"ticket_id": "902", "field": "priority", "suggested": "low", "accepted": False},
    ]  # fmt: skip
    for verdict in verdicts:
        response = await client.post("/v1/triage/feedback", json=verdict, headers=acme.headers)
        assert response.status_code == 201, response.text
    bad = await client.post(
        "/v1/triage/feedback",
        json={"field": "mood", "suggested": "x", "accepted": True},
        headers=acme.headers,
    )
    assert bad.status_code in (400, 422)

    accuracy = (await client.get("/v1/triage/accuracy", headers=acme.headers)).json()
    fields = {f["field"]: f for f in accuracy["fields"]}
    assert fields["category"]["accepted"] == 2 and fields["category"]["overridden"] == 1
    assert fields["category"]["accuracy"] == pytest.approx(2 / 3)
    assert fields["priority"]["accuracy"] == 0
    # Another company's verdicts are its own.
    other = (await client.get("/v1/triage/accuracy", headers=globex.headers)).json()
    assert other["fields"] == []


async def test_widget_tokens_triage_their_ticket_but_not_analytics(
    client: httpx.AsyncClient, companies: Companies
) -> None:
    acme = companies.acme
    minted = await client.post("/v1/widget-tokens", json={"ticket_id": "900"}, headers=acme.headers)
    token = minted.json()["token"]
    widget = {"Authorization": f"Bearer {token}", "X-Company-ID": acme.company_id}
    ok = await client.post(
        "/v1/triage/feedback",
        json={"ticket_id": "900", "field": "group", "suggested": "billing", "accepted": True},
        headers=widget,
    )
    assert ok.status_code == 201
    other_ticket = await client.post(
        "/v1/triage/feedback",
        json={"ticket_id": "1", "field": "group", "suggested": "billing", "accepted": True},
        headers=widget,
    )
    assert other_ticket.status_code == 403
    assert (await client.get("/v1/triage/accuracy", headers=widget)).status_code == 403


@dataclass(frozen=True)
class _CustomerAudienceTenant(Tenant):
    """A credential of the customer audience (public knowledge only), as widget tokens
    with audiences carry it."""

    audience: str = "customer"


async def test_customer_audience_credentials_are_refused() -> None:
    customer = _CustomerAudienceTenant(
        company_id="acme", api_key_id=None, key_prefix="hd_x", via="widget"
    )
    with pytest.raises(Forbidden):
        await require_agent(customer)
    agent = Tenant(company_id="acme", api_key_id=None, key_prefix="hd_x", via="widget")
    assert await require_agent(agent) is agent
