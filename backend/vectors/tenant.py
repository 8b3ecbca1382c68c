"""One company's view of the vector store, bound to its :data:`CompanyId`.

A :class:`TenantVectors` is what a :class:`backend.tenancy.scope.TenantScope` hands to
services: every method forwards to the process's :class:`VectorStore` with the company id
already filled in, so code holding company A's view has no argument through which it could
name company B. The engines keep their own ``company_id`` checks (defence in depth).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from backend.tenancy.company_id import CompanyId
from backend.vectors.store import VectorStore
from backend.vectors.types import (
    ChunkPayload,
    ChunkPoint,
    SearchMode,
    SparseVector,
    VectorFilter,
    VectorHit,
    VectorMatch,
)


class TenantVectors:
    def __init__(self, store: VectorStore, company_id: CompanyId) -> None:
        self._store = store
        self.company_id = company_id

    async def ensure(self) -> None:
        await self._store.ensure_company(self.company_id)

    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        await self._store.upsert(self.company_id, points)

    async def delete_documents(self, document_ids: Sequence[str]) -> None:
        await self._store.delete_documents(self.company_id, document_ids)

    async def delete_points(self, ids: Sequence[uuid.UUID]) -> None:
        await self._store.delete_points(self.company_id, ids)

    async def delete_requesters(self, requester_ids: Sequence[str]) -> None:
        await self._store.delete_requesters(self.company_id, requester_ids)

    async def query(
        self,
        *,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        filter: VectorFilter | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
        prefetch_limit: int | None = None,
    ) -> list[VectorHit]:
        return await self._store.query(
            self.company_id,
            dense=dense,
            sparse=sparse,
            filter=filter,
            limit=limit,
            mode=mode,
            prefetch_limit=prefetch_limit,
        )

    async def match(
        self,
        *,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        filter: VectorFilter | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
        prefetch_limit: int | None = None,
    ) -> list[VectorMatch]:
        return await self._store.match(
            self.company_id,
            dense=dense,
            sparse=sparse,
            filter=filter,
            limit=limit,
            mode=mode,
            prefetch_limit=prefetch_limit,
        )

    async def payloads(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ChunkPayload]:
        return await self._store.payloads(self.company_id, ids)

    async def count(self, filter: VectorFilter | None = None) -> int:
        return await self._store.count(self.company_id, filter)

    async def optimize(self) -> None:
        await self._store.optimize(self.company_id)

    async def drop(self) -> None:
        """Remove the company's namespace and everything in it (company deletion)."""
        await self._store.drop_company(self.company_id)
