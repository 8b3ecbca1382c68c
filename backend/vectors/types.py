"""The vocabulary of the vector store: points, payloads, filters and hits.

These types are engine-neutral; only the engine modules (``edge``, ``server``) translate
them into Qdrant objects. Timestamps travel as aware ``datetime`` values and are stored as
epoch seconds so that range filters work the same in both engines.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.tenancy.company_id import CompanyIdField

ChunkKind = Literal["ticket", "conversation", "article", "review"]

DENSE_VECTOR_NAME = "dense"
SPARSE_VECTOR_NAME = "sparse"


class SearchMode(StrEnum):
    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse lexical vector: parallel lists of term ids and weights."""

    indices: list[int]
    values: list[float]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("sparse vector indices and values must have the same length")

    @property
    def is_empty(self) -> bool:
        return not self.indices


def _as_aware(value: datetime | None) -> datetime | None:
    # Naive datetimes are taken as UTC: platforms that omit the offset report UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def to_epoch(value: datetime) -> float:
    aware = _as_aware(value)
    assert aware is not None
    return aware.timestamp()


class ChunkPayload(BaseModel):
    """What Qdrant stores next to a chunk's vectors (and returns with every hit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    company_id: CompanyIdField
    kind: ChunkKind
    source: str = Field(min_length=1, description="Platform or import, e.g. 'freshdesk'.")
    document_id: str = Field(min_length=1)
    external_id: str | None = Field(default=None, description="The platform's own id.")
    chunk_index: int = Field(ge=0)
    title: str = ""
    url: str | None = None
    language: str | None = None
    status: str | None = None
    internal: bool = Field(
        default=False, description="Private notes / work notes: never quoted to customers."
    )
    tags: list[str] = Field(default_factory=list)
    requester_id: str | None = Field(
        default=None, description="Who raised the ticket or wrote the review (GDPR deletes)."
    )
    created_at: datetime | None = None
    updated_at: datetime | None = None
    text: str
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Free-form, unindexed extras (e.g. review rating)."
    )

    @field_validator("created_at", "updated_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _as_aware(value)

    def to_qdrant(self) -> dict[str, Any]:
        """The stored form: timestamps become epoch seconds so range filters are numeric."""
        stored = self.model_dump(mode="json", exclude={"created_at", "updated_at"})
        stored["created_at"] = None if self.created_at is None else to_epoch(self.created_at)
        stored["updated_at"] = None if self.updated_at is None else to_epoch(self.updated_at)
        return stored

    @classmethod
    def from_qdrant(cls, stored: dict[str, Any]) -> ChunkPayload:
        data = dict(stored)
        for key in ("created_at", "updated_at"):
            epoch = data.get(key)
            data[key] = None if epoch is None else datetime.fromtimestamp(float(epoch), tz=UTC)
        return cls.model_validate(data)


@dataclass(frozen=True, slots=True)
class ChunkPoint:
    """One chunk ready for the index. Build ``id`` with :func:`backend.vectors.point_id`."""

    id: uuid.UUID
    dense: list[float] | None
    """``None`` while only the keyword side is written (a webhook's fast path); the point
    is then found by sparse search alone until it is upserted again with its dense vector."""
    sparse: SparseVector
    payload: ChunkPayload


@dataclass(frozen=True, slots=True)
class VectorFilter:
    """Caller-chosen restrictions. Empty collections mean "no restriction" on that field.

    The tenant restriction is never part of this object: the store adds it to every query.
    ``tags`` matches chunks carrying any of the tags; date bounds are inclusive.
    """

    kinds: tuple[ChunkKind, ...] = ()
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    document_ids: tuple[str, ...] = ()
    requester_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    internal: bool | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    internal_only_from: tuple[str, ...] | None = None
    """``None``: no restriction. A tuple of external ids (``ticket:42``): internal chunks
    match only when they belong to one of these documents; public chunks match as usual.
    This is how a widget token scoped to one ticket keeps other tickets' private notes out."""


@dataclass(frozen=True, slots=True)
class VectorHit:
    id: uuid.UUID
    score: float
    payload: ChunkPayload


# The payload fields a match carries: what ranking, per-document dedupe and exclusion need.
MATCH_FIELDS = ("document_id", "external_id")


@dataclass(frozen=True, slots=True)
class VectorMatch:
    """A ranked chunk before its payload is read (see ``VectorStore.match``)."""

    id: uuid.UUID
    score: float
    document_id: str
    external_id: str | None

    @classmethod
    def from_fields(cls, id: uuid.UUID, score: float, fields: dict[str, Any] | None) -> VectorMatch:
        """From an engine hit whose payload was limited to ``MATCH_FIELDS``."""
        found = fields or {}
        return cls(id, score, str(found.get("document_id", "")), found.get("external_id"))


def own_dense_vectors(
    company_id: str, records: Iterable[tuple[uuid.UUID, ChunkPayload, Any]]
) -> dict[uuid.UUID, tuple[ChunkPayload, list[float]]]:
    """Like :func:`own_payloads`, for points read with their dense vector; points without
    one (written keyword-first) are left out."""
    return {
        point: (payload, [float(x) for x in dense])
        for point, payload, dense in records
        if payload.company_id == company_id and isinstance(dense, list) and dense
    }


def own_payloads(
    company_id: str, records: Iterable[tuple[uuid.UUID, ChunkPayload]]
) -> dict[uuid.UUID, ChunkPayload]:
    """Points read by id, keeping only ``company_id``'s: reads by id bypass the tenant filter,
    so the check happens here instead."""
    return {point: payload for point, payload in records if payload.company_id == company_id}
