"""ORM models. The schema itself is owned by the Alembic migrations in ``migrations/``.

Every tenant table carries ``company_id`` and is protected by a row-level-security policy on
``current_setting('app.company_id', true)`` (see the first migration).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONB,
        list[str]: ARRAY(Text),
        uuid.UUID: UUID(as_uuid=True),
        datetime: DateTime(timezone=True),
    }


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=uuid.uuid4)


def _created_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


class Company(Base):
    __tablename__ = "companies"

    company_id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    helpdesk_domain: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    knowledge_generation: Mapped[int] = mapped_column(BigInteger, server_default="0")
    status: Mapped[str] = mapped_column(Text, server_default="active")
    # Limits set by the platform admin (backend.tenancy.plans); unnamed ones use defaults.
    plan: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[datetime] = _created_at()
    created_by: Mapped[str | None] = mapped_column(Text)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    scopes: Mapped[list[str]] = mapped_column(server_default="{assistant,ingest,admin,widget-mint}")
    """What the key may call (``backend.console.scopes``); keys made before scopes have all."""


class ConsoleUser(Base):
    """A person of a company who signs in to the console (migration 0011)."""

    __tablename__ = "console_users"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text, server_default="")
    role: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(Text)
    invite_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    invite_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ConsoleSession(Base):
    """A signed-in console session, stored by the SHA-256 of its cookie value."""

    __tablename__ = "console_sessions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime]
    client_ip: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)


class Connector(Base):
    __tablename__ = "connectors"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    schedule_minutes: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_sync_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    connector_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connectors.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, server_default="")
    body: Mapped[str] = mapped_column(Text, server_default="")
    url: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    requester: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(server_default="{}")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default="{}")
    content_hash: Mapped[str] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # True while the document's points carry only their sparse (keyword) vectors: written by
    # a webhook's fast path, completed moments later (migration 0013).
    dense_pending: Mapped[bool] = mapped_column(Boolean, server_default="false")
    source_created_at: Mapped[datetime | None]
    source_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class SyncRun(Base):
    __tablename__ = "sync_runs"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    connector_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="queued")
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    fetched: Mapped[int] = mapped_column(Integer, server_default="0")
    upserted: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    deleted: Mapped[int] = mapped_column(Integer, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, server_default="0")
    chunks: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """Passages written to the index (the console's chunks per second)."""
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    counts: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    """Counters by reason: ``skipped.<reason>``, ``attachments_indexed``,
    ``attachments_skipped.<reason>`` (see :attr:`backend.adapters.base.Page.counts`)."""
    # The run this one took over after its worker died (its status is then 'abandoned').
    resumed_from: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sync_runs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created_at()


class Interaction(Base):
    __tablename__ = "interactions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(Text)
    question: Mapped[str] = mapped_column(Text, server_default="")
    ticket_ref: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, server_default="")
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    provider: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), server_default="0")
    cache_hit: Mapped[bool] = mapped_column(Boolean, server_default="false")
    api_key_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = _created_at()


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    interaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE")
    )
    rating: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    inserted: Mapped[bool] = mapped_column(Boolean, server_default="false")
    outcome: Mapped[str | None] = mapped_column(Text)
    """What became of a draft: inserted, edited (inserted then edited) or discarded."""
    created_at: Mapped[datetime] = _created_at()


class Usage(Base):
    __tablename__ = "usage"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), server_default="0")


class AuditLogEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    created_at: Mapped[datetime] = _created_at()


class TriageSuggestion(Base):
    """The triage suggestions stored with an ingested ticket (one row per ticket)."""

    __tablename__ = "triage_suggestions"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    suggestions: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    neighbors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class TriageFeedback(Base):
    """An agent accepting or overriding one triage suggestion."""

    __tablename__ = "triage_feedback"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(Text)
    field: Mapped[str] = mapped_column(Text)
    suggested: Mapped[str] = mapped_column(Text)
    chosen: Mapped[str | None] = mapped_column(Text)
    accepted: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = _created_at()


class ReviewReply(Base):
    """A reply to one ingested review, from draft to published (migration 0010)."""

    __tablename__ = "review_replies"

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id", ondelete="CASCADE"))
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    connector_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connectors.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)
    review_url: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    rating_scale: Mapped[Decimal] = mapped_column(Numeric(6, 2), server_default="5")
    sentiment: Mapped[str] = mapped_column(Text)
    topics: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    draft: Mapped[str] = mapped_column(Text)
    reply_text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, server_default="draft")
    state_before_publish: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime | None]
    published_by: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    publish_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    platform_status: Mapped[int | None] = mapped_column(Integer)
    platform_answer: Mapped[str | None] = mapped_column(Text)
    platform_answered_at: Mapped[datetime | None]
    alert_status: Mapped[str | None] = mapped_column(Text)
    alerted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ReplySettings(Base):
    """A company's reply settings, where it changed a default (migration 0010)."""

    __tablename__ = "reply_settings"

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE"), primary_key=True
    )
    alert_webhook_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    alert_rating_threshold: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    ticket_notes_enabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
