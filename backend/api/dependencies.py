"""Request dependencies: state, the authenticated tenant, and the tenant-scoped transaction.

The tenant dependency applies DESIGN.md §2: the API key decides the company, and the
``X-Company-ID`` header must name the same company. The header alone never grants anything.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from backend.api.state import AppState
from backend.clock import Clock
from backend.config import Settings
from backend.console.http import authenticate_console_cookie, enforce_route_policy
from backend.console.service import COOKIE_NAME as CONSOLE_COOKIE
from backend.db.session import Database
from backend.errors import AppError, Forbidden, InvalidCompanyId, Unauthorized
from backend.ingest.connectors import ConnectorService
from backend.ingest.indexer import KnowledgeIndexer
from backend.ingest.jobs import JobQueue
from backend.observability.metrics import count_company_request
from backend.privacy.requesters import RequesterPrivacy
from backend.retrieval.access import AccessScope
from backend.tenancy.company_id import is_valid_company_id
from backend.tenancy.plans import PlanService
from backend.tenancy.service import Tenant, authenticate_api_key, authenticate_widget_token
from backend.tenancy.widget_tokens import TOKEN_SCHEME


# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread hop per dependency per request.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.helpdesk
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_database(state: StateDep) -> Database:
    return state.database


async def get_clock(state: StateDep) -> Clock:
    return state.clock


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ClockDep = Annotated[Clock, Depends(get_clock)]


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def get_current_tenant(
    request: Request,
    database: DatabaseDep,
    clock: ClockDep,
    authorization: Annotated[
        str | None,
        Header(description="`Bearer <API key>` issued for your company, or a widget token."),
    ] = None,
    x_company_id: Annotated[
        str | None,
        Header(alias="X-Company-ID", description="Your company id; must match the credential."),
    ] = None,
) -> Tenant:
    if x_company_id is not None and not is_valid_company_id(x_company_id):
        raise InvalidCompanyId("X-Company-ID is not a valid company id")
    token = _bearer(authorization)
    # --- console cookie (issue 16): the alternative credential when no Bearer is given ---
    console_cookie = request.cookies.get(CONSOLE_COOKIE) if token is None else None
    if console_cookie:
        state_: AppState = request.app.state.helpdesk
        tenant = await authenticate_console_cookie(request, state_, console_cookie, x_company_id)
        enforce_route_policy(request, tenant)
        request.scope.setdefault("state", {})["company_id"] = tenant.company_id
        count_company_request(tenant.company_id)
        await state_.plans.hit_request(tenant.company_id)
        return tenant
    # --- end console cookie ---
    if token is None:
        raise Unauthorized("missing `Authorization: Bearer <API key>`", code="missing_api_key")
    state: AppState = request.app.state.helpdesk
    digest = hashlib.sha256(token.encode()).hexdigest()
    cached = state.credentials.get(digest)
    if cached is not None:
        tenant = cached
    else:
        if token.startswith(TOKEN_SCHEME):
            tenant = await authenticate_widget_token(
                database, token, signer=state.widget_signer, clock=clock
            )
        else:
            tenant = await authenticate_api_key(database, token, clock=clock)
        state.credentials.put(digest, tenant)
    if x_company_id is None:
        raise AppError("the X-Company-ID header is required", code="missing_company_id")
    if x_company_id != tenant.company_id:
        raise Forbidden(
            "the API key does not belong to the company named in X-Company-ID",
            code="company_mismatch",
        )
    enforce_route_policy(request, tenant)  # API key scopes (issue 16)
    request.scope.setdefault("state", {})["company_id"] = tenant.company_id
    count_company_request(tenant.company_id)
    # The company's plan: requests per minute (429 with Retry-After beyond it).
    await state.plans.hit_request(tenant.company_id)
    return tenant


CurrentTenant = Annotated[Tenant, Depends(get_current_tenant)]
"""An API key or a widget token."""


async def require_api_key(tenant: CurrentTenant) -> Tenant:
    """Management endpoints: a widget token (which lives in a browser) is not enough; an
    API key or a signed-in console user is (their scopes and roles are checked per route)."""
    if tenant.via == "widget":
        raise Forbidden(
            "this endpoint needs an API key, not a widget token", code="api_key_required"
        )
    return tenant


KeyTenant = Annotated[Tenant, Depends(require_api_key)]


async def require_agent(tenant: CurrentTenant) -> Tenant:
    """Agent tools (tickets, drafts, summaries, company settings): not for a customer token,
    which may only search and ask about public knowledge."""
    if tenant.is_customer:
        raise Forbidden(
            "a customer token may only search and ask about public knowledge",
            code="audience_forbidden",
        )
    return tenant


AgentTenant = Annotated[Tenant, Depends(require_agent)]
"""An API key or an agent widget token (a customer token gets 403 ``audience_forbidden``)."""


def access_scope(tenant: Tenant) -> AccessScope:
    """What this credential may retrieve (applied as vector-store filters)."""
    return AccessScope(audience=tenant.audience, ticket_id=tenant.ticket_id)


async def get_tenant_session(
    tenant: CurrentTenant, database: DatabaseDep
) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed when the handler returns, rolled back on error."""
    async with database.tenant_session(tenant.company_id) as session:
        yield session


TenantSession = Annotated[AsyncSession, Depends(get_tenant_session)]


async def require_platform_admin(
    settings: SettingsDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <HELPDESK_ADMIN_TOKEN>`.")
    ] = None,
) -> str:
    configured = settings.admin_token.get_secret_value() if settings.admin_token else None
    if not configured:
        raise Forbidden(
            "the admin API is disabled (HELPDESK_ADMIN_TOKEN is not set)", code="admin_disabled"
        )
    token = _bearer(authorization)
    if token is None or not hmac.compare_digest(token.encode(), configured.encode()):
        raise Unauthorized("invalid admin token", code="invalid_admin_token")
    return "platform-admin"


PlatformAdmin = Annotated[str, Depends(require_platform_admin)]


async def get_connector_service(state: StateDep) -> ConnectorService:
    return state.connectors


async def get_job_queue(state: StateDep) -> JobQueue:
    return state.jobs


async def get_indexer(state: StateDep) -> KnowledgeIndexer:
    parts = state.sync.parts
    return KnowledgeIndexer(
        database=state.database,
        vectors=parts.vectors,
        dense=parts.dense,
        sparse=parts.sparse,
        blobs=parts.blobs,
        knowledge_changed=parts.knowledge_changed,
        phone_region=parts.phone_region,
        document_room=parts.document_room,
        open_tickets_indexed=parts.open_tickets_indexed,
        reviews_indexed=parts.reviews_indexed,
    )


async def get_privacy(state: StateDep) -> RequesterPrivacy:
    parts = state.sync.parts
    return RequesterPrivacy(
        database=state.database,
        vectors=parts.vectors,
        blobs=parts.blobs,
        knowledge_changed=parts.knowledge_changed,
        flush_records=state.assistant.recorder.flush,
        phone_region=parts.phone_region,
    )


PrivacyDep = Annotated[RequesterPrivacy, Depends(get_privacy)]


async def get_plans(state: StateDep) -> PlanService:
    return state.plans


ConnectorsDep = Annotated[ConnectorService, Depends(get_connector_service)]
PlansDep = Annotated[PlanService, Depends(get_plans)]
JobsDep = Annotated[JobQueue, Depends(get_job_queue)]
IndexerDep = Annotated[KnowledgeIndexer, Depends(get_indexer)]
