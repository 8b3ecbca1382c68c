"""Triage suggestions stored with tickets, the agents' verdicts on them, and their accuracy."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Document, TriageFeedback, TriageSuggestion
from backend.db.rollups import analytics_triage_daily


async def get_documents(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Document]:
    """The document rows with these ids (those the tenant can see; order not kept)."""
    if not ids:
        return []
    result = await session.execute(select(Document).where(Document.id.in_(list(ids))))
    return list(result.scalars())


async def save_suggestions(
    session: AsyncSession,
    *,
    company_id: str,
    document_id: uuid.UUID,
    external_id: str,
    source: str,
    suggestions: dict[str, Any],
    neighbors: list[dict[str, Any]],
) -> None:
    """Store (or replace) a ticket's suggestions."""
    statement = insert(TriageSuggestion).values(
        company_id=company_id,
        document_id=document_id,
        external_id=external_id,
        source=source,
        suggestions=suggestions,
        neighbors=neighbors,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["company_id", "document_id"],
            set_={
                "suggestions": statement.excluded.suggestions,
                "neighbors": statement.excluded.neighbors,
                "updated_at": func.now(),
            },
        )
    )


async def get_suggestions(session: AsyncSession, document_id: uuid.UUID) -> TriageSuggestion | None:
    result = await session.execute(
        select(TriageSuggestion).where(TriageSuggestion.document_id == document_id)
    )
    return result.scalar_one_or_none()


async def insert_feedback(
    session: AsyncSession,
    *,
    company_id: str,
    external_id: str | None,
    field: str,
    suggested: str,
    chosen: str | None,
    accepted: bool,
) -> TriageFeedback:
    row = TriageFeedback(
        company_id=company_id,
        external_id=external_id,
        field=field,
        suggested=suggested,
        chosen=chosen,
        accepted=accepted,
    )
    session.add(row)
    await session.flush()
    return row


async def accuracy_by_field(
    session: AsyncSession, *, since: date, until: date
) -> list[tuple[str, int, int]]:
    """(field, accepted, overridden) over the days, from the daily rollup."""
    table = analytics_triage_daily
    result = await session.execute(
        select(table.c.field, func.sum(table.c.accepted), func.sum(table.c.overridden))
        .where(table.c.day >= since, table.c.day <= until)
        .group_by(table.c.field)
        .order_by(table.c.field)
    )
    return [(str(f), int(a or 0), int(o or 0)) for f, a, o in result]
