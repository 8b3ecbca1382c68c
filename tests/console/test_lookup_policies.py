"""The sign-in lookups (migration 0011) show exactly the one row whose secret or e-mail is
presented, read-only, and nothing of any other company."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import text

from backend.console import store
from backend.console.service import token_hash
from backend.db.session import Database
from tests.conftest import CompanyWithKey
from tests.console.conftest import SignIn

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


async def test_lookups_reveal_one_row_and_allow_no_writes(
    make_company: MakeCompany, console_user: SignIn, database: Database
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    owner = await console_user(acme, "owner")
    other = await console_user(globex, "owner")
    async with store.lookup_session(database, "app.console_email", owner.email) as session:
        rows = (await session.execute(text("SELECT email FROM console_users"))).all()
        assert [r[0] for r in rows] == [owner.email]
        assert (await session.execute(text("SELECT count(*) FROM console_sessions"))).scalar() == 0
        changed = await session.execute(text("UPDATE console_users SET role = 'owner'"))
        assert changed.rowcount == 0
    cookie = owner.client.cookies["hd_console"]
    async with store.lookup_session(
        database, "app.console_session_hash", token_hash(cookie).hex()
    ) as session:
        rows = (await session.execute(text("SELECT company_id FROM console_sessions"))).all()
        assert [r[0] for r in rows] == [acme.company_id]
        assert (await session.execute(text("SELECT count(*) FROM console_users"))).scalar() == 0
        deleted = await session.execute(text("DELETE FROM console_sessions"))
        assert deleted.rowcount == 0
    async with store.lookup_session(database, "app.console_email", "") as session:
        assert (await session.execute(text("SELECT count(*) FROM console_users"))).scalar() == 0
    # Tenant sessions see their own users only.
    async with database.tenant_session(acme.company_id) as session:
        emails = {r[0] for r in (await session.execute(text("SELECT email FROM console_users")))}
        assert owner.email in emails and other.email not in emails
