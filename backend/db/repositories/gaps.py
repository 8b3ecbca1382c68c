"""The recent items knowledge-gap detection looks at (bounded by recency and a limit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Numeric, and_, cast, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Document, Feedback, Interaction


async def recent_questions(
    session: AsyncSession, *, since: datetime, limit: int
) -> list[dict[str, Any]]:
    """Agents' recent questions with their citations and whether one was rated down."""
    disliked = exists().where(
        and_(Feedback.interaction_id == Interaction.id, Feedback.rating == "down")
    )
    result = await session.execute(
        select(
            Interaction.id,
            Interaction.question,
            Interaction.citations,
            Interaction.created_at,
            disliked.label("disliked"),
        )
        .where(Interaction.task == "answer", Interaction.created_at >= since)
        .order_by(Interaction.created_at.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in result]


def _thread(parts: list[dict[str, Any]]) -> tuple[str, str]:
    """(the customer's description, the agents' public replies)."""
    description = next((p.get("text", "") for p in parts if p.get("label") == "description"), "")
    replies = [
        p.get("text", "")
        for p in parts
        if p.get("label") == "reply" and p.get("author_role") == "agent" and not p.get("internal")
    ]
    return description, "\n\n".join(r for r in replies if r)


async def recent_tickets(
    session: AsyncSession, *, since: datetime, limit: int
) -> list[dict[str, Any]]:
    at = func.coalesce(Document.source_created_at, Document.created_at)
    result = await session.execute(
        select(
            Document.external_id, Document.title, Document.url, Document.metadata_, at.label("at")
        )
        .where(Document.kind == "ticket", at >= since)
        .order_by(at.desc())
        .limit(limit)
    )
    tickets = []
    for row in result:
        description, resolution = _thread(list(row.metadata_.get("parts") or []))
        tickets.append(
            {
                "external_id": row.external_id.removeprefix("ticket:"),
                "title": row.title,
                "url": row.url,
                "description": description,
                "resolution": resolution,
                "at": row.at,
            }
        )
    return tickets


async def low_rated_reviews(
    session: AsyncSession, *, since: datetime, limit: int, max_rating: float = 2
) -> list[dict[str, Any]]:
    at = func.coalesce(Document.source_created_at, Document.created_at)
    rating = cast(Document.metadata_["rating"].astext, Numeric)
    result = await session.execute(
        select(Document.external_id, Document.body, Document.url, at.label("at"))
        .where(
            Document.kind == "review",
            at >= since,
            func.jsonb_typeof(Document.metadata_["rating"]) == "number",
            rating <= max_rating,
        )
        .order_by(at.desc())
        .limit(limit)
    )
    return [
        {"external_id": row.external_id, "text": row.body, "url": row.url, "at": row.at}
        for row in result
    ]


async def article_urls(session: AsyncSession, *, limit: int = 10_000) -> list[str]:
    result = await session.execute(
        select(Document.url)
        .where(Document.kind == "article", Document.url.is_not(None))
        .limit(limit)
    )
    return [url for (url,) in result if url]
