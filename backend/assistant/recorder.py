"""Recording assistant calls in batches, off the request path.

Every answer, draft and summary is recorded as an interaction (so it can receive feedback
and be audited), but a cached answer takes well under a millisecond to serve and an
``INSERT`` with its transaction takes several: writing each one inline would make the
database the cost of every cached answer. So the recorder gives each call its id at once
and writes the rows in batches — one transaction per company per flush, every
``flush_interval_s`` or sooner when ``batch_size`` rows are waiting.

What this costs, deliberately: a row becomes visible up to ``flush_interval_s`` after the
response (readers in this process — feedback, the interactions list — call :meth:`flush`
first, so they never miss one), and a crash loses the rows not yet written (a graceful
shutdown flushes them). If the database is unreachable, rows wait and are retried, up to
``max_pending`` rows; beyond that the oldest are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from prometheus_client import Counter

from backend.clock import Clock
from backend.db.repositories import interactions as interaction_repo
from backend.db.session import Database

_log = structlog.get_logger("helpdesk.interactions")
_MAX_ATTEMPTS = 5

INTERACTIONS_DROPPED = Counter(
    "helpdesk_interactions_dropped",
    "Interaction records dropped because the database stayed unreachable too long.",
)
INTERACTION_WRITE_ERRORS = Counter(
    "helpdesk_interaction_write_errors",
    "Failed batch writes of interaction records (retried on the next flush).",
)


class InteractionRecorder:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        flush_interval_s: float = 0.2,
        batch_size: int = 500,
        max_pending: int = 50_000,
    ) -> None:
        self._database = database
        self._clock = clock
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Grows (0.5 s doubling to 10 s) while the database keeps failing, so an outage is
        # not retried on every tick; reset by the next successful write.
        self._retry_delay = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, *, company_id: str, **fields: Any) -> uuid.UUID:
        """Queue one interaction row; returns its id (valid for feedback at once)."""
        interaction_id = uuid.uuid4()
        self._pending.append(
            {
                "id": interaction_id,
                "company_id": company_id,
                "created_at": self._created_at(),
                "cost_usd": Decimal(str(fields.pop("cost_usd", 0.0))),
                **fields,
            }
        )
        if len(self._pending) > self._max_pending:
            dropped = len(self._pending) - self._max_pending
            del self._pending[:dropped]
            INTERACTIONS_DROPPED.inc(dropped)
            _log.error("interaction records dropped", dropped=dropped)
        self._ensure_running()
        if len(self._pending) >= self._batch_size:
            self._wake.set()
        return interaction_id

    def discard_company(self, company_id: str) -> int:
        """Forget a deleted company's queued rows (they could only fail to insert)."""
        before = len(self._pending)
        self._pending = [row for row in self._pending if row["company_id"] != company_id]
        return before - len(self._pending)

    def _created_at(self) -> datetime:
        return self._clock.now()

    def _ensure_running(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=max(self._interval, self._retry_delay)
                )
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write every queued row now (also called by readers that must see them)."""
        async with self._lock:
            failed: set[str] = set()
            while True:
                batch = [row for row in self._pending if row["company_id"] not in failed]
                if not batch:
                    return
                by_company: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for row in batch[: self._batch_size * 5]:
                    by_company[row["company_id"]].append(row)
                for company_id, rows in by_company.items():
                    if not await self._write(company_id, rows):
                        failed.add(company_id)
                        continue
                    written = {row["id"] for row in rows}
                    # Rebuilt, not sliced: record() may have appended while we awaited.
                    self._pending = [row for row in self._pending if row["id"] not in written]

    async def _write(self, company_id: str, rows: list[dict[str, Any]]) -> bool:
        try:
            async with self._database.tenant_session(company_id) as session:
                await interaction_repo.insert_interactions(
                    session, [{k: v for k, v in row.items() if k != "attempts"} for row in rows]
                )
            self._retry_delay = 0.0
            return True
        except Exception:
            self._retry_delay = min(max(self._retry_delay * 2, 0.5), 10.0)
            INTERACTION_WRITE_ERRORS.inc()
            _log.exception("writing interaction records failed", company_id=company_id)
            # A row that keeps failing (its company was deleted, say) must not block the
            # queue for ever: after a few tries it is dropped and counted.
            hopeless: set[uuid.UUID] = set()
            for row in rows:
                row["attempts"] = row.get("attempts", 0) + 1
                if row["attempts"] >= _MAX_ATTEMPTS:
                    hopeless.add(row["id"])
            if hopeless:
                INTERACTIONS_DROPPED.inc(len(hopeless))
                self._pending = [row for row in self._pending if row["id"] not in hopeless]
            return False

    async def close(self) -> None:
        """Stop the background writer and write what is queued (graceful shutdown)."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
