"""A local, append-only outbox: records that must reach Postgres, kept on disk until they do.

Interactions (and usage rows whose direct write failed) are appended here, one JSON line
each, the moment an answer is served; a background writer drains them into Postgres. The
outbox lives under ``data_dir/outbox`` — a Postgres outage, a restart or a crashed process
therefore loses nothing: the lines wait on disk, and the next process on that data
directory adopts and drains them.

Layout. Each process owns one folder ``outbox/<instance>/`` and holds an exclusive
``flock`` on its ``owner.lock`` for its whole life (the kernel releases it when the process
dies, SIGKILL included). Records go into numbered segment files; the current one is
``<n>.open``; :meth:`FileOutbox.seal` closes it so the writer can drain it, and
:meth:`FileOutbox.done` deletes it once every record in it is written or quarantined. A
folder whose lock can be taken belongs to a dead process: :meth:`FileOutbox.adopt` moves its
segments into ours (a rename on one file system) and removes it.

Durability. Each record is written to the file at once (one ``write``): it survives the
process dying. ``fsync`` happens when a segment is sealed (every flush, a fraction of a
second), so a whole-machine crash can lose at most the last flush interval — the price of
not waiting for the disk on every answer.

Records that Postgres refuses for their own content (a NUL byte, say) are appended to
``outbox/quarantine.jsonl`` with the reason: kept, counted and logged, never retried.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

_log = structlog.get_logger("helpdesk.outbox")

_LOCK_NAME = "owner.lock"
QUARANTINE_NAME = "quarantine.jsonl"


def _dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, default=str) + b"\n"


@dataclass
class Segment:
    """A sealed segment file and how many records it holds."""

    path: Path
    count: int


@dataclass
class _OpenSegment:
    """A segment no longer appended to, not yet fsynced."""

    file: IO[bytes]
    path: Path
    count: int


class FileOutbox:
    """One process's outbox folder under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        name = uuid.uuid4().hex
        # Built under a dot-name and renamed once locked, so another process's adopt()
        # never sees our folder without its lock held.
        staging = root / f".{name}"
        staging.mkdir(parents=True, exist_ok=False)
        self._lock_file = (staging / _LOCK_NAME).open("wb")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.directory = root / name
        staging.rename(self.directory)
        self._sequence = 0
        self._current: IO[bytes] | None = None
        self._current_path: Path | None = None
        self._current_count = 0
        self._closed = False

    # --- writing -------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Write one record to the current segment (one ``write`` call: it is in the file,
        though not yet fsynced, when this returns)."""
        if self._current is None:
            self._sequence += 1
            self._current_path = self.directory / f"{self._sequence:012d}.open"
            # Unbuffered: each record reaches the kernel at once.
            self._current = self._current_path.open("ab", buffering=0)
            self._current_count = 0
        self._current.write(_dumps(record))
        self._current_count += 1

    def seal(self) -> Segment | None:
        """Close the current segment (fsynced) and hand it over for draining."""
        detached = self.detach()
        return None if detached is None else self.finish(detached)

    def detach(self) -> _OpenSegment | None:
        """Stop appending to the current segment (instant; the next record starts a new
        one). :meth:`finish` then makes it durable — off the event loop, since an fsync can
        take milliseconds."""
        if self._current is None or self._current_path is None:
            return None
        detached = _OpenSegment(self._current, self._current_path, self._current_count)
        self._current, self._current_path, self._current_count = None, None, 0
        return detached

    @staticmethod
    def finish(detached: _OpenSegment) -> Segment:
        """fsync, close and rename a detached segment: it is sealed and ready to drain."""
        os.fsync(detached.file.fileno())
        detached.file.close()
        sealed = detached.path.with_suffix(".seg")
        detached.path.rename(sealed)
        return Segment(sealed, detached.count)

    def done(self, segment: Segment) -> None:
        """Every record of ``segment`` is in Postgres (or quarantined): forget it."""
        segment.path.unlink(missing_ok=True)

    def quarantine(self, record: dict[str, Any], reason: str) -> None:
        """Keep a record Postgres refuses for its content, with why, out of the queue."""
        with (self.root / QUARANTINE_NAME).open("ab") as file:
            file.write(_dumps({"reason": reason[:500], "record": record}))
            os.fsync(file.fileno())

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def read(segment: Segment) -> list[dict[str, Any]]:
        """The records of a segment. A torn last line (the process died mid-write) is
        skipped: its answer never left the process either."""
        records: list[dict[str, Any]] = []
        with contextlib.suppress(FileNotFoundError), segment.path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    _log.warning("outbox line unreadable", path=str(segment.path), line=number)
        return records

    def adopt(self) -> list[Segment]:
        """Take over the segments of every outbox folder whose process is gone."""
        adopted: list[Segment] = []
        for folder in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if folder == self.directory or folder.name.startswith(".") or not folder.is_dir():
                continue
            with _ownerless(folder) as free:
                if not free:
                    continue
                for path in sorted(folder.glob("*.open")) + sorted(folder.glob("*.seg")):
                    self._sequence += 1
                    target = self.directory / f"{self._sequence:012d}.seg"
                    path.rename(target)
                    adopted.append(Segment(target, _count_lines(target)))
                for leftover in folder.iterdir():
                    leftover.unlink(missing_ok=True)
                folder.rmdir()
        if adopted:
            _log.info(
                "adopted outbox segments of a stopped process",
                segments=len(adopted),
                records=sum(s.count for s in adopted),
            )
        return adopted

    def close(self) -> None:
        """Seal what is open and let go of the folder; an empty one is removed."""
        if self._closed:
            return
        self._closed = True
        self.seal()
        remaining = [p for p in self.directory.iterdir() if p.name != _LOCK_NAME]
        if not remaining:
            (self.directory / _LOCK_NAME).unlink(missing_ok=True)
            self.directory.rmdir()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()


@contextlib.contextmanager
def _ownerless(folder: Path) -> Iterator[bool]:
    """Whether no live process holds ``folder``'s lock (held by us while inside)."""
    try:
        handle = os.open(folder / _LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        yield True  # its owner was closing it when it stopped
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(handle)


def _count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for line in file if line.strip())
