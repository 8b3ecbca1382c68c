"""The tenant scope: one company's transaction and store views, and one knowledge_changed().

Real Postgres (the session database) and a real Redis; the vector and object stores are the
embedded engine and the local folder, as in the default deployment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from backend.blobs import LocalBlobStore
from backend.cache import CacheBackend, build_cache_backend
from backend.db.repositories import companies as company_repo
from backend.db.session import Database
from backend.llm.cache import ResponseCache
from backend.tenancy.company_id import validate_company_id
from backend.tenancy.scope import TenantStores
from backend.vectors import build_vector_store
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def stores(database: Database, tmp_path: Path) -> AsyncIterator[TenantStores]:
    vectors = build_vector_store(None, None, tmp_path, dense_dimension=4)
    cache: CacheBackend = build_cache_backend(REDIS_URL, None)
    try:
        yield TenantStores(database, vectors, LocalBlobStore(tmp_path / "objects"), cache)
    finally:
        await cache.close()
        await vectors.close()


async def _generation(database: Database, company_id: str) -> int:
    async with database.tenant_session(company_id) as session:
        company = await company_repo.get_company(session, company_id)
    assert company is not None
    return company.knowledge_generation


async def _cached_answer(cache: CacheBackend, company_id: str) -> dict[str, object] | None:
    responses = ResponseCache(cache, company_id, ttl_seconds=60)
    return (await responses.lookup("answer-answer", "k")).value


async def _cache_an_answer(cache: CacheBackend, company_id: str) -> None:
    responses = ResponseCache(cache, company_id, ttl_seconds=60)
    found = await responses.lookup("answer-answer", "k")
    assert found.epoch is not None
    await responses.put("answer-answer", "k", {"text": "cached"}, epoch=found.epoch)


async def test_knowledge_changed_bumps_the_generation_and_voids_answers_after_commit(
    stores: TenantStores, make_company: MakeCompany
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    for company in (acme, globex):
        await _cache_an_answer(stores.cache, company.company_id)
    before = await _generation(stores.database, acme.company_id)

    async with stores.scope(validate_company_id(acme.company_id)) as scope:
        await scope.knowledge_changed()
        # Not committed yet: a concurrent request must not cache an old answer under a new
        # epoch, so the epoch is voided only once the transaction has committed.
        assert await _cached_answer(stores.cache, acme.company_id) is not None

    assert await _generation(stores.database, acme.company_id) == before + 1
    assert await _cached_answer(stores.cache, acme.company_id) is None
    # Another company's generation and cached answers are untouched.
    assert await _cached_answer(stores.cache, globex.company_id) == {"text": "cached"}


async def test_a_scope_that_raises_rolls_back_and_voids_nothing(
    stores: TenantStores, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    await _cache_an_answer(stores.cache, acme.company_id)
    before = await _generation(stores.database, acme.company_id)

    async def fail_after_changing_knowledge() -> None:
        async with stores.scope(validate_company_id(acme.company_id)) as scope:
            await scope.knowledge_changed()
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await fail_after_changing_knowledge()

    assert await _generation(stores.database, acme.company_id) == before
    assert await _cached_answer(stores.cache, acme.company_id) == {"text": "cached"}


async def test_a_scope_sees_and_changes_only_its_own_company(
    stores: TenantStores, make_company: MakeCompany
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    async with stores.scope(validate_company_id(globex.company_id)) as scope:
        await scope.blobs.put_document("freshdesk", "ticket:1", {"subject": "globex only"})
    async with stores.scope(validate_company_id(acme.company_id)) as scope:
        # Row-level security: only this company's row exists in its transaction.
        ids = (await scope.session.execute(text("SELECT company_id FROM companies"))).scalars()
        assert list(ids) == [acme.company_id]
        # The object-store view is bound to the company: globex's payload is not reachable.
        assert await scope.blobs.get_document("freshdesk", "ticket:1") is None
        assert scope.vectors.company_id == scope.blobs.company_id == acme.company_id
    async with stores.scope(validate_company_id(globex.company_id)) as scope:
        assert await scope.blobs.get_document("freshdesk", "ticket:1") == {"subject": "globex only"}
