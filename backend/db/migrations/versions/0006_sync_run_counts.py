"""Sync runs: counts by reason (items skipped, attachments indexed or skipped).

``sync_runs.counts`` is a JSON object of counters, e.g. ``{"skipped.draft_article": 3,
"attachments_indexed": 12, "attachments_skipped.image": 4}``. The table keeps its RLS
policy, grants and indexes from 0001; only a column is added.

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "sync_runs",
        sa.Column("counts", pg.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
    )


def downgrade() -> None:
    op.drop_column("sync_runs", "counts")
