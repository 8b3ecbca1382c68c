"""A sync whose worker died is taken over by the running service itself — no request, no
restart: the API of the embedded default (which runs sync jobs in-process) notices the
silent run with its own reaper loop, marks it abandoned and runs a successor resumed from
it to the end. The dead worker is simulated in the database (a run left 'running' with a
frozen heartbeat, exactly what a SIGKILL leaves; tests/ingest/test_freshdesk_end_to_end.py
kills a real sync process)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import update

from backend.app import create_app
from backend.config import Settings
from backend.db.models import SyncRun
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from tests.conftest import CompanyWithKey

TAKEOVER_S = 1.5


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings.model_copy(
            update={
                "sync_takeover_s": TAKEOVER_S,
                "sync_heartbeat_s": 0.2,
                "sync_reaper_interval_s": 0.2,
            }
        )
    )
    async with LifespanManager(application, startup_timeout=120, shutdown_timeout=30):
        yield application


async def test_the_service_takes_a_dead_workers_sync_over_by_itself(
    app: FastAPI, make_company: object, tmp_path: Path
) -> None:
    state: Stack = app.state.helpdesk
    assert state.jobs.in_process
    acme: CompanyWithKey = await make_company("takeover")  # type: ignore[operator]
    export = tmp_path / "kb.jsonl"
    export.write_text(
        "".join(
            json.dumps({"id": f"kb-{n}", "title": f"Article {n}", "body": f"Step {n}."}) + "\n"
            for n in range(4)
        )
    )
    async with state.for_tenant(CompanyId(acme.company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="file_export",
            name="kb",
            settings={"path": str(export)},
            credentials={},
            schedule_minutes=None,
            actor="test",
            allow_file_platforms=True,
        )
    # A worker claimed this run and was killed: 'running', heartbeat frozen 2 minutes ago.
    dead = await state.sync.request_sync(acme.company_id, connector.id, trigger="manual")
    frozen = state.clock.now() - timedelta(minutes=2)
    async with state.database.tenant_session(acme.company_id) as session:
        await session.execute(
            update(SyncRun)
            .where(SyncRun.id == dead.id)
            .values(status="running", started_at=frozen, heartbeat_at=frozen)
        )

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        runs_url = f"/v1/connectors/{connector.id}/sync-runs"
        runs: list[dict[str, object]] = []
        for _ in range(300):
            runs = (await client.get(runs_url, headers=acme.headers)).json()
            if any(r["resumed_from"] == str(dead.id) and r["status"] == "succeeded" for r in runs):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"no successor finished: {runs}")
    by_id = {r["id"]: r for r in runs}
    abandoned = by_id[str(dead.id)]
    successor = next(r for r in runs if r["resumed_from"] == str(dead.id))
    assert abandoned["status"] == "abandoned"
    assert "worker lost" in abandoned["errors"][-1]["message"]  # type: ignore[index]
    assert "the sync reaper" in abandoned["errors"][-1]["message"]  # type: ignore[index]
    assert successor["trigger"] == "takeover"
    assert successor["upserted"] == 4
    # The live successor kept its heartbeat: it was not itself taken over.
    assert len(runs) == 2


def test_a_heartbeat_too_slow_for_the_takeover_window_is_refused() -> None:
    with pytest.raises(ValidationError, match="at most a third"):
        Settings(_env_file=None, sync_heartbeat_s=30, sync_takeover_s=45)  # type: ignore[call-arg]
    assert Settings(_env_file=None).sync_takeover_s <= 60  # type: ignore[call-arg]
