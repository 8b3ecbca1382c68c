from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Connector


async def insert_connector(
    session: AsyncSession,
    *,
    company_id: str,
    platform: str,
    name: str,
    settings: dict[str, Any],
    credentials_encrypted: bytes | None,
    schedule_minutes: int | None,
    enabled: bool,
    connector_id: uuid.UUID | None = None,
) -> Connector:
    connector = Connector(
        id=connector_id or uuid.uuid4(),
        company_id=company_id,
        platform=platform,
        name=name,
        settings=settings,
        credentials_encrypted=credentials_encrypted,
        schedule_minutes=schedule_minutes,
        enabled=enabled,
    )
    session.add(connector)
    await session.flush()
    await session.refresh(connector)
    return connector


async def get_connector(session: AsyncSession, connector_id: uuid.UUID) -> Connector | None:
    return await session.get(Connector, connector_id)


async def get_connector_for_update(
    session: AsyncSession, connector_id: uuid.UUID
) -> Connector | None:
    result = await session.execute(
        select(Connector).where(Connector.id == connector_id).with_for_update()
    )
    return result.scalar_one_or_none()


async def lock_company_connectors(session: AsyncSession, company_id: str) -> None:
    """Serialize connector creation per company until the transaction ends, so two
    concurrent creates cannot both pass the per-company limit."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('connectors:' || :company_id))"),
        {"company_id": company_id},
    )


async def count_connectors(session: AsyncSession) -> int:
    """How many connectors the session's company has (RLS scopes the count)."""
    result = await session.execute(select(func.count()).select_from(Connector))
    return int(result.scalar_one())


async def list_connectors(session: AsyncSession) -> list[Connector]:
    result = await session.execute(select(Connector).order_by(Connector.created_at))
    return list(result.scalars())


async def list_scheduled_connectors(session: AsyncSession) -> list[Connector]:
    result = await session.execute(
        select(Connector).where(Connector.enabled, Connector.schedule_minutes.is_not(None))
    )
    return list(result.scalars())


async def save_checkpoint(
    session: AsyncSession, connector_id: uuid.UUID, checkpoint: dict[str, Any] | None
) -> None:
    await session.execute(
        update(Connector).where(Connector.id == connector_id).values(checkpoint=checkpoint)
    )


async def mark_synced(session: AsyncSession, connector_id: uuid.UUID, *, at: datetime) -> None:
    await session.execute(
        update(Connector).where(Connector.id == connector_id).values(last_sync_at=at)
    )


async def delete_connector(session: AsyncSession, connector: Connector) -> None:
    await session.delete(connector)
    await session.flush()
