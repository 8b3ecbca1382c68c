"""Sync takeover: a run whose worker died is marked ``abandoned`` and a new run resumes it.

``resumed_from`` links the new run to the one it took over, so the run history says what
happened (abandoned at …, resumed by …). No new table: ``sync_runs`` keeps its RLS policy,
grants and company-leading index from 0001.

Revision ID: 0005
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OLD_STATUSES = "('queued', 'running', 'succeeded', 'failed', 'cancelled')"
_NEW_STATUSES = "('queued', 'running', 'succeeded', 'failed', 'cancelled', 'abandoned')"


def upgrade() -> None:
    op.add_column(
        "sync_runs",
        sa.Column(
            "resumed_from",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("sync_runs.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.drop_constraint("sync_run_status", "sync_runs", type_="check")
    op.create_check_constraint("sync_run_status", "sync_runs", f"status IN {_NEW_STATUSES}")


def downgrade() -> None:
    op.execute("UPDATE sync_runs SET status = 'failed' WHERE status = 'abandoned'")
    op.drop_constraint("sync_run_status", "sync_runs", type_="check")
    op.create_check_constraint("sync_run_status", "sync_runs", f"status IN {_OLD_STATUSES}")
    op.drop_column("sync_runs", "resumed_from")
