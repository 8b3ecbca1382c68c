"""Keywords first: a webhook's item is searchable by its sparse vectors before the model has
encoded it, its dense vectors follow, and nothing half-indexed survives a newer version or a
crash (the next plan re-embeds a row still waiting)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.ingest.indexer import KnowledgeIndexer, PreparedBatch
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
ZERO = timedelta(0)

ARTICLE_TEXT = (
    "Pair the Zephyrine thermostat: hold the dial for five seconds until the ring blinks "
    "amber, then choose Zephyrine in the app."
)
TICKET_TEXT = "My Zephyrine thermostat shows error Q-417 after the firmware update."


def _document(kind: DocumentKind, external_id: str, title: str, body: str) -> SourceDocument:
    return SourceDocument(
        source="freshdesk",
        external_id=external_id,
        kind=kind,
        title=title,
        status="published" if kind is DocumentKind.ARTICLE else "resolved",
        parts=[
            DocumentPart(text=title, label="subject"),
            DocumentPart(text=body, label="description", author_role="customer"),
        ],
    )


async def _keywords_only(
    indexer: KnowledgeIndexer, company_id: CompanyId, documents: list[SourceDocument]
) -> PreparedBatch:
    prepared = await indexer.prepare(company_id, documents, dense=False)
    counts = await indexer.write(prepared)
    assert counts.upserted == len(documents)
    assert prepared.points and all(point.dense is None for point in prepared.points)
    return prepared


async def _pending(state: Stack, company_id: str) -> dict[str, bool]:
    async with state.database.tenant_session(company_id) as session:
        rows = await session.execute(text("SELECT external_id, dense_pending FROM documents"))
    return {external_id: pending for external_id, pending in rows}


async def _titles(
    client: httpx.AsyncClient, headers: dict[str, str], query: str, mode: str = "hybrid"
) -> list[str]:
    response = await client.post(
        "/v1/search", headers=headers, json={"query": query, "mode": mode, "limit": 5}
    )
    assert response.status_code == 200, response.text
    return [hit["title"] for hit in response.json()["results"]]


async def _knowledge_changed(state: Stack, company_id: CompanyId) -> None:
    async with state.for_tenant(company_id) as scope:
        await scope.knowledge_changed()


async def test_a_keywords_first_write_is_searchable_at_once_and_gets_its_dense_vectors_after(
    app: FastAPI, client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    acme_id = CompanyId(acme.company_id)
    indexer = state.indexer()
    article = _document(DocumentKind.ARTICLE, "article:1", "Pairing the Zephyrine", ARTICLE_TEXT)
    ticket = _document(DocumentKind.TICKET, "ticket:7", "Zephyrine error Q-417", TICKET_TEXT)

    prepared = await _keywords_only(indexer, acme_id, [article, ticket])
    await _knowledge_changed(state, acme_id)
    assert await _pending(state, acme.company_id) == {"article:1": True, "ticket:7": True}

    # Found by its words at once, through the same hybrid search agents use; the dense side
    # does not know it yet.
    found = await _titles(client, acme.headers, "Zephyrine thermostat")
    assert set(found) == {"Pairing the Zephyrine", "Zephyrine error Q-417"}
    assert await _titles(client, acme.headers, "Zephyrine thermostat", mode="dense") == []

    # A customer token finds the published article only, never the ticket; another company
    # finds neither.
    minted = await client.post(
        "/v1/widget-tokens", json={"audience": "customer"}, headers=acme.headers
    )
    assert minted.status_code == 201, minted.text
    customer = {
        "Authorization": f"Bearer {minted.json()['token']}",
        "X-Company-ID": acme.company_id,
    }
    assert await _titles(client, customer, "Zephyrine thermostat") == ["Pairing the Zephyrine"]
    assert await _titles(client, globex.headers, "Zephyrine thermostat") == []

    # Globex cannot complete (or even see) acme's pending rows.
    globex_view = PreparedBatch(
        CompanyId(globex.company_id), prepared.changed, prepared.points, prepared.counts
    )
    assert await indexer.write_dense(globex_view) == 0
    assert await state.vectors.count(globex.company_id) == 0

    assert await indexer.write_dense(prepared) == 2
    await _knowledge_changed(state, acme_id)
    assert await _pending(state, acme.company_id) == {"article:1": False, "ticket:7": False}
    meaning = await _titles(client, acme.headers, "how do I connect my smart heating dial", "dense")
    assert meaning[0] == "Pairing the Zephyrine"
    # Completing twice changes nothing.
    assert await indexer.write_dense(prepared) == 0


async def test_dense_vectors_of_an_older_version_never_overwrite_a_newer_one(
    app: FastAPI, make_company: MakeCompany
) -> None:
    state: Stack = app.state.helpdesk
    acme = await make_company("acme")
    acme_id = CompanyId(acme.company_id)
    indexer = state.indexer()
    first = _document(DocumentKind.TICKET, "ticket:9", "Zephyrine error", TICKET_TEXT)
    second = _document(
        DocumentKind.TICKET, "ticket:9", "Zephyrine error", TICKET_TEXT + " Solved: reset it."
    )
    older = await _keywords_only(indexer, acme_id, [first])
    newer = await _keywords_only(indexer, acme_id, [second])

    # The older version's vectors arrive late: refused, the row still waits for its own.
    assert await indexer.write_dense(older) == 0
    assert await _pending(state, acme.company_id) == {"ticket:9": True}
    assert await indexer.write_dense(newer) == 1
    payloads = await state.vectors.payloads(acme.company_id, [p.id for p in newer.points])
    assert any("Solved: reset it." in payload.text for payload in payloads.values())
    assert await _pending(state, acme.company_id) == {"ticket:9": False}


async def test_a_row_left_waiting_is_re_embedded_by_the_next_plan(
    app: FastAPI, make_company: MakeCompany
) -> None:
    """A process that stops between the two writes leaves ``dense_pending``: the next sync
    (or webhook) of the same content plans it as changed and writes it whole."""
    state: Stack = app.state.helpdesk
    acme = await make_company("acme")
    acme_id = CompanyId(acme.company_id)
    indexer = state.indexer()
    ticket = _document(DocumentKind.TICKET, "ticket:3", "Zephyrine error", TICKET_TEXT)
    await _keywords_only(indexer, acme_id, [ticket])

    counts = await indexer.index(acme_id, [ticket])
    assert (counts.upserted, counts.unchanged) == (1, 0)
    assert await _pending(state, acme.company_id) == {"ticket:3": False}
    again = await indexer.index(acme_id, [ticket])
    assert (again.upserted, again.unchanged) == (0, 1)


async def test_rows_left_keyword_only_are_completed_from_the_object_store(
    app: FastAPI, client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    """An incremental sync would never fetch an unchanged document again, so the
    connector's next drain or sync run embeds rows left waiting from their stored copy."""
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    acme_id = CompanyId(acme.company_id)
    article = _document(DocumentKind.ARTICLE, "article:4", "Pairing the Zephyrine", ARTICLE_TEXT)
    await _keywords_only(state.indexer(), acme_id, [article])

    sweeper = state.sync.parts.indexer(state.database, reindex=True)
    # Written moments ago: a live drain is still on it.
    assert await sweeper.complete_left_behind(acme_id) == 0
    assert await sweeper.complete_left_behind(CompanyId(globex.company_id), older_than=ZERO) == 0
    assert await _pending(state, acme.company_id) == {"article:4": True}

    assert await sweeper.complete_left_behind(acme_id, older_than=ZERO) == 1
    await _knowledge_changed(state, acme_id)
    assert await _pending(state, acme.company_id) == {"article:4": False}
    meaning = await _titles(client, acme.headers, "how do I connect my smart heating dial", "dense")
    assert meaning == ["Pairing the Zephyrine"]
    assert await sweeper.complete_left_behind(acme_id, older_than=ZERO) == 0
