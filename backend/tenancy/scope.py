"""One company's stores for one unit of work: the tenant scope.

A :class:`TenantScope` is what every service below the API receives instead of
``(database, company_id)``. It is opened once where work enters — by the request dependency
(``backend.api.dependencies.get_tenant_scope``: the request owns the transaction, committed
when the handler returns and rolled back when it raises) or by a job (the worker, the CLI,
the scheduler, a sync) through :meth:`TenantStores.scope` — and holds:

- ``session``: the company's Postgres transaction, with row-level security set to it;
- ``vectors``, ``blobs``, ``cache``: the company's views of the vector store, the object
  store and the cache (each builds its names from the company id; none accepts another);
- :meth:`TenantScope.knowledge_changed`: the one place "the company's knowledge changed" is
  written — the knowledge generation is bumped in the scope's transaction, and the cached
  answers' epoch is voided once that transaction has committed (voiding it earlier would let
  a concurrent request cache an answer computed from the old rows under the new epoch; see
  :mod:`backend.llm.cache`).

The company id is validated once, where the scope's caller turned a string into a
:data:`~backend.tenancy.company_id.CompanyId`; nothing inside re-validates it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from backend.blobs import BlobStore, TenantBlobs
from backend.cache import CacheBackend, TenantCache
from backend.db.repositories import companies as company_repo
from backend.db.session import Database
from backend.llm.cache import void_cached_answers
from backend.tenancy.company_id import CompanyId
from backend.vectors.store import VectorStore
from backend.vectors.tenant import TenantVectors

VoidAnswers = Callable[[CompanyId], Awaitable[None]]
"""Voids one company's cached answers (``backend.llm.cache.ResponseInvalidator``)."""


class TenantRows:
    """One company's Postgres transaction (row-level security set to it): what services
    that only read or write rows (companies, API keys) take. A :class:`TenantScope` is one."""

    def __init__(self, company_id: CompanyId, session: AsyncSession) -> None:
        self.company_id = company_id
        self.session = session


@asynccontextmanager
async def open_rows(database: Database, company_id: CompanyId) -> AsyncIterator[TenantRows]:
    """Rows only (no store views): committed when the block exits, rolled back if it raises."""
    async with database.tenant_session(company_id) as session:
        yield TenantRows(company_id, session)


class TenantScope(TenantRows):
    """One company's Postgres transaction and store views (see the module docstring)."""

    def __init__(
        self,
        company_id: CompanyId,
        session: AsyncSession,
        *,
        vectors: VectorStore,
        blobs: BlobStore,
        cache: CacheBackend | None = None,
        void_answers: VoidAnswers | None = None,
    ) -> None:
        super().__init__(company_id, session)
        self.vectors = TenantVectors(vectors, company_id)
        self.blobs = TenantBlobs(blobs, company_id)
        self.cache = TenantCache(cache, company_id) if cache is not None else None
        """``None`` for a job wired without a cache (its ``void_answers`` reaches it)."""
        self._void_answers = void_answers
        self._knowledge_changed = False

    async def knowledge_changed(self) -> None:
        """The company's documents or recorded answers changed: bump its knowledge
        generation now (in this transaction) and void its cached answers after commit."""
        await company_repo.bump_knowledge_generation(self.session, self.company_id)
        self._knowledge_changed = True

    async def _committed(self) -> None:
        if not self._knowledge_changed:
            return
        self._knowledge_changed = False
        if self._void_answers is not None:
            await self._void_answers(self.company_id)
        elif self.cache is not None:
            await void_cached_answers(self.cache)


@asynccontextmanager
async def open_scope(
    database: Database,
    company_id: CompanyId,
    *,
    vectors: VectorStore,
    blobs: BlobStore,
    cache: CacheBackend | None = None,
    void_answers: VoidAnswers | None = None,
) -> AsyncIterator[TenantScope]:
    """A scope whose transaction commits when the block exits normally (then the cached
    answers are voided if :meth:`TenantScope.knowledge_changed` was called) and rolls back
    when it raises."""
    async with database.tenant_session(company_id) as session:
        scope = TenantScope(
            company_id,
            session,
            vectors=vectors,
            blobs=blobs,
            cache=cache,
            void_answers=void_answers,
        )
        yield scope
    await scope._committed()


@dataclass(frozen=True)
class TenantStores:
    """The process's stores, one of each kind; :meth:`scope` binds them to one company."""

    database: Database
    vectors: VectorStore
    blobs: BlobStore
    cache: CacheBackend

    def scope(self, company_id: CompanyId) -> AbstractAsyncContextManager[TenantScope]:
        return open_scope(
            self.database,
            company_id,
            vectors=self.vectors,
            blobs=self.blobs,
            cache=self.cache,
        )
