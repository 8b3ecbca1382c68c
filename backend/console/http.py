"""The console cookie as a request credential, and the per-route scope/role check.

Called from the auth dependency (``backend.api.dependencies.get_current_tenant``) and the
``/console/api`` routes, so both apply the same rules.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

from fastapi import Request

from backend.console.scopes import accepted_scopes, required_scope, role_allows
from backend.console.service import CSRF_HEADER, ConsoleAuth, csrf_matches
from backend.errors import Forbidden
from backend.tenancy.service import Tenant

if TYPE_CHECKING:
    from backend.stack import Stack

_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def console_auth(state: Stack) -> ConsoleAuth:
    return ConsoleAuth(
        database=state.database,
        clock=state.clock,
        settings=state.settings,
        limiter_storage=state.plans.storage,
        credentials=state.credentials,
    )


async def authenticate_console_cookie(
    request: Request, state: Stack, cookie: str, x_company_id: str | None
) -> Tenant:
    """The signed-in user behind ``cookie``. ``X-Company-ID`` may be omitted; if given it
    must name the user's company. Unsafe methods need the session's CSRF token."""
    digest = "console:" + hashlib.sha256(cookie.encode()).hexdigest()
    tenant = state.credentials.get(digest)
    if tenant is None:
        tenant = await console_auth(state).authenticate(cookie)
        state.credentials.put(digest, tenant)
    if x_company_id is not None and x_company_id != tenant.company_id:
        raise Forbidden(
            "you are signed in to another company than X-Company-ID names",
            code="company_mismatch",
        )
    if request.method.upper() not in _SAFE_METHODS and not csrf_matches(
        cookie, request.headers.get(CSRF_HEADER)
    ):
        raise Forbidden(
            f"missing or wrong {CSRF_HEADER} header (read it from GET /console/api/session)",
            code="csrf_failed",
        )
    return tenant


def enforce_route_policy(request: Request, tenant: Tenant) -> None:
    """403 unless the API key's scopes or the console user's role allow the matched route.
    Widget tokens are bound by their own checks."""
    if tenant.via == "widget":
        return
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    if tenant.via == "console":
        if not role_allows(tenant.role or "", request.method, path):
            raise Forbidden(f"the {tenant.role} role may not do this", code="role_forbidden")
        return
    scope = required_scope(path)
    if not accepted_scopes(path) & tenant.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope", code="insufficient_scope")
