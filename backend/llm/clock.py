"""The router's notion of time, injected so retries and cool-downs are testable.

Backoff sleeps, circuit-breaker cool-downs and the budget month all read this clock; request
timeouts do not (they bound real I/O and use the event loop's time).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def month_of(moment: datetime) -> str:
    """The budget period a moment falls in, as ``YYYY-MM`` (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m")
