"""Two API replicas against the same Postgres and the same Redis: nothing that matters is
held only in one process. Two real uvicorn processes (configured by environment only) prove
revocation and the shared rate limit; two stacks in this process prove all three below,
including the shared cache epoch (which needs knowledge indexed through a replica's stack).

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
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from backend.db.provisioning import DatabaseUrls
from backend.stack import Stack
from tests.api.test_assistant_api import ACME_KNOWLEDGE, sync_file, write_jsonl
from tests.conftest import ADMIN_TOKEN, METRICS_TOKEN, CompanyWithKey
from tests.fault_servers import free_port
from tests.live_server import serve_on_loopback

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]

# A Redis database of this file's own; keys are per company (random ids), nothing is flushed.
REDIS_URL = "redis://127.0.0.1:6379/12"
AUTH_CACHE_SECONDS = 1.0
_REPO_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class Replica:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def state(self) -> Stack:
        state: Stack = self.app.state.helpdesk
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


# --- two real processes ----------------------------------------------------------------------


def _start_replica_process(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (cwd / f"replica-{port}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "backend.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=env,
        cwd=cwd,  # no .env file there: the environment is the whole configuration
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


async def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"replica process exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code < 500:
                    return
            await asyncio.sleep(0.2)
    pytest.fail("replica process did not start")


@pytest.fixture
async def replica_processes(
    database_urls: DatabaseUrls, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")},
        "PYTHONPATH": _REPO_ROOT,
        "HELPDESK_ENVIRONMENT": "test",
        "HELPDESK_DATABASE_URL": database_urls.runtime_url,
        "HELPDESK_AUTO_MIGRATE": "false",
        "HELPDESK_REDIS_URL": REDIS_URL,
        "HELPDESK_QDRANT_URL": ":memory:",
        "HELPDESK_AUTH_CACHE_SECONDS": str(AUTH_CACHE_SECONDS),
        "HELPDESK_PLAN_CACHE_SECONDS": str(AUTH_CACHE_SECONDS),
        "HELPDESK_ADMIN_TOKEN": ADMIN_TOKEN,
        "HELPDESK_METRICS_TOKEN": METRICS_TOKEN,
        "HELPDESK_SCHEDULER_ENABLED": "false",
    }
    processes: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.AsyncClient] = []
    try:
        for name in ("a", "b"):
            root = tmp_path / f"process-{name}"
            root.mkdir()
            process, base_url = _start_replica_process(
                {**env, "HELPDESK_DATA_DIR": str(root / "data")}, root
            )
            processes.append(process)
            clients.append(httpx.AsyncClient(base_url=base_url, timeout=60))
        for process, client in zip(processes, clients, strict=True):
            await _wait_until_ready(process, str(client.base_url))
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.aclose()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


async def test_two_replica_processes_share_revocation_and_rate_limits(
    replica_processes: tuple[httpx.AsyncClient, httpx.AsyncClient],
    make_company: MakeCompany,
    admin_headers: dict[str, str],
) -> None:
    a, b = replica_processes
    acme = await make_company("proc")
    allowed = 6
    plan = await a.put(
        f"/admin/companies/{acme.company_id}/plan",
        headers=admin_headers,
        json={"requests_per_minute": allowed},
    )
    assert plan.status_code == 200
    # Both processes resolve (and cache) the key: two requests of the budget each.
    for replica in (a, b, a, b):
        assert (await replica.get("/v1/company", headers=acme.headers)).status_code == 200

    revoked = await b.post(
        f"/admin/companies/{acme.company_id}/api-keys/{acme.key_id}/revoke", headers=admin_headers
    )
    assert revoked.status_code == 200
    revoked_at = time.monotonic()
    # Within the auth cache window process A may still accept the key (two requests left in
    # the shared budget); after it, A refuses it.
    while True:
        response = await a.get("/v1/company", headers=acme.headers)
        if response.status_code == 401:
            break
        assert response.status_code in (200, 429)
        assert time.monotonic() - revoked_at < AUTH_CACHE_SECONDS + 5
        await asyncio.sleep(0.05)
    assert response.json()["error"] == "revoked_api_key"
    assert time.monotonic() - revoked_at <= AUTH_CACHE_SECONDS + 0.5

    # The shared budget, with a fresh key on a second company: N requests over both
    # processes, then 429 on either.
    globex = await make_company("proc")
    plan = await b.put(
        f"/admin/companies/{globex.company_id}/plan",
        headers=admin_headers,
        json={"requests_per_minute": allowed},
    )
    assert plan.status_code == 200
    statuses = [
        (await (a if i % 2 == 0 else b).get("/v1/company", headers=globex.headers)).status_code
        for i in range(allowed)
    ]
    assert statuses == [200] * allowed
    for replica in (a, b):
        refused = await replica.get("/v1/company", headers=globex.headers)
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
