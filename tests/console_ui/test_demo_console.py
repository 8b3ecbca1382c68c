"""`helpdesk demo` (prepare_demo_console_user) gives the demo company a console user;
/demo/console signs them in and opens the console on the demo company's data, and nothing
of another company."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from backend.app import create_app
from backend.config import Settings
from backend.demo.loader import demo_console_email, prepare_demo_console_user
from backend.stack import Stack
from tests.conftest import CompanyWithKey
from tests.console_ui.test_console_build import CONSOLE_DIR

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


@pytest.fixture
async def demo_app(
    settings: Settings, make_company: MakeCompany
) -> AsyncIterator[tuple[httpx.AsyncClient, Stack]]:
    # The demo company without its sample data (tests/widget syncs that): the console user
    # is what is checked here.
    demo = await make_company("demo")
    configured = settings.model_copy(
        update={
            "demo_mode": True,
            "demo_company_id": demo.company_id,
            "console_dir": CONSOLE_DIR / "dist",
        }
    )
    app = create_app(configured)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        state: Stack = app.state.helpdesk
        await prepare_demo_console_user(state)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, state


async def test_demo_console_link_signs_the_demo_admin_in(
    demo_app: tuple[httpx.AsyncClient, Stack], make_company: MakeCompany
) -> None:
    client, state = demo_app
    company_id = state.settings.demo_company_id
    password_file = state.settings.resolved_data_dir / "demo-console-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    # Idempotent: a second `helpdesk demo` keeps the user and its password.
    assert await prepare_demo_console_user(state) == password_file.read_text().strip()

    assert (await client.get("/console/api/session")).status_code == 401
    opened = await client.get("/demo/console")
    assert opened.status_code == 303 and opened.headers["location"] == "/console/"
    cookie = opened.headers["set-cookie"]
    assert cookie.startswith("hd_console=") and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()

    session = await client.get("/console/api/session")
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["user"]["email"] == demo_console_email(company_id)
    assert body["user"]["company_id"] == company_id and body["user"]["role"] == "owner"
    documents = await client.get("/v1/documents?limit=5")
    assert documents.status_code == 200 and documents.json() == []
    assert (await client.get("/console/")).status_code == 200

    # The demo admin reaches nothing of another company, even naming it.
    other = await make_company("other")
    refused = await client.get("/v1/documents", headers={"X-Company-ID": other.company_id})
    assert refused.status_code == 403


async def test_demo_console_needs_a_prepared_demo(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"demo_mode": True}))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            missing = await client.get("/demo/console")
    assert missing.status_code == 404
    assert missing.json()["error"] == "demo_not_prepared"
