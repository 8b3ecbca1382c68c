"""Per-company monthly model budgets.

A company's spend is kept by a :class:`BudgetLedger` (the service's is in Postgres; the
in-memory one here is for tests). Limits come from a :class:`BudgetPolicy`. The router asks
for the company's :class:`BudgetStatus` before each call:

- ``ok``: below ``economy_at`` of every limit → the task's normal chain;
- ``economy``: past ``economy_at`` of a limit → the task's cheaper ``economy_chain``;
- ``exhausted``: at or past a limit → the extractive composer only.

Running out of budget therefore degrades the answer, never fails the request.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from backend.llm.clock import Clock, month_of
from backend.llm.types import Usage
from backend.tenancy.company_id import CompanyId, CompanyIdField

BudgetState = Literal["ok", "economy", "exhausted"]


class BudgetLedger(Protocol):
    """Where model spend is recorded and summed, per company and calendar month (UTC).

    ``month`` is ``YYYY-MM``. ``record`` is called once per finished call, extractive ones
    included (with zero usage and cost), and must attribute the spend to the month in which
    it is recorded. ``spent`` returns the sums ``(tokens, cost_usd)`` for that company and
    month, where tokens = prompt + completion tokens. Implementations must keep companies
    apart: one company's records never count towards another's sums.
    """

    async def spent(self, company_id: str, month: str) -> tuple[int, float]: ...

    async def record(
        self, company_id: str, usage: Usage, cost: float, provider: str, model: str
    ) -> None: ...


class CompanyBudget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    monthly_tokens: int | None = Field(default=None, ge=0, description="None: no token limit.")
    monthly_cost_usd: float | None = Field(default=None, ge=0, description="None: no cost limit.")
    economy_at: float = Field(
        default=0.8, gt=0, le=1, description="Fraction of a limit at which cheaper routes start."
    )

    @property
    def unlimited(self) -> bool:
        return self.monthly_tokens is None and self.monthly_cost_usd is None

    def state(self, tokens: int, cost_usd: float) -> BudgetState:
        fractions: list[float] = []
        if self.monthly_tokens is not None:
            fractions.append(tokens / self.monthly_tokens if self.monthly_tokens else 1.0)
        if self.monthly_cost_usd is not None:
            fractions.append(cost_usd / self.monthly_cost_usd if self.monthly_cost_usd else 1.0)
        worst = max(fractions, default=0.0)
        if worst >= 1.0:
            return "exhausted"
        if worst >= self.economy_at:
            return "economy"
        return "ok"


class BudgetPolicy(BaseModel):
    """Monthly limits: one default for every company, with per-company overrides.

    JSON form (``HELPDESK_LLM_BUDGETS``)::

        {"default": {"monthly_cost_usd": 50},
         "companies": {"acme": {"monthly_tokens": 2000000, "monthly_cost_usd": 200}}}
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: CompanyBudget = CompanyBudget()
    companies: dict[CompanyIdField, CompanyBudget] = Field(default_factory=dict)

    def limits_for(self, company_id: str) -> CompanyBudget:
        return self.companies.get(CompanyId(company_id), self.default)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    state: BudgetState
    month: str
    tokens_spent: int
    cost_spent_usd: float
    limits: CompanyBudget


class InMemoryBudgetLedger:
    """A process-local :class:`BudgetLedger` for unit tests (not durable, not shared).

    ``clock`` tells it which month a ``record`` belongs to; pass the router's clock so tests
    can move through months.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._sums: dict[tuple[str, str], tuple[int, float]] = defaultdict(lambda: (0, 0.0))
        self.records: list[tuple[str, str, Usage, float, str, str]] = []
        self._lock = asyncio.Lock()

    async def spent(self, company_id: str, month: str) -> tuple[int, float]:
        return self._sums.get((company_id, month), (0, 0.0))

    async def record(
        self, company_id: str, usage: Usage, cost: float, provider: str, model: str
    ) -> None:
        month = month_of(self._clock.now())
        async with self._lock:
            tokens, spent = self._sums[(company_id, month)]
            self._sums[(company_id, month)] = (tokens + usage.total_tokens, spent + cost)
            self.records.append((company_id, month, usage, cost, provider, model))

    def add_spend(self, company_id: str, month: str, tokens: int, cost: float) -> None:
        """Seed past spend (tests start companies part-way through their budget)."""
        old_tokens, old_cost = self._sums[(company_id, month)]
        self._sums[(company_id, month)] = (old_tokens + tokens, old_cost + cost)
