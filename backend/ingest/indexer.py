"""Normalize → chunk → embed → upsert: turning fetched documents into searchable knowledge.

Split in three steps so a sync can overlap them (see :mod:`backend.ingest.sync`):
:meth:`KnowledgeIndexer.plan` (normalize, skip unchanged content, the plan's limit, chunk),
:meth:`KnowledgeIndexer.embed` (the model) and :meth:`KnowledgeIndexer.write` (object store,
Qdrant, Postgres — a page's rows in one statement, its blobs in one worker thread). Every
id is deterministic — the document row id and each chunk's point id are derived from
(company, source, external id[, chunk]) — so repeating any step after a crash overwrites
instead of duplicating.

Write order matters for crash safety. Upserts go object store → Qdrant → Postgres: the
Postgres row (with the content hash) is written last, so a crash before it makes the next
run re-embed rather than skip. Deletions go Qdrant → object store → Postgres, so a
document can never linger in search after its row is gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backend.adapters.base import Deletion, SourceDocument
from backend.blobs import BlobStore, TenantBlobs
from backend.db.repositories import companies as company_repo
from backend.db.repositories import documents as document_repo
from backend.db.session import Database
from backend.embeddings.dense import DenseEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.ingest.chunking import Chunk, chunk_document
from backend.ingest.normalize import NormalizedDocument, normalize_document, without_people
from backend.ingest.stored_documents import read_stored_document, stored_payload
from backend.privacy.identifiers import DEFAULT_PHONE_REGION, normalize_requester
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import open_scope
from backend.vectors import ChunkPayload, ChunkPoint, VectorStore, point_id

KnowledgeChanged = Callable[[str], Awaitable[None]]
DocumentRoom = Callable[[str], Awaitable[int | None]]
"""``company_id`` → how many more documents its plan admits (``None``: no limit)."""
"""Called with a company id after its knowledge changed (voids its cached answers)."""

# How long a keyword-only document may wait for its dense vectors before the connector's next
# drain or sync embeds it again from the object store: far longer than a live drain takes
# even behind a burst, so only what a stopped process left behind is redone.
LEFT_BEHIND_AFTER = timedelta(minutes=10)

OPEN_TICKET_STATUSES = frozenset({"open", "new", "pending", "on_hold", "hold"})


@dataclass(frozen=True, slots=True)
class IndexedOpenTicket:
    """An open ticket a write just created or changed (subject and customer's description)."""

    document_id: uuid.UUID
    source: str
    external_id: str
    text: str


OpenTicketsIndexed = Callable[[CompanyId, list[IndexedOpenTicket]], Awaitable[None]]
"""Called with a company id and the open tickets a write created or changed, after the
write committed (triage suggests their fields from it)."""


@dataclass(frozen=True, slots=True)
class IndexedReview:
    """A review a write just created or changed that has no owner reply yet."""

    document_id: uuid.UUID
    connector_id: uuid.UUID | None
    source: str
    external_id: str
    title: str
    text: str
    rating: float | None
    rating_scale: float
    language: str | None
    author: str | None
    url: str | None
    created_at: datetime | None


ReviewsIndexed = Callable[[CompanyId, list[IndexedReview]], Awaitable[None]]
"""Called with a company id and the unreplied reviews a write created or changed, after the
write committed (backend.replies queues a draft job for the new ones: the hook must stay
quick, since a sync page or a webhook drain waits for it)."""

_DOCUMENT_NAMESPACE = uuid.UUID("6f1c7a52-2b8e-4f43-9d55-0b7c0e3f4a11")


def document_uuid(company_id: str, source: str, external_id: str) -> uuid.UUID:
    """The documents-table id (and Qdrant ``document_id``) of one source document."""
    return uuid.uuid5(_DOCUMENT_NAMESPACE, "\x1f".join((company_id, source, external_id)))


@dataclass
class IndexCounts:
    fetched: int = 0
    upserted: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    chunks: int = 0
    reused: int = 0
    """Chunks whose dense vector was kept from the index (same text): not encoded again."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)
    """Skipped items and attachment outcomes by reason (from the adapters' pages)."""

    def add(self, other: IndexCounts) -> None:
        for key, value in other.by_reason.items():
            self.by_reason[key] = self.by_reason.get(key, 0) + value
        self.fetched += other.fetched
        self.upserted += other.upserted
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.failed += other.failed
        self.chunks += other.chunks
        self.reused += other.reused
        self.errors.extend(other.errors)

    @property
    def changed(self) -> bool:
        return bool(self.upserted or self.deleted)


@dataclass(frozen=True)
class _ChangedDocument:
    source: SourceDocument
    normalized: NormalizedDocument
    chunks: list[Chunk]
    previous_chunk_count: int
    is_new: bool = False
    """New to the index (counted against the plan's document limit)."""


@dataclass
class PlannedBatch:
    """A page normalized and chunked, before encoding: what must be embedded and written."""

    company_id: CompanyId
    changed: list[_ChangedDocument]
    counts: IndexCounts
    reuse_vectors: bool = True
    """Keep the dense vector of a chunk whose text is unchanged (off for a forced re-embed,
    which follows a model or chunking change)."""


@dataclass
class PreparedBatch:
    """A page after the CPU work: what must be written, with its vectors."""

    company_id: CompanyId
    changed: list[_ChangedDocument]
    points: list[ChunkPoint]
    counts: IndexCounts

    def points_by_document(self) -> list[list[ChunkPoint]]:
        """``points`` split per entry of ``changed`` (they come in its order, a point per
        chunk)."""
        split, start = [], 0
        for item in self.changed:
            split.append(self.points[start : start + len(item.chunks)])
            start += len(item.chunks)
        return split


class KnowledgeIndexer:
    def __init__(
        self,
        *,
        database: Database,
        vectors: VectorStore,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        blobs: BlobStore,
        connector_id: uuid.UUID | None = None,
        knowledge_changed: KnowledgeChanged | None = None,
        phone_region: str | None = DEFAULT_PHONE_REGION,
        document_room: DocumentRoom | None = None,
        open_tickets_indexed: OpenTicketsIndexed | None = None,
        reviews_indexed: ReviewsIndexed | None = None,
    ) -> None:
        self.database = database
        self.vectors = vectors
        self.dense = dense
        self.sparse = sparse
        self.blobs = blobs
        self.connector_id = connector_id
        self.knowledge_changed = knowledge_changed
        # Requester identifiers are stored in one canonical form (backend.privacy), so an
        # erasure request finds them however the platform or the requester spells them.
        self.phone_region = phone_region
        self.document_room = document_room
        self.open_tickets_indexed = open_tickets_indexed
        self.reviews_indexed = reviews_indexed
        # New documents admitted by plan() whose rows are not written yet: a sync plans
        # pages ahead of its writes, and the plan's room (counted from written rows) must
        # not hand the same room to two pages in flight.
        self._admitted_unwritten: dict[str, int] = defaultdict(int)

    async def index(
        self,
        company_id: CompanyId,
        documents: Sequence[SourceDocument],
        deletions: Sequence[Deletion] = (),
        *,
        force: bool = False,
    ) -> IndexCounts:
        """Plan, embed and write one batch (callers that don't overlap the steps).
        ``force`` re-embeds unchanged documents too (a re-index after a model or chunking
        change)."""
        return await self.write(await self.prepare(company_id, documents, force=force), deletions)

    async def prepare(
        self,
        company_id: CompanyId,
        documents: Sequence[SourceDocument],
        *,
        force: bool = False,
        dense: bool = True,
    ) -> PreparedBatch:
        """Plan and embed one batch for :meth:`write` (``dense``: see :meth:`embed`); a
        batch that fails here frees the plan room it was given."""
        planned = await self.plan(company_id, documents, force=force)
        try:
            return await self.embed(planned, dense=dense)
        except BaseException:
            self._release(planned)
            raise

    async def complete_left_behind(
        self,
        company_id: CompanyId,
        *,
        older_than: timedelta = LEFT_BEHIND_AFTER,
        limit: int = 200,
    ) -> int:
        """Embed again, from the object store, this connector's documents left keyword-only
        for longer than ``older_than`` (the process stopped between a webhook's two writes);
        returns how many were completed. Build this indexer with ``reindex=True``: these
        documents are not new, so triage and review drafts must not run for them again. A
        document whose stored copy is missing stays waiting for its connector's next full
        sync."""
        async with self.database.tenant_session(company_id) as session:
            keys = await document_repo.list_dense_pending(
                session, connector_id=self.connector_id, older_than=older_than, limit=limit
            )
        if not keys:
            return 0
        blobs = TenantBlobs(self.blobs, company_id)
        stored = [read_stored_document(await blobs.get_document(s, e)) for s, e in keys]
        documents = [document for document in stored if document is not None]
        counts = await self.index(company_id, documents, force=True)
        return counts.upserted

    def _release(self, batch: PlannedBatch | PreparedBatch) -> None:
        """The batch's new documents are written (or never will be): no longer in flight."""
        new = sum(1 for item in batch.changed if item.is_new)
        if new:
            left = self._admitted_unwritten[batch.company_id] - new
            self._admitted_unwritten[batch.company_id] = max(0, left)

    async def embed(self, planned: PlannedBatch, *, dense: bool = True) -> PreparedBatch:
        """Encode a planned batch's chunks: dense and sparse, or (``dense=False``) the sparse
        side only, for a write that must be searchable by keyword at once and gets its dense
        vectors from :meth:`write_dense` right after."""
        points = await self._embed(
            planned.company_id,
            planned.changed,
            dense=dense,
            reuse=planned.reuse_vectors,
            counts=planned.counts,
        )
        planned.counts.chunks = len(points)
        return PreparedBatch(planned.company_id, planned.changed, points, planned.counts)

    async def write_dense(self, written: PreparedBatch) -> int:
        """Add the dense vectors to a batch :meth:`write` stored keyword-only; returns how
        many documents were completed.

        The model runs first, outside any transaction. Then the rows still waiting are
        locked and only documents whose stored version is the one encoded here are
        upserted again, now with both vectors, and marked complete, in that one
        transaction: a newer version written meanwhile (another webhook, a sync) keeps its
        own text, and its own write completes it. Whatever this never completes (a crash, a
        stop) stays ``dense_pending``: the next plan of that document re-embeds it, and
        :meth:`complete_left_behind` finds it if no plan comes."""
        waiting = [
            (item, points)
            for item, points in zip(written.changed, written.points_by_document(), strict=True)
            if points
        ]
        texts = [p.payload.text for _, points in waiting for p in points if p.dense is None]
        if not texts:
            return 0
        encoded = iter(await self.dense.embed_documents(texts))
        # Points that kept their vector (unchanged text) are written again as they are.
        whole = [
            (
                item,
                [
                    p if p.dense is not None else dataclasses.replace(p, dense=next(encoded))
                    for p in points
                ],
            )
            for item, points in waiting
        ]
        company_id = written.company_id
        ids = [document_uuid(company_id, i.source.source, i.source.external_id) for i, _ in whole]
        completed: list[ChunkPoint] = []
        done: list[uuid.UUID] = []
        async with self.database.tenant_session(company_id) as session:
            pending = await document_repo.lock_dense_pending(session, ids)
            for document_id, (item, points) in zip(ids, whole, strict=True):
                if pending.get(document_id) != item.normalized.content_hash:
                    continue  # deleted, completed by a sync, or replaced by a newer version
                completed.extend(points)
                done.append(document_id)
            if completed:
                await self.vectors.upsert(company_id, completed)
                await document_repo.mark_dense_written(session, done)
        return len(done)

    async def plan(
        self, company_id: CompanyId, documents: Sequence[SourceDocument], *, force: bool = False
    ) -> PlannedBatch:
        """Normalize, skip unchanged content (unless ``force``), apply the plan's limit, chunk.

        Separate from :meth:`embed` so a sync can plan the next page while the model encodes
        this one: for short documents normalizing and chunking a page is a sizeable share
        of the model's time for it, and the model would otherwise wait."""
        counts = IndexCounts(fetched=len(documents))
        # The same document twice in one page (a platform re-emitting a boundary record):
        # the last version wins.
        latest = {(d.source, d.external_id): self._canonical_requester(d) for d in documents}
        if latest and await self._redacts_people(company_id):
            latest = {key: without_people(doc) for key, doc in latest.items()}
        normalized = await asyncio.to_thread(
            lambda: {key: normalize_document(doc) for key, doc in latest.items()}
        )
        by_source: dict[str, list[str]] = defaultdict(list)
        for source, external_id in latest:
            by_source[source].append(external_id)
        known: dict[tuple[str, str], tuple[str, int]] = {}
        async with self.database.tenant_session(company_id) as session:
            for source, ids in by_source.items():
                states = await document_repo.get_document_states(session, source, ids)
                known.update({(source, eid): state for eid, state in states.items()})

        candidates = []
        for key, doc in latest.items():
            previous = known.get(key)
            if not force and previous is not None and previous[0] == normalized[key].content_hash:
                counts.unchanged += 1
                continue
            # previous chunk count; None marks a document new to the index
            candidates.append((doc, normalized[key], previous[1] if previous else None))
        counts.unchanged += len(documents) - len(latest)
        candidates = await self._within_plan(company_id, candidates, counts)

        changed = await asyncio.to_thread(
            lambda: [
                _ChangedDocument(
                    doc, norm, chunk_document(norm), previous_chunks or 0, previous_chunks is None
                )
                for doc, norm, previous_chunks in candidates
            ]
        )
        return PlannedBatch(company_id, changed, counts, reuse_vectors=not force)

    async def _redacts_people(self, company_id: str) -> bool:
        """Whether the company asked for PII redaction (``companies.settings``)."""
        async with self.database.tenant_session(company_id) as session:
            company = await company_repo.get_company(session, company_id)
        settings = company.settings if company is not None else None
        return bool(isinstance(settings, dict) and settings.get("pii_redaction"))

    def _canonical_requester(self, document: SourceDocument) -> SourceDocument:
        canonical = normalize_requester(document.requester, self.phone_region)
        if canonical == document.requester:
            return document
        return document.model_copy(update={"requester": canonical})

    async def _within_plan(
        self,
        company_id: str,
        candidates: list[tuple[SourceDocument, NormalizedDocument, int | None]],
        counts: IndexCounts,
    ) -> list[tuple[SourceDocument, NormalizedDocument, int | None]]:
        """Leave out new documents beyond the company's plan (updates always pass); each one
        left out counts as failed, with the reason in the run's errors."""
        if self.document_room is None or not any(c[2] is None for c in candidates):
            return candidates
        # Read the in-flight count before the written rows: a page written and released
        # while the count runs is then counted twice (erring towards refusing), never missed.
        in_flight = self._admitted_unwritten[company_id]
        room = await self.document_room(company_id)
        if room is None:
            return candidates
        room -= in_flight
        kept = []
        refused = 0
        for candidate in candidates:
            if candidate[2] is None:
                if room <= 0:
                    refused += 1
                    continue
                room -= 1
            kept.append(candidate)
        self._admitted_unwritten[company_id] += sum(1 for c in kept if c[2] is None)
        if refused:
            counts.failed += refused
            counts.errors.append(
                {
                    "error": "plan_limit_documents",
                    "detail": f"{refused} new documents not indexed: the plan's document "
                    "limit is reached",
                }
            )
        return kept

    async def _embed(
        self,
        company_id: str,
        changed: Sequence[_ChangedDocument],
        *,
        dense: bool,
        reuse: bool,
        counts: IndexCounts,
    ) -> list[ChunkPoint]:
        texts = [chunk.text for item in changed for chunk in item.chunks]
        if not texts:
            return []
        vectors: list[list[float] | None] = (
            await self._kept_vectors(company_id, changed) if reuse else [None] * len(texts)
        )
        counts.reused += sum(vector is not None for vector in vectors)
        missing = [position for position, vector in enumerate(vectors) if vector is None]
        dense_task = (
            asyncio.ensure_future(self.dense.embed_documents([texts[i] for i in missing]))
            if dense and missing
            else None
        )
        # The sparse side runs in a worker thread while the model encodes.
        sparse = await asyncio.to_thread(self.sparse.encode_documents, texts)
        if dense_task is not None:
            for position, vector in zip(missing, await dense_task, strict=True):
                vectors[position] = vector
        points: list[ChunkPoint] = []
        position = 0
        for item in changed:
            doc, norm = item.source, item.normalized
            document_id = str(document_uuid(company_id, doc.source, doc.external_id))
            for chunk in item.chunks:
                payload = ChunkPayload(
                    company_id=company_id,
                    kind=doc.kind.value,
                    source=doc.source,
                    document_id=document_id,
                    external_id=doc.external_id,
                    chunk_index=chunk.index,
                    title=norm.title,
                    url=doc.url,
                    language=norm.language,
                    status=doc.status,
                    internal=chunk.internal,
                    tags=list(doc.tags),
                    requester_id=doc.requester,
                    created_at=doc.created_at,
                    updated_at=doc.updated_at,
                    text=chunk.text,
                    metadata=_chunk_metadata(doc, chunk),
                )
                points.append(
                    ChunkPoint(
                        id=point_id(company_id, doc.source, doc.external_id, chunk.index),
                        dense=vectors[position],
                        sparse=sparse[position],
                        payload=payload,
                    )
                )
                position += 1
        return points

    async def _kept_vectors(
        self, company_id: str, changed: Sequence[_ChangedDocument]
    ) -> list[list[float] | None]:
        """Per chunk, in order: the dense vector already in the index for the same text at
        the same place of the same document, else ``None``. A ticket updated by a new reply
        or a status change keeps its earlier chunks' vectors: the model encodes only the new
        text (the vector is a function of the chunk's text alone)."""
        chunks = [
            (
                point_id(company_id, item.source.source, item.source.external_id, chunk.index),
                chunk.text,
                chunk.index < item.previous_chunk_count,
            )
            for item in changed
            for chunk in item.chunks
        ]
        earlier = [pid for pid, _, existed in chunks if existed]
        stored = await self.vectors.dense_vectors(company_id, earlier) if earlier else {}
        kept: list[list[float] | None] = []
        for pid, text, _ in chunks:
            found = stored.get(pid)
            kept.append(found[1] if found is not None and found[0].text == text else None)
        return kept

    async def write(
        self, prepared: PreparedBatch, deletions: Sequence[Deletion] = ()
    ) -> IndexCounts:
        try:
            return await self._write(prepared, deletions)
        finally:
            self._release(prepared)

    async def _write(self, prepared: PreparedBatch, deletions: Sequence[Deletion]) -> IndexCounts:
        company_id, counts = prepared.company_id, prepared.counts
        blobs = TenantBlobs(self.blobs, company_id)
        if prepared.changed:
            await blobs.put_documents(
                [
                    (item.source.source, item.source.external_id, stored_payload(item.source))
                    for item in prepared.changed
                ]
            )
            await self.vectors.ensure_company(company_id)
            if prepared.points:
                await self.vectors.upsert(company_id, prepared.points)
            stale = [
                point_id(company_id, item.source.source, item.source.external_id, index)
                for item in prepared.changed
                for index in range(len(item.chunks), item.previous_chunk_count)
            ]
            if stale:
                await self.vectors.delete_points(company_id, stale)
            rows = [
                self._document_row(company_id, item, points)
                for item, points in zip(
                    prepared.changed, prepared.points_by_document(), strict=True
                )
            ]
            async with self.database.tenant_session(company_id) as session:
                await document_repo.upsert_documents(session, rows)
            counts.upserted += len(prepared.changed)
            if self.open_tickets_indexed is not None:
                opened = [_open_ticket(company_id, item) for item in prepared.changed]
                tickets = [ticket for ticket in opened if ticket is not None]
                if tickets:
                    await self.open_tickets_indexed(company_id, tickets)
            if self.reviews_indexed is not None:
                found = [self._review(company_id, item) for item in prepared.changed]
                reviews = [review for review in found if review is not None]
                if reviews:
                    await self.reviews_indexed(company_id, reviews)
        if deletions:
            counts.deleted += await self.delete(company_id, deletions)
        return counts

    def _review(self, company_id: str, item: _ChangedDocument) -> IndexedReview | None:
        return _unreplied_review(company_id, self.connector_id, item)

    async def delete(self, company_id: str, deletions: Sequence[Deletion]) -> int:
        """Remove documents from every store; returns how many rows existed."""
        by_source: dict[str, list[str]] = defaultdict(list)
        for deletion in deletions:
            by_source[deletion.source].append(deletion.external_id)
        ids = [
            str(document_uuid(company_id, source, eid))
            for source, eids in by_source.items()
            for eid in eids
        ]
        await self.vectors.ensure_company(company_id)
        await self.vectors.delete_documents(company_id, ids)
        blobs = TenantBlobs(self.blobs, company_id)
        await asyncio.gather(*(blobs.delete_document(d.source, d.external_id) for d in deletions))
        removed = 0
        async with self.database.tenant_session(company_id) as session:
            for source, eids in by_source.items():
                removed += len(await document_repo.delete_documents(session, source, eids))
        return removed

    async def purge(
        self,
        company_id: CompanyId,
        *,
        connector_id: uuid.UUID | None = None,
        document_id: uuid.UUID | None = None,
    ) -> int:
        """Delete every document matching the criteria from all stores (connector removal
        or a single document). One requester's data is erased by
        :class:`backend.privacy.requesters.RequesterPrivacy`, which also matches every
        spelling of the identifier and removes the interactions that quote it."""
        async with self.database.tenant_session(company_id) as session:
            keys = await document_repo.list_document_keys(
                session, connector_id=connector_id, document_id=document_id
            )
        if not keys:
            return 0
        removed = await self.delete(
            company_id, [Deletion(source=s, external_id=e, reason="purged") for s, e in keys]
        )
        # Cached answers may quote what was just removed (an erased requester's ticket):
        # they must not outlive it.
        async with open_scope(
            self.database,
            company_id,
            vectors=self.vectors,
            blobs=self.blobs,
            void_answers=self.knowledge_changed,
        ) as scope:
            await scope.knowledge_changed()
        return removed

    def _document_row(
        self, company_id: str, item: _ChangedDocument, points: Sequence[ChunkPoint]
    ) -> dict[str, Any]:
        doc, norm = item.source, item.normalized
        metadata = dict(doc.metadata)
        if doc.rating is not None:
            metadata["rating"] = doc.rating
        if doc.kind.value in {"ticket", "conversation"}:
            # The thread as structured parts, so agents' tools can show and reuse it without
            # re-fetching from the platform (internal notes stay flagged).
            metadata["parts"] = [
                {
                    "label": part.label,
                    "author_role": part.author_role,
                    "internal": part.internal,
                    "text": part.text,
                    "created_at": part.created_at.isoformat() if part.created_at else None,
                    "author_name": part.author_name,
                    "author_email": part.author_email,
                    "author_id": part.author_id,
                    "attachment_name": part.attachment_name,
                }
                for part in norm.parts
            ]
        return {
            "id": document_uuid(company_id, doc.source, doc.external_id),
            "company_id": company_id,
            "connector_id": self.connector_id,
            "source": doc.source,
            "external_id": doc.external_id,
            "kind": doc.kind.value,
            "title": norm.title,
            "body": norm.text,
            "url": doc.url,
            "language": norm.language,
            "status": doc.status,
            "requester": doc.requester,
            "tags": list(doc.tags),
            "metadata": metadata,
            "content_hash": norm.content_hash,
            "chunk_count": len(item.chunks),
            "dense_pending": any(point.dense is None for point in points),
            "source_created_at": doc.created_at,
            "source_updated_at": doc.updated_at,
        }


def _open_ticket(company_id: str, item: _ChangedDocument) -> IndexedOpenTicket | None:
    doc, norm = item.source, item.normalized
    if doc.kind.value != "ticket" or (doc.status or "").lower() not in OPEN_TICKET_STATUSES:
        return None
    # What the customer asked: the subject and the description (replies and notes would
    # pull the vote towards however the thread went, not what the ticket is about).
    asked = [p.text for p in norm.parts if p.label == "description" and not p.internal]
    body = asked[0] if asked else norm.public_text
    return IndexedOpenTicket(
        document_id=document_uuid(company_id, doc.source, doc.external_id),
        source=doc.source,
        external_id=doc.external_id,
        text=f"{norm.title}\n\n{body}".strip()[:4000],
    )


def _unreplied_review(
    company_id: str, connector_id: uuid.UUID | None, item: _ChangedDocument
) -> IndexedReview | None:
    doc, norm = item.source, item.normalized
    if doc.kind.value != "review" or doc.metadata.get("has_reply"):
        return None
    said = [p.text for p in doc.parts if p.label == "review"]
    scale = doc.metadata.get("rating_scale")
    return IndexedReview(
        document_id=document_uuid(company_id, doc.source, doc.external_id),
        connector_id=connector_id,
        source=doc.source,
        external_id=doc.external_id,
        title=norm.title,
        text="\n".join(said).strip()[:4000],
        rating=doc.rating,
        rating_scale=float(scale) if isinstance(scale, int | float) and scale > 0 else 5.0,
        language=norm.language,
        author=doc.requester,
        url=doc.url,
        created_at=doc.created_at,
    )


def _chunk_metadata(doc: SourceDocument, chunk: Chunk) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if chunk.section:
        metadata["section"] = chunk.section
    if doc.rating is not None:
        metadata["rating"] = doc.rating
    if chunk.attachment is not None:
        metadata["attachment"] = chunk.attachment
        metadata["cite_as"] = chunk.cite_as
    return metadata
