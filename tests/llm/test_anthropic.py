"""The Anthropic provider against a local server speaking the Messages API wire protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from backend.llm.errors import (
    ProviderMalformedResponse,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderServerError,
)
from backend.llm.providers.anthropic import ANTHROPIC_VERSION, AnthropicProvider
from backend.llm.types import ChatMessage, Completed, LLMRequest, Passage, TextDelta
from tests.llm.payloads import (
    ANTHROPIC_MODEL,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
)
from tests.llm.wire import ScriptedServer, sse_reply

PASSAGES = (Passage(id="kb-1", title="Shipping", text="Orders ship within two days."),)


def _request() -> LLMRequest:
    return LLMRequest(
        task="draft_reply",
        company_id="acme",
        system="You write helpdesk replies.",
        messages=[
            ChatMessage("system", "Reply in English."),
            ChatMessage("user", "Where is my order?"),
            ChatMessage("user", "It has been a week."),
            ChatMessage("assistant", "Let me check."),
            ChatMessage("user", "Thanks."),
        ],
        passages=PASSAGES,
        max_tokens=300,
    )


async def _drain(events: AsyncIterator[TextDelta | Completed], received: list[str]) -> None:
    async for event in events:
        if isinstance(event, TextDelta):
            received.append(event.text)


def _provider(server: ScriptedServer, client: httpx.AsyncClient) -> AnthropicProvider:
    return AnthropicProvider(
        api_key="sk-ant-test", model=ANTHROPIC_MODEL, base_url=server.url, client=client
    )


async def test_complete_uses_messages_api_shape(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(anthropic_message("Orders ship within two days [1].", input_tokens=80))
    result = await _provider(server, http_client).complete(_request())

    assert result.text == "Orders ship within two days [1]."
    assert (result.provider, result.model) == ("anthropic", ANTHROPIC_MODEL)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (80, 11)
    assert result.finish_reason == "end_turn"
    assert result.cited_passage_ids == ("kb-1",)

    (sent,) = server.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"
    assert "authorization" not in sent.headers
    # System text is top-level; same-role turns are merged so roles alternate.
    assert sent.body["system"] == "You write helpdesk replies.\n\nReply in English."
    assert sent.body["messages"] == [
        {"role": "user", "content": "Where is my order?\n\nIt has been a week."},
        {"role": "assistant", "content": "Let me check."},
        {"role": "user", "content": "Thanks."},
    ]
    assert sent.body["max_tokens"] == 300
    assert sent.body["stream"] is False


async def test_stream_events(server: ScriptedServer, http_client: httpx.AsyncClient) -> None:
    parts = ["Orders ship ", "within two ", "days [1]."]
    server.script(anthropic_stream(parts, input_tokens=77, output_tokens=15))
    events = [e async for e in _provider(server, http_client).stream(_request())]

    assert [e.text for e in events if isinstance(e, TextDelta)] == parts
    assert isinstance(events[-1], Completed)
    result = events[-1].result
    assert result.text == "".join(parts)
    # Input tokens come from message_start, output tokens from the cumulative message_delta.
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (77, 15)
    assert result.finish_reason == "end_turn"
    assert server.requests[0].body["stream"] is True


async def test_rate_limited_with_retry_after(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(
        anthropic_error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            {"retry-after": "12"},
        )
    )
    with pytest.raises(ProviderRateLimited) as caught:
        await _provider(server, http_client).complete(_request())
    assert caught.value.retry_after == 12.0
    assert "rate_limit_error" in str(caught.value.detail)


async def test_overloaded_529(server: ScriptedServer, http_client: httpx.AsyncClient) -> None:
    server.script(anthropic_error(529, "overloaded_error", "Overloaded"))
    with pytest.raises(ProviderServerError) as caught:
        _ = [e async for e in _provider(server, http_client).stream(_request())]
    assert caught.value.status == 529
    assert caught.value.retryable


async def test_error_event_after_text(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(anthropic_stream(["Orders ", "ship ", "soon."], error_after=2))
    received: list[str] = []
    with pytest.raises(ProviderServerError) as caught:
        await _drain(_provider(server, http_client).stream(_request()), received)
    assert received == ["Orders ", "ship "]
    assert "overloaded_error" in str(caught.value.detail)


async def test_authentication_error_counts_against_health(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(anthropic_error(401, "authentication_error", "invalid x-api-key"))
    with pytest.raises(ProviderRequestRejected) as caught:
        await _provider(server, http_client).complete(_request())
    assert caught.value.counts_for_breaker
    assert not caught.value.retryable


async def test_stream_without_message_stop_is_malformed(
    server: ScriptedServer, http_client: httpx.AsyncClient
) -> None:
    server.script(
        sse_reply(
            [
                (
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "model": ANTHROPIC_MODEL,
                            "usage": {"input_tokens": 3, "output_tokens": 1},
                        },
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": "Hi"},
                    },
                ),
            ]
        )
    )
    with pytest.raises(ProviderMalformedResponse):
        _ = [e async for e in _provider(server, http_client).stream(_request())]


async def test_conversation_must_start_with_user(http_client: httpx.AsyncClient) -> None:
    provider = AnthropicProvider(
        api_key="k", model="m", base_url="http://127.0.0.1:9", client=http_client
    )
    request = LLMRequest(
        task="answer", company_id="acme", messages=[ChatMessage("assistant", "Hi")]
    )
    with pytest.raises(ProviderRequestRejected):
        await provider.complete(request)
