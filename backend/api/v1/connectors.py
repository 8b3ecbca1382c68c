"""Connectors (your helpdesk and review sources) and their sync runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from backend.api.dependencies import (
    ConnectorsDep,
    CurrentTenant,
    IndexerDep,
    JobsDep,
    Scope,
    TenantSession,
    require_api_key,
)
from backend.api.schemas import ERROR_RESPONSES, NOT_FOUND, ErrorBody
from backend.db.models import Connector
from backend.db.repositories import sync_runs as run_repo
from backend.errors import NotFound
from backend.ingest.connectors import operator_managed
from backend.ingest.file_imports import PATH_SETTING

# Management endpoints: API keys only, never a widget token.
router = APIRouter(
    prefix="/v1",
    tags=["connectors"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(require_api_key)],
)


class ConnectorCreate(BaseModel):
    platform: str = Field(
        max_length=64,
        description="freshdesk, servicenow, zendesk, google_business or trustpilot. Hosts and "
        "base URLs must be the platform's own (https, e.g. acme.freshdesk.com) or on the "
        "operator's allow-list (400 `egress_refused` otherwise). File imports are the "
        "operator's (`helpdesk ingest`), never created through the API.",
        examples=["freshdesk"],
    )
    name: str = Field(min_length=1, max_length=100, examples=["Freshdesk support"])
    settings: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"domain": "acme.freshdesk.com"}],
        description="Platform settings (validated per platform; see the 400 detail).",
    )
    credentials: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"api_key": "…"}],
        description="Secrets: encrypted at rest (AES-256-GCM) and never returned.",
    )
    schedule_minutes: int | None = Field(
        default=None, ge=5, le=7 * 24 * 60, description="Sync every N minutes; null: on demand."
    )
    enabled: bool = True


class ConnectorUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    settings: dict[str, Any] | None = Field(
        default=None, description="Replaces the settings; the sync restarts from scratch."
    )
    credentials: dict[str, Any] | None = Field(default=None, description="Replaces them.")
    schedule_minutes: int | None = Field(default=None, ge=5, le=7 * 24 * 60)
    clear_schedule: bool = Field(default=False, description="Stop scheduled syncs.")
    enabled: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> ConnectorUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to update")
        return self


class ConnectorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    platform: str
    name: str
    settings: dict[str, Any] = Field(
        description="The platform settings; for an operator's file import, without its server path."
    )
    operator_managed: bool = Field(
        description="A file import run by the operator: it cannot be changed, synced or "
        "deleted through the API."
    )
    has_credentials: bool
    schedule_minutes: int | None
    enabled: bool
    last_sync_at: datetime | None = Field(description="Start of the last successful sync.")
    sync_in_progress_checkpoint: bool = Field(
        description="A sync stopped mid-way and will resume from its checkpoint."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, connector: Connector) -> ConnectorOut:
        checkpoint = connector.checkpoint or {}
        managed = operator_managed(connector)
        settings = dict(connector.settings or {})
        if managed:
            # A server path is the operator's business, never a tenant's.
            settings.pop(PATH_SETTING[connector.platform], None)
        return cls(
            id=connector.id,
            platform=connector.platform,
            name=connector.name,
            settings=settings,
            operator_managed=managed,
            has_credentials=connector.credentials_encrypted is not None,
            schedule_minutes=connector.schedule_minutes,
            enabled=connector.enabled,
            last_sync_at=connector.last_sync_at,
            sync_in_progress_checkpoint=bool(checkpoint.get("has_more", False)),
            created_at=connector.created_at,
            updated_at=connector.updated_at,
        )


class SyncRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    connector_id: uuid.UUID
    trigger: str
    status: str = Field(
        description="queued, running, succeeded, failed, cancelled, or abandoned (its worker "
        "died; a later run resumed_from it continues from its checkpoint)."
    )
    started_at: datetime | None
    finished_at: datetime | None
    fetched: int
    upserted: int
    unchanged: int
    deleted: int
    failed: int
    errors: list[dict[str, Any]]
    counts: dict[str, int] = Field(
        default_factory=dict,
        description="Counters by reason: items not indexed on purpose (skipped.draft_article, "
        "...), attachments_indexed, attachments_skipped.<reason> (image, unsupported_type, "
        "too_large, ...).",
    )
    resumed_from: uuid.UUID | None = Field(
        default=None, description="The abandoned run this one took over, if any."
    )
    created_at: datetime
    heartbeat_at: datetime | None = Field(
        default=None, description="When the run last recorded progress."
    )
    chunks: int = Field(default=0, description="Passages (chunks) indexed so far.")

    # --- progress (issue 16): derived from the counters, so they cost no extra storage ---
    @computed_field(description="Documents read from the source so far.")  # type: ignore[prop-decorator]
    @property
    def documents(self) -> int:
        return self.fetched

    @computed_field(  # type: ignore[prop-decorator]
        description="Indexing speed from the start to the last progress (or the end); null "
        "before the first page is written."
    )
    @property
    def chunks_per_second(self) -> float | None:
        end = self.finished_at or self.heartbeat_at
        if self.started_at is None or end is None:
            return None
        elapsed = (end - self.started_at).total_seconds()
        return round(self.chunks / elapsed, 2) if elapsed > 0 else None

    @computed_field(  # type: ignore[prop-decorator]
        description="Seconds left; null when unknown (the platforms do not say how many "
        "items a sync will read), 0 once finished."
    )
    @property
    def eta_seconds(self) -> float | None:
        return 0.0 if self.finished_at is not None else None


@router.post(
    "/connectors",
    status_code=status.HTTP_201_CREATED,
    response_model=ConnectorOut,
    responses={
        409: {"model": ErrorBody, "description": "Exists, or your plan's connectors are used."}
    },
)
async def create_connector(
    body: ConnectorCreate, tenant: CurrentTenant, scope: Scope, connectors: ConnectorsDep
) -> ConnectorOut:
    """Connect a source. Settings and credentials are validated for the platform (400 with
    the failing fields otherwise); credentials are stored encrypted and never shown again.
    Your plan may limit how many connectors you have (409 `plan_limit_connectors`)."""
    connector = await connectors.create(
        scope,
        platform=body.platform,
        name=body.name,
        settings=body.settings,
        credentials=body.credentials,
        schedule_minutes=body.schedule_minutes,
        enabled=body.enabled,
        actor=tenant.actor,
    )
    return ConnectorOut.of(connector)


@router.get("/connectors", response_model=list[ConnectorOut])
async def list_connectors(scope: Scope, connectors: ConnectorsDep) -> list[ConnectorOut]:
    """Your connectors (credentials are never included)."""
    return [ConnectorOut.of(c) for c in await connectors.list(scope)]


@router.get("/connectors/{connector_id}", response_model=ConnectorOut, responses=NOT_FOUND)
async def get_connector(
    connector_id: uuid.UUID, scope: Scope, connectors: ConnectorsDep
) -> ConnectorOut:
    """One connector."""
    return ConnectorOut.of(await connectors.get(scope, connector_id))


OPERATOR_MANAGED: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "An operator's file import (`helpdesk ingest`)."}
}


@router.patch(
    "/connectors/{connector_id}",
    response_model=ConnectorOut,
    responses={**NOT_FOUND, **OPERATOR_MANAGED},
)
async def update_connector(
    connector_id: uuid.UUID,
    body: ConnectorUpdate,
    tenant: CurrentTenant,
    scope: Scope,
    connectors: ConnectorsDep,
) -> ConnectorOut:
    """Rename, re-configure, replace credentials, change the schedule, or pause. New settings
    pass the same checks as at creation; an operator's file import cannot be changed here."""
    connector = await connectors.update(
        scope,
        connector_id,
        actor=tenant.actor,
        name=body.name,
        settings=body.settings,
        credentials=body.credentials,
        schedule_minutes=body.schedule_minutes,
        clear_schedule=body.clear_schedule,
        enabled=body.enabled,
    )
    return ConnectorOut.of(connector)


@router.delete(
    "/connectors/{connector_id}", status_code=204, responses={**NOT_FOUND, **OPERATOR_MANAGED}
)
async def delete_connector(
    connector_id: uuid.UUID,
    tenant: CurrentTenant,
    scope: Scope,
    connectors: ConnectorsDep,
    indexer: IndexerDep,
    keep_documents: Annotated[
        bool, Query(description="Keep what it indexed (default: remove it everywhere).")
    ] = False,
) -> Response:
    """Remove a connector and, unless `keep_documents`, everything it indexed — from
    Postgres, the vector index and the object store. An operator's file import is removed by
    the operator."""
    await connectors.get_tenant_managed(scope, connector_id)
    if not keep_documents:
        await indexer.purge(tenant.company_id, connector_id=connector_id)
    await connectors.delete(scope, connector_id, actor=tenant.actor)
    return Response(status_code=204)


@router.post(
    "/connectors/{connector_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncRunOut,
    responses={
        **NOT_FOUND,
        **OPERATOR_MANAGED,
        409: {"model": ErrorBody, "description": "Already syncing."},
    },
)
async def trigger_sync(
    connector_id: uuid.UUID,
    tenant: CurrentTenant,
    scope: Scope,
    jobs: JobsDep,
    connectors: ConnectorsDep,
) -> SyncRunOut:
    """Queue a sync now. One sync per connector runs at a time (409 otherwise). It resumes
    from the last checkpoint, so an interrupted sync continues where it stopped. An
    operator's file import is synced by the operator (403 here)."""
    await connectors.get_tenant_managed(scope, connector_id)
    run = await jobs.request_and_enqueue(tenant.company_id, connector_id, trigger="manual")
    return SyncRunOut.model_validate(run)


@router.get("/connectors/{connector_id}/sync-runs", response_model=list[SyncRunOut])
async def list_sync_runs(
    connector_id: uuid.UUID,
    session: TenantSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[SyncRunOut]:
    """A connector's sync runs, newest first, with counts (fetched, upserted, unchanged,
    deleted, failed) and errors. An error says where, the HTTP status and a fixed reason;
    what the upstream answered is never stored or shown."""
    runs = await run_repo.list_sync_runs(session, connector_id=connector_id, limit=limit)
    return [SyncRunOut.model_validate(run) for run in runs]


@router.get("/sync-runs/{run_id}", response_model=SyncRunOut, responses=NOT_FOUND)
async def get_sync_run(run_id: uuid.UUID, session: TenantSession) -> SyncRunOut:
    """One sync run."""
    run = await run_repo.get_sync_run(session, run_id)
    if run is None:
        raise NotFound("no such sync run", code="sync_run_not_found")
    return SyncRunOut.model_validate(run)
