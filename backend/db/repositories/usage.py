from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Usage


async def add_usage(
    session: AsyncSession,
    *,
    company_id: str,
    month: date,
    provider: str,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float,
) -> None:
    statement = insert(Usage).values(
        company_id=company_id,
        month=month,
        provider=provider,
        model=model,
        requests=1,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=Decimal(str(cost_usd)),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["company_id", "month", "provider", "model"],
            set_={
                "requests": Usage.requests + 1,
                "prompt_tokens": Usage.prompt_tokens + statement.excluded.prompt_tokens,
                "completion_tokens": Usage.completion_tokens + statement.excluded.completion_tokens,
                "cost_usd": Usage.cost_usd + statement.excluded.cost_usd,
            },
        )
    )


async def month_totals(session: AsyncSession, month: date) -> tuple[int, float]:
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(Usage.prompt_tokens + Usage.completion_tokens), 0),
                func.coalesce(func.sum(Usage.cost_usd), 0),
            ).where(Usage.month == month)
        )
    ).one()
    return int(row[0]), float(row[1])
