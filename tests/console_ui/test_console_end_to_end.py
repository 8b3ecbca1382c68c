"""The console in headless Chromium (Debian's) against the real API and Postgres: an owner
signs in with the cookie, connects a replayed Freshdesk through the schema-generated form
(test connection, save and sync), watches the sync run to its end, edits the tone and sees
the preview change, and reads the insight charts after a load of recorded interactions.
Screenshots go to docs/ when CONSOLE_SCREENSHOTS=1 (how the README's were made)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from backend.app import create_app
from backend.config import Settings
from backend.egress import StaticResolver
from backend.stack import Stack
from tests.adapters.freshdesk_api import API_KEY
from tests.api.test_connectors import freshdesk_dataset
from tests.conftest import CompanyWithKey
from tests.console_ui.test_console_build import ensure_built
from tests.live_server import serve_on_loopback

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
ROOT = Path(__file__).resolve().parents[2]
CONSOLE_DIST = ROOT / "frontend-console" / "dist"
E2E_SCRIPT = Path(__file__).with_name("e2e_console.mjs")
PASSWORD = "correct horse battery staple"
FRESHDESK_DOMAIN = "acme.freshdesk.com"
RECORDED_DRAFTS = 6


@pytest.fixture
async def live_api(settings: Settings) -> AsyncIterator[tuple[str, Stack]]:
    await asyncio.to_thread(ensure_built)
    # Freshdesk is replayed at the protocol level (its documented v2 payloads); the
    # connector reaches it through the egress policy like any platform.
    freshdesk = freshdesk_dataset()
    app = create_app(
        settings.model_copy(update={"console_dir": CONSOLE_DIST}),
        http_transport=httpx.MockTransport(freshdesk.handle),
        egress_resolver=StaticResolver({FRESHDESK_DOMAIN: "127.0.0.1"}),
    )
    async with serve_on_loopback(app) as base:
        yield base, app.state.helpdesk


async def _owner(client: httpx.AsyncClient, admin_headers: dict[str, str], company: str) -> str:
    email = f"owner@{company}.example"
    invited = await client.post(
        f"/admin/companies/{company}/users",
        json={"email": email, "name": "Olivia Owner", "role": "owner"},
        headers=admin_headers,
    )
    assert invited.status_code == 201, invited.text
    accepted = await client.post(
        "/console/api/invitations/accept",
        json={
            "token": invited.json()["invite_token"],
            "name": "Olivia Owner",
            "password": PASSWORD,
        },
    )
    assert accepted.status_code == 200, accepted.text
    return email


async def _record_interactions(client: httpx.AsyncClient, company: CompanyWithKey) -> None:
    """Drafts through the public API with the company's key, and what agents did with them."""
    for n in range(RECORDED_DRAFTS):
        draft = await client.post(
            "/v1/draft-reply",
            headers=company.headers,
            json={"ticket": {"subject": f"Router drops Wi-Fi ({n})", "description": "Again."}},
        )
        assert draft.status_code == 200, draft.text
        outcome = ["inserted", "edited", "discarded"][n % 3]
        feedback = await client.post(
            "/v1/feedback",
            headers=company.headers,
            json={
                "interaction_id": draft.json()["interaction_id"],
                "rating": "down" if outcome == "discarded" else "up",
                "reason": "outdated" if outcome == "discarded" else None,
                "outcome": outcome,
            },
        )
        assert feedback.status_code == 201, feedback.text


async def test_console_end_to_end_in_chromium(
    live_api: tuple[str, Stack], make_company: MakeCompany, admin_headers: dict[str, str]
) -> None:
    base, state = live_api
    company = await make_company("console")
    other = await make_company("other")
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        email = await _owner(client, admin_headers, company.company_id)
        await _record_interactions(client, company)

    node = shutil.which("node")
    assert node is not None, "node is required for the browser test"
    assert shutil.which("/usr/bin/chromium"), "apt-get install chromium"
    shots = ROOT / "docs" if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else None
    env = {
        **os.environ,
        "API_BASE": base,
        "EMAIL": email,
        "PASSWORD": PASSWORD,
        "FRESHDESK_DOMAIN": FRESHDESK_DOMAIN,
        "FRESHDESK_API_KEY": API_KEY,
        "SEARCH_QUERY": "router Wi-Fi",
        "MIN_CHARTS": "3",
        **({"SCREENSHOT_DIR": str(shots)} if shots else {}),
    }
    run = await asyncio.to_thread(
        subprocess.run,
        [node, str(E2E_SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout[run.stdout.index("{") :])
    assert summary["ok"] is True
    assert summary["wrongPassword"] == "That email and password do not match."
    assert summary["signedInAs"].startswith("Olivia Owner")
    assert summary["testConnection"].startswith("Connection works"), summary["testConnection"]
    assert summary["syncStatuses"][-1] == "succeeded", summary
    assert summary["searchResults"] >= 1
    assert summary["previewAfter"] != summary["previewBefore"]
    assert summary["previewAfter"].startswith("Dear customer,")
    assert summary["kpis"]["calls"] == str(RECORDED_DRAFTS)
    drawn = [chart["title"] for chart in summary["charts"] if chart["canvas"]]
    assert {"Calls per day", "Latency p95", "Cache hit rate"} <= set(drawn)
    assert summary["koreanNav"][3] == "인사이트"
    assert summary["phoneOverflowPx"] <= 0
    assert summary["inviteLink"].startswith(f"{base}/console/#/accept?token=")
    assert summary["newKeyLength"] > 20 and summary["keyScopes"] == "assistant, ingest"
    assert summary["agentNav"] == ["Knowledge"] and summary["agentWho"] == "New Agent (agent)"

    # What the browser did is in Postgres, in this company only, and audited as the user.
    async with state.database.tenant_session(company.company_id) as session:
        connectors = (await session.execute(text("SELECT platform, name FROM connectors"))).all()
        documents = (await session.execute(text("SELECT count(*) FROM documents"))).scalar_one()
        actors = (await session.execute(text("SELECT DISTINCT actor FROM audit_log"))).scalars()
        actor_names = list(actors)
        invited = (
            await session.execute(
                text("SELECT role FROM console_users WHERE email = :e"),
                {"e": "new.agent@example.org"},
            )
        ).scalar_one()
        scopes = (
            await session.execute(
                text("SELECT scopes FROM api_keys WHERE name = 'Helpdesk sync job'")
            )
        ).scalar_one()
    assert invited == "agent"
    assert sorted(scopes) == ["assistant", "ingest"]
    assert ("freshdesk", "Freshdesk support") in [tuple(row) for row in connectors]
    assert documents >= 3
    assert any(actor.startswith("user:") for actor in actor_names), actor_names
    async with state.database.tenant_session(other.company_id) as session:
        assert (await session.execute(text("SELECT count(*) FROM connectors"))).scalar_one() == 0
