"""Console rows: reached through the tenant session, or, before the company is known,
through a lookup transaction that makes one row visible by what the caller presents.

The lookup transactions mirror ``Database.key_lookup_session`` (the policies are in
migration 0011): the runtime role sees the single user with the e-mail being signed in,
the user holding the presented invitation, or the session whose cookie hash is presented.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import ConsoleSession, ConsoleUser
from backend.db.session import Database, _unavailable_when_down

_LOOKUP_SETTINGS = frozenset(
    {"app.console_email", "app.console_invite_hash", "app.console_session_hash"}
)


@asynccontextmanager
async def lookup_session(
    database: Database, setting: str, value: str
) -> AsyncIterator[AsyncSession]:
    """A read transaction in which the one row matching ``value`` is visible."""
    if setting not in _LOOKUP_SETTINGS:
        raise ValueError(f"not a console lookup setting: {setting}")
    async with (
        _unavailable_when_down(),
        AsyncSession(database.engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        await session.execute(
            text("SELECT set_config(:setting, :value, true)"), {"setting": setting, "value": value}
        )
        yield session


async def find_user_by_email(database: Database, email: str) -> ConsoleUser | None:
    async with lookup_session(database, "app.console_email", email) as session:
        return (
            await session.execute(select(ConsoleUser).where(ConsoleUser.email == email))
        ).scalar_one_or_none()


async def find_user_by_invite(database: Database, token_hash: bytes) -> ConsoleUser | None:
    async with lookup_session(database, "app.console_invite_hash", token_hash.hex()) as session:
        return (
            await session.execute(
                select(ConsoleUser).where(ConsoleUser.invite_token_hash == token_hash)
            )
        ).scalar_one_or_none()


async def find_session(database: Database, token_hash: bytes) -> ConsoleSession | None:
    async with lookup_session(database, "app.console_session_hash", token_hash.hex()) as session:
        return (
            await session.execute(
                select(ConsoleSession).where(ConsoleSession.token_hash == token_hash)
            )
        ).scalar_one_or_none()


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> ConsoleUser | None:
    return (
        await session.execute(select(ConsoleUser).where(ConsoleUser.id == user_id))
    ).scalar_one_or_none()


async def list_users(session: AsyncSession, *, limit: int) -> list[ConsoleUser]:
    query = select(ConsoleUser).order_by(ConsoleUser.created_at, ConsoleUser.id).limit(limit)
    return list((await session.execute(query)).scalars())


async def count_owners(session: AsyncSession) -> int:
    rows = await session.execute(select(ConsoleUser.id).where(ConsoleUser.role == "owner"))
    return len(rows.all())


async def insert_session(
    session: AsyncSession,
    *,
    company_id: str,
    user_id: uuid.UUID,
    token_hash: bytes,
    expires_at: datetime,
    client_ip: str | None,
    user_agent: str | None,
) -> ConsoleSession:
    row = ConsoleSession(
        company_id=company_id,
        user_id=user_id,
        token_hash=token_hash,
        expires_at=expires_at,
        client_ip=client_ip,
        user_agent=user_agent,
    )
    session.add(row)
    await session.flush()
    return row


async def delete_session(session: AsyncSession, token_hash: bytes) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))


async def delete_user_sessions(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(
        delete(ConsoleSession).where(ConsoleSession.user_id == user_id).returning(ConsoleSession.id)
    )
    return len(result.all())


async def delete_expired_sessions(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """Expired sessions of one user go at their next sign-in: the table keeps no dead rows
    beyond each user's last visit, without a sweeper job."""
    await session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.user_id == user_id, ConsoleSession.expires_at <= now
        )
    )
