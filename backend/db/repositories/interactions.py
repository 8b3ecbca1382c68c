from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Feedback, Interaction


async def insert_interaction(
    session: AsyncSession,
    *,
    company_id: str,
    task: str,
    question: str,
    ticket_ref: str | None,
    answer: str,
    citations: list[dict[str, Any]],
    provider: str,
    model: str,
    latency_ms: int,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float,
    cache_hit: bool,
    api_key_id: uuid.UUID | None,
) -> Interaction:
    # A record of a call already answered: losing the last few milliseconds of these on a
    # server crash is acceptable, waiting for a WAL flush on every request is not.
    await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    interaction = Interaction(
        company_id=company_id,
        task=task,
        question=question,
        ticket_ref=ticket_ref,
        answer=answer,
        citations=citations,
        provider=provider,
        model=model,
        latency_ms=latency_ms,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=Decimal(str(cost_usd)),
        cache_hit=cache_hit,
        api_key_id=api_key_id,
    )
    session.add(interaction)
    await session.flush()
    return interaction


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
) -> Feedback:
    feedback = Feedback(
        company_id=company_id,
        interaction_id=interaction_id,
        rating=rating,
        reason=reason,
        comment=comment,
        inserted=inserted,
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
