"""What the lifespan wires once per process and handlers reach through dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from backend.config import Settings
from backend.db.session import Database
from backend.tenancy.clock import Clock

ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass
class AppState:
    settings: Settings
    database: Database
    clock: Clock
    # name → check; /readyz runs each configured store's check.
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
