"""Issue 11 through the API, as an attacker holding one company's own API key: file imports
are the operator's at every step, paths never leave the import root, connector settings
cannot aim the server at internal addresses, upstream bodies are never echoed, and one
company cannot create connectors without bound."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from backend.db.repositories import connectors as connector_repo
from backend.egress import StaticResolver
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from tests.api.test_connectors import sync_to_completion
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
SECRET_BODY = "INTERNAL-ONLY admin_password=hunter2"


class Sink:
    """Every upstream request that got past the policy lands here (and is recorded)."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(403, text=SECRET_BODY)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def app(settings: Settings, sink: Sink) -> AsyncIterator[FastAPI]:
    # The production egress default (no loopback); the platform name "resolves" to a public
    # address and the replay stands in for the network behind the policy.
    production_egress = settings.model_copy(
        update={"egress_allow_loopback_for_tests": False, "plan_default_connectors": 3}
    )
    application = create_app(
        production_egress,
        http_transport=httpx.MockTransport(sink),
        egress_resolver=StaticResolver({"acme.zendesk.com": "52.1.2.3"}),
    )
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


def write_export(path: Path, marker: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"id": "kb-1", "title": f"{marker} article", "body": f"{marker} private knowledge"}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")


async def test_file_imports_are_operator_only_at_every_step(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany, tmp_path: Path
) -> None:
    state: Stack = app.state.helpdesk
    acme = await make_company("files")
    export = tmp_path / "acme" / "kb.jsonl"
    write_export(export, "acme")
    async with state.for_tenant(CompanyId(acme.company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="file_export",
            name="kb",
            settings={"path": str(export)},
            credentials={},
            schedule_minutes=None,
            actor="operator",
            allow_file_platforms=True,
        )
    base = f"/v1/connectors/{connector.id}"

    # Listing and reading: the connector is visible, its server path is not.
    for response in (
        await client.get("/v1/connectors", headers=acme.headers),
        await client.get(base, headers=acme.headers),
    ):
        assert response.status_code == 200
        assert str(tmp_path) not in response.text
        assert "kb.jsonl" not in response.text
    listed = (await client.get(base, headers=acme.headers)).json()
    assert listed["operator_managed"] is True
    assert "path" not in listed["settings"]

    # Create, update (settings or anything else), sync and delete: all refused.
    created = await client.post(
        "/v1/connectors",
        headers=acme.headers,
        json={"platform": "file_export", "name": "x", "settings": {"path": "/etc/passwd"}},
    )
    assert (created.status_code, created.json()["error"]) == (400, "platform_not_allowed")
    for body in ({"settings": {"path": "/etc/passwd"}}, {"name": "renamed"}, {"enabled": False}):
        patched = await client.patch(base, headers=acme.headers, json=body)
        assert (patched.status_code, patched.json()["error"]) == (403, "operator_managed_connector")
    synced = await client.post(f"{base}/sync", headers=acme.headers)
    assert (synced.status_code, synced.json()["error"]) == (403, "operator_managed_connector")
    deleted = await client.delete(base, headers=acme.headers)
    assert (deleted.status_code, deleted.json()["error"]) == (403, "operator_managed_connector")

    # Nothing changed: the stored path is still the operator's, and nothing ran.
    async with state.database.tenant_session(acme.company_id) as session:
        stored = await connector_repo.get_connector(session, connector.id)
    assert stored is not None
    assert stored.settings["path"] == str(export.resolve())
    assert stored.name == "kb"
    runs = await client.get(f"{base}/sync-runs", headers=acme.headers)
    assert runs.json() == []


async def test_update_then_sync_never_reads_outside_the_import_root(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany, tmp_path: Path
) -> None:
    """Even a path that got into a stored connector (the API refuses it; here it is written
    straight into the row) is refused at sync time, before a byte is read."""
    state: Stack = app.state.helpdesk
    acme = await make_company("escape")
    own = tmp_path / "acme" / "kb.jsonl"
    write_export(own, "acme")
    outside = tmp_path.parent / f"{tmp_path.name}-outside" / "globex.jsonl"
    write_export(outside, "globex")  # another company's export, outside the root
    link = tmp_path / "acme" / "link.jsonl"
    os.symlink(outside, link)
    async with state.for_tenant(CompanyId(acme.company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="file_export",
            name="kb",
            settings={"path": str(own)},
            credentials={},
            schedule_minutes=None,
            actor="operator",
            allow_file_platforms=True,
        )
    escapes = [
        "/etc/passwd",  # absolute
        str(outside),  # absolute, another company's export
        "acme/../../" + f"{tmp_path.name}-outside/globex.jsonl",  # .. out of the root
        str(tmp_path / "acme" / ".." / ".." / f"{tmp_path.name}-outside" / "globex.jsonl"),
        str(link),  # a symlink inside the root pointing out of it
        "/etc/does-not-exist",  # missing: the same answer as existing
    ]
    messages = set()
    for path in escapes:
        async with state.database.tenant_session(acme.company_id) as session:
            row = await connector_repo.get_connector_for_update(session, connector.id)
            assert row is not None
            row.settings = {**row.settings, "path": path}
            row.checkpoint = None
        run = await state.sync.request_sync(acme.company_id, connector.id, trigger="operator")
        finished = await state.sync.run(acme.company_id, run.id)
        assert finished.status == "failed"
        assert finished.fetched == 0
        text = json.dumps(finished.errors)
        assert "root:" not in text and "globex" not in text and path not in text
        messages.add(text)
    assert len(messages) == 1  # one error for every refusal: no existence oracle
    documents = await client.get("/v1/documents", headers=acme.headers)
    assert documents.json() == []


async def test_ssrf_settings_are_refused_at_create_and_update(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany, sink: Sink
) -> None:
    acme = await make_company("ssrf")
    zendesk = {"platform": "zendesk", "name": "zd", "credentials": {"oauth_token": "t"}}
    attacks = [
        {**zendesk, "settings": {"subdomain": "acme", "base_url": "http://127.0.0.1:8080"}},
        {**zendesk, "settings": {"subdomain": "acme", "base_url": "https://127.0.0.1"}},
        {
            **zendesk,
            "settings": {"subdomain": "acme", "base_url": "https://acme.zendesk.com/internal?"},
        },
        {**zendesk, "settings": {"subdomain": "acme", "base_url": "https://[::ffff:a9fe:a9fe]/"}},
        {**zendesk, "settings": {"subdomain": "acme", "base_url": "https://2130706433"}},
        {**zendesk, "settings": {"subdomain": "acme", "base_url": "https://acme.zendesk.com:22"}},
        {
            **zendesk,
            "settings": {"subdomain": "acme", "base_url": "https://acme.zendesk.com@10.0.0.1"},
        },
        {
            "platform": "trustpilot",
            "name": "tp",
            "settings": {"business_unit_id": "b", "base_url": "http://169.254.169.254/latest"},
            "credentials": {"api_key": "k"},
        },
        {
            "platform": "google_business",
            "name": "g",
            "settings": {"reviews_base_url": "https://metadata.google.internal"},
            "credentials": {"access_token": "t"},
        },
        {
            "platform": "servicenow",
            "name": "sn",
            "settings": {"instance": "kubernetes.default.svc"},
            "credentials": {"username": "u", "password": "p"},
        },
        {
            "platform": "freshdesk",
            "name": "fd",
            "settings": {"domain": "metadata.google.internal"},
            "credentials": {"api_key": "k"},
        },
    ]
    for body in attacks:
        response = await client.post("/v1/connectors", headers=acme.headers, json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"] in {"egress_refused", "invalid_connector_settings"}
    assert (await client.get("/v1/connectors", headers=acme.headers)).json() == []

    good = await client.post(
        "/v1/connectors", headers=acme.headers, json={**zendesk, "settings": {"subdomain": "acme"}}
    )
    assert good.status_code == 201, good.text
    patched = await client.patch(
        f"/v1/connectors/{good.json()['id']}",
        headers=acme.headers,
        json={"settings": {"subdomain": "acme", "base_url": "https://169.254.169.254"}},
    )
    assert (patched.status_code, patched.json()["error"]) == (400, "egress_refused")
    assert (await client.get(f"/v1/connectors/{good.json()['id']}", headers=acme.headers)).json()[
        "settings"
    ]["base_url"] is None
    assert sink.seen == []  # nothing was ever sent anywhere

    # A URL already stored (written straight into the row, as an older version or a
    # shrunk allow-list would leave it) passes the same policy again when a sync uses it.
    state: Stack = app.state.helpdesk
    connector_id = uuid.UUID(good.json()["id"])
    async with state.database.tenant_session(acme.company_id) as session:
        row = await connector_repo.get_connector_for_update(session, connector_id)
        assert row is not None
        row.settings = {**row.settings, "base_url": "https://[::ffff:a9fe:a9fe]/latest"}
    run = await state.sync.request_sync(acme.company_id, connector_id, trigger="scheduled")
    finished = await state.sync.run(acme.company_id, run.id)
    assert finished.status == "failed"
    assert finished.errors == [{"message": "refused: an IP address is not a platform host"}], (
        finished.errors
    )
    assert sink.seen == []


async def test_upstream_bodies_never_reach_sync_runs(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany, sink: Sink
) -> None:
    acme = await make_company("body")
    created = await client.post(
        "/v1/connectors",
        headers=acme.headers,
        json={
            "platform": "zendesk",
            "name": "zd",
            "settings": {"subdomain": "acme", "max_attempts": 1},
            "credentials": {"oauth_token": "t"},
        },
    )
    assert created.status_code == 201, created.text
    run = await sync_to_completion(client, acme.headers, created.json()["id"])
    assert sink.seen, "the sync reached the (replayed) platform"
    assert run["status"] == "failed"
    fetched = await client.get(f"/v1/sync-runs/{run['id']}", headers=acme.headers)
    listed = await client.get(
        f"/v1/connectors/{created.json()['id']}/sync-runs", headers=acme.headers
    )
    for response in (fetched, listed):
        assert "INTERNAL-ONLY" not in response.text
        assert "hunter2" not in response.text
    assert fetched.json()["errors"][0]["message"] == "HTTP 403: forbidden"
    assert fetched.json()["errors"][0]["status_code"] == 403


async def test_a_company_has_a_bounded_number_of_connectors(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme, globex = await make_company("limit"), await make_company("limit")
    body = {
        "platform": "zendesk",
        "settings": {"subdomain": "acme"},
        "credentials": {"oauth_token": "t"},
    }
    for n in range(3):
        made = await client.post(
            "/v1/connectors", headers=acme.headers, json={**body, "name": f"zd-{n}"}
        )
        assert made.status_code == 201, made.text
    refused = await client.post(
        "/v1/connectors", headers=acme.headers, json={**body, "name": "zd-3"}
    )
    assert (refused.status_code, refused.json()["error"]) == (409, "plan_limit_connectors")
    assert len((await client.get("/v1/connectors", headers=acme.headers)).json()) == 3
    other = await client.post(
        "/v1/connectors", headers=globex.headers, json={**body, "name": "zd-0"}
    )
    assert other.status_code == 201  # the limit is per company
