from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend.db.session import Database
from backend.embeddings import SentenceTransformerEncoder
from tests.knowledge_corpus import Corpus, open_corpus


@pytest.fixture(scope="session")
async def corpus(
    database: Database,
    dense_encoder: SentenceTransformerEncoder,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Corpus]:
    async with open_corpus(
        database, dense_encoder, "edge", tmp_path_factory.mktemp("assistant")
    ) as built:
        yield built
