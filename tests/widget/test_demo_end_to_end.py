"""End to end, as a newcomer sees it: the API in demo mode with the sample company loaded,
the built widget in headless Chromium (Debian's) on the sample open ticket. A draft streams
in with citations, inserting it records feedback in Postgres, and a widget token of one
company cannot read another company's tickets."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from backend.app import create_app
from backend.config import Settings
from backend.demo import SAMPLE_OPEN_TICKET_ID, TICKET_SOURCE
from backend.demo.loader import DEMO_HELPDESK_ORIGIN, prepare_demo
from backend.stack import Stack
from tests.api.test_assistant_api import sync_file, write_jsonl
from tests.conftest import CompanyWithKey
from tests.live_server import serve_on_loopback

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
ROOT = Path(__file__).resolve().parents[2]
WIDGET_DIST = ROOT / "frontend-widget" / "dist"
E2E_SCRIPT = Path(__file__).with_name("e2e_demo.mjs")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


WIDGET_PORT = _free_port()


@pytest.fixture
async def demo_api(settings: Settings) -> AsyncIterator[tuple[str, Stack, str]]:
    if not (WIDGET_DIST / "helpdesk-widget.js").exists():
        built = await asyncio.to_thread(
            subprocess.run,
            ["npm", "run", "build"],
            cwd=ROOT / "frontend-widget",
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert built.returncode == 0, built.stderr
    configured = settings.model_copy(
        update={
            # The stand-in helpdesk page is served from another origin than the API: the
            # operator trusts it (CORS is never `*`).
            "cors_allow_origins": f"http://127.0.0.1:{WIDGET_PORT}",
            "demo_mode": True,
            "demo_company_id": f"demo-{secrets.token_hex(3)}",
            "widget_dir": WIDGET_DIST,
        }
    )
    app = create_app(configured)
    async with serve_on_loopback(app) as base:
        state: Stack = app.state.helpdesk
        yield base, state, await prepare_demo(state)


async def test_widget_drafts_a_grounded_reply_for_the_sample_ticket(
    demo_api: tuple[str, Stack, str], make_company: MakeCompany, tmp_path: Path
) -> None:
    base, state, api_key = demo_api
    company_id = state.settings.demo_company_id
    headers = {"Authorization": f"Bearer {api_key}", "X-Company-ID": company_id}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        redirect = await client.get("/demo")
        assert redirect.status_code == 307
        assert "/widget/demo.html?" in redirect.headers["location"]
        assert api_key not in redirect.headers["location"]  # the browser gets a token only
        page = await client.get(redirect.headers["location"])
        assert page.status_code == 200
        assert "<helpdesk-assistant" in page.text
        minted = (
            await client.post(
                "/v1/widget-tokens", headers=headers, json={"ticket_id": SAMPLE_OPEN_TICKET_ID}
            )
        ).json()

    node = shutil.which("node")
    assert node is not None, "node is required for the browser test"
    env = {
        **os.environ,
        "API_BASE": base,
        "COMPANY": company_id,
        "TOKEN": minted["token"],
        "TICKET_ID": SAMPLE_OPEN_TICKET_ID,
        "TICKET_SOURCE": TICKET_SOURCE,
        "SCREENSHOT": str(tmp_path / "demo.png"),
        "WIDGET_PORT": str(WIDGET_PORT),
    }
    run = await asyncio.to_thread(
        subprocess.run,
        [node, str(E2E_SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout[run.stdout.index("{") :])
    assert result["ok"] is True
    assert result["citationCount"] >= 1
    assert "2.4 GHz" in result["draft"]  # grounded in the KB article about mesh Wi-Fi
    assert result["internalCount"] == 0  # no private note is cited to a customer
    assert (tmp_path / "demo.png").stat().st_size > 10_000

    async with state.database.tenant_session(company_id) as session:
        rows = (
            await session.execute(
                text(
                    "SELECT i.task, f.inserted FROM feedback f JOIN interactions i "
                    "ON i.id = f.interaction_id"
                )
            )
        ).all()
    assert ("draft_reply", True) in [tuple(r) for r in rows]


async def test_a_widget_token_cannot_read_another_companys_tickets(
    demo_api: tuple[str, Stack, str], make_company: MakeCompany, tmp_path: Path
) -> None:
    base, state, api_key = demo_api
    company_id = state.settings.demo_company_id
    other = await make_company("other")
    await sync_file(
        state,
        other.company_id,
        write_jsonl(
            tmp_path / "other.jsonl",
            [
                {
                    "id": "OT-1",
                    "type": "ticket",
                    "subject": "Other company's ticket",
                    "description": "Private to the other company.",
                    "status": "open",
                },
            ],
        ),
    )
    headers = {"Authorization": f"Bearer {api_key}", "X-Company-ID": company_id}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = (await client.post("/v1/widget-tokens", headers=headers, json={})).json()["token"]
        widget = {"Authorization": f"Bearer {token}", "X-Company-ID": company_id}
        own = await client.get(f"/v1/tickets/{SAMPLE_OPEN_TICKET_ID}", headers=widget)
        assert own.status_code == 200
        assert own.json()["conversation"]
        assert (await client.get("/v1/tickets/OT-1", headers=widget)).status_code == 404
        as_other = {**widget, "X-Company-ID": other.company_id}
        assert (await client.get("/v1/tickets/OT-1", headers=as_other)).status_code == 403
        mine = await client.get("/v1/tickets/OT-1", headers=other.headers)
        assert mine.status_code == 200
        assert (
            await client.get(f"/v1/tickets/{SAMPLE_OPEN_TICKET_ID}", headers=other.headers)
        ).status_code == 404
        preflight_headers = {
            "Origin": DEMO_HELPDESK_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-company-id",
        }
        preflight = await client.options("/v1/draft-reply/stream", headers=preflight_headers)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == DEMO_HELPDESK_ORIGIN
        assert "x-company-id" in preflight.headers["access-control-allow-headers"].lower()
        # An origin no company trusts is refused; CORS is never `*`.
        stranger = {**preflight_headers, "Origin": "https://evil.example"}
        refused = await client.options("/v1/draft-reply/stream", headers=stranger)
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
