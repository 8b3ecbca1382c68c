"""Operator paths as real processes: `helpdesk ingest file` with its progress summary,
`helpdesk worker` running a sync that the API queued on Redis, and the multi-process
commands refused with the embedded vector engine (which has one owner process).

A separate worker needs a Qdrant server shared with the API; there is none on this machine,
so the worker test uses qdrant-client's local mode (``:memory:``, the stand-in for a server
in tests) in both processes and checks what Postgres records of the sync."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from backend.app import create_app
from backend.config import Settings
from backend.db.provisioning import DatabaseUrls
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
REDIS_URL = "redis://127.0.0.1:6379/14"
# API and workers must share the connector-credentials key (as in production).
ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()


def write_export(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for n in range(count):
            handle.write(
                json.dumps(
                    {
                        "id": f"kb-{n}",
                        "title": f"How to reset device model {n}",
                        "body": f"Hold the reset button of model {n} for ten seconds, then pair.",
                        "url": f"https://help.example.com/kb/{n}",
                    }
                )
                + "\n"
            )


def helpdesk_env(database_urls: DatabaseUrls, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(
        {
            "HELPDESK_DATABASE_URL": database_urls.runtime_url,
            "HELPDESK_DATA_DIR": str(data_dir),
            "HELPDESK_AUTO_MIGRATE": "false",
            "HELPDESK_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


async def test_cli_ingest_file_reports_progress_and_is_idempotent(
    database_urls: DatabaseUrls, tmp_path: Path, make_company: MakeCompany, settings: Settings
) -> None:
    acme = await make_company("cli")
    export = tmp_path / "kb.jsonl"
    write_export(export, 12)
    # The CLI reads only below the import root (the export is in tmp_path).
    env = helpdesk_env(database_urls, tmp_path / "data", HELPDESK_IMPORT_ROOT=str(tmp_path))
    command = [
        sys.executable,
        "-m",
        "backend.cli",
        "ingest",
        "file",
        str(export),
        "--company",
        acme.company_id,
    ]
    first = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr
    assert "status:    succeeded" in first.stdout
    assert "upserted:  12" in first.stdout
    assert "chunks/s" in first.stdout
    assert "documents" in first.stderr  # the progress bar
    second = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr
    assert "upserted:  0" in second.stdout

    app = create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    async with LifespanManager(app, startup_timeout=60):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            documents = (await client.get("/v1/documents?limit=100", headers=acme.headers)).json()
    assert len(documents) == 12
    assert {d["source"] for d in documents} == {"file_export"}


@pytest.fixture
async def redis_app(settings: Settings, tmp_path: Path) -> AsyncIterator[FastAPI]:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    app = create_app(
        settings.model_copy(
            update={
                "redis_url": REDIS_URL,
                "qdrant_url": ":memory:",
                "data_dir": tmp_path / "api-data",
                "encryption_key": SecretStr(ENCRYPTION_KEY),
            }
        )
    )
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        yield app


async def test_worker_runs_syncs_queued_on_redis(
    redis_app: FastAPI, database_urls: DatabaseUrls, tmp_path: Path, make_company: MakeCompany
) -> None:
    state: Stack = redis_app.state.helpdesk
    assert not state.jobs.in_process
    acme = await make_company("worker")
    export = tmp_path / "kb.jsonl"
    write_export(export, 5)
    # File connectors are operator-only, so create it the way `helpdesk ingest` does.
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
    worker = subprocess.Popen(  # noqa: ASYNC220 - returns at once; polled below
        [sys.executable, "-m", "backend.cli", "worker"],
        env=helpdesk_env(
            database_urls,
            tmp_path / "worker-data",
            HELPDESK_REDIS_URL=REDIS_URL,
            HELPDESK_QDRANT_URL=":memory:",
            HELPDESK_SCHEDULER_ENABLED="false",
            HELPDESK_ENCRYPTION_KEY=ENCRYPTION_KEY,
            HELPDESK_IMPORT_ROOT=str(tmp_path),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        transport = httpx.ASGITransport(app=redis_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            # A file import is the operator's to sync (the API answers 403): queue it the
            # way the CLI and the scheduler do, then watch it through the tenant's API.
            refused = await client.post(f"/v1/connectors/{connector.id}/sync", headers=acme.headers)
            assert refused.status_code == 403
            assert refused.json()["error"] == "operator_managed_connector"
            queued = await state.jobs.request_and_enqueue(
                acme.company_id, connector.id, trigger="operator"
            )
            run = {"id": str(queued.id), "status": queued.status}
            for _ in range(1200):
                run = (await client.get(f"/v1/sync-runs/{run['id']}", headers=acme.headers)).json()
                if run["status"] in {"succeeded", "failed"}:
                    break
                assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
                await asyncio.sleep(0.1)
        assert run["status"] == "succeeded", run["errors"]
        assert run["upserted"] == 5
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.mark.parametrize(
    ("command", "refused"),
    [
        (["worker"], "a separate `helpdesk worker` needs a Qdrant server"),
        (["serve", "--workers", "2"], "serve --workers 2 needs a Qdrant server"),
    ],
)
def test_multi_process_commands_are_refused_with_the_embedded_vector_engine(
    database_urls: DatabaseUrls, tmp_path: Path, command: list[str], refused: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", *command],
        env=helpdesk_env(database_urls, tmp_path / "data", HELPDESK_REDIS_URL=REDIS_URL),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert refused in message
    assert "HELPDESK_QDRANT_URL" in message


def test_with_the_embedded_vector_engine_the_api_runs_sync_jobs_itself() -> None:
    def jobs_in_process(**values: str) -> bool:
        return Settings(_env_file=None, **values).in_process_jobs  # type: ignore[call-arg, arg-type]

    assert jobs_in_process()
    # Redis alone does not move jobs out: no other process could open the vector engine.
    assert jobs_in_process(redis_url=REDIS_URL)
    assert not jobs_in_process(redis_url=REDIS_URL, qdrant_url="http://qdrant:6333")
    assert jobs_in_process(qdrant_url="http://qdrant:6333")  # no shared queue


_ENGINE_HOLDER = """
import sys, time
from pathlib import Path
from backend.vectors.edge import EdgeVectorStore
store = EdgeVectorStore(Path(sys.argv[1]), dense_dimension=4)
print("holding", flush=True)
time.sleep(120)
"""


def test_a_command_on_a_data_dir_whose_engine_is_in_use_says_so(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", _ENGINE_HOLDER, str(data_dir / "qdrant-edge")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        result = subprocess.run(
            [sys.executable, "-m", "backend.cli", "tenants", "list"],
            env=helpdesk_env(database_urls, data_dir),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"in use by another process (pid {holder.pid})" in message
    assert "Traceback" not in result.stderr
