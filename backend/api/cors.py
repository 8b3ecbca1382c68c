"""Cross-origin access for the widget: each company's own origins, not ``*``.

A browser page may call the API only from an origin the company named in ``X-Company-ID``
trusts: its helpdesk domain (``https://acme.freshdesk.com`` for ``acme.freshdesk.com``), the
``widget_origins`` list in its settings (``{"widget_origins": ["https://support.acme.com"]}``),
or an origin in ``HELPDESK_CORS_ALLOW_ORIGINS`` (every company). Anything else gets no
``Access-Control-Allow-Origin``, so the browser withholds the response from the page.

A preflight (``OPTIONS``) names the headers it will send but not their values, so it cannot
say which company a call is for: it passes when *some* company trusts the origin, and the
actual response then carries the header only for the company it is about. A bearer token,
never a cookie, authenticates every call, so CORS here decides what a page may read, not
who may call.

Origins are read from Postgres and remembered per process for ``plan_cache_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.responses import OrjsonResponse
from backend.db.repositories import plans as plan_repo
from backend.db.session import Database
from backend.tenancy.company_id import is_valid_company_id

ALLOW_METHODS: Final = "GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS: Final = "Authorization, X-Company-ID, Content-Type, Accept, X-Request-ID"
EXPOSE_HEADERS: Final = "Retry-After, X-Request-ID"
MAX_AGE: Final = "600"
_MAX_REMEMBERED: Final = 10_000


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case, or ``None`` for anything else."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    default = 443 if parts.scheme == "https" else 80
    suffix = f":{port}" if port and port != default else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{suffix}"


def company_origins(helpdesk_domain: str | None, widget_origins: Any) -> frozenset[str]:
    """The origins one company trusts, from its helpdesk domain and settings."""
    found: set[str] = set()
    if helpdesk_domain:
        origin = normalize_origin(f"https://{helpdesk_domain.strip()}")
        if origin:
            found.add(origin)
    if isinstance(widget_origins, list):
        for raw in widget_origins:
            origin = normalize_origin(raw) if isinstance(raw, str) else None
            if origin:
                found.add(origin)
    return frozenset(found)


class OriginPolicy:
    """Which origins may read which company's responses (cached lookups in Postgres)."""

    def __init__(
        self, database: Database, *, global_origins: str, cache_seconds: float = 10.0
    ) -> None:
        self.database = database
        raw = [o.strip() for o in global_origins.split(",") if o.strip()]
        self.any_origin = "*" in raw
        self.global_origins = frozenset(o for o in map(normalize_origin, raw) if o)
        self.cache_seconds = cache_seconds
        self._companies: dict[str, tuple[frozenset[str], float]] = {}
        self._preflight: dict[str, tuple[bool, float]] = {}

    def _fresh(self, found: tuple[Any, float] | None) -> bool:
        return found is not None and found[1] > time.monotonic()

    async def _remembered(
        self, cache: dict[str, tuple[Any, float]], key: str, load: Callable[[], Awaitable[Any]]
    ) -> Any:
        found = cache.get(key)
        if found is not None and self._fresh(found):
            return found[0]
        value = await load()
        if len(cache) > _MAX_REMEMBERED:
            cache.clear()
        cache[key] = (value, time.monotonic() + self.cache_seconds)
        return value

    async def origins_of(self, company_id: str) -> frozenset[str]:
        async def load() -> frozenset[str]:
            async with self.database.tenant_session(company_id) as session:
                found = await plan_repo.company_origin_sources(session, company_id)
            return frozenset() if found is None else company_origins(*found)

        origins: frozenset[str] = await self._remembered(self._companies, company_id, load)
        return origins

    async def allows(self, origin: str, company_id: str | None) -> bool:
        """May a page on ``origin`` read a response about ``company_id``?"""
        if self.any_origin or origin in self.global_origins:
            return True
        if company_id is None or not is_valid_company_id(company_id):
            return False
        return origin in await self.origins_of(company_id)

    async def allows_preflight(self, origin: str) -> bool:
        """Does any company (or the global list) trust ``origin``?"""
        if self.any_origin or origin in self.global_origins:
            return True
        host = urlsplit(origin).hostname or ""

        async def load() -> bool:
            async with self.database.platform_session() as session:
                return await plan_repo.any_company_allows_origin(session, origin, host)

        allowed: bool = await self._remembered(self._preflight, origin, load)
        return allowed


class CompanyCorsMiddleware:
    """Answers preflights and adds CORS headers per company (pure ASGI: streams pass)."""

    def __init__(self, app: ASGIApp, *, policy: Callable[[], OriginPolicy | None]) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw_origin = headers.get("origin")
        policy = self.policy()
        if raw_origin is None or policy is None:
            await self.app(scope, receive, send)
            return
        origin = normalize_origin(raw_origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(scope, receive, send, policy, origin)
            return
        allowed = origin is not None and await policy.allows(origin, headers.get("x-company-id"))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")
                if allowed:
                    response_headers["Access-Control-Allow-Origin"] = raw_origin
                    response_headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, policy: OriginPolicy, origin: str | None
    ) -> None:
        if origin is None or not await policy.allows_preflight(origin):
            response = OrjsonResponse(
                {"error": "origin_not_allowed", "detail": "this origin may not call the API"},
                status_code=403,
                headers={"Vary": "Origin"},
            )
        else:
            response = OrjsonResponse(
                {"status": "ok"},
                headers={
                    "Access-Control-Allow-Origin": Headers(scope=scope)["origin"],
                    "Access-Control-Allow-Methods": ALLOW_METHODS,
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": MAX_AGE,
                    "Vary": "Origin",
                },
            )
        await response(scope, receive, send)
