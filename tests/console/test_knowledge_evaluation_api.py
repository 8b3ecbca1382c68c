"""The console's knowledge and insight calls (issue 16): re-index one document or every
document of the company, and read and compare evaluation runs — for one company only, and
not for an agent or a customer-audience widget token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from backend.blobs import TenantBlobs
from backend.evaluation import EvalStore
from backend.evaluation.runner import CaseResult, EvalRun
from backend.stack import Stack
from tests.api.test_assistant_api import ACME_KNOWLEDGE, sync_file, write_jsonl
from tests.conftest import CompanyWithKey
from tests.console.conftest import SignIn

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


async def _customer_token(client: httpx.AsyncClient, company: CompanyWithKey) -> dict[str, str]:
    minted = await client.post(
        "/v1/widget-tokens", headers=company.headers, json={"audience": "customer"}
    )
    assert minted.status_code == 201, minted.text
    return {"Authorization": f"Bearer {minted.json()['token']}", "X-Company-ID": company.company_id}


async def test_reindex_one_document_and_the_whole_company_for_that_company_only(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_company: MakeCompany,
    console_user: SignIn,
    tmp_path: Path,
) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    await sync_file(state, acme.company_id, write_jsonl(tmp_path / "a.jsonl", ACME_KNOWLEDGE))
    documents = (await client.get("/v1/documents", headers=acme.headers)).json()
    document = documents[0]
    points = await state.vectors.count(acme.company_id)

    # The console's owner re-indexes one document: its chunks come back from the stored copy.
    owner = await console_user(acme, "owner")
    one = await owner.client.post(f"/v1/documents/{document['id']}/reindex", headers=owner.unsafe)
    assert one.status_code == 200, one.text
    assert one.json() == {"document_id": document["id"], "chunks": document["chunk_count"]}
    assert await state.vectors.count(acme.company_id) == points

    # Another company's key, an agent and a customer token cannot.
    other = await client.post(f"/v1/documents/{document['id']}/reindex", headers=globex.headers)
    assert other.status_code == 404 and other.json()["error"] == "document_not_found"
    agent = await console_user(acme, "agent")
    refused = await agent.client.post(
        f"/v1/documents/{document['id']}/reindex", headers=agent.unsafe
    )
    assert refused.status_code == 403 and refused.json()["error"] == "role_forbidden"
    customer = await _customer_token(client, acme)
    for path in (f"/v1/documents/{document['id']}/reindex", "/v1/knowledge/reindex"):
        response = await client.post(path, headers=customer, json={})
        assert response.status_code == 403, response.text

    # An `admin`- or `ingest`-scoped key may re-index; an `assistant`-only key may not.
    async def key_with(scope: str) -> dict[str, str]:
        made = await owner.client.post(
            "/v1/company/api-keys", json={"name": scope, "scopes": [scope]}, headers=owner.unsafe
        )
        assert made.status_code == 201, made.text
        return {"Authorization": f"Bearer {made.json()['key']}", "X-Company-ID": acme.company_id}

    for scope, status in (("admin", 200), ("ingest", 200), ("assistant", 403)):
        response = await client.post(
            f"/v1/documents/{document['id']}/reindex", headers=await key_with(scope)
        )
        assert response.status_code == status, (scope, response.text)

    # The whole company in pages, as the operator's re-index does.
    cursor, reindexed = None, 0
    while True:
        body = {"limit": 2} | ({"after": cursor} if cursor else {})
        page = await client.post("/v1/knowledge/reindex", headers=acme.headers, json=body)
        assert page.status_code == 200, page.text
        reindexed += page.json()["reindexed"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert reindexed == len(ACME_KNOWLEDGE)
    bad = await client.post("/v1/knowledge/reindex", headers=acme.headers, json={"after": "x"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"

    # A copy stored before the re-indexable format: 409, and nothing changes.
    blobs = TenantBlobs(state.sync.parts.blobs, acme.company_id)
    await blobs.put_document(document["source"], document["external_id"], {"id": "raw only"})
    legacy = await client.post(f"/v1/documents/{document['id']}/reindex", headers=acme.headers)
    assert legacy.status_code == 409 and legacy.json()["error"] == "document_needs_refetch"
    assert await state.vectors.count(acme.company_id) == points

    # Audited with the actor; nothing in globex's log.
    log = (await client.get("/v1/audit-log", headers=acme.headers)).json()
    entries = [e for e in log if e["action"] == "knowledge.reindex"]
    assert any(e["target"] == document["id"] and e["actor"].startswith("user:") for e in entries)
    assert any(e["actor"].startswith("api_key:") for e in entries)
    globex_log = (await client.get("/v1/audit-log", headers=globex.headers)).json()
    assert not any(e["action"] == "knowledge.reindex" for e in globex_log)


def _run(company_id: str, started: datetime, answer_f1: float) -> EvalRun:
    return EvalRun(
        id=f"{started.strftime('%Y%m%dT%H%M%SZ')}-abc123",
        company_id=company_id,
        set_name="default",
        started_at=started,
        seconds=1.5,
        settings={"route": "extractive", "dense_weight": 0.5},
        metrics={"retrieval_hit_rate": 0.8, "answer_f1": answer_f1, "citation_support": 0.9},
        cases=[
            CaseResult(case_id="t-1", retrieval_hit=True, answer_f1=answer_f1, citation_support=1)
        ],
    )


async def test_evaluation_runs_are_listed_read_and_compared_for_their_company_only(
    app: FastAPI, client: httpx.AsyncClient, make_company: MakeCompany, console_user: SignIn
) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    started = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    first, second = (
        _run(acme.company_id, started, 0.6),
        _run(acme.company_id, started + timedelta(hours=1), 0.5),
    )
    store = EvalStore(state.blobs, acme.company_id)
    await store.save_run(first)
    await store.save_run(second)

    listed = await client.get("/v1/evaluation/runs", headers=acme.headers)
    assert listed.status_code == 200, listed.text
    runs = listed.json()["runs"]
    assert [r["id"] for r in runs] == [second.id, first.id]
    assert runs[0]["metrics"]["answer_f1"] == 0.5 and runs[0]["cases"] == 1
    assert runs[0]["created_at"].startswith("2026-12-01T10:00:00")

    one = await client.get(f"/v1/evaluation/runs/{first.id}", headers=acme.headers)
    assert one.status_code == 200 and one.json()["case_results"][0]["case_id"] == "t-1"

    compared = await client.get("/v1/evaluation/compare", headers=acme.headers)
    assert compared.status_code == 200, compared.text
    assert compared.json()["base"] == first.id and compared.json()["candidate"] == second.id
    assert compared.json()["deltas"]["answer_f1"] == -0.1
    assert compared.json()["regressions"] == ["answer_f1"]
    explicit = await client.get(
        "/v1/evaluation/compare",
        params={"base": second.id, "candidate": first.id},
        headers=acme.headers,
    )
    assert explicit.json()["deltas"]["answer_f1"] == 0.1

    # Globex sees none of it: an empty list, 404 for acme's run id, 400 for a comparison.
    assert (await client.get("/v1/evaluation/runs", headers=globex.headers)).json() == {"runs": []}
    theirs = await client.get(f"/v1/evaluation/runs/{first.id}", headers=globex.headers)
    assert theirs.status_code == 404 and theirs.json()["error"] == "eval_run_not_found"
    guessed = await client.get(
        "/v1/evaluation/compare",
        params={"base": first.id, "candidate": second.id},
        headers=globex.headers,
    )
    assert guessed.status_code == 404
    bad_id = await client.get("/v1/evaluation/runs/..%2Fx", headers=acme.headers)
    assert bad_id.status_code in (404, 422)

    # Agents and customer tokens do not read evaluation runs.
    agent = await console_user(acme, "agent")
    assert (await agent.client.get("/v1/evaluation/runs")).status_code == 403
    customer = await _customer_token(client, acme)
    assert (await client.get("/v1/evaluation/runs", headers=customer)).status_code == 403
