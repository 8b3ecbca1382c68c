"""SQL for webhooks in: endpoint secrets, received event ids, items waiting for a fetch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class WebhookEndpoint:
    connector_id: uuid.UUID
    company_id: str
    secret_sealed: bytes
    previous_secret_sealed: bytes | None
    previous_valid_until: datetime | None


async def find_endpoint(session: AsyncSession, connector_id: uuid.UUID) -> WebhookEndpoint | None:
    """The endpoint row, as visible in this session (tenant or webhook-lookup session)."""
    row = (
        await session.execute(
            text(
                "SELECT connector_id, company_id, secret_sealed, previous_secret_sealed, "
                "previous_valid_until FROM webhook_endpoints WHERE connector_id = :c"
            ),
            {"c": connector_id},
        )
    ).one_or_none()
    return WebhookEndpoint(*row) if row is not None else None


async def upsert_endpoint_secret(
    session: AsyncSession,
    *,
    company_id: str,
    connector_id: uuid.UUID,
    secret_sealed: bytes,
    now: datetime,
    previous_valid_until: datetime | None,
) -> None:
    """Set the secret; the one it replaces stays valid until ``previous_valid_until``."""
    await session.execute(
        text(
            "INSERT INTO webhook_endpoints AS e (connector_id, company_id, secret_sealed, "
            "created_at, rotated_at) VALUES (:c, :company, :s, :now, :now) "
            "ON CONFLICT (connector_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, "
            "previous_secret_sealed = e.secret_sealed, previous_valid_until = :until, "
            "rotated_at = excluded.rotated_at"
        ),
        {
            "c": connector_id,
            "company": company_id,
            "s": secret_sealed,
            "now": now,
            "until": previous_valid_until,
        },
    )


async def delete_endpoint(session: AsyncSession, connector_id: uuid.UUID) -> bool:
    result = await session.execute(
        text("DELETE FROM webhook_endpoints WHERE connector_id = :c RETURNING connector_id"),
        {"c": connector_id},
    )
    return result.first() is not None


async def record_new_events(
    session: AsyncSession,
    *,
    company_id: str,
    connector_id: uuid.UUID,
    event_ids: list[str],
    now: datetime,
) -> set[str]:
    """Insert the event ids; returns those not seen before (the others are replays)."""
    if not event_ids:
        return set()
    result = await session.execute(
        text(
            "INSERT INTO webhook_events (company_id, connector_id, event_id, received_at) "
            "SELECT :company, :c, unnest(CAST(:ids AS text[])), :now "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        ),
        {"company": company_id, "c": connector_id, "ids": event_ids, "now": now},
    )
    return {row[0] for row in result}


async def forget_events_before(session: AsyncSession, cutoff: datetime) -> int:
    """Drop event ids older than the replay window (a replay that old fails the timestamp
    check, or — where the platform sends none — only causes a harmless re-fetch)."""
    result = await session.execute(
        text("DELETE FROM webhook_events WHERE received_at < :cutoff"), {"cutoff": cutoff}
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def add_pending(
    session: AsyncSession,
    *,
    company_id: str,
    connector_id: uuid.UUID,
    external_ids: list[str],
    now: datetime,
) -> None:
    """Mark items as waiting for a fetch; an item already waiting absorbs the event."""
    if not external_ids:
        return
    await session.execute(
        text(
            "INSERT INTO webhook_pending AS p "
            "(company_id, connector_id, external_id, first_received_at) "
            "SELECT :company, :c, unnest(CAST(:ids AS text[])), :now "
            "ON CONFLICT (company_id, connector_id, external_id) "
            "DO UPDATE SET events = p.events + 1"
        ),
        {"company": company_id, "c": connector_id, "ids": external_ids, "now": now},
    )


async def claim_drain(session: AsyncSession, connector_id: uuid.UUID) -> bool:
    """Flag a drain as queued; ``True`` when this caller set it (and must enqueue one)."""
    result = await session.execute(
        text(
            "UPDATE webhook_endpoints SET drain_queued = true "
            "WHERE connector_id = :c AND NOT drain_queued RETURNING connector_id"
        ),
        {"c": connector_id},
    )
    return result.first() is not None


async def release_drain(session: AsyncSession, connector_id: uuid.UUID) -> None:
    await session.execute(
        text("UPDATE webhook_endpoints SET drain_queued = false WHERE connector_id = :c"),
        {"c": connector_id},
    )


async def take_pending(
    session: AsyncSession, connector_id: uuid.UUID, *, limit: int
) -> list[tuple[str, datetime, int]]:
    """Remove and return up to ``limit`` waiting items (oldest first): (external id, when
    the first event for it arrived, how many events it absorbed)."""
    result = await session.execute(
        text(
            "DELETE FROM webhook_pending WHERE (company_id, connector_id, external_id) IN ("
            "  SELECT company_id, connector_id, external_id FROM webhook_pending"
            "  WHERE connector_id = :c ORDER BY first_received_at LIMIT :limit"
            "  FOR UPDATE SKIP LOCKED) "
            "RETURNING external_id, first_received_at, events"
        ),
        {"c": connector_id, "limit": limit},
    )
    return [(row[0], row[1], int(row[2])) for row in result]
