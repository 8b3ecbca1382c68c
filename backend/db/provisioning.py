"""Roles, database creation, migrations and the runtime-role safety check.

Two roles: the *owner* owns the schema and runs migrations; the *runtime* role (what the
service connects as) owns nothing, is not a superuser and cannot bypass RLS. Because every
table has ``FORCE ROW LEVEL SECURITY``, even the owner sees no tenant rows without a tenant.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from backend.errors import AppError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant: serialises concurrent `migrate` runs from several replicas.
_MIGRATION_LOCK_ID = 7_240_113_921


class UnsafeRuntimeRole(AppError):
    status_code = 500
    code = "unsafe_database_role"


@dataclass(frozen=True)
class DatabaseUrls:
    runtime_url: str
    owner_url: str


def to_asyncpg_dsn(url: str) -> str:
    """SQLAlchemy URL → plain libpq-style DSN for asyncpg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def provision_database(
    superuser_dsn: str,
    *,
    database: str,
    owner_role: str = "helpdesk_owner",
    app_role: str = "helpdesk_app",
    app_password: str | None = None,
    owner_password: str | None = None,
) -> None:
    """Create both roles (if missing) and ``database`` owned by the owner role (if missing).

    Needs a superuser (or CREATEROLE + CREATEDB) connection; safe to run repeatedly and
    concurrently (duplicate-object races are ignored).
    """
    conn = await asyncpg.connect(to_asyncpg_dsn(superuser_dsn))
    try:
        for role, password in ((owner_role, owner_password), (app_role, app_password)):
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            pw = f" PASSWORD {_quote_literal(password)}" if password else ""
            if not exists:
                with contextlib.suppress(asyncpg.DuplicateObjectError):
                    await conn.execute(
                        f"CREATE ROLE {_quote_ident(role)} LOGIN NOSUPERUSER NOBYPASSRLS "
                        f"NOCREATEDB NOCREATEROLE{pw}"
                    )
            elif password:
                await conn.execute(f"ALTER ROLE {_quote_ident(role)}{pw}")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(
                    f"CREATE DATABASE {_quote_ident(database)} OWNER {_quote_ident(owner_role)}"
                )
    finally:
        await conn.close()


async def drop_database(superuser_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(to_asyncpg_dsn(superuser_dsn))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(database)} WITH (FORCE)")
    finally:
        await conn.close()


def _alembic_config(connection: Connection) -> Config:
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _grant_runtime_privileges(connection: Connection, app_role: str) -> None:
    role = _quote_ident(app_role)
    for statement in (
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        # Append-only: the service may write audit entries, never change or remove them.
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {role}",
        f"REVOKE ALL ON alembic_version FROM {role}",
    ):
        connection.execute(text(statement))


async def run_migrations(owner_url: str, *, app_role: str = "helpdesk_app") -> None:
    """Upgrade the schema to head as the owner, then grant the runtime role its privileges."""
    engine = create_async_engine(owner_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            try:

                def upgrade(sync_conn: Connection) -> None:
                    command.upgrade(_alembic_config(sync_conn), "head")
                    _grant_runtime_privileges(sync_conn, app_role)

                await conn.run_sync(upgrade)
                await conn.commit()
            finally:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
                await conn.commit()
    finally:
        await engine.dispose()


async def assert_runtime_role_is_safe(engine: AsyncEngine) -> None:
    """Refuse to serve as a role that could see every tenant's rows."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT r.rolname, r.rolsuper, r.rolbypassrls, "
                    "(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid "
                    " AND c.relnamespace = 'public'::regnamespace) AS owned "
                    "FROM pg_roles r WHERE r.rolname = current_user"
                )
            )
        ).one()
    if row.rolsuper or row.rolbypassrls or row.owned:
        raise UnsafeRuntimeRole(
            f"database role {row.rolname!r} must not be a superuser, bypass RLS or own "
            "tables; set HELPDESK_DATABASE_URL to the runtime role (see README)"
        )
