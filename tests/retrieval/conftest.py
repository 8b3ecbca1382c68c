from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend.db.session import Database
from backend.embeddings import SentenceTransformerEncoder
from tests.knowledge_corpus import Corpus, open_corpus


@pytest.fixture(scope="session", params=["edge", "server-memory"])
async def corpus(
    request: pytest.FixtureRequest,
    database: Database,
    dense_encoder: SentenceTransformerEncoder,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Corpus]:
    """The same corpus on both vector engines: retrieval must behave the same on each."""
    root = tmp_path_factory.mktemp(f"retrieval-{request.param}")
    async with open_corpus(database, dense_encoder, request.param, root) as built:
        yield built
