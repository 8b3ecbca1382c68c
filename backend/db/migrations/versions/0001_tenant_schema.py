"""Tenant schema: companies, keys, connectors, documents, syncs, interactions, audit.

Every table has ``company_id``, row-level security enabled AND forced (so the table owner is
bound too), one policy on ``current_setting('app.company_id', true)`` with ``WITH CHECK``, and
an index leading with ``company_id``.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "companies",
    "api_keys",
    "connectors",
    "documents",
    "sync_runs",
    "interactions",
    "feedback",
    "usage",
    "audit_log",
)

TENANT = "current_setting('app.company_id', true)"


def _ts(name: str, *, nullable: bool = True, default: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.now() if default else None,
    )


def _company_fk() -> sa.Column[object]:
    return sa.Column(
        "company_id",
        sa.Text,
        sa.ForeignKey("companies.company_id", ondelete="CASCADE"),
        nullable=False,
    )


def _uuid_pk() -> sa.Column[object]:
    return sa.Column(
        "id", pg.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    )


def enable_tenant_rls(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING (company_id = {TENANT}) WITH CHECK (company_id = {TENANT})"
    )


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("company_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("helpdesk_domain", sa.Text),
        sa.Column("settings", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("knowledge_generation", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        _ts("created_at", nullable=False, default=True),
        _ts("updated_at", nullable=False, default=True),
        sa.CheckConstraint(
            r"company_id ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'", name="company_id_slug"
        ),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="company_status"),
    )
    op.create_table(
        "api_keys",
        _uuid_pk(),
        _company_fk(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("key_hash", sa.LargeBinary, nullable=False, unique=True),
        _ts("created_at", nullable=False, default=True),
        sa.Column("created_by", sa.Text),
        _ts("last_used_at"),
        _ts("expires_at"),
        _ts("revoked_at"),
    )
    op.create_index("ix_api_keys_company", "api_keys", ["company_id", "created_at"])
    op.create_table(
        "connectors",
        _uuid_pk(),
        _company_fk(),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("settings", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("credentials_encrypted", sa.LargeBinary),
        sa.Column("schedule_minutes", sa.Integer),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("checkpoint", pg.JSONB),
        _ts("last_sync_at"),
        _ts("created_at", nullable=False, default=True),
        _ts("updated_at", nullable=False, default=True),
        sa.UniqueConstraint("company_id", "name", name="uq_connectors_company_name"),
    )
    op.create_table(
        "documents",
        _uuid_pk(),
        _company_fk(),
        sa.Column(
            "connector_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("connectors.id", ondelete="SET NULL"),
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("url", sa.Text),
        sa.Column("language", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("requester", sa.Text),
        sa.Column("tags", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("metadata", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False, server_default="0"),
        _ts("source_created_at"),
        _ts("source_updated_at"),
        _ts("created_at", nullable=False, default=True),
        _ts("updated_at", nullable=False, default=True),
        sa.UniqueConstraint("company_id", "source", "external_id", name="uq_documents_source_id"),
        sa.CheckConstraint(
            "kind IN ('ticket', 'conversation', 'article', 'review')", name="document_kind"
        ),
    )
    op.create_index(
        "ix_documents_company_kind", "documents", ["company_id", "kind", "source_updated_at"]
    )
    op.create_index("ix_documents_company_requester", "documents", ["company_id", "requester"])
    op.create_table(
        "sync_runs",
        _uuid_pk(),
        _company_fk(),
        sa.Column(
            "connector_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("connectors.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="queued"),
        _ts("started_at"),
        # Touched after every page: a 'running' run whose heartbeat is old lost its worker.
        _ts("heartbeat_at"),
        _ts("finished_at"),
        *(
            sa.Column(c, sa.Integer, nullable=False, server_default="0")
            for c in ("fetched", "upserted", "unchanged", "deleted", "failed")
        ),
        sa.Column("errors", pg.JSONB, nullable=False, server_default="[]"),
        _ts("created_at", nullable=False, default=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="sync_run_status",
        ),
    )
    op.create_index(
        "ix_sync_runs_company_connector", "sync_runs", ["company_id", "connector_id", "created_at"]
    )
    # At most one queued or running sync per connector: the database enforces it.
    op.create_index(
        "uq_sync_runs_active",
        "sync_runs",
        ["company_id", "connector_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_table(
        "interactions",
        _uuid_pk(),
        _company_fk(),
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False, server_default=""),
        sa.Column("ticket_ref", sa.Text),
        sa.Column("answer", sa.Text, nullable=False, server_default=""),
        sa.Column("citations", pg.JSONB, nullable=False, server_default="[]"),
        sa.Column("provider", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("latency_ms", sa.Integer),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Numeric(12, 6), nullable=False, server_default="0"),
        sa.Column("cache_hit", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("api_key_id", pg.UUID(as_uuid=True)),
        _ts("created_at", nullable=False, default=True),
    )
    op.create_index("ix_interactions_company", "interactions", ["company_id", "created_at"])
    op.create_table(
        "feedback",
        _uuid_pk(),
        _company_fk(),
        sa.Column(
            "interaction_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("interactions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rating", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("comment", sa.Text),
        sa.Column("inserted", sa.Boolean, nullable=False, server_default="false"),
        _ts("created_at", nullable=False, default=True),
        sa.CheckConstraint("rating IS NULL OR rating IN ('up', 'down')", name="feedback_rating"),
        sa.CheckConstraint(
            "reason IS NULL OR reason IN "
            "('incorrect', 'incomplete', 'outdated', 'inappropriate', 'other')",
            name="feedback_reason",
        ),
    )
    op.create_index("ix_feedback_company", "feedback", ["company_id", "interaction_id"])
    op.create_table(
        "usage",
        _company_fk(),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Numeric(14, 6), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("company_id", "month", "provider", "model"),
    )
    # The audit log outlives the rows it describes, so it has no foreign key; the runtime
    # role may only INSERT and SELECT it (see backend.db.provisioning).
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("company_id", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("details", pg.JSONB, nullable=False, server_default="{}"),
        _ts("created_at", nullable=False, default=True),
    )
    op.create_index("ix_audit_log_company", "audit_log", ["company_id", "created_at"])

    for table in TENANT_TABLES:
        enable_tenant_rls(table)
    # The platform admin lists companies (and nothing else) across tenants; the flag is set
    # only by backend.db.session.platform_session.
    op.execute(
        "CREATE POLICY platform_read ON companies FOR SELECT "
        "USING (current_setting('app.platform_admin', true) = 'on')"
    )
    # Resolving a presented API key: the caller proves knowledge of the secret by its hash,
    # which makes exactly that one row visible (backend.db.repositories.api_keys).
    op.execute(
        "CREATE POLICY key_lookup ON api_keys FOR SELECT USING ("
        "key_hash = decode(nullif(current_setting('app.api_key_hash', true), ''), 'hex'))"
    )


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
