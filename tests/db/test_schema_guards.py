"""Guards that make a future table unable to forget tenancy."""

from __future__ import annotations

from sqlalchemy import text

from backend.db.session import Database


async def test_every_company_id_table_has_forced_rls_and_a_checked_policy(
    database: Database,
) -> None:
    async with database.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                           EXISTS (SELECT 1 FROM pg_policies p
                                   WHERE p.tablename = c.relname AND p.cmd = 'ALL'
                                     AND p.qual LIKE '%current_setting(''app.company_id''%'
                                     AND p.with_check LIKE
                                         '%current_setting(''app.company_id''%') AS policed,
                           EXISTS (SELECT 1 FROM pg_index i
                                   JOIN pg_attribute a ON a.attrelid = i.indrelid
                                        AND a.attnum = i.indkey[0]
                                   WHERE i.indrelid = c.oid AND a.attname = 'company_id')
                               AS indexed
                    FROM pg_class c
                    JOIN information_schema.columns col
                         ON col.table_name = c.relname AND col.table_schema = 'public'
                    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
                      AND col.column_name = 'company_id'
                    """
                )
            )
        ).all()
    assert len(rows) >= 9
    for name, enabled, forced, policed, indexed in rows:
        assert enabled, f"{name}: row-level security not enabled"
        assert forced, f"{name}: row-level security not forced"
        assert policed, f"{name}: no tenant policy with USING and WITH CHECK"
        assert indexed, f"{name}: no index leading with company_id"


async def test_no_table_in_public_lacks_company_id_except_bookkeeping(
    database: Database,
) -> None:
    async with database.engine.connect() as conn:
        tables = {
            r[0]
            for r in await conn.execute(
                text(
                    "SELECT t.table_name FROM information_schema.tables t "
                    "WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
                    "AND NOT EXISTS (SELECT 1 FROM information_schema.columns c "
                    "WHERE c.table_name = t.table_name AND c.column_name = 'company_id')"
                )
            )
        }
    # alembic_version is not even visible to the runtime role (privileges revoked).
    assert tables <= {"alembic_version"}
