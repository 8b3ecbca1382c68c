"""nginx.conf on its own: it passes `nginx -t`, and a running nginx forwards what the API
needs, answers the widget files itself, hides /metrics and enforces the body limit.

The upstream here is a small recording HTTP server on loopback: these tests are about what
nginx sends upstream and answers by itself, which the API cannot show. What the real API
sees through nginx is in test_nginx_with_api.py.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import (
    NGINX_CONF,
    RunningNginx,
    nginx_binary,
    nginx_prefix,
    running_nginx,
    write_nginx_conf,
)

SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy")


class _RecordingHandler(BaseHTTPRequestHandler):
    """Answers every request with a JSON echo of what it received, and remembers it."""

    received: list[dict[str, object]]

    def do_GET(self) -> None:
        record: dict[str, object] = {
            "path": self.path,
            "version": self.request_version,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        self.received.append(record)
        body = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recording_upstream() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []
    handler = type("Handler", (_RecordingHandler,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def nginx(recording_upstream: tuple[str, list[dict[str, object]]]) -> Iterator[RunningNginx]:
    with running_nginx(recording_upstream[0]) as running:
        yield running


def test_nginx_conf_passes_nginx_t() -> None:
    with nginx_prefix() as prefix:
        conf = write_nginx_conf(prefix, upstream="127.0.0.1:9", port=8080)
        result = subprocess.run(
            [nginx_binary(), "-t", "-c", str(conf), "-p", f"{prefix.root}/", "-e", "stderr"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    # Warnings mean something is off even when the syntax holds (duplicate MIME types, a
    # `user` directive without root, ...).
    assert "[warn]" not in result.stderr, result.stderr


def test_proxied_request_carries_forwarding_headers(
    nginx: RunningNginx, recording_upstream: tuple[str, list[dict[str, object]]]
) -> None:
    _, received = recording_upstream
    response = httpx.get(
        f"{nginx.base_url}/v1/company",
        headers={"X-Request-ID": "req-abc.123", "X-Forwarded-For": "203.0.113.7"},
    )
    assert response.status_code == 200
    [seen] = received
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert seen["path"] == "/v1/company"
    # HTTP/1.1 upstream with no "Connection: close", so keep-alive and chunked streams work.
    assert seen["version"] == "HTTP/1.1"
    assert headers.get("connection", "") == ""
    assert headers["x-request-id"] == "req-abc.123"
    # The client's chain is kept and the TCP peer appended.
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["host"] == "127.0.0.1"
    for name in SECURITY_HEADERS:
        assert name in response.headers


def test_request_id_is_minted_when_missing_or_malformed(
    nginx: RunningNginx, recording_upstream: tuple[str, list[dict[str, object]]]
) -> None:
    _, received = recording_upstream
    httpx.get(f"{nginx.base_url}/v1/company")
    httpx.get(f"{nginx.base_url}/v1/company", headers={"X-Request-ID": "two words;<script>"})
    minted = [record["headers"]["x-request-id"] for record in received]  # type: ignore[index]
    assert len(minted) == 2
    for request_id in minted:
        assert re.fullmatch(r"[0-9a-f]{32}", str(request_id)), request_id
    assert minted[0] != minted[1]


def test_metrics_are_not_reachable_through_nginx(
    nginx: RunningNginx, recording_upstream: tuple[str, list[dict[str, object]]]
) -> None:
    _, received = recording_upstream
    for path in ("/metrics", "/metrics/", "/metrics?name[]=x"):
        response = httpx.get(f"{nginx.base_url}{path}")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert received == []


def test_widget_files_are_served_statically_with_cache_headers(
    nginx: RunningNginx, recording_upstream: tuple[str, list[dict[str, object]]]
) -> None:
    _, received = recording_upstream
    widget = nginx.prefix.widget_root
    (widget / "widget.js").write_text("window.HelpdeskWidget = {};\n")
    (widget / "widget.3f9a1c2b7d.js").write_text("/* hashed bundle */\n")
    for path in widget.iterdir():
        path.chmod(0o644)

    loader = httpx.get(f"{nginx.base_url}/widget/widget.js")
    assert loader.status_code == 200
    assert loader.text == "window.HelpdeskWidget = {};\n"
    assert loader.headers["content-type"].startswith("application/javascript")
    assert "must-revalidate" in loader.headers["cache-control"]
    assert loader.headers["access-control-allow-origin"] == "*"
    assert re.fullmatch(r"[0-9a-f]{32}", loader.headers["x-request-id"])

    hashed = httpx.get(f"{nginx.base_url}/widget/widget.3f9a1c2b7d.js")
    assert hashed.status_code == 200
    assert "immutable" in hashed.headers["cache-control"]

    assert httpx.get(f"{nginx.base_url}/widget/missing.js").status_code == 404
    assert received == []  # never proxied


def test_oversized_body_is_refused_with_our_error_shape(nginx: RunningNginx) -> None:
    limit = _client_max_body_size_bytes(NGINX_CONF)
    host, port = nginx.base_url.removeprefix("http://").split(":")
    # Raw socket: nginx answers 413 from the headers alone, before any body is sent, which an
    # HTTP client that insists on streaming the body first would see as a reset.
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST /v1/ingest HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n".encode()
        )
        raw = _read_response(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"application/json" in head
    assert json.loads(body)["error"] == "payload_too_large"


def _client_max_body_size_bytes(conf: Path) -> int:
    match = re.search(r"client_max_body_size\s+(\d+)([kKmM]?);", conf.read_text())
    assert match, "nginx.conf sets no client_max_body_size"
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if length and len(body) >= int(length.group(1)):
                return data


def test_unreachable_api_is_answered_in_our_error_shape() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))  # bound but never listening: connections are refused
        upstream = f"127.0.0.1:{closed.getsockname()[1]}"
        with running_nginx(upstream) as nginx:
            response = httpx.get(f"{nginx.base_url}/v1/company")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "unavailable"
    assert response.headers["retry-after"] == "5"


def test_nginx_body_limit_is_the_apps() -> None:
    # The proxy and the app refuse the same bodies: neither lets through what the other drops.
    from backend.config import Settings

    assert (
        _client_max_body_size_bytes(NGINX_CONF)
        == Settings.model_fields["max_request_body_bytes"].get_default()
    )
