"""A scripted HTTP server on 127.0.0.1 for provider tests, and an injectable fake clock.

The server speaks plain HTTP/1.1 (stdlib ``http.server``, a thread per connection): each
request pops the next scripted reply (JSON with any status and headers, a chunked SSE stream
with optional pauses and an optional abrupt end, a hang, or raw bytes) and is recorded with
its headers and JSON body, so tests can assert what our providers sent on the wire.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Streamed replies: each item is one chunk written (and flushed) separately.
    chunks: Sequence[bytes] = ()
    pause_s: float = 0.0  # between streamed chunks
    hang_s: float = 0.0  # before answering at all
    cut_after: int | None = None  # drop the connection after this many chunks
    # Held until the test sets it (a model that answers only when the test says so).
    gate: threading.Event | None = None


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
        body=json.dumps(payload).encode(),
    )


def sse_reply(
    events: Sequence[tuple[str | None, Any]], *, pause_s: float = 0.0, cut_after: int | None = None
) -> Reply:
    """``events`` are ``(event name or None, payload)``; a str payload is sent as-is."""
    chunks = []
    for name, payload in events:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        prefix = f"event: {name}\n" if name else ""
        chunks.append(f"{prefix}data: {data}\n\n".encode())
    return Reply(
        headers={"content-type": "text/event-stream", "cache-control": "no-cache"},
        chunks=chunks,
        pause_s=pause_s,
        cut_after=cut_after,
    )


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or stop early drop their connections: expected here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        self.aborted = 0  # replies the client stopped reading before the end

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                with server._lock:
                    server.requests.append(
                        RecordedRequest(
                            "POST",
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    reply = server.replies.popleft() if server.replies else None
                if reply is None:
                    reply = json_reply({"error": {"message": "no scripted reply"}}, status=599)
                try:
                    self._answer(reply)
                except ConnectionError:
                    # The client gave up first (timeouts, early stops): that is the test.
                    self.close_connection = True
                    with server._lock:
                        server.aborted += 1

            def _answer(self, reply: Reply) -> None:
                if reply.hang_s:
                    time.sleep(reply.hang_s)
                if reply.gate is not None:
                    reply.gate.wait(timeout=60)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if not reply.chunks:
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for index, chunk in enumerate(reply.chunks):
                    if reply.cut_after is not None and index >= reply.cut_after:
                        self.close_connection = True
                        self.wfile.flush()
                        return  # no terminating chunk: the client sees a broken stream
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                    if reply.pause_s:
                        time.sleep(reply.pause_s)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.replies.clear()
            self.requests.clear()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)


class FakeClock:
    """Time that moves only when slept through or advanced; records every sleep."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._elapsed += seconds

    def advance(self, seconds: float) -> None:
        self._elapsed += seconds
