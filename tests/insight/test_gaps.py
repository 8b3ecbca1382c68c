"""Knowledge gaps over HTTP: recurring tickets no article covers, and recurring review
complaints, come back as ranked gaps with a draft citing their sources — per company."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.app import create_app
from backend.config import Settings
from tests.insight.conftest import MakeCompany, ingest, ticket
from tests.llm.payloads import openai_completion
from tests.llm.wire import ScriptedServer

ARTICLE_URL = "https://help.acme.test/articles/reset-password"


def article(article_id: str, title: str, body: str, url: str) -> SourceDocument:
    return SourceDocument(
        source="freshdesk",
        external_id=f"article:{article_id}",
        kind=DocumentKind.ARTICLE,
        title=title,
        parts=[DocumentPart(text=title, label="subject"), DocumentPart(text=body, label="section")],
        url=url,
        status="published",
        language="en",
    )


def review(review_id: str, rating: float, text: str, at: datetime) -> SourceDocument:
    return SourceDocument(
        source="google_business",
        external_id=f"review:{review_id}",
        kind=DocumentKind.REVIEW,
        title=f"{int(rating)}-star review",
        parts=[DocumentPart(text=text, label="review", author_role="customer")],
        rating=rating,
        language="en",
        created_at=at,
        updated_at=at,
    )


async def test_uncovered_topics_and_recurring_complaints_become_ranked_gaps(
    app: FastAPI, client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    now = datetime.now(UTC)
    await ingest(
        app,
        acme.company_id,
        [
            article("1", "How to reset your password", "Open Settings, choose Security and "
                    "click Reset password. We email you a link.", ARTICLE_URL),
            ticket("10", "How do I export my contacts to CSV?", "I need all my contacts in a "
                   "CSV file for our CRM.", resolution="Go to Contacts, select all, then "
                   "Actions > Export > CSV.", created_at=now - timedelta(days=2)),
            ticket("11", "Export contact list as a spreadsheet", "Can I download my contact "
                   "list as CSV or Excel?", resolution="Contacts > Actions > Export lets you "
                   "pick CSV.", created_at=now - timedelta(days=1)),
            ticket("12", "CSV export of contacts", "Where is the export button for contacts? "
                   "I want a CSV.", resolution="Use Actions > Export on the Contacts page.",
                   created_at=now - timedelta(days=1)),
            ticket("13", "Reset password", "How can I reset my password?",
                   resolution=f"Please follow {ARTICLE_URL}", created_at=now - timedelta(days=3)),
            review("r1", 1, "Delivery was two weeks late and nobody answered my emails.",
                   now - timedelta(days=4)),
            review("r2", 2, "My delivery arrived very late, the shipping is far too slow.",
                   now - timedelta(days=1)),
            review("r3", 5, "Lovely product, works great.", now - timedelta(days=1)),
        ],
    )  # fmt: skip
    await ingest(
        app,
        globex.company_id,
        [ticket("10", "How do I export my contacts to CSV?", "Need a CSV of contacts.",
                resolution="Export from the Contacts page.", created_at=now)],
    )  # fmt: skip

    response = await client.get("/v1/insights/gaps", headers=acme.headers)
    assert response.status_code == 200, response.text
    gaps = response.json()["gaps"]
    assert gaps, "expected at least one gap"
    first = gaps[0]
    assert {s["ref"] for s in first["sources"]} == {"10", "11", "12"}
    assert first["volume"] == 3
    assert "weak_support" in first["reasons"] or "no_article_cited" in first["reasons"]
    assert first["resolutions"] and "Export" in first["resolutions"][0]["text"]
    draft = first["draft_article"]
    assert draft["provider"] == "extractive"
    assert set(draft["cites"]) == {"10", "11", "12"}
    assert "Export" in draft["body"]
    assert "contact" in draft["title"].lower()
    complaints = [g for g in gaps if g["review_complaints"]]
    assert complaints and complaints[0]["review_complaints"] == 2
    assert {s["ref"] for s in complaints[0]["sources"]} == {"review:r1", "review:r2"}
    every_ref = {s["ref"] for g in gaps for s in g["sources"]}
    assert "review:r3" not in every_ref  # five stars is not a complaint

    # Globex's gaps are built from Globex's data only (one ticket: below the minimum).
    other = await client.get("/v1/insights/gaps", headers=globex.headers)
    assert other.status_code == 200 and other.json()["gaps"] == []

    minted = await client.post("/v1/widget-tokens", json={}, headers=acme.headers)
    widget = {"Authorization": f"Bearer {minted.json()['token']}", "X-Company-ID": acme.company_id}
    assert (await client.get("/v1/insights/gaps", headers=widget)).status_code == 403
    bad = await client.get("/v1/insights/gaps?days=0", headers=acme.headers)
    assert bad.status_code in (400, 422) and "error" in bad.json()


async def test_a_configured_model_writes_the_draft_from_delimited_resolutions(
    settings: Settings, make_company: MakeCompany
) -> None:
    server = ScriptedServer()
    server.start()
    try:
        configured = settings.model_copy(
            update={
                "llm_openai_base_url": f"{server.url}/v1",
                "llm_openai_api_key": None,
                "llm_openai_model": "gpt-4o-mini",
                "llm_max_attempts": 1,
            }
        )
        application = create_app(configured)
        async with LifespanManager(application, startup_timeout=120, shutdown_timeout=30):
            acme = await make_company("acme")
            now = datetime.now(UTC)
            await ingest(
                application,
                acme.company_id,
                [
                    ticket(f"{n}", subject, "I need my contacts as a CSV file.",
                           resolution="Contacts > Actions > Export > CSV.",
                           created_at=now - timedelta(days=1))
                    for n, subject in enumerate(
                        ["Export contacts to CSV", "CSV export of my contacts"], start=20
                    )
                ],
            )  # fmt: skip
            server.script(
                openai_completion(
                    "# Exporting contacts to CSV\nOpen Contacts > Actions > Export [1]."
                )
            )
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/v1/insights/gaps", headers=acme.headers)
        assert response.status_code == 200, response.text
        draft = response.json()["gaps"][0]["draft_article"]
        assert draft["provider"] == "openai"
        assert draft["title"] == "Exporting contacts to CSV"
        assert draft["body"] == "Open Contacts > Actions > Export [1]."
        assert set(draft["cites"]) == {"20", "21"}
        sent = server.requests[-1].body
        assert isinstance(sent, dict)
        system = sent["messages"][0]["content"]
        assert "<passages>" in system and "Contacts &gt; Actions &gt; Export" in system
    finally:
        server.stop()
