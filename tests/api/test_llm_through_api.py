"""A real OpenAI-compatible wire protocol behind the API (a scripted local server): which
model answered, usage recorded per company, and a client disconnect stopping generation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from backend.app import create_app
from backend.config import Settings
from backend.stack import Stack
from tests.api.test_assistant_api import ACME_KNOWLEDGE, sync_file, write_jsonl
from tests.conftest import CompanyWithKey
from tests.live_server import serve_on_loopback
from tests.llm.payloads import openai_completion, openai_stream
from tests.llm.wire import ScriptedServer

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


@pytest.fixture
def llm_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def served(
    settings: Settings, llm_server: ScriptedServer
) -> AsyncIterator[tuple[str, Stack]]:
    """The real app under uvicorn on a loopback port (so disconnects are real)."""
    configured = settings.model_copy(
        update={
            "llm_openai_base_url": f"{llm_server.url}/v1",
            "llm_openai_api_key": None,
            "llm_openai_model": "gpt-4o-mini",
            "llm_max_attempts": 1,
        }
    )
    app = create_app(configured)
    async with serve_on_loopback(app) as base:
        yield base, app.state.helpdesk


async def test_model_answer_names_the_model_and_records_usage(
    served: tuple[str, Stack],
    llm_server: ScriptedServer,
    make_company: MakeCompany,
    tmp_path: Path,
) -> None:
    base, state = served
    acme = await make_company("llm")
    await sync_file(state, acme.company_id, write_jsonl(tmp_path / "kb.jsonl", ACME_KNOWLEDGE[:2]))
    llm_server.script(openai_completion("Open Settings, then Security [1]."))
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/v1/answer", headers=acme.headers, json={"question": "How do I reset my password?"}
        )
    body = response.json()
    assert response.status_code == 200, body
    assert body["provider"] == "openai"
    assert body["answer"] == "Open Settings, then Security [1]."
    assert body["citations"][0]["index"] == 1
    sent = llm_server.requests[-1].body
    assert isinstance(sent, dict)
    assert sent["model"] == "gpt-4o-mini"
    system = sent["messages"][0]["content"]
    assert "<passage" in system  # retrieved text is delimited as data
    async with state.database.tenant_session(acme.company_id) as session:
        usage = (
            await session.execute(
                text("SELECT provider, requests, prompt_tokens + completion_tokens FROM usage")
            )
        ).all()
    assert tuple(usage[0])[:2] == ("openai", 1)
    assert usage[0][2] > 0


async def test_client_disconnect_stops_generation(
    served: tuple[str, Stack],
    llm_server: ScriptedServer,
    make_company: MakeCompany,
    tmp_path: Path,
) -> None:
    base, state = served
    acme = await make_company("bye")
    await sync_file(state, acme.company_id, write_jsonl(tmp_path / "kb.jsonl", ACME_KNOWLEDGE[:2]))
    words = [f"word{i} " for i in range(60)]
    llm_server.script(openai_stream(words, pause_s=0.05))  # ~3 s if read to the end
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream(
            "POST",
            "/v1/answer/stream",
            headers=acme.headers,
            json={"question": "How do I reset my password?"},
        ) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:") and "word0" in line:
                break  # the agent closed the sidebar
    for _ in range(100):
        if llm_server.aborted:
            break
        await asyncio.sleep(0.05)
    assert llm_server.aborted == 1, "the upstream model stream was not closed"
    async with state.database.tenant_session(acme.company_id) as session:
        recorded = (await session.execute(text("SELECT count(*) FROM interactions"))).scalar()
    assert recorded == 0  # nothing finished, nothing cached or recorded as an answer
