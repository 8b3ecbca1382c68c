from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
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
) -> SyncRun:
    run = SyncRun(company_id=company_id, connector_id=connector_id, trigger=trigger, status=status)
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
    await update_sync_run(session, run_id, status=status, finished_at=finished_at)


async def cancel_active_sync_runs(session: AsyncSession, *, reason: str, at: datetime) -> int:
    """Mark every queued or running run cancelled (a suspended or deleted company); a worker
    that later picks one up finds it no longer queued and drops it."""
    result = await session.execute(
        update(SyncRun)
        .where(SyncRun.status.in_(("queued", "running")))
        .values(status="cancelled", finished_at=at, errors=[{"message": reason}])
    )
    return int(getattr(result, "rowcount", 0) or 0)
