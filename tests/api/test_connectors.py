"""Connectors through the HTTP API: validation, encrypted credentials, a real sync against a
replayed Freshdesk API, documents in every store, tenant isolation, purge and erasure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from backend.app import create_app
from backend.blobs import TenantBlobs
from backend.config import Settings
from backend.egress import StaticResolver
from backend.stack import Stack
from tests.adapters.freshdesk_api import (
    API_KEY,
    FILE_HOST,
    NOW,
    FakeFreshdesk,
    iso,
    make_conversation,
    make_ticket,
)
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


def freshdesk_dataset() -> FakeFreshdesk:
    tickets = [
        make_ticket(
            1,
            NOW - timedelta(days=5),
            subject="Router keeps dropping Wi-Fi",
            status=4,
            requester_email="alice@example.org",
        ),
        make_ticket(
            2,
            NOW - timedelta(days=4),
            subject="Refund for order 4002",
            requester_email="bob@example.org",
        ),
        make_ticket(
            3,
            NOW - timedelta(days=3),
            subject="Cannot pair the thermostat",
            requester_email="alice@example.org",
        ),
    ]
    conversations = {
        1: [
            make_conversation(
                101,
                1,
                body_text="Wi-Fi drops every hour since the update.",
                incoming=True,
                created_at=NOW - timedelta(days=5),
            ),
            make_conversation(
                102,
                1,
                body_text="Escalated to firmware team, known bug.",
                private=True,
                created_at=NOW - timedelta(days=5),
            ),
            make_conversation(
                103,
                1,
                body_text="Please update the router firmware to 2.4.1.",
                created_at=NOW - timedelta(days=4, hours=20),
            ),
        ]
    }
    article = {
        "id": 31,
        "type": 1,
        "category_id": 11,
        "folder_id": 21,
        "agent_id": 77001,
        "title": "Updating router firmware",
        "description": "<p>Open the app, choose Settings, then Firmware, then Update.</p>",
        "description_text": "Open the app, choose Settings, then Firmware, then Update.",
        "status": 2,
        "tags": ["router"],
        "seo_data": {},
        "hits": 1,
        "thumbs_up": 0,
        "thumbs_down": 0,
        "created_at": iso(NOW - timedelta(days=50)),
        "updated_at": iso(NOW - timedelta(days=40)),
    }
    return FakeFreshdesk(
        tickets=tickets,
        conversations=conversations,
        categories=[{"id": 11, "name": "Devices", "description": None, "visible_in_portals": [1]}],
        folders={11: [{"id": 21, "name": "Router", "description": None, "visibility": 1}]},
        articles={21: [article]},
    )


@pytest.fixture
def freshdesk() -> FakeFreshdesk:
    return freshdesk_dataset()


@pytest.fixture
async def app(settings: Settings, freshdesk: FakeFreshdesk) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings,
        http_transport=httpx.MockTransport(freshdesk.handle),
        # The replayed account's name "resolves" to loopback, allowed by the test setting.
        # Its attachment links point at Freshdesk's file store, a file host of the platform.
        egress_resolver=StaticResolver({"acme.freshdesk.com": "127.0.0.1", FILE_HOST: "127.0.0.1"}),
    )
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


CONNECTOR = {
    "platform": "freshdesk",
    "name": "Freshdesk",
    "settings": {"domain": "acme.freshdesk.com"},
    "credentials": {"api_key": API_KEY},
}


async def sync_to_completion(
    client: httpx.AsyncClient, headers: dict[str, str], connector_id: str
) -> dict[str, Any]:
    started = await client.post(f"/v1/connectors/{connector_id}/sync", headers=headers)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    for _ in range(600):
        run = (await client.get(f"/v1/sync-runs/{run_id}", headers=headers)).json()
        if run["status"] in {"succeeded", "failed"}:
            return run  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError("sync did not finish")


async def test_connector_validation_errors_are_clear(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme = await make_company("conn")
    cases = [
        ({**CONNECTOR, "platform": "myspace"}, 400, "unknown_platform"),
        ({**CONNECTOR, "settings": {}}, 400, "invalid_connector_settings"),
        ({**CONNECTOR, "credentials": {"api_key": ""}}, 400, "invalid_connector_credentials"),
        (
            {**CONNECTOR, "platform": "file_export", "settings": {"path": "/etc/passwd"}},
            400,
            "platform_not_allowed",
        ),
        ({**CONNECTOR, "schedule_minutes": 1}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        response = await client.post("/v1/connectors", headers=acme.headers, json=body)
        assert (response.status_code, response.json()["error"]) == (status, code), response.text
        assert API_KEY not in response.text
    assert (await client.get("/v1/connectors", headers=acme.headers)).json() == []


async def test_sync_indexes_everywhere_and_other_companies_see_nothing(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany
) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    created = await client.post("/v1/connectors", headers=acme.headers, json=CONNECTOR)
    assert created.status_code == 201, created.text
    connector = created.json()
    assert connector["has_credentials"] is True
    assert "credentials" not in connector
    assert API_KEY not in created.text

    async with state.database.tenant_session(acme.company_id) as session:
        sealed = (
            await session.execute(
                text("SELECT credentials_encrypted FROM connectors WHERE id = :id"),
                {"id": connector["id"]},
            )
        ).scalar_one()
    assert API_KEY.encode() not in sealed

    run = await sync_to_completion(client, acme.headers, connector["id"])
    assert run["status"] == "succeeded", run
    assert run["fetched"] == 4  # 1 article + 3 tickets
    assert run["upserted"] == 4
    assert run["failed"] == 0

    documents = (await client.get("/v1/documents", headers=acme.headers)).json()
    assert {d["external_id"] for d in documents} == {
        "article:31",
        "ticket:1",
        "ticket:2",
        "ticket:3",
    }
    chunk_total = sum(d["chunk_count"] for d in documents)
    assert await state.vectors.count(acme.company_id) == chunk_total
    blobs = TenantBlobs(state.blobs, acme.company_id)
    assert len([k async for k in blobs.list_documents("freshdesk")]) == 4
    ticket = next(d for d in documents if d["external_id"] == "ticket:1")
    detail = (await client.get(f"/v1/documents/{ticket['id']}", headers=acme.headers)).json()
    # The private note is kept, for agents, marked internal and out of the public body.
    assert "firmware team" not in detail["body"]
    assert detail["has_internal"] is True
    assert any("firmware team" in note["text"] for note in detail["internal_notes"])
    assert all(note["internal"] for note in detail["internal_notes"])

    company = (await client.get("/v1/company", headers=acme.headers)).json()["company"]
    assert company["knowledge_generation"] == 1

    # A second sync changes nothing and does not bump the knowledge generation.
    again = await sync_to_completion(client, acme.headers, connector["id"])
    assert again["status"] == "succeeded"
    assert again["upserted"] == 0
    company = (await client.get("/v1/company", headers=acme.headers)).json()["company"]
    assert company["knowledge_generation"] == 1

    # Another company: nothing in any store, and no way to reach acme's items.
    assert (await client.get("/v1/documents", headers=globex.headers)).json() == []
    assert (await client.get("/v1/connectors", headers=globex.headers)).json() == []
    for method, path in [
        ("GET", f"/v1/connectors/{connector['id']}"),
        ("POST", f"/v1/connectors/{connector['id']}/sync"),
        ("PATCH", f"/v1/connectors/{connector['id']}"),
        ("DELETE", f"/v1/connectors/{connector['id']}"),
        ("GET", f"/v1/documents/{ticket['id']}"),
        ("DELETE", f"/v1/documents/{ticket['id']}"),
        ("GET", f"/v1/sync-runs/{run['id']}"),
    ]:
        kwargs: dict[str, Any] = {"json": {"name": "stolen"}} if method == "PATCH" else {}
        response = await client.request(method, path, headers=globex.headers, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
    assert (
        await client.get(f"/v1/connectors/{connector['id']}/sync-runs", headers=globex.headers)
    ).json() == []
    assert await state.vectors.count(globex.company_id) == 0
    globex_blobs = TenantBlobs(state.blobs, globex.company_id)
    assert [k async for k in globex_blobs.list_documents("freshdesk")] == []
    # acme's data is intact after globex's attempts.
    assert len((await client.get("/v1/documents", headers=acme.headers)).json()) == 4


async def test_sync_run_counts_what_was_left_out_and_attachments(
    client: httpx.AsyncClient, freshdesk: FakeFreshdesk, make_company: MakeCompany
) -> None:
    """A draft article and an image are not indexed, and the run says so; a text attachment
    is indexed with its ticket and cited as its attachment."""
    draft = {**freshdesk.articles[21][0], "id": 32, "title": "Draft: new router", "status": 1}
    freshdesk.articles[21].append(draft)
    freshdesk.tickets[0]["attachments"] = [
        freshdesk.attach("router.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 not really a jpeg", 1),
        freshdesk.attach(
            "router-log.txt", "text/plain", b"WAN link flapping every 90 s; DHCP renew failed", 2
        ),
    ]
    acme, globex = await make_company("counts"), await make_company("counts")
    connector = (await client.post("/v1/connectors", headers=acme.headers, json=CONNECTOR)).json()
    run = await sync_to_completion(client, acme.headers, connector["id"])
    assert run["status"] == "succeeded", run
    assert run["counts"] == {
        "skipped.draft_article": 1,
        "attachments_indexed": 1,
        "attachments_skipped.image": 1,
    }
    listed = (
        await client.get(f"/v1/connectors/{connector['id']}/sync-runs", headers=acme.headers)
    ).json()
    assert listed[0]["counts"] == run["counts"]

    documents = (await client.get("/v1/documents", headers=acme.headers)).json()
    ticket = next(d for d in documents if d["external_id"] == "ticket:1")
    detail = (await client.get(f"/v1/documents/{ticket['id']}", headers=acme.headers)).json()
    assert "DHCP renew failed" in detail["body"]
    outcomes = {a["name"]: a["outcome"] for a in detail["metadata"]["attachments"]}
    assert outcomes == {"router.jpg": "image", "router-log.txt": "indexed"}
    # The other company sees neither the run nor its counts.
    response = await client.get(f"/v1/sync-runs/{run['id']}", headers=globex.headers)
    assert response.status_code == 404


async def test_erasure_and_connector_removal_reach_every_store(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany
) -> None:
    state: Stack = app.state.helpdesk
    acme = await make_company("erase")
    connector = (await client.post("/v1/connectors", headers=acme.headers, json=CONNECTOR)).json()
    await sync_to_completion(client, acme.headers, connector["id"])
    before = await state.vectors.count(acme.company_id)

    erased = await client.post(
        "/v1/privacy/erase-requester", headers=acme.headers, json={"requester": "alice@example.org"}
    )
    assert erased.status_code == 200
    assert erased.json()["deleted_documents"] == 2
    assert erased.json()["deleted_interactions"] == 0
    remaining = (await client.get("/v1/documents", headers=acme.headers)).json()
    assert {d["external_id"] for d in remaining} == {"article:31", "ticket:2"}
    assert 0 < await state.vectors.count(acme.company_id) < before
    audit = (await client.get("/v1/audit-log", headers=acme.headers)).json()
    assert audit[0]["action"] == "privacy.erase_requester"

    deleted = await client.delete(f"/v1/connectors/{connector['id']}", headers=acme.headers)
    assert deleted.status_code == 204
    assert (await client.get("/v1/documents", headers=acme.headers)).json() == []
    assert await state.vectors.count(acme.company_id) == 0
    blobs = TenantBlobs(state.blobs, acme.company_id)
    assert [k async for k in blobs.list_documents("freshdesk")] == []


async def test_one_sync_per_connector(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany
) -> None:
    import uuid

    from backend.errors import Conflict

    state: Stack = app.state.helpdesk
    acme = await make_company("once")
    connector = (await client.post("/v1/connectors", headers=acme.headers, json=CONNECTOR)).json()
    first = await state.sync.request_sync(
        acme.company_id, uuid.UUID(connector["id"]), trigger="manual"
    )
    with pytest.raises(Conflict):
        await state.sync.request_sync(acme.company_id, uuid.UUID(connector["id"]), trigger="manual")
    response = await client.post(f"/v1/connectors/{connector['id']}/sync", headers=acme.headers)
    assert response.status_code == 409
    assert response.json()["error"] == "sync_in_progress"
    finished = await state.sync.run(acme.company_id, first.id)
    assert finished.status == "succeeded"


async def test_scheduler_enqueues_due_connectors(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany
) -> None:
    from backend.ingest.jobs import SyncScheduler

    state: Stack = app.state.helpdesk
    acme = await make_company("sched")
    body = {**CONNECTOR, "schedule_minutes": 60}
    connector = (await client.post("/v1/connectors", headers=acme.headers, json=body)).json()
    scheduler = SyncScheduler(state.database, state.jobs, state.clock)
    assert await scheduler.tick() >= 1
    runs = []
    for _ in range(600):
        runs = (
            await client.get(f"/v1/connectors/{connector['id']}/sync-runs", headers=acme.headers)
        ).json()
        if runs and runs[0]["status"] in {"succeeded", "failed"}:
            break
        await asyncio.sleep(0.1)
    assert runs[0]["trigger"] == "scheduled"
    assert runs[0]["status"] == "succeeded"
    # Just synced: not due again for an hour.
    runs_before = len(runs)
    await scheduler.tick()
    runs = (
        await client.get(f"/v1/connectors/{connector['id']}/sync-runs", headers=acme.headers)
    ).json()
    assert len(runs) == runs_before
