"""Pick the vector engine from settings: a Qdrant server when a URL is set, else embedded."""

from __future__ import annotations

from pathlib import Path

from qdrant_client import AsyncQdrantClient

from backend.vectors.edge import EdgeVectorStore
from backend.vectors.server import QdrantServerVectorStore
from backend.vectors.store import DEFAULT_DENSE_WEIGHT, DEFAULT_RRF_K, VectorStore

EDGE_SUBDIR = "qdrant-edge"


def build_vector_store(
    qdrant_url: str | None,
    api_key: str | None,
    data_dir: Path,
    *,
    dense_dimension: int,
    rrf_k: int = DEFAULT_RRF_K,
    dense_weight: float = DEFAULT_DENSE_WEIGHT,
) -> VectorStore:
    """``qdrant_url`` set: the server engine (``":memory:"`` gives qdrant-client's local
    mode). Unset: qdrant-edge shards under ``data_dir/qdrant-edge``."""
    if qdrant_url is None:
        return EdgeVectorStore(
            data_dir / EDGE_SUBDIR,
            dense_dimension=dense_dimension,
            rrf_k=rrf_k,
            dense_weight=dense_weight,
        )
    if qdrant_url == ":memory:":
        client = AsyncQdrantClient(location=":memory:")
    else:
        client = AsyncQdrantClient(url=qdrant_url, api_key=api_key)
    return QdrantServerVectorStore(
        client, dense_dimension=dense_dimension, rrf_k=rrf_k, dense_weight=dense_weight
    )
