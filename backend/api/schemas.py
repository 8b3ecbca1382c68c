"""Request and response bodies shared by several routers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.ingest.reindex import MAX_PAGE_DOCUMENTS

MAX_OFFSET = 1_000_000
"""Deepest page offset a listing accepts (bigger ones were a 500 past Postgres' bigint)."""


class ErrorBody(BaseModel):
    error: str = Field(description="Stable machine-readable error code.")
    detail: Any = Field(description="Human-readable explanation or validation details.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed request (e.g. invalid company id)."},
    401: {"model": ErrorBody, "description": "Missing, unknown, expired or revoked API key."},
    403: {
        "model": ErrorBody,
        "description": "The key belongs to another company (`company_mismatch`), the company "
        "is suspended (`company_suspended`), or the credential's audience may not use this "
        "endpoint (`audience_forbidden`, `api_key_required`).",
    },
    413: {"model": ErrorBody, "description": "The request body is over the size limit."},
    422: {"model": ErrorBody, "description": "The body or parameters failed validation."},
    429: {
        "model": ErrorBody,
        "description": "Your plan's rate (`rate_limited`) or monthly quota (`quota_exceeded`) "
        "is used up; retry after `Retry-After` seconds.",
    },
}

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such item for your company."}
}


class CompanyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    company_id: str
    name: str
    helpdesk_domain: str | None
    status: str
    knowledge_generation: int
    settings: dict[str, Any]
    created_at: datetime


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    company_id: str
    name: str
    prefix: str = Field(description="Visible start of the key, to tell keys apart.")
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class IssuedApiKeyOut(BaseModel):
    api_key: str = Field(description="The secret key. Shown once: store it now.")
    key: ApiKeyOut


MESSAGE_MAX_CHARS = 50_000
DESCRIPTION_MAX_CHARS = 100_000
SUBJECT_MAX_CHARS = 2_000
CONVERSATION_MAX_MESSAGES = 500


class MessageIn(BaseModel):
    author_role: Literal["customer", "agent", "system"] = "customer"
    text: str = Field(max_length=MESSAGE_MAX_CHARS)
    internal: bool = Field(default=False, description="A private note: never quoted.")
    created_at: datetime | None = None


class TicketIn(BaseModel):
    """The ticket in view, as the helpdesk shows it."""

    id: str | None = Field(default=None, max_length=200, description="Platform ticket id.")
    source: str | None = Field(default=None, max_length=64, examples=["freshdesk"])
    subject: str = Field(default="", max_length=SUBJECT_MAX_CHARS)
    description: str = Field(default="", max_length=DESCRIPTION_MAX_CHARS)
    status: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=16)
    requester: str | None = Field(default=None, max_length=320)
    conversation: list[MessageIn] = Field(
        default_factory=list, max_length=CONVERSATION_MAX_MESSAGES
    )


class MessageOut(BaseModel):
    author_role: Literal["customer", "agent", "system"]
    text: str = Field(description=f"At most {MESSAGE_MAX_CHARS} characters (see `truncated`).")
    internal: bool = Field(description="A private note: never quoted.")
    created_at: datetime | None = None
    truncated: bool = Field(
        default=False, description="The stored message was longer and is cut here."
    )


class TicketOut(BaseModel):
    """An indexed ticket, shaped so it can be sent back as a `TicketIn` (every field within
    its limits: longer texts are cut, the most recent messages kept)."""

    id: str
    source: str | None
    subject: str
    description: str
    status: str | None
    language: str | None
    requester: str | None
    conversation: list[MessageOut]
    truncated: bool = Field(
        default=False, description="Some text or older messages did not fit the limits."
    )


class ReindexIn(BaseModel):
    source: str | None = Field(
        default=None,
        max_length=64,
        description="Only documents from this source (e.g. `freshdesk`); all when omitted.",
    )
    after: str | None = Field(
        default=None,
        max_length=2048,
        description="`next_cursor` of the previous page; omit it to start from the beginning.",
    )
    limit: int = Field(default=200, ge=1, le=MAX_PAGE_DOCUMENTS, description="Documents per page.")


class ReindexPageOut(BaseModel):
    documents: int = Field(description="Documents in this page.")
    reindexed: int = Field(description="Documents chunked and embedded again.")
    chunks: int = Field(description="Chunks written.")
    needs_refetch: list[str] = Field(
        description="`source:external_id` of documents stored before re-indexing was possible "
        "(or missing from the object store): the next sync of their connector restores them."
    )
    next_cursor: str | None = Field(
        description="Send it as `after` to continue; `null` when every document is done."
    )
