"""Your company's API keys, managed by the company itself (issue 16): list, create with
scopes, revoke. Owners and admins in the console, or an API key with the ``admin`` scope."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from backend.api.dependencies import ClockDep, DatabaseDep, KeyTenant, StateDep
from backend.api.schemas import ERROR_RESPONSES, ErrorBody
from backend.console.scopes import Scope
from backend.tenancy import service

router = APIRouter(prefix="/v1/company", tags=["company"], responses=ERROR_RESPONSES)


class CompanyApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    scopes: list[str]
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class CompanyApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the key is for.")
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=4)] = Field(
        description="assistant (search, answers, drafts, feedback), ingest (connectors, syncs, "
        "documents), admin (keys, settings, audit log, usage, analytics), widget-mint "
        "(widget tokens)."
    )
    expires_at: datetime | None = Field(default=None, description="Optional expiry (UTC).")


class IssuedCompanyApiKey(CompanyApiKeyOut):
    key: str = Field(description="The key itself: shown once, store it now.")


@router.get("/api-keys", response_model=list[CompanyApiKeyOut])
async def list_company_api_keys(tenant: KeyTenant, db: DatabaseDep) -> Any:
    """Your active API keys (never the keys themselves)."""
    return await service.list_api_keys(db, tenant.company_id)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=IssuedCompanyApiKey)
async def create_company_api_key(
    body: CompanyApiKeyCreate, tenant: KeyTenant, db: DatabaseDep
) -> Any:
    """Create a key with the scopes it needs. The key is in this response only."""
    issued = await service.issue_api_key(
        db,
        tenant.company_id,
        name=body.name,
        actor=tenant.actor,
        expires_at=body.expires_at,
        scopes=frozenset(body.scopes),
    )
    return IssuedCompanyApiKey(
        **CompanyApiKeyOut.model_validate(issued.key).model_dump(), key=issued.plaintext
    )


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorBody, "description": "No such key for your company."}},
)
async def revoke_company_api_key(
    key_id: uuid.UUID, tenant: KeyTenant, db: DatabaseDep, clock: ClockDep, state: StateDep
) -> Response:
    """Revoke a key: it stops working at once in this process, and in every other within
    `HELPDESK_AUTH_CACHE_SECONDS`. Widget tokens it minted die with it."""
    await service.revoke_api_key(db, tenant.company_id, key_id, actor=tenant.actor, clock=clock)
    state.credentials.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
