"""Re-index from the object store: every document chunked and embedded again with nothing
fetched from the platform, in resumable pages, through the admin API and for one company only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from backend.api.state import AppState
from backend.blobs import TenantBlobs
from backend.cli import app as helpdesk_cli
from backend.db.provisioning import DatabaseUrls
from tests.api.test_assistant_api import ACME_KNOWLEDGE, GLOBEX_KNOWLEDGE, sync_file, write_jsonl
from tests.conftest import CompanyWithKey, new_company_id

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
PASSWORD_QUESTION = {"query": "how do I reset my password", "limit": 3}


async def test_reindex_rebuilds_vectors_from_stored_documents_in_pages_without_the_platform(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_company: MakeCompany,
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    state: AppState = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    acme_export = write_jsonl(tmp_path / "acme.jsonl", ACME_KNOWLEDGE)
    await sync_file(state, acme.company_id, acme_export)
    await sync_file(state, globex.company_id, write_jsonl(tmp_path / "g.jsonl", GLOBEX_KNOWLEDGE))
    acme_points = await state.vectors.count(acme.company_id)
    globex_points = await state.vectors.count(globex.company_id)
    assert acme_points > 0 and globex_points > 0

    # The platform is gone (the export file deleted) and the index is empty, as after a switch
    # to a new embedding model: only the object store still holds the documents.
    acme_export.unlink()
    await state.vectors.drop_company(acme.company_id)
    assert await state.vectors.count(acme.company_id) == 0
    empty = await client.post("/v1/search", headers=acme.headers, json=PASSWORD_QUESTION)
    assert empty.json()["results"] == []

    pages, cursor, reindexed = 0, None, 0
    while True:
        body = {"limit": 2} | ({"after": cursor} if cursor else {})
        response = await client.post(
            f"/admin/companies/{acme.company_id}/reindex", headers=admin_headers, json=body
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["documents"] <= 2 and page["needs_refetch"] == []
        reindexed += page["reindexed"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert reindexed == len(ACME_KNOWLEDGE)
    assert pages == len(ACME_KNOWLEDGE) // 2 + 1
    assert await state.vectors.count(acme.company_id) == acme_points
    found = await client.post("/v1/search", headers=acme.headers, json=PASSWORD_QUESTION)
    assert found.json()["results"][0]["title"] == "How to reset your password"

    # Globex's index was not touched, and the run is in acme's audit log only.
    assert await state.vectors.count(globex.company_id) == globex_points
    acme_log = await client.get(
        f"/admin/companies/{acme.company_id}/audit-log", headers=admin_headers
    )
    globex_log = await client.get(
        f"/admin/companies/{globex.company_id}/audit-log", headers=admin_headers
    )
    assert sum(e["action"] == "knowledge.reindex" for e in acme_log.json()) == pages
    assert not any(e["action"] == "knowledge.reindex" for e in globex_log.json())


async def test_documents_stored_before_the_format_are_reported_not_lost(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_company: MakeCompany,
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    state: AppState = app.state.helpdesk
    acme = await make_company("acme")
    await sync_file(state, acme.company_id, write_jsonl(tmp_path / "a.jsonl", ACME_KNOWLEDGE[:2]))
    blobs = TenantBlobs(state.sync.parts.blobs, acme.company_id)
    (source,) = await blobs.list_sources()
    stored_ids = sorted([i async for i in blobs.list_documents(source)])
    legacy_id = stored_ids[0]
    # An object written by an earlier release: the platform's raw payload only.
    await blobs.put_document(source, legacy_id, {"id": "kb-reset", "title": "raw only"})
    points = await state.vectors.count(acme.company_id)

    response = await client.post(
        f"/admin/companies/{acme.company_id}/reindex", headers=admin_headers, json={}
    )
    assert response.status_code == 200
    page = response.json()
    assert page["documents"] == 2 and page["reindexed"] == 1
    assert page["needs_refetch"] == [f"{source}:{legacy_id}"]
    assert page["next_cursor"] is None
    # Its points stay searchable until the next sync brings it back.
    assert await state.vectors.count(acme.company_id) == points


async def test_reindex_refuses_bad_input_and_credentials_other_than_the_admin_token(
    client: httpx.AsyncClient, make_company: MakeCompany, admin_headers: dict[str, str]
) -> None:
    acme = await make_company("acme")
    path = f"/admin/companies/{acme.company_id}/reindex"
    bad_cursor = await client.post(path, headers=admin_headers, json={"after": "not-a-cursor"})
    assert bad_cursor.status_code == 400 and bad_cursor.json()["error"] == "invalid_cursor"
    too_many = await client.post(path, headers=admin_headers, json={"limit": 100_000})
    assert too_many.status_code == 422 and too_many.json()["error"] == "validation_error"
    unknown = await client.post(
        "/admin/companies/no-such-company/reindex", headers=admin_headers, json={}
    )
    assert unknown.status_code == 404
    # A company's own key (and so any widget token it mints) is not an operator credential.
    as_company = await client.post(path, headers=acme.headers, json={})
    assert as_company.status_code == 401
    minted = await client.post(
        "/v1/widget-tokens", headers=acme.headers, json={"audience": "customer"}
    )
    customer = {"Authorization": f"Bearer {minted.json()['token']}"}
    assert (await client.post(path, headers=customer, json={})).status_code == 401


def test_cli_reindexes_a_company_and_prints_a_resumable_cursor(
    database_urls: DatabaseUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command reads its configuration from the environment, as an operator runs it.
    monkeypatch.setenv("HELPDESK_DATABASE_URL", database_urls.runtime_url)
    monkeypatch.setenv("HELPDESK_AUTO_MIGRATE", "false")
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HELPDESK_IMPORT_ROOT", str(tmp_path))
    monkeypatch.setenv("HELPDESK_SCHEDULER_ENABLED", "false")
    runner = CliRunner()
    company_id = new_company_id("cli")
    created = runner.invoke(helpdesk_cli, ["tenants", "create", "CLI Co", "--id", company_id])
    assert created.exit_code == 0, created.output
    export = write_jsonl(tmp_path / "kb.jsonl", ACME_KNOWLEDGE)
    imported = runner.invoke(helpdesk_cli, ["ingest", "file", str(export), "--company", company_id])
    assert imported.exit_code == 0, imported.output
    export.unlink()  # nothing is read from the source again

    result = runner.invoke(helpdesk_cli, ["knowledge", "reindex", company_id, "--page-size", "3"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "re-indexed" in line]
    assert len(lines) == 2  # 5 documents in pages of 3
    assert lines[0].startswith("3 documents, 3 re-indexed") and "cursor -" not in lines[0]
    assert lines[-1].startswith(f"{len(ACME_KNOWLEDGE)} documents, {len(ACME_KNOWLEDGE)} re")
    assert lines[-1].endswith("cursor -")

    resumed_from = lines[0].rsplit("cursor ", 1)[1]
    resumed = runner.invoke(
        helpdesk_cli, ["knowledge", "reindex", company_id, "--after", resumed_from]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "2 documents, 2 re-indexed" in resumed.output
