"""Payloads shaped like the providers' documented responses (OpenAI chat completions and
Anthropic Messages), for the scripted server to replay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.llm.wire import Reply, json_reply, sse_reply

OPENAI_MODEL_SNAPSHOT = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-haiku-4-5"


def openai_completion(
    text: str, *, prompt_tokens: int = 31, completion_tokens: int = 9, with_usage: bool = True
) -> Reply:
    payload: dict[str, Any] = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": OPENAI_MODEL_SNAPSHOT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "system_fingerprint": "fp_06737a9306",
    }
    if with_usage:
        payload["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return json_reply(payload)


def _chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": OPENAI_MODEL_SNAPSHOT,
        "system_fingerprint": "fp_06737a9306",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def openai_stream(
    parts: Sequence[str],
    *,
    usage: tuple[int, int] | None = (31, 9),
    pause_s: float = 0.0,
    cut_after: int | None = None,
    finish: bool = True,
) -> Reply:
    events: list[tuple[str | None, Any]] = [
        (None, _chunk({"role": "assistant", "content": ""}, None))
    ]
    events += [(None, _chunk({"content": part}, None)) for part in parts]
    if finish:
        events.append((None, _chunk({}, "stop")))
        if usage is not None:
            # With stream_options.include_usage OpenAI sends one more chunk: no choices, usage.
            events.append(
                (
                    None,
                    {
                        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
                        "object": "chat.completion.chunk",
                        "created": 1741569952,
                        "model": OPENAI_MODEL_SNAPSHOT,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": usage[0],
                            "completion_tokens": usage[1],
                            "total_tokens": sum(usage),
                        },
                    },
                )
            )
        events.append((None, "[DONE]"))
    return sse_reply(events, pause_s=pause_s, cut_after=cut_after)


def openai_error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    kind = {429: "rate_limit_exceeded", 500: "server_error"}.get(status, "invalid_request_error")
    return json_reply(
        {"error": {"message": message, "type": kind, "param": None, "code": kind}},
        status=status,
        headers=headers,
    )


def anthropic_message(text: str, *, input_tokens: int = 42, output_tokens: int = 11) -> Reply:
    return json_reply(
        {
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC_MODEL,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output_tokens,
            },
        }
    )


def anthropic_stream(
    parts: Sequence[str],
    *,
    input_tokens: int = 42,
    output_tokens: int = 11,
    error_after: int | None = None,
) -> Reply:
    events: list[tuple[str | None, Any]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01LiJ7SqBWnEW3zMp4v1nE8Q",
                    "type": "message",
                    "role": "assistant",
                    "model": ANTHROPIC_MODEL,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for index, part in enumerate(parts):
        if error_after is not None and index == error_after:
            events.append(
                (
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    },
                )
            )
            return sse_reply(events)
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": part},
                },
            )
        )
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return sse_reply(events)


def anthropic_error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    return json_reply(
        {"type": "error", "error": {"type": kind, "message": message}},
        status=status,
        headers=headers,
    )
