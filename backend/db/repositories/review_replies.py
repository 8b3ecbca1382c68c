"""Review replies and each company's reply settings (migration 0010)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Document, ReplySettings, ReviewReply


async def get_review_documents(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Document]:
    """The review rows with these ids that the tenant can see."""
    if not ids:
        return []
    result = await session.execute(
        select(Document).where(Document.id.in_(list(ids)), Document.kind == "review")
    )
    return list(result.scalars())


async def insert_draft(session: AsyncSession, values: dict[str, Any]) -> ReviewReply | None:
    """A new reply row, or ``None`` when the review already has one (a re-sync, an edited
    review): a draft is written once per review and an agent's work is never replaced."""
    statement = (
        insert(ReviewReply)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["company_id", "document_id"])
        .returning(ReviewReply)
    )
    result = await session.execute(statement)
    return result.scalars().first()


async def get_reply(
    session: AsyncSession, reply_id: uuid.UUID, *, for_update: bool = False
) -> ReviewReply | None:
    statement = select(ReviewReply).where(ReviewReply.id == reply_id)
    if for_update:
        statement = statement.with_for_update()
    result = await session.execute(statement)
    return result.scalars().first()


async def get_reply_for_document(
    session: AsyncSession, document_id: uuid.UUID
) -> ReviewReply | None:
    """The reply to one review (a review has at most one)."""
    result = await session.execute(
        select(ReviewReply).where(ReviewReply.document_id == document_id).limit(1)
    )
    return result.scalars().first()


async def list_replies(
    session: AsyncSession,
    *,
    states: Sequence[str] | None,
    limit: int,
    created_before: datetime | None = None,
) -> list[ReviewReply]:
    """Newest first; ``created_before`` pages on."""
    statement = select(ReviewReply).order_by(ReviewReply.created_at.desc(), ReviewReply.id.desc())
    if states:
        statement = statement.where(ReviewReply.state.in_(list(states)))
    if created_before is not None:
        statement = statement.where(ReviewReply.created_at < created_before)
    result = await session.execute(statement.limit(limit))
    return list(result.scalars())


async def claim_alert(session: AsyncSession, reply_id: uuid.UUID, now: datetime) -> bool:
    """Mark the reply's review as alerted, if nobody did before: True for the one caller
    that gets to send the alert (the alert fires once per review)."""
    result = await session.execute(
        update(ReviewReply)
        .where(ReviewReply.id == reply_id, ReviewReply.alerted_at.is_(None))
        .values(alerted_at=now, alert_status="sending")
        .returning(ReviewReply.id)
    )
    return result.first() is not None


async def set_alert_status(session: AsyncSession, reply_id: uuid.UUID, status: str) -> None:
    await session.execute(
        update(ReviewReply).where(ReviewReply.id == reply_id).values(alert_status=status)
    )


async def get_settings(session: AsyncSession) -> ReplySettings | None:
    result = await session.execute(select(ReplySettings))
    return result.scalars().first()


async def save_settings(session: AsyncSession, company_id: str, values: dict[str, Any]) -> None:
    """Create or change the company's settings row (only the given columns change)."""
    statement = insert(ReplySettings).values(company_id=company_id, **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["company_id"], set_=values)
        if values
        else statement.on_conflict_do_nothing(index_elements=["company_id"])
    )


def exists_for_document_statement(document_id: uuid.UUID) -> Select[uuid.UUID]:
    """Whether a review already has a reply (checked before drafting, to skip the work)."""
    return select(ReviewReply.id).where(ReviewReply.document_id == document_id).limit(1)
