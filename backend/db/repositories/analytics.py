"""Reads of the analytics rollups (kept by the triggers of migration 0008).

Every query here reads rollup rows — a handful per company, day and dimension — never the
raw interactions, feedback, documents or sync runs, so an answer costs the same whether a
company made a thousand calls or ten million.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.rollups import (
    analytics_calls_daily,
    analytics_feedback_daily,
    analytics_questions_weekly,
    analytics_reviews_daily,
    analytics_sync_daily,
    analytics_triage_daily,
)


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


async def calls_by_day(session: AsyncSession, *, since: date, until: date) -> list[dict[str, Any]]:
    """(day, task, provider) → calls, cache hits, tokens, cost and latency histogram."""
    t = analytics_calls_daily
    result = await session.execute(
        select(
            t.c.day,
            t.c.task,
            t.c.provider,
            t.c.calls,
            t.c.cache_hits,
            t.c.prompt_tokens,
            t.c.completion_tokens,
            t.c.cost_usd,
            t.c.latency_histogram,
        )
        .where(t.c.day.between(since, until))
        .order_by(t.c.day, t.c.task, t.c.provider)
    )
    return _rows(result)


async def feedback_counts(
    session: AsyncSession, *, since: date, until: date
) -> list[dict[str, Any]]:
    """(day, task, rating, reason, outcome) → entries."""
    t = analytics_feedback_daily
    result = await session.execute(
        select(t.c.day, t.c.task, t.c.rating, t.c.reason, t.c.outcome, t.c.entries)
        .where(t.c.day.between(since, until))
        .order_by(t.c.day, t.c.task)
    )
    return _rows(result)


async def top_questions(
    session: AsyncSession, *, since: date, until: date, task: str | None, limit: int
) -> list[dict[str, Any]]:
    """The most asked questions of the weeks overlapping the window (questions are rolled
    up by week: the window starts on the Monday of ``since``'s week). The ranking reads
    only hashes and counts; the texts are fetched for the winners alone."""
    t = analytics_questions_weekly
    week_of_since = since - timedelta(days=since.weekday())
    conditions: list[ColumnElement[bool]] = [t.c.week.between(week_of_since, until)]
    if task is not None:
        conditions.append(t.c.task == task)
    top = (
        select(
            t.c.question_hash,
            func.sum(t.c.asks).label("asks"),
            func.count(func.distinct(t.c.week)).label("weeks"),
            func.max(t.c.week).label("last_week"),
        )
        .where(*conditions)
        .group_by(t.c.question_hash)
        .order_by(func.sum(t.c.asks).desc(), t.c.question_hash)
        .limit(limit)
        .subquery()
    )
    text = (
        select(t.c.question)
        .where(t.c.question_hash == top.c.question_hash, *conditions)
        .limit(1)
        .scalar_subquery()
    )
    result = await session.execute(
        select(text.label("question"), top.c.asks, top.c.weeks, top.c.last_week).order_by(
            top.c.asks.desc(), top.c.question_hash
        )
    )
    return _rows(result)


async def triage_verdicts(
    session: AsyncSession, *, since: date, until: date
) -> list[dict[str, Any]]:
    t = analytics_triage_daily
    result = await session.execute(
        select(t.c.day, t.c.field, t.c.accepted, t.c.overridden)
        .where(t.c.day.between(since, until))
        .order_by(t.c.day, t.c.field)
    )
    return _rows(result)


async def review_trend(session: AsyncSession, *, since: date, until: date) -> list[dict[str, Any]]:
    t = analytics_reviews_daily
    result = await session.execute(
        select(
            t.c.day,
            t.c.platform,
            t.c.location,
            t.c.reviews,
            t.c.rated,
            t.c.rating_sum,
            t.c.positive,
            t.c.neutral,
            t.c.negative,
        )
        .where(t.c.day.between(since, until), t.c.reviews != 0)
        .order_by(t.c.day, t.c.platform, t.c.location)
    )
    return _rows(result)


async def sync_health(session: AsyncSession, *, since: date, until: date) -> list[dict[str, Any]]:
    t = analytics_sync_daily
    result = await session.execute(
        select(
            t.c.day,
            t.c.connector_id,
            t.c.runs,
            t.c.succeeded,
            t.c.failed_runs,
            t.c.fetched,
            t.c.upserted,
            t.c.deleted,
            t.c.failed_items,
            t.c.duration_ms,
            t.c.last_status,
            t.c.last_finished_at,
        )
        .where(t.c.day.between(since, until))
        .order_by(t.c.connector_id, t.c.day)
    )
    return _rows(result)
