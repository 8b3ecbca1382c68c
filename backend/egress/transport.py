"""The one HTTP path for tenant-influenced outbound calls.

:class:`Egress` hands a sync run an ``httpx.AsyncClient`` scoped to one connector. Its
transport, :class:`EgressTransport`, does for every request, before any byte leaves:

1. the URL must be on one of the connector's own origins (scheme, host, port) — a paging
   link to another host or to ``http`` is refused like any other URL;
2. the host name is resolved once (:class:`Resolver`) and every address must be public
   (:meth:`EgressPolicy.check_addresses`);
3. the checked address travels with the request; :class:`PinnedTransport` connects to
   exactly that address while TLS still verifies the certificate for the host name (SNI and
   the ``Host`` header stay the name's), so a DNS answer that changes between the check and
   the connect (rebinding) is never used;

and for every response:

4. a redirect (3xx) is refused, never followed;
5. the body is capped while it streams in (``Content-Length`` above the cap is refused
   before reading; a chunked body is aborted at the first chunk past it), and compressed
   bodies are not accepted (``Accept-Encoding: identity``), so the cap is the decoded size.

Tests inject their replay (``httpx.MockTransport`` or a loopback forwarder) as the inner
transport: the policy still runs in front of it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Protocol

import httpx

from backend.egress.policy import (
    EgressPolicy,
    EgressRefused,
    EgressScope,
    IPAddress,
    ResponseTooLarge,
)

CHECKED_ADDRESS = "helpdesk.egress.address"
# Set on a request by the attachment downloader: the URL may be on the platform's file
# hosts, and a 3xx comes back to the caller (unread) instead of failing, so that it can
# follow a file link's redirect itself, each hop through this transport again. Nothing
# follows redirects automatically.
FILE_DOWNLOAD = "helpdesk.egress.file_download"
"""Request extension carrying the address the policy checked; the connection goes there."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class Resolver(Protocol):
    """Name → addresses. Injected so tests resolve platform names to their replays."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class SystemResolver:
    """The system resolver (``getaddrinfo``), with a time limit."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
                self.timeout,
            )
        except (OSError, TimeoutError):
            raise EgressRefused("host does not resolve") from None
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            # Scope ids (fe80::1%eth0) are dropped: link-local is refused anyway.
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        return addresses


class StaticResolver:
    """A fixed table (tests, and hosts an operator pins): unknown names do not resolve."""

    def __init__(self, table: Mapping[str, str | Iterable[str]]) -> None:
        self.table = {
            name.lower(): [
                ipaddress.ip_address(v) for v in ([value] if isinstance(value, str) else value)
            ]
            for name, value in table.items()
        }
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append(host)
        addresses = self.table.get(host.lower())
        if not addresses:
            raise EgressRefused("host does not resolve")
        return list(addresses)


class _CappedStream(httpx.AsyncByteStream):
    """Passes the body through, aborting as soon as it grows past ``limit`` bytes."""

    def __init__(self, inner: httpx.AsyncByteStream, limit: int, request: httpx.Request) -> None:
        self._inner = inner
        self._limit = limit
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            if received > self._limit:
                await self._inner.aclose()
                raise ResponseTooLarge("response exceeds the size cap", request=self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class EgressTransport(httpx.AsyncBaseTransport):
    """Applies the policy around ``inner`` for one connector's :class:`EgressScope`."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        policy: EgressPolicy,
        scope: EgressScope,
        resolver: Resolver,
        close_inner: bool = True,
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._scope = scope
        self._resolver = resolver
        self._close_inner = close_inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            files = bool(request.extensions.get(FILE_DOWNLOAD))
            origin = self._scope.origin_of(request.url, files=files)
            literal = self._policy.check_host(self._scope.platform, origin.host, files=files)
            addresses = (
                [literal]
                if literal is not None
                else await self._resolver.resolve(origin.host, origin.port)
            )
            address = self._policy.check_addresses(addresses)
        except EgressRefused as exc:
            raise EgressRefused(exc.reason, request=request) from None
        request.extensions = {**request.extensions, CHECKED_ADDRESS: str(address)}
        # The size cap must hold for the decoded body: ask for no content coding at all.
        request.headers["Accept-Encoding"] = "identity"
        response = await self._inner.handle_async_request(request)
        if 300 <= response.status_code < 400:
            await response.aclose()
            if files:
                return httpx.Response(
                    status_code=response.status_code, headers=response.headers, request=request
                )
            raise EgressRefused("redirects are not followed", request=request)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            await response.aclose()
            raise EgressRefused("compressed responses are not accepted", request=request)
        limit = self._policy.max_response_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await response.aclose()
            raise ResponseTooLarge("response exceeds the size cap", request=request)
        if not isinstance(response.stream, httpx.AsyncByteStream):
            await response.aclose()
            raise EgressRefused("unsupported response stream", request=request)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, limit, request),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        if self._close_inner:
            await self._inner.aclose()


class PinnedTransport(httpx.AsyncBaseTransport):
    """Connects to the address :class:`EgressTransport` checked, never to a fresh lookup.

    The URL's host is swapped for the checked address just before httpcore opens the
    connection; the ``Host`` header (set when the request was built) and the TLS server name
    (httpcore's ``sni_hostname`` extension, also used to verify the certificate) stay the
    platform's name. One connection pool per host name, so a connection opened for one name
    is never reused for another that shares its address.
    """

    def __init__(self, *, verify: bool | str = True, retries: int = 0) -> None:
        self._verify = verify
        self._retries = retries
        self._pools: dict[str, httpx.AsyncBaseTransport] = {}

    def _pool(self, host: str) -> httpx.AsyncBaseTransport:
        pool = self._pools.get(host)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(verify=self._verify, retries=self._retries)
            self._pools[host] = pool
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        address = request.extensions.get(CHECKED_ADDRESS)
        if not isinstance(address, str):
            raise EgressRefused("no checked address for this request", request=request)
        host = request.url.host
        pinned = request.url.copy_with(host=address)
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = host
        request.url = pinned
        request.extensions = extensions
        return await self._pool(host).handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.aclose()


class Egress:
    """Builds connector-scoped clients: the policy, a resolver and the network (or a test's
    replay transport, which the policy then guards the same way)."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.policy = policy
        self.resolver: Resolver = resolver or SystemResolver()
        self._transport = transport
        self._timeout = timeout

    @asynccontextmanager
    async def client(self, scope: EgressScope) -> AsyncIterator[httpx.AsyncClient]:
        """A client that reaches only ``scope``'s origins; closed (with its pools) on exit."""
        inner = self._transport if self._transport is not None else PinnedTransport()
        transport = EgressTransport(
            inner,
            policy=self.policy,
            scope=scope,
            resolver=self.resolver,
            close_inner=self._transport is None,
        )
        async with httpx.AsyncClient(
            transport=transport, timeout=self._timeout, follow_redirects=False, trust_env=False
        ) as client:
            yield client


__all__ = [
    "CHECKED_ADDRESS",
    "FILE_DOWNLOAD",
    "Egress",
    "EgressTransport",
    "PinnedTransport",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
]
