"""Erasure and right-of-access for one requester (GDPR Art. 15 and 17).

A requester is found by every spelling of their identifier (:mod:`backend.privacy.identifiers`).
What is held about them: the documents they raised (tickets, conversations, reviews: rows,
chunks in the vector index, raw payloads in the object store) and the recorded assistant
interactions that cite those documents, were about those tickets, or quote the identifier
(with their feedback).

Erasure order, so a failure part-way leaves nothing half-recorded and a retry finishes the
job: queued interaction records are flushed first; then the vector index and the object
store are purged (idempotent deletes); then ONE Postgres transaction deletes the documents,
the interactions and their feedback, bumps the knowledge generation and writes the
``privacy.erase_requester`` audit entry — the rows and the record of their erasure commit
together or not at all. Last, the company's response-cache epoch is voided (cached answers
may quote the erased text), in every process sharing the cache.

The audit log keeps a SHA-256 of the canonical identifier, never the identifier itself: it
proves what was erased when the same request comes again, without re-storing the data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from backend.blobs import BlobStore, TenantBlobs
from backend.db.models import Document, Feedback, Interaction
from backend.db.repositories import companies as company_repo
from backend.db.repositories import documents as document_repo
from backend.db.repositories import interactions as interaction_repo
from backend.db.repositories.audit_log import append_audit_entry
from backend.db.session import Database
from backend.errors import BadRequest
from backend.ingest.indexer import KnowledgeChanged
from backend.ingest.stored_documents import raw_payload
from backend.privacy.identifiers import DEFAULT_PHONE_REGION, lookup_forms, normalize_requester
from backend.tenancy.company_id import validate_company_id
from backend.vectors import VectorStore

_log = structlog.get_logger("helpdesk.privacy")

# Shorter identifiers would match unrelated text in questions and answers.
_MIN_MENTION_CHARS = 5


@dataclass(frozen=True)
class ErasureReport:
    deleted_documents: int
    deleted_interactions: int
    deleted_feedback: int
    requester_sha256: str


def requester_digest(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RequesterPrivacy:
    def __init__(
        self,
        *,
        database: Database,
        vectors: VectorStore,
        blobs: BlobStore,
        knowledge_changed: KnowledgeChanged | None = None,
        flush_records: Callable[[], Awaitable[None]] | None = None,
        phone_region: str | None = DEFAULT_PHONE_REGION,
    ) -> None:
        self.database = database
        self.vectors = vectors
        self.blobs = blobs
        self.knowledge_changed = knowledge_changed
        self.flush_records = flush_records
        self.phone_region = phone_region

    def _identify(self, requester: str) -> tuple[str, list[str]]:
        canonical = normalize_requester(requester, self.phone_region)
        if canonical is None:
            raise BadRequest("the requester identifier is empty", code="empty_requester")
        return canonical, lookup_forms(requester, self.phone_region)

    @staticmethod
    def _mentions(forms: list[str]) -> list[str]:
        return [f for f in forms if len(f) >= _MIN_MENTION_CHARS]

    async def erase(self, company_id: str, requester: str, *, actor: str) -> ErasureReport:
        validate_company_id(company_id)
        canonical, forms = self._identify(requester)
        if self.flush_records is not None:
            await self.flush_records()  # a just-answered call citing them is in the table
        async with self.database.tenant_session(company_id) as session:
            documents = await document_repo.find_documents_by_requester(session, forms)
        keys = [(d.id, d.source, d.external_id) for d in documents]
        # Outside Postgres first: a failure here leaves the rows (and no audit entry), so
        # the request can simply be repeated. Chunks are also deleted by their requester
        # payload, which reaches any whose row a crashed ingest never wrote.
        await self.vectors.delete_requesters(company_id, forms)
        if keys:
            await self.vectors.delete_documents(company_id, [str(i) for i, _, _ in keys])
            blobs = TenantBlobs(self.blobs, company_id)
            for _, source, external_id in keys:
                await blobs.delete_document(source, external_id)
        digest = requester_digest(canonical)
        async with self.database.tenant_session(company_id) as session:
            related = await interaction_repo.find_interactions_about(
                session,
                document_ids=[str(i) for i, _, _ in keys],
                ticket_refs=[external_id for _, _, external_id in keys],
                mentions=self._mentions(forms),
            )
            deleted_interactions, deleted_feedback = await interaction_repo.delete_interactions(
                session, [i.id for i in related]
            )
            deleted_documents = await document_repo.delete_documents_by_id(
                session, [i for i, _, _ in keys]
            )
            changed = bool(deleted_documents or deleted_interactions)
            if changed:
                await company_repo.bump_knowledge_generation(session, company_id)
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="privacy.erase_requester",
                target=f"sha256:{digest}",
                details={
                    "documents": deleted_documents,
                    "interactions": deleted_interactions,
                    "feedback": deleted_feedback,
                },
            )
        if changed and self.knowledge_changed is not None:
            await self.knowledge_changed(company_id)
        _log.info(
            "requester erased",
            company_id=company_id,
            requester_sha256=digest,
            documents=deleted_documents,
            interactions=deleted_interactions,
        )
        return ErasureReport(deleted_documents, deleted_interactions, deleted_feedback, digest)

    async def export(self, company_id: str, requester: str, *, actor: str) -> dict[str, Any]:
        """Everything held about the requester, as JSON-ready data; the export is audited
        in the same transaction that reads it."""
        validate_company_id(company_id)
        canonical, forms = self._identify(requester)
        if self.flush_records is not None:
            await self.flush_records()
        digest = requester_digest(canonical)
        async with self.database.tenant_session(company_id) as session:
            documents = await document_repo.find_documents_by_requester(session, forms)
            interactions = await interaction_repo.find_interactions_about(
                session,
                document_ids=[str(d.id) for d in documents],
                ticket_refs=[d.external_id for d in documents],
                mentions=self._mentions(forms),
            )
            feedback = await interaction_repo.list_feedback_for(
                session, [i.id for i in interactions]
            )
            blobs = TenantBlobs(self.blobs, company_id)
            raw = {
                d.id: raw_payload(await blobs.get_document(d.source, d.external_id))
                for d in documents
            }
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="privacy.access_requester",
                target=f"sha256:{digest}",
                details={
                    "documents": len(documents),
                    "interactions": len(interactions),
                    "feedback": len(feedback),
                },
            )
        return {
            "requester": canonical,
            "matched_identifiers": forms,
            "documents": [_document(d, raw.get(d.id)) for d in documents],
            "interactions": [_interaction(i) for i in interactions],
            "feedback": [_feedback(f) for f in feedback],
        }


def _document(document: Document, raw: Any) -> dict[str, Any]:
    return {
        "id": str(document.id),
        "source": document.source,
        "external_id": document.external_id,
        "kind": document.kind,
        "title": document.title,
        "body": document.body,
        "url": document.url,
        "language": document.language,
        "status": document.status,
        "requester": document.requester,
        "tags": list(document.tags),
        "metadata": document.metadata_,
        "source_created_at": document.source_created_at,
        "source_updated_at": document.source_updated_at,
        "indexed_at": document.updated_at,
        "raw_payload": raw,
    }


def _interaction(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": str(interaction.id),
        "task": interaction.task,
        "question": interaction.question,
        "ticket_ref": interaction.ticket_ref,
        "answer": interaction.answer,
        "citations": interaction.citations,
        "created_at": interaction.created_at,
    }


def _feedback(feedback: Feedback) -> dict[str, Any]:
    return {
        "id": str(feedback.id),
        "interaction_id": str(feedback.interaction_id),
        "rating": feedback.rating,
        "reason": feedback.reason,
        "comment": feedback.comment,
        "inserted": feedback.inserted,
        "created_at": feedback.created_at,
    }
