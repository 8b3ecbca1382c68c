"""Knowledge gaps: what the company's customers and agents ask that its articles miss."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.api.dependencies import ClockDep, KeyTenant, StateDep
from backend.api.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/v1/insights", tags=["insight"], responses=ERROR_RESPONSES)


@router.get("/gaps")
async def knowledge_gaps(
    tenant: KeyTenant,
    state: StateDep,
    clock: ClockDep,
    days: Annotated[int, Query(ge=1, le=366, description="How far back to look.")] = 30,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
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
    return {"since": since, "until": until, "gaps": gaps}
