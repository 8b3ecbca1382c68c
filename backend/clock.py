"""Injectable time: ``now()`` and ``sleep()``, so tests control expiry, backoff and schedules
without really waiting."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Time as the service sees it, injected so tests control it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (cool-downs, backoff)."""
        ...

    def now(self) -> datetime:
        """The current time, tz-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A test clock: ``sleep`` advances time instantly and records how long it was asked for."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (
            (start if start.tzinfo else start.replace(tzinfo=UTC)).astimezone(UTC)
            if start is not None
            else datetime(2025, 1, 1, tzinfo=UTC)
        )
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._now.timestamp()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self.advance(seconds)
        # Still yield to the event loop, as a real sleep would.
        await asyncio.sleep(0)
