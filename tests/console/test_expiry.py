"""A console session ends when its time is up (HELPDESK_CONSOLE_SESSION_HOURS), on the
service's clock, and an expired session is removed at the user's next sign-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from backend.app import create_app
from backend.clock import ManualClock
from backend.config import Settings
from backend.db.session import Database
from tests.conftest import CompanyWithKey
from tests.console.conftest import PASSWORD, SignIn

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    # No credential memory: expiry is checked on every request here.
    application = create_app(settings.model_copy(update={"auth_cache_seconds": 0}), clock=clock)
    async with LifespanManager(application, startup_timeout=60):
        yield application


async def test_session_expires_and_is_cleaned_up(
    make_company: MakeCompany,
    console_user: SignIn,
    clock: ManualClock,
    settings: Settings,
    database: Database,
) -> None:
    company = await make_company()
    owner = await console_user(company, "owner")
    assert (await owner.client.get("/console/api/session")).status_code == 200
    clock.advance(settings.console_session_hours * 3600 + 1)
    expired = await owner.client.get("/v1/company")
    assert expired.status_code == 401 and expired.json()["error"] == "not_signed_in"
    again = await owner.client.post(
        "/console/api/session", json={"email": owner.email, "password": PASSWORD}
    )
    assert again.status_code == 200
    async with database.tenant_session(company.company_id) as session:
        rows = (await session.execute(text("SELECT count(*) FROM console_sessions"))).scalar()
    assert rows == 1
