"""The one query path both engines share: what to search, with which filter, fused how.

:func:`plan_query` checks a search's inputs and decides everything engine-neutral about
it: the tenant-led filter conditions, whether it is a single nearest-neighbour search or an
RRF fusion of a dense and a sparse list, how many candidates each list brings, the fusion's
``k`` and weights, and when a search can match nothing at all. Each engine only translates
the resulting :class:`QueryPlan` into its own request objects, and turns the engine's
scored points back into hits and matches with :func:`to_hit` / :func:`to_match`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backend.tenancy.company_id import validate_company_id
from backend.vectors.filters import Condition, conditions_for
from backend.vectors.store import rrf_weights, validate_query
from backend.vectors.types import (
    DENSE_VECTOR_NAME,
    SPARSE_VECTOR_NAME,
    ChunkPayload,
    SearchMode,
    SparseVector,
    VectorFilter,
    VectorHit,
    VectorMatch,
)


@dataclass(frozen=True, slots=True)
class Nearest:
    """One nearest-neighbour list: a dense vector or a sparse one, on its named vector."""

    using: str
    dense: tuple[float, ...] | None = None
    sparse: SparseVector | None = None


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """An engine-neutral search. ``lists`` holds one list (a plain search: ``fusion`` is
    false) or the lists an RRF fusion combines (``fusion`` is true), each with
    ``candidates`` results. ``conditions`` always starts with the tenant."""

    conditions: tuple[Condition, ...]
    limit: int
    lists: tuple[Nearest, ...]
    fusion: bool
    candidates: int
    rrf_k: int
    rrf_weights: list[float] | None


def plan_query(
    company_id: str,
    *,
    dense: Sequence[float] | None,
    sparse: SparseVector | None,
    filter: VectorFilter | None,
    limit: int,
    mode: SearchMode,
    prefetch_limit: int | None,
    dense_dimension: int,
    rrf_k: int,
    dense_weight: float,
) -> QueryPlan | None:
    """The plan for a search, or ``None`` when it cannot match anything (a sparse search
    whose query is empty: only stopwords or punctuation)."""
    validate_company_id(company_id)
    candidates = validate_query(
        dense=dense,
        sparse=sparse,
        limit=limit,
        mode=mode,
        prefetch_limit=prefetch_limit,
        dense_dimension=dense_dimension,
    )
    conditions = tuple(conditions_for(company_id, filter))
    dense_list = Nearest(DENSE_VECTOR_NAME, dense=tuple(dense)) if dense is not None else None
    # An empty sparse query matches nothing; hybrid search then runs on the dense list alone.
    sparse_list = (
        Nearest(SPARSE_VECTOR_NAME, sparse=sparse)
        if sparse is not None and not sparse.is_empty
        else None
    )
    if mode is SearchMode.DENSE:
        chosen = dense_list
    elif mode is SearchMode.SPARSE:
        chosen = sparse_list
    else:
        lists = tuple(q for q in (dense_list, sparse_list) if q is not None)
        return QueryPlan(
            conditions=conditions,
            limit=limit,
            lists=lists,
            fusion=True,
            candidates=candidates,
            rrf_k=rrf_k,
            rrf_weights=rrf_weights(dense_weight, len(lists)),
        )
    if chosen is None:
        return None
    return QueryPlan(
        conditions=conditions,
        limit=limit,
        lists=(chosen,),
        fusion=False,
        candidates=candidates,
        rrf_k=rrf_k,
        rrf_weights=None,
    )


def as_uuid(raw: Any) -> uuid.UUID:
    """A point id as the engines return it (a string, sometimes a UUID) as a UUID."""
    return raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))


def to_hit(raw_id: Any, score: float, payload: ChunkPayload) -> VectorHit:
    return VectorHit(id=as_uuid(raw_id), score=float(score), payload=payload)


def to_match(raw_id: Any, score: float, fields: dict[str, Any] | None) -> VectorMatch:
    return VectorMatch.from_fields(as_uuid(raw_id), float(score), fields)
