"""Tenant isolation for knowledge ingested through every registered adapter.

For each platform in :data:`backend.adapters.registry.ADAPTERS`, the adapter is built through
``build_adapter`` over a protocol-level replay of that platform (or small export files), every
page is indexed for one company with the real :class:`KnowledgeIndexer` (Postgres as the
runtime role, the embedded Qdrant engine, the local object store, the local embedding model),
and a second company must see none of it in any store — nor be able to delete any of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from backend.adapters.base import Adapter, Deletion, ManualClock, SourceDocument
from backend.adapters.http import RateLimiter
from backend.adapters.registry import ADAPTERS, build_adapter
from backend.blobs import LocalBlobStore, TenantBlobs
from backend.db.models import Document
from backend.db.repositories import documents as document_repo
from backend.db.session import Database
from backend.embeddings import SentenceTransformerEncoder, SparseEncoder
from backend.ingest.indexer import KnowledgeIndexer, document_uuid
from backend.ingest.stored_documents import read_stored_document
from backend.tenancy.service import create_company
from backend.vectors import EdgeVectorStore, SearchMode
from tests.adapters import freshdesk_api as freshdesk
from tests.adapters import servicenow_api as servicenow
from tests.adapters.platform_replay import Replay, fixture_json, json_response
from tests.conftest import new_company_id

pytestmark = pytest.mark.slow

Handler = Callable[[httpx.Request], httpx.Response]

# Ids that the Google and Trustpilot fixtures (tests/adapters/fixtures/reviews) are about.
GOOGLE_ACCOUNT = "104211111111111111111"
GOOGLE_LOCATION = "2233445566778899001"
TRUSTPILOT_UNIT = "507f191e810c19729de860ea"
MAX_PAGES = 50


@pytest.fixture(scope="session")
def encoder() -> SentenceTransformerEncoder:
    # The model itself is cached per process by backend.embeddings.dense: one load per run.
    return SentenceTransformerEncoder(batch_size=32, torch_threads=1)


@dataclass(frozen=True)
class Connection:
    """What a connector for one platform holds: raw settings and credentials as a user would
    submit them, the platform (a replay) behind the HTTP client, and the clock."""

    settings: dict[str, Any]
    credentials: dict[str, Any]
    platform_api: Handler
    clock: ManualClock


def no_http() -> Handler:
    # File adapters read the disk only: a replay with no routes fails on any request.
    return Replay()


def freshdesk_connection(tmp_path: Path) -> Connection:
    now = freshdesk.NOW
    api = freshdesk.FakeFreshdesk(
        tickets=[
            freshdesk.make_ticket(1, now - timedelta(days=40), subject="Router drops Wi-Fi"),
            freshdesk.make_ticket(2, now - timedelta(days=3), subject="Refund for order 4002"),
        ],
        conversations={
            1: [
                freshdesk.make_conversation(
                    101,
                    1,
                    body_text="Please update the router firmware to 2.4.1.",
                    created_at=now - timedelta(days=39),
                )
            ]
        },
        categories=[{"id": 11, "name": "Devices", "description": None, "visible_in_portals": [1]}],
        folders={11: [{"id": 21, "name": "Router", "description": None, "visibility": 1}]},
        articles={
            21: [
                {
                    "id": 31,
                    "type": 1,
                    "category_id": 11,
                    "folder_id": 21,
                    "agent_id": 77001,
                    "title": "Updating router firmware",
                    "description": "<p>Open the app, choose Settings, then Firmware.</p>",
                    "description_text": "Open the app, choose Settings, then Firmware.",
                    "status": 2,
                    "tags": ["router"],
                    "seo_data": {},
                    "hits": 1,
                    "thumbs_up": 0,
                    "thumbs_down": 0,
                    "created_at": freshdesk.iso(now - timedelta(days=50)),
                    "updated_at": freshdesk.iso(now - timedelta(days=45)),
                }
            ]
        },
    )
    return Connection(
        settings={"domain": freshdesk.DOMAIN, "per_page": 1},
        credentials={"api_key": freshdesk.API_KEY},
        platform_api=api.handle,
        clock=ManualClock(now),
    )


def servicenow_connection(tmp_path: Path) -> Connection:
    now = servicenow.NOW
    api = servicenow.FakeServiceNow()
    incidents = [
        servicenow.make_incident(n, now - timedelta(hours=10 - n), state="6") for n in (1, 2)
    ]
    api.tables["incident"] = incidents
    api.tables["sys_journal_field"] = [
        servicenow.make_journal(
            1,
            incidents[0],
            "comments",
            "Please reinstall the VPN profile from the portal.",
            by="agent.smith",
            at=now - timedelta(hours=8),
        )
    ]
    api.tables["kb_knowledge"] = [servicenow.make_article(1, now - timedelta(days=2))]
    return Connection(
        settings={"instance": servicenow.INSTANCE, "page_size": 1},
        credentials={"username": servicenow.USER, "password": servicenow.PASSWORD},
        platform_api=api.handle,
        clock=ManualClock(now),
    )


def zendesk_comments(ticket_id: int) -> httpx.Response:
    """A one-page thread for the ticket, shaped like ``GET /api/v2/tickets/{id}/comments``."""
    comments = [
        {
            "id": ticket_id * 1000 + n,
            "type": "Comment",
            "author_id": author,
            "body": body,
            "plain_body": body,
            "html_body": f"<p>{body}</p>",
            "public": True,
            "attachments": [],
            "created_at": f"2024-03-04T0{n}:00:00Z",
        }
        for n, (author, body) in enumerate(
            [
                (36101, "지난주에 주문한 무선 이어폰이 한쪽만 작동합니다."),
                (90001, "불량 제품은 수령 후 14일 이내에 환불해 드립니다."),
            ],
            start=1,
        )
    ]
    return json_response(
        {
            "comments": comments,
            "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
            "links": {"next": None, "prev": None},
        }
    )


def zendesk_connection(tmp_path: Path) -> Connection:
    replay = Replay()
    tickets = "/api/v2/incremental/tickets/cursor.json"
    articles = "/api/v2/help_center/incremental/articles.json"
    replay.on(tickets, json_response(fixture_json("zendesk/tickets_cursor_page1.json")))
    replay.on(tickets, json_response(fixture_json("zendesk/tickets_cursor_page2.json")))
    replay.on("/api/v2/tickets/101/comments.json", zendesk_comments(101))
    replay.on(
        "/api/v2/tickets/102/comments.json",
        json_response(fixture_json("zendesk/comments_ticket_102.json")),
    )
    replay.on(articles, json_response(fixture_json("zendesk/articles_incremental_page1.json")))
    replay.on(articles, json_response(fixture_json("zendesk/articles_incremental_page2.json")))
    # Article 360050001 has an English translation (and a Japanese draft); the others none.
    translations = "/api/v2/help_center/articles/{}/translations.json"
    replay.on(
        translations.format(360050001),
        json_response(fixture_json("zendesk/translations_article_360050001.json")),
    )
    for article_id in (360050002, 360050003):
        replay.on(
            translations.format(article_id),
            json_response({"translations": [], "next_page": None, "count": 0}),
        )
    for article_id in (360050001, 360050002, 360050003):
        replay.on(
            f"/api/v2/help_center/articles/{article_id}/attachments.json",
            json_response({"article_attachments": []}),
        )
    return Connection(
        settings={"subdomain": "acme"},
        credentials={"email": "agent@acme.example", "api_token": "tok-123"},
        platform_api=replay,
        clock=ManualClock(),
    )


def google_business_connection(tmp_path: Path) -> Connection:
    reviews = f"/v4/accounts/{GOOGLE_ACCOUNT}/locations/{GOOGLE_LOCATION}/reviews"
    replay = Replay()
    replay.on(reviews, json_response(fixture_json("reviews/google_reviews_page1.json")))
    replay.on(
        reviews,
        json_response(fixture_json("reviews/google_reviews_page2.json")),
        query={"pageToken": "CiAKGjBBTXh1cFhfWVU4M0hiM2ZmV0FnSFFfRVJtEAE"},
    )
    return Connection(
        settings={"account": GOOGLE_ACCOUNT, "location": GOOGLE_LOCATION},
        credentials={"access_token": "ya29.token"},
        platform_api=replay,
        clock=ManualClock(),
    )


def trustpilot_connection(tmp_path: Path) -> Connection:
    reviews = f"/v1/business-units/{TRUSTPILOT_UNIT}/reviews"
    replay = Replay()
    for page in (1, 2):
        replay.on(
            reviews,
            json_response(fixture_json(f"reviews/trustpilot_reviews_page{page}.json")),
            query={"page": str(page)},
        )
    return Connection(
        # Two per page, as the recorded pages were fetched.
        settings={"business_unit_id": TRUSTPILOT_UNIT, "per_page": 2},
        credentials={"api_key": "tp-key"},
        platform_api=replay,
        clock=ManualClock(),
    )


def review_export_connection(tmp_path: Path) -> Connection:
    export = tmp_path / "exports" / "kakao_reviews.csv"
    export.parent.mkdir(parents=True)
    export.write_text(
        "리뷰번호,작성자,별점,내용,작성일,사장님 답글,플랫폼\n"
        'K-2001,카카오유저1,5,"포장 꼼꼼하고 배송 빨라요",2024.03.01,"감사합니다!",kakao\n'
        "K-2002,카카오유저2,2,응대가 너무 늦었어요,2024.03.02,,kakao\n",
        encoding="utf-8",
    )
    return Connection(
        settings={
            "path": str(export),
            "rating_scale": 5,
            # Kakao exports local dates without an offset.
            "timezone": "Asia/Seoul",
            "batch_size": 1,
        },
        credentials={},
        platform_api=no_http(),
        clock=ManualClock(),
    )


def file_export_connection(tmp_path: Path) -> Connection:
    export = tmp_path / "exports" / "kb_export.jsonl"
    export.parent.mkdir(parents=True)
    records = [
        {
            "id": "kb-1",
            "title": "Two-factor authentication",
            "body": "Enable 2FA under Settings, Security, then scan the QR code.",
            "type": "article",
            "status": "published",
            "updated_at": "2024-03-02T10:00:00Z",
        },
        {
            "id": "T-77",
            "subject": "Order arrived damaged",
            "description": "The box was crushed and the kettle lid is cracked.",
            "kind": "ticket",
            "status": "solved",
            "requester": "jo@example.com",
        },
    ]
    export.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return Connection(
        settings={"path": str(export), "batch_size": 1},
        credentials={},
        platform_api=no_http(),
        clock=ManualClock(),
    )


def article_folder_connection(tmp_path: Path) -> Connection:
    # Its own folder: the index and object store of the test live under tmp_path too.
    root = tmp_path / "kb"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "refunds.md").write_text(
        "---\ntitle: How refunds work\ntags: [billing]\n---\n"
        "Refunds reach your card within 5 business days of approval.\n",
        encoding="utf-8",
    )
    (root / "password.md").write_text(
        "# Reset your password\n\nChoose *Forgot password* on the sign-in page.\n",
        encoding="utf-8",
    )
    return Connection(
        settings={"root": str(root), "base_url": "https://kb.acme.example/", "batch_size": 1},
        credentials={},
        platform_api=no_http(),
        clock=ManualClock(),
    )


CONNECTIONS: dict[str, Callable[[Path], Connection]] = {
    "freshdesk": freshdesk_connection,
    "servicenow": servicenow_connection,
    "zendesk": zendesk_connection,
    "google_business": google_business_connection,
    "trustpilot": trustpilot_connection,
    "review_export": review_export_connection,
    "file_export": file_export_connection,
    "article_folder": article_folder_connection,
}


def test_every_registered_adapter_has_an_isolation_case() -> None:
    assert set(CONNECTIONS) == set(ADAPTERS)


async def ingest_all(
    adapter: Adapter[Any, Any], indexer: KnowledgeIndexer, company_id: str
) -> dict[str, SourceDocument]:
    """Fetch and index every page of a first sync, storing the checkpoint as JSON between
    pages as the sync service does. Returns the documents that should remain indexed."""
    remaining: dict[str, SourceDocument] = {}
    checkpoint = adapter.initial_checkpoint()
    for _ in range(MAX_PAGES):
        page = await adapter.fetch_page(checkpoint)
        assert page.failures == [] and not page.blocked, page.failures
        counts = await indexer.index(company_id, page.documents, page.deletions)
        assert counts.failed == 0, counts.errors
        # The indexer writes a page's documents, then its deletions.
        remaining.update({doc.external_id: doc for doc in page.documents})
        for deletion in page.deletions:
            remaining.pop(deletion.external_id, None)
        checkpoint = adapter.checkpoint_type.model_validate_json(page.checkpoint.model_dump_json())
        if not page.has_more:
            return remaining
    raise AssertionError(f"{adapter.source} did not finish within {MAX_PAGES} pages")


async def chunk_counts(database: Database, company_id: str, source: str) -> dict[str, int]:
    """external_id → chunk_count of the company's documents from ``source``."""
    async with database.tenant_session(company_id) as session:
        rows = await session.execute(
            select(Document.external_id, Document.chunk_count).where(Document.source == source)
        )
        return {row.external_id: row.chunk_count for row in rows}


async def stored_ids(blobs: TenantBlobs, source: str) -> set[str]:
    return {document_id async for document_id in blobs.list_documents(source)}


@pytest.mark.parametrize("platform", list(ADAPTERS))
async def test_another_company_sees_none_of_what_an_adapter_ingested(
    platform: str,
    database: Database,
    encoder: SentenceTransformerEncoder,
    tmp_path: Path,
) -> None:
    connection = CONNECTIONS[platform](tmp_path)
    owner, other = new_company_id("iso"), new_company_id("iso")
    await create_company(database, company_id=owner, name="Owner Co", actor="test")
    await create_company(database, company_id=other, name="Other Co", actor="test")
    sparse = SparseEncoder()
    vectors = EdgeVectorStore(tmp_path / "edge", dense_dimension=encoder.dimension)
    store = LocalBlobStore(tmp_path / "blobs")

    def indexer() -> KnowledgeIndexer:
        return KnowledgeIndexer(
            database=database, vectors=vectors, dense=encoder, sparse=sparse, blobs=store
        )

    try:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(connection.platform_api)
        ) as client:
            adapter = build_adapter(
                platform,
                connection.settings,
                connection.credentials,
                client=client,
                limiter=RateLimiter.unlimited(clock=connection.clock),
                clock=connection.clock,
            )
            source = adapter.source
            documents = await ingest_all(adapter, indexer(), owner)
        assert documents, f"{platform}: the replay produced no documents"
        assert {doc.source for doc in documents.values()} == {source}

        # The owner has it all, in every store.
        owner_chunks = await chunk_counts(database, owner, source)
        assert set(owner_chunks) == set(documents)
        points = sum(owner_chunks.values())
        assert points > 0
        assert await vectors.count(owner) == points
        owner_blobs = TenantBlobs(store, owner)
        assert await stored_ids(owner_blobs, source) == set(documents)
        async with database.tenant_session(owner) as session:
            assert await document_repo.count_documents(session) == len(documents)

        # A query built from the owner's own text finds the owner's document.
        probe_id = max(owner_chunks, key=lambda external_id: owner_chunks[external_id])
        probe = documents[probe_id]
        probe_uuid = document_uuid(owner, source, probe_id)
        async with database.tenant_session(owner) as session:
            row = await document_repo.get_document(session, probe_uuid)
            assert row is not None
            query_text = f"{row.title} {row.body}"[:300]
        dense_query = await encoder.embed_query(query_text)
        sparse_query = sparse.encode_query(query_text)
        hits = await vectors.query(
            owner, dense=dense_query, sparse=sparse_query, mode=SearchMode.HYBRID, limit=10
        )
        assert str(probe_uuid) in {hit.payload.document_id for hit in hits}
        assert {hit.payload.company_id for hit in hits} == {owner}

        async def assert_other_sees_nothing() -> None:
            async with database.tenant_session(other) as session:
                assert await document_repo.count_documents(session) == 0
                assert (
                    await document_repo.list_documents(
                        session, kind=None, source=source, updated_after=None, limit=100, offset=0
                    )
                    == []
                )
                assert await document_repo.get_document(session, probe_uuid) is None
                assert await document_repo.get_document_states(session, source, [probe_id]) == {}
                # Raw SQL, even naming the owner, returns nothing: row-level security decides.
                raw_all = await session.execute(text("SELECT count(*) FROM documents"))
                assert raw_all.scalar_one() == 0
                raw_owner = await session.execute(
                    text("SELECT count(*) FROM documents WHERE company_id = :owner"),
                    {"owner": owner},
                )
                assert raw_owner.scalar_one() == 0
            assert await vectors.count(other) == 0
            assert (
                await vectors.query(
                    other, dense=dense_query, sparse=sparse_query, mode=SearchMode.HYBRID, limit=10
                )
                == []
            )
            other_blobs = TenantBlobs(store, other)
            assert await stored_ids(other_blobs, source) == set()
            assert await other_blobs.list_sources() == []
            assert await other_blobs.get_document(source, probe_id) is None

        await assert_other_sees_nothing()

        # The other company deleting the owner's document by its platform id removes nothing.
        removed = await indexer().delete(
            other, [Deletion(source=source, external_id=probe_id, reason="x")]
        )
        assert removed == 0
        assert await chunk_counts(database, owner, source) == owner_chunks
        assert await vectors.count(owner) == points
        assert await stored_ids(owner_blobs, source) == set(documents)
        kept = await owner_blobs.get_document(source, probe_id)
        assert read_stored_document(kept) == probe
        # The delete opened the other company's (empty) shard: it is still empty, and the
        # same query against it still finds nothing.
        await assert_other_sees_nothing()
    finally:
        await vectors.close()
