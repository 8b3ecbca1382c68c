"""Shared fixtures: a real Postgres database per test session, migrated as the owner role,
used by the service as the runtime role — exactly the production arrangement.

The server is the one on 127.0.0.1:5432 (trust auth); override with
HELPDESK_TEST_SUPERUSER_DSN. Tests isolate themselves by company: each test creates
companies with fresh random ids, so no test depends on another's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from backend.db.provisioning import (
    DatabaseUrls,
    drop_database,
    provision_database,
    run_migrations,
)
from backend.db.session import Database
from backend.embeddings import SentenceTransformerEncoder, SparseEncoder
from backend.retrieval import HybridRetriever
from backend.tenancy import service
from tests.cluster_fixtures import redis_cluster
from tests.knowledge_corpus import Corpus

__all__ = ["redis_cluster"]  # a shared fixture: a real 6-node Redis Cluster on loopback

SUPERUSER_DSN = os.environ.get(
    "HELPDESK_TEST_SUPERUSER_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ADMIN_TOKEN = "test-admin-token-" + "x" * 16
METRICS_TOKEN = "test-metrics-token-" + "m" * 16


def _url_for(role: str, database: str) -> str:
    base = SUPERUSER_DSN.split("://", 1)[1].split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{role}@{base}/{database}"


@pytest.fixture(scope="session")
async def database_urls() -> AsyncIterator[DatabaseUrls]:
    """A fresh database owned by ``helpdesk_owner``, migrated, dropped after the session."""
    name = f"helpdesk_test_{os.getpid()}_{secrets.token_hex(3)}"
    await provision_database(SUPERUSER_DSN, database=name)
    urls = DatabaseUrls(
        runtime_url=_url_for("helpdesk_app", name), owner_url=_url_for("helpdesk_owner", name)
    )
    await run_migrations(urls.owner_url)
    yield urls
    await drop_database(SUPERUSER_DSN, name)


@pytest.fixture(scope="session")
async def database(database_urls: DatabaseUrls) -> AsyncIterator[Database]:
    db = Database.from_url(database_urls.runtime_url, pool_size=2)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
def dense_encoder() -> SentenceTransformerEncoder:
    # The model itself is cached per process by backend.embeddings.dense: one load per run.
    return SentenceTransformerEncoder(batch_size=32, torch_threads=1)


@pytest.fixture
def retriever(corpus: Corpus, dense_encoder: SentenceTransformerEncoder) -> HybridRetriever:
    """A retriever over the directory's ``corpus`` fixture (tests/assistant, tests/retrieval)."""
    return HybridRetriever(corpus.store, dense_encoder, SparseEncoder())


@pytest.fixture
def settings(database_urls: DatabaseUrls, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_urls.runtime_url,
        database_owner_url=None,
        auto_migrate=False,
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        metrics_token=METRICS_TOKEN,  # type: ignore[arg-type]
        log_json=True,
        # Tests drive the scheduler's tick() themselves.
        scheduler_enabled=False,
        # Platform replays answer on loopback: only this test-only setting lets a connector
        # reach them (tests/security proves the default refuses it).
        egress_allow_loopback_for_tests=True,
        # File imports in tests live under tmp_path.
        import_root=tmp_path,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def new_company_id(prefix: str = "co") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class CompanyWithKey:
    company_id: str
    api_key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "X-Company-ID": self.company_id}


@pytest.fixture
def make_company(database: Database) -> Callable[..., Awaitable[CompanyWithKey]]:
    """Create a company with one API key, directly through the tenancy service."""

    async def make(prefix: str = "co", name: str = "Test Co") -> CompanyWithKey:
        company_id = new_company_id(prefix)
        await service.create_company(database, company_id=company_id, name=name, actor="test")
        issued = await service.issue_api_key(database, company_id, name="test", actor="test")
        return CompanyWithKey(company_id, issued.plaintext, str(issued.key.id))

    return make


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
