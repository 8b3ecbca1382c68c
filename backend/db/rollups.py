"""The analytics rollup tables (migration 0008), kept by database triggers and only read
by the service: Core tables, since nothing in Python creates or edits their rows."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Numeric,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from backend.db.models import Base


def _key(name: str, type_: object = Text) -> Column[object]:
    return Column(name, type_, primary_key=True)  # type: ignore[arg-type]


def _count(name: str) -> Column[object]:
    return Column(name, BigInteger, nullable=False)


analytics_calls_daily = Table(
    "analytics_calls_daily",
    Base.metadata,
    _key("company_id"),
    _key("day", Date),
    _key("task"),
    _key("provider"),
    _count("calls"),
    _count("cache_hits"),
    _count("prompt_tokens"),
    _count("completion_tokens"),
    Column("cost_usd", Numeric(16, 6), nullable=False),
    Column("latency_histogram", JSONB, nullable=False),
)

analytics_questions_weekly = Table(
    "analytics_questions_weekly",
    Base.metadata,
    _key("company_id"),
    _key("week", Date),
    _key("task"),
    _key("question_hash"),
    Column("question", Text, nullable=False),
    _count("asks"),
)

analytics_feedback_daily = Table(
    "analytics_feedback_daily",
    Base.metadata,
    _key("company_id"),
    _key("day", Date),
    _key("task"),
    _key("rating"),
    _key("reason"),
    _key("outcome"),
    _count("entries"),
)

analytics_triage_daily = Table(
    "analytics_triage_daily",
    Base.metadata,
    _key("company_id"),
    _key("day", Date),
    _key("field"),
    _count("accepted"),
    _count("overridden"),
)

analytics_reviews_daily = Table(
    "analytics_reviews_daily",
    Base.metadata,
    _key("company_id"),
    _key("day", Date),
    _key("platform"),
    _key("location"),
    _count("reviews"),
    _count("rated"),
    Column("rating_sum", Numeric(16, 2), nullable=False),
    _count("positive"),
    _count("neutral"),
    _count("negative"),
)

analytics_sync_daily = Table(
    "analytics_sync_daily",
    Base.metadata,
    _key("company_id"),
    _key("day", Date),
    _key("connector_id", UUID(as_uuid=True)),
    _count("runs"),
    _count("succeeded"),
    _count("failed_runs"),
    _count("fetched"),
    _count("upserted"),
    _count("deleted"),
    _count("failed_items"),
    _count("duration_ms"),
    Column("last_status", Text, nullable=False),
    Column("last_finished_at", DateTime(timezone=True), nullable=False),
)
