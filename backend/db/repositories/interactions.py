from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, delete, false, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Feedback, Interaction


async def insert_interactions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert a batch of interaction rows (column → value dicts, ids included) at once. A
    row whose id is already there is skipped: the outbox may replay rows after a crash."""
    if not rows:
        return
    # A record of calls already answered: losing the last few milliseconds of these on a
    # server crash is acceptable, waiting for a WAL flush on every batch is not.
    await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    await session.execute(insert(Interaction).on_conflict_do_nothing(index_elements=["id"]), rows)


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


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _about(
    document_ids: Sequence[str], ticket_refs: Sequence[str], mentions: Sequence[str]
) -> ColumnElement[bool]:
    """Interactions that cite one of the documents, were about one of the tickets, or quote
    one of the identifiers in their question or answer."""
    conditions: list[ColumnElement[bool]] = [
        Interaction.citations.contains([{"document_id": document_id}])
        for document_id in document_ids
    ]
    if ticket_refs:
        conditions.append(Interaction.ticket_ref.in_(list(ticket_refs)))
    for mention in mentions:
        pattern = f"%{_escape_like(mention)}%"
        conditions.append(Interaction.question.ilike(pattern, escape="\\"))
        conditions.append(Interaction.answer.ilike(pattern, escape="\\"))
    return or_(*conditions) if conditions else false()


async def find_interactions_about(
    session: AsyncSession,
    *,
    document_ids: Sequence[str],
    ticket_refs: Sequence[str],
    mentions: Sequence[str],
) -> list[Interaction]:
    result = await session.execute(
        select(Interaction)
        .where(_about(document_ids, ticket_refs, mentions))
        .order_by(Interaction.created_at)
    )
    return list(result.scalars())


async def list_feedback_for(
    session: AsyncSession, interaction_ids: Sequence[uuid.UUID]
) -> list[Feedback]:
    if not interaction_ids:
        return []
    result = await session.execute(
        select(Feedback)
        .where(Feedback.interaction_id.in_(list(interaction_ids)))
        .order_by(Feedback.created_at)
    )
    return list(result.scalars())


async def delete_interactions(
    session: AsyncSession, interaction_ids: Sequence[uuid.UUID]
) -> tuple[int, int]:
    """Delete interactions and their feedback; returns (interactions, feedback) removed."""
    if not interaction_ids:
        return 0, 0
    ids = list(interaction_ids)
    feedback = await session.execute(
        delete(Feedback).where(Feedback.interaction_id.in_(ids)).returning(Feedback.id)
    )
    removed_feedback = len(list(feedback.scalars()))
    interactions = await session.execute(
        delete(Interaction).where(Interaction.id.in_(ids)).returning(Interaction.id)
    )
    return len(list(interactions.scalars())), removed_feedback


async def list_feedback_examples(
    session: AsyncSession, *, limit: int
) -> list[tuple[Interaction, Literal["upvoted_answer", "inserted_draft"]]]:
    """Interactions that agents confirmed, newest first: answers rated up, and drafts
    inserted into a reply (evaluation-set material)."""
    upvoted = (Interaction.task == "answer") & (Feedback.rating == "up")
    inserted = (Interaction.task == "draft_reply") & Feedback.inserted.is_(True)
    query = (
        select(Interaction, Feedback.inserted)
        .join(Feedback, Feedback.interaction_id == Interaction.id)
        .where(upvoted | inserted)
        .order_by(Interaction.created_at.desc())
        .limit(limit)
    )
    seen: set[uuid.UUID] = set()
    out: list[tuple[Interaction, Literal["upvoted_answer", "inserted_draft"]]] = []
    for interaction, was_inserted in await session.execute(query):
        if interaction.id in seen:
            continue
        seen.add(interaction.id)
        out.append((interaction, "inserted_draft" if was_inserted else "upvoted_answer"))
    return out
