"""Triage suggestions for tickets, the agents' verdicts on them, and their accuracy."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field, model_validator

from backend.api.dependencies import (
    ClockDep,
    CurrentTenant,
    KeyTenant,
    Scope,
    StateDep,
    TenantSession,
)
from backend.api.schemas import ERROR_RESPONSES, ErrorBody
from backend.db.repositories import documents as document_repo
from backend.db.repositories import triage as triage_repo
from backend.errors import Forbidden, NotFound
from backend.insight.triage import TRIAGE_FIELDS
from backend.tenancy.service import Tenant

router = APIRouter(prefix="/v1/triage", tags=["insight"], responses=ERROR_RESPONSES)

FieldName = Literal["category", "tags", "group", "priority", "sentiment", "language"]


async def require_agent(tenant: CurrentTenant) -> Tenant:
    """Triage is for the company's agents: an API key, or a widget token whose audience is
    the agent. A customer-audience widget token (public knowledge only) is refused, since
    suggestions are voted by tickets, internal knowledge included."""
    audience = getattr(tenant, "audience", "agent")
    if tenant.via != "api_key" and audience != "agent":
        raise Forbidden("triage is available to agents only", code="agent_only")
    return tenant


AgentTenant = Annotated[Tenant, Depends(require_agent)]


class TriageIn(BaseModel):
    ticket_id: str | None = Field(
        default=None,
        max_length=200,
        description="An indexed ticket's platform id: its subject and description are "
        "triaged and the suggestions stored with it.",
    )
    source: str | None = Field(default=None, max_length=64, description="Its platform.")
    text: str | None = Field(
        default=None, max_length=20_000, description="Or free text (nothing is stored)."
    )

    @model_validator(mode="after")
    def _one_input(self) -> TriageIn:
        if (self.ticket_id is None) == (self.text is None or not self.text.strip()):
            raise ValueError("give exactly one of ticket_id or a non-empty text")
        return self


class CandidateOut(BaseModel):
    value: str
    confidence: float


class SuggestionOut(BaseModel):
    value: str | None = Field(description="The suggestion, or null: no suggestion.")
    values: list[str] = Field(description="Tags only: every tag suggested.")
    confidence: float
    candidates: list[CandidateOut] = Field(description="The vote, best first.")


class NeighborOut(BaseModel):
    document_id: str
    external_id: str | None
    title: str
    similarity: float


class TriageOut(BaseModel):
    ticket_id: str | None
    suggestions: dict[str, SuggestionOut]
    neighbors: list[NeighborOut] = Field(description="The solved tickets that voted.")


class TriageFeedbackIn(BaseModel):
    ticket_id: str | None = Field(default=None, max_length=200)
    field: FieldName
    suggested: str = Field(min_length=1, max_length=500)
    accepted: bool = Field(description="True: the agent applied the suggestion as is.")
    chosen: str | None = Field(
        default=None, max_length=500, description="What the agent set instead (overrides)."
    )


class TriageFeedbackOut(BaseModel):
    id: uuid.UUID


class FieldAccuracyOut(BaseModel):
    field: str
    accepted: int
    overridden: int
    accuracy: float | None = Field(description="accepted / (accepted + overridden).")


class AccuracyOut(BaseModel):
    since: date
    until: date
    fields: list[FieldAccuracyOut]


def _ticket_scope(tenant: Tenant, ticket_id: str | None) -> None:
    if tenant.ticket_id is not None and ticket_id not in (None, tenant.ticket_id):
        raise Forbidden("this widget token is for another ticket", code="ticket_out_of_scope")


@router.post("", response_model=TriageOut, responses={404: {"model": ErrorBody}})
async def triage(body: TriageIn, tenant: AgentTenant, scope: Scope, state: StateDep) -> TriageOut:
    """Suggest a ticket's category (type), tags, group, priority, sentiment and language,
    each with a confidence. Category, tags, group and priority are voted by **your own**
    most similar solved tickets (their real field values); sentiment and language are read
    from the text. A field whose confidence is below its threshold comes back with
    `value: null` — no suggestion rather than a guess. With `ticket_id` the suggestions
    are stored with the ticket (open tickets are also triaged when they are ingested)."""
    _ticket_scope(tenant, body.ticket_id)
    if body.ticket_id is None:
        assert body.text is not None
        result = await state.triage.suggest(scope, body.text)
        return TriageOut.model_validate(
            {
                "ticket_id": None,
                "suggestions": result.suggestions_json(),
                "neighbors": result.neighbors_json(),
            }
        )
    document = await document_repo.find_ticket(scope.session, body.ticket_id, source=body.source)
    if document is None:
        raise NotFound("no such ticket", code="ticket_not_found")
    parts = document.metadata_.get("parts", [])
    asked = [p["text"] for p in parts if p.get("label") == "description" and not p.get("internal")]
    text = f"{document.title}\n\n{asked[0] if asked else ''}".strip()
    result = await state.triage.triage_ticket(
        scope,
        document_id=document.id,
        source=document.source,
        external_id=document.external_id,
        text=text,
    )
    return TriageOut.model_validate(
        {
            "ticket_id": body.ticket_id,
            "suggestions": result.suggestions_json(),
            "neighbors": result.neighbors_json(),
        }
    )


@router.get("/tickets/{ticket_id}", response_model=TriageOut, responses={404: {"model": ErrorBody}})
async def stored_triage(
    ticket_id: Annotated[str, Path(max_length=200)],
    tenant: AgentTenant,
    session: TenantSession,
    source: Annotated[str | None, Query(max_length=64)] = None,
) -> TriageOut:
    """The suggestions stored with a ticket (made when it was ingested or last triaged)."""
    _ticket_scope(tenant, ticket_id)
    document = await document_repo.find_ticket(session, ticket_id, source=source)
    stored = None if document is None else await triage_repo.get_suggestions(session, document.id)
    if stored is None:
        raise NotFound("no triage suggestions for this ticket", code="triage_not_found")
    return TriageOut.model_validate(
        {
            "ticket_id": ticket_id,
            "suggestions": {name: stored.suggestions.get(name) for name in TRIAGE_FIELDS},
            "neighbors": stored.neighbors,
        }
    )


@router.post("/feedback", status_code=status.HTTP_201_CREATED, response_model=TriageFeedbackOut)
async def triage_feedback(
    body: TriageFeedbackIn, tenant: AgentTenant, session: TenantSession
) -> TriageFeedbackOut:
    """Record that an agent accepted a suggestion (`accepted: true`) or overrode it
    (`accepted: false`, optionally with what they chose). These verdicts make
    `GET /v1/triage/accuracy`."""
    _ticket_scope(tenant, body.ticket_id)
    row = await triage_repo.insert_feedback(
        session,
        company_id=tenant.company_id,
        external_id=body.ticket_id,
        field=body.field,
        suggested=body.suggested,
        chosen=body.suggested if body.accepted else body.chosen,
        accepted=body.accepted,
    )
    return TriageFeedbackOut(id=row.id)


@router.get("/accuracy", response_model=AccuracyOut)
async def triage_accuracy(
    _tenant: KeyTenant,
    session: TenantSession,
    clock: ClockDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> AccuracyOut:
    """How often agents accepted each field's suggestions over the last `days` days (UTC),
    from their verdicts: accepted / (accepted + overridden)."""
    until = clock.now().date()
    since = until - timedelta(days=days - 1)
    rows = await triage_repo.accuracy_by_field(session, since=since, until=until)
    return AccuracyOut(
        since=since,
        until=until,
        fields=[
            FieldAccuracyOut(
                field=name,
                accepted=accepted,
                overridden=overridden,
                accuracy=accepted / (accepted + overridden) if accepted + overridden else None,
            )
            for name, accepted, overridden in rows
        ],
    )
