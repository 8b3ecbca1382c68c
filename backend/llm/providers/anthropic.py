"""Anthropic's Messages API (``POST /v1/messages``).

Protocol points that differ from OpenAI's: the key goes in ``x-api-key`` with a pinned
``anthropic-version``; the system prompt is a top-level ``system`` field, not a message;
``max_tokens`` is required; overload is HTTP 529. Streaming sends named SSE events:
``message_start`` (input usage), ``content_block_start``, ``content_block_delta``
(``text_delta``), ``content_block_stop``, ``message_delta`` (stop reason and cumulative
``output_tokens``), ``message_stop``, plus ``ping`` keep-alives and ``error`` events that can
arrive after the HTTP 200 (e.g. ``overloaded_error`` mid-stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from backend.llm.errors import (
    ProviderError,
    ProviderMalformedResponse,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderServerError,
)
from backend.llm.providers.base import (
    DEFAULT_TIMEOUT,
    iter_sse,
    join_url,
    json_object,
    non_negative_int,
    raise_for_status,
    transport_errors,
)
from backend.llm.text import cited_passage_ids
from backend.llm.types import Completed, LLMRequest, LLMResult, TextDelta, Usage

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"


def _input_tokens(usage: dict[str, Any]) -> int:
    # With prompt caching the input is split over three counters; together they are the prompt.
    return sum(
        non_negative_int(usage.get(key)) or 0
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


class AnthropicProvider:
    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        client: httpx.AsyncClient,
        name: str = "anthropic",
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.name = name
        self.model = model
        self._client = client
        self._timeout = timeout
        self._url = join_url(base_url, "/v1/messages")
        self._headers = {
            "x-api-key": api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }

    def _body(self, req: LLMRequest, *, stream: bool) -> dict[str, Any]:
        # There is no "system" role in the Messages API: system text is hoisted to the
        # top-level field, and consecutive turns of one role are merged into one turn.
        system_parts = [req.system] if req.system else []
        turns: list[dict[str, str]] = []
        for message in req.messages:
            if message.role == "system":
                system_parts.append(message.content)
            elif turns and turns[-1]["role"] == message.role:
                turns[-1]["content"] += "\n\n" + message.content
            else:
                turns.append({"role": message.role, "content": message.content})
        if not turns or turns[0]["role"] != "user":
            raise ProviderRequestRejected(
                "the Messages API needs a conversation that starts with a user turn",
                provider=self.name,
            )
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": req.max_tokens,
            "messages": turns,
            "temperature": req.temperature,
            "stream": stream,
        }
        if system_parts:
            body["system"] = "\n\n".join(system_parts)
        return body

    def _result(
        self, req: LLMRequest, text: str, stop_reason: str | None, usage: Usage, model: Any
    ) -> LLMResult:
        return LLMResult(
            text=text,
            provider=self.name,
            model=model if isinstance(model, str) and model else self.model,
            usage=usage,
            finish_reason=stop_reason or "end_turn",
            cited_passage_ids=cited_passage_ids(text, req.passages),
        )

    async def complete(self, req: LLMRequest) -> LLMResult:
        body = self._body(req, stream=False)
        with transport_errors(self.name):
            response = await self._client.post(
                self._url, json=body, headers=self._headers, timeout=self._timeout
            )
            await raise_for_status(self.name, response)
            payload = json_object(self.name, response.content)
        content = payload.get("content")
        usage = payload.get("usage")
        if payload.get("type") != "message" or not isinstance(content, list):
            raise ProviderMalformedResponse("response is not a message", provider=self.name)
        if not isinstance(usage, dict) or non_negative_int(usage.get("output_tokens")) is None:
            raise ProviderMalformedResponse("message has no usage", provider=self.name)
        text = "".join(
            block["text"]
            for block in content
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
        stop_reason = payload.get("stop_reason")
        return self._result(
            req,
            text,
            stop_reason if isinstance(stop_reason, str) else None,
            Usage(_input_tokens(usage), usage["output_tokens"]),
            payload.get("model"),
        )

    def _stream_error(self, payload: dict[str, Any]) -> ProviderError:
        error = payload.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        detail = f"error event in stream: {kind}: {message}"
        if kind == "rate_limit_error":
            return ProviderRateLimited(detail, provider=self.name, status=429)
        if kind == "overloaded_error":
            return ProviderServerError(detail, provider=self.name, status=529)
        if kind in ("invalid_request_error", "request_too_large"):
            return ProviderRequestRejected(detail, provider=self.name, status=400)
        return ProviderServerError(detail, provider=self.name, status=500)

    async def stream(self, req: LLMRequest) -> AsyncIterator[TextDelta | Completed]:
        body = self._body(req, stream=True)
        parts: list[str] = []
        prompt_tokens = 0
        output_tokens = 0
        stop_reason: str | None = None
        model: Any = None
        stopped = False
        with transport_errors(self.name):
            async with self._client.stream(
                "POST", self._url, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                await raise_for_status(self.name, response)
                async for event in iter_sse(response):
                    payload = json_object(self.name, event.data)
                    kind = payload.get("type", event.event)
                    if kind == "message_start":
                        message = payload.get("message")
                        if not isinstance(message, dict):
                            raise ProviderMalformedResponse(
                                "message_start without message", provider=self.name
                            )
                        model = message.get("model")
                        usage = message.get("usage")
                        if isinstance(usage, dict):
                            prompt_tokens = _input_tokens(usage)
                            output_tokens = non_negative_int(usage.get("output_tokens")) or 0
                    elif kind == "content_block_delta":
                        delta = payload.get("delta")
                        # Other delta kinds (input_json_delta, thinking_delta) carry no reply text.
                        if isinstance(delta, dict) and delta.get("type") == "text_delta":
                            text = delta.get("text")
                            if isinstance(text, str) and text:
                                parts.append(text)
                                yield TextDelta(text)
                    elif kind == "message_delta":
                        delta = payload.get("delta")
                        if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                            stop_reason = delta["stop_reason"]
                        usage = payload.get("usage")
                        if isinstance(usage, dict):
                            # message_delta usage is cumulative, not an increment.
                            output_tokens = non_negative_int(usage.get("output_tokens")) or (
                                output_tokens
                            )
                            if non_negative_int(usage.get("input_tokens")):
                                prompt_tokens = _input_tokens(usage)
                    elif kind == "message_stop":
                        stopped = True
                        break
                    elif kind == "error":
                        raise self._stream_error(payload)
                    # ping, content_block_start/stop and future event types need no action.
        if not stopped:
            raise ProviderMalformedResponse("stream ended before message_stop", provider=self.name)
        yield Completed(
            self._result(
                req, "".join(parts), stop_reason, Usage(prompt_tokens, output_tokens), model
            )
        )
