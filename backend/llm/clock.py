"""The router's notion of time, injected so retries and cool-downs are testable.

Backoff sleeps, circuit-breaker cool-downs and the budget month all read this clock; request
timeouts do not (they bound real I/O and use the event loop's time).
"""

from __future__ import annotations

from datetime import UTC, datetime

from backend.clock import Clock, SystemClock

__all__ = ["Clock", "SystemClock", "month_of"]


def month_of(moment: datetime) -> str:
    """The budget period a moment falls in, as ``YYYY-MM`` (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m")
