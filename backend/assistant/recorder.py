"""Recording assistant calls through a durable outbox, off the request path.

Every answer, draft and summary is recorded as an interaction (so it can receive feedback
and be audited), but a cached answer takes well under a millisecond to serve and an
``INSERT`` with its transaction takes several: writing each one inline would make the
database the cost of every cached answer. So the recorder gives each call its id at once,
appends the row to the process's :class:`~backend.outbox.FileOutbox` on local disk (one
``write``, microseconds), and a background writer drains the outbox into Postgres in
batches — one transaction per company per batch, every ``flush_interval_s`` or sooner when
``batch_size`` rows are waiting.

Nothing answered is lost:

- **Postgres down.** Rows wait in the outbox (on disk; at most ``max_in_memory`` of them
  also in memory) and are retried with a growing delay (0.5 s doubling to 2 s) until the
  database answers again. They are never dropped.
- **The process dies.** Its outbox folder stays on disk; the next process on the same data
  directory adopts it (at start, and every ``adopt_interval_s``) and writes the rows.
  Inserts are idempotent (``ON CONFLICT (id) DO NOTHING``), so a row written just before a
  crash is not duplicated by the replay.
- **A bad row.** A batch that Postgres refuses for its content (not for an outage) is
  written again row by row; each row that is still refused (a NUL byte in a question, a
  company deleted meanwhile) is quarantined — kept in ``outbox/quarantine.jsonl`` with the
  reason, counted in ``helpdesk_outbox_quarantined_total`` and logged — and the rest of the
  batch is written.

A row becomes visible up to ``flush_interval_s`` after the response; readers in this
process (feedback, the interactions list) call :meth:`flush` first, so they never miss one.

Usage rows take the same path when their direct write fails (see
:class:`backend.llm.ledger.PostgresBudgetLedger`): ``kind`` says which table a record is for.
Usage rows add to monthly totals, so unlike interactions their replay is not idempotent: a
process killed between committing a spilled usage row and deleting its segment would count
it twice when the segment is adopted. That window (one flush, only for rows that already
failed once) is accepted; losing the row was the alternative.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from backend.clock import Clock
from backend.db.outage import is_database_outage
from backend.db.repositories import interactions as interaction_repo
from backend.db.repositories import usage as usage_repo
from backend.db.session import Database
from backend.outbox import FileOutbox, Segment

_log = structlog.get_logger("helpdesk.interactions")

OUTBOX_PENDING = Gauge(
    "helpdesk_outbox_pending",
    "Records served but not yet written to Postgres (interactions, spilled usage).",
)
OUTBOX_QUARANTINED = Counter(
    "helpdesk_outbox_quarantined",
    "Records Postgres refused for their content, kept in outbox/quarantine.jsonl.",
    ["kind"],
)
INTERACTION_WRITE_ERRORS = Counter(
    "helpdesk_interaction_write_errors",
    "Failed writes of outbox records to Postgres (retried; nothing is dropped).",
)

INTERACTION = "interaction"
USAGE = "usage"

Writer = Callable[[Database, str, list[dict[str, Any]]], Awaitable[None]]


async def _write_interactions(
    database: Database, company_id: str, rows: list[dict[str, Any]]
) -> None:
    async with database.tenant_session(company_id) as session:
        await interaction_repo.insert_interactions(
            session,
            [
                {
                    **row,
                    # The tenant the session is scoped to, whatever the row says.
                    "company_id": company_id,
                    "id": uuid.UUID(str(row["id"])),
                    "created_at": datetime.fromisoformat(str(row["created_at"])),
                    "cost_usd": Decimal(str(row["cost_usd"])),
                    "api_key_id": uuid.UUID(str(row["api_key_id"]))
                    if row.get("api_key_id")
                    else None,
                }
                for row in rows
            ],
        )


async def _write_usage(database: Database, company_id: str, rows: list[dict[str, Any]]) -> None:
    async with database.tenant_session(company_id) as session:
        for row in rows:
            await usage_repo.add_usage(
                session,
                company_id=company_id,
                month=date.fromisoformat(str(row["month"])),
                provider=str(row["provider"]),
                model=str(row["model"]),
                prompt_tokens=int(row["prompt_tokens"]),
                completion_tokens=int(row["completion_tokens"]),
                cost_usd=float(row["cost_usd"]),
            )


_WRITERS: dict[str, Writer] = {INTERACTION: _write_interactions, USAGE: _write_usage}


class _Queued:
    """A sealed segment waiting to be drained; ``records`` is ``None`` while spilled."""

    def __init__(self, segment: Segment, records: list[dict[str, Any]] | None) -> None:
        self.segment = segment
        self.records = records

    @property
    def count(self) -> int:
        return self.segment.count if self.records is None else len(self.records)


class _Outage(Exception):
    """Postgres cannot serve now: stop draining, keep everything, retry later."""


class InteractionRecorder:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        outbox: FileOutbox,
        flush_interval_s: float = 0.2,
        batch_size: int = 500,
        max_in_memory: int = 50_000,
        adopt_interval_s: float = 30.0,
    ) -> None:
        self._database = database
        self._clock = clock
        self._outbox = outbox
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._max_in_memory = max_in_memory
        self._adopt_interval = adopt_interval_s
        self._current: list[dict[str, Any]] = []
        self._queue: deque[_Queued] = deque()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_adopt = float("-inf")
        # Grows (0.5 s doubling to 2 s) while the database keeps failing, so an outage is
        # not retried on every tick; reset by the next successful write.
        self._retry_delay = 0.0
        # Deleted companies → when: their records from before then are dropped unwritten.
        self._discarded: dict[str, float] = {}

    @property
    def pending(self) -> int:
        """Records served and not yet in Postgres (nor quarantined)."""
        return len(self._current) + sum(q.count for q in self._queue)

    def record(self, *, company_id: str, **fields: Any) -> uuid.UUID:
        """Queue one interaction row; returns its id (valid for feedback at once). The row
        is on disk when this returns."""
        interaction_id = uuid.uuid4()
        row = {
            "id": str(interaction_id),
            "company_id": company_id,
            "created_at": self._clock.now().isoformat(),
            "cost_usd": str(Decimal(str(fields.pop("cost_usd", 0.0)))),
            **fields,
        }
        if row.get("api_key_id") is not None:
            row["api_key_id"] = str(row["api_key_id"])
        self.enqueue(INTERACTION, company_id, row)
        return interaction_id

    def discard_company(self, company_id: str) -> int:
        """Forget a deleted company's records served before now: they are neither written
        (which would bring its rows back) nor quarantined (which would keep its data)."""
        self._discarded[company_id] = self._clock.now().timestamp()
        before = self.pending
        self._current = [r for r in self._current if not self._is_discarded(r)]
        for queued in self._queue:
            if queued.records is not None:
                queued.records = [r for r in queued.records if not self._is_discarded(r)]
        removed = before - self.pending
        OUTBOX_PENDING.dec(removed)
        return removed

    def _is_discarded(self, record: dict[str, Any]) -> bool:
        cutoff = self._discarded.get(str(record.get("company_id")))
        return cutoff is not None and float(record.get("enqueued_at", 0.0)) <= cutoff

    def enqueue(self, kind: str, company_id: str, row: dict[str, Any]) -> None:
        """Append one record for ``kind``'s table (JSON-ready values) to the outbox."""
        record = {
            "kind": kind,
            "company_id": company_id,
            "enqueued_at": self._clock.now().timestamp(),
            "row": row,
        }
        self._outbox.append(record)
        self._current.append(record)
        OUTBOX_PENDING.inc()
        self._ensure_running()
        if len(self._current) >= self._batch_size:
            self._wake.set()

    def _ensure_running(self) -> None:
        if self._task is None and not self._closed:
            with contextlib.suppress(RuntimeError):  # no running loop: the next flush drains
                self._task = asyncio.get_running_loop().create_task(self._run())

    async def start(self) -> None:
        """Adopt what stopped processes left behind and start draining it."""
        self._ensure_running()
        self._wake.set()

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=max(self._interval, self._retry_delay)
                )
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the writer die; the records are on disk
                _log.exception("outbox drain failed")

    async def flush(self) -> None:
        """Write every queued record now, as far as Postgres lets us (readers that must see
        the rows call this). Never raises for an outage: the records stay queued."""
        async with self._lock:
            await self._seal()
            if time.monotonic() - self._last_adopt >= self._adopt_interval:
                self._last_adopt = time.monotonic()
                for segment in self._outbox.adopt():
                    self._queue.append(_Queued(segment, None))
                    OUTBOX_PENDING.inc(segment.count)
            try:
                while self._queue:
                    queued = self._queue[0]
                    if queued.records is None:
                        queued.records = FileOutbox.read(queued.segment)
                        # A torn last line is not a record: keep the gauge exact.
                        OUTBOX_PENDING.inc(len(queued.records) - queued.segment.count)
                        queued.segment.count = len(queued.records)
                    await self._drain(queued)
                    self._outbox.done(queued.segment)
                    self._queue.popleft()
                self._retry_delay = 0.0
            except _Outage:
                self._retry_delay = min(max(self._retry_delay * 2, 0.5), 2.0)

    async def _seal(self) -> None:
        # Detached here, with its records, before any await: record() keeps appending to a
        # new segment meanwhile. The fsync runs in a thread, off the event loop.
        detached = self._outbox.detach()
        if detached is None:
            return
        records, self._current = self._current, []
        segment = await asyncio.to_thread(FileOutbox.finish, detached)
        in_memory = sum(len(q.records) for q in self._queue if q.records is not None)
        # Beyond the memory budget a segment waits on disk only, and is read back in turn.
        keep = in_memory + len(records) <= self._max_in_memory
        self._queue.append(_Queued(segment, records if keep else None))

    async def _drain(self, queued: _Queued) -> None:
        """Write ``queued``'s records; those written or quarantined leave it. Raises
        :class:`_Outage` (with the rest still in it) when Postgres cannot serve."""
        assert queued.records is not None
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for record in queued.records:
            groups[(record["kind"], record["company_id"])].append(record)
        for (kind, company_id), records in groups.items():
            for start in range(0, len(records), self._batch_size):
                settled: list[dict[str, Any]] = []
                try:
                    await self._write_chunk(
                        kind, company_id, records[start : start + self._batch_size], settled
                    )
                finally:
                    gone = {id(r) for r in settled}
                    queued.records = [r for r in queued.records if id(r) not in gone]
                    OUTBOX_PENDING.dec(len(settled))

    async def _write_chunk(
        self,
        kind: str,
        company_id: str,
        chunk: list[dict[str, Any]],
        settled: list[dict[str, Any]],
    ) -> None:
        """Write ``chunk`` in one transaction, or row by row if its content is refused;
        every record written or quarantined is added to ``settled``."""
        dropped = [r for r in chunk if self._is_discarded(r)]
        if dropped:
            settled.extend(dropped)
            chunk = [r for r in chunk if not self._is_discarded(r)]
            if not chunk:
                return
        writer = _WRITERS.get(kind)
        if writer is None:
            for record in chunk:
                self._quarantine(record, f"unknown record kind {kind!r}")
                settled.append(record)
            return
        try:
            await writer(self._database, company_id, [r["row"] for r in chunk])
            settled.extend(chunk)
            return
        except Exception as exc:
            self._raise_if_outage(exc, company_id)
            if len(chunk) == 1:
                self._quarantine(chunk[0], f"{type(exc).__name__}: {exc}")
                settled.append(chunk[0])
                return
        # The batch was refused for its content: find the row(s) at fault, one by one.
        for record in chunk:
            try:
                await writer(self._database, company_id, [record["row"]])
            except Exception as exc:
                self._raise_if_outage(exc, company_id)
                self._quarantine(record, f"{type(exc).__name__}: {exc}")
            settled.append(record)

    @staticmethod
    def _raise_if_outage(exc: Exception, company_id: str) -> None:
        INTERACTION_WRITE_ERRORS.inc()
        if is_database_outage(exc):
            _log.warning(
                "postgres unavailable; outbox records wait",
                company_id=company_id,
                error=type(exc).__name__,
            )
            raise _Outage from exc

    def _quarantine(self, record: dict[str, Any], reason: str) -> None:
        self._outbox.quarantine(record, reason)
        OUTBOX_QUARANTINED.labels(kind=record.get("kind", "unknown")).inc()
        _log.error(
            "outbox record quarantined",
            kind=record.get("kind"),
            company_id=record.get("company_id"),
            reason=reason[:300],
        )

    async def close(self) -> None:
        """Stop the background writer and write what is queued (graceful shutdown). What
        Postgres does not take now stays in the outbox for the next process."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
        self._outbox.close()
