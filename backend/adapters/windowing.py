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
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.adapters.base import UtcDatetime, as_utc

EdgeRow = tuple[str, datetime, str]
"""(id, updated time, digest) of one listed row."""


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

    def advance(self, seen: Sequence[EdgeRow]) -> UpdatedWindow:
        """The window after a page that listed ``seen`` (id, updated time, digest), in order.

        ``seen`` should hold every row the page listed (new or duplicate), so the edge set
        stays complete. With no visible rows (ServiceNow ACLs can hide a whole page) or only
        rows at the edge, the next page of the same window follows; otherwise the window rolls
        forward to the newest timestamp and restarts at page 1.
        """
        newest = max((as_utc(updated) for _, updated, _ in seen), default=self.since)
        if newest > self.since:
            return UpdatedWindow(
                since=newest,
                page=1,
                edge={key: digest for key, updated, digest in seen if as_utc(updated) == newest},
            )
        at_edge = {key: digest for key, updated, digest in seen if as_utc(updated) == self.since}
        return UpdatedWindow(since=self.since, page=self.page + 1, edge={**self.edge, **at_edge})


__all__ = ["EdgeRow", "UpdatedWindow", "record_digest"]
