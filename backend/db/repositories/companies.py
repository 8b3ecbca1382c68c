from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Company


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


async def merge_company_settings(
    session: AsyncSession, company_id: str, key: str, value: Any
) -> None:
    """Set one top-level key of the company's settings JSON, keeping the others."""
    company = await session.get(Company, company_id)
    if company is None:
        return
    company.settings = {**(company.settings or {}), key: value}
    await session.flush()
