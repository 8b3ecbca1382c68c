"""A circuit breaker per provider, so a failing provider is skipped instead of waited on.

closed ──N consecutive failures──▶ open ──cool-down elapsed──▶ half-open
  ▲                                  ▲                             │
  └────────── probe succeeds ────────┼──────── probe fails ────────┘

While open, calls go straight to the next provider in the chain. Half-open lets exactly one
probe call through at a time; its outcome closes or re-opens the circuit. Time is read from
the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.llm.clock import Clock

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cooldown_s: float = 30.0


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() - self._opened_at >= self._policy.cooldown_s:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def try_acquire(self) -> bool:
        """May a call go to this provider now? Claims the probe slot when half-open."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        probing = self._probe_in_flight
        self._probe_in_flight = False
        if probing or self._failures >= self._policy.failure_threshold:
            self._opened_at = self._clock.monotonic()

    def release(self) -> None:
        """The call ended without saying anything about health (e.g. a rejected request)."""
        self._probe_in_flight = False
