"""Insight tests run on a real stack (Postgres, the embedded vector engine, the local
model) with tickets and reviews ingested through the real indexer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.app import create_app
from backend.config import Settings
from backend.ingest.indexer import IndexCounts, KnowledgeIndexer
from backend.stack import Stack
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=120, shutdown_timeout=30):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def indexer_for(app: FastAPI) -> KnowledgeIndexer:
    """The indexer a sync uses, with the same hooks (triage of open tickets included)."""
    state: Stack = app.state.helpdesk
    parts = state.sync.parts
    return KnowledgeIndexer(
        database=state.database,
        vectors=parts.vectors,
        dense=parts.dense,
        sparse=parts.sparse,
        blobs=parts.blobs,
        knowledge_changed=parts.knowledge_changed,
        open_tickets_indexed=parts.open_tickets_indexed,
    )


def ticket(
    ticket_id: str,
    subject: str,
    description: str,
    *,
    status: str = "resolved",
    resolution: str | None = None,
    category: str | None = None,
    group: str | None = None,
    priority: str | None = None,
    tags: tuple[str, ...] = (),
    created_at: datetime | None = None,
) -> SourceDocument:
    """A Freshdesk-shaped ticket document (type, group and priority as Freshdesk keeps them)."""
    parts = [
        DocumentPart(text=subject, label="subject"),
        DocumentPart(text=description, label="description", author_role="customer"),
    ]
    if resolution:
        parts.append(DocumentPart(text=resolution, label="reply", author_role="agent"))
    metadata: dict[str, Any] = {"type": category, "group_id": group, "priority": priority}
    when = created_at or datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    return SourceDocument(
        source="freshdesk",
        external_id=f"ticket:{ticket_id}",
        kind=DocumentKind.TICKET,
        title=subject,
        parts=parts,
        status=status,
        language="en",
        tags=list(tags),
        created_at=when,
        updated_at=when,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


async def ingest(app: FastAPI, company_id: str, documents: list[SourceDocument]) -> IndexCounts:
    return await indexer_for(app).index(company_id, documents)
