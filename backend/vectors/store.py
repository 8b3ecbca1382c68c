"""The vector-store contract shared by the embedded engine and the Qdrant server engine.

Tenancy is enforced twice: each company has its own namespace (shard or collection), and
every read, count and delete also filters on the ``company_id`` payload.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from backend.errors import BadRequest
from backend.tenancy.company_id import validate_company_id
from backend.vectors.types import (
    ChunkPayload,
    ChunkPoint,
    SearchMode,
    SparseVector,
    VectorFilter,
    VectorHit,
    VectorMatch,
)

# RRF's rank constant (score = sum of 1 / (k + rank)), always sent explicitly because engine
# defaults differ (qdrant-client's local mode uses 2; the textbook value is 60). Parametrized
# RRF needs Qdrant server >= 1.16. On StackFAQ (bench/retrieval_quality.py) k=2 gave hybrid
# nDCG@10 0.876 and k=60 gave 0.838: a small k lets a confident first place count, and the
# dense list's first places are usually right. Both engines use the same k.
DEFAULT_RRF_K = 2
# The dense list's weight in the fusion (the sparse list's is 1; Qdrant divides each list's
# positions by its weight). The local model is strong on paraphrased questions and the
# lexical side on exact words (codes, names, Korean): on StackFAQ with k=2, weight 1 gave
# hybrid nDCG@10 0.876 (qa_pair) / 0.932 (thread), 2 gave 0.911 / 0.938
# (bench/results/retrieval_quality-*), 3 gave 0.921 / 0.931 in the same grid; 2 is the
# best of both. A Qdrant server must
# accept RRF weights (docker-compose.yml runs 1.19.1); 1.0 sends a plain RRF.
DEFAULT_DENSE_WEIGHT = 2.0


def rrf_weights(dense_weight: float, prefetch_count: int) -> list[float] | None:
    """RRF weights for [dense, sparse]; ``None`` (equal weights) when there is nothing to
    weigh, so the request stays a plain RRF that every Qdrant version accepts."""
    if prefetch_count < 2 or dense_weight == 1.0:
        return None
    return [dense_weight, 1.0]


@runtime_checkable
class VectorStore(Protocol):
    async def ensure_company(self, company_id: str) -> None:
        """Create the company's namespace (idempotent)."""

    async def upsert(self, company_id: str, points: Sequence[ChunkPoint]) -> None:
        """Insert or overwrite points; every payload must name ``company_id``."""

    async def delete_documents(self, company_id: str, document_ids: Sequence[str]) -> None:
        """Delete every chunk of the given documents."""

    async def delete_points(self, company_id: str, ids: Sequence[uuid.UUID]) -> None: ...

    async def delete_requesters(self, company_id: str, requester_ids: Sequence[str]) -> None:
        """Delete every chunk raised by these requesters (GDPR erasure), whether or not a
        documents row still names them."""

    async def query(
        self,
        company_id: str,
        *,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        filter: VectorFilter | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
        prefetch_limit: int | None = None,
    ) -> list[VectorHit]:
        """Best chunks first. Hybrid fuses a dense and a sparse candidate list with RRF."""

    async def match(
        self,
        company_id: str,
        *,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        filter: VectorFilter | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
        prefetch_limit: int | None = None,
    ) -> list[VectorMatch]:
        """``query``'s ranking without the payloads: searches over-fetch chunks to keep one
        per document, so they read the few payloads they keep with :meth:`payloads`."""

    async def payloads(
        self, company_id: str, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ChunkPayload]:
        """The payloads of these points; a point that is gone, or is not this company's, is
        absent from the result."""

    async def dense_vectors(
        self, company_id: str, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[ChunkPayload, list[float]]]:
        """The payloads and dense vectors of these points, so an unchanged chunk of an updated
        document keeps its vector instead of going through the model again; a point that is
        gone, is not this company's, or has no dense vector yet is absent."""

    async def count(self, company_id: str, filter: VectorFilter | None = None) -> int: ...

    async def optimize(self, company_id: str) -> None:
        """Build search indexes now (the embedded engine needs it after bulk loads)."""
        ...

    async def drop_company(self, company_id: str) -> None:
        """Remove the company's namespace and everything in it (idempotent)."""

    async def healthcheck(self) -> bool: ...

    async def close(self) -> None: ...


def validate_points(company_id: str, points: Sequence[ChunkPoint], dense_dimension: int) -> None:
    """Refuse points that belong to another company or do not fit the collection."""
    validate_company_id(company_id)
    for point in points:
        if point.payload.company_id != company_id:
            raise BadRequest(
                f"point {point.id} belongs to company {point.payload.company_id!r}, "
                f"not {company_id!r}",
                code="tenant_mismatch",
            )
        if point.dense is not None and len(point.dense) != dense_dimension:
            raise BadRequest(
                f"dense vector of point {point.id} has {len(point.dense)} dimensions, "
                f"the index expects {dense_dimension}",
                code="vector_dimension_mismatch",
            )


def validate_query(
    *,
    dense: Sequence[float] | None,
    sparse: SparseVector | None,
    limit: int,
    mode: SearchMode,
    prefetch_limit: int | None,
    dense_dimension: int,
) -> int:
    """Check a query's inputs; returns the prefetch limit to use for hybrid search."""
    if limit < 1:
        raise BadRequest("limit must be at least 1")
    if mode in (SearchMode.DENSE, SearchMode.HYBRID):
        if dense is None:
            raise BadRequest(f"{mode.value} search needs a dense query vector")
        if len(dense) != dense_dimension:
            raise BadRequest(
                f"dense query has {len(dense)} dimensions, the index expects {dense_dimension}",
                code="vector_dimension_mismatch",
            )
    if mode in (SearchMode.SPARSE, SearchMode.HYBRID) and sparse is None:
        raise BadRequest(f"{mode.value} search needs a sparse query vector")
    # Each list must reach well past `limit`: RRF rewards documents both lists agree on.
    resolved = prefetch_limit if prefetch_limit is not None else max(4 * limit, 40)
    if resolved < limit:
        raise BadRequest("prefetch_limit must be at least limit")
    return resolved
