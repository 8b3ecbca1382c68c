"""A passage cut from an attachment is cited as "attachment X of ticket Y"."""

from __future__ import annotations

import uuid

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.assistant.types import Citation
from backend.ingest.chunking import chunk_document
from backend.retrieval.passages import RetrievedPassage
from backend.vectors.types import ChunkPayload, VectorHit


def test_attachment_passage_is_cited_with_its_parent() -> None:
    ticket = SourceDocument(
        source="freshdesk",
        external_id="ticket:5",
        kind=DocumentKind.TICKET,
        title="Invoice total is wrong",
        parts=[
            DocumentPart(text="Invoice total is wrong", label="subject"),
            DocumentPart(text="The total should be 116.50 EUR.", label="description"),
            DocumentPart(
                text="Invoice 4005 total 129.00 EUR",
                label="attachment",
                attachment_name="invoice-4005.pdf",
            ),
        ],
    )
    chunk = next(c for c in chunk_document(ticket) if c.attachment)
    payload = ChunkPayload(
        company_id="acme",
        kind="ticket",
        source="freshdesk",
        document_id=str(uuid.uuid4()),
        external_id="ticket:5",
        chunk_index=chunk.index,
        title=ticket.title,
        text=chunk.text,
        metadata={
            "section": chunk.section,
            "attachment": chunk.attachment,
            "cite_as": chunk.cite_as,
        },
    )
    passage = RetrievedPassage.from_hit(
        VectorHit(id=uuid.uuid4(), score=1.0, payload=payload), ["invoice"]
    )
    assert passage.attachment == "invoice-4005.pdf"
    expected = "Invoice total is wrong — attachment invoice-4005.pdf of ticket #5"
    assert passage.to_llm_passage().title == expected
    citation = Citation.of(1, passage)
    assert citation.title == expected
    assert citation.cite_as == "attachment invoice-4005.pdf of ticket #5"
    assert "129.00 EUR" in passage.body
