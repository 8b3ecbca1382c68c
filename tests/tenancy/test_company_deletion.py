"""Suspending and deleting a company: every credential, every store, every queued job.

Runs against the real Postgres and Redis (the cache on its own database number, keys read
back under the company's hash tag), the embedded Qdrant engine and the local object store.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from backend.app import create_app
from backend.blobs import LocalBlobStore, TenantBlobs
from backend.config import Settings
from backend.db.provisioning import DatabaseUrls
from backend.db.session import Database
from backend.ingest.jobs import SyncScheduler, run_sync_job
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from backend.vectors import namespace_for
from tests.api.test_assistant_api import sync_file, write_jsonl
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
REDIS_URL = "redis://127.0.0.1:6379/13"
KNOWLEDGE = [
    {"id": "kb-1", "title": "Reset the router", "body": "Hold the reset button for ten seconds."},
    {
        "id": "t-1",
        "kind": "ticket",
        "title": "Router keeps rebooting",
        "status": "resolved",
        "requester": "ann@example.com",
        "body": "My router reboots every hour.",
        "conversation": [{"author_role": "agent", "internal": True, "text": "Known firmware bug."}],
    },
]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    # Redis-backed cache, as in production; keys are only read under our own company ids.
    application = create_app(settings.model_copy(update={"redis_url": REDIS_URL}))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@dataclass
class Setup:
    acme: CompanyWithKey
    globex: CompanyWithKey
    state: Stack
    widget: dict[str, str]
    connector_id: uuid.UUID


@pytest.fixture
async def setup(
    app: FastAPI, client: httpx.AsyncClient, make_company: MakeCompany, tmp_path: Path
) -> Setup:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    for company in (acme, globex):
        await sync_file(
            state,
            company.company_id,
            write_jsonl(tmp_path / f"{company.company_id}.jsonl", KNOWLEDGE),
        )
    async with state.for_tenant(CompanyId(acme.company_id)) as scope:
        connector_id = (await state.connectors.list(scope))[0].id
    minted = await client.post("/v1/widget-tokens", headers=acme.headers, json={})
    widget = {"Authorization": f"Bearer {minted.json()['token']}", "X-Company-ID": acme.company_id}
    for company in (acme, globex):
        answer = await client.post(
            "/v1/answer", headers=company.headers, json={"question": "router reboots"}
        )
        await client.post(
            "/v1/feedback",
            headers=company.headers,
            json={"interaction_id": answer.json()["interaction_id"], "rating": "up"},
        )
        await client.post("/v1/search", headers=company.headers, json={"query": "router"})
    return Setup(acme, globex, state, widget, connector_id)


async def _tenant_rows(database: Database, company_id: str) -> dict[str, int]:
    """Rows of ``company_id`` in every table that has a company_id column."""
    async with database.tenant_session(company_id) as session:
        tables = [
            row[0]
            for row in await session.execute(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE "
                    "table_schema = 'public' AND column_name = 'company_id' ORDER BY 1"
                )
            )
        ]
        return {
            table: (await session.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one()
            for table in tables
        }


async def _redis_keys(company_id: str) -> list[bytes]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return [key async for key in client.scan_iter(match=f"hd:{{{company_id}}}:*")]
    finally:
        await client.aclose()


def _shard_dirs(root: Path, company_id: str) -> list[Path]:
    return [p for p in root.rglob(namespace_for(company_id)) if p.is_dir()]


async def test_deleting_a_company_leaves_nothing_in_any_store(
    client: httpx.AsyncClient,
    setup: Setup,
    database: Database,
    admin_headers: dict[str, str],
    settings: Settings,
) -> None:
    acme = setup.acme.company_id
    state = setup.state
    before = await _tenant_rows(database, acme)
    assert before["documents"] == 2 and before["interactions"] >= 1 and before["feedback"] == 1
    assert await state.vectors.count(acme) > 0
    assert await _redis_keys(acme)
    blob_root = state.blobs.root if isinstance(state.blobs, LocalBlobStore) else None
    assert blob_root is not None and (blob_root / acme).is_dir()
    assert _shard_dirs(settings.resolved_data_dir, acme)
    queued = await state.sync.request_sync(acme, setup.connector_id, trigger="scheduled")

    for confirm in ("", "?confirm=globex", f"?confirm={acme}-x"):
        refused = await client.delete(f"/admin/companies/{acme}{confirm}", headers=admin_headers)
        assert refused.status_code == 400
        assert refused.json()["error"] == "confirmation_required"
    deleted = await client.delete(f"/admin/companies/{acme}?confirm={acme}", headers=admin_headers)
    assert deleted.status_code == 200, deleted.text
    report = deleted.json()
    assert report["postgres_rows"]["documents"] == 2
    assert report["postgres_rows"]["companies"] == 1
    assert report["cancelled_sync_runs"] == 1
    assert report["vector_points"] > 0 and report["blobs"] == 2 and report["cache_keys"] > 0

    # Postgres, table by table: only the audit log remains, ending with the deletion.
    after = await _tenant_rows(database, acme)
    assert {t: n for t, n in after.items() if t != "audit_log"} == dict.fromkeys(
        (t for t in after if t != "audit_log"), 0
    )
    assert after["audit_log"] > 0
    # Qdrant (embedded engine): no points, no shard directory.
    assert await state.vectors.count(acme) == 0
    assert _shard_dirs(settings.resolved_data_dir, acme) == []
    # Object store: no folder, nothing listed.
    assert not (blob_root / acme).exists()
    assert await TenantBlobs(state.blobs, acme).list_sources() == []
    # Redis: nothing under the company's hash tag.
    assert await _redis_keys(acme) == []

    # The other company is untouched.
    globex = setup.globex.company_id
    assert (await _tenant_rows(database, globex))["documents"] == 2
    assert await state.vectors.count(globex) > 0
    assert await _redis_keys(globex)
    search = await client.post("/v1/search", headers=setup.globex.headers, json={"query": "reset"})
    assert search.status_code == 200 and search.json()["results"]

    # Credentials are dead at once in this process.
    assert (await client.get("/v1/company", headers=setup.acme.headers)).status_code == 401
    assert (await client.get("/v1/company", headers=setup.widget)).status_code == 401
    # A job that was queued before the deletion is dropped when a worker reaches it.
    context: Any = SimpleNamespace(state=SimpleNamespace(sync_service=state.sync))
    assert await run_sync_job(acme, str(queued.id), context) == "dropped"
    # The audit trail survives, readable by the platform admin.
    audit = await client.get(f"/admin/companies/{acme}/audit-log", headers=admin_headers)
    entries = audit.json()
    assert entries[0]["action"] == "company.delete"
    assert entries[0]["details"]["postgres_rows"]["documents"] == 2
    assert (await client.get(f"/admin/companies/{acme}", headers=admin_headers)).status_code == 404
    again = await client.delete(f"/admin/companies/{acme}?confirm={acme}", headers=admin_headers)
    assert again.status_code == 404


async def test_suspended_companies_get_403_everywhere(
    client: httpx.AsyncClient, setup: Setup, admin_headers: dict[str, str], database: Database
) -> None:
    acme = setup.acme.company_id
    state = setup.state
    queued = await state.sync.request_sync(acme, setup.connector_id, trigger="manual")
    suspended = await client.post(
        f"/admin/companies/{acme}/suspend", headers=admin_headers, json={"reason": "unpaid"}
    )
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"

    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/search", {"query": "router"}),
        ("POST", "/v1/answer", {"question": "router"}),
        ("POST", "/v1/widget-tokens", {}),
        ("GET", "/v1/company", None),
        ("GET", "/v1/documents", None),
        ("POST", f"/v1/connectors/{setup.connector_id}/sync", None),
    ]
    for headers in (setup.acme.headers, setup.widget):
        for method, path, body in calls:
            response = await client.request(method, path, headers=headers, json=body)
            assert response.status_code == 403, (path, response.text)
            assert response.json()["error"] == "company_suspended"
    # Syncs: the queued run was cancelled, a worker drops it, the scheduler skips the
    # company and a direct request is refused.
    context: Any = SimpleNamespace(state=SimpleNamespace(sync_service=state.sync))
    assert await run_sync_job(acme, str(queued.id), context) == "dropped"
    async with state.for_tenant(CompanyId(acme)) as scope:
        await state.connectors.update(
            scope, setup.connector_id, actor="test", schedule_minutes=5, by_operator=True
        )
    # The scheduler runs over every company of the shared test database: what matters is
    # that it queues nothing for this one.
    await SyncScheduler(database, state.jobs, state.clock).tick()
    async with database.tenant_session(acme) as session:
        queued_after = (
            await session.execute(
                text("SELECT count(*) FROM sync_runs WHERE status IN ('queued', 'running')")
            )
        ).scalar_one()
    assert queued_after == 0
    with pytest.raises(Exception, match="suspended"):
        await state.sync.request_sync(acme, setup.connector_id, trigger="manual")
    # Other companies carry on.
    other = await client.post("/v1/search", headers=setup.globex.headers, json={"query": "x"})
    assert other.status_code == 200

    reactivated = await client.post(f"/admin/companies/{acme}/reactivate", headers=admin_headers)
    assert reactivated.json()["status"] == "active"
    assert (await client.get("/v1/company", headers=setup.acme.headers)).status_code == 200
    assert (await client.get("/v1/company", headers=setup.widget)).status_code == 200
    audit = (await client.get("/v1/audit-log", headers=setup.acme.headers)).json()
    actions = [e["action"] for e in audit]
    assert actions.index("company.reactivate") < actions.index("company.suspend")
    assert next(e for e in audit if e["action"] == "company.suspend")["details"]["reason"] == (
        "unpaid"
    )


async def test_admin_lifecycle_needs_the_admin_token(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    acme = setup.acme.company_id
    for method, path in (
        ("POST", f"/admin/companies/{acme}/suspend"),
        ("POST", f"/admin/companies/{acme}/reactivate"),
        ("DELETE", f"/admin/companies/{acme}?confirm={acme}"),
        ("GET", f"/admin/companies/{acme}/audit-log"),
    ):
        response = await client.request(method, path, headers=setup.acme.headers)
        assert response.status_code == 401, path
    missing = await client.post(
        "/admin/companies/no-such-co/suspend",
        headers={"Authorization": "Bearer test-admin-token-" + "x" * 16},
    )
    assert missing.status_code == 404


async def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "HELPDESK_DATABASE_URL": str(settings.database_url),
        "HELPDESK_DATA_DIR": str(settings.resolved_data_dir),
        "HELPDESK_AUTO_MIGRATE": "false",
        "HELPDESK_SCHEDULER_ENABLED": "false",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from backend.cli import app; app()",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_cli_suspends_and_deletes_with_confirmation(
    make_company: MakeCompany,
    database: Database,
    settings: Settings,
    database_urls: DatabaseUrls,
) -> None:
    company = await make_company("cli")
    code, output = await _cli(settings, "tenants", "suspend", company.company_id)
    assert code == 0, output
    code, output = await _cli(settings, "tenants", "delete", company.company_id)
    assert code == 2 and "--yes" in output
    assert (await _tenant_rows(database, company.company_id))["companies"] == 1
    code, output = await _cli(settings, "tenants", "delete", company.company_id, "--yes")
    assert code == 0, output
    rows = await _tenant_rows(database, company.company_id)
    assert {t: n for t, n in rows.items() if t != "audit_log"} == dict.fromkeys(
        (t for t in rows if t != "audit_log"), 0
    )
    code, output = await _cli(settings, "tenants", "delete", company.company_id, "--yes")
    assert code == 2 and "company_not_found" in output


async def test_deletion_purges_the_in_process_cache_of_the_embedded_default(
    setup: Setup, make_company: MakeCompany
) -> None:
    """The embedded default keeps its cache in the process: deletion empties it there too."""
    from backend.cache import MemoryCacheBackend, TenantCache
    from backend.llm.cache import ResponseCache
    from backend.tenancy.lifecycle import CompanyLifecycle
    from backend.tenancy.scope import TenantStores

    memory = MemoryCacheBackend()
    doomed, kept = await make_company("mem"), await make_company("mem")
    for company in (doomed, kept):
        cache = ResponseCache(memory, company.company_id, ttl_seconds=60)
        found = await cache.lookup("answer-answer", "k")
        assert found.epoch is not None
        await cache.put("answer-answer", "k", {"text": "cached"}, epoch=found.epoch)
        await TenantCache(memory, company.company_id).set("search", "q", b"hit")
    state = setup.state
    lifecycle = CompanyLifecycle(
        stores=TenantStores(state.database, state.vectors, state.blobs, memory),
        clock=state.clock,
    )
    report = await lifecycle.delete(doomed.company_id, actor="test")
    assert report.cache_keys == 3  # the epoch, the answer, the search entry
    assert await TenantCache(memory, doomed.company_id).get("search", "q") is None
    gone = await ResponseCache(memory, doomed.company_id, ttl_seconds=60).lookup(
        "answer-answer", "k"
    )
    assert gone.value is None
    assert await TenantCache(memory, kept.company_id).get("search", "q") == b"hit"
    kept_answer = await ResponseCache(memory, kept.company_id, ttl_seconds=60).lookup(
        "answer-answer", "k"
    )
    assert kept_answer.value == {"text": "cached"}
