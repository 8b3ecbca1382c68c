"""Re-index a company from the object store: new chunks and vectors, nothing refetched.

After an embedding-model or chunking change every document must be chunked and embedded
again. The platforms need not be asked: each fetched document is kept in the object store
(:mod:`backend.ingest.stored_documents`), so a re-index reads it back and runs the same
indexer with ``force`` (the content hash is unchanged, but its chunks and vectors are not).

The work goes in pages of documents in key order with an opaque cursor, like a connector's
checkpoint: each page is complete when it returns (object store, vectors, Postgres rows), so a
re-index that stops halfway resumes from its last cursor, and an HTTP call never holds a
request open for a whole company. Search keeps answering meanwhile: a document's points are
overwritten in place (same ids), and its surplus points are removed after.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from backend.adapters.base import SourceDocument
from backend.blobs import BlobStore, TenantBlobs
from backend.db.repositories import documents as document_repo
from backend.db.repositories.audit_log import append_audit_entry
from backend.db.session import Database
from backend.errors import BadRequest, Conflict, NotFound
from backend.ingest.indexer import KnowledgeIndexer
from backend.ingest.stored_documents import read_stored_document
from backend.ingest.sync import IndexingParts
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import TenantScope

MAX_PAGE_DOCUMENTS = 500
IndexerFor = Callable[[uuid.UUID | None], KnowledgeIndexer]
"""A document's connector id (None: imported without one) → the indexer that writes it."""


def encode_cursor(source: str, external_id: str) -> str:
    raw = json.dumps([source, external_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        source, external_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadRequest("cursor is not one this API returned", code="invalid_cursor") from exc
    if not isinstance(source, str) or not isinstance(external_id, str):
        raise BadRequest("cursor is not one this API returned", code="invalid_cursor")
    return source, external_id


@dataclass
class ReindexPage:
    """What one page of a re-index did."""

    documents: int = 0
    """Documents in this page."""
    reindexed: int = 0
    """Documents chunked and embedded again from the object store."""
    chunks: int = 0
    """Chunks written."""
    needs_refetch: list[str] = field(default_factory=list)
    """``source:external_id`` of documents whose stored copy predates the re-indexable format
    or is missing: the next sync of their connector (or a backfill) brings them back."""
    next_cursor: str | None = None
    """Pass it back as ``after`` for the next page; ``None`` when the company is done."""


ScopeFor = Callable[[CompanyId], AbstractAsyncContextManager[TenantScope]]
"""A company id → its tenant scope (see :mod:`backend.tenancy.scope`)."""


class KnowledgeReindexer:
    def __init__(
        self,
        *,
        database: Database,
        blobs: BlobStore,
        indexer_for: IndexerFor,
        scope_for: ScopeFor,
    ) -> None:
        self._database = database
        self._blobs = blobs
        self._indexer_for = indexer_for
        self._scope_for = scope_for

    async def reindex_page(
        self,
        company_id: CompanyId,
        *,
        after: str | None = None,
        source: str | None = None,
        limit: int = 200,
        actor: str,
    ) -> ReindexPage:
        """Re-index up to ``limit`` documents after the cursor ``after``."""
        if not 1 <= limit <= MAX_PAGE_DOCUMENTS:
            raise BadRequest(f"limit must be 1-{MAX_PAGE_DOCUMENTS}", code="invalid_limit")
        position = decode_cursor(after) if after else None
        async with self._database.tenant_session(company_id) as session:
            keys = await document_repo.list_document_keys_after(
                session, after=position, source=source, limit=limit
            )
        page = ReindexPage(documents=len(keys))
        blobs = TenantBlobs(self._blobs, company_id)
        by_connector: dict[uuid.UUID | None, list[SourceDocument]] = defaultdict(list)
        for doc_source, external_id, connector_id in keys:
            stored = read_stored_document(await blobs.get_document(doc_source, external_id))
            if stored is None:
                page.needs_refetch.append(f"{doc_source}:{external_id}")
                continue
            by_connector[connector_id].append(stored)
        for connector_id, documents in by_connector.items():
            counts = await self._indexer_for(connector_id).index(company_id, documents, force=True)
            page.reindexed += counts.upserted
            page.chunks += counts.chunks
        if len(keys) == limit:
            page.next_cursor = encode_cursor(keys[-1][0], keys[-1][1])
        await self._record(
            company_id,
            actor=actor,
            target=source,
            details={
                "documents": page.documents,
                "reindexed": page.reindexed,
                "chunks": page.chunks,
                "needs_refetch": len(page.needs_refetch),
                "resumed": after is not None,
            },
        )
        return page

    async def reindex_document(
        self, company_id: CompanyId, document_id: uuid.UUID, *, actor: str
    ) -> ReindexedDocument:
        """Chunk and embed one document again from its stored copy.

        Raises :class:`NotFound` for an id the company does not have (another company's id
        included: the lookup runs under the company's row-level security) and
        :class:`NeedsRefetch` when the stored copy cannot be re-indexed; nothing is written then.
        """
        async with self._database.tenant_session(company_id) as session:
            document = await document_repo.get_document(session, document_id)
            key = (
                None
                if document is None
                else (document.source, document.external_id, document.connector_id)
            )
        if key is None:
            raise NotFound("no such document", code="document_not_found")
        doc_source, external_id, connector_id = key
        blobs = TenantBlobs(self._blobs, company_id)
        stored = read_stored_document(await blobs.get_document(doc_source, external_id))
        if stored is None:
            raise NeedsRefetch(
                "this document was stored before re-indexing was possible (or is missing from "
                "the object store): the next sync of its connector brings it back",
                code="document_needs_refetch",
            )
        counts = await self._indexer_for(connector_id).index(company_id, [stored], force=True)
        await self._record(
            company_id,
            actor=actor,
            target=str(document_id),
            details={"documents": 1, "reindexed": counts.upserted, "chunks": counts.chunks},
        )
        return ReindexedDocument(document_id=document_id, chunks=counts.chunks)

    async def _record(
        self, company_id: CompanyId, *, actor: str, target: str | None, details: dict[str, Any]
    ) -> None:
        """Audit a re-index; when it wrote anything, void the cached answers once that commits."""
        async with self._scope_for(company_id) as scope:
            if details["reindexed"]:
                await scope.knowledge_changed()
            await append_audit_entry(
                scope.session,
                company_id=company_id,
                actor=actor,
                action="knowledge.reindex",
                target=target,
                details=details,
            )


@dataclass
class ReindexedDocument:
    """What re-indexing one document did."""

    document_id: uuid.UUID
    chunks: int
    """Chunks written."""


class NeedsRefetch(Conflict):
    """The document's stored copy predates the re-indexable format (or is missing)."""


def build_reindexer(database: Database, parts: IndexingParts) -> KnowledgeReindexer:
    """A re-indexer writing to the same stores as a sync. Plan limits and open-ticket triage
    are left out: a re-index adds no documents and changes no ticket."""
    return KnowledgeReindexer(
        database=database,
        blobs=parts.blobs,
        indexer_for=lambda connector_id: parts.indexer(
            database, connector_id=connector_id, reindex=True
        ),
        scope_for=lambda company_id: parts.scope(database, company_id),
    )
