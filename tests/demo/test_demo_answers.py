"""The README's first question, asked of the demo company as a newcomer asks it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from backend.api.state import AppState
from backend.app import create_app
from backend.config import Settings
from backend.demo.loader import prepare_demo

HUB_ARTICLE = "Lumen Hub keeps going offline"


@pytest.fixture
async def demo(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    configured = settings.model_copy(
        update={"demo_mode": True, "demo_company_id": f"demo-{secrets.token_hex(3)}"}
    )
    app = create_app(configured)
    async with LifespanManager(app, startup_timeout=120):
        state: AppState = app.state.helpdesk
        api_key = await prepare_demo(state)
        headers = {"Authorization": f"Bearer {api_key}", "X-Company-ID": configured.demo_company_id}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, headers


async def _answer(demo: tuple[httpx.AsyncClient, dict[str, str]], question: str) -> dict[str, Any]:
    client, headers = demo
    response = await client.post("/v1/answer", headers=headers, json={"question": question})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_why_the_hub_goes_offline_is_answered_with_the_fix(
    demo: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    body = await _answer(demo, "Why does my hub go offline?")
    print(body["answer"])
    print([(c["index"], c["title"]) for c in body["citations"]])
    assert body["provider"] == "extractive"
    assert "2.4 GHz" in body["answer"]
    assert any(c["title"] == HUB_ARTICLE for c in body["citations"])
