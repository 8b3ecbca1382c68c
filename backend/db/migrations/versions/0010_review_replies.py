"""Replies out: review replies with approval and publishing, and each company's reply settings.

``review_replies`` holds one row per ingested review: the draft written when the review
arrived, its sentiment and key topics, the text as an agent approved or edited it, the
workflow state, who moved it last and when, and the platform's answer to the publish call.
Who did what is also appended to the audit log (one entry per action).

``reply_settings`` holds one row per company that changed a default: the alert webhook URL
(sealed with the secret box, like connector credentials), the rating at or below which a
review raises an alert, and whether ticket drafts may be posted as private notes.

Both follow the tenancy rule of 0001: ``company_id``, RLS enabled and forced, one policy
with ``USING`` and ``WITH CHECK``, an index leading with ``company_id``.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "current_setting('app.company_id', true)"
NEW_TABLES = ("review_replies", "reply_settings")
STATES = ("draft", "approved", "edited", "publishing", "published", "rejected")


def _company_fk() -> sa.Column[object]:
    return sa.Column(
        "company_id",
        sa.Text,
        sa.ForeignKey("companies.company_id", ondelete="CASCADE"),
        nullable=False,
    )


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "review_replies",
        sa.Column(
            "id",
            pg.UUID(as_uuid=True),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        _company_fk(),
        sa.Column(
            "document_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "connector_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("connectors.id", ondelete="SET NULL"),
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("review_url", sa.Text),
        sa.Column("language", sa.Text),
        sa.Column("rating", sa.Numeric(6, 2)),
        sa.Column("rating_scale", sa.Numeric(6, 2), nullable=False, server_default="5"),
        sa.Column("sentiment", sa.Text, nullable=False),
        sa.Column("topics", pg.JSONB, nullable=False, server_default="[]"),
        sa.Column("draft", sa.Text, nullable=False),
        sa.Column("reply_text", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="draft"),
        # The state a failed or interrupted publish returns to (approved or edited).
        sa.Column("state_before_publish", sa.Text),
        sa.Column("updated_by", sa.Text),
        sa.Column("approved_by", sa.Text),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("published_by", sa.Text),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("publish_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("platform_status", sa.Integer),
        sa.Column("platform_answer", sa.Text),
        sa.Column("platform_answered_at", sa.DateTime(timezone=True)),
        sa.Column("alert_status", sa.Text),
        sa.Column("alerted_at", sa.DateTime(timezone=True)),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("company_id", "document_id", name="uq_review_replies_document"),
        sa.CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")",
            name="review_replies_state",
        ),
    )
    op.create_index(
        "ix_review_replies_state", "review_replies", ["company_id", "state", "created_at"]
    )
    op.create_table(
        "reply_settings",
        _company_fk(),
        sa.Column("alert_webhook_encrypted", sa.LargeBinary),
        sa.Column("alert_rating_threshold", sa.Numeric(6, 2)),
        sa.Column("ticket_notes_enabled", sa.Boolean, nullable=False, server_default="false"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("company_id"),
    )
    for table in NEW_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (company_id = {TENANT}) WITH CHECK (company_id = {TENANT})"
        )


def downgrade() -> None:
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
