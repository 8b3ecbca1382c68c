"""Who a search runs for, and what that audience may retrieve.

DESIGN §2's trust boundary, applied where passages are selected rather than after: every
search carries an :class:`AccessScope`, and :meth:`AccessScope.restrict` turns it into
vector-store conditions, so a passage outside the scope is never ranked, never cached under
the scope's key and never reaches a handler.

- ``agent`` (API keys, the helpdesk sidebar): the company's knowledge, internal notes
  included. A widget token scoped to one ticket narrows that: internal content only from
  its own ticket; other tickets' public content (similar solved tickets) stays visible.
- ``customer`` (a widget a customer can open): public knowledge only, i.e. published
  knowledge-base articles without internal content. No tickets, conversations or reviews
  (they carry other customers' words and names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from backend.tenancy.audience import Audience
from backend.vectors import ChunkKind

CUSTOMER_KINDS: Final[tuple[ChunkKind, ...]] = ("article",)


def ticket_external_ids(ticket_id: str) -> tuple[str, ...]:
    """The external ids a widget token's ``ticket_id`` can name (``42`` or ``ticket:42``)."""
    if ":" in ticket_id:
        return (ticket_id,)
    return (f"ticket:{ticket_id}", ticket_id)


@dataclass(frozen=True, slots=True)
class AccessScope:
    audience: Audience = "agent"
    ticket_id: str | None = None
    """Set for an agent token bound to one ticket."""

    @property
    def is_customer(self) -> bool:
        return self.audience == "customer"

    def allowed_kinds(self, requested: tuple[ChunkKind, ...]) -> tuple[ChunkKind, ...] | None:
        """The kinds a search may cover; ``None`` when the request asks only for kinds this
        audience may not see (the search then finds nothing)."""
        if not self.is_customer:
            return requested
        if not requested:
            return CUSTOMER_KINDS
        allowed = tuple(k for k in requested if k in CUSTOMER_KINDS)
        return allowed or None

    def internal_only_from(self) -> tuple[str, ...] | None:
        """External ids whose internal content this scope may see (``None``: any)."""
        if self.is_customer:
            return ()
        if self.ticket_id is not None:
            return ticket_external_ids(self.ticket_id)
        return None

    def cache_material(self) -> dict[str, str | None]:
        """What a cached response must be keyed on, so scopes never share an entry."""
        return {"audience": self.audience, "ticket": self.ticket_id}


AGENT_SCOPE: Final = AccessScope()
"""Full company access: API keys and unscoped agent tokens."""
CUSTOMER_SCOPE: Final = AccessScope(audience="customer")
