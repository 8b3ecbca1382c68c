"""Abuse controls at the API: plans and rate limits, the request edge (body limit, NUL
characters), the 500s that became 4xx, per-company CORS and the metrics endpoint."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app import create_app
from backend.clock import SystemClock
from backend.config import Settings
from backend.db.provisioning import DatabaseUrls
from backend.db.session import Database
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from backend.tenancy.plans import PlanLimits, PlanService, RateLimited, build_limiter_storage
from backend.tenancy.scope import open_rows
from tests.cluster_fixtures import RedisClusterInfo
from tests.conftest import CompanyWithKey
from tests.live_server import serve_on_loopback

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]

REDIS_URL = "redis://127.0.0.1:6379/14"


async def set_plan(
    client: httpx.AsyncClient, admin: dict[str, str], company_id: str, **limits: int | None
) -> httpx.Response:
    response = await client.put(f"/admin/companies/{company_id}/plan", headers=admin, json=limits)
    assert response.status_code == 200, response.text
    return response


# --- plans ---------------------------------------------------------------------------------


@pytest.fixture
async def redis_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with Redis configured: plan counters shared by every process, in Redis."""
    application = create_app(settings.model_copy(update={"redis_url": REDIS_URL}))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@pytest.fixture
async def redis_client(redis_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=redis_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_rate_limit_per_company_in_redis_under_the_company_hash_tag(
    redis_client: httpx.AsyncClient,
    make_company: MakeCompany,
    admin_headers: dict[str, str],
) -> None:
    acme, globex = await make_company("rl"), await make_company("rl")
    plan = await set_plan(redis_client, admin_headers, acme.company_id, requests_per_minute=3)
    assert plan.json()["effective"]["requests_per_minute"] == 3
    assert plan.json()["stored"] == {"requests_per_minute": 3}

    statuses = [
        (await redis_client.get("/v1/company", headers=acme.headers)).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    refused = await redis_client.get("/v1/company", headers=acme.headers)
    assert refused.json()["error"] == "rate_limited"
    assert "3 requests per minute" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another company's budget is its own.
    assert (await redis_client.get("/v1/company", headers=globex.headers)).status_code == 200

    keys = redis.Redis.from_url(REDIS_URL).keys(f"hd:{{{acme.company_id}}}:plan/*")
    assert keys, "the counter lives under the company's hash tag"
    assert all(k.decode().startswith(f"hd:{{{acme.company_id}}}:") for k in keys)


async def test_monthly_assistant_calls_and_usage(
    client: httpx.AsyncClient, make_company: MakeCompany, admin_headers: dict[str, str]
) -> None:
    acme, globex = await make_company("quota"), await make_company("quota")
    await set_plan(client, admin_headers, acme.company_id, assistant_calls_per_month=2)
    question = {"question": "How do I reset my password?"}
    answers = [
        await client.post("/v1/answer", headers=acme.headers, json=question) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"] == "quota_exceeded"
    assert int(answers[2].headers["retry-after"]) >= 1
    streamed = await client.post("/v1/answer/stream", headers=acme.headers, json=question)
    assert streamed.status_code == 429  # refused before the stream starts
    # A request that fails validation is not counted; the other company is unaffected.
    assert (await client.post("/v1/answer", headers=globex.headers, json={})).status_code == 422
    assert (
        await client.post("/v1/answer", headers=globex.headers, json=question)
    ).status_code == 200

    usage = (await client.get("/v1/usage", headers=acme.headers)).json()
    assert usage["assistant_calls"]["limit"] == 2
    assert usage["assistant_calls"]["used"] == 2
    assert usage["plan"]["assistant_calls_per_month"] == 2
    assert usage["requests_per_minute"]["limit"] == 600  # the service default
    assert usage["requests_per_minute"]["used"] >= 5
    assert usage["connectors"] == {"limit": 25, "used": 0}  # the default plan's
    other = (await client.get("/v1/usage", headers=globex.headers)).json()
    assert other["assistant_calls"]["used"] == 1
    assert other["assistant_calls"]["limit"] is None

    token = (await client.post("/v1/widget-tokens", headers=acme.headers, json={})).json()
    widget = {"Authorization": f"Bearer {token['token']}", "X-Company-ID": acme.company_id}
    assert (await client.get("/v1/usage", headers=widget)).status_code == 403


async def test_connector_and_document_limits(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_company: MakeCompany,
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    acme = await make_company("limits")
    await set_plan(client, admin_headers, acme.company_id, connectors=1, documents=2)
    body = {
        "platform": "freshdesk",
        "name": "Freshdesk",
        "settings": {"domain": "acme.freshdesk.com"},
        "credentials": {"api_key": "k"},
    }
    first = await client.post("/v1/connectors", headers=acme.headers, json=body)
    assert first.status_code == 201, first.text
    second = await client.post("/v1/connectors", headers=acme.headers, json=body)
    assert second.status_code == 409
    assert second.json()["error"] == "plan_limit_connectors"

    from backend.ingest.operator import ensure_connector

    state: Stack = app.state.helpdesk
    export = tmp_path / "kb.jsonl"
    export.write_text(
        "".join(
            json.dumps({"id": f"kb-{i}", "title": f"Article {i}", "body": f"Text number {i}."})
            + "\n"
            for i in range(4)
        )
    )
    connector_id = await ensure_connector(
        state, acme.company_id, platform="file_export", name="kb", settings={"path": str(export)}
    )
    run = await state.sync.request_sync(acme.company_id, connector_id, trigger="manual")
    finished = await state.sync.run(acme.company_id, run.id)
    assert finished.upserted == 2
    assert finished.failed == 2
    assert any(e.get("error") == "plan_limit_documents" for e in finished.errors)
    usage = (await client.get("/v1/usage", headers=acme.headers)).json()
    assert usage["documents"] == {"limit": 2, "used": 2}


async def test_document_limit_holds_with_pages_planned_ahead_of_writes(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_company: MakeCompany,
    admin_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    # One record per page: a sync plans later pages while earlier ones are still being
    # embedded and written, so the room counted from written rows alone would be handed
    # out again to every page in flight.
    acme = await make_company("limits-paged")
    await set_plan(client, admin_headers, acme.company_id, documents=2)
    from backend.ingest.operator import ensure_connector

    state: Stack = app.state.helpdesk
    export = tmp_path / "kb.jsonl"
    export.write_text(
        "".join(
            json.dumps({"id": f"kb-{i}", "title": f"Article {i}", "body": f"Text number {i}."})
            + "\n"
            for i in range(6)
        )
    )
    connector_id = await ensure_connector(
        state,
        acme.company_id,
        platform="file_export",
        name="kb",
        settings={"path": str(export), "batch_size": 1},
    )
    run = await state.sync.request_sync(acme.company_id, connector_id, trigger="manual")
    finished = await state.sync.run(acme.company_id, run.id)
    assert (finished.upserted, finished.failed) == (2, 4)
    usage = (await client.get("/v1/usage", headers=acme.headers)).json()
    assert usage["documents"] == {"limit": 2, "used": 2}


async def test_plans_are_admin_only_and_validated(
    client: httpx.AsyncClient, make_company: MakeCompany, admin_headers: dict[str, str]
) -> None:
    acme = await make_company("plan")
    url = f"/admin/companies/{acme.company_id}/plan"
    assert (await client.put(url, headers=acme.headers, json={})).status_code == 401
    bad = await client.put(url, headers=admin_headers, json={"requests_per_minute": 0})
    assert bad.status_code == 422
    unknown = await client.put(url, headers=admin_headers, json={"gpus": 3})
    assert unknown.status_code == 422
    missing = await client.put("/admin/companies/no-such-co/plan", headers=admin_headers, json={})
    assert missing.status_code == 404
    unlimited = await set_plan(client, admin_headers, acme.company_id, requests_per_minute=None)
    assert unlimited.json()["effective"]["requests_per_minute"] is None
    shown = (await client.get(url, headers=admin_headers)).json()
    assert shown["stored"] == {"requests_per_minute": None}
    audit = (await client.get("/v1/audit-log", headers=acme.headers)).json()
    assert any(e["action"] == "company.plan" for e in audit)


# --- the request edge ----------------------------------------------------------------------


async def test_oversized_bodies_are_refused_before_authentication(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    limit = settings.max_request_body_bytes
    declared = await client.post(
        "/v1/draft-reply",
        content=b"{" + b" " * limit + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert declared.status_code == 413  # not 401: nothing was parsed or authenticated
    assert declared.json()["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = await client.post(
        "/v1/draft-reply", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "payload_too_large"


async def test_nul_characters_are_refused_at_the_edge(
    client: httpx.AsyncClient, make_company: MakeCompany, admin_headers: dict[str, str]
) -> None:
    acme = await make_company("nul")
    cases = [
        client.post("/v1/answer", headers=acme.headers, json={"question": "refund\u0000?"}),
        client.post(
            "/admin/companies", headers=admin_headers, json={"company_id": "x", "name": "A\u0000"}
        ),
        client.post(
            "/admin/companies",
            headers=admin_headers,
            json={"company_id": "nul-settings", "name": "A", "settings": {"k\u0000": 1}},
        ),
        client.get("/v1/interactions?task=a%00b", headers=acme.headers),
        client.post(
            "/v1/answer",
            headers={**acme.headers, "Content-Type": "application/json"},
            content=b'{"question": "a\x00b"}',
        ),
    ]
    for response in await asyncio.gather(*cases):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "nul_character"
    # An escaped backslash before "u0000" is the text \u0000, which is fine.
    literal = await client.post(
        "/v1/answer", headers=acme.headers, json={"question": "what is \\u0000 in JSON?"}
    )
    assert literal.status_code == 200


# --- the listed 500s ---------------------------------------------------------------------


async def test_former_server_errors_are_client_errors(
    client: httpx.AsyncClient, make_company: MakeCompany, admin_headers: dict[str, str]
) -> None:
    acme = await make_company("fuzz")
    non_ascii = await client.get(
        "/v1/company",
        headers={"Authorization": "Bearer hdw_é.x".encode(), "X-Company-ID": acme.company_id},
    )
    assert non_ascii.status_code == 401
    assert non_ascii.json()["error"] == "invalid_widget_token"

    reversed_dates = await client.post(
        "/v1/search",
        headers=acme.headers,
        json={
            "query": "refund",
            "filters": {"updated_from": "2026-05-01T00:00:00Z", "updated_to": "2026-01-01"},
        },
    )
    assert reversed_dates.status_code == 422
    mixed_zones = await client.post(
        "/v1/search",
        headers=acme.headers,
        json={
            "query": "refund",
            "filters": {"updated_from": "2026-01-01T00:00:00", "updated_to": "2026-05-01T00:00Z"},
        },
    )
    assert mixed_zones.status_code == 200

    review = await client.post(
        "/v1/review-reply",
        headers=acme.headers,
        json={"review": {"text": "Great", "rating": 9, "rating_scale": 5}},
    )
    assert review.status_code == 422
    assert "rating_scale" in json.dumps(review.json()["detail"])

    for url, headers in (
        ("/v1/documents", acme.headers),
        ("/v1/interactions", acme.headers),
        ("/admin/companies", admin_headers),
    ):
        huge = await client.get(f"{url}?offset={2**63}", headers=headers)
        assert huge.status_code == 422, url


async def test_a_stored_message_longer_than_the_input_limit_is_served_cut(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany, tmp_path: Path
) -> None:
    from backend.ingest.operator import ensure_connector

    acme = await make_company("long")
    state: Stack = app.state.helpdesk
    long_text = "The router keeps restarting. " * 2500  # ~72k characters
    export = tmp_path / "tickets.jsonl"
    ticket = {
        "id": "T-77",
        "type": "ticket",
        "subject": "Router restarts",
        "description": "It restarts every hour.",
        "status": "open",
        "conversation": [{"author_role": "customer", "text": long_text}],
    }
    export.write_text(json.dumps(ticket) + "\n")
    connector_id = await ensure_connector(
        state, acme.company_id, platform="file_export", name="t", settings={"path": str(export)}
    )
    run = await state.sync.request_sync(acme.company_id, connector_id, trigger="manual")
    assert (await state.sync.run(acme.company_id, run.id)).status == "succeeded"

    found = await client.get("/v1/tickets/T-77", headers=acme.headers)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["truncated"] is True
    message = next(m for m in body["conversation"] if m["truncated"])
    assert len(message["text"]) == 50_000
    # What it returns is a valid draft request as it is.
    drafted = await client.post(
        "/v1/draft-reply",
        headers=acme.headers,
        json={"ticket": {k: v for k, v in body.items() if k != "truncated"}},
    )
    assert drafted.status_code == 200, drafted.text


# --- CORS and metrics ---------------------------------------------------------------------


async def test_cors_follows_each_companys_widget_origins(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_company: MakeCompany
) -> None:
    acme = await make_company("cors")
    created = await client.post(
        "/admin/companies",
        headers=admin_headers,
        json={
            "name": "Origin Co",
            "helpdesk_domain": f"{acme.company_id}x.freshdesk.com",
            "settings": {"widget_origins": ["https://support.origin-co.example"]},
        },
    )
    assert created.status_code == 201, created.text
    origin_co = created.json()["company_id"]
    key = (
        await client.post(
            f"/admin/companies/{origin_co}/api-keys", headers=admin_headers, json={"name": "w"}
        )
    ).json()["api_key"]
    headers = {"Authorization": f"Bearer {key}", "X-Company-ID": origin_co}

    for origin in ("https://support.origin-co.example", f"https://{origin_co}.freshdesk.com"):
        own = await client.get("/v1/company", headers={**headers, "Origin": origin})
        assert own.headers["access-control-allow-origin"] == origin
        assert "origin" in own.headers["vary"].lower()
        preflight = await client.options(
            "/v1/answer",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,x-company-id,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin

    # Another company's page may not read this company's responses, nor the reverse.
    other = await client.get(
        "/v1/company", headers={**acme.headers, "Origin": "https://support.origin-co.example"}
    )
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers
    stranger = await client.options(
        "/v1/answer",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert stranger.status_code == 403
    assert "access-control-allow-origin" not in stranger.headers


async def test_metrics_on_a_separate_bind(settings: Settings) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configured = settings.model_copy(
        update={"metrics_token": None, "metrics_bind": f"127.0.0.1:{port}"}
    )
    app = create_app(configured)
    async with serve_on_loopback(app) as base, httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/metrics")).status_code == 404  # not on the API port
        scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert "helpdesk_http_requests_total" in scraped.text


async def test_a_dead_limiter_store_lets_requests_through_quickly(
    database: Database, make_company: MakeCompany
) -> None:
    acme = await make_company("dead")
    plans = PlanService(
        database,
        build_limiter_storage("redis://127.0.0.1:1/0", None),  # nothing listens there
        defaults=PlanLimits(requests_per_minute=1, assistant_calls_per_month=1),
        clock=SystemClock(),
    )
    for _ in range(3):  # over both limits: the outage lets them through, never a 500
        await plans.hit_request(acme.company_id)
        await plans.hit_assistant_call(acme.company_id)
    started = time.perf_counter()
    for _ in range(20):
        await plans.hit_request(acme.company_id)
    # After the first failure the store is skipped for a while, not retried per request.
    assert time.perf_counter() - started < 0.5
    async with open_rows(database, CompanyId(acme.company_id)) as rows:
        usage = await plans.usage(rows)
    assert usage["requests_per_minute"] == {"limit": 1, "used": None}


async def test_plan_counters_on_a_redis_cluster_share_the_companys_slot(
    database: Database, make_company: MakeCompany, redis_cluster: RedisClusterInfo
) -> None:
    from redis.cluster import key_slot

    acme = await make_company("cluster")
    plans = PlanService(
        database,
        build_limiter_storage(None, redis_cluster.nodes_setting),
        defaults=PlanLimits(requests_per_minute=2, assistant_calls_per_month=5),
        clock=SystemClock(),
    )
    await plans.hit_request(acme.company_id)
    await plans.hit_request(acme.company_id)
    with pytest.raises(RateLimited):
        await plans.hit_request(acme.company_id)
    await plans.hit_assistant_call(acme.company_id)
    async with open_rows(database, CompanyId(acme.company_id)) as rows:
        usage = await plans.usage(rows)
    assert usage["requests_per_minute"]["used"] == 2
    assert usage["assistant_calls"]["used"] == 1

    company_slot = key_slot(f"hd:{{{acme.company_id}}}:answers:x".encode())
    found = []
    for port in redis_cluster.ports:
        node = redis.Redis(host=redis_cluster.host, port=port)
        try:
            found += node.keys(f"hd:{{{acme.company_id}}}:plan/*")
        finally:
            node.close()
    assert len(found) == 2  # the request window and the month's count
    assert {key_slot(k) for k in found} == {company_slot}


async def test_cli_sets_and_shows_a_plan(
    database_urls: DatabaseUrls,
    tmp_path: Path,
    make_company: MakeCompany,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
) -> None:
    import os
    import subprocess
    import sys

    acme = await make_company("cliplan")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env |= {
        "HELPDESK_DATABASE_URL": database_urls.runtime_url,
        # A data dir of its own: the running app owns the embedded vector engine in its own.
        "HELPDESK_DATA_DIR": str(tmp_path / "cli-data"),
        "HELPDESK_AUTO_MIGRATE": "false",
        "HELPDESK_LOG_LEVEL": "WARNING",
    }
    base = [sys.executable, "-m", "backend.cli", "plans"]
    set_plan_cmd = [
        *base, "set", acme.company_id, "--requests-per-minute", "120", "--documents", "unlimited",
    ]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, set_plan_cmd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "120" in done.stdout and "unlimited" in done.stdout
    stored = (
        await client.get(f"/admin/companies/{acme.company_id}/plan", headers=admin_headers)
    ).json()["stored"]
    assert stored == {"requests_per_minute": 120, "documents": None}
    bad = await asyncio.to_thread(
        subprocess.run,
        [*base, "set", acme.company_id, "--connectors", "many"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0
    shown = await asyncio.to_thread(
        subprocess.run,
        [*base, "show", acme.company_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    assert "requests_per_minute" in shown.stdout and "(default)" in shown.stdout


def test_plan_defaults_can_be_lifted_from_the_environment() -> None:
    lifted = Settings(
        _env_file=None,  # type: ignore[call-arg]
        plan_default_requests_per_minute="unlimited",  # type: ignore[arg-type]
        plan_default_connectors="3",  # type: ignore[arg-type]
    )
    assert lifted.plan_default_requests_per_minute is None
    assert lifted.plan_default_connectors == 3
    assert Settings(_env_file=None).plan_default_requests_per_minute == 600  # type: ignore[call-arg]


async def test_oversized_bodies_over_real_sockets(settings: Settings) -> None:
    """Through uvicorn: a declared oversize body is answered 413 before it is read; a
    chunked one is cut off once past the limit."""
    app = create_app(settings)
    async with serve_on_loopback(app) as base, httpx.AsyncClient(base_url=base) as http:
        declared = await http.post(
            "/v1/answer",
            content=b" " * (settings.max_request_body_bytes + 1),
            headers={"Content-Type": "application/json"},
        )
        assert declared.status_code == 413
        assert declared.json()["error"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(settings.max_request_body_bytes // 65536 + 4):
                yield b" " * 65536

        chunked = await http.post(
            "/v1/answer", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413
        assert chunked.json()["error"] == "payload_too_large"
        assert (await http.get("/healthz")).status_code == 200  # the server carries on
