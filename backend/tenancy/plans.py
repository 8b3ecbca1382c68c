"""Per-company plans: how much of the shared service one company may use.

A plan has four limits — API requests per minute, assistant calls per calendar month
(UTC), indexed documents, connectors. The platform admin sets them per company (stored in
``companies.plan``; ``PUT /admin/companies/{id}/plan``, ``helpdesk plans set``); a limit the
company's plan does not name comes from the service defaults (``HELPDESK_PLAN_DEFAULT_*``),
and ``null`` means unlimited.

Rates and monthly counts are kept by the ``limits`` library: in Redis (standalone or
Cluster) when one is configured, so every API process shares them, else in process memory
(the embedded default: one process). Redis keys are ``hd:{company}:plan/...``, under the
company's Cluster hash tag like every key of ours, so a company's counters share a slot and
go with its other keys when the company is purged. Counts live in Redis/memory only; the
documents and connectors a company has are counted in Postgres.

Redis unreachable: requests are let through (the cache's rule: an accelerator outage never
takes the API down), and ``helpdesk_plan_limiter_errors_total`` counts it.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from backend.cache import KEY_PREFIX, parse_cluster_nodes
from backend.clock import Clock
from backend.db.repositories import plans as plan_repo
from backend.db.repositories.audit_log import append_audit_entry
from backend.db.session import Database
from backend.errors import AppError, NotFound
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import TenantRows, open_rows

_log = structlog.get_logger("helpdesk.plans")

LIMITER_ERRORS = Counter(
    "helpdesk_plan_limiter_errors",
    "Plan limit checks skipped because the limiter's store (Redis) failed.",
)
RATE_LIMITED = Counter(
    "helpdesk_plan_rejections",
    "Requests refused by a company's plan, by limit.",
    ["limit"],
)

# A limiter check must not slow a request down by more than a fraction of a second.
_REDIS_TIMEOUT_S: Final = 0.5
_STORE_COOLDOWN_S: Final = 5.0


class PlanLimits(BaseModel):
    """Effective limits of a company; ``None``: unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: int | None = Field(
        default=None, ge=1, le=1_000_000, description="API requests per minute."
    )
    assistant_calls_per_month: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000_000,
        description="Answers, drafts, review replies and summaries per calendar month (UTC).",
    )
    documents: int | None = Field(
        default=None, ge=0, le=1_000_000_000, description="Indexed documents."
    )
    connectors: int | None = Field(default=None, ge=0, le=10_000, description="Connectors.")


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"


class QuotaExceeded(AppError):
    status_code = 429
    code = "quota_exceeded"


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class _AmountFreeMinute(RateLimitItemPerMinute):
    """Keys without the amount: a plan change keeps the count instead of starting afresh."""

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return f"{self.namespace}/" + "/".join(str(i) for i in identifiers)


class _AmountFreeDays(RateLimitItemPerDay):
    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return f"{self.namespace}/" + "/".join(str(i) for i in identifiers)


def _namespace(company_id: str) -> str:
    # Prefixed by the storage with "hd:" → "hd:{acme}:plan/…": the company's hash tag.
    return f"{{{company_id}}}:plan"


def _month(now: datetime) -> tuple[str, datetime]:
    """``YYYY-MM`` of ``now`` (UTC) and the start of the next month."""
    now = now.astimezone(UTC)
    following = (
        datetime(now.year + 1, 1, 1, tzinfo=UTC)
        if now.month == 12
        else datetime(now.year, now.month + 1, 1, tzinfo=UTC)
    )
    return f"{now.year:04d}-{now.month:02d}", following


def build_limiter_storage(redis_url: str | None, cluster_nodes: str | None) -> Storage:
    """The limiter's store: the deployment's Redis (shared by every process) or memory."""
    if cluster_nodes:
        seeds = ",".join(f"{host}:{port}" for host, port in parse_cluster_nodes(cluster_nodes))
        return RedisClusterStorage(
            f"async+redis+cluster://{seeds}",
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            socket_timeout=_REDIS_TIMEOUT_S,
            socket_connect_timeout=_REDIS_TIMEOUT_S,
        )
    if redis_url:
        return RedisStorage(
            "async+" + redis_url,
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            socket_timeout=_REDIS_TIMEOUT_S,
            socket_connect_timeout=_REDIS_TIMEOUT_S,
        )
    return MemoryStorage()


@dataclass
class _CachedPlan:
    limits: PlanLimits
    expires: float


class PlanService:
    """Resolves and enforces plans. One per process; everything per company is an argument."""

    def __init__(
        self,
        database: Database,
        storage: Storage,
        *,
        defaults: PlanLimits,
        clock: Clock,
        cache_seconds: float = 10.0,
    ) -> None:
        self.database = database
        self.storage = storage
        self.defaults = defaults
        self.clock = clock
        self.cache_seconds = cache_seconds
        # A moving window: exact over any 60 s (no double burst at a window edge), and its
        # keys are ours as given (the sliding-window counter wraps keys in a hash tag of
        # its own, which would move them off the company's slot).
        self._rate = MovingWindowRateLimiter(storage)
        self._monthly = FixedWindowRateLimiter(storage)
        self._plans: dict[str, _CachedPlan] = {}
        # After a limiter failure, skip the store for a while: a dead Redis must not cost
        # every request a connect timeout (the cache backend does the same).
        self._store_down_until = 0.0

    # ------------------------------------------------------------------------- plans

    def effective(self, stored: dict[str, Any]) -> PlanLimits:
        """The defaults, overridden by every limit the stored plan names."""
        known = {k: v for k, v in stored.items() if k in PlanLimits.model_fields}
        return PlanLimits.model_validate({**self.defaults.model_dump(), **known})

    async def stored_plan(self, rows: TenantRows) -> dict[str, Any]:
        stored = await plan_repo.get_plan(rows.session, rows.company_id)
        if stored is None:
            raise NotFound(f"no company {rows.company_id!r}", code="company_not_found")
        return stored

    async def limits_for(self, company_id: str, rows: TenantRows | None = None) -> PlanLimits:
        """The company's effective limits, remembered ``cache_seconds`` per process.

        Read in ``rows`` when the caller has a transaction open; the per-request rate check
        runs in the auth dependency, before the request's scope exists, so without one a
        cache miss reads in a short transaction of its own."""
        now = time.monotonic()
        cached = self._plans.get(company_id)
        if cached is not None and cached.expires > now:
            return cached.limits
        try:
            if rows is not None:
                stored = await self.stored_plan(rows)
            else:
                async with open_rows(self.database, CompanyId(company_id)) as own:
                    stored = await self.stored_plan(own)
            limits = self.effective(stored)
        except NotFound:
            limits = self.defaults
        if len(self._plans) > 10_000:
            self._plans.clear()
        self._plans[company_id] = _CachedPlan(limits, now + self.cache_seconds)
        return limits

    async def set_plan(self, rows: TenantRows, plan: dict[str, Any], *, actor: str) -> PlanLimits:
        """Replace the stored plan (limits it leaves out use the defaults), audited in the
        caller's transaction."""
        PlanLimits.model_validate(plan)  # the caller validated it; never store less
        company_id = rows.company_id
        if not await plan_repo.set_plan(rows.session, company_id, plan):
            raise NotFound(f"no company {company_id!r}", code="company_not_found")
        await append_audit_entry(
            rows.session,
            company_id=company_id,
            actor=actor,
            action="company.plan",
            target=company_id,
            details=plan,
        )
        # Dropped before the caller commits: a read in between caches the old plan for at
        # most ``cache_seconds``, as in every other process.
        self._plans.pop(company_id, None)
        return self.effective(plan)

    # ------------------------------------------------------------------- enforcement

    def _store_down(self) -> bool:
        return time.monotonic() < self._store_down_until

    def _store_failed(self) -> None:
        LIMITER_ERRORS.inc()
        error = sys.exc_info()[1]
        _log.warning(
            "plan limiter store unavailable; requests let through for a while",
            error=f"{type(error).__name__}: {error}",
        )
        self._store_down_until = time.monotonic() + _STORE_COOLDOWN_S

    def _minute_item(self, company_id: str, amount: int) -> RateLimitItem:
        return _AmountFreeMinute(amount, 1, namespace=_namespace(company_id))

    def _month_item(self, company_id: str, amount: int) -> RateLimitItem:
        # A fixed window keyed by the calendar month; 32 days outlives any month.
        return _AmountFreeDays(max(amount, 1), 32, namespace=_namespace(company_id))

    async def hit_request(self, company_id: str) -> None:
        """Count one API request; 429 ``rate_limited`` with Retry-After over the plan."""
        limits = await self.limits_for(company_id)
        if limits.requests_per_minute is None or self._store_down():
            return
        item = self._minute_item(company_id, limits.requests_per_minute)
        try:
            if await self._rate.hit(item, "requests"):
                return
            stats = await self._rate.get_window_stats(item, "requests")
        except Exception:
            self._store_failed()
            return
        RATE_LIMITED.labels(limit="requests_per_minute").inc()
        raise RateLimited(
            f"your plan allows {limits.requests_per_minute} requests per minute",
            headers=_retry_after(stats.reset_time - time.time()),
        )

    async def hit_assistant_call(self, company_id: str) -> None:
        """Count one assistant call this month; 429 ``quota_exceeded`` once the plan's
        monthly calls are used up (Retry-After: the start of next month)."""
        limits = await self.limits_for(company_id)
        if self._store_down():
            return
        month, next_month = _month(self.clock.now())
        cap = limits.assistant_calls_per_month
        # Unlimited plans are counted too (so usage shows them) against a ceiling never hit.
        item = self._month_item(company_id, cap if cap is not None else 2**62)
        try:
            allowed = cap != 0 and await self._monthly.test(item, "assistant_calls", month)
            if allowed:
                await self._monthly.hit(item, "assistant_calls", month)
                return
        except Exception:
            self._store_failed()
            return
        RATE_LIMITED.labels(limit="assistant_calls_per_month").inc()
        raise QuotaExceeded(
            f"your plan's {cap} assistant calls for {month} are used up",
            headers=_retry_after((next_month - self.clock.now()).total_seconds()),
        )

    async def documents_room(self, company_id: str) -> int | None:
        """How many more documents the company may index (``None``: no limit)."""
        limits = await self.limits_for(company_id)
        if limits.documents is None:
            return None
        async with self.database.tenant_session(company_id) as session:
            held = await plan_repo.count_documents(session)
        return max(0, limits.documents - held)

    async def connector_limit(self, rows: TenantRows) -> int | None:
        """How many connectors the company may have (``None``: no limit); the connector
        service checks it under its per-company lock, in its caller's transaction, when one
        is created (409 ``plan_limit_connectors``)."""
        return (await self.limits_for(rows.company_id, rows)).connectors

    # ------------------------------------------------------------------------- usage

    async def usage(self, rows: TenantRows) -> dict[str, Any]:
        """What the company has used of each limit right now."""
        company_id = rows.company_id
        limits = await self.limits_for(company_id, rows)
        month, next_month = _month(self.clock.now())
        documents = await plan_repo.count_documents(rows.session)
        connectors = await plan_repo.count_connectors(rows.session)
        rpm = limits.requests_per_minute
        requests_used: int | None = None
        calls_used: int | None = None
        if not self._store_down():
            try:
                if rpm is not None:
                    stats = await self._rate.get_window_stats(
                        self._minute_item(company_id, rpm), "requests"
                    )
                    requests_used = rpm - stats.remaining
                cap = limits.assistant_calls_per_month
                ceiling = cap if cap is not None else 2**62
                month_stats = await self._monthly.get_window_stats(
                    self._month_item(company_id, ceiling), "assistant_calls", month
                )
                calls_used = max(ceiling, 1) - month_stats.remaining
            except Exception:
                self._store_failed()
        return {
            "plan": limits.model_dump(),
            "requests_per_minute": {"limit": rpm, "used": requests_used},
            "assistant_calls": {
                "month": month,
                "limit": limits.assistant_calls_per_month,
                "used": calls_used,
                "resets_at": next_month,
            },
            "documents": {"limit": limits.documents, "used": documents},
            "connectors": {"limit": limits.connectors, "used": connectors},
        }
