"""The shared egress transport, around an injected replay and around the real network:
paging links stay on the connector's own origin, redirects are failures, bodies are capped
while they stream, names resolve once and the connection goes to the checked address."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from backend.adapters.base import ManualClock
from backend.adapters.freshdesk import FreshdeskAdapter, FreshdeskCredentials, FreshdeskSettings
from backend.adapters.http import RateLimiter, get_json
from backend.egress import (
    CHECKED_ADDRESS,
    Egress,
    EgressPolicy,
    EgressRefused,
    PinnedTransport,
    ResponseTooLarge,
    StaticResolver,
)

HOST = "acme.freshdesk.com"
PUBLIC = "52.1.2.3"  # what the test resolver answers for the platform name


class Upstream:
    """A protocol-level fake platform that records what actually reached it."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.responses.pop(0) if self.responses else httpx.Response(200, json=[])


def egress_for(
    upstream: Upstream, *, policy: EgressPolicy | None = None, table: dict[str, str] | None = None
) -> Egress:
    return Egress(
        policy or EgressPolicy(),
        resolver=StaticResolver(table or {HOST: PUBLIC}),
        transport=httpx.MockTransport(upstream),
    )


async def fetch(egress: Egress, url: str, base: str = f"https://{HOST}") -> object:
    clock = ManualClock()
    async with egress.client(egress.policy.scope("freshdesk", [base])) as client:
        return await get_json(
            client, url, limiter=RateLimiter.unlimited(clock=clock), clock=clock, max_attempts=1
        )


async def test_a_next_link_to_another_host_is_refused_before_it_leaves() -> None:
    evil = "https://169.254.169.254/latest/meta-data/iam"
    upstream = Upstream(
        httpx.Response(200, json={}),  # /settings/helpdesk (the account's languages)
        # /solutions/categories, whose listing follows its Link header within the step
        httpx.Response(200, json=[], headers={"Link": f'<{evil}>; rel="next"'}),
    )
    egress = egress_for(upstream)
    clock = ManualClock()
    async with egress.client(egress.policy.scope("freshdesk", [f"https://{HOST}"])) as client:
        adapter = FreshdeskAdapter(
            settings=FreshdeskSettings(domain=HOST, max_attempts=1),
            credentials=FreshdeskCredentials(api_key="key"),
            client=client,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
        )
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    # The link was never requested: every request stayed on the connector's host.
    assert {r.url.host for r in upstream.seen} == {HOST}
    assert page.blocked
    assert page.failures[0].retryable is False
    assert "leaves the connector's own host" in page.failures[0].message


@pytest.mark.parametrize(
    "url",
    [
        f"http://{HOST}/api/v2/tickets",  # scheme downgrade
        f"https://{HOST}:8443/api/v2/tickets",  # other port
        "https://other.freshdesk.com/api/v2/tickets",  # same platform, another account
        f"https://user:pw@{HOST}/api/v2/tickets",  # userinfo
        "https://evil.example/steal",
    ],
)
async def test_requests_off_the_connector_origin_are_refused(url: str) -> None:
    upstream = Upstream()
    result = await fetch(egress_for(upstream), url)
    assert upstream.seen == []
    assert getattr(result, "retryable", None) is False
    assert "refused by egress policy" in str(getattr(result, "message", ""))


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    for address in ("10.0.0.8", "127.0.0.1", "169.254.169.254", "::ffff:a9fe:a9fe", "100.64.1.1"):
        upstream = Upstream()
        result = await fetch(egress_for(upstream, table={HOST: address}), f"https://{HOST}/x")
        assert upstream.seen == []
        assert "non-public address" in str(getattr(result, "message", ""))


async def test_a_redirect_is_a_failure_and_never_followed() -> None:
    upstream = Upstream(
        httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data"})
    )
    result = await fetch(egress_for(upstream), f"https://{HOST}/api/v2/tickets")
    assert len(upstream.seen) == 1
    assert getattr(result, "retryable", None) is False
    assert "redirect" in str(getattr(result, "message", ""))


class CountingBody(httpx.AsyncByteStream):
    """A chunked body of ``total`` bytes that counts how much of it was pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.produced = total, chunk, 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.produced < self.total:
            self.produced += self.chunk
            yield b"x" * self.chunk

    async def aclose(self) -> None:
        self.closed = True


async def test_an_oversized_body_is_aborted_while_it_streams() -> None:
    body = CountingBody(total=300 * 1024 * 1024)  # the 300 MB response
    upstream = Upstream(httpx.Response(200, stream=body))
    cap = 1024 * 1024
    result = await fetch(
        egress_for(upstream, policy=EgressPolicy(max_response_bytes=cap)), f"https://{HOST}/x"
    )
    assert "size cap" in str(getattr(result, "message", ""))
    assert getattr(result, "retryable", None) is False
    # Aborted at the first chunk past the cap: not read then checked.
    assert body.produced <= cap + body.chunk
    assert body.closed


async def test_a_declared_oversized_body_is_refused_before_reading() -> None:
    body = CountingBody(total=10 * 1024 * 1024)
    upstream = Upstream(
        httpx.Response(200, stream=body, headers={"Content-Length": str(10 * 1024 * 1024)})
    )
    result = await fetch(
        egress_for(upstream, policy=EgressPolicy(max_response_bytes=1024 * 1024)),
        f"https://{HOST}/x",
    )
    assert "size cap" in str(getattr(result, "message", ""))
    assert body.produced == 0


async def test_compressed_bodies_are_not_accepted_so_the_cap_is_the_decoded_size() -> None:
    upstream = Upstream(
        httpx.Response(200, content=b"\x1f\x8b", headers={"Content-Encoding": "gzip"})
    )
    result = await fetch(egress_for(upstream), f"https://{HOST}/x")
    assert upstream.seen[0].headers["accept-encoding"] == "identity"
    assert "compressed" in str(getattr(result, "message", ""))


async def test_pinned_transport_connects_to_the_checked_address_with_the_names_sni() -> None:
    seen: list[httpx.Request] = []

    class Pinned(PinnedTransport):
        def _pool(self, host: str) -> httpx.AsyncBaseTransport:
            return httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(204))

    request = httpx.Request("GET", f"https://{HOST}/api/v2/tickets")
    request.extensions[CHECKED_ADDRESS] = PUBLIC
    await Pinned().handle_async_request(request)
    assert seen[0].url.host == PUBLIC
    assert seen[0].headers["host"] == HOST
    assert seen[0].extensions["sni_hostname"] == HOST
    with pytest.raises(EgressRefused, match="no checked address"):
        await Pinned().handle_async_request(httpx.Request("GET", f"https://{HOST}/x"))


class _Sink(BaseHTTPRequestHandler):
    hits: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.hits.append((self.path, self.headers.get("Host", "")))
        if self.path.endswith("/big"):
            self._big()
            return
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _big(self) -> None:
        # 64 MiB announced nowhere (no Content-Length): only a streamed cap stops it.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(1024):
                self.wfile.write(b"x" * 65536)
        except OSError:
            pass  # the client hung up at its cap

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def sink() -> Iterator[int]:
    _Sink.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class ChangingResolver(StaticResolver):
    """Answers loopback the first time, then a metadata address (a DNS-rebinding server)."""

    async def resolve(
        self, host: str, port: int
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        self.calls.append(host)
        answer = "127.0.0.1" if len(self.calls) == 1 else "169.254.169.254"
        return [ipaddress.ip_address(answer)]


async def test_real_connection_goes_to_the_checked_address_resolved_once(sink: int) -> None:
    # The name does not exist in DNS here: reaching the sink at all proves the connection
    # used the address the policy checked, not a second lookup.
    host = "acme.zendesk.com"
    resolver = ChangingResolver({})
    egress = Egress(EgressPolicy(allow_loopback_for_tests=True), resolver=resolver)
    clock = ManualClock()
    scope = egress.policy.scope("zendesk", [f"http://{host}:{sink}"])
    async with egress.client(scope) as client:
        first = await get_json(
            client,
            f"http://{host}:{sink}/api/v2/x",
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
            max_attempts=1,
        )
        second = await get_json(
            client,
            f"http://{host}:{sink}/api/v2/y",
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
            max_attempts=1,
        )
    assert isinstance(first, tuple)
    assert _Sink.hits == [("/api/v2/x", f"{host}:{sink}")]
    # The second lookup answered a metadata address: refused, nothing sent.
    assert "non-public" in str(getattr(second, "message", ""))
    assert resolver.calls == [host, host]


async def test_the_real_network_path_refuses_loopback_by_default(sink: int) -> None:
    # A listening loopback port and a name that points to it: the default policy still
    # refuses, so replays are reachable only through the test-only setting.
    egress = Egress(EgressPolicy(), resolver=StaticResolver({"acme.zendesk.com": "127.0.0.1"}))
    scope = egress.policy.scope("zendesk", ["https://acme.zendesk.com"])
    async with egress.client(scope) as client:
        with pytest.raises(EgressRefused, match="non-public"):
            await client.get("https://acme.zendesk.com/api/v2/x")
    assert _Sink.hits == []


def test_the_system_resolver_reads_numeric_spellings_as_loopback() -> None:
    # Why numeric hosts are refused before any lookup: the C resolver reads them as IPv4.
    for spelling in ("2130706433", "0x7f000001", "0177.0.0.1"):
        assert socket.gethostbyname(spelling) == "127.0.0.1"


async def test_an_oversized_body_from_a_real_socket_is_cut_at_the_cap(sink: int) -> None:
    host = "acme.zendesk.com"
    policy = EgressPolicy(allow_loopback_for_tests=True, max_response_bytes=1024 * 1024)
    egress = Egress(policy, resolver=StaticResolver({host: "127.0.0.1"}))
    scope = policy.scope("zendesk", [f"http://{host}:{sink}"])
    async with egress.client(scope) as client:
        with pytest.raises(ResponseTooLarge):
            await client.get(f"http://{host}:{sink}/api/v2/big")


async def test_a_servicenow_absolute_next_link_to_http_metadata_is_refused() -> None:
    from backend.adapters.servicenow import (
        ServiceNowAdapter,
        ServiceNowCredentials,
        ServiceNowSettings,
    )
    from tests.adapters.servicenow_api import INSTANCE, NOW, make_incident

    evil = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    seen: list[httpx.Request] = []

    def platform(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        table = request.url.path.rsplit("/", 1)[-1]
        if table == "incident":
            return httpx.Response(200, json={"result": [make_incident(1, NOW)]})
        if table == "sys_journal_field":
            # An absolute rel="next" to another host and scheme, as the issue reproduced.
            return httpx.Response(
                200, json={"result": []}, headers={"Link": f'<{evil}>;rel="next"'}
            )
        return httpx.Response(200, json={"result": []})

    egress = Egress(
        EgressPolicy(),
        resolver=StaticResolver({INSTANCE: PUBLIC}),
        transport=httpx.MockTransport(platform),
    )
    clock = ManualClock(NOW)
    async with egress.client(egress.policy.scope("servicenow", [f"https://{INSTANCE}"])) as client:
        adapter = ServiceNowAdapter(
            settings=ServiceNowSettings(instance=INSTANCE, max_attempts=1),
            credentials=ServiceNowCredentials(username="u", password="p"),
            client=client,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
        )
        checkpoint = adapter.initial_checkpoint()
        failures = []
        for _ in range(6):
            page = await adapter.fetch_page(checkpoint)
            failures.extend(page.failures)
            if page.blocked or not page.has_more:
                break
            checkpoint = page.checkpoint
    assert {r.url.host for r in seen} == {INSTANCE}
    assert any("sys_journal_field" in r.url.path for r in seen)
    assert any("leaves the connector's own host" in f.message for f in failures), failures
