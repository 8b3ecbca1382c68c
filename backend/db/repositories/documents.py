from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.models import Document


async def get_document_states(
    session: AsyncSession, source: str, external_ids: Sequence[str]
) -> dict[str, tuple[str, int]]:
    """external_id → (content_hash, chunk_count) for the documents that exist.

    A document still waiting for its dense vectors (``dense_pending``) reports an empty
    hash, so whoever plans it next (a sync, another webhook) re-embeds it in full."""
    if not external_ids:
        return {}
    result = await session.execute(
        select(
            Document.external_id,
            Document.content_hash,
            Document.chunk_count,
            Document.dense_pending,
        ).where(Document.source == source, Document.external_id.in_(list(external_ids)))
    )
    return {
        row.external_id: ("" if row.dense_pending else row.content_hash, row.chunk_count)
        for row in result
    }


async def lock_dense_pending(
    session: AsyncSession, document_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """id → content_hash of the given documents that still wait for their dense vectors,
    locked until the transaction ends (so no newer version's row lands in between)."""
    if not document_ids:
        return {}
    result = await session.execute(
        select(Document.id, Document.content_hash)
        .where(Document.id.in_(list(document_ids)), Document.dense_pending)
        .with_for_update()
    )
    return {row.id: row.content_hash for row in result}


async def list_dense_pending(
    session: AsyncSession, *, connector_id: uuid.UUID | None, older_than: timedelta, limit: int
) -> list[tuple[str, str]]:
    """(source, external_id) of one connector's documents still waiting for their dense
    vectors, last written longer than ``older_than`` ago (by the database's clock)."""
    query = (
        select(Document.source, Document.external_id)
        .where(
            Document.dense_pending,
            Document.connector_id.is_(None)
            if connector_id is None
            else Document.connector_id == connector_id,
            Document.updated_at < func.now() - older_than,
        )
        .order_by(Document.updated_at)
        .limit(limit)
    )
    return [(row.source, row.external_id) for row in await session.execute(query)]


async def mark_dense_written(session: AsyncSession, document_ids: Sequence[uuid.UUID]) -> None:
    """The documents' points now carry their dense vectors too."""
    if document_ids:
        await session.execute(
            update(Document).where(Document.id.in_(list(document_ids))).values(dense_pending=False)
        )


_DOCUMENTS: Table = Document.__table__  # type: ignore[assignment]
_KEY_COLUMNS = frozenset({"id", "company_id", "source", "external_id"})


async def upsert_documents(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace document rows, keyed by (company_id, source, external_id), in one
    round trip (an executemany of one prepared statement).

    Every row uses the same column names (``metadata``, not the ORM's ``metadata_``). One
    statement per page rather than per document: for one-line tickets the per-statement
    cost (building, compiling, a round trip) outweighed the row itself.
    """
    if not rows:
        return
    columns = list(rows[0])
    if any(list(row) != columns for row in rows):
        raise ValueError("every document row must have the same columns")
    statement = insert(_DOCUMENTS)
    updatable: dict[str, Any] = {k: statement.excluded[k] for k in columns if k not in _KEY_COLUMNS}
    updatable["updated_at"] = func.now()
    await session.execute(
        statement.on_conflict_do_update(constraint="uq_documents_source_id", set_=updatable),
        list(rows),
    )


async def delete_documents(
    session: AsyncSession, source: str, external_ids: Sequence[str]
) -> list[uuid.UUID]:
    if not external_ids:
        return []
    result = await session.execute(
        delete(Document)
        .where(Document.source == source, Document.external_id.in_(list(external_ids)))
        .returning(Document.id)
    )
    return list(result.scalars())


async def get_document(session: AsyncSession, document_id: uuid.UUID) -> Document | None:
    return await session.get(Document, document_id)


async def count_documents(session: AsyncSession, *, kind: str | None = None) -> int:
    query = select(func.count()).select_from(Document)
    if kind is not None:
        query = query.where(Document.kind == kind)
    return int((await session.execute(query)).scalar_one())


async def list_documents(
    session: AsyncSession,
    *,
    kind: str | None,
    source: str | None,
    updated_after: datetime | None,
    limit: int,
    offset: int,
) -> list[Document]:
    query = select(Document).order_by(Document.source_updated_at.desc().nulls_last(), Document.id)
    if kind is not None:
        query = query.where(Document.kind == kind)
    if source is not None:
        query = query.where(Document.source == source)
    if updated_after is not None:
        query = query.where(Document.source_updated_at > updated_after)
    result = await session.execute(query.limit(limit).offset(offset))
    return list(result.scalars())


async def list_document_keys(
    session: AsyncSession,
    *,
    connector_id: uuid.UUID | None = None,
    document_id: uuid.UUID | None = None,
) -> list[tuple[str, str]]:
    """(source, external_id) of the documents matching every given criterion."""
    query = select(Document.source, Document.external_id)
    if connector_id is not None:
        query = query.where(Document.connector_id == connector_id)
    if document_id is not None:
        query = query.where(Document.id == document_id)
    return [(row.source, row.external_id) for row in await session.execute(query)]


async def find_ticket(
    session: AsyncSession, ticket_id: str, *, source: str | None
) -> Document | None:
    """A ticket by its platform id (``external_id`` ``ticket:<id>``), newest source first."""
    query = select(Document).where(
        Document.kind.in_(("ticket", "conversation")),
        Document.external_id.in_((f"ticket:{ticket_id}", ticket_id)),
    )
    if source is not None:
        query = query.where(Document.source == source)
    result = await session.execute(query.order_by(Document.updated_at.desc()).limit(1))
    return result.scalar_one_or_none()


async def find_documents_by_requester(
    session: AsyncSession, forms: Sequence[str]
) -> list[Document]:
    """Documents raised by a requester, given every spelling to match (see
    backend.privacy.identifiers.lookup_forms)."""
    if not forms:
        return []
    result = await session.execute(
        select(Document)
        .where(Document.requester.in_(list(forms)))
        .order_by(Document.source, Document.external_id)
    )
    return list(result.scalars())


async def delete_documents_by_id(session: AsyncSession, ids: Sequence[uuid.UUID]) -> int:
    if not ids:
        return 0
    result = await session.execute(
        delete(Document).where(Document.id.in_(list(ids))).returning(Document.id)
    )
    return len(list(result.scalars()))


async def list_document_keys_after(
    session: AsyncSession, *, after: tuple[str, str] | None, source: str | None, limit: int
) -> list[tuple[str, str, uuid.UUID | None]]:
    """(source, external_id, connector_id) in key order after ``after``: a re-index's pages."""
    query = select(Document.source, Document.external_id, Document.connector_id).order_by(
        Document.source, Document.external_id
    )
    if source is not None:
        query = query.where(Document.source == source)
    if after is not None:
        query = query.where(tuple_(Document.source, Document.external_id) > after)
    result = await session.execute(query.limit(limit))
    return [(row.source, row.external_id, row.connector_id) for row in result]
