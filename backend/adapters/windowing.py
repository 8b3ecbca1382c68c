"""Keyset paging over an "updated at or after X, oldest first" listing.

Helpdesk list endpoints (Freshdesk ``updated_since``, ServiceNow ``sys_updated_on>=``) page by
offset. Offset paging over a set that changes while we read it loses rows: when a ticket on an
already-read page is updated it moves to the end, every later row shifts one place left, and the
row at the next page boundary slides onto a page we already read; our high-water mark has moved
past it, so no later sync sees it either. A busy helpdesk updates tickets during any long
backfill, so this is not theoretical.

:class:`UpdatedWindow` avoids it by rolling the window start forward to the newest
``updated_at`` seen after every page and reading page 1 again. The filter is inclusive, so the
rows at exactly that timestamp come back: they are remembered by id (``edge_ids``) and skipped.
Only when a whole page shares one timestamp (a bulk update) does it move to the next page of
the same window, which is where platform page caps can bite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from backend.adapters.base import UtcDatetime, as_utc


class UpdatedWindow(BaseModel):
    """Where a ``updated >= since`` listing continues. JSON-serializable, immutable."""

    model_config = ConfigDict(frozen=True)

    since: UtcDatetime
    """Inclusive lower bound sent to the platform."""
    page: int = Field(default=1, ge=1)
    """1-based page within this window."""
    edge_ids: tuple[str, ...] = ()
    """Ids already emitted whose updated time equals ``since``: the inclusive bound returns
    them again, and they must not be emitted twice."""

    def is_new(self, item_id: str, updated_at: datetime) -> bool:
        """False for a row already emitted at the window edge."""
        return not (as_utc(updated_at) == self.since and item_id in self.edge_ids)

    def advance(self, seen: Sequence[tuple[str, datetime]]) -> UpdatedWindow:
        """The window after a page that listed ``seen`` (id, updated time), in listing order.

        ``seen`` should hold every row the page listed (new or duplicate), so the edge set
        stays complete. With no visible rows (ServiceNow ACLs can hide a whole page) or only
        rows at the edge, the next page of the same window follows; otherwise the window rolls
        forward to the newest timestamp and restarts at page 1.
        """
        newest = max((as_utc(updated) for _, updated in seen), default=self.since)
        if newest > self.since:
            return UpdatedWindow(
                since=newest,
                page=1,
                edge_ids=_unique(item_id for item_id, updated in seen if as_utc(updated) == newest),
            )
        at_edge = (item_id for item_id, updated in seen if as_utc(updated) == self.since)
        return UpdatedWindow(
            since=self.since, page=self.page + 1, edge_ids=_unique([*self.edge_ids, *at_edge])
        )


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


__all__ = ["UpdatedWindow"]
