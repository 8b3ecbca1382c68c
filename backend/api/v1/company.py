"""The calling company's own profile and audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from backend.api.dependencies import AgentTenant, KeyTenant, PlansDep, Scope, TenantSession
from backend.api.schemas import ERROR_RESPONSES, CompanyOut
from backend.db.repositories.audit_log import list_audit_entries
from backend.db.repositories.companies import get_company
from backend.errors import NotFound
from backend.tenancy.plans import PlanLimits

router = APIRouter(prefix="/v1", tags=["company"], responses=ERROR_RESPONSES)


class WhoAmI(BaseModel):
    company: CompanyOut
    api_key_prefix: str | None


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    created_at: datetime


@router.get("/company", response_model=WhoAmI)
async def read_own_company(tenant: AgentTenant, session: TenantSession) -> WhoAmI:
    """The company your API key belongs to. Handy to check credentials and headers. Not
    for customer tokens (403 `audience_forbidden`): company settings are not public."""
    company = await get_company(session, tenant.company_id)
    if company is None:
        raise NotFound("company not found", code="company_not_found")
    return WhoAmI(company=CompanyOut.model_validate(company), api_key_prefix=tenant.key_prefix)


@router.get("/audit-log", response_model=list[AuditEntryOut])
async def read_audit_log(
    _tenant: KeyTenant, session: TenantSession, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[AuditEntryOut]:
    """Your company's audit trail (key changes, connector changes, deletions), newest first."""
    entries = await list_audit_entries(session, limit=limit)
    return [AuditEntryOut.model_validate(entry) for entry in entries]


class UsedOf(BaseModel):
    limit: int | None = Field(description="The plan's limit; null: unlimited.")
    used: int | None = Field(description="Used so far; null if the counter is unavailable.")


class MonthlyUse(UsedOf):
    month: str = Field(description="The calendar month counted (UTC), `YYYY-MM`.")
    resets_at: datetime


class UsageOut(BaseModel):
    plan: PlanLimits = Field(description="Your effective limits (null: unlimited).")
    requests_per_minute: UsedOf = Field(description="API requests in the current minute.")
    assistant_calls: MonthlyUse = Field(
        description="Answers, drafts, review replies and summaries this month."
    )
    documents: UsedOf
    connectors: UsedOf


@router.get("/usage", response_model=UsageOut)
async def read_usage(_tenant: KeyTenant, scope: Scope, plans: PlansDep) -> UsageOut:
    """Your plan's limits and what you have used of each: requests this minute, assistant
    calls this month, indexed documents, connectors. Over a rate or quota, calls answer 429
    with `Retry-After`."""
    return UsageOut.model_validate(await plans.usage(scope))
