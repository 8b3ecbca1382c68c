"""Company plans: what one company may spend of the shared service.

``companies.plan`` holds the limits the platform admin set for the company (requests per
minute, assistant calls per month, documents, connectors); a limit it does not name falls
back to the service's default (``HELPDESK_PLAN_DEFAULT_*``). The column lives on the
companies table, so its row-level-security policy, index and grants already apply.

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "companies",
        sa.Column("plan", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )


def downgrade() -> None:
    op.drop_column("companies", "plan")
