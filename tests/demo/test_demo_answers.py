"""The README's first question, asked of the demo company as a newcomer asks it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from backend.app import create_app
from backend.config import Settings
from backend.demo.loader import prepare_demo
from backend.stack import Stack

HUB_ARTICLE = "Lumen Hub keeps going offline"


@pytest.fixture
async def demo(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    configured = settings.model_copy(
        update={"demo_mode": True, "demo_company_id": f"demo-{secrets.token_hex(3)}"}
    )
    app = create_app(configured)
    async with LifespanManager(app, startup_timeout=120):
        state: Stack = app.state.helpdesk
        api_key = await prepare_demo(state)
        headers = {"Authorization": f"Bearer {api_key}", "X-Company-ID": configured.demo_company_id}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, headers


async def _answer(
    demo: tuple[httpx.AsyncClient, dict[str, str]],
    question: str,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    client, api_headers = demo
    headers = headers or api_headers
    response = await client.post("/v1/answer", headers=headers, json={"question": question})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_why_the_hub_goes_offline_is_answered_with_the_fix(
    demo: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    body = await _answer(demo, "Why does my hub go offline?")
    assert body["provider"] == "extractive"
    # The fix, not only the symptom: it lives in the article's second section, past the
    # opening that retrieval matched.
    assert "2.4 GHz" in body["answer"]
    assert "band steering" in body["answer"]
    assert any(c["title"] == HUB_ARTICLE for c in body["citations"])
    # Read on from the same article, quoted under the same citation.
    cited = {c["index"] for c in body["citations"] if c["title"] == HUB_ARTICLE}
    assert len(cited) == 1
    assert all(f"[{index}]" in body["answer"] for index in cited)


async def test_a_customer_gets_the_fix_from_the_article_and_nothing_else(
    demo: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, headers = demo
    minted = await client.post("/v1/widget-tokens", headers=headers, json={"audience": "customer"})
    assert minted.status_code == 201, minted.text
    customer = {
        "Authorization": f"Bearer {minted.json()['token']}",
        "X-Company-ID": headers["X-Company-ID"],
    }
    body = await _answer(demo, "Why does my hub go offline?", customer)
    assert "2.4 GHz" in body["answer"]
    # A customer's scope is published articles: the continuation stays inside it.
    assert body["citations"]
    assert {c["kind"] for c in body["citations"]} == {"article"}
    assert not any(c["internal"] for c in body["citations"])
