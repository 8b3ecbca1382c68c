"""Review replies with approval and publishing, the company's reply settings, and ticket
drafts posted to the helpdesk as private notes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from backend.api.dependencies import AgentTenant, KeyTenant, Scope, StateDep
from backend.api.schemas import ERROR_RESPONSES, ErrorBody
from backend.db.models import ReviewReply
from backend.errors import Forbidden
from backend.replies.service import ReplySettingsView
from backend.tenancy.service import Tenant

router = APIRouter(prefix="/v1/review-replies", tags=["review replies"], responses=ERROR_RESPONSES)
notes_router = APIRouter(
    prefix="/v1/ticket-notes", tags=["review replies"], responses=ERROR_RESPONSES
)

ReplyState = Literal["draft", "approved", "edited", "publishing", "published", "rejected"]
_PLATFORM_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such reply for your company."},
    409: {
        "model": ErrorBody,
        "description": "The reply's state does not allow this (`invalid_reply_state`, "
        "`reply_not_approved`, `publish_in_progress`) or publishing is not configured "
        "(`publish_not_configured`, `publish_unsupported`).",
    },
    502: {
        "model": ErrorBody,
        "description": "The platform refused (`platform_refused`) or did not answer "
        "(`platform_unavailable`); its status is recorded with the reply.",
    },
}


async def require_reviewer(tenant: AgentTenant) -> Tenant:
    """Review replies are for the company's agents: an API key or an agent widget token not
    tied to one ticket. A customer token gets 403 ``audience_forbidden``."""
    if tenant.ticket_id is not None:
        raise Forbidden(
            "a widget token for one ticket cannot act on review replies",
            code="ticket_out_of_scope",
        )
    return tenant


Reviewer = Annotated[Tenant, Depends(require_reviewer)]
ReplyId = Annotated[uuid.UUID, Path(description="The reply's id.")]


class TopicOut(BaseModel):
    topic: str
    sentiment: str


class ReviewReplyOut(BaseModel):
    id: uuid.UUID
    state: ReplyState
    source: str = Field(description="The review's platform (google_business, trustpilot…).")
    review_id: str = Field(description="The review's id on its platform (`review:…`).")
    review_url: str | None
    language: str | None
    rating: float | None
    rating_scale: float
    sentiment: str = Field(description="positive, neutral or negative.")
    topics: list[TopicOut] = Field(description="What the review is about, with its polarity.")
    draft: str = Field(description="The reply as drafted when the review arrived.")
    text: str = Field(description="The reply as it will be (or was) published.")
    updated_by: str | None
    approved_by: str | None
    approved_at: datetime | None
    published_by: str | None
    published_at: datetime | None
    publish_attempts: int
    platform_status: int | None = Field(description="The platform's HTTP status to the publish.")
    platform_answer: str | None = Field(
        description="The start of the platform's answer (a failure: its status text only)."
    )
    platform_answered_at: datetime | None
    alert_status: str | None = Field(
        description="Negative reviews: sent, failed or no_webhook (alerts fire once)."
    )
    created_at: datetime
    updated_at: datetime


class ReviewReplyPage(BaseModel):
    replies: list[ReviewReplyOut]
    next_before: datetime | None = Field(
        description="Pass as `before` for the next page; null on the last page."
    )


class EditIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000, description="The new reply text.")


class RejectIn(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


class SettingsOut(BaseModel):
    alert_webhook_host: str | None = Field(
        description="The host of the alert webhook (the URL itself is a secret and is never "
        "shown); null: no alerts are sent."
    )
    alert_rating_threshold: float = Field(
        description="A new review at or below this many stars (out of 5) raises an alert."
    )
    ticket_notes_enabled: bool = Field(
        description="Whether ticket drafts may be posted to the helpdesk as private notes."
    )


class SettingsIn(BaseModel):
    alert_webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="A Slack-compatible incoming webhook (https, hooks.slack.com or a host "
        "the operator allows, public addresses only). null removes it.",
    )
    alert_rating_threshold: float | None = Field(
        default=None, ge=0, le=5, description="null: back to the service default."
    )
    ticket_notes_enabled: bool | None = None


class NoteIn(BaseModel):
    connector_id: uuid.UUID = Field(description="The helpdesk connector the ticket lives in.")
    ticket_id: str = Field(
        min_length=1,
        max_length=200,
        description="The ticket's id on the helpdesk (`123`, `ticket:123`; ServiceNow: the "
        "record's sys_id).",
    )
    text: str = Field(min_length=1, max_length=20_000, description="The note (plain text).")
    table: str = Field(
        default="incident", max_length=64, description="ServiceNow only: the record's table."
    )


class NoteOut(BaseModel):
    platform: str
    ticket: str
    platform_status: int | None
    platform_answer: str
    posted_at: datetime


def _out(reply: ReviewReply) -> dict[str, Any]:
    def number(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return {
        "id": reply.id,
        "state": reply.state,
        "source": reply.source,
        "review_id": reply.external_id,
        "review_url": reply.review_url,
        "language": reply.language,
        "rating": number(reply.rating),
        "rating_scale": number(reply.rating_scale) or 5.0,
        "sentiment": reply.sentiment,
        "topics": reply.topics,
        "draft": reply.draft,
        "text": reply.reply_text,
        "updated_by": reply.updated_by,
        "approved_by": reply.approved_by,
        "approved_at": reply.approved_at,
        "published_by": reply.published_by,
        "published_at": reply.published_at,
        "publish_attempts": reply.publish_attempts,
        "platform_status": reply.platform_status,
        "platform_answer": reply.platform_answer,
        "platform_answered_at": reply.platform_answered_at,
        "alert_status": reply.alert_status,
        "created_at": reply.created_at,
        "updated_at": reply.updated_at,
    }


def _settings_out(view: ReplySettingsView) -> dict[str, Any]:
    return {
        "alert_webhook_host": view.alert_webhook_host,
        "alert_rating_threshold": view.alert_rating_threshold,
        "ticket_notes_enabled": view.ticket_notes_enabled,
    }


@router.get("", response_model=ReviewReplyPage)
async def list_review_replies(
    _tenant: Reviewer,
    scope: Scope,
    state: StateDep,
    reply_state: Annotated[
        list[ReplyState] | None,
        Query(
            alias="state",
            max_length=6,
            description="Only replies in these states (repeatable).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        datetime | None, Query(description="Only replies drafted before this time (paging).")
    ] = None,
) -> Any:
    """Your review replies, newest first: each new review gets a draft when it is ingested
    (in the review's language, answering its rating), with the review's sentiment and key
    topics. Filter with `state=draft` for the approval queue."""
    replies = await state.replies.list(scope, states=reply_state, limit=limit, before=before)
    return {
        "replies": [_out(r) for r in replies],
        "next_before": replies[-1].created_at if len(replies) == limit else None,
    }


@router.get("/settings", response_model=SettingsOut)
async def get_reply_settings(_tenant: KeyTenant, scope: Scope, state: StateDep) -> Any:
    """Your alert webhook (its host only), alert threshold and whether ticket drafts may be
    posted as private notes."""
    return _settings_out(await state.replies.settings(scope))


@router.put("/settings", response_model=SettingsOut, responses={400: {"model": ErrorBody}})
async def put_reply_settings(
    body: SettingsIn, tenant: KeyTenant, scope: Scope, state: StateDep
) -> Any:
    """Change the settings you send (others stay as they are). The alert webhook receives
    `{"text": ...}` (Slack incoming-webhook JSON) once per negative review; its URL must be
    https on hooks.slack.com or on the operator's allow-list, and resolve to public addresses
    (400 `alert_webhook_refused` otherwise). Needs an API key."""
    view = await state.replies.update_settings(
        scope, body.model_dump(include=body.model_fields_set), actor=tenant.actor
    )
    return _settings_out(view)


@router.get("/{reply_id}", response_model=ReviewReplyOut, responses=_PLATFORM_ERRORS)
async def get_review_reply(
    reply_id: ReplyId, _tenant: Reviewer, scope: Scope, state: StateDep
) -> Any:
    """One reply, with who approved and published it and the platform's answer."""
    return _out(await state.replies.get(scope, reply_id))


@router.post("/{reply_id}/approve", response_model=ReviewReplyOut, responses=_PLATFORM_ERRORS)
async def approve_review_reply(
    reply_id: ReplyId, tenant: Reviewer, scope: Scope, state: StateDep
) -> Any:
    """Approve the draft as it is (state `approved`); nothing is posted yet."""
    return _out(await state.replies.approve(scope, reply_id, actor=tenant.actor))


@router.patch("/{reply_id}", response_model=ReviewReplyOut, responses=_PLATFORM_ERRORS)
async def edit_review_reply(
    reply_id: ReplyId, body: EditIn, tenant: Reviewer, scope: Scope, state: StateDep
) -> Any:
    """Replace the reply text (state `edited`: the edit is your approval of the new text)."""
    return _out(await state.replies.edit(scope, reply_id, actor=tenant.actor, text=body.text))


@router.post("/{reply_id}/reject", response_model=ReviewReplyOut, responses=_PLATFORM_ERRORS)
async def reject_review_reply(
    reply_id: ReplyId,
    tenant: Reviewer,
    scope: Scope,
    state: StateDep,
    body: RejectIn | None = None,
) -> Any:
    """Reject the reply: it will not be published."""
    return _out(
        await state.replies.reject(
            scope,
            reply_id,
            actor=tenant.actor,
            reason=body.reason if body is not None else None,
        )
    )


@router.post("/{reply_id}/publish", response_model=ReviewReplyOut, responses=_PLATFORM_ERRORS)
async def publish_review_reply(reply_id: ReplyId, tenant: Reviewer, state: StateDep) -> Any:
    """Post the approved or edited reply under the review on its platform (Google Business
    Profile, Trustpilot), retrying rate limits and server errors. Publishing a published
    reply again answers the recorded result and posts nothing."""
    return _out(await state.replies.publish(tenant.company_id, reply_id, actor=tenant.actor))


@notes_router.post(
    "",
    response_model=NoteOut,
    status_code=201,
    responses={
        404: {"model": ErrorBody, "description": "No such connector for your company."},
        409: {
            "model": ErrorBody,
            "description": "Notes are off for your company (`ticket_notes_disabled`) or the "
            "connector's platform takes none (`notes_unsupported`).",
        },
        502: {"model": ErrorBody, "description": "The helpdesk refused or did not answer."},
    },
)
async def post_ticket_note(body: NoteIn, tenant: AgentTenant, state: StateDep) -> Any:
    """Post a ticket draft to the helpdesk as a **private** note for the agent (Freshdesk
    note with `private: true`, Zendesk comment with `public: false`, ServiceNow work note).
    Off by default: turn it on with `ticket_notes_enabled` in the reply settings."""
    if (
        tenant.ticket_id is not None
        and body.ticket_id.split(":")[-1] != tenant.ticket_id.split(":")[-1]
    ):
        raise Forbidden("this widget token is for another ticket", code="ticket_out_of_scope")
    result = await state.replies.post_ticket_note(
        tenant.company_id,
        connector_id=body.connector_id,
        ticket_id=body.ticket_id,
        text=body.text,
        table=body.table,
        actor=tenant.actor,
    )
    return {
        "platform": result.platform,
        "ticket": result.ticket_id,
        "platform_status": result.answer.status,
        "platform_answer": result.answer.excerpt,
        "posted_at": result.answer.answered_at,
    }
