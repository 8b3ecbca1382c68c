"""Knowledge gaps: what the company's customers and agents ask that its articles miss."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from backend.api.dependencies import ClockDep, KeyTenant, StateDep
from backend.api.schemas import ERROR_RESPONSES
from backend.insight.gaps import SignalKind, SignalReason

router = APIRouter(prefix="/v1/insights", tags=["insight"], responses=ERROR_RESPONSES)


class ResolutionOut(BaseModel):
    ref: str = Field(description="The ticket it resolved (platform id).")
    text: str


class GapSourceOut(BaseModel):
    kind: SignalKind
    ref: str = Field(description="The ticket's platform id, the review's, or the interaction id.")
    url: str | None


class DraftArticleOut(BaseModel):
    title: str
    body: str = Field(description="Cites its source tickets as `[ref]`.")
    cites: list[str] = Field(description="The source tickets' platform ids.")
    provider: str = Field(description="`extractive`, or the provider of your `answer` route.")
    model: str | None = Field(default=None, description="The model, when one wrote it.")


class GapOut(BaseModel):
    id: str = Field(description="Stable while the gap's first signal stays the same.")
    volume: int = Field(description="Signals in the group.")
    trend: float = Field(description="Second half of the window against the first.")
    kinds: dict[SignalKind, int]
    reasons: dict[SignalReason, int]
    review_complaints: int
    representative_questions: list[str]
    resolutions: list[ResolutionOut]
    sources: list[GapSourceOut]
    draft_article: DraftArticleOut


class GapsOut(BaseModel):
    since: datetime
    until: datetime
    gaps: list[GapOut]


@router.get("/gaps", response_model=GapsOut)
async def knowledge_gaps(
    tenant: KeyTenant,
    state: StateDep,
    clock: ClockDep,
    days: Annotated[int, Query(ge=1, le=366, description="How far back to look.")] = 30,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> GapsOut:
    """Topics your knowledge base is missing, from your own recent data: agents' questions
    that found no article or were rated down, tickets no article comes close to (or whose
    replies cite none), and 1-2 star reviews. Similar items are grouped; groups are ranked
    by volume, then trend (second half of the window against the first). Each gap has its
    representative questions, the agents' resolutions, the sources, and a draft article
    citing its source tickets: written by your configured model (the `answer` route) when
    there is one, extractive otherwise. API key only."""
    await state.assistant.flush_records()
    finder = state.gap_finder()
    until = clock.now()
    since = until - timedelta(days=days)
    gaps = await finder.gaps(tenant.company_id, since=since, until=until, limit=limit)
    return GapsOut.model_validate({"since": since, "until": until, "gaps": gaps})
