"""Points with easy-to-reason-about vectors, shared by the vector-store tests."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from backend.embeddings.sparse import SparseEncoder
from backend.vectors import ChunkPayload, ChunkPoint, point_id
from backend.vectors.types import ChunkKind

DIM = 8
SPARSE = SparseEncoder()
JAN = datetime(2024, 1, 15, tzinfo=UTC)


def axis(i: int, wobble: float = 0.0) -> list[float]:
    """A unit vector near axis ``i``: easy to reason about nearest neighbours."""
    vector = [0.0] * DIM
    vector[i % DIM] = 1.0
    vector[(i + 1) % DIM] = wobble
    norm = math.sqrt(1.0 + wobble * wobble)
    return [x / norm for x in vector]


def chunk(
    company_id: str,
    document_id: str,
    text: str,
    *,
    dense: list[float],
    chunk_index: int = 0,
    kind: ChunkKind = "ticket",
    source: str = "freshdesk",
    language: str | None = "en",
    status: str | None = "resolved",
    internal: bool = False,
    tags: list[str] | None = None,
    updated_at: datetime = JAN,
) -> ChunkPoint:
    return ChunkPoint(
        id=point_id(company_id, source, document_id, chunk_index),
        dense=dense,
        sparse=SPARSE.encode_document(text),
        payload=ChunkPayload(
            company_id=company_id,
            kind=kind,
            source=source,
            document_id=document_id,
            external_id=f"ext-{document_id}",
            chunk_index=chunk_index,
            title=f"Title of {document_id}",
            url=f"https://{company_id}.example.com/{document_id}",
            language=language,
            status=status,
            internal=internal,
            tags=tags or [],
            created_at=updated_at - timedelta(days=1),
            updated_at=updated_at,
            text=text,
        ),
    )
