"""What a caller may restrict a search to. The tenant is never one of these: the vector
store adds the company condition to every query itself."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.retrieval.access import AGENT_SCOPE, AccessScope
from backend.vectors import ChunkKind, VectorFilter

SOLVED_STATUSES: Final[tuple[str, ...]] = ("resolved", "closed", "solved")
"""Ticket statuses that mean "this was answered" across platforms (ingest normalizes
Freshdesk 4/5 to resolved/closed; Zendesk calls it solved)."""


class SearchFilters(BaseModel):
    """Restrictions on a search. An empty tuple means "no restriction" on that field.

    ``tags`` matches passages carrying any of the tags: helpdesk ticket fields that ingest
    turns into tags (product, category) are filtered this way. ``requester_ids`` finds one
    customer's tickets. Date bounds are inclusive and apply to the source's update time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kinds: tuple[ChunkKind, ...] = ()
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    requester_ids: tuple[str, ...] = ()
    document_ids: tuple[str, ...] = ()
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    internal: bool | None = Field(
        default=None,
        description="True: only private-note content; False: only public; None: both.",
    )

    @model_validator(mode="after")
    def _ordered_dates(self) -> SearchFilters:
        if (
            self.updated_from is not None
            and self.updated_to is not None
            and self.updated_from > self.updated_to
        ):
            raise ValueError("updated_from must not be after updated_to")
        return self

    def to_vector_filter(
        self, *, include_internal: bool = True, scope: AccessScope = AGENT_SCOPE
    ) -> VectorFilter | None:
        """The store's filter; ``include_internal=False`` drops private-note passages, and
        ``scope`` narrows it to what the caller's audience may see. ``None`` when the scope
        leaves nothing to search (a customer asking only for tickets)."""
        internal = self.internal
        if not include_internal:
            # Asking for internal-only content while excluding internal content finds nothing;
            # the exclusion wins, because it is the safety rule for customer-facing text.
            internal = False
        kinds = scope.allowed_kinds(self.kinds)
        if kinds is None:
            return None
        internal_only_from = scope.internal_only_from()
        if internal_only_from == ():
            internal = False
        return VectorFilter(
            kinds=kinds,
            sources=self.sources,
            languages=self.languages,
            statuses=self.statuses,
            document_ids=self.document_ids,
            requester_ids=self.requester_ids,
            tags=self.tags,
            internal=internal,
            updated_from=self.updated_from,
            updated_to=self.updated_to,
            internal_only_from=internal_only_from,
        )
