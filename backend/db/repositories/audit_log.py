from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import AuditLogEntry


async def append_audit_entry(
    session: AsyncSession,
    *,
    company_id: str,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLogEntry(
            company_id=company_id,
            actor=actor,
            action=action,
            target=target,
            details=details or {},
        )
    )
    await session.flush()


async def list_audit_entries(session: AsyncSession, *, limit: int) -> list[AuditLogEntry]:
    result = await session.execute(
        select(AuditLogEntry).order_by(AuditLogEntry.id.desc()).limit(limit)
    )
    return list(result.scalars())
