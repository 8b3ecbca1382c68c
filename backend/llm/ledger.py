"""The production ``BudgetLedger``: per-company monthly usage in Postgres (``usage`` table).

Reads and writes go through ``tenant_session``, so one company's spend can never count
towards another's budget. A usage row that cannot be written now (Postgres down) is handed
to ``spill`` — the process's durable outbox (see :mod:`backend.assistant.recorder`) — so
the tokens of an answer already served are still counted once the database is back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import structlog

from backend.db.repositories import usage as usage_repo
from backend.db.session import Database
from backend.llm.clock import Clock, month_of
from backend.llm.types import Usage


def _first_day(month: str) -> date:
    year, number = month.split("-")
    return date(int(year), int(number), 1)


_log = structlog.get_logger("helpdesk.usage")

UsageSpill = Callable[[str, dict[str, Any]], None]
"""Takes (company id, a usage row with JSON-ready values) for a later write."""


class PostgresBudgetLedger:
    def __init__(
        self, database: Database, clock: Clock, *, spill: UsageSpill | None = None
    ) -> None:
        self.database = database
        self.clock = clock
        self.spill = spill

    async def spent(self, company_id: str, month: str) -> tuple[int, float]:
        async with self.database.tenant_session(company_id) as session:
            return await usage_repo.month_totals(session, _first_day(month))

    async def record(
        self, company_id: str, usage: Usage, cost: float, provider: str, model: str
    ) -> None:
        month = _first_day(month_of(self.clock.now()))
        try:
            async with self.database.tenant_session(company_id) as session:
                await usage_repo.add_usage(
                    session,
                    company_id=company_id,
                    month=month,
                    provider=provider,
                    model=model,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    cost_usd=cost,
                )
        except Exception as exc:
            if self.spill is None:
                raise
            _log.warning("usage write deferred to the outbox", error=type(exc).__name__)
            self.spill(
                company_id,
                {
                    "month": month.isoformat(),
                    "provider": provider,
                    "model": model,
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "cost_usd": cost,
                },
            )
