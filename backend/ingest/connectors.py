"""Connectors: a company's configured sources (platform, settings, encrypted credentials).

Credentials are sealed with AES-256-GCM (:mod:`backend.secretbox`) bound to the company and
connector ids, so a ciphertext copied into another company's row does not decrypt; they are
never returned by the API or written to logs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, SecretStr
from sqlalchemy.exc import IntegrityError

from backend.adapters.registry import validate_connector
from backend.db.models import Connector
from backend.db.repositories import connectors as connector_repo
from backend.db.repositories.audit_log import append_audit_entry
from backend.db.session import Database
from backend.errors import BadRequest, Conflict, NotFound
from backend.secretbox import SecretBox, connector_associated_data

# Platforms that read the server's own disk: only operators (CLI) may configure them, never
# an API caller, or a tenant could read any file the service can.
FILE_PLATFORMS = frozenset({"review_export", "file_export", "article_folder"})


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
    def __init__(self, database: Database, secrets: SecretBox) -> None:
        self.database = database
        self.secrets = secrets

    def _seal(self, company_id: str, connector_id: uuid.UUID, credentials: BaseModel) -> bytes:
        plaintext = orjson.dumps(_reveal(credentials))
        return self.secrets.encrypt(
            plaintext, connector_associated_data(company_id, str(connector_id))
        )

    async def create(
        self,
        company_id: str,
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
        connector_id = uuid.uuid4()
        try:
            async with self.database.tenant_session(company_id) as session:
                connector = await connector_repo.insert_connector(
                    session,
                    company_id=company_id,
                    platform=platform,
                    name=name,
                    settings=valid_settings.model_dump(mode="json"),
                    credentials_encrypted=self._seal(company_id, connector_id, valid_credentials),
                    schedule_minutes=schedule_minutes,
                    enabled=enabled,
                    connector_id=connector_id,
                )
                await append_audit_entry(
                    session,
                    company_id=company_id,
                    actor=actor,
                    action="connector.create",
                    target=str(connector_id),
                    details={"platform": platform, "name": name},
                )
        except IntegrityError as exc:
            raise Conflict(f"a connector named {name!r} exists", code="connector_exists") from exc
        return connector

    async def update(
        self,
        company_id: str,
        connector_id: uuid.UUID,
        *,
        actor: str,
        name: str | None = None,
        settings: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        schedule_minutes: int | None = None,
        clear_schedule: bool = False,
        enabled: bool | None = None,
    ) -> Connector:
        async with self.database.tenant_session(company_id) as session:
            connector = await connector_repo.get_connector_for_update(session, connector_id)
            if connector is None:
                raise NotFound("no such connector", code="connector_not_found")
            changed: list[str] = []
            if settings is not None or credentials is not None:
                current = self.open(connector)
                valid_settings, valid_credentials = validate_connector(
                    connector.platform,
                    settings if settings is not None else current.settings,
                    credentials if credentials is not None else current.credentials,
                )
                if settings is not None:
                    connector.settings = valid_settings.model_dump(mode="json")
                    # Other settings may mean another account or scope: start over.
                    connector.checkpoint = None
                    changed.append("settings")
                if credentials is not None:
                    connector.credentials_encrypted = self._seal(
                        company_id, connector_id, valid_credentials
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
                raise Conflict(
                    f"a connector named {name!r} exists", code="connector_exists"
                ) from exc
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="connector.update",
                target=str(connector_id),
                details={"changed": changed},
            )
            await session.refresh(connector)
        return connector

    async def get(self, company_id: str, connector_id: uuid.UUID) -> Connector:
        async with self.database.tenant_session(company_id) as session:
            connector = await connector_repo.get_connector(session, connector_id)
        if connector is None:
            raise NotFound("no such connector", code="connector_not_found")
        return connector

    async def list(self, company_id: str) -> list[Connector]:
        async with self.database.tenant_session(company_id) as session:
            return await connector_repo.list_connectors(session)

    async def reset_checkpoint(
        self, company_id: str, connector_id: uuid.UUID, *, actor: str
    ) -> None:
        """Make the next sync a full backfill."""
        async with self.database.tenant_session(company_id) as session:
            connector = await connector_repo.get_connector_for_update(session, connector_id)
            if connector is None:
                raise NotFound("no such connector", code="connector_not_found")
            connector.checkpoint = None
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="connector.reset",
                target=str(connector_id),
            )

    async def delete(self, company_id: str, connector_id: uuid.UUID, *, actor: str) -> None:
        async with self.database.tenant_session(company_id) as session:
            connector = await connector_repo.get_connector(session, connector_id)
            if connector is None:
                raise NotFound("no such connector", code="connector_not_found")
            await connector_repo.delete_connector(session, connector)
            await append_audit_entry(
                session,
                company_id=company_id,
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
