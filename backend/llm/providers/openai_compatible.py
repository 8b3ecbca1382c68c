"""Any server speaking OpenAI's ``POST /v1/chat/completions``: OpenAI itself, vLLM, Ollama,
llama.cpp's server, LM Studio, and the many gateways that copy the protocol.

Streaming is server-sent events: ``data: {chat.completion.chunk}`` lines, then
``data: [DONE]``. We ask for usage in the stream (``stream_options.include_usage``: the
server then sends a last chunk with empty ``choices`` and a ``usage`` object); servers that
ignore the option (llama.cpp's Python server, older vLLM) get their usage estimated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from backend.llm.errors import ProviderMalformedResponse, ProviderServerError
from backend.llm.providers.base import (
    DEFAULT_TIMEOUT,
    iter_sse,
    join_url,
    json_object,
    non_negative_int,
    raise_for_status,
    transport_errors,
)
from backend.llm.text import cited_passage_ids, estimate_prompt_tokens, estimate_tokens
from backend.llm.types import Completed, LLMRequest, LLMResult, TextDelta, Usage


class OpenAICompatibleProvider:
    """``base_url`` may end with ``/v1`` (OpenAI SDK style) or not (``http://host:8000``)."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        model: str,
        client: httpx.AsyncClient,
        api_key: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        extra_headers: Mapping[str, str] | None = None,
        max_tokens_field: str = "max_tokens",
        request_stream_usage: bool = True,
    ) -> None:
        self.name = name
        self.model = model
        self._client = client
        self._timeout = timeout
        base = base_url.rstrip("/")
        self._url = join_url(
            base, "/chat/completions" if base.endswith("/v1") else "/v1/chat/completions"
        )
        self._headers = {"content-type": "application/json", **(extra_headers or {})}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        # OpenAI's reasoning models take `max_completion_tokens` and reject `max_tokens`;
        # most compatible servers only know `max_tokens`.
        self._max_tokens_field = max_tokens_field
        self._request_stream_usage = request_stream_usage

    def _body(self, req: LLMRequest, *, stream: bool) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        if req.system:
            messages.append({"role": "system", "content": req.system})
        messages.extend({"role": m.role, "content": m.content} for m in req.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self._max_tokens_field: req.max_tokens,
            "temperature": req.temperature,
            "stream": stream,
        }
        if stream and self._request_stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def _estimated_usage(self, req: LLMRequest, text: str) -> Usage:
        prompt = estimate_prompt_tokens(req.system, [m.content for m in req.messages])
        return Usage(prompt_tokens=prompt, completion_tokens=estimate_tokens(text))

    @staticmethod
    def _usage(payload: Any) -> Usage | None:
        if not isinstance(payload, dict):
            return None
        prompt = non_negative_int(payload.get("prompt_tokens"))
        completion = non_negative_int(payload.get("completion_tokens"))
        if prompt is None or completion is None:
            return None
        return Usage(prompt_tokens=prompt, completion_tokens=completion)

    def _result(
        self,
        req: LLMRequest,
        text: str,
        finish_reason: str | None,
        usage: Usage | None,
        model: Any,
    ) -> LLMResult:
        return LLMResult(
            text=text,
            provider=self.name,
            # OpenAI answers with the dated snapshot it used (gpt-4o-mini-2024-07-18): more
            # precise than the alias we asked for, and still priced by prefix.
            model=model if isinstance(model, str) and model else self.model,
            usage=usage if usage is not None else self._estimated_usage(req, text),
            finish_reason=finish_reason or "stop",
            cited_passage_ids=cited_passage_ids(text, req.passages),
            usage_estimated=usage is None,
        )

    async def complete(self, req: LLMRequest) -> LLMResult:
        with transport_errors(self.name):
            response = await self._client.post(
                self._url,
                json=self._body(req, stream=False),
                headers=self._headers,
                timeout=self._timeout,
            )
            await raise_for_status(self.name, response)
            payload = json_object(self.name, response.content)
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ProviderMalformedResponse("response has no choices", provider=self.name)
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise ProviderMalformedResponse("choice has no message", provider=self.name)
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise ProviderMalformedResponse("message content is not text", provider=self.name)
        finish = choices[0].get("finish_reason")
        return self._result(
            req,
            content or "",
            finish if isinstance(finish, str) else None,
            self._usage(payload.get("usage")),
            payload.get("model"),
        )

    async def stream(self, req: LLMRequest) -> AsyncIterator[TextDelta | Completed]:
        parts: list[str] = []
        finish_reason: str | None = None
        usage: Usage | None = None
        model: Any = None
        done = False
        with transport_errors(self.name):
            async with self._client.stream(
                "POST",
                self._url,
                json=self._body(req, stream=True),
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                await raise_for_status(self.name, response)
                async for event in iter_sse(response):
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    chunk = json_object(self.name, event.data)
                    if "error" in chunk:
                        # vLLM and OpenAI report failures after the 200 as an error chunk.
                        raise ProviderServerError(
                            f"error in stream: {chunk['error']}", provider=self.name
                        )
                    model = chunk.get("model", model)
                    usage = self._usage(chunk.get("usage")) or usage
                    choices = chunk.get("choices")
                    if not isinstance(choices, list):
                        raise ProviderMalformedResponse("chunk has no choices", provider=self.name)
                    for choice in choices:
                        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                            continue
                        delta = choice.get("delta")
                        content = delta.get("content") if isinstance(delta, dict) else None
                        if isinstance(content, str) and content:
                            parts.append(content)
                            yield TextDelta(content)
                        if isinstance(choice.get("finish_reason"), str):
                            finish_reason = choice["finish_reason"]
        if not done and finish_reason is None:
            raise ProviderMalformedResponse(
                "stream ended before [DONE] or a finish_reason", provider=self.name
            )
        yield Completed(self._result(req, "".join(parts), finish_reason, usage, model))
