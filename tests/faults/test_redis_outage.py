"""Redis stops and comes back: the job queue answers 503 naming Redis (with Retry-After),
nothing is left half-queued, /readyz names the failing store, and everything works again
once Redis is back — without restarting the API.

Redis here is a server of this test's own (tests/fault_servers.py), restarted on the same
port. The jobs go through Redis only with a shared vector engine, so the API uses
qdrant-client's local mode (``:memory:``), the stand-in for a Qdrant server in tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from tests.conftest import CompanyWithKey
from tests.fault_servers import PrivateRedis, private_redis

__all__ = ["private_redis"]


@pytest.fixture
async def app(
    settings: Settings, private_redis: PrivateRedis, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings.model_copy(update={"redis_url": private_redis.url, "qdrant_url": ":memory:"})
    )
    async with LifespanManager(application, startup_timeout=120, shutdown_timeout=30):
        yield application


async def test_a_redis_outage_is_a_503_naming_redis_and_heals_by_itself(
    app: FastAPI, private_redis: PrivateRedis, make_company: object, tmp_path: Path
) -> None:
    state: Stack = app.state.helpdesk
    assert not state.jobs.in_process
    acme: CompanyWithKey = await make_company("redisdown")  # type: ignore[operator]
    # A platform connector: tenants may sync those through the API (file imports are the
    # operator's). Queuing its sync touches Redis only; no worker runs it here.
    async with state.for_tenant(CompanyId(acme.company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="freshdesk",
            name="helpdesk",
            settings={"domain": "acme.freshdesk.com"},
            credentials={"api_key": "key"},
            schedule_minutes=None,
            actor="test",
        )
    sync_url = f"/v1/connectors/{connector.id}/sync"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://faults") as client:
        assert (await client.get("/readyz")).json()["checks"]["redis"]["ok"] is True

        private_redis.stop()
        refused = await client.post(sync_url, headers=acme.headers)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "store_unavailable"
        assert refused.json()["detail"]["store"] == "redis"
        assert int(refused.headers["Retry-After"]) > 0
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"]["ok"] is False
        assert ready.json()["checks"]["postgres"]["ok"] is True
        # Postgres-only reads are untouched by the outage.
        listed = await client.get("/v1/interactions", headers=acme.headers)
        assert listed.status_code == 200
        # The refused sync left no queued run behind to block the next one.
        runs_url = f"/v1/connectors/{connector.id}/sync-runs"
        runs = (await client.get(runs_url, headers=acme.headers)).json()
        assert runs, "the refused run is in the history"
        assert all(run["status"] not in {"queued", "running"} for run in runs)

        private_redis.start()  # same port: the clients reconnect by themselves
        for _ in range(100):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("/readyz did not recover after Redis came back")
        accepted = await client.post(sync_url, headers=acme.headers)
        assert accepted.status_code == 202, accepted.text
