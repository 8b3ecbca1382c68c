"""An updated document keeps the dense vectors of its unchanged chunks: the model encodes
only new text. A status change (the most common webhook) costs no model time at all, and a
forced re-embed (after a model change) never reuses."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI
from sqlalchemy import text

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.embeddings.dense import DenseEncoder
from backend.ingest.indexer import KnowledgeIndexer, document_uuid
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from backend.vectors import SearchMode
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]

QUESTION = (
    "Our Zephyrine thermostat drops off the Wi-Fi every night at 2 am and the schedule is lost. "
    "We already replaced the router and moved the hub closer. " * 6
)
ANSWER = "Disable band steering on the router and pin the thermostat to 2.4 GHz. " * 8
FOLLOW_UP = "That fixed it, thank you! The schedule has survived three nights now."


class CountingEncoder:
    """The real model, counting the texts it is asked to encode."""

    def __init__(self, inner: DenseEncoder) -> None:
        self.inner = inner
        self.encoded: list[str] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.encoded.extend(texts)
        return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> list[float]:
        return await self.inner.embed_query(text)


def _ticket(status: str, *replies: str) -> SourceDocument:
    parts = [
        DocumentPart(text="Thermostat drops off Wi-Fi", label="subject"),
        DocumentPart(text=QUESTION, label="description", author_role="customer"),
    ]
    parts += [DocumentPart(text=r, label="reply", author_role="agent") for r in replies]
    return SourceDocument(
        source="freshdesk",
        external_id="ticket:42",
        kind=DocumentKind.TICKET,
        title="Thermostat drops off Wi-Fi",
        status=status,
        parts=parts,
    )


def _indexer(state: Stack) -> tuple[KnowledgeIndexer, CountingEncoder]:
    counting = CountingEncoder(state.sync.parts.dense)
    parts = dataclasses.replace(state.sync.parts, dense=counting)
    return parts.indexer(state.database, reindex=True), counting


async def test_an_update_encodes_only_its_new_text(app: FastAPI, make_company: MakeCompany) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    acme_id, globex_id = CompanyId(acme.company_id), CompanyId(globex.company_id)
    indexer, model = _indexer(state)

    first = await indexer.index(acme_id, [_ticket("open", ANSWER)])
    assert first.chunks >= 2 and first.reused == 0
    assert len(model.encoded) == first.chunks

    # Only the status changed: new payloads, the same texts, no model call.
    model.encoded.clear()
    pending = await indexer.index(acme_id, [_ticket("pending", ANSWER)])
    assert (pending.upserted, pending.reused) == (1, first.chunks)
    assert model.encoded == []
    document_id = str(document_uuid(acme_id, "freshdesk", "ticket:42"))
    statuses = {
        hit.payload.status
        for hit in await state.vectors.query(
            acme_id,
            dense=await state.dense.embed_query("thermostat wifi"),
            limit=10,
            mode=SearchMode.DENSE,
        )
        if hit.payload.document_id == document_id
    }
    assert statuses == {"pending"}

    # Resolved: the question-and-answer passage of a solved ticket is new text, the rest
    # keeps its vectors.
    model.encoded.clear()
    resolved = await indexer.index(acme_id, [_ticket("resolved", ANSWER)])
    assert resolved.reused == resolved.chunks - len(model.encoded) >= 1

    # A follow-up reply: the chunks before it keep their vectors.
    model.encoded.clear()
    followed = await indexer.index(acme_id, [_ticket("resolved", ANSWER, FOLLOW_UP)])
    assert followed.reused >= 1
    assert len(model.encoded) == followed.chunks - followed.reused
    assert any(FOLLOW_UP in encoded for encoded in model.encoded)

    # The same document in another company is encoded for that company: nothing crosses.
    model.encoded.clear()
    theirs = await indexer.index(globex_id, [_ticket("resolved", ANSWER, FOLLOW_UP)])
    assert theirs.reused == 0 and len(model.encoded) == theirs.chunks

    # A forced re-embed (after a model change) encodes everything again.
    model.encoded.clear()
    forced = await indexer.index(acme_id, [_ticket("resolved", ANSWER, FOLLOW_UP)], force=True)
    assert forced.reused == 0 and len(model.encoded) == forced.chunks


async def test_a_status_change_through_the_keywords_first_path_is_complete_at_once(
    app: FastAPI, make_company: MakeCompany
) -> None:
    state: Stack = app.state.helpdesk
    acme = await make_company("acme")
    acme_id = CompanyId(acme.company_id)
    indexer, model = _indexer(state)
    await indexer.index(acme_id, [_ticket("open", ANSWER)])

    model.encoded.clear()
    prepared = await indexer.prepare(acme_id, [_ticket("pending", ANSWER)], dense=False)
    assert all(point.dense is not None for point in prepared.points)
    await indexer.write(prepared)
    async with state.database.tenant_session(acme_id) as session:
        pending = (await session.execute(text("SELECT dense_pending FROM documents"))).scalar()
    assert pending is False
    assert await indexer.write_dense(prepared) == 0
    assert model.encoded == []
