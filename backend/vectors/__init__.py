"""Qdrant: tenant-namespaced collections, hybrid (dense + sparse, RRF) queries.

This package is the only code that talks to a Qdrant engine.
"""

from backend.vectors.edge import EdgeVectorStore
from backend.vectors.factory import build_vector_store
from backend.vectors.namespace import namespace_for, point_id
from backend.vectors.server import QdrantServerVectorStore
from backend.vectors.store import VectorStore
from backend.vectors.types import (
    ChunkKind,
    ChunkPayload,
    ChunkPoint,
    SearchMode,
    SparseVector,
    VectorFilter,
    VectorHit,
    VectorMatch,
)

__all__ = [
    "ChunkKind",
    "ChunkPayload",
    "ChunkPoint",
    "EdgeVectorStore",
    "QdrantServerVectorStore",
    "SearchMode",
    "SparseVector",
    "VectorFilter",
    "VectorHit",
    "VectorMatch",
    "VectorStore",
    "build_vector_store",
    "namespace_for",
    "point_id",
]
