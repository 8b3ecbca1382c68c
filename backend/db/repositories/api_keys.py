from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import ApiKey


async def insert_api_key(
    session: AsyncSession,
    *,
    company_id: str,
    name: str,
    prefix: str,
    key_hash: bytes,
    created_by: str | None,
    expires_at: datetime | None,
    scopes: list[str] | None = None,
) -> ApiKey:
    key = ApiKey(
        company_id=company_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        created_by=created_by,
        expires_at=expires_at,
    )
    if scopes is not None:
        key.scopes = scopes
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key


async def list_api_keys(session: AsyncSession, *, include_revoked: bool) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list((await session.execute(query)).scalars())


async def get_api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def find_api_key_by_hash(session: AsyncSession, key_hash: bytes) -> ApiKey | None:
    result = await session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
    return result.scalar_one_or_none()


async def mark_api_key_revoked(session: AsyncSession, key_id: uuid.UUID, at: datetime) -> bool:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=at)
        .returning(ApiKey.id)
    )
    return result.scalar_one_or_none() is not None


async def touch_api_key(session: AsyncSession, key_id: uuid.UUID, at: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
