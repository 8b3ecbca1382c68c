"""Loading the demo company: profile, API key and sample knowledge, through the same
connectors and syncs as any other source (so the demo exercises the real pipeline)."""

from __future__ import annotations

import contextlib

from backend.demo import demo_sources
from backend.errors import AppError, Conflict
from backend.ingest.operator import ensure_connector, run_sync_with_progress
from backend.stack import Stack
from backend.tenancy import service
from backend.tenancy.scope import open_rows

ACTOR = "demo"


DEMO_HELPDESK_ORIGIN = "https://lumen-home.freshdesk.com"


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
    return key_file.read_text().strip()
