"""Pick the vector engine from settings: a Qdrant server when a URL is set, else embedded."""

from __future__ import annotations

from pathlib import Path

from qdrant_client import AsyncQdrantClient

from backend.vectors.edge import EdgeVectorStore
from backend.vectors.namespace import VectorLayout
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
    layout: VectorLayout = "shared",
    custom_sharding: bool = False,
    max_open_shards: int | None = None,
    open_shards_memory_bytes: int | None = None,
) -> VectorStore:
    """``qdrant_url`` set: the server engine in ``layout`` (``":memory:"`` gives
    qdrant-client's local mode, which has no shards). Unset: qdrant-edge shards under
    ``data_dir/qdrant-edge``, at most ``max_open_shards`` / ``open_shards_memory_bytes``
    of them open at once."""
    if qdrant_url is None:
        return EdgeVectorStore(
            data_dir / EDGE_SUBDIR,
            dense_dimension=dense_dimension,
            rrf_k=rrf_k,
            dense_weight=dense_weight,
            max_open_shards=max_open_shards,
            open_shards_memory_bytes=open_shards_memory_bytes,
        )
    local = qdrant_url == ":memory:"
    if local:
        client = AsyncQdrantClient(location=":memory:")
    else:
        client = AsyncQdrantClient(url=qdrant_url, api_key=api_key)
    return QdrantServerVectorStore(
        client,
        dense_dimension=dense_dimension,
        rrf_k=rrf_k,
        dense_weight=dense_weight,
        layout=layout,
        # Local mode has no shards.
        custom_sharding=custom_sharding and not local,
    )
