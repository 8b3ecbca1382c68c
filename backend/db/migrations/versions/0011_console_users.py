"""Console users, their sessions, and API key scopes.

``console_users`` are a company's people (owner, admin, agent) who sign in to the console
with an e-mail and a password (argon2 hash; NULL until the invitation is accepted).
``console_sessions`` hold signed-in sessions by the SHA-256 of the cookie value, never the
value itself. Both follow the tenancy rule of 0001: ``company_id``, RLS enabled and forced,
one ``tenant_isolation`` policy with ``USING`` and ``WITH CHECK``, an index leading with
``company_id``.

Signing in happens before the company is known, so, like ``key_lookup`` on ``api_keys``,
read-only lookup policies make exactly one row visible to a caller who presents its key:
the user with the e-mail being signed in (``app.console_email``), the user holding the
invitation whose token hash is presented (``app.console_invite_hash``), the session whose
cookie hash is presented (``app.console_session_hash``). Nothing else of any company.

E-mails are unique across companies: signing in names no company, so one address must
lead to one account.

API keys gain ``scopes``; keys that exist keep every scope. Sync runs gain ``chunks`` (the
passages written, for the console's progress).

Revision ID: 0011
Revises: 0010 (was 0008; re-chained after merging main, which brought 0010)
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "current_setting('app.company_id', true)"
ALL_SCOPES = "'{assistant,ingest,admin,widget-mint}'::text[]"


def _company_fk() -> sa.Column[object]:
    return sa.Column(
        "company_id",
        sa.Text,
        sa.ForeignKey("companies.company_id", ondelete="CASCADE"),
        nullable=False,
    )


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.func.now(),
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


def _hash_lookup(setting: str) -> str:
    return f"decode(nullif(current_setting('{setting}', true), ''), 'hex')"


def upgrade() -> None:
    op.create_table(
        "console_users",
        _uuid_pk(),
        _company_fk(),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("invite_token_hash", sa.LargeBinary),
        _ts("invite_expires_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("role IN ('owner', 'admin', 'agent')", name="console_user_role"),
        sa.CheckConstraint("email = lower(email)", name="console_user_email_lower"),
    )
    op.create_index("ix_console_users_company", "console_users", ["company_id", "created_at"])
    op.create_index("ux_console_users_email", "console_users", ["email"], unique=True)
    op.create_index(
        "ux_console_users_invite",
        "console_users",
        ["invite_token_hash"],
        unique=True,
        postgresql_where=sa.text("invite_token_hash IS NOT NULL"),
    )
    op.create_table(
        "console_sessions",
        _uuid_pk(),
        _company_fk(),
        sa.Column(
            "user_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("console_users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        _ts("created_at"),
        _ts("expires_at"),
        sa.Column("client_ip", sa.Text),
        sa.Column("user_agent", sa.Text),
    )
    op.create_index("ix_console_sessions_company", "console_sessions", ["company_id", "user_id"])
    for table in ("console_users", "console_sessions"):
        enable_tenant_rls(table)
    op.execute(
        "CREATE POLICY login_lookup ON console_users FOR SELECT "
        "USING (email = nullif(current_setting('app.console_email', true), ''))"
    )
    op.execute(
        "CREATE POLICY invite_lookup ON console_users FOR SELECT "
        f"USING (invite_token_hash = {_hash_lookup('app.console_invite_hash')})"
    )
    op.execute(
        "CREATE POLICY session_lookup ON console_sessions FOR SELECT "
        f"USING (token_hash = {_hash_lookup('app.console_session_hash')})"
    )
    op.add_column(
        "api_keys",
        sa.Column("scopes", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text(ALL_SCOPES)),
    )

    op.add_column(
        "sync_runs", sa.Column("chunks", sa.BigInteger, nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("sync_runs", "chunks")
    op.drop_column("api_keys", "scopes")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
