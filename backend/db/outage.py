"""Telling a store outage apart from a bad statement.

An outage (the server is down, restarting, refusing connections, out of connections, or
the network to it broke) is worth waiting out: the same statement will succeed later, so
callers answer 503 with ``Retry-After`` and queued writes are retried. Anything else with
a SQLSTATE (a value Postgres refuses, a constraint, a row-level-security violation) is the
statement's own fault and will fail the same way on every retry.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from backend.errors import StoreUnavailable

# SQLSTATE classes of a server that cannot serve now: connection exception, insufficient
# resources (too many connections, disk full), operator intervention (shutdown, starting
# up), system error, and transaction rollbacks (serialization failure, deadlock).
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58", "40"})


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def is_database_outage(exc: BaseException) -> bool:
    """True when ``exc`` means Postgres is unreachable or cannot serve right now."""
    if isinstance(exc, StoreUnavailable):
        return exc.store == "postgres"
    state = _sqlstate(exc)
    if state is not None:
        return state[:2] in _OUTAGE_SQLSTATE_CLASSES
    if _refused_by_driver(exc):
        return False
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError):
        # No SQLSTATE: the driver failed before the server answered (a dropped socket).
        inner = exc.orig
        return inner is None or is_database_outage(inner) or "connection" in str(inner).lower()
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True
    if isinstance(exc, OSError):  # refused, unreachable, socket path gone
        return True
    module = type(exc).__module__
    # asyncpg's client-side connection errors (InterfaceError, ConnectionDoesNotExistError,
    # "connection was closed in the middle of operation") carry no SQLSTATE class 08 always.
    return module.startswith("asyncpg") and "connection" in str(exc).lower()


def _refused_by_driver(exc: BaseException) -> bool:
    """The driver refused a value before sending it (asyncpg's ``DataError``: a wrong type,
    an out-of-range integer): the statement's fault, whatever class wraps it."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if type(seen).__name__ == "DataError" and type(seen).__module__.startswith("asyncpg"):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False
