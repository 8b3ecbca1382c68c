from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import SyncRun

ACTIVE_STATUSES = ("queued", "running")


async def insert_sync_run(
    session: AsyncSession,
    *,
    company_id: str,
    connector_id: uuid.UUID,
    trigger: str,
    status: str,
    resumed_from: uuid.UUID | None = None,
) -> SyncRun:
    run = SyncRun(
        company_id=company_id,
        connector_id=connector_id,
        trigger=trigger,
        status=status,
        resumed_from=resumed_from,
    )
    session.add(run)
    await session.flush()
    await session.refresh(run)
    return run


async def get_sync_run(session: AsyncSession, run_id: uuid.UUID) -> SyncRun | None:
    return await session.get(SyncRun, run_id)


async def get_active_sync_run(session: AsyncSession, connector_id: uuid.UUID) -> SyncRun | None:
    result = await session.execute(
        select(SyncRun).where(
            SyncRun.connector_id == connector_id, SyncRun.status.in_(ACTIVE_STATUSES)
        )
    )
    return result.scalar_one_or_none()


async def list_sync_runs(
    session: AsyncSession, *, connector_id: uuid.UUID | None, limit: int
) -> list[SyncRun]:
    query = select(SyncRun).order_by(SyncRun.created_at.desc()).limit(limit)
    if connector_id is not None:
        query = query.where(SyncRun.connector_id == connector_id)
    return list((await session.execute(query)).scalars())


async def update_sync_run(session: AsyncSession, run_id: uuid.UUID, **values: Any) -> None:
    await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))


async def add_sync_counts(
    session: AsyncSession,
    run_id: uuid.UUID,
    *,
    fetched: int,
    upserted: int,
    unchanged: int,
    deleted: int,
    failed: int,
    errors: list[dict[str, Any]],
    counts: dict[str, int] | None = None,
    chunks: int = 0,
) -> None:
    if counts:
        # Counters by reason are merged in Python under a row lock: one run has one writer,
        # and the lock keeps a stale-run takeover from interleaving.
        current = await session.scalar(
            select(SyncRun.counts).where(SyncRun.id == run_id).with_for_update()
        )
        merged = dict(current or {})
        for key, value in counts.items():
            merged[key] = int(merged.get(key, 0)) + value
        await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(counts=merged))
    await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(
            fetched=SyncRun.fetched + fetched,
            upserted=SyncRun.upserted + upserted,
            unchanged=SyncRun.unchanged + unchanged,
            deleted=SyncRun.deleted + deleted,
            failed=SyncRun.failed + failed,
            chunks=SyncRun.chunks + chunks,
            # Keep the first 100 errors: enough to diagnose, bounded in size.
            errors=(SyncRun.errors + _jsonb(errors[:100])),
        )
    )


def _jsonb(value: list[dict[str, Any]]) -> Any:
    from sqlalchemy import cast
    from sqlalchemy.dialects.postgresql import JSONB

    return cast(value, JSONB)


async def finish_sync_run(
    session: AsyncSession, run_id: uuid.UUID, *, status: str, finished_at: datetime
) -> None:
    """Set the final status of a run still running (an abandoned one keeps its status)."""
    await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status == "running")
        .values(status=status, finished_at=finished_at)
    )


async def claim_queued_run(
    session: AsyncSession, run_id: uuid.UUID, *, now: datetime
) -> SyncRun | None:
    """queued → running, atomically: of two deliveries of one job only one gets the run."""
    result = await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status == "queued")
        .values(status="running", started_at=now, heartbeat_at=now)
        .returning(SyncRun)
    )
    return result.scalar_one_or_none()


async def list_stale_running_runs(session: AsyncSession, *, cutoff: datetime) -> list[SyncRun]:
    """Running runs whose last sign of life is older than ``cutoff``: their worker died."""
    last_seen = func.coalesce(SyncRun.heartbeat_at, SyncRun.started_at, SyncRun.created_at)
    result = await session.execute(
        select(SyncRun).where(SyncRun.status == "running", last_seen < cutoff)
    )
    return list(result.scalars())


async def abandon_if_stale(
    session: AsyncSession,
    run_id: uuid.UUID,
    *,
    cutoff: datetime,
    now: datetime,
    error: dict[str, Any],
) -> SyncRun | None:
    """Mark a queued/running run ``abandoned`` if it is still silent since ``cutoff``;
    ``None`` when another process got there first or the run came back to life."""
    last_seen = func.coalesce(SyncRun.heartbeat_at, SyncRun.started_at, SyncRun.created_at)
    result = await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status.in_(ACTIVE_STATUSES), last_seen < cutoff)
        .values(status="abandoned", finished_at=now, errors=SyncRun.errors + _jsonb([error]))
        .returning(SyncRun)
    )
    return result.scalar_one_or_none()


async def get_successor(session: AsyncSession, run_id: uuid.UUID) -> SyncRun | None:
    """The run that took ``run_id`` over, if any."""
    result = await session.execute(select(SyncRun).where(SyncRun.resumed_from == run_id))
    return result.scalar_one_or_none()


async def list_stale_queued_runs(session: AsyncSession, *, cutoff: datetime) -> list[SyncRun]:
    """Queued runs created before ``cutoff`` that no worker ever claimed."""
    result = await session.execute(
        select(SyncRun).where(SyncRun.status == "queued", SyncRun.created_at < cutoff)
    )
    return list(result.scalars())


async def touch_heartbeat(session: AsyncSession, run_id: uuid.UUID, *, now: datetime) -> bool:
    """Record a sign of life; ``False`` when the run is no longer running (taken over)."""
    result = await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status == "running")
        .values(heartbeat_at=now)
        .returning(SyncRun.id)
    )
    return result.scalar_one_or_none() is not None


async def cancel_active_sync_runs(session: AsyncSession, *, reason: str, at: datetime) -> int:
    """Mark every queued or running run cancelled (a suspended or deleted company); a worker
    that later picks one up finds it no longer queued and drops it."""
    result = await session.execute(
        update(SyncRun)
        .where(SyncRun.status.in_(("queued", "running")))
        .values(status="cancelled", finished_at=at, errors=[{"message": reason}])
    )
    return int(getattr(result, "rowcount", 0) or 0)
