"""Your indexed knowledge: the documents your connectors and imports brought in."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from backend.api.dependencies import (
    CurrentTenant,
    IndexerDep,
    KeyTenant,
    StateDep,
    TenantSession,
    require_api_key,
)
from backend.api.schemas import (
    ERROR_RESPONSES,
    MAX_OFFSET,
    NOT_FOUND,
    ErrorBody,
    ReindexIn,
    ReindexPageOut,
)
from backend.db.models import Document
from backend.db.repositories import documents as document_repo
from backend.errors import NotFound
from backend.ingest.reindex import build_reindexer

# Management endpoints: API keys only, never a widget token.
router = APIRouter(
    prefix="/v1",
    tags=["connectors"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(require_api_key)],
)


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    connector_id: uuid.UUID | None
    source: str
    external_id: str
    kind: str
    title: str
    url: str | None
    language: str | None
    status: str | None
    tags: list[str]
    chunk_count: int
    source_updated_at: datetime | None
    updated_at: datetime


class DocumentPartOut(BaseModel):
    label: str = Field(description="subject, description, reply, note, resolution, ...")
    author_role: str | None
    internal: bool = Field(description="A private note / work note: agent-only.")
    text: str
    created_at: datetime | None


class DocumentDetail(DocumentOut):
    body: str = Field(
        description="The text customers may see: internal notes are left out of it and "
        "returned in `internal_notes` instead."
    )
    internal_notes: list[DocumentPartOut] = Field(
        description="Private notes / work notes of a ticket (agent-only, never for customers)."
    )
    parts: list[DocumentPartOut] = Field(
        description="A ticket's thread in order, each message flagged `internal` or not; "
        "empty for articles and reviews."
    )
    has_internal: bool = Field(description="The document holds internal content.")
    metadata: dict[str, Any]

    @classmethod
    def of(cls, document: Document) -> DocumentDetail:
        metadata = dict(document.metadata_)
        raw_parts = metadata.pop("parts", None) or []
        parts = [
            DocumentPartOut(
                label=str(p.get("label") or ""),
                author_role=p.get("author_role"),
                internal=bool(p.get("internal")),
                text=str(p.get("text") or ""),
                created_at=p.get("created_at"),
            )
            for p in raw_parts
            if isinstance(p, dict)
        ]
        internal = [p for p in parts if p.internal]
        # The stored body joins every part, notes included; with the parts at hand the public
        # text is rebuilt from the public ones (as ingest builds it: paragraphs in order).
        body = "\n\n".join(p.text for p in parts if not p.internal) if parts else document.body
        base = DocumentOut.model_validate(document).model_dump()
        return cls(
            **base,
            body=body,
            internal_notes=internal,
            parts=parts,
            has_internal=bool(internal),
            metadata=metadata,
        )


class PurgeResult(BaseModel):
    deleted_documents: int


@router.get("/documents", response_model=list[DocumentOut])
async def list_documents(
    session: TenantSession,
    kind: Annotated[
        str | None, Query(pattern="^(ticket|conversation|article|review)$", max_length=12)
    ] = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    updated_after: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[DocumentOut]:
    """Indexed documents, most recently updated first."""
    documents = await document_repo.list_documents(
        session,
        kind=kind,
        source=source,
        updated_after=updated_after,
        limit=limit,
        offset=offset,
    )
    return [DocumentOut.model_validate(document) for document in documents]


@router.get("/documents/{document_id}", response_model=DocumentDetail, responses=NOT_FOUND)
async def get_document(document_id: uuid.UUID, session: TenantSession) -> DocumentDetail:
    """One document: its public text in `body`, a ticket's private notes separately in
    `internal_notes`, and the thread as `parts` with each message flagged `internal`. Needs
    an API key (widget tokens, agent or customer, get 403)."""
    document = await document_repo.get_document(session, document_id)
    if document is None:
        raise NotFound("no such document", code="document_not_found")
    return DocumentDetail.of(document)


@router.delete("/documents/{document_id}", response_model=PurgeResult, responses=NOT_FOUND)
async def delete_document(
    document_id: uuid.UUID, tenant: CurrentTenant, indexer: IndexerDep
) -> PurgeResult:
    """Remove one document from every store. A later sync re-adds it if the platform still
    has it; delete it there, or pause the connector, to keep it out."""
    deleted = await indexer.purge(tenant.company_id, document_id=document_id)
    if not deleted:
        raise NotFound("no such document", code="document_not_found")
    return PurgeResult(deleted_documents=deleted)


class ReindexedDocumentOut(BaseModel):
    document_id: uuid.UUID
    chunks: int = Field(description="Chunks written for the document.")


@router.post(
    "/documents/{document_id}/reindex",
    response_model=ReindexedDocumentOut,
    responses={**NOT_FOUND, 409: {"model": ErrorBody}},
)
async def reindex_document(
    document_id: uuid.UUID, tenant: KeyTenant, state: StateDep
) -> ReindexedDocumentOut:
    """Chunk and embed one document again from its stored copy, without fetching anything
    from the helpdesk platform. Its search results are replaced in place and the company's
    cached answers are voided. 409 `document_needs_refetch` when the document was stored
    before re-indexing was possible: the next sync of its connector brings it back. Needs an
    `ingest`- or `admin`-scoped key or a console owner/admin. Audited (`knowledge.reindex`)."""
    done = await build_reindexer(state.database, state.sync.parts).reindex_document(
        tenant.company_id, document_id, actor=tenant.actor
    )
    return ReindexedDocumentOut(document_id=done.document_id, chunks=done.chunks)


@router.post(
    "/knowledge/reindex",
    response_model=ReindexPageOut,
    responses={400: {"model": ErrorBody}},
)
async def reindex_knowledge(
    tenant: KeyTenant, state: StateDep, body: ReindexIn | None = None
) -> ReindexPageOut:
    """Chunk and embed one page of your documents again from their stored copies — e.g. after
    a chunking change. Call again with `after` = `next_cursor` until `next_cursor` is `null`;
    each page is complete when it returns, so a stopped re-index resumes from its last cursor.
    Search keeps answering meanwhile. Needs an `ingest`- or `admin`-scoped key or a console
    owner/admin. Audited (`knowledge.reindex`)."""
    request = body or ReindexIn()
    page = await build_reindexer(state.database, state.sync.parts).reindex_page(
        tenant.company_id,
        after=request.after,
        source=request.source,
        limit=request.limit,
        actor=tenant.actor,
    )
    return ReindexPageOut(**asdict(page))
