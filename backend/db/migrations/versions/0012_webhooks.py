"""Webhooks in: per-connector webhook secrets, received event ids, items waiting for a fetch.

Every table follows the tenancy rule of 0001 (``company_id``, RLS enabled and forced, one
policy with ``USING`` and ``WITH CHECK``, an index leading with ``company_id``). A webhook
request names only a connector id, so ``webhook_endpoints`` has one more policy, like
``key_lookup`` on api_keys: a session that sets ``app.webhook_connector`` sees that one row
(to learn its company), nothing else. The request is then verified against the secret and
everything after runs in that company's ``tenant_session``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "current_setting('app.company_id', true)"
NEW_TABLES = ("webhook_endpoints", "webhook_events", "webhook_pending")


def _company_fk() -> sa.Column[object]:
    return sa.Column(
        "company_id",
        sa.Text,
        sa.ForeignKey("companies.company_id", ondelete="CASCADE"),
        nullable=False,
    )


def _connector_fk(primary_key: bool = False) -> sa.Column[object]:
    return sa.Column(
        "connector_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("connectors.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.func.now(),
    )


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        _connector_fk(primary_key=True),
        _company_fk(),
        # AES-256-GCM sealed (backend.secretbox): HMAC schemes need the secret itself.
        sa.Column("secret_sealed", sa.LargeBinary, nullable=False),
        # The secret before the last rotation, accepted until previous_valid_until so the
        # platform's side can be updated without dropping events.
        sa.Column("previous_secret_sealed", sa.LargeBinary, nullable=True),
        _ts("previous_valid_until", nullable=True),
        # True while a drain job is queued or about to run (coalesces the enqueues).
        sa.Column("drain_queued", sa.Boolean, nullable=False, server_default="false"),
        _ts("created_at"),
        _ts("rotated_at"),
    )
    op.create_index("ix_webhook_endpoints_company", "webhook_endpoints", ["company_id"])
    op.create_table(
        "webhook_events",
        _company_fk(),
        _connector_fk(),
        sa.Column("event_id", sa.Text, nullable=False),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("company_id", "connector_id", "event_id"),
    )
    op.create_index("ix_webhook_events_received", "webhook_events", ["company_id", "received_at"])
    op.create_table(
        "webhook_pending",
        _company_fk(),
        _connector_fk(),
        sa.Column("external_id", sa.Text, nullable=False),
        # When the first event still waiting for this item arrived (the latency clock).
        _ts("first_received_at"),
        sa.Column("events", sa.Integer, nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("company_id", "connector_id", "external_id"),
    )
    for table in NEW_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (company_id = {TENANT}) WITH CHECK (company_id = {TENANT})"
        )
    # Resolving a webhook's connector to its company (backend.db.session
    # Database.webhook_lookup_session): exactly that one row, read-only.
    op.execute(
        "CREATE POLICY webhook_lookup ON webhook_endpoints FOR SELECT USING ("
        "connector_id::text = nullif(current_setting('app.webhook_connector', true), ''))"
    )


def downgrade() -> None:
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
