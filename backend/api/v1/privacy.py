"""Data-subject rights: erase or export everything held about one requester (GDPR)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from backend.api.dependencies import CurrentTenant, PrivacyDep, Scope, require_api_key
from backend.api.schemas import ERROR_RESPONSES
from backend.api.v1.knowledge import PurgeResult

# Management endpoints: API keys only, never a widget token.
router = APIRouter(
    prefix="/v1",
    tags=["connectors"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(require_api_key)],
)


class EraseRequester(BaseModel):
    requester: str = Field(
        min_length=1,
        max_length=320,
        description="E-mail, phone number or platform id. Matched in its canonical form: "
        "e-mails case-insensitively, phone numbers as E.164 (numbers without a country code "
        "are read in HELPDESK_PRIVACY_PHONE_REGION).",
    )


class ErasureResult(PurgeResult):
    deleted_interactions: int = Field(
        description="Recorded assistant calls citing their documents, about their tickets, "
        "or quoting the identifier."
    )
    deleted_feedback: int
    requester_sha256: str = Field(
        description="SHA-256 of the canonical identifier, as recorded in the audit log."
    )


class RequesterExport(BaseModel):
    requester: str = Field(description="The identifier in its canonical form.")
    matched_identifiers: list[str] = Field(description="Every spelling that was looked up.")
    documents: list[dict[str, Any]] = Field(
        description="Tickets, conversations and reviews they raised: text, metadata (thread "
        "parts with internal notes flagged), and the raw payload as fetched."
    )
    interactions: list[dict[str, Any]] = Field(
        description="Assistant calls citing those documents, about those tickets, or quoting "
        "the identifier."
    )
    feedback: list[dict[str, Any]] = Field(description="Feedback on those interactions.")


@router.post("/privacy/erase-requester", response_model=ErasureResult)
async def erase_requester(
    body: EraseRequester, tenant: CurrentTenant, scope: Scope, privacy: PrivacyDep
) -> ErasureResult:
    """GDPR erasure: remove every ticket, conversation and review raised by one requester
    from Postgres, the vector index and the object store, with the recorded assistant calls
    that cite them, were about their tickets or quote the identifier (and their feedback);
    cached answers are voided. The database deletions and the audit entry (which keeps a
    hash of the identifier, not the identifier) commit together. Repeating a request is
    safe."""
    report = await privacy.erase(scope, body.requester, actor=tenant.actor)
    return ErasureResult(
        deleted_documents=report.deleted_documents,
        deleted_interactions=report.deleted_interactions,
        deleted_feedback=report.deleted_feedback,
        requester_sha256=report.requester_sha256,
    )


@router.post("/privacy/access-requester", response_model=RequesterExport)
async def access_requester(
    body: EraseRequester, tenant: CurrentTenant, scope: Scope, privacy: PrivacyDep
) -> RequesterExport:
    """GDPR right of access: everything held about one requester — the documents they
    raised (text, metadata, raw payload), the assistant calls that cite them or quote the
    identifier, and the feedback on those calls. Recorded in the audit log."""
    export = await privacy.export(scope, body.requester, actor=tenant.actor)
    return RequesterExport.model_validate(export)
