"""Search, answers, reply drafts, review replies, similar tickets and summaries.

Every response carries citations (numbered like the `[n]` markers in the text), says which
provider and model produced it, and is recorded as an interaction that can receive feedback.
The `/stream` variants send Server-Sent Events: `token` events with text, then one `done`
event with the same body as the non-streaming endpoint, or an `error` event.

Audiences. API keys and `agent` widget tokens see the company's knowledge, internal notes
included (marked `internal`); an agent token scoped to a ticket sees internal content of that
ticket only. A `customer` widget token may use `/search` and `/answer` (without a ticket) over
public knowledge-base articles only; the ticket tools answer it 403 `audience_forbidden`.
The restriction is applied by the retrieval filters, so nothing outside it is ever ranked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator, model_validator

from backend.api.dependencies import AgentTenant, CurrentTenant, PlansDep, StateDep, access_scope
from backend.api.schemas import ERROR_RESPONSES, TicketIn
from backend.assistant.service import (
    AnswerWork,
    AssistantService,
    DraftReplyWork,
    ReviewReplyWork,
    SummarizeWork,
    TaskCall,
)
from backend.assistant.types import (
    AssistantReply,
    Message,
    ReviewContext,
    StreamError,
    StreamText,
    TicketContext,
)
from backend.errors import BadRequest, Forbidden
from backend.retrieval import AGENT_SCOPE, SearchFilters
from backend.tenancy.service import Tenant

router = APIRouter(prefix="/v1", tags=["assistant"], responses=ERROR_RESPONSES)

Kind = Literal["ticket", "conversation", "article", "review"]
ShortText = Annotated[str, Field(max_length=64)]


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """One kind of Server-Sent Event, as FastAPI describes its own streams (OpenAPI 3.2
    `itemSchema`): the event's name and its JSON `data`."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/event-stream": {
                "itemSchema": {
                    "oneOf": [
                        _event("token", StreamText.model_json_schema(mode="serialization")),
                        # Declared as the response of the non-streaming variant.
                        _event("done", {"$ref": "#/components/schemas/AssistantReply"}),
                        _event("error", StreamError.model_json_schema(mode="serialization")),
                    ]
                }
            }
        },
        "description": "`token` events, then `done` (or `error`).",
    }
}


async def get_assistant_service(state: StateDep) -> AssistantService:
    return state.assistant


AssistantDep = Annotated[AssistantService, Depends(get_assistant_service)]


class FiltersIn(BaseModel):
    kinds: list[Kind] = Field(default_factory=list, max_length=4)
    sources: list[ShortText] = Field(default_factory=list, max_length=20)
    languages: list[ShortText] = Field(default_factory=list, max_length=20)
    statuses: list[ShortText] = Field(default_factory=list, max_length=20)
    tags: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    updated_from: datetime | None = Field(
        default=None, description="Updated at or after (no time zone: UTC)."
    )
    updated_to: datetime | None = Field(
        default=None, description="Updated at or before; not before `updated_from`."
    )

    @field_validator("updated_from", "updated_to")
    @classmethod
    def _utc_unless_said(cls, value: datetime | None) -> datetime | None:
        # A bare timestamp is UTC, so bounds given with and without an offset compare.
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    @model_validator(mode="after")
    def _ordered(self) -> FiltersIn:
        if self.updated_from and self.updated_to and self.updated_from > self.updated_to:
            raise ValueError("updated_from must not be after updated_to")
        return self

    def to_filters(self) -> SearchFilters:
        return SearchFilters(
            kinds=tuple(self.kinds),
            sources=tuple(self.sources),
            languages=tuple(self.languages),
            statuses=tuple(self.statuses),
            tags=tuple(self.tags),
            updated_from=self.updated_from,
            updated_to=self.updated_to,
        )


class SearchIn(BaseModel):
    query: str = Field(min_length=1, max_length=2_000)
    filters: FiltersIn = Field(default_factory=FiltersIn)
    limit: int = Field(default=8, ge=1, le=50)
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    include_internal: bool = Field(
        default=True, description="Include private notes / work notes (marked `internal`)."
    )


class PassageOut(BaseModel):
    document_id: str
    passage_id: str
    external_id: str | None
    title: str
    url: str | None
    kind: str
    source: str
    language: str | None
    status: str | None
    internal: bool = Field(description="From a private note: agent-only, never for customers.")
    snippet: str
    score: float
    updated_at: datetime | None


class SearchOut(BaseModel):
    results: list[PassageOut]


class AnswerIn(BaseModel):
    question: str = Field(min_length=1, max_length=4_000)
    ticket: TicketIn | None = Field(default=None, description="Optional ticket in view.")
    filters: FiltersIn = Field(default_factory=FiltersIn)


class DraftIn(BaseModel):
    ticket: TicketIn
    regenerate: bool = Field(default=False, description="Skip the cache: write a new draft.")


class ReviewIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    rating: float | None = Field(
        default=None, ge=0, le=100, description="The review's rating; at most `rating_scale`."
    )
    rating_scale: float = Field(default=5, gt=0, le=100)
    language: str | None = Field(default=None, max_length=16)
    author: str | None = Field(default=None, max_length=200)
    platform: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _rating_within_scale(self) -> ReviewIn:
        if self.rating is not None and self.rating > self.rating_scale:
            raise ValueError("rating must not exceed rating_scale")
        return self


class ReviewReplyIn(BaseModel):
    review: ReviewIn
    regenerate: bool = False


class SimilarIn(BaseModel):
    ticket: TicketIn | None = None
    query: str | None = Field(default=None, max_length=4_000)
    limit: int = Field(default=5, ge=1, le=20)


class SimilarTicketOut(BaseModel):
    document_id: str
    external_id: str | None
    title: str
    url: str | None
    status: str | None
    resolved: bool
    score: float
    snippet: str


class SimilarOut(BaseModel):
    tickets: list[SimilarTicketOut]


class SummaryOut(AssistantReply):
    summary: str = Field(description="The summary: the same text as `answer`.")


def _ticket_context(ticket: TicketIn, tenant: Tenant) -> TicketContext:
    if tenant.ticket_id is not None and ticket.id not in (None, tenant.ticket_id):
        raise Forbidden("this widget token is for another ticket", code="ticket_out_of_scope")
    raw_id = ticket.id or tenant.ticket_id
    external_id = (
        "ticket:adhoc" if raw_id is None else raw_id if ":" in raw_id else f"ticket:{raw_id}"
    )
    return TicketContext(
        id=external_id,
        source=ticket.source or "widget",
        subject=ticket.subject,
        description=ticket.description,
        status=ticket.status,
        language=ticket.language,
        requester=ticket.requester,
        conversation=[
            Message(
                author_role=m.author_role, text=m.text, internal=m.internal, created_at=m.created_at
            )
            for m in ticket.conversation
        ],
    )


def _scoped(inputs: dict[str, Any], tenant: Tenant) -> dict[str, Any]:
    """Cache material for a call: a narrower scope never shares an entry with a wider one
    (a customer must not be served an answer computed from internal notes)."""
    scope = access_scope(tenant)
    if scope == AGENT_SCOPE:
        return inputs
    return {**inputs, "_scope": scope.cache_material()}


def _stream(body: Any) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/search", response_model=SearchOut)
async def search(body: SearchIn, tenant: CurrentTenant, service: AssistantDep) -> SearchOut:
    """Hybrid search (dense + sparse, fused by reciprocal rank) over your knowledge, with
    filters; one passage per document, each with a citation handle. Repeated searches are
    answered from your company's cache until your knowledge next changes. A customer token
    searches published articles only (no tickets, no internal content); a ticket-scoped
    agent token sees internal content of its own ticket only."""

    results = await service.search(
        tenant,
        body.query,
        filters=body.filters.to_filters(),
        limit=body.limit,
        mode=body.mode,
        include_internal=body.include_internal,
        material=_scoped({"search": body.model_dump(mode="json")}, tenant),
    )
    return SearchOut.model_validate(results)


def _answer_call(body: AnswerIn, tenant: Tenant, service: AssistantService) -> TaskCall:
    if body.ticket is not None and tenant.is_customer:
        raise Forbidden("a customer token cannot ask about a ticket", code="audience_forbidden")
    ticket = _ticket_context(body.ticket, tenant) if body.ticket else None
    return TaskCall(
        task="answer",
        inputs=_scoped(body.model_dump(mode="json"), tenant),
        question=body.question,
        ticket_ref=ticket.id if ticket else None,
        work=AnswerWork(
            body.question, ticket, filters=body.filters.to_filters(), scope=access_scope(tenant)
        ),
    )


def _draft_call(body: DraftIn, tenant: Tenant, service: AssistantService) -> TaskCall:
    ticket = _ticket_context(body.ticket, tenant)
    return TaskCall(
        task="draft_reply",
        inputs=_scoped(body.ticket.model_dump(mode="json"), tenant),
        question=ticket.subject or ticket.description[:500],
        ticket_ref=ticket.id,
        work=DraftReplyWork(ticket, scope=access_scope(tenant)),
        use_cache=not body.regenerate,
    )


def _review_call(body: ReviewReplyIn, tenant: Tenant, service: AssistantService) -> TaskCall:
    review = ReviewContext(**body.review.model_dump())
    return TaskCall(
        task="review_reply",
        inputs=_scoped(body.review.model_dump(mode="json"), tenant),
        question=review.text[:500],
        ticket_ref=None,
        work=ReviewReplyWork(review, scope=access_scope(tenant)),
        use_cache=not body.regenerate,
    )


@router.post("/answer", response_model=AssistantReply)
async def answer(
    body: AnswerIn, tenant: CurrentTenant, service: AssistantDep, plans: PlansDep
) -> AssistantReply:
    """Answer a question from your knowledge (optionally about a ticket), with citations.
    Agent-facing: internal notes may be used and are marked in the citations. With a
    customer token: public articles only, and no `ticket` (403 `audience_forbidden`)."""
    await plans.hit_assistant_call(tenant.company_id)
    return await service.complete(tenant, _answer_call(body, tenant, service))


@router.post("/answer/stream", responses=STREAM_DOC, response_class=StreamingResponse)
async def answer_stream(
    body: AnswerIn, tenant: CurrentTenant, service: AssistantDep, plans: PlansDep
) -> StreamingResponse:
    """`/answer`, streamed as Server-Sent Events."""
    await plans.hit_assistant_call(tenant.company_id)
    return _stream(service.stream(tenant, _answer_call(body, tenant, service)))


@router.post("/draft-reply", response_model=AssistantReply)
async def draft_reply(
    body: DraftIn, tenant: AgentTenant, service: AssistantDep, plans: PlansDep
) -> AssistantReply:
    """Draft a reply to the ticket, in the customer's language and your configured tone,
    grounded in knowledge articles and similar solved tickets. Internal notes are never
    quoted to the customer."""
    await plans.hit_assistant_call(tenant.company_id)
    return await service.complete(tenant, _draft_call(body, tenant, service))


@router.post("/draft-reply/stream", responses=STREAM_DOC, response_class=StreamingResponse)
async def draft_reply_stream(
    body: DraftIn, tenant: AgentTenant, service: AssistantDep, plans: PlansDep
) -> StreamingResponse:
    """`/draft-reply`, streamed as Server-Sent Events (what the sidebar widget uses)."""
    await plans.hit_assistant_call(tenant.company_id)
    return _stream(service.stream(tenant, _draft_call(body, tenant, service)))


@router.post("/review-reply", response_model=AssistantReply)
async def review_reply(
    body: ReviewReplyIn, tenant: AgentTenant, service: AssistantDep, plans: PlansDep
) -> AssistantReply:
    """Draft a reply to a customer review: thanks for a positive one, an apology and a next
    step for a negative one, in the review's language, without inventing facts."""
    await plans.hit_assistant_call(tenant.company_id)
    return await service.complete(tenant, _review_call(body, tenant, service))


@router.post("/review-reply/stream", responses=STREAM_DOC, response_class=StreamingResponse)
async def review_reply_stream(
    body: ReviewReplyIn, tenant: AgentTenant, service: AssistantDep, plans: PlansDep
) -> StreamingResponse:
    """`/review-reply`, streamed as Server-Sent Events."""
    await plans.hit_assistant_call(tenant.company_id)
    return _stream(service.stream(tenant, _review_call(body, tenant, service)))


@router.post("/similar-tickets", response_model=SimilarOut)
async def similar_tickets(
    body: SimilarIn, tenant: AgentTenant, service: AssistantDep
) -> SimilarOut:
    """Tickets like this one, solved ones first (the ticket itself is left out)."""
    if body.ticket is not None:
        subject: TicketContext | str = _ticket_context(body.ticket, tenant)
    elif body.query:
        subject = body.query
    else:
        raise BadRequest("give a ticket or a query", code="empty_query")
    found = await service.similar_tickets(tenant, subject, limit=body.limit)
    return SimilarOut(
        tickets=[
            SimilarTicketOut(
                document_id=p.document_id,
                external_id=p.external_id,
                title=p.title,
                url=p.url,
                status=p.status,
                resolved=(p.status or "") in {"resolved", "closed", "solved"},
                score=p.score,
                snippet=p.snippet,
            )
            for p in found
        ]
    )


@router.post("/summarize", response_model=SummaryOut)
async def summarize(
    body: DraftIn, tenant: AgentTenant, service: AssistantDep, plans: PlansDep
) -> SummaryOut:
    """Summarize a ticket thread for the agent (citing its messages)."""
    await plans.hit_assistant_call(tenant.company_id)
    ticket = _ticket_context(body.ticket, tenant)
    call = TaskCall(
        task="summarize",
        inputs=_scoped(body.ticket.model_dump(mode="json"), tenant),
        question=ticket.subject,
        ticket_ref=ticket.id,
        work=SummarizeWork(ticket),
        use_cache=not body.regenerate,
    )
    result = await service.complete(tenant, call)
    return SummaryOut(**dict(result), summary=result.answer)
