"""Platform administration: companies, their API keys, suspension and deletion (admin token
required)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.api.dependencies import ClockDep, DatabaseDep, PlatformAdmin, StateDep
from backend.api.schemas import (
    MAX_OFFSET,
    ApiKeyOut,
    CompanyOut,
    ErrorBody,
    IssuedApiKeyOut,
    ReindexIn,
    ReindexPageOut,
)
from backend.api.v1.company import AuditEntryOut
from backend.errors import BadRequest
from backend.ingest.reindex import build_reindexer
from backend.tenancy import service
from backend.tenancy.company_id import (
    COMPANY_ID_PATTERN,
    CompanyId,
    CompanyIdField,
    company_id_from_domain,
)
from backend.tenancy.plans import PlanLimits
from backend.tenancy.scope import open_rows

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses={
        401: {"model": ErrorBody, "description": "Missing or wrong admin token."},
        403: {"model": ErrorBody, "description": "The admin API is disabled."},
    },
)

CompanyIdPath = Annotated[
    CompanyId,
    Path(
        pattern=COMPANY_ID_PATTERN,
        max_length=63,
        description="The company's id (a lower-case slug).",
    ),
]


class CompanyCreate(BaseModel):
    company_id: CompanyIdField | None = Field(
        default=None,
        max_length=63,
        description="Lower-case slug. Omit it to derive it from `helpdesk_domain` "
        "(`acme.freshdesk.com` → `acme`).",
    )
    name: str = Field(min_length=1, max_length=200)
    helpdesk_domain: str | None = Field(default=None, max_length=255)
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _derive_id(self) -> CompanyCreate:
        if self.company_id is None:
            if not self.helpdesk_domain:
                raise ValueError("give company_id or helpdesk_domain")
            self.company_id = company_id_from_domain(self.helpdesk_domain)
        return self


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the key is for.")
    expires_at: datetime | None = Field(default=None, description="Optional expiry (UTC).")


class ApiKeyRotate(BaseModel):
    grace_seconds: int = Field(
        default=0,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the old key keeps working, so clients can switch over.",
    )


@router.post(
    "/companies",
    status_code=status.HTTP_201_CREATED,
    response_model=CompanyOut,
    responses={409: {"model": ErrorBody, "description": "The company exists."}},
)
async def create_company(body: CompanyCreate, db: DatabaseDep, actor: PlatformAdmin) -> Any:
    """Create a company (a tenant). Its id is permanent and names its data in every store."""
    assert body.company_id is not None
    return await service.create_company(
        db,
        company_id=body.company_id,
        name=body.name,
        helpdesk_domain=body.helpdesk_domain,
        settings=body.settings,
        actor=actor,
    )


@router.get("/companies", response_model=list[CompanyOut])
async def list_companies(
    db: DatabaseDep,
    _actor: PlatformAdmin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Any:
    """List companies, ordered by id."""
    return await service.list_companies(db, limit=limit, offset=offset)


@router.get(
    "/companies/{company_id}", response_model=CompanyOut, responses={404: {"model": ErrorBody}}
)
async def get_company(company_id: CompanyIdPath, db: DatabaseDep, _actor: PlatformAdmin) -> Any:
    """One company's profile and knowledge generation."""
    async with open_rows(db, company_id) as rows:
        return await service.get_company(rows)


@router.post(
    "/companies/{company_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=IssuedApiKeyOut,
    responses={404: {"model": ErrorBody}},
)
async def issue_api_key(
    company_id: CompanyIdPath, body: ApiKeyCreate, db: DatabaseDep, actor: PlatformAdmin
) -> Any:
    """Issue an API key for a company. The secret is in this response only; we keep a hash."""
    async with open_rows(db, company_id) as rows:
        issued = await service.issue_api_key(
            rows, name=body.name, actor=actor, expires_at=body.expires_at
        )
    return IssuedApiKeyOut(api_key=issued.plaintext, key=ApiKeyOut.model_validate(issued.key))


@router.get("/companies/{company_id}/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(
    company_id: CompanyIdPath,
    db: DatabaseDep,
    _actor: PlatformAdmin,
    include_revoked: bool = False,
) -> Any:
    """A company's API keys (prefix, name, created, last used, expiry); never the secrets."""
    async with open_rows(db, company_id) as rows:
        return await service.list_api_keys(rows, include_revoked=include_revoked)


@router.post(
    "/companies/{company_id}/api-keys/{key_id}/revoke",
    response_model=ApiKeyOut,
    responses={404: {"model": ErrorBody}},
)
async def revoke_api_key(
    company_id: CompanyIdPath,
    key_id: uuid.UUID,
    db: DatabaseDep,
    clock: ClockDep,
    actor: PlatformAdmin,
    state: StateDep,
) -> Any:
    """Revoke a key at once. Revoking twice is harmless."""
    async with open_rows(db, company_id) as rows:
        key = await service.revoke_api_key(rows, key_id, actor=actor, clock=clock)
    state.credentials.clear()  # this process stops accepting it now, not after the TTL
    return key


@router.post(
    "/companies/{company_id}/api-keys/{key_id}/rotate",
    status_code=201,
    response_model=IssuedApiKeyOut,
    responses={404: {"model": ErrorBody}},
)
async def rotate_api_key(
    company_id: CompanyIdPath,
    key_id: uuid.UUID,
    body: ApiKeyRotate,
    db: DatabaseDep,
    clock: ClockDep,
    actor: PlatformAdmin,
    state: StateDep,
) -> Any:
    """Replace a key: returns the new secret; the old key stops working after the grace."""
    async with open_rows(db, company_id) as rows:
        issued = await service.rotate_api_key(
            rows, key_id, actor=actor, clock=clock, grace=timedelta(seconds=body.grace_seconds)
        )
    state.credentials.clear()  # the old key's cached resolution must not outlive the grace
    return IssuedApiKeyOut(api_key=issued.plaintext, key=ApiKeyOut.model_validate(issued.key))


class SuspendIn(BaseModel):
    reason: str | None = Field(default=None, max_length=500, description="Kept in the audit log.")


class CompanyDeletionOut(BaseModel):
    company_id: str
    postgres_rows: dict[str, int] = Field(description="Rows deleted, per table.")
    cancelled_sync_runs: int
    vector_points: int = Field(description="Chunks removed from the vector index.")
    blobs: int = Field(description="Raw payloads removed from the object store.")
    cache_keys: int = Field(description="Cache keys removed (`hd:{company}:*`).")


@router.post(
    "/companies/{company_id}/suspend",
    response_model=CompanyOut,
    responses={404: {"model": ErrorBody}},
)
async def suspend_company(
    company_id: CompanyIdPath,
    state: StateDep,
    actor: PlatformAdmin,
    body: SuspendIn | None = None,
) -> Any:
    """Suspend a company: its API keys and widget tokens get 403 `company_suspended` on
    every endpoint (minting tokens included), its queued and running syncs are cancelled and
    scheduled ones no longer start. Its data is kept. Audited."""
    return await state.lifecycle().set_status(
        company_id, "suspended", actor=actor, reason=body.reason if body else None
    )


@router.post(
    "/companies/{company_id}/reactivate",
    response_model=CompanyOut,
    responses={404: {"model": ErrorBody}},
)
async def reactivate_company(
    company_id: CompanyIdPath, state: StateDep, actor: PlatformAdmin
) -> Any:
    """Lift a suspension: the company's credentials and schedules work again. Audited."""
    return await state.lifecycle().set_status(company_id, "active", actor=actor)


@router.delete(
    "/companies/{company_id}",
    response_model=CompanyDeletionOut,
    responses={
        400: {"model": ErrorBody, "description": "`confirm` does not repeat the company id."},
        404: {"model": ErrorBody},
    },
)
async def delete_company(
    company_id: CompanyIdPath,
    state: StateDep,
    actor: PlatformAdmin,
    confirm: Annotated[
        str | None,
        Query(max_length=63, description="Repeat the company id to confirm the deletion."),
    ] = None,
) -> Any:
    """Delete a company and everything it holds, irreversibly: every Postgres row (keys,
    connectors and their schedules, documents, sync runs, interactions, feedback, usage),
    its vector index, its raw payloads in the object store and its cache entries. Its queued
    syncs are cancelled and dropped when a worker reaches them. The audit log is kept (with
    a `company.delete` entry giving the counts) and stays readable here. Requires
    `?confirm=<company_id>`."""
    if confirm != company_id:
        raise BadRequest(
            "repeat the company id in ?confirm= to delete it", code="confirmation_required"
        )
    report = await state.lifecycle().delete(company_id, actor=actor)
    return CompanyDeletionOut(company_id=company_id, **report.as_details())


@router.get("/companies/{company_id}/audit-log", response_model=list[AuditEntryOut])
async def read_company_audit_log(
    company_id: CompanyIdPath,
    state: StateDep,
    _actor: PlatformAdmin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Any:
    """A company's audit trail, newest first; still readable after the company is deleted."""
    return await state.lifecycle().audit_log(company_id, limit=limit)


class PlanIn(PlanLimits):
    """The limits to set. A limit left out uses the service default; `null` is unlimited."""

    model_config = ConfigDict(extra="forbid")


class PlanOut(BaseModel):
    company_id: str
    stored: dict[str, Any] = Field(description="The limits set for this company.")
    effective: PlanLimits = Field(description="With the service defaults filled in.")


@router.get(
    "/companies/{company_id}/plan", response_model=PlanOut, responses={404: {"model": ErrorBody}}
)
async def read_plan(company_id: CompanyIdPath, state: StateDep, _actor: PlatformAdmin) -> Any:
    """A company's plan: what was set for it, and the effective limits."""
    async with open_rows(state.database, company_id) as rows:
        stored = await state.plans.stored_plan(rows)
    return PlanOut(company_id=company_id, stored=stored, effective=state.plans.effective(stored))


@router.put(
    "/companies/{company_id}/plan", response_model=PlanOut, responses={404: {"model": ErrorBody}}
)
async def set_plan(
    company_id: CompanyIdPath, body: PlanIn, state: StateDep, actor: PlatformAdmin
) -> Any:
    """Set a company's plan (replaces the previous one): requests per minute, assistant calls
    per month, documents, connectors. Applies in this process at once, in others within
    `HELPDESK_PLAN_CACHE_SECONDS`. Audited."""
    stored = body.model_dump(exclude_unset=True)
    async with open_rows(state.database, company_id) as rows:
        effective = await state.plans.set_plan(rows, stored, actor=actor)
    return PlanOut(company_id=company_id, stored=stored, effective=effective)


@router.post(
    "/companies/{company_id}/reindex",
    response_model=ReindexPageOut,
    responses={400: {"model": ErrorBody}, 404: {"model": ErrorBody}},
)
async def reindex_company(
    company_id: CompanyIdPath, state: StateDep, actor: PlatformAdmin, body: ReindexIn | None = None
) -> Any:
    """Chunk and embed one page of a company's documents again from the object store, without
    fetching anything from the helpdesk platforms — after an embedding-model or chunking
    change. Call it again with `after` = `next_cursor` until `next_cursor` is `null`; each page
    is complete when it returns, so a stopped re-index resumes from its last cursor. Search
    keeps answering meanwhile and the company's cached answers are voided. Audited
    (`knowledge.reindex`). `helpdesk knowledge reindex` does the same from the command line."""
    request = body or ReindexIn()
    async with open_rows(state.database, company_id) as rows:
        await service.get_company(rows)  # 404 for an unknown company
    page = await build_reindexer(state.database, state.sync.parts).reindex_page(
        company_id, after=request.after, source=request.source, limit=request.limit, actor=actor
    )
    return ReindexPageOut(**asdict(page))
