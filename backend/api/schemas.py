"""Request and response bodies shared by several routers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    422: {"model": ErrorBody, "description": "The body or parameters failed validation."},
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


class MessageIn(BaseModel):
    author_role: Literal["customer", "agent", "system"] = "customer"
    text: str = Field(max_length=50_000)
    internal: bool = Field(default=False, description="A private note: never quoted.")
    created_at: datetime | None = None


class TicketIn(BaseModel):
    """The ticket in view, as the helpdesk shows it."""

    id: str | None = Field(default=None, max_length=200, description="Platform ticket id.")
    source: str | None = Field(default=None, max_length=64, examples=["freshdesk"])
    subject: str = Field(default="", max_length=2_000)
    description: str = Field(default="", max_length=100_000)
    status: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=16)
    requester: str | None = Field(default=None, max_length=320)
    conversation: list[MessageIn] = Field(default_factory=list, max_length=500)
