"""Two API replicas against the same Postgres and the same Redis: nothing that matters is
held only in one process.

Each replica is its own ``create_app`` (its own stack: connection pool, auth cache, plan
cache, rate limiter, response cache client, vector client with qdrant-client's ``:memory:``
mode so the embedded engine's one-owner lock does not apply) served by uvicorn on its own
loopback port; the test talks to them over real sockets. Proven: a key revoked through one
replica is refused by the other within ``HELPDESK_AUTH_CACHE_SECONDS``; a knowledge change
through one voids the other's cached answer (the company's cache epoch lives in Redis); a
plan's requests-per-minute is one budget across both replicas (the counters live in Redis).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from backend.api.state import AppState
from backend.app import create_app
from backend.config import Settings
from tests.api.test_assistant_api import ACME_KNOWLEDGE, sync_file, write_jsonl
from tests.conftest import CompanyWithKey
from tests.live_server import serve_on_loopback

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]

# A Redis database of this file's own; keys are per company (random ids), nothing is flushed.
REDIS_URL = "redis://127.0.0.1:6379/12"
AUTH_CACHE_SECONDS = 1.0


@dataclass
class Replica:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.helpdesk
        return state


@pytest.fixture
async def replicas(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Replica, Replica]]:
    async with AsyncExitStack() as stack:
        started = []
        for name in ("a", "b"):
            app = create_app(
                settings.model_copy(
                    update={
                        "redis_url": REDIS_URL,
                        "qdrant_url": ":memory:",
                        "auth_cache_seconds": AUTH_CACHE_SECONDS,
                        "plan_cache_seconds": AUTH_CACHE_SECONDS,
                        "data_dir": tmp_path / f"replica-{name}",
                    }
                )
            )
            base_url = await stack.enter_async_context(serve_on_loopback(app))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=60))
            started.append(Replica(app, http))
        yield started[0], started[1]


async def test_a_key_revoked_through_one_replica_is_refused_by_the_other_within_the_bound(
    replicas: tuple[Replica, Replica],
    make_company: MakeCompany,
    admin_headers: dict[str, str],
) -> None:
    a, b = replicas
    acme = await make_company("replica")
    # Both replicas have resolved (and cached) the key.
    assert (await a.http.get("/v1/company", headers=acme.headers)).status_code == 200
    assert (await b.http.get("/v1/company", headers=acme.headers)).status_code == 200
    b_resolved_at = time.monotonic()

    revoked = await a.http.post(
        f"/admin/companies/{acme.company_id}/api-keys/{acme.key_id}/revoke", headers=admin_headers
    )
    assert revoked.status_code == 200
    revoked_at = time.monotonic()
    # The replica that revoked it refuses it at once.
    refused_here = await a.http.get("/v1/company", headers=acme.headers)
    assert refused_here.status_code == 401
    assert refused_here.json()["error"] == "revoked_api_key"

    # The other refuses it once its cache entry expires: within AUTH_CACHE_SECONDS (plus
    # the time of one request on this busy machine).
    polls: list[tuple[float, int]] = []
    while True:
        asked_at = time.monotonic()
        response = await b.http.get("/v1/company", headers=acme.headers)
        refused_after = time.monotonic() - revoked_at
        polls.append((asked_at - b_resolved_at, response.status_code))
        if response.status_code == 401:
            break
        assert response.status_code == 200
        assert refused_after < AUTH_CACHE_SECONDS + 5, "the other replica kept the key"
        await asyncio.sleep(0.05)
    assert response.json()["error"] == "revoked_api_key"
    assert refused_after <= AUTH_CACHE_SECONDS + 0.5
    # The bound is real, not a shared in-process cache: while B's own entry was fresh (well
    # inside the window), B still let the revoked key through.
    fresh = [status for age, status in polls if age < AUTH_CACHE_SECONDS * 0.5]
    assert all(status == 200 for status in fresh)


async def test_rate_limits_are_one_budget_across_replicas(
    replicas: tuple[Replica, Replica],
    make_company: MakeCompany,
    admin_headers: dict[str, str],
) -> None:
    a, b = replicas
    acme, globex = await make_company("rl"), await make_company("rl")
    allowed = 4
    plan = await b.http.put(
        f"/admin/companies/{acme.company_id}/plan",
        headers=admin_headers,
        json={"requests_per_minute": allowed},
    )
    assert plan.status_code == 200
    assert plan.json()["effective"]["requests_per_minute"] == allowed

    statuses = [
        (await (a if i % 2 == 0 else b).http.get("/v1/company", headers=acme.headers)).status_code
        for i in range(allowed)
    ]
    assert statuses == [200] * allowed
    for replica in (a, b):
        refused = await replica.http.get("/v1/company", headers=acme.headers)
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
    # Another company's budget is its own, on either replica.
    assert (await a.http.get("/v1/company", headers=globex.headers)).status_code == 200
    assert (await b.http.get("/v1/company", headers=globex.headers)).status_code == 200


async def test_a_knowledge_change_through_one_replica_voids_the_others_cached_answer(
    replicas: tuple[Replica, Replica], make_company: MakeCompany, tmp_path: Path
) -> None:
    a, b = replicas
    acme, globex = await make_company("epoch"), await make_company("epoch")
    export = write_jsonl(tmp_path / "acme.jsonl", ACME_KNOWLEDGE)
    # Indexed through A (each replica's vector client is in-memory: A holds the vectors);
    # the Postgres rows and the Redis cache are the shared ones.
    await sync_file(a.state, acme.company_id, export)
    question = {"question": "What is the refund policy?"}

    first = (await a.http.post("/v1/answer", headers=acme.headers, json=question)).json()
    assert first["cached"] is False
    from_b = (await b.http.post("/v1/answer", headers=acme.headers, json=question)).json()
    assert from_b["cached"] is True  # computed by A, served by B: one cache
    assert from_b["answer"] == first["answer"]
    # Another company asking the same question gets nothing of Acme's cache.
    theirs = (await b.http.post("/v1/answer", headers=globex.headers, json=question)).json()
    assert theirs["cached"] is False
    assert theirs["answer"] != first["answer"]

    search = await a.http.post(
        "/v1/search", headers=acme.headers, json={"query": "refund policy", "limit": 5}
    )
    refund = next(r for r in search.json()["results"] if r["title"] == "Refund policy")
    deleted = await b.http.delete(f"/v1/documents/{refund['document_id']}", headers=acme.headers)
    assert deleted.status_code == 200

    after = (await a.http.post("/v1/answer", headers=acme.headers, json=question)).json()
    assert after["cached"] is False
