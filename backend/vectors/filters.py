"""Engine-neutral filter conditions, always led by the tenant condition.

Both engines translate the same list of conditions, so a filter means the same thing on
the embedded shard and on a Qdrant server, and neither engine can forget ``company_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.tenancy.company_id import validate_company_id
from backend.vectors.types import VectorFilter, to_epoch

# Payload fields that get an index, by index type. Filters only use these fields.
KEYWORD_FIELDS = (
    "company_id",
    "kind",
    "source",
    "document_id",
    "language",
    "status",
    "tags",
    "requester_id",
    "external_id",
)
BOOL_FIELDS = ("internal",)
FLOAT_FIELDS = ("created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class MatchAnyOf:
    """The field equals one of ``values`` (for list fields: contains one of them)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MatchFlag:
    key: str
    value: bool


@dataclass(frozen=True, slots=True)
class WithinRange:
    """Inclusive numeric range; ``None`` leaves that side open."""

    key: str
    gte: float | None
    lte: float | None


@dataclass(frozen=True, slots=True)
class EitherOf:
    """At least one of ``conditions`` holds (a nested ``should`` filter in both engines)."""

    conditions: tuple[MatchAnyOf | MatchFlag | WithinRange, ...]


Condition = MatchAnyOf | MatchFlag | WithinRange | EitherOf


def tenant_condition(company_id: str) -> MatchAnyOf:
    return MatchAnyOf("company_id", (validate_company_id(company_id),))


def conditions_for(company_id: str, vector_filter: VectorFilter | None) -> list[Condition]:
    """All conditions a query must satisfy; the first one is always the tenant."""
    conditions: list[Condition] = [tenant_condition(company_id)]
    if vector_filter is None:
        return conditions
    for key, values in (
        ("kind", vector_filter.kinds),
        ("source", vector_filter.sources),
        ("language", vector_filter.languages),
        ("status", vector_filter.statuses),
        ("document_id", vector_filter.document_ids),
        ("requester_id", vector_filter.requester_ids),
        ("tags", vector_filter.tags),
    ):
        if values:
            conditions.append(MatchAnyOf(key, tuple(values)))
    if vector_filter.internal is not None:
        conditions.append(MatchFlag("internal", vector_filter.internal))
    if vector_filter.internal_only_from is not None and vector_filter.internal is not False:
        public = MatchFlag("internal", False)
        allowed = vector_filter.internal_only_from
        conditions.append(
            EitherOf((public, MatchAnyOf("external_id", allowed))) if allowed else public
        )
    if vector_filter.updated_from is not None or vector_filter.updated_to is not None:
        conditions.append(
            WithinRange(
                "updated_at",
                gte=None
                if vector_filter.updated_from is None
                else to_epoch(vector_filter.updated_from),
                lte=None
                if vector_filter.updated_to is None
                else to_epoch(vector_filter.updated_to),
            )
        )
    return conditions
