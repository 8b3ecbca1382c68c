from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend.db.session import Database
from backend.embeddings import SentenceTransformerEncoder, SparseEncoder
from backend.retrieval import HybridRetriever
from tests.knowledge_corpus import Corpus, build_corpus, build_store


@pytest.fixture(scope="session")
def dense_encoder() -> SentenceTransformerEncoder:
    # The model itself is cached per process by backend.embeddings.dense: one load per run.
    return SentenceTransformerEncoder(batch_size=32, torch_threads=1)


@pytest.fixture(scope="session")
async def corpus(
    database: Database,
    dense_encoder: SentenceTransformerEncoder,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Corpus]:
    root = tmp_path_factory.mktemp("assistant")
    store = build_store("edge", root, dense_encoder.dimension)
    built = await build_corpus(database, dense_encoder, SparseEncoder(), store, root / "blobs")
    yield built
    await store.close()


@pytest.fixture
def retriever(corpus: Corpus, dense_encoder: SentenceTransformerEncoder) -> HybridRetriever:
    return HybridRetriever(corpus.store, dense_encoder, SparseEncoder())
