"""Engines and the tenant-scoped session.

``Database.tenant_session(company_id)`` is the one way tenant rows are reached: it opens a
transaction and sets ``app.company_id`` with ``set_config(..., true)`` (transaction-local, so a
pooled connection forgets the tenant when the transaction ends). Row-level security then
hides every other company's rows, even from a query that forgets ``WHERE company_id``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal
from uuid import uuid4

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from backend.db.outage import is_database_outage
from backend.errors import StoreUnavailable
from backend.tenancy.company_id import validate_company_id


@asynccontextmanager
async def _unavailable_when_down() -> AsyncIterator[None]:
    """Turn a Postgres outage inside a session into :class:`StoreUnavailable` (a 503 with
    ``Retry-After`` naming the store). Opening the session (the first statement checks a
    connection out) may fail with a bare ``OSError``; inside the body only the driver's
    own errors count, so an unrelated ``OSError`` there is not blamed on Postgres."""
    try:
        yield
    except StoreUnavailable:
        raise
    except DBAPIError as exc:
        if is_database_outage(exc):
            raise StoreUnavailable("postgres") from exc
        raise


async def _begin(session: AsyncSession, statement: str, params: dict[str, str]) -> None:
    try:
        await session.execute(text(statement), params)
    except (DBAPIError, OSError) as exc:
        if is_database_outage(exc):
            raise StoreUnavailable("postgres") from exc
        raise


Pooler = Literal["none", "transaction"]


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4().hex}__"


def _connect_args(pooler: Pooler) -> dict[str, Any]:
    if pooler == "none":
        return {}
    # Behind a transaction pooler (PgBouncer ``pool_mode = transaction``) consecutive
    # transactions of one client connection run on different server connections, so nothing
    # may outlive a transaction on the server: no cached prepared statements (asyncpg's and
    # SQLAlchemy's caches are off), and the statements prepared inside a transaction get
    # unique names so two clients sharing a server connection never collide on
    # ``__asyncpg_stmt_1__``. The tenant setting is already transaction-local.
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


def create_engine(url: str, *, pool_size: int = 10, pooler: Pooler = "none") -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=_connect_args(pooler),
    )


class Database:
    """The runtime connection pool (a role that owns nothing and cannot bypass RLS)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10, pooler: Pooler = "none") -> Database:
        return cls(create_engine(url, pool_size=pool_size, pooler=pooler))

    @asynccontextmanager
    async def tenant_session(self, company_id: str) -> AsyncIterator[AsyncSession]:
        """A transaction in which only ``company_id``'s rows exist. Commits on success."""
        validate_company_id(company_id)
        async with _unavailable_when_down(), self._sessions() as session, session.begin():
            await _begin(
                session,
                "SELECT set_config('app.company_id', :company_id, true)",
                {"company_id": company_id},
            )
            yield session

    @asynccontextmanager
    async def platform_session(self) -> AsyncIterator[AsyncSession]:
        """A transaction for the platform admin: may list companies, sees no tenant rows."""
        async with _unavailable_when_down(), self._sessions() as session, session.begin():
            await _begin(session, "SELECT set_config('app.platform_admin', 'on', true)", {})
            yield session

    @asynccontextmanager
    async def key_lookup_session(self, key_hash_hex: str) -> AsyncIterator[AsyncSession]:
        """A transaction in which the one API key row whose hash is presented is visible."""
        async with _unavailable_when_down(), self._sessions() as session, session.begin():
            await _begin(
                session, "SELECT set_config('app.api_key_hash', :h, true)", {"h": key_hash_hex}
            )
            yield session

    @asynccontextmanager
    async def webhook_lookup_session(self, connector_id: str) -> AsyncIterator[AsyncSession]:
        """A transaction in which only the webhook endpoint row of ``connector_id`` is
        visible (to learn its company before the request's signature is checked)."""
        async with _unavailable_when_down(), self._sessions() as session, session.begin():
            await _begin(
                session, "SELECT set_config('app.webhook_connector', :c, true)", {"c": connector_id}
            )
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def tenant_session(database: Database, company_id: str) -> AsyncIterator[AsyncSession]:
    """Function form of :meth:`Database.tenant_session`, for workers and scripts."""
    async with database.tenant_session(company_id) as session:
        yield session


@asynccontextmanager
async def platform_session(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.platform_session() as session:
        yield session
