"""The sidebar widget: its short-lived tokens and what it reads and writes besides the
assistant itself — the ticket in view, feedback on answers, and the interaction history."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from backend.api.dependencies import (
    AgentTenant,
    ClockDep,
    CurrentTenant,
    KeyTenant,
    StateDep,
    TenantSession,
)
from backend.api.schemas import (
    CONVERSATION_MAX_MESSAGES,
    DESCRIPTION_MAX_CHARS,
    ERROR_RESPONSES,
    MAX_OFFSET,
    MESSAGE_MAX_CHARS,
    SUBJECT_MAX_CHARS,
    ErrorBody,
    MessageOut,
    TicketOut,
)
from backend.assistant.types import Citation
from backend.db.models import Company
from backend.db.repositories import documents as document_repo
from backend.db.repositories import interactions as interaction_repo
from backend.errors import Forbidden, NotFound
from backend.tenancy.audience import DEFAULT_AUDIENCE, Audience
from backend.tenancy.service import mint_widget_token

router = APIRouter(prefix="/v1", tags=["assistant"], responses=ERROR_RESPONSES)


class WidgetTokenCreate(BaseModel):
    ticket_id: str | None = Field(
        default=None, max_length=200, description="Scope the token to this ticket only."
    )
    ttl_seconds: int = Field(default=900, ge=60, le=3600)
    audience: Audience = Field(
        default=DEFAULT_AUDIENCE,
        description="`agent` (default; the helpdesk sidebar: your knowledge including "
        "internal notes) or `customer` (a widget customers can open: search and questions "
        "over published articles only; no tickets, internal content or company settings). "
        "A customer token cannot be scoped to a ticket.",
    )


class WidgetTokenOut(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>` from the widget.")
    expires_at: datetime
    company_id: str
    ticket_id: str | None
    audience: Audience


class FeedbackIn(BaseModel):
    interaction_id: uuid.UUID
    rating: Literal["up", "down"] | None = None
    reason: Literal["incorrect", "incomplete", "outdated", "inappropriate", "other"] | None = None
    comment: str | None = Field(default=None, max_length=2_000)
    inserted: bool = Field(default=False, description="The agent inserted the draft.")
    outcome: Literal["inserted", "edited", "discarded"] | None = Field(
        default=None,
        description="What became of a draft: inserted as is, inserted then edited, or "
        "discarded (the widget reports it; it feeds the draft-acceptance analytics).",
    )


class FeedbackOut(BaseModel):
    id: uuid.UUID


class InteractionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    task: str
    question: str
    ticket_ref: str | None
    answer: str
    citations: list[Citation]
    provider: str | None
    model: str | None
    latency_ms: int | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cache_hit: bool
    created_at: datetime


@router.post(
    "/widget-tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=WidgetTokenOut,
    responses={403: {"model": ErrorBody}},
)
async def create_widget_token(
    body: WidgetTokenCreate,
    tenant: KeyTenant,
    session: TenantSession,
    state: StateDep,
    clock: ClockDep,
) -> WidgetTokenOut:
    """Mint a short-lived token for the sidebar widget, server-side, with your API key: the
    browser gets this token, never the key. It is scoped to your company (and to one ticket
    if `ticket_id` is given), lasts at most an hour, and dies if the key is revoked. Its
    `audience` decides what it may see: `agent` (the default, as for tokens minted before
    audiences existed) or `customer` (public knowledge only). An audience your company's
    `audiences` setting leaves out is refused (403 `audience_not_allowed`)."""
    company = await session.get(Company, tenant.company_id)
    allowed = (company.settings or {}).get("audiences") if company is not None else None
    if isinstance(allowed, list) and body.audience not in allowed:
        raise Forbidden(
            f"your company's settings do not allow {body.audience!r} widget tokens "
            f"(allowed: {allowed})",
            code="audience_not_allowed",
        )
    token, expires_at = mint_widget_token(
        tenant,
        signer=state.widget_signer,
        clock=clock,
        ttl=timedelta(seconds=body.ttl_seconds),
        ticket_id=body.ticket_id,
        audience=body.audience,
    )
    return WidgetTokenOut(
        token=token,
        expires_at=expires_at,
        company_id=tenant.company_id,
        ticket_id=body.ticket_id,
        audience=body.audience,
    )


@router.get("/tickets/{ticket_id}", response_model=TicketOut, responses={404: {"model": ErrorBody}})
async def read_ticket(
    ticket_id: Annotated[str, Path(max_length=200)],
    tenant: AgentTenant,
    session: TenantSession,
    source: Annotated[str | None, Query(max_length=64)] = None,
) -> TicketOut:
    """An indexed ticket by its platform id, with its thread (private notes flagged). A
    ticket-scoped widget token may read only its own ticket; a customer token none (403).
    Texts longer than a draft request accepts are cut (`truncated`), so the ticket can be
    sent back as it is."""
    if tenant.ticket_id is not None and tenant.ticket_id != ticket_id:
        raise Forbidden("this widget token is for another ticket", code="ticket_out_of_scope")
    document = await document_repo.find_ticket(session, ticket_id, source=source)
    if document is None:
        raise NotFound("no such ticket", code="ticket_not_found")
    parts = document.metadata_.get("parts", [])
    description = next((p["text"] for p in parts if p.get("label") == "description"), "")
    # Attachments' extracted text is knowledge, not a message of the thread.
    messages = [p for p in parts if p.get("label") not in {"description", "subject", "attachment"}]
    truncated = len(messages) > CONVERSATION_MAX_MESSAGES
    conversation = []
    for p in messages[-CONVERSATION_MAX_MESSAGES:]:
        text, cut = _clip(str(p.get("text") or ""), MESSAGE_MAX_CHARS)
        truncated |= cut
        conversation.append(
            MessageOut(
                author_role=p.get("author_role")
                if p.get("author_role") in {"customer", "agent", "system"}
                else "agent",
                text=text,
                internal=bool(p.get("internal")),
                created_at=p.get("created_at"),
                truncated=cut,
            )
        )
    description, cut_description = _clip(description, DESCRIPTION_MAX_CHARS)
    subject, cut_subject = _clip(document.title, SUBJECT_MAX_CHARS)
    return TicketOut(
        id=ticket_id,
        source=document.source,
        subject=subject,
        description=description,
        status=document.status,
        language=document.language,
        requester=document.requester,
        conversation=conversation,
        truncated=truncated or cut_description or cut_subject,
    )


def _clip(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[: limit - 1] + "…", True)


@router.post(
    "/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackOut,
    responses={404: {"model": ErrorBody}},
)
async def give_feedback(
    body: FeedbackIn, tenant: CurrentTenant, session: TenantSession, state: StateDep
) -> FeedbackOut:
    """Rate an answer or draft (up/down, with a reason), or record that the agent inserted
    it into their reply. Several feedback entries per interaction are kept."""
    # Interactions are written in batches a few milliseconds after the answer: make sure
    # this process's queued ones are in before looking the id up.
    await state.assistant.flush_records()
    if await interaction_repo.get_interaction(session, body.interaction_id) is None:
        raise NotFound("no such interaction", code="interaction_not_found")
    feedback = await interaction_repo.insert_feedback(
        session,
        company_id=tenant.company_id,
        interaction_id=body.interaction_id,
        rating=body.rating,
        reason=body.reason,
        comment=body.comment,
        inserted=body.inserted or body.outcome in ("inserted", "edited"),
        outcome=body.outcome,
    )
    return FeedbackOut(id=feedback.id)


@router.get("/interactions", response_model=list[InteractionOut])
async def list_interactions(
    _tenant: KeyTenant,
    session: TenantSession,
    state: StateDep,
    task: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[InteractionOut]:
    """Recorded assistant calls (question, answer, citations, model, latency, tokens, cost,
    cache hit), newest first. Calls are written in batches: one shows up here within a
    fraction of a second of its response."""
    await state.assistant.flush_records()
    rows = await interaction_repo.list_interactions(session, task=task, limit=limit, offset=offset)
    return [InteractionOut.model_validate(row) for row in rows]
