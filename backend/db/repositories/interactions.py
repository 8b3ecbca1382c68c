from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Feedback, Interaction


async def insert_interactions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert a batch of interaction rows (column → value dicts, ids included) at once."""
    if not rows:
        return
    # A record of calls already answered: losing the last few milliseconds of these on a
    # server crash is acceptable, waiting for a WAL flush on every batch is not.
    await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    await session.execute(insert(Interaction), rows)


async def get_interaction(session: AsyncSession, interaction_id: uuid.UUID) -> Interaction | None:
    return await session.get(Interaction, interaction_id)


async def list_interactions(
    session: AsyncSession, *, task: str | None, limit: int, offset: int
) -> list[Interaction]:
    query = select(Interaction).order_by(Interaction.created_at.desc())
    if task is not None:
        query = query.where(Interaction.task == task)
    return list((await session.execute(query.limit(limit).offset(offset))).scalars())


async def insert_feedback(
    session: AsyncSession,
    *,
    company_id: str,
    interaction_id: uuid.UUID,
    rating: str | None,
    reason: str | None,
    comment: str | None,
    inserted: bool,
    outcome: str | None = None,
) -> Feedback:
    feedback = Feedback(
        company_id=company_id,
        interaction_id=interaction_id,
        rating=rating,
        reason=reason,
        comment=comment,
        inserted=inserted,
        outcome=outcome,
    )
    session.add(feedback)
    await session.flush()
    return feedback


async def list_feedback(session: AsyncSession, interaction_id: uuid.UUID) -> list[Feedback]:
    result = await session.execute(
        select(Feedback)
        .where(Feedback.interaction_id == interaction_id)
        .order_by(Feedback.created_at)
    )
    return list(result.scalars())
