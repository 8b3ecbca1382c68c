"""The OpenAI-compatible provider against a local server speaking the chat-completions wire
protocol (JSON and SSE), including its failure modes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from backend.llm.errors import (
    ProviderMalformedResponse,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from backend.llm.providers.openai_compatible import OpenAICompatibleProvider
from backend.llm.text import estimate_tokens
from backend.llm.types import ChatMessage, Completed, LLMRequest, Passage, TextDelta
from tests.llm.payloads import (
    OPENAI_MODEL_SNAPSHOT,
    openai_completion,
    openai_error,
    openai_stream,
)
from tests.llm.wire import Reply, ScriptedServer, json_reply, sse_reply

PASSAGES = (
    Passage(id="kb-7", title="Password reset", text="Open Settings, then Security."),
    Passage(id="kb-9", title="Refunds", text="Refunds take five business days."),
)


def _request(**overrides: object) -> LLMRequest:
    fields: dict[str, object] = {
        "task": "answer",
        "company_id": "acme",
        "system": "Answer from the passages only.",
        "messages": [ChatMessage("user", "How do I reset my password?")],
        "passages": PASSAGES,
        "max_tokens": 200,
        "temperature": 0.1,
    }
    fields.update(overrides)
    return LLMRequest(**fields)  # type: ignore[arg-type]


async def _drain(events: AsyncIterator[TextDelta | Completed], received: list[str]) -> None:
    async for event in events:
        if isinstance(event, TextDelta):
            received.append(event.text)


def _provider(
    server: ScriptedServer, client: httpx.AsyncClient, **overrides: object
) -> OpenAICompatibleProvider:
    options: dict[str, object] = {
        "name": "openai",
        "base_url": server.url + "/v1",
        "model": "gpt-4o-mini",
        "api_key": "sk-test-123",
        "client": client,
    }
    options.update(overrides)
    return OpenAICompatibleProvider(**options)  # type: ignore[arg-type]


async def test_complete_sends_chat_completion_and_reads_usage(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(openai_completion("Open Settings, then Security [1].", prompt_tokens=57))
    result = await _provider(server, http_client).complete(_request())

    assert result.text == "Open Settings, then Security [1]."
    assert result.provider == "openai"
    assert result.model == OPENAI_MODEL_SNAPSHOT
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (57, 9)
    assert not result.usage_estimated
    assert result.finish_reason == "stop"
    assert result.cited_passage_ids == ("kb-7",)

    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-123"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Answer from the passages only."},
        {"role": "user", "content": "How do I reset my password?"},
    ]
    assert sent.body["max_tokens"] == 200
    assert sent.body["temperature"] == 0.1
    assert sent.body["stream"] is False


async def test_base_url_without_v1_and_without_key(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(openai_completion("ok"))
    provider = _provider(server, http_client, base_url=server.url, api_key=None)
    await provider.complete(_request())
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert "authorization" not in sent.headers


async def test_stream_yields_deltas_then_usage_from_final_chunk(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    parts = ["Open ", "Settings", ", then ", "Security [2]."]
    server.script(openai_stream(parts, usage=(64, 12)))
    events = [e async for e in _provider(server, http_client).stream(_request())]

    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == parts
    assert isinstance(events[-1], Completed)
    result = events[-1].result
    assert result.text == "".join(parts)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (64, 12)
    assert not result.usage_estimated
    assert result.cited_passage_ids == ("kb-9",)
    (sent,) = server.requests
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}


async def test_stream_without_usage_is_estimated(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    parts = ["Refunds take ", "five business days."]
    server.script(openai_stream(parts, usage=None))
    events = [e async for e in _provider(server, http_client).stream(_request())]
    result = events[-1].result  # type: ignore[union-attr]
    assert result.usage_estimated
    assert result.usage.completion_tokens == estimate_tokens("".join(parts))
    assert result.usage.prompt_tokens > 0


async def test_rate_limit_carries_retry_after(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(openai_error(429, "Rate limit reached", headers={"retry-after": "7"}))
    with pytest.raises(ProviderRateLimited) as caught:
        await _provider(server, http_client).complete(_request())
    assert caught.value.retry_after == 7.0
    assert caught.value.retryable
    assert "Rate limit reached" in str(caught.value.detail)


async def test_retry_after_ms_takes_precedence(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(
        openai_error(429, "slow down", headers={"retry-after-ms": "1500", "retry-after": "2"})
    )
    with pytest.raises(ProviderRateLimited) as caught:
        await _provider(server, http_client).complete(_request())
    assert caught.value.retry_after == 1.5


async def test_server_error_and_rejected_request(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(
        openai_error(500, "The server had an error"), openai_error(400, "context too long")
    )
    provider = _provider(server, http_client)
    with pytest.raises(ProviderServerError) as server_error:
        await provider.complete(_request())
    assert server_error.value.status == 500
    with pytest.raises(ProviderRequestRejected) as rejected:
        await provider.complete(_request())
    assert not rejected.value.retryable
    assert not rejected.value.counts_for_breaker


async def test_stream_rate_limited_before_first_chunk(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(openai_error(429, "Rate limit reached", headers={"retry-after": "3"}))
    with pytest.raises(ProviderRateLimited) as caught:
        _ = [e async for e in _provider(server, http_client).stream(_request())]
    assert caught.value.retry_after == 3.0


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=200, headers={"content-type": "application/json"}, body=b'{"choices": [oops'),
        json_reply({"object": "chat.completion", "choices": []}),
        json_reply({"choices": [{"index": 0, "message": {"content": 42}}]}),
    ],
    ids=["invalid-json", "no-choices", "content-not-text"],
)
async def test_malformed_completion(
    server: ScriptedServer, http_client: httpx.AsyncClient, reply: Reply
) -> None:
    server.script(reply)
    with pytest.raises(ProviderMalformedResponse):
        await _provider(server, http_client).complete(_request())


async def test_malformed_stream_chunk(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(sse_reply([(None, '{"choices": [{"delta": {"content": "Hi"'), (None, "[DONE]")]))
    with pytest.raises(ProviderMalformedResponse):
        _ = [e async for e in _provider(server, http_client).stream(_request())]


async def test_stream_cut_before_done_is_malformed(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    # The server closes the connection cleanly mid-answer: no finish_reason, no [DONE].
    server.script(openai_stream(["Open ", "Settings"], finish=False))
    received: list[str] = []
    with pytest.raises(ProviderMalformedResponse):
        await _drain(_provider(server, http_client).stream(_request()), received)
    assert received == ["Open ", "Settings"]


async def test_error_chunk_inside_stream(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(
        sse_reply([(None, {"error": {"message": "model crashed", "type": "server_error"}})])
    )
    with pytest.raises(ProviderServerError):
        _ = [e async for e in _provider(server, http_client).stream(_request())]


async def test_read_timeout(server: ScriptedServer, http_client: httpx.AsyncClient) -> None:
    server.script(Reply(hang_s=1.0, body=b"{}"))
    provider = _provider(server, http_client, timeout=httpx.Timeout(0.2))
    with pytest.raises(ProviderTimeout):
        await provider.complete(_request())


async def test_stalled_stream_times_out(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(openai_stream(["a", "b", "c"], pause_s=0.6))
    provider = _provider(server, http_client, timeout=httpx.Timeout(0.2))
    with pytest.raises(ProviderTimeout):
        _ = [e async for e in provider.stream(_request())]


async def test_connection_refused(http_client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAICompatibleProvider(
        name="local", base_url=f"http://127.0.0.1:{port}", model="m", client=http_client
    )
    with pytest.raises(ProviderUnavailable):
        await provider.complete(_request())


async def test_max_completion_tokens_field(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(openai_completion("ok"))
    provider = _provider(server, http_client, max_tokens_field="max_completion_tokens")
    await provider.complete(_request())
    (sent,) = server.requests
    assert sent.body["max_completion_tokens"] == 200
    assert "max_tokens" not in sent.body
