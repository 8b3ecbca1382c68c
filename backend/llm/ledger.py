"""The production ``BudgetLedger``: per-company monthly usage in Postgres (``usage`` table).

Reads and writes go through ``tenant_session``, so one company's spend can never count
towards another's budget.
"""

from __future__ import annotations

from datetime import date

from backend.db.repositories import usage as usage_repo
from backend.db.session import Database
from backend.llm.clock import Clock, month_of
from backend.llm.types import Usage


def _first_day(month: str) -> date:
    year, number = month.split("-")
    return date(int(year), int(number), 1)


class PostgresBudgetLedger:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    async def spent(self, company_id: str, month: str) -> tuple[int, float]:
        async with self.database.tenant_session(company_id) as session:
            return await usage_repo.month_totals(session, _first_day(month))

    async def record(
        self, company_id: str, usage: Usage, cost: float, provider: str, model: str
    ) -> None:
        async with self.database.tenant_session(company_id) as session:
            await usage_repo.add_usage(
                session,
                company_id=company_id,
                month=_first_day(month_of(self.clock.now())),
                provider=provider,
                model=model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=cost,
            )
