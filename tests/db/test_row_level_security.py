"""Row-level security, proven as the runtime role against a real Postgres server.

Every tenant table is seeded for two companies; then, as the runtime role, we show that no
tenant sees nothing, tenant A sees/changes/deletes nothing of B, cannot write rows for B,
and a pooled connection reused after A's transaction has forgotten A.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.db.provisioning import DatabaseUrls, UnsafeRuntimeRole, assert_runtime_role_is_safe
from backend.db.session import Database, create_engine
from tests.conftest import new_company_id

# One INSERT per tenant table, parameterised by :c (company) and parent ids.
SEED = {
    "companies": "INSERT INTO companies (company_id, name) VALUES (:c, 'Co')",
    "api_keys": "INSERT INTO api_keys (company_id, name, prefix, key_hash) "
    "VALUES (:c, 'k', 'hdk_x', gen_random_uuid()::text::bytea)",
    "connectors": "INSERT INTO connectors (id, company_id, platform, name) "
    "VALUES (:connector, :c, 'freshdesk', 'fd-' || gen_random_uuid())",
    "documents": "INSERT INTO documents (id, company_id, source, external_id, kind, content_hash) "
    "VALUES (:document, :c, 'freshdesk', 'ticket:' || gen_random_uuid(), 'ticket', 'h')",
    "sync_runs": "INSERT INTO sync_runs (company_id, connector_id, trigger, status) "
    "VALUES (:c, :connector, 'manual', 'succeeded')",
    "interactions": "INSERT INTO interactions (id, company_id, task) "
    "VALUES (:interaction, :c, 'answer')",
    "feedback": "INSERT INTO feedback (company_id, interaction_id, rating) "
    "VALUES (:c, :interaction, 'up')",
    "usage": "INSERT INTO usage (company_id, month, provider, model) "
    "VALUES (:c, date_trunc('month', now())::date - (random() * 10000)::int, 'p', 'm')",
    "audit_log": "INSERT INTO audit_log (company_id, actor, action) VALUES (:c, 'test', 'seed')",
    "triage_suggestions": "INSERT INTO triage_suggestions "
    "(company_id, document_id, external_id, source) VALUES (:c, :document, 'ticket:1', 'fd')",
    "triage_feedback": "INSERT INTO triage_feedback (company_id, field, suggested, accepted) "
    "VALUES (:c, 'category', 'Billing', true)",
    "analytics_calls_daily": "INSERT INTO analytics_calls_daily (company_id, day, task, provider) "
    "VALUES (:c, current_date, 'seed', 'p')",
    "analytics_questions_weekly": "INSERT INTO analytics_questions_weekly "
    "(company_id, week, task, question_hash, question) VALUES (:c, current_date, 'seed', 'h', 'q')",
    "analytics_feedback_daily": "INSERT INTO analytics_feedback_daily "
    "(company_id, day, task, rating, reason, outcome) "
    "VALUES (:c, current_date, 'seed', '', '', '')",
    "analytics_triage_daily": "INSERT INTO analytics_triage_daily (company_id, day, field) "
    "VALUES (:c, current_date, 'seed')",
    "analytics_reviews_daily": "INSERT INTO analytics_reviews_daily "
    "(company_id, day, platform, location) VALUES (:c, current_date, 'seed', '')",
    "analytics_sync_daily": "INSERT INTO analytics_sync_daily "
    "(company_id, day, connector_id, last_status, last_finished_at) "
    "VALUES (:c, current_date, :connector, 'succeeded', now())",
    "review_replies": "INSERT INTO review_replies "
    "(company_id, document_id, source, external_id, sentiment, draft, reply_text) "
    "VALUES (:c, :document, 'freshdesk', 'review:1', 'negative', 'd', 'd')",
    "reply_settings": "INSERT INTO reply_settings (company_id, ticket_notes_enabled) "
    "VALUES (:c, true)",
    "console_users": "INSERT INTO console_users (id, company_id, email, role) "
    "VALUES (:user, :c, 'u-' || gen_random_uuid() || '@seed.example', 'agent')",
    "console_sessions": "INSERT INTO console_sessions "
    "(company_id, user_id, token_hash, expires_at) "
    "VALUES (:c, :user, gen_random_uuid()::text::bytea, now())",
    "webhook_endpoints": "INSERT INTO webhook_endpoints (connector_id, company_id, secret_sealed) "
    "VALUES (:connector, :c, 'sealed'::bytea)",
    "webhook_events": "INSERT INTO webhook_events (company_id, connector_id, event_id) "
    "VALUES (:c, :connector, 'evt-1')",
    "webhook_pending": "INSERT INTO webhook_pending (company_id, connector_id, external_id) "
    "VALUES (:c, :connector, 'ticket:1')",
}


async def tenant_tables(conn: AsyncConnection | AsyncSession) -> set[str]:
    result = await conn.execute(
        text(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'company_id'"
        )
    )
    return {row[0] for row in result}


async def seed_company(db: Database, company_id: str) -> dict[str, str]:
    import uuid

    ids = {
        "connector": str(uuid.uuid4()),
        "interaction": str(uuid.uuid4()),
        "document": str(uuid.uuid4()),
        "user": str(uuid.uuid4()),
    }
    async with db.tenant_session(company_id) as session:
        for statement in SEED.values():
            await session.execute(text(statement), {"c": company_id, **ids})
    return ids


@pytest.fixture
async def two_companies(database: Database) -> tuple[str, str, dict[str, str]]:
    a, b = new_company_id("rls-a"), new_company_id("rls-b")
    await seed_company(database, a)
    ids_b = await seed_company(database, b)
    return a, b, ids_b


async def test_seed_covers_every_tenant_table(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await tenant_tables(conn) == set(SEED), "add new tenant tables to SEED"


async def test_no_tenant_set_sees_zero_rows(
    database: Database, two_companies: tuple[str, str, dict[str, str]]
) -> None:
    async with database.engine.connect() as conn:
        assert (await conn.execute(text("SELECT current_user"))).scalar() == "helpdesk_app"
        for table in SEED:
            count = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
            assert count == 0, f"{table} leaked {count} rows without a tenant"


async def test_tenant_a_cannot_see_update_or_delete_b(
    database: Database, two_companies: tuple[str, str, dict[str, str]]
) -> None:
    a, b, _ = two_companies
    async with database.tenant_session(a) as session:
        for table in SEED:
            own = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
            assert own and own >= 1, f"{table}: A should see its own rows"
            others = (
                await session.execute(
                    text(f"SELECT count(*) FROM {table} WHERE company_id <> :a"), {"a": a}
                )
            ).scalar()
            assert others == 0, f"{table}: A sees other companies' rows"
            if table == "audit_log":
                continue  # append-only: UPDATE/DELETE are not even granted (tested below)
            updated = await session.execute(
                text(f"UPDATE {table} SET company_id = company_id WHERE company_id = :b"),
                {"b": b},
            )
            assert updated.rowcount == 0, f"{table}: A updated B's rows"
            deleted = await session.execute(
                text(f"DELETE FROM {table} WHERE company_id = :b"), {"b": b}
            )
            assert deleted.rowcount == 0, f"{table}: A deleted B's rows"
    # B's rows are all still there.
    async with database.tenant_session(b) as session:
        for table in SEED:
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar()


async def test_tenant_a_cannot_insert_or_move_rows_into_b(
    database: Database, two_companies: tuple[str, str, dict[str, str]]
) -> None:
    a, b, ids_b = two_companies
    async with database.tenant_session(a) as session:
        for statement in SEED.values():
            with pytest.raises(DBAPIError, match="row-level security"):
                async with session.begin_nested():
                    await session.execute(text(statement), {"c": b, **ids_b})
        with pytest.raises(DBAPIError, match="row-level security"):
            async with session.begin_nested():
                await session.execute(
                    text("UPDATE documents SET company_id = :b WHERE company_id = :a"),
                    {"a": a, "b": b},
                )


async def test_audit_log_is_append_only_for_the_runtime_role(
    database: Database, two_companies: tuple[str, str, dict[str, str]]
) -> None:
    a, _, _ = two_companies
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(ProgrammingError, match="permission denied"):
            async with database.tenant_session(a) as session:
                await session.execute(text(statement))


async def test_pooled_connection_forgets_the_tenant(database_urls: DatabaseUrls) -> None:
    a = new_company_id("pool")
    single = Database(create_engine(database_urls.runtime_url, pool_size=1))
    try:
        await seed_company(single, a)
        async with single.tenant_session(a) as session:
            pid_a = (await session.execute(text("SELECT pg_backend_pid()"))).scalar()
            assert (await session.execute(text("SELECT count(*) FROM documents"))).scalar() == 1
        async with single.engine.connect() as conn:
            # max_overflow lets the pool grow, so prove we really got the same backend.
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar() == pid_a
            setting = (
                await conn.execute(text("SELECT current_setting('app.company_id', true)"))
            ).scalar()
            assert setting in (None, "")
            for table in SEED:
                assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar() == 0
    finally:
        await single.dispose()


async def test_owner_role_is_bound_by_forced_rls(
    database_urls: DatabaseUrls, two_companies: tuple[str, str, dict[str, str]]
) -> None:
    owner = Database.from_url(database_urls.owner_url, pool_size=1)
    try:
        async with owner.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM documents"))).scalar() == 0
        with pytest.raises(UnsafeRuntimeRole):
            await assert_runtime_role_is_safe(owner.engine)
    finally:
        await owner.dispose()


async def test_runtime_role_is_safe(database: Database) -> None:
    await assert_runtime_role_is_safe(database.engine)
    async with database.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
    assert (row.rolsuper, row.rolbypassrls) == (False, False)
