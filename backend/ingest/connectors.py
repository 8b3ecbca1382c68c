"""Connectors: a company's configured sources (platform, settings, encrypted credentials).

Every method that reads or writes a company's connectors takes the caller's
:class:`~backend.tenancy.scope.TenantRows` (a request's scope, or one a job opened): the
caller owns the transaction, so the service never opens a session of its own.

Credentials are sealed with AES-256-GCM (:mod:`backend.secretbox`) bound to the company and
connector ids, so a ciphertext copied into another company's row does not decrypt; they are
never returned by the API or written to logs.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, SecretStr
from sqlalchemy.exc import IntegrityError

from backend.adapters.registry import connector_base_urls, validate_connector
from backend.db.models import Connector
from backend.db.repositories import connectors as connector_repo
from backend.db.repositories.audit_log import append_audit_entry
from backend.egress import EgressPolicy, EgressRefused
from backend.errors import BadRequest, Conflict, Forbidden, NotFound
from backend.ingest.file_imports import FILE_PLATFORMS, FileImportPolicy
from backend.secretbox import SecretBox, connector_associated_data
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import TenantRows

# The plan's connector limit for a company, read in the caller's transaction (``None``: no
# limit).
ConnectorLimit = Callable[[TenantRows], Awaitable[int | None]]

__all__ = ["FILE_PLATFORMS", "ConnectorConfig", "ConnectorService", "operator_managed"]


def operator_managed(connector: Connector) -> bool:
    """File-platform connectors read the server's disk: only operators (the CLI) create,
    change, sync or delete them, and the API never shows their settings (a server path)."""
    return connector.platform in FILE_PLATFORMS


def _refuse_operator_managed(connector: Connector) -> None:
    if operator_managed(connector):
        raise Forbidden(
            "this connector is a file import managed by the operator (`helpdesk ingest`)",
            code="operator_managed_connector",
        )


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {k: _reveal(v) for k, v in value}
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


@dataclass(frozen=True)
class ConnectorConfig:
    """A connector with its credentials decrypted, for the sync that uses them."""

    connector: Connector
    settings: BaseModel
    credentials: BaseModel


class ConnectorService:
    def __init__(
        self,
        secrets: SecretBox,
        *,
        egress: EgressPolicy | None = None,
        files: FileImportPolicy | None = None,
        connector_limit: ConnectorLimit | None = None,
    ) -> None:
        self.secrets = secrets
        # Production defaults: the strict policy, and no file imports at all.
        self.egress = egress if egress is not None else EgressPolicy()
        self.files = files if files is not None else FileImportPolicy.refuse_all()
        # The company's plan decides (backend.tenancy.plans); checked under a per-company
        # lock in the same transaction as the insert, so two concurrent creates cannot both
        # slip under it.
        self.connector_limit = connector_limit

    def _checked_settings(self, platform: str, settings: BaseModel) -> dict[str, Any]:
        """Settings as stored, after the egress policy (network platforms) or the import
        root (file platforms) accepted them; refused input is a 400 naming the rule."""
        stored = settings.model_dump(mode="json")
        if platform in FILE_PLATFORMS:
            return self.files.resolve_settings(platform, stored)
        try:
            self.egress.scope(platform, connector_base_urls(platform, settings))
        except EgressRefused as exc:
            raise BadRequest(exc.reason, code="egress_refused") from None
        return stored

    def _seal(
        self, company_id: CompanyId, connector_id: uuid.UUID, credentials: BaseModel
    ) -> bytes:
        plaintext = orjson.dumps(_reveal(credentials))
        return self.secrets.encrypt(
            plaintext, connector_associated_data(company_id, str(connector_id))
        )

    async def create(
        self,
        rows: TenantRows,
        *,
        platform: str,
        name: str,
        settings: dict[str, Any],
        credentials: dict[str, Any],
        schedule_minutes: int | None,
        enabled: bool = True,
        actor: str,
        allow_file_platforms: bool = False,
    ) -> Connector:
        if platform in FILE_PLATFORMS and not allow_file_platforms:
            raise BadRequest(
                f"{platform!r} reads files on the server; operators configure it with "
                "`helpdesk ingest`",
                code="platform_not_allowed",
            )
        valid_settings, valid_credentials = validate_connector(platform, settings, credentials)
        stored_settings = self._checked_settings(platform, valid_settings)
        connector_id = uuid.uuid4()
        session, company_id = rows.session, rows.company_id
        # Held until the caller's transaction ends, so two concurrent creates cannot both
        # slip under the plan's limit.
        await connector_repo.lock_company_connectors(session, company_id)
        # Operator imports (`helpdesk ingest`) are the operator's, not the tenant's
        # spending: the plan bounds what the company itself connects.
        limit = (
            await self.connector_limit(rows)
            if self.connector_limit is not None and not allow_file_platforms
            else None
        )
        if limit is not None and await connector_repo.count_connectors(session) >= limit:
            raise Conflict(
                f"your plan allows {limit} connectors; remove one first",
                code="plan_limit_connectors",
            )
        try:
            # A savepoint: a duplicate name undoes the insert only, not the caller's
            # transaction.
            async with session.begin_nested():
                connector = await connector_repo.insert_connector(
                    session,
                    company_id=company_id,
                    platform=platform,
                    name=name,
                    settings=stored_settings,
                    credentials_encrypted=self._seal(company_id, connector_id, valid_credentials),
                    schedule_minutes=schedule_minutes,
                    enabled=enabled,
                    connector_id=connector_id,
                )
        except IntegrityError as exc:
            raise Conflict(f"a connector named {name!r} exists", code="connector_exists") from exc
        await append_audit_entry(
            session,
            company_id=company_id,
            actor=actor,
            action="connector.create",
            target=str(connector_id),
            details={"platform": platform, "name": name},
        )
        return connector

    async def update(
        self,
        rows: TenantRows,
        connector_id: uuid.UUID,
        *,
        actor: str,
        name: str | None = None,
        settings: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        schedule_minutes: int | None = None,
        clear_schedule: bool = False,
        enabled: bool | None = None,
        by_operator: bool = False,
    ) -> Connector:
        """Change a connector; a file import only ``by_operator`` (the CLI)."""
        session = rows.session
        connector = await connector_repo.get_connector_for_update(session, connector_id)
        if connector is None:
            raise NotFound("no such connector", code="connector_not_found")
        if not by_operator:
            _refuse_operator_managed(connector)
        changed: list[str] = []
        if settings is not None or credentials is not None:
            current = self.open(connector)
            valid_settings, valid_credentials = validate_connector(
                connector.platform,
                settings if settings is not None else current.settings,
                credentials if credentials is not None else current.credentials,
            )
            if settings is not None:
                connector.settings = self._checked_settings(connector.platform, valid_settings)
                # Other settings may mean another account or scope: start over.
                connector.checkpoint = None
                changed.append("settings")
            if credentials is not None:
                connector.credentials_encrypted = self._seal(
                    rows.company_id, connector_id, valid_credentials
                )
                changed.append("credentials")
        if name is not None:
            connector.name = name
            changed.append("name")
        if schedule_minutes is not None or clear_schedule:
            connector.schedule_minutes = None if clear_schedule else schedule_minutes
            changed.append("schedule")
        if enabled is not None:
            connector.enabled = enabled
            changed.append("enabled")
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"a connector named {name!r} exists", code="connector_exists") from exc
        await append_audit_entry(
            session,
            company_id=rows.company_id,
            actor=actor,
            action="connector.update",
            target=str(connector_id),
            details={"changed": changed},
        )
        await session.refresh(connector)
        return connector

    async def get(self, rows: TenantRows, connector_id: uuid.UUID) -> Connector:
        connector = await connector_repo.get_connector(rows.session, connector_id)
        if connector is None:
            raise NotFound("no such connector", code="connector_not_found")
        return connector

    async def list(self, rows: TenantRows) -> list[Connector]:
        return await connector_repo.list_connectors(rows.session)

    async def reset_checkpoint(
        self, rows: TenantRows, connector_id: uuid.UUID, *, actor: str
    ) -> None:
        """Make the next sync a full backfill."""
        connector = await connector_repo.get_connector_for_update(rows.session, connector_id)
        if connector is None:
            raise NotFound("no such connector", code="connector_not_found")
        connector.checkpoint = None
        await append_audit_entry(
            rows.session,
            company_id=rows.company_id,
            actor=actor,
            action="connector.reset",
            target=str(connector_id),
        )

    async def get_tenant_managed(self, rows: TenantRows, connector_id: uuid.UUID) -> Connector:
        """A connector a tenant may act on (sync, delete): 403 for an operator's file import."""
        connector = await self.get(rows, connector_id)
        _refuse_operator_managed(connector)
        return connector

    async def delete(
        self, rows: TenantRows, connector_id: uuid.UUID, *, actor: str, by_operator: bool = False
    ) -> None:
        connector = await connector_repo.get_connector(rows.session, connector_id)
        if connector is None:
            raise NotFound("no such connector", code="connector_not_found")
        if not by_operator:
            _refuse_operator_managed(connector)
        await connector_repo.delete_connector(rows.session, connector)
        await append_audit_entry(
            rows.session,
            company_id=rows.company_id,
            actor=actor,
            action="connector.delete",
            target=str(connector_id),
            details={"platform": connector.platform},
        )

    def open(self, connector: Connector) -> ConnectorConfig:
        """Decrypt and validate a connector's credentials (for a sync)."""
        credentials: dict[str, Any] = {}
        if connector.credentials_encrypted:
            credentials = orjson.loads(
                self.secrets.decrypt(
                    connector.credentials_encrypted,
                    connector_associated_data(connector.company_id, str(connector.id)),
                )
            )
        settings, creds = validate_connector(connector.platform, connector.settings, credentials)
        return ConnectorConfig(connector, settings, creds)
