"""Usage analytics per company and day, read from rollups the database keeps up to date."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from backend.api.dependencies import ClockDep, KeyTenant, StateDep, TenantSession
from backend.api.schemas import ERROR_RESPONSES
from backend.clock import Clock
from backend.db.repositories import analytics as analytics_repo
from backend.errors import BadRequest
from backend.insight import analytics

router = APIRouter(prefix="/v1/analytics", tags=["insight"], responses=ERROR_RESPONSES)

MAX_DAYS = 366


class Window:
    """The days asked about (UTC dates, both ends included)."""

    def __init__(self, since: date, until: date) -> None:
        self.since, self.until = since, until

    def describe(self) -> dict[str, date]:
        return {"since": self.since, "until": self.until}


async def get_window(
    clock: ClockDep,
    since: Annotated[date | None, Query(description="First day (UTC), inclusive.")] = None,
    until: Annotated[date | None, Query(description="Last day (UTC), inclusive.")] = None,
    days: Annotated[
        int, Query(ge=1, le=MAX_DAYS, description="Window length when `since` is not given.")
    ] = 30,
) -> Window:
    last = until or _today(clock)
    first = since or last - timedelta(days=days - 1)
    if first > last:
        raise BadRequest("since must not be after until", code="invalid_window")
    if (last - first).days >= MAX_DAYS:
        raise BadRequest(f"a window spans at most {MAX_DAYS} days", code="invalid_window")
    return Window(first, last)


def _today(clock: Clock) -> date:
    return clock.now().date()


WindowDep = Annotated[Window, Depends(get_window)]


class WindowOut(BaseModel):
    since: date = Field(description="First day (UTC), inclusive.")
    until: date = Field(description="Last day (UTC), inclusive.")


class CallFigures(BaseModel):
    calls: int
    cache_hits: int
    cache_hit_rate: float | None = Field(description="cache_hits / calls; null: no calls.")
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class TaskDayOut(CallFigures):
    day: date
    task: str


class TaskTotalOut(CallFigures):
    task: str


class ProviderDayOut(BaseModel):
    day: date
    provider: str = Field(description="`none` for calls no provider answered.")
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class AssistantUsageOut(WindowOut):
    by_day: list[TaskDayOut]
    by_task: list[TaskTotalOut]
    by_provider: list[ProviderDayOut]


class DraftOutcomesOut(BaseModel):
    inserted: int = Field(description="Drafts inserted as they were.")
    edited: int = Field(description="Drafts inserted, then edited.")
    discarded: int
    reported: int = Field(description="Drafts whose outcome the widget reported.")
    acceptance_rate: float | None = Field(description="(inserted + edited) / reported.")
    edited_rate: float | None = Field(description="edited / reported.")


class FeedbackDayOut(BaseModel):
    day: date
    up: int
    down: int
    reasons: dict[str, int]
    drafts: DraftOutcomesOut


class FeedbackSummaryOut(WindowOut):
    by_day: list[FeedbackDayOut]
    reasons: dict[str, int]
    drafts: DraftOutcomesOut


class QuestionOut(BaseModel):
    question: str
    asks: int
    weeks: int = Field(description="In how many weeks it was asked.")
    last_week: date = Field(description="Monday of the last week it was asked.")


class TopQuestionsOut(WindowOut):
    questions: list[QuestionOut]


class TriageDayOut(BaseModel):
    day: date
    field: str
    accepted: int
    overridden: int


class TriageAcceptanceOut(WindowOut):
    by_day: list[TriageDayOut]


class ReviewDayOut(BaseModel):
    day: date
    platform: str
    location: str | None
    reviews: int
    average_rating: float | None = Field(description="Over the reviews that have a rating.")
    positive: int
    neutral: int
    negative: int


class ReviewTrendOut(WindowOut):
    by_day: list[ReviewDayOut]


class SyncDayOut(BaseModel):
    day: date
    runs: int
    succeeded: int
    failed: int
    fetched: int
    upserted: int
    deleted: int
    failed_items: int
    mean_duration_ms: int


class ConnectorHealthOut(BaseModel):
    connector_id: str
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    last_status: str = Field(description="Of the latest finished run.")
    last_finished_at: datetime
    by_day: list[SyncDayOut]


class SyncHealthOut(WindowOut):
    connectors: list[ConnectorHealthOut]


@router.get("/assistant", response_model=AssistantUsageOut)
async def assistant_usage(
    _tenant: KeyTenant, session: TenantSession, window: WindowDep, state: StateDep
) -> AssistantUsageOut:
    """Assistant calls per day and task with the cache hit rate and latency p50/p95
    (milliseconds, from a histogram with ~10%-wide buckets), totals per task over the
    window, and tokens and cost per provider per day. API key only."""
    # Calls of the last fraction of a second are still queued in this process: count them.
    await state.assistant.flush_records()
    rows = await analytics_repo.calls_by_day(session, since=window.since, until=window.until)
    return AssistantUsageOut.model_validate(
        {
            **window.describe(),
            "by_day": analytics.assistant_days(rows),
            "by_task": analytics.assistant_totals(rows),
            "by_provider": analytics.provider_days(rows),
        }
    )


@router.get("/feedback", response_model=FeedbackSummaryOut)
async def feedback_summary(
    _tenant: KeyTenant, session: TenantSession, window: WindowDep
) -> FeedbackSummaryOut:
    """Feedback per day by rating and reason, and what became of drafts (inserted as is,
    inserted then edited, discarded) with the acceptance rate. API key only."""
    rows = await analytics_repo.feedback_counts(session, since=window.since, until=window.until)
    by_day: dict[date, dict[str, Any]] = defaultdict(
        lambda: {"up": 0, "down": 0, "reasons": defaultdict(int), "outcomes": []}
    )
    reasons: dict[str, int] = defaultdict(int)
    for row in rows:
        day = by_day[row["day"]]
        if row["rating"] in ("up", "down"):
            day[row["rating"]] += int(row["entries"])
        if row["reason"]:
            day["reasons"][row["reason"]] += int(row["entries"])
            reasons[row["reason"]] += int(row["entries"])
        day["outcomes"].append(row)
    return FeedbackSummaryOut.model_validate(
        {
            **window.describe(),
            "by_day": [
                {
                    "day": day,
                    "up": values["up"],
                    "down": values["down"],
                    "reasons": dict(values["reasons"]),
                    "drafts": analytics.draft_acceptance(values["outcomes"]),
                }
                for day, values in sorted(by_day.items())
            ],
            "reasons": dict(reasons),
            "drafts": analytics.draft_acceptance(rows),
        }
    )


@router.get("/questions", response_model=TopQuestionsOut)
async def top_questions(
    _tenant: KeyTenant,
    session: TenantSession,
    window: WindowDep,
    task: Annotated[str | None, Query(max_length=32)] = "answer",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> TopQuestionsOut:
    """The questions asked most often (same text, case and surrounding spaces ignored),
    with how many times and in how many weeks. Questions are counted by week (Monday to
    Sunday, UTC): the window is widened to start on the Monday of `since`. API key only."""
    rows = await analytics_repo.top_questions(
        session, since=window.since, until=window.until, task=task, limit=limit
    )
    return TopQuestionsOut.model_validate(
        {
            **window.describe(),
            "questions": [
                {
                    "question": row["question"],
                    "asks": int(row["asks"]),
                    "weeks": int(row["weeks"]),
                    "last_week": row["last_week"],
                }
                for row in rows
            ],
        }
    )


@router.get("/triage", response_model=TriageAcceptanceOut)
async def triage_acceptance(
    _tenant: KeyTenant, session: TenantSession, window: WindowDep
) -> TriageAcceptanceOut:
    """Triage suggestions accepted and overridden per day and field. API key only."""
    rows = await analytics_repo.triage_verdicts(session, since=window.since, until=window.until)
    return TriageAcceptanceOut.model_validate(
        {
            **window.describe(),
            "by_day": [
                {
                    "day": row["day"],
                    "field": row["field"],
                    "accepted": int(row["accepted"]),
                    "overridden": int(row["overridden"]),
                }
                for row in rows
            ],
        }
    )


@router.get("/reviews", response_model=ReviewTrendOut)
async def review_trend(
    _tenant: KeyTenant, session: TenantSession, window: WindowDep
) -> ReviewTrendOut:
    """Reviews per day, platform and location: count, average rating and sentiment
    (4-5 stars positive, 3 neutral, 1-2 negative). API key only."""
    rows = await analytics_repo.review_trend(session, since=window.since, until=window.until)
    return ReviewTrendOut.model_validate(
        {
            **window.describe(),
            "by_day": [
                {
                    "day": row["day"],
                    "platform": row["platform"],
                    "location": row["location"] or None,
                    "reviews": int(row["reviews"]),
                    "average_rating": round(float(row["rating_sum"]) / int(row["rated"]), 3)
                    if int(row["rated"])
                    else None,
                    "positive": int(row["positive"]),
                    "neutral": int(row["neutral"]),
                    "negative": int(row["negative"]),
                }
                for row in rows
            ],
        }
    )


@router.get("/syncs", response_model=SyncHealthOut)
async def sync_health(
    _tenant: KeyTenant, session: TenantSession, window: WindowDep
) -> SyncHealthOut:
    """Sync health per connector: finished runs per day (succeeded, failed), items fetched,
    written and failed, mean duration, and the latest status. API key only."""
    rows = await analytics_repo.sync_health(session, since=window.since, until=window.until)
    connectors: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = str(row["connector_id"])
        entry = connectors.setdefault(
            key, {"connector_id": key, "runs": 0, "succeeded": 0, "failed": 0, "by_day": []}
        )
        entry["runs"] += int(row["runs"])
        entry["succeeded"] += int(row["succeeded"])
        entry["failed"] += int(row["failed_runs"])
        entry["last_status"] = row["last_status"]
        entry["last_finished_at"] = row["last_finished_at"]
        entry["by_day"].append(
            {
                "day": row["day"],
                "runs": int(row["runs"]),
                "succeeded": int(row["succeeded"]),
                "failed": int(row["failed_runs"]),
                "fetched": int(row["fetched"]),
                "upserted": int(row["upserted"]),
                "deleted": int(row["deleted"]),
                "failed_items": int(row["failed_items"]),
                "mean_duration_ms": int(row["duration_ms"]) // max(int(row["runs"]), 1),
            }
        )
    for entry in connectors.values():
        entry["success_rate"] = (
            round(entry["succeeded"] / entry["runs"], 4) if entry["runs"] else None
        )
    return SyncHealthOut.model_validate(
        {**window.describe(), "connectors": list(connectors.values())}
    )
