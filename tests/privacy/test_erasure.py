"""Right to erasure and right of access for one requester, across every store.

Data comes in through a real file-export sync and, for spellings the file importer would
already clean up, through the indexer directly (as a platform adapter hands documents over).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.api.dependencies import get_indexer, get_privacy
from backend.app import create_app
from backend.blobs import TenantBlobs
from backend.config import Settings
from backend.db.provisioning import DatabaseUrls
from backend.db.session import Database
from backend.ingest.indexer import document_uuid
from backend.privacy.identifiers import lookup_forms, normalize_phone, normalize_requester
from backend.stack import Stack
from backend.vectors import VectorFilter
from tests.api.test_assistant_api import sync_file, write_jsonl
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]

KNOWLEDGE = [
    {
        "id": "kb-heater",
        "title": "Heater shows error E4",
        "body": "Error E4 means the water filter is blocked. Rinse the filter and restart.",
    },
    {
        "id": "t-jane",
        "kind": "ticket",
        "title": "Heater error E4 at my cabin",
        "status": "resolved",
        "requester": "Jane.Doe@Example.com",
        "body": "My heater in the cabin at Birch Lane 7 shows E4 every morning.",
        "conversation": [{"author_role": "agent", "text": "Rinse the filter, then restart."}],
    },
    {
        "id": "t-phone",
        "kind": "ticket",
        "title": "Heater thermostat replacement",
        "status": "resolved",
        "requester": "+44 20 7946 0958",
        "body": "Please call me back about the thermostat replacement for my heater.",
    },
    {
        "id": "t-other",
        "kind": "ticket",
        "title": "Heater noise",
        "status": "open",
        "requester": "max@example.com",
        "body": "The heater hums loudly at night.",
    },
]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("Jane.Doe@Example.com", "jane.doe@example.com"),
        ("  JANE.DOE@EXAMPLE.COM ", "jane.doe@example.com"),
        ("ｊａｎｅ.doe＠example.com", "jane.doe@example.com"),  # full-width, NFKC
        ("mailto:Jane.Doe@Example.com", "jane.doe@example.com"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+44 (0)20-7946-0958", "+442079460958"),
        ("(415) 555-2671", "+14155552671"),  # default region US
        ("415.555.2671", "+14155552671"),
        ("＋１ ４１５ ５５５ ２６７１", "+14155552671"),
        ("zendesk-user:42", "zendesk-user:42"),
        ("Kim  Min-jun", "Kim Min-jun"),
        ("   ", None),
    ],
)
def test_identifiers_have_one_canonical_form(given: str, canonical: str | None) -> None:
    assert normalize_requester(given) == canonical


def test_phone_region_and_lookup_forms() -> None:
    assert normalize_requester("020 7946 0958", "GB") == "+442079460958"
    assert normalize_phone("020 7946 0958", "US") == "02079460958"  # not placeable: digits
    assert normalize_phone("not a phone") is None
    # Rows ingested before normalization stored the platform's spelling: look those up too.
    assert lookup_forms("Jane.Doe@Example.com") == ["jane.doe@example.com", "Jane.Doe@Example.com"]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@dataclass
class Setup:
    acme: CompanyWithKey
    globex: CompanyWithKey
    state: Stack

    def document_id(self, external_id: str) -> str:
        return str(document_uuid(self.acme.company_id, "file_export", external_id))

    async def chunks(self, external_id: str) -> int:
        return await self.state.vectors.count(
            self.acme.company_id, VectorFilter(document_ids=(self.document_id(external_id),))
        )

    async def blob(self, external_id: str) -> Any:
        blobs = TenantBlobs(self.state.blobs, self.acme.company_id)
        return await blobs.get_document("file_export", external_id)


@pytest.fixture
async def setup(app: FastAPI, make_company: MakeCompany, tmp_path: Path) -> Setup:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    await sync_file(state, acme.company_id, write_jsonl(tmp_path / "acme.jsonl", KNOWLEDGE))
    # Globex has a requester with the same e-mail: erasure at Acme must not touch it.
    await sync_file(
        state, globex.company_id, write_jsonl(tmp_path / "globex.jsonl", KNOWLEDGE[1:2])
    )
    return Setup(acme, globex, state)


async def _ask(client: httpx.AsyncClient, setup: Setup, question: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/answer", headers=setup.acme.headers, json={"question": question}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_erasure_reaches_every_store_and_is_audited(
    client: httpx.AsyncClient, setup: Setup, database: Database
) -> None:
    jane = setup.document_id("ticket:t-jane")
    assert await setup.chunks("ticket:t-jane") > 0
    assert await setup.blob("ticket:t-jane") is not None
    # An answer that cites Jane's ticket, with feedback; an unrelated one that must stay.
    cited = await _ask(client, setup, "heater E4 every morning at the cabin on Birch Lane")
    assert jane in {c["document_id"] for c in cited["context"]}
    feedback = await client.post(
        "/v1/feedback",
        headers=setup.acme.headers,
        json={"interaction_id": cited["interaction_id"], "rating": "up"},
    )
    assert feedback.status_code == 201
    unrelated = await _ask(client, setup, "heater hums loudly at night")
    assert (await _ask(client, setup, "heater E4 every morning at the cabin on Birch Lane"))[
        "cached"
    ]

    # The importer stored the e-mail lower-cased; the request uses yet another spelling.
    erased = await client.post(
        "/v1/privacy/erase-requester",
        headers=setup.acme.headers,
        json={"requester": "  JANE.Doe@example.COM "},
    )
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["deleted_documents"] == 1
    assert report["deleted_interactions"] >= 2  # the answer and its cached replay
    assert report["deleted_feedback"] == 1

    # Postgres: the document, the interactions citing it and their feedback are gone.
    async with database.tenant_session(setup.acme.company_id) as session:
        left = (
            await session.execute(
                text("SELECT count(*) FROM documents WHERE requester = 'jane.doe@example.com'")
            )
        ).scalar_one()
        citing = (
            await session.execute(
                text(
                    "SELECT count(*) FROM interactions WHERE citations @> "
                    "jsonb_build_array(jsonb_build_object('document_id', CAST(:d AS text)))"
                ),
                {"d": jane},
            )
        ).scalar_one()
        kept = (
            await session.execute(
                text("SELECT count(*) FROM interactions WHERE id = :i"),
                {"i": unrelated["interaction_id"]},
            )
        ).scalar_one()
        feedback_left = (await session.execute(text("SELECT count(*) FROM feedback"))).scalar_one()
        # The analytics rollup of top questions forgets the erased questions' text too.
        rolled_up = set(
            (
                await session.execute(text("SELECT question FROM analytics_questions_weekly"))
            ).scalars()
        )
    assert (left, citing, kept, feedback_left) == (0, 0, 1, 0)
    assert "heater hums loudly at night" in rolled_up
    assert not any("Birch Lane" in question for question in rolled_up)
    # Qdrant and the object store.
    assert await setup.chunks("ticket:t-jane") == 0
    assert await setup.blob("ticket:t-jane") is None
    assert await setup.chunks("ticket:t-other") > 0
    # The cache: the same question is answered afresh, without the erased ticket.
    again = await _ask(client, setup, "heater E4 every morning at the cabin on Birch Lane")
    assert again["cached"] is False
    assert jane not in {c["document_id"] for c in again["context"]}
    # Another company's requester with the same e-mail is untouched.
    globex_jane = str(document_uuid(setup.globex.company_id, "file_export", "ticket:t-jane"))
    assert (
        await setup.state.vectors.count(
            setup.globex.company_id, VectorFilter(document_ids=(globex_jane,))
        )
        > 0
    )
    # The audit entry records a hash of the identifier, never the identifier.
    audit = (await client.get("/v1/audit-log", headers=setup.acme.headers)).json()
    entry = next(e for e in audit if e["action"] == "privacy.erase_requester")
    assert entry["target"] == f"sha256:{report['requester_sha256']}"
    assert entry["details"] == {
        "documents": 1,
        "interactions": report["deleted_interactions"],
        "feedback": 1,
    }
    assert "jane" not in str(audit).lower()
    # Repeating the request is harmless.
    repeat = await client.post(
        "/v1/privacy/erase-requester",
        headers=setup.acme.headers,
        json={"requester": "jane.doe@example.com"},
    )
    assert repeat.json()["deleted_documents"] == 0


async def test_phone_numbers_match_in_any_spelling(client: httpx.AsyncClient, setup: Setup) -> None:
    erased = await client.post(
        "/v1/privacy/erase-requester",
        headers=setup.acme.headers,
        json={"requester": "0044 (20) 7946-0958"},
    )
    assert erased.json()["deleted_documents"] == 1
    assert await setup.chunks("ticket:t-phone") == 0


async def test_ingest_stores_the_canonical_form(setup: Setup, database: Database) -> None:
    """An adapter that passes the platform's spelling through (Freshdesk's e-mail as the
    contact typed it) still lands in canonical form in Postgres and in Qdrant."""
    indexer = await get_indexer(setup.state)
    document = SourceDocument(
        source="freshdesk",
        external_id="ticket:77",
        kind=DocumentKind.TICKET,
        title="Heater pilot light",
        parts=[DocumentPart(text="The pilot light goes out.", label="description")],
        requester="Mixed.Case@Example.COM",
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    await indexer.index(setup.acme.company_id, [document])
    async with database.tenant_session(setup.acme.company_id) as session:
        stored = (
            await session.execute(
                text("SELECT requester FROM documents WHERE external_id = 'ticket:77'")
            )
        ).scalar_one()
    assert stored == "mixed.case@example.com"
    assert (
        await setup.state.vectors.count(
            setup.acme.company_id, VectorFilter(requester_ids=("mixed.case@example.com",))
        )
        > 0
    )
    privacy = await get_privacy(setup.state)
    async with setup.state.for_tenant(setup.acme.company_id) as scope:
        report = await privacy.erase(scope, "MIXED.case@example.com", actor="test")
    assert report.deleted_documents == 1


async def test_access_export_returns_everything_held_and_is_audited(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    cited = await _ask(client, setup, "heater E4 every morning at the cabin on Birch Lane")
    exported = await client.post(
        "/v1/privacy/access-requester",
        headers=setup.acme.headers,
        json={"requester": "Jane.Doe@Example.com"},
    )
    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert body["requester"] == "jane.doe@example.com"
    [document] = body["documents"]
    assert document["external_id"] == "ticket:t-jane"
    assert "Birch Lane" in document["body"]
    assert "Birch Lane" in str(document["raw_payload"])  # the payload as fetched
    assert document["metadata"]["parts"]
    assert cited["interaction_id"] in {i["id"] for i in body["interactions"]}
    assert body["feedback"] == []
    audit = (await client.get("/v1/audit-log", headers=setup.acme.headers)).json()
    entry = next(e for e in audit if e["action"] == "privacy.access_requester")
    assert entry["details"]["documents"] == 1
    assert entry["target"].startswith("sha256:")
    # Another company's key cannot export Acme's requester.
    other = await client.post(
        "/v1/privacy/access-requester",
        headers=setup.globex.headers,
        json={"requester": "max@example.com"},
    )
    assert other.json()["documents"] == []


async def test_erasure_rows_and_audit_entry_commit_together(
    setup: Setup, database: Database, database_urls: DatabaseUrls
) -> None:
    """If the audit entry cannot be written, no row is deleted (and a retry completes)."""
    owner = create_async_engine(database_urls.owner_url)
    try:
        async with owner.begin() as conn:
            await conn.execute(
                text(
                    "CREATE FUNCTION refuse_erasure_audit() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'audit log unavailable'; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse_erasure_audit BEFORE INSERT ON audit_log FOR EACH ROW "
                    "WHEN (NEW.action = 'privacy.erase_requester') "
                    "EXECUTE FUNCTION refuse_erasure_audit()"
                )
            )
        privacy = await get_privacy(setup.state)
        with pytest.raises(DBAPIError):
            async with setup.state.for_tenant(setup.acme.company_id) as scope:
                await privacy.erase(scope, "max@example.com", actor="test")
        async with database.tenant_session(setup.acme.company_id) as session:
            still = (
                await session.execute(
                    text("SELECT count(*) FROM documents WHERE requester = 'max@example.com'")
                )
            ).scalar_one()
        assert still == 1
    finally:
        async with owner.begin() as conn:
            await conn.execute(text("DROP TRIGGER IF EXISTS refuse_erasure_audit ON audit_log"))
            await conn.execute(text("DROP FUNCTION IF EXISTS refuse_erasure_audit()"))
        await owner.dispose()
    async with setup.state.for_tenant(setup.acme.company_id) as scope:
        report = await privacy.erase(scope, "max@example.com", actor="test")
    assert report.deleted_documents == 1


async def test_erasure_reaches_chunks_whose_row_was_never_written(setup: Setup) -> None:
    """A crash between the vector upsert and the Postgres write leaves chunks without a
    documents row; erasure finds them by their requester payload."""
    from backend.embeddings.sparse import SparseEncoder
    from backend.vectors import ChunkPayload, ChunkPoint, point_id

    company = setup.acme.company_id
    dense = [1.0] + [0.0] * (setup.state.dense.dimension - 1)
    orphan = ChunkPoint(
        id=point_id(company, "freshdesk", "ticket:900", 0),
        dense=dense,
        sparse=SparseEncoder().encode_document("orphaned heater ticket"),
        payload=ChunkPayload(
            company_id=company,
            kind="ticket",
            source="freshdesk",
            document_id=str(document_uuid(company, "freshdesk", "ticket:900")),
            external_id="ticket:900",
            chunk_index=0,
            requester_id="orphan@example.com",
            text="orphaned heater ticket",
        ),
    )
    await setup.state.vectors.upsert(company, [orphan])
    only_orphan = VectorFilter(requester_ids=("orphan@example.com",))
    assert await setup.state.vectors.count(company, only_orphan) == 1
    privacy = await get_privacy(setup.state)
    async with setup.state.for_tenant(company) as scope:
        report = await privacy.erase(scope, "Orphan@Example.com", actor="test")
    assert report.deleted_documents == 0
    assert await setup.state.vectors.count(company, only_orphan) == 0
