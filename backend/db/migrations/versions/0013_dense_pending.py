"""Documents searchable by keyword before their dense vectors are written.

A webhook's item is written to the index with its sparse (keyword) vector first, so it is
searchable within a second or two, and its dense vectors follow as soon as the model has
encoded them (``backend.webhooks.service``). ``dense_pending`` marks a row whose points
still lack their dense vectors: the next sync treats such a row as changed and re-embeds
it, and so do the connector's next webhook drain and sync run (from the object store, for
rows left waiting a while), so a process that dies between the two writes leaves nothing
half-indexed for good.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "documents",
        sa.Column("dense_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # Rows left waiting are looked up per connector; almost none are, so a partial index.
    op.create_index(
        "ix_documents_dense_pending",
        "documents",
        ["company_id", "connector_id", "updated_at"],
        postgresql_where=sa.text("dense_pending"),
    )


def downgrade() -> None:
    op.drop_index("ix_documents_dense_pending", table_name="documents")
    op.drop_column("documents", "dense_pending")
