from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import (
    ApiKey,
    Company,
    Connector,
    Document,
    Feedback,
    Interaction,
    SyncRun,
    Usage,
)

# Tenant tables in deletion order (children first). Tables added later that reference
# companies with ON DELETE CASCADE are removed with the company row; the audit log is kept
# on purpose (see delete_company_rows).
_COMPANY_TABLES = (Feedback, Interaction, Usage, SyncRun, Document, Connector, ApiKey)


async def insert_company(
    session: AsyncSession,
    *,
    company_id: str,
    name: str,
    helpdesk_domain: str | None,
    settings: dict[str, Any] | None = None,
) -> Company:
    company = Company(
        company_id=company_id,
        name=name,
        helpdesk_domain=helpdesk_domain,
        settings=settings or {},
    )
    session.add(company)
    await session.flush()
    await session.refresh(company)
    return company


async def get_company(session: AsyncSession, company_id: str) -> Company | None:
    return await session.get(Company, company_id)


async def list_companies(session: AsyncSession, *, limit: int, offset: int) -> list[Company]:
    result = await session.execute(
        select(Company).order_by(Company.company_id).limit(limit).offset(offset)
    )
    return list(result.scalars())


async def bump_knowledge_generation(session: AsyncSession, company_id: str) -> int:
    result = await session.execute(
        update(Company)
        .where(Company.company_id == company_id)
        .values(knowledge_generation=Company.knowledge_generation + 1)
        .returning(Company.knowledge_generation)
    )
    return int(result.scalar_one())


async def set_company_status(session: AsyncSession, company_id: str, status: str) -> bool:
    result = await session.execute(
        update(Company).where(Company.company_id == company_id).values(status=status)
    )
    return bool(getattr(result, "rowcount", 0))


async def delete_company_rows(session: AsyncSession, company_id: str) -> dict[str, int]:
    """Delete every row of ``company_id`` except its audit log; returns rows per table.

    The audit log is append-only (the runtime role may not delete from it) and outlives
    what it describes: the deletion itself is recorded there.
    """
    counts: dict[str, int] = {}
    for model in _COMPANY_TABLES:
        result = await session.execute(delete(model).where(model.company_id == company_id))
        counts[str(model.__tablename__)] = _rowcount(result)
    result = await session.execute(delete(Company).where(Company.company_id == company_id))
    counts["companies"] = _rowcount(result)
    return counts


def _rowcount(result: object) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


async def merge_company_settings(
    session: AsyncSession, company_id: str, key: str, value: Any
) -> None:
    """Set one top-level key of the company's settings JSON, keeping the others."""
    company = await session.get(Company, company_id)
    if company is None:
        return
    company.settings = {**(company.settings or {}), key: value}
    await session.flush()
