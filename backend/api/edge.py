"""What every request must satisfy before any handler, parser or credential check sees it.

:class:`RequestEdgeMiddleware` (pure ASGI, so streamed responses stay unbuffered):

- **Body size.** A declared ``Content-Length`` above the limit is answered 413 at once, the
  body unread; a body without one (chunked) is counted while it streams in and refused as
  soon as it passes the limit. Nothing downstream ever holds more than the limit in memory,
  and an oversized body is refused before authentication parses anything.
- **NUL characters.** PostgreSQL cannot store U+0000 in ``text`` or ``jsonb``; a NUL in a
  question, a company name, a setting or a query parameter used to reach the database and
  fail there as a 500 (or, batched, sink other rows with it). It is refused here, as a 400,
  wherever it appears: the path, the query string, a header, or the body (a raw ``0x00``
  byte or a JSON ``\\u0000`` escape).

Both answers have the service's error shape ``{"error": code, "detail": ...}``.
"""

from __future__ import annotations

import re
from typing import Final

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON ``\u0000`` escape, not preceded by an escaped backslash (``\\u0000`` is the text
# "\u0000", which is harmless). The look-behind counts backslashes pairwise.
_JSON_NUL: Final = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# Bytes of one chunk kept to find an escape split across two chunks.
_CARRY: Final = 16


class EdgeRejection(HTTPException):
    """A request refused at the edge; ``code`` is the error code of the JSON body."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.code = code


def body_too_large(limit: int) -> EdgeRejection:
    return EdgeRejection(
        413, "payload_too_large", f"the request body exceeds the limit of {limit} bytes"
    )


def nul_rejected(where: str) -> EdgeRejection:
    return EdgeRejection(
        400, "nul_character", f"the {where} contains a NUL character (U+0000), which is refused"
    )


def _has_nul_in_query(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw


def _has_nul_in_body(window: bytes) -> bool:
    return b"\x00" in window or (b"\\u0000" in window and _JSON_NUL.search(window) is not None)


class RequestEdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rejection = self._check_head(scope)
        if rejection is not None:
            await _answer(send, rejection)
            return

        limit = self.max_body_bytes
        received = 0
        tail = b""

        async def bounded_receive() -> Message:
            nonlocal received, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk: bytes = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise body_too_large(limit)
                window = tail + chunk
                if _has_nul_in_body(window):
                    raise nul_rejected("request body")
                tail = window[-_CARRY:]
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except EdgeRejection as exc:
            # Raised while something read the body outside the routes' exception handling
            # (routes turn it into the same JSON through the HTTPException handler).
            if started:
                raise
            await _answer(send, exc)

    def _check_head(self, scope: Scope) -> EdgeRejection | None:
        if "\x00" in scope.get("path", ""):
            return nul_rejected("path")
        if _has_nul_in_query(scope.get("query_string", b"")):
            return nul_rejected("query string")
        for name, value in scope.get("headers", ()):
            if b"\x00" in value:
                return nul_rejected("header " + name.decode("latin-1"))
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return EdgeRejection(400, "bad_request", "malformed Content-Length")
                if declared > self.max_body_bytes:
                    return body_too_large(self.max_body_bytes)
        return None


async def _answer(send: Send, rejection: EdgeRejection) -> None:
    body = orjson.dumps({"error": rejection.code, "detail": rejection.detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if rejection.status_code == 413:
        # The client may still be sending; tell it we will not read the rest.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": rejection.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
