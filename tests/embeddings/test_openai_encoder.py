"""The OpenAI-compatible encoder against a replay of the documented /v1/embeddings API."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from backend.embeddings.dense import (
    EmbeddingError,
    OpenAICompatibleEncoder,
    SentenceTransformerEncoder,
    build_dense_encoder,
)
from backend.errors import BadRequest

BASE_URL = "http://127.0.0.1:8089/v1"
DIM = 4


def fake_embedding(text: str) -> list[float]:
    """Deterministic, deliberately unnormalized: the encoder must normalize."""
    seed = sum(map(ord, text))
    return [float((seed * (i + 3)) % 11 + 1) for i in range(DIM)]


def embeddings_response(texts: list[str], model: str, *, reverse: bool = False) -> httpx.Response:
    # Shape of https://platform.openai.com/docs/api-reference/embeddings/create
    data = [
        {"object": "embedding", "index": i, "embedding": fake_embedding(text)}
        for i, text in enumerate(texts)
    ]
    if reverse:
        data.reverse()
    tokens = sum(len(t.split()) for t in texts)
    return httpx.Response(
        200,
        json={
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.requests: list[httpx.Request] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def encoder_for(
    handler: Callable[[httpx.Request], httpx.Response],
    recorder: Recorder,
    **kwargs: object,
) -> OpenAICompatibleEncoder:
    def recording(request: httpx.Request) -> httpx.Response:
        recorder.requests.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(recording))
    options: dict[str, object] = {
        "client": client,
        "base_url": BASE_URL,
        "model": "text-embedding-3-small",
        "api_key": "sk-test",
        "sleep": recorder.sleep,
        "clock": lambda: datetime(2025, 1, 1, tzinfo=UTC).timestamp(),
    }
    options.update(kwargs)
    return OpenAICompatibleEncoder(**options)  # type: ignore[arg-type]


def ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return embeddings_response(body["input"], body["model"], reverse=True)


async def test_batches_requests_and_keeps_input_order() -> None:
    recorder = Recorder()
    encoder = encoder_for(ok, recorder, batch_size=2)
    texts = ["one", "two", "three", "four", "five"]
    vectors = await encoder.embed_documents(texts)

    assert [json.loads(r.content)["input"] for r in recorder.requests] == [
        ["one", "two"],
        ["three", "four"],
        ["five"],
    ]
    first = recorder.requests[0]
    assert str(first.url) == f"{BASE_URL}/embeddings"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert json.loads(first.content)["model"] == "text-embedding-3-small"
    for text, vector in zip(texts, vectors, strict=True):
        raw = fake_embedding(text)
        norm = math.sqrt(sum(x * x for x in raw))
        assert vector == pytest.approx([x / norm for x in raw])
    assert encoder.dimension == DIM


async def test_dimension_is_discovered_from_the_first_response() -> None:
    recorder = Recorder()
    encoder = encoder_for(ok, recorder)
    with pytest.raises(EmbeddingError) as unknown:
        _ = encoder.dimension
    assert unknown.value.code == "embedding_dimension_unknown"
    assert await encoder.discover_dimension() == DIM
    assert len(recorder.requests) == 1
    assert await encoder.discover_dimension() == DIM
    assert len(recorder.requests) == 1


async def test_configured_dimension_is_enforced() -> None:
    encoder = encoder_for(ok, Recorder(), dimension=1536)
    with pytest.raises(EmbeddingError, match="differs from the expected 1536"):
        await encoder.embed_query("hello")


async def test_429_waits_as_long_as_retry_after_says() -> None:
    recorder = Recorder()
    replies = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"message": "slow"}}),
            httpx.Response(
                429,
                headers={
                    "Retry-After": format_datetime(
                        datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=3), usegmt=True
                    )
                },
            ),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return next(replies, None) or ok(request)

    encoder = encoder_for(handler, recorder)
    vector = await encoder.embed_query("hello")
    assert len(vector) == DIM
    assert recorder.sleeps == [7.0, 3.0]
    assert len(recorder.requests) == 3


async def test_server_errors_and_timeouts_are_retried_with_backoff() -> None:
    recorder = Recorder()
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(503, text="upstream overloaded")
        if calls["n"] == 2:
            raise httpx.ReadTimeout("timed out", request=request)
        return ok(request)

    encoder = encoder_for(handler, recorder, backoff_base=0.5)
    await encoder.embed_query("hello")
    assert calls["n"] == 3
    assert len(recorder.sleeps) == 2
    assert 0.0 <= recorder.sleeps[0] <= 0.5
    assert 0.0 <= recorder.sleeps[1] <= 1.0


async def test_gives_up_after_max_attempts() -> None:
    recorder = Recorder()
    encoder = encoder_for(lambda _r: httpx.Response(500), recorder, max_attempts=3)
    with pytest.raises(EmbeddingError) as failed:
        await encoder.embed_query("hello")
    assert failed.value.code == "embedding_unavailable"
    assert failed.value.status_code == 503
    assert len(recorder.requests) == 3
    assert len(recorder.sleeps) == 2


async def test_client_errors_are_not_retried() -> None:
    recorder = Recorder()

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"error": {"message": "input too long", "type": "invalid_request_error"}}
        )

    encoder = encoder_for(handler, recorder)
    with pytest.raises(EmbeddingError, match="input too long"):
        await encoder.embed_query("hello")
    assert len(recorder.requests) == 1
    assert recorder.sleeps == []


async def test_malformed_responses_are_errors() -> None:
    encoder = encoder_for(lambda _r: httpx.Response(200, json={"data": []}), Recorder())
    with pytest.raises(EmbeddingError, match="asked for 1 embeddings, got 0"):
        await encoder.embed_query("hello")
    broken = encoder_for(lambda _r: httpx.Response(200, text="<html>"), Recorder())
    with pytest.raises(EmbeddingError, match="unexpected embeddings response"):
        await broken.embed_query("hello")


async def test_factory() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(ok)) as client:
        remote = build_dense_encoder(
            "openai", base_url=BASE_URL + "/embeddings", model="m", http_client=client
        )
        assert isinstance(remote, OpenAICompatibleEncoder)
        assert len(await remote.embed_query("x")) == DIM
    local = build_dense_encoder("local", torch_threads=1)
    assert isinstance(local, SentenceTransformerEncoder)
    with pytest.raises(BadRequest):
        build_dense_encoder("openai", base_url=None)
    with pytest.raises(BadRequest):
        build_dense_encoder("word2vec")
