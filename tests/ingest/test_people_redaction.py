"""Authors' names and addresses reach the documents table and the passages, unless the
company asked for PII redaction; either way another company sees none of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from backend.adapters.freshdesk.documents import ticket_document
from backend.blobs import LocalBlobStore
from backend.db.models import Document
from backend.db.session import Database
from backend.embeddings import SentenceTransformerEncoder, SparseEncoder
from backend.ingest.indexer import KnowledgeIndexer
from backend.tenancy.service import create_company
from backend.vectors import EdgeVectorStore, SearchMode
from tests.adapters import freshdesk_api as fd
from tests.conftest import new_company_id

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(batch_size=32, torch_threads=1)


async def stored_parts(database: Database, company_id: str) -> list[dict[str, object]]:
    async with database.tenant_session(company_id) as session:
        rows = (await session.execute(select(Document))).scalars().all()
    return [part for row in rows for part in row.metadata_.get("parts", [])]


async def test_authors_are_kept_or_redacted_as_the_company_asks(
    database: Database, encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    payload = fd.make_ticket(7, fd.NOW)
    payload["requester"] = {"id": 80007, "name": "Dana Park", "email": "dana@example.org"}
    incoming = fd.make_conversation(
        701, 7, body_text="Still broken after the reset.", incoming=True
    )
    incoming["from_email"] = "dana@example.org"
    document = ticket_document(payload, [incoming], domain=fd.DOMAIN)

    plain, redacted, other = (new_company_id("ppl") for _ in range(3))
    await create_company(database, company_id=plain, name="Plain", actor="test")
    await create_company(
        database,
        company_id=redacted,
        name="Careful",
        settings={"pii_redaction": True},
        actor="test",
    )
    await create_company(database, company_id=other, name="Other", actor="test")
    vectors = EdgeVectorStore(tmp_path / "edge", dense_dimension=encoder.dimension)
    indexer = KnowledgeIndexer(
        database=database,
        vectors=vectors,
        dense=encoder,
        sparse=SparseEncoder(),
        blobs=LocalBlobStore(tmp_path / "blobs"),
    )
    for company in (plain, redacted):
        counts = await indexer.index(company, [document])
        assert counts.upserted == 1

    kept = await stored_parts(database, plain)
    reply = next(p for p in kept if p["label"] == "reply")
    assert (reply["author_name"], reply["author_email"], reply["author_id"]) == (
        "Dana Park",
        "dana@example.org",
        "80007",
    )
    gone = await stored_parts(database, redacted)
    reply = next(p for p in gone if p["label"] == "reply")
    assert (reply["author_name"], reply["author_email"], reply["author_id"]) == (
        None,
        None,
        "80007",
    )
    async with database.tenant_session(redacted) as session:
        row = (await session.execute(select(Document))).scalars().one()
        assert "requester_name" not in row.metadata_
        assert "Dana Park" not in row.body

    dense = await encoder.embed_query("still broken after the reset")
    plain_hits = await vectors.query(plain, dense=dense, mode=SearchMode.DENSE, limit=5)
    redacted_hits = await vectors.query(redacted, dense=dense, mode=SearchMode.DENSE, limit=5)
    assert any("Customer (Dana Park):" in hit.payload.text for hit in plain_hits)
    assert redacted_hits and all("Dana Park" not in hit.payload.text for hit in redacted_hits)
    assert await stored_parts(database, other) == []
    assert await vectors.count(other) == 0
