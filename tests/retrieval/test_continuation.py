"""Reading the chunks that follow a passage in its own document, on both vector engines.

The continuation is read by point id, so no query is encoded: the dense encoder here is a
stand-in that refuses to be called, and the points carry hand-written vectors.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from backend.embeddings import SparseEncoder
from backend.ingest.indexer import document_uuid
from backend.retrieval import CUSTOMER_SCOPE, AccessScope, HybridRetriever, RetrievedPassage
from backend.vectors import ChunkPayload, ChunkPoint, SparseVector, VectorHit, VectorStore, point_id
from tests.knowledge_corpus import build_store

DIMENSION = 4
SOURCE = "article_folder"


class UnusedDenseEncoder:
    """Continuation encodes nothing; a call here would be a bug."""

    dimension = DIMENSION
    model_name = "unused"

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        raise AssertionError("continuation must not encode documents")

    async def embed_query(self, text: str) -> list[float]:
        raise AssertionError("continuation must not encode a query")


def _point(
    company_id: str,
    external_id: str,
    index: int,
    text: str,
    *,
    kind: str = "article",
    internal: bool = False,
    metadata: dict[str, str] | None = None,
) -> ChunkPoint:
    return ChunkPoint(
        id=point_id(company_id, SOURCE, external_id, index),
        dense=[1.0, 0.0, 0.0, float(index)],
        sparse=SparseVector([index + 1], [1.0]),
        payload=ChunkPayload(
            company_id=company_id,
            kind=kind,  # type: ignore[arg-type]
            source=SOURCE,
            document_id=str(document_uuid(company_id, SOURCE, external_id)),
            external_id=external_id,
            chunk_index=index,
            title="Hub keeps going offline",
            internal=internal,
            text=text,
            metadata=metadata or {},
        ),
    )


@pytest.fixture(params=["edge", "server-memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    built = build_store(request.param, tmp_path, DIMENSION)
    yield built
    await built.close()


@pytest.fixture
async def companies(store: VectorStore) -> tuple[str, str]:
    suffix = secrets.token_hex(3)
    acme, globex = f"acme-{suffix}", f"globex-{suffix}"
    for company in (acme, globex):
        await store.ensure_company(company)
    await store.upsert(
        acme,
        [
            _point(acme, "hub", 0, "Hub keeps going offline\n\nThe hub lost its Wi-Fi."),
            _point(acme, "hub", 1, "Hub keeps going offline\n5 GHz\n\nUse 2.4 GHz only."),
            _point(acme, "hub", 2, "Hub keeps going offline\nOther\n\nReserve an address."),
            _point(acme, "hub", 3, "Escalate to tier 2 (internal).", internal=True),
            _point(acme, "hub", 4, "Attachment text.", metadata={"attachment": "a.pdf"}),
            _point(acme, "t-1", 0, "Ticket Q&A.", kind="ticket"),
            _point(acme, "t-1", 1, "Private note on t-1.", kind="ticket", internal=True),
            _point(acme, "t-1", 2, "Second note on t-1.", kind="ticket", internal=True),
            _point(acme, "t-2", 0, "Other ticket.", kind="ticket"),
            _point(acme, "t-2", 1, "Private note on t-2.", kind="ticket", internal=True),
            _point(acme, "t-2", 2, "Second note on t-2.", kind="ticket", internal=True),
        ],
    )
    # Globex has a document with the same platform id: its own, never Acme's.
    await store.upsert(globex, [_point(globex, "hub", 1, "Globex's own hub section.")])
    return acme, globex


async def _passage(
    store: VectorStore, company: str, external_id: str, index: int
) -> RetrievedPassage:
    chunk_id = point_id(company, SOURCE, external_id, index)
    payload = (await store.payloads(company, [chunk_id]))[chunk_id]
    return RetrievedPassage.from_hit(VectorHit(chunk_id, 1.0, payload), ())


def _retriever(store: VectorStore) -> HybridRetriever:
    return HybridRetriever(store, UnusedDenseEncoder(), SparseEncoder())


async def test_an_article_continues_with_its_next_sections_in_order(
    store: VectorStore, companies: tuple[str, str]
) -> None:
    acme, _ = companies
    opening = await _passage(store, acme, "hub", 0)
    following = await _retriever(store).continuation(acme, opening, count=2)
    assert [p.chunk_index for p in following] == [1, 2]
    assert [p.body for p in following] == ["Use 2.4 GHz only.", "Reserve an address."]
    assert {p.document_id for p in following} == {opening.document_id}


async def test_public_text_never_continues_into_internal_or_attachment_text(
    store: VectorStore, companies: tuple[str, str]
) -> None:
    acme, _ = companies
    retriever = _retriever(store)
    last_public = await _passage(store, acme, "hub", 2)
    # Chunk 3 is a private note: an agent's citation of public text does not grow into it.
    assert await retriever.continuation(acme, last_public, count=3) == []
    internal = await _passage(store, acme, "hub", 3)
    # Chunk 4 is an attachment's text: another citation (the file), not a continuation.
    assert await retriever.continuation(acme, internal, count=1) == []


async def test_customer_and_ticket_bound_scopes_get_no_internal_or_ticket_content(
    store: VectorStore, companies: tuple[str, str]
) -> None:
    acme, _ = companies
    retriever = _retriever(store)
    opening = await _passage(store, acme, "hub", 0)
    assert len(await retriever.continuation(acme, opening, count=2, scope=CUSTOMER_SCOPE)) == 2
    # A customer sees no tickets at all, not even their continuation.
    ticket = await _passage(store, acme, "t-1", 0)
    assert await retriever.continuation(acme, ticket, count=1, scope=CUSTOMER_SCOPE) == []
    # An agent token bound to t-1 reads t-1's notes on, never another ticket's.
    own_note = await _passage(store, acme, "t-1", 1)
    other_note = await _passage(store, acme, "t-2", 1)
    bound = AccessScope(ticket_id="t-1")
    following = await retriever.continuation(acme, own_note, count=1, scope=bound)
    assert [p.body for p in following] == ["Second note on t-1."]
    assert await retriever.continuation(acme, other_note, count=1, scope=bound) == []
    # And a caller leaving internal content out gets none.
    assert await retriever.continuation(acme, own_note, count=1, include_internal=False) == []


async def test_another_company_never_continues_a_passage_with_its_chunks_or_ours(
    store: VectorStore, companies: tuple[str, str]
) -> None:
    acme, globex = companies
    opening = await _passage(store, acme, "hub", 0)
    # Globex's store has a chunk at the same platform id and index: it belongs to another
    # document (Globex's), so Acme's passage is not continued from it, and Acme's own next
    # chunks are never read through Globex.
    assert await _retriever(store).continuation(globex, opening, count=2) == []
