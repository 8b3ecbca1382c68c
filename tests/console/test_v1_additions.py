"""The /v1 endpoints the console needs (issue 16): connector kinds and the connection test
(against a replayed Freshdesk), company settings, the draft preview, sync-run progress."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from backend.egress import StaticResolver
from backend.tenancy.company_id import CompanyId
from tests.adapters.freshdesk_api import API_KEY
from tests.api.test_connectors import freshdesk_dataset
from tests.conftest import CompanyWithKey
from tests.console.conftest import SignIn

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    freshdesk = freshdesk_dataset()
    application = create_app(
        settings,
        http_transport=httpx.MockTransport(freshdesk.handle),
        egress_resolver=StaticResolver({"acme.freshdesk.com": "127.0.0.1"}),
    )
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def test_connector_kinds_and_connection_test(
    make_company: MakeCompany, console_user: SignIn
) -> None:
    owner = await console_user(await make_company(), "owner")
    kinds = await owner.client.get("/v1/connectors/kinds")
    assert kinds.status_code == 200, kinds.text
    by_kind = {k["kind"]: k for k in kinds.json()}
    assert {"freshdesk", "servicenow", "zendesk", "google_business", "trustpilot"} <= set(by_kind)
    freshdesk = by_kind["freshdesk"]
    assert freshdesk["title"] == "Freshdesk"
    assert freshdesk["secret_fields"] == ["api_key"]
    properties = freshdesk["settings_schema"]["properties"]
    assert {"domain", "api_key"} <= set(properties)
    assert properties["api_key"].get("writeOnly") is True
    assert {"domain", "api_key"} <= set(freshdesk["settings_schema"]["required"])
    assert by_kind["article_folder"]["operator_managed"] is True

    good = await owner.client.post(
        "/v1/connectors/test",
        json={
            "kind": "freshdesk",
            "settings": {"domain": "acme.freshdesk.com", "api_key": API_KEY},
        },
        headers=owner.unsafe,
    )
    assert good.status_code == 200, good.text
    assert good.json()["ok"] is True
    wrong = await owner.client.post(
        "/v1/connectors/test",
        json={"kind": "freshdesk", "settings": {"domain": "acme.freshdesk.com", "api_key": "nope"}},
        headers=owner.unsafe,
    )
    assert wrong.status_code == 200
    assert wrong.json()["ok"] is False and "401" in wrong.json()["detail"]
    assert "nope" not in wrong.text
    refused = await owner.client.post(
        "/v1/connectors/test",
        json={"kind": "freshdesk", "settings": {"domain": "evil.example.com", "api_key": "k"}},
        headers=owner.unsafe,
    )
    assert refused.status_code == 400
    assert refused.json()["error"] in {"egress_refused", "invalid_connector_settings"}
    invalid = await owner.client.post(
        "/v1/connectors/test", json={"kind": "freshdesk", "settings": {}}, headers=owner.unsafe
    )
    assert invalid.status_code == 400 and invalid.json()["error"] == "invalid_connector_settings"
    # Nothing was saved.
    assert (await owner.client.get("/v1/connectors")).json() == []


async def test_settings_round_trip_and_isolation(
    make_company: MakeCompany, console_user: SignIn, client: httpx.AsyncClient
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    owner = await console_user(acme, "owner")
    ticket = {"ticket": {"subject": "Reset", "description": "I cannot reset my password."}}
    before = await client.post("/v1/draft-reply", json=ticket, headers=acme.headers)
    assert before.status_code == 200 and "Howdy" not in before.json()["answer"]
    changed = await owner.client.patch(
        "/v1/company/settings",
        json={
            "tone": {"greeting": "Howdy {name},", "sign_off": "Cheers,"},
            "languages": ["en", "ko"],
            "pii_redaction": True,
            "widget_origins": ["https://support.acme.example"],
            "audiences": ["agent", "customer"],
            "llm": {"route": "default", "monthly_budget_usd": 50},
        },
        headers=owner.unsafe,
    )
    assert changed.status_code == 200, changed.text
    read = (await owner.client.get("/v1/company/settings")).json()
    assert read["tone"]["greeting"] == "Howdy {name},"
    assert read["languages"] == ["en", "ko"] and read["pii_redaction"] is True
    assert read["llm"]["monthly_budget_usd"] == 50
    # The draft cached before the change is not served with the old tone.
    after = await client.post("/v1/draft-reply", json=ticket, headers=acme.headers)
    assert after.status_code == 200 and "Howdy" in after.json()["answer"], after.text
    cleared = await owner.client.patch(
        "/v1/company/settings", json={"pii_redaction": None}, headers=owner.unsafe
    )
    assert cleared.json()["pii_redaction"] is None
    assert cleared.json()["languages"] == ["en", "ko"]
    for bad in (
        {"widget_origins": ["javascript:alert(1)"]},
        {"unknown": 1},
        {"languages": ["x" * 50]},
    ):
        response = await owner.client.patch("/v1/company/settings", json=bad, headers=owner.unsafe)
        assert response.status_code == 422, response.text
    # Another company's settings are its own.
    theirs = (await client.get("/v1/company/settings", headers=globex.headers)).json()
    assert theirs["tone"] is None and theirs["languages"] is None


async def test_preview_uses_unsaved_settings_and_records_nothing(
    make_company: MakeCompany, console_user: SignIn
) -> None:
    owner = await console_user(await make_company(), "owner")
    ticket = {"subject": "Password reset", "description": "I cannot reset my password."}
    plain = await owner.client.post(
        "/v1/assistant/preview", json={"ticket": ticket}, headers=owner.unsafe
    )
    assert plain.status_code == 200, plain.text
    assert plain.json()["interaction_id"] is None and plain.json()["cached"] is False
    styled = await owner.client.post(
        "/v1/assistant/preview",
        json={
            "ticket": ticket,
            "settings": {"tone": {"greeting": "Ahoy there,", "sign_off": "Fair winds,"}},
        },
        headers=owner.unsafe,
    )
    assert styled.status_code == 200, styled.text
    assert "Ahoy there," in styled.json()["answer"]
    assert "Fair winds," in styled.json()["answer"]
    assert "Ahoy there," not in plain.json()["answer"]
    # Nothing saved, nothing recorded.
    assert (await owner.client.get("/v1/company/settings")).json()["tone"] is None
    assert (await owner.client.get("/v1/interactions")).json() == []


async def test_sync_run_progress_fields(
    make_company: MakeCompany, console_user: SignIn, app: FastAPI, tmp_path: Path
) -> None:
    company = await make_company()
    owner = await console_user(company, "owner")
    state = app.state.helpdesk
    folder = state.settings.import_root / f"kb-{company.company_id}"
    folder.mkdir(parents=True)
    for n in range(3):
        (folder / f"article-{n}.md").write_text(f"# Article {n}\n" + "Restart the router. " * 40)
    async with state.for_tenant(CompanyId(company.company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="article_folder",
            name="KB",
            settings={"root": str(folder)},
            credentials={},
            schedule_minutes=None,
            actor="test",
            allow_file_platforms=True,
        )
    run = await state.sync.request_sync(company.company_id, connector.id, trigger="manual")
    await state.sync.run(company.company_id, run.id)
    shown = await owner.client.get(f"/v1/sync-runs/{run.id}")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["status"] == "succeeded"
    assert body["documents"] == 3
    assert body["chunks"] >= 3
    assert body["chunks_per_second"] is None or body["chunks_per_second"] > 0
    assert body["eta_seconds"] == 0
    assert body["errors"] == []
    listed = (await owner.client.get(f"/v1/connectors/{connector.id}/sync-runs")).json()
    assert listed[0]["chunks"] == body["chunks"]
