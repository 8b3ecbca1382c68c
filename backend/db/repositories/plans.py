"""Company plans, the counts they limit, and the browser origins a company's widget runs on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Company, Connector, Document


async def get_plan(session: AsyncSession, company_id: str) -> dict[str, Any] | None:
    """The stored plan (limits the admin named), or ``None`` when the company is unknown."""
    result = await session.execute(select(Company.plan).where(Company.company_id == company_id))
    row = result.first()
    return None if row is None else dict(row[0] or {})


async def set_plan(session: AsyncSession, company_id: str, plan: dict[str, Any]) -> bool:
    result = await session.execute(
        update(Company)
        .where(Company.company_id == company_id)
        .values(plan=plan)
        .returning(Company.company_id)
    )
    return result.first() is not None


async def count_documents(session: AsyncSession) -> int:
    """Documents of the session's company (RLS scopes the count)."""
    return int((await session.execute(select(func.count()).select_from(Document))).scalar_one())


async def count_connectors(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Connector))).scalar_one())


async def company_origin_sources(
    session: AsyncSession, company_id: str
) -> tuple[str | None, Any] | None:
    """(helpdesk_domain, settings['widget_origins']) of one company, ``None`` if unknown."""
    result = await session.execute(
        select(Company.helpdesk_domain, Company.settings["widget_origins"]).where(
            Company.company_id == company_id
        )
    )
    row = result.first()
    return None if row is None else (row[0], row[1])


async def any_company_allows_origin(session: AsyncSession, origin: str, host: str) -> bool:
    """Whether some company lists ``origin`` among its widget origins, or has ``host`` as its
    helpdesk domain (a platform session: the admin's read-only view of companies)."""
    result = await session.execute(
        select(Company.company_id)
        .where(
            or_(
                Company.settings["widget_origins"].contains([origin]),
                func.lower(Company.helpdesk_domain) == host,
            )
        )
        .limit(1)
    )
    return result.first() is not None
