"""Keyset paging over an "updated at or after X, oldest first" listing.

Helpdesk list endpoints (Freshdesk ``updated_since``, ServiceNow ``sys_updated_on>=``) page by
offset. Offset paging over a set that changes while we read it loses rows: when a ticket on an
already-read page is updated it moves to the end, every later row shifts one place left, and the
row at the next page boundary slides onto a page we already read; our high-water mark has moved
past it, so no later sync sees it either. A busy helpdesk updates tickets during any long
backfill, so this is not theoretical.

:class:`UpdatedWindow` avoids it by rolling the window start forward to the newest
``updated_at`` seen after every page and reading page 1 again. The filter is inclusive, so the
rows at exactly that timestamp come back. Both platforms stamp updates with one-second
resolution, and an automation often touches a ticket within the second an agent replied: a row
listed again with the *same* timestamp may still have changed. So the edge remembers each row
with a digest of the record as it was listed (``edge``), and a re-listed row is skipped only
when its digest is unchanged; a changed one is emitted again. Only when a whole page shares one
timestamp (a bulk update) does it move to the next page of the same window, which is where
platform page caps can bite.

The digest covers the listed row only. What hangs off a row (Freshdesk conversations) can change
within the row's second without changing the row: a note added 300 ms after the ticket was read
leaves ``updated_at`` and the listing as they were. So the window also remembers which edge rows
had their children read while that second may still have been open (``unsettled``); a caller
reads those once more after the second has closed (:meth:`UpdatedWindow.needs_recheck`), which
settles them. Each edge row is re-read at most once, so a quiet helpdesk does not re-fetch the
same threads every round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.adapters.base import UtcDatetime, as_utc

EdgeRow = tuple[str, datetime, str]
"""(id, updated time, digest) of one listed row."""

EDGE_SETTLE = timedelta(seconds=60)
"""How long after a second ends before a read counts as having seen everything written in it:
room for clock skew between us and the platform and for a write to become visible to reads.
Reading late costs nothing extra (one re-read per unsettled edge row either way)."""


def record_digest(record: Mapping[str, Any]) -> str:
    """A short, stable digest of a listed record (canonical JSON, sorted keys).

    Sixteen hex characters (64 bits) keep the checkpoint small; a collision would need two
    versions of one record within one second to collide, which is negligible.
    """
    data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()[:16]


class UpdatedWindow(BaseModel):
    """Where a ``updated >= since`` listing continues. JSON-serializable, immutable."""

    model_config = ConfigDict(frozen=True)

    since: UtcDatetime
    """Inclusive lower bound sent to the platform."""
    page: int = Field(default=1, ge=1)
    """1-based page within this window."""
    edge: dict[str, str] = Field(default_factory=dict)
    """Rows already emitted whose updated time equals ``since``, id → digest of the record as
    listed: the inclusive bound returns them again, and they are emitted again only if their
    content changed within that second."""

    unsettled: tuple[str, ...] = ()
    """Edge rows whose children (e.g. conversations) were read before ``since``'s second had
    surely closed: something added within that second may have been missed. Re-read once,
    then dropped (see :meth:`needs_recheck`)."""

    @model_validator(mode="before")
    @classmethod
    def _legacy_edge_ids(cls, data: Any) -> Any:
        # Checkpoints saved before digests were kept list bare ids; an empty digest never
        # matches, so those rows are emitted once more (ingest skips them if unchanged).
        if isinstance(data, dict) and "edge_ids" in data:
            data = dict(data)
            legacy = data.pop("edge_ids") or ()
            data.setdefault("edge", dict.fromkeys(legacy, ""))
        return data

    def is_new(self, item_id: str, updated_at: datetime, digest: str) -> bool:
        """False only for a row already emitted at the window edge with the same content."""
        return not (as_utc(updated_at) == self.since and self.edge.get(item_id) == digest)

    def needs_recheck(self, item_id: str, updated_at: datetime, digest: str) -> bool:
        """True for a row listed again unchanged at the edge whose children were read while its
        second may still have been open: read them again (once)."""
        return not self.is_new(item_id, updated_at, digest) and item_id in self.unsettled

    def second_closed(self, now: datetime) -> bool:
        """Whether a read at ``now`` sees everything written within the edge second."""
        return closed_at(self.since, now)

    def advance(
        self,
        seen: Sequence[EdgeRow],
        *,
        read: Collection[str] = (),
        read_at: datetime | None = None,
    ) -> UpdatedWindow:
        """The window after a page that listed ``seen`` (id, updated time, digest), in order.

        ``seen`` should hold every row the page listed (new or duplicate), so the edge set
        stays complete. With no visible rows (ServiceNow ACLs can hide a whole page) or only
        rows at the edge, the next page of the same window follows; otherwise the window rolls
        forward to the newest timestamp and restarts at page 1.

        ``read`` are the rows whose children the page read, at ``read_at``; those at the new
        edge become ``unsettled`` when ``read_at`` is too close to their second. Callers that
        read no children leave both out.
        """
        newest = max((as_utc(updated) for _, updated, _ in seen), default=self.since)
        open_reads = set(read) if read_at is not None and not closed_at(newest, read_at) else set()
        if newest > self.since:
            edge = {key: digest for key, updated, digest in seen if as_utc(updated) == newest}
            return UpdatedWindow(
                since=newest,
                page=1,
                edge=edge,
                unsettled=tuple(sorted(open_reads & edge.keys())),
            )
        at_edge = {key: digest for key, updated, digest in seen if as_utc(updated) == self.since}
        edge = {**self.edge, **at_edge}
        unsettled = (set(self.unsettled) - set(read)) | open_reads
        return UpdatedWindow(
            since=self.since,
            page=self.page + 1,
            edge=edge,
            unsettled=tuple(sorted(unsettled & edge.keys())),
        )


def closed_at(second: datetime, now: datetime) -> bool:
    """Whether a read at ``now`` comes surely after everything stamped with ``second``."""
    return as_utc(now) >= as_utc(second) + timedelta(seconds=1) + EDGE_SETTLE


__all__ = ["EDGE_SETTLE", "EdgeRow", "UpdatedWindow", "closed_at", "record_digest"]
