"""Loading the demo company: profile, API key and sample knowledge, through the same
connectors and syncs as any other source (so the demo exercises the real pipeline)."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from backend.console.http import console_auth
from backend.console.store import find_user_by_email
from backend.demo import demo_sources
from backend.errors import AppError, Conflict
from backend.ingest.operator import ensure_connector, run_sync_with_progress
from backend.stack import Stack
from backend.tenancy import service
from backend.tenancy.scope import open_rows

ACTOR = "demo"


DEMO_HELPDESK_ORIGIN = "https://lumen-home.freshdesk.com"
DEMO_CONSOLE_NAME = "Demo admin"


def demo_console_password_file(state: Stack) -> Path:
    """Where `helpdesk demo` keeps the demo console user's password (0600)."""
    return state.settings.resolved_data_dir / "demo-console-password"


def demo_console_email(company_id: str) -> str:
    """The demo company's console user (an owner: the demo shows every console page).
    E-mails are unique across companies, so the address names the company."""
    return f"admin@{company_id}.example"


async def prepare_demo(state: Stack) -> str:
    """Create the demo company, its API key (kept in ``data_dir/demo-api-key``) and its
    sample knowledge; return the key. Idempotent: later runs reuse the stored key and skip
    unchanged documents."""
    company_id = state.settings.demo_company_id
    key_file = state.settings.resolved_data_dir / "demo-api-key"
    with contextlib.suppress(Conflict):
        await service.create_company(
            state.database,
            company_id=company_id,
            name="Lumen Home (demo)",
            actor=ACTOR,
            settings={
                "tone": {"sign_off": "The Lumen Home support team"},
                # Where the sidebar runs in the stand-in helpdesk (CORS, backend.api.cors).
                "widget_origins": [DEMO_HELPDESK_ORIGIN],
            },
        )
    async with open_rows(state.database, company_id) as rows:
        active = {k.prefix for k in await service.list_api_keys(rows)}
        if not key_file.exists() or key_file.read_text().strip()[:12] not in active:
            issued = await service.issue_api_key(rows, name="demo", actor=ACTOR)
            key_file.write_text(issued.plaintext + "\n")
            key_file.chmod(0o600)
    for index, (platform, settings) in enumerate(demo_sources()):
        connector_id = await ensure_connector(
            state,
            company_id,
            platform=platform,
            name=f"demo-{index}-{platform}",
            settings=settings,
        )
        summary = await run_sync_with_progress(state, company_id, connector_id)
        if summary.run.status != "succeeded":
            raise AppError(f"demo data sync failed: {summary.run.errors}", code="demo_failed")
    await prepare_demo_console_user(state)
    return key_file.read_text().strip()


async def prepare_demo_console_user(state: Stack) -> str:
    """The demo company's console user, invited and with a password set through the same
    invitation flow as any user; the password is kept in ``data_dir/demo-console-password``
    (0600) and returned. Idempotent: a later run keeps the user and its password."""
    company_id = state.settings.demo_company_id
    password_file = demo_console_password_file(state)
    email = demo_console_email(company_id)
    existing = await find_user_by_email(state.database, email)
    if existing is not None and existing.password_hash and password_file.exists():
        return password_file.read_text().strip()
    if existing is not None:
        raise AppError(
            f"the demo console user exists without its stored password ({password_file}); "
            "remove the demo data directory to start over",
            code="demo_failed",
        )
    auth = console_auth(state)
    invitation = await auth.invite(
        company_id, email=email, name=DEMO_CONSOLE_NAME, role="owner", actor=ACTOR
    )
    password = secrets.token_urlsafe(12)
    await auth.accept_invitation(
        invitation.token, name=DEMO_CONSOLE_NAME, password=password, client_ip=None, user_agent=None
    )
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return password
