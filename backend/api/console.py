"""The console's own API (``/console/api``): sign in and out, the company's users, and
invitations. Everything else the console shows comes from ``/v1`` with the same cookie.

The operator's ``POST /admin/companies/{company_id}/users`` (the first owner) lives here
too, beside the rest of the user management.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from backend.api.admin import CompanyIdPath
from backend.api.dependencies import PlatformAdmin, StateDep
from backend.api.schemas import ERROR_RESPONSES, ErrorBody
from backend.config import Settings
from backend.console.http import authenticate_console_cookie, console_auth
from backend.console.scopes import Role
from backend.console.service import COOKIE_NAME, ConsoleAuth, SignedIn, not_signed_in
from backend.db.models import ConsoleUser
from backend.tenancy.service import Tenant

router = APIRouter(prefix="/console/api", tags=["console"], responses=ERROR_RESPONSES)
operator_router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)

_LOOPBACK_HOSTS: Final = frozenset({"localhost"})
Password = Annotated[str, Field(min_length=10, max_length=256)]
# The shape of an address only: the invitation, not a regex, proves it reaches someone.
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
Name = Annotated[str, Field(max_length=200)]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    role: str = Field(description="owner, admin or agent.")
    company_id: str


class ListedUserOut(UserOut):
    invitation_pending: bool = Field(description="Invited, has not set a password yet.")


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(
        description="Send it as `X-CSRF-Token` with every POST, PUT, PATCH and DELETE."
    )


class SignInIn(BaseModel):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=256)]


class InviteIn(BaseModel):
    email: Email
    name: Name = ""
    role: Role


class InvitationOut(BaseModel):
    user: UserOut
    invite_token: str = Field(description="Shown once: hand it to the person invited.")
    invite_url: str = Field(description="The console page that accepts it.")


class RoleIn(BaseModel):
    role: Role


class AcceptIn(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    name: Name = ""
    password: Password


async def get_console_auth(state: StateDep) -> ConsoleAuth:
    return console_auth(state)


ConsoleAuthDep = Annotated[ConsoleAuth, Depends(get_console_auth)]


async def get_console_tenant(request: Request, state: StateDep) -> Tenant:
    """The signed-in user (401 ``not_signed_in``); unsafe methods need the CSRF header."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        raise not_signed_in()
    return await authenticate_console_cookie(
        request, state, cookie, request.headers.get("X-Company-ID")
    )


ConsoleTenant = Annotated[Tenant, Depends(get_console_tenant)]


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _cookie_secure(request: Request, state: StateDep) -> bool:
    """``Secure`` everywhere but a development, test or demo instance on loopback (plain
    http://127.0.0.1, where a Secure cookie would never come back). Tests talk to the ASGI
    app directly, so the test environment counts as loopback."""
    settings = state.settings
    if settings.environment == "production":
        return True
    if settings.environment == "test":
        return False
    return not _is_loopback(request.url.hostname)


def set_session_cookie(response: Response, token: str, settings: Settings, *, secure: bool) -> None:
    """The console session cookie: HttpOnly, SameSite=Strict, for the session's lifetime."""
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(settings.console_session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def _signed_in_response(
    signed_in: SignedIn, request: Request, response: Response, state: StateDep
) -> SessionOut:
    set_session_cookie(
        response, signed_in.token, state.settings, secure=_cookie_secure(request, state)
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(user=UserOut.model_validate(signed_in.user), csrf_token=signed_in.csrf_token)


def _clear_cookie(response: Response, request: Request, state: StateDep) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request, state),
    )


def _invitation_out(user: ConsoleUser, token: str) -> InvitationOut:
    return InvitationOut(
        user=UserOut.model_validate(user),
        invite_token=token,
        invite_url=f"/console/#/accept?token={token}",
    )


@router.post(
    "/session",
    response_model=SessionOut,
    responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)
async def sign_in(
    body: SignInIn, request: Request, response: Response, auth: ConsoleAuthDep, state: StateDep
) -> Any:
    """Sign in with e-mail and password. Sets the `hd_console` cookie (HttpOnly,
    SameSite=Strict) and returns the user and the CSRF token for unsafe requests. Wrong
    e-mail or password: 401 `invalid_credentials`; too many attempts for the e-mail or from
    the address: 429 `rate_limited`."""
    signed_in = await auth.sign_in(
        str(body.email),
        body.password,
        client_ip=_client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    return _signed_in_response(signed_in, request, response, state)


@router.get("/session", response_model=SessionOut, responses={401: {"model": ErrorBody}})
async def read_session(
    request: Request, response: Response, tenant: ConsoleTenant, auth: ConsoleAuthDep
) -> Any:
    """Who is signed in, with the session's CSRF token; 401 `not_signed_in` otherwise."""
    user = await auth.current_user(tenant)
    cookie = request.cookies[COOKIE_NAME]
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(
        user=UserOut.model_validate(user), csrf_token=SignedIn(user, cookie).csrf_token
    )


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(
    request: Request, tenant: ConsoleTenant, auth: ConsoleAuthDep, state: StateDep
) -> Response:
    """Sign out this session (the cookie stops working everywhere at once)."""
    await auth.sign_out(tenant, request.cookies[COOKIE_NAME])
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_cookie(response, request, state)
    return response


@router.post("/session/revoke-all", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out_everywhere(
    request: Request, tenant: ConsoleTenant, auth: ConsoleAuthDep, state: StateDep
) -> Response:
    """Sign out every session of the signed-in user, on every device."""
    await auth.sign_out_everywhere(tenant)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_cookie(response, request, state)
    return response


@router.get("/users", response_model=list[ListedUserOut])
async def list_users(tenant: ConsoleTenant, auth: ConsoleAuthDep) -> Any:
    """Your company's console users (owner or admin)."""
    return [
        ListedUserOut(
            **UserOut.model_validate(u).model_dump(),
            invitation_pending=u.password_hash is None,
        )
        for u in await auth.list_users(tenant)
    ]


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationOut,
    responses={409: {"model": ErrorBody, "description": "The e-mail has an account."}},
)
async def invite_user(body: InviteIn, tenant: ConsoleTenant, auth: ConsoleAuthDep) -> Any:
    """Invite a person: an owner may invite any role, an admin agents only. The invitation
    token is shown once; the person sets their name and password with it."""
    invitation = await auth.invite_by(tenant, email=str(body.email), name=body.name, role=body.role)
    return _invitation_out(invitation.user, invitation.token)


@router.patch("/users/{user_id}", response_model=UserOut, responses={404: {"model": ErrorBody}})
async def change_role(
    user_id: uuid.UUID, body: RoleIn, tenant: ConsoleTenant, auth: ConsoleAuthDep
) -> Any:
    """Change a user's role (their sessions end). Only an owner manages owners; the last
    owner stays an owner (409 `last_owner`)."""
    return await auth.change_role(tenant, user_id, body.role)


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorBody}},
)
async def remove_user(user_id: uuid.UUID, tenant: ConsoleTenant, auth: ConsoleAuthDep) -> Response:
    """Remove a user and end their sessions."""
    await auth.remove_user(tenant, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/invitations/accept",
    response_model=SessionOut,
    responses={404: {"model": ErrorBody, "description": "Unknown, used or expired token."}},
)
async def accept_invitation(
    body: AcceptIn, request: Request, response: Response, auth: ConsoleAuthDep, state: StateDep
) -> Any:
    """Set your name and password with an invitation token, and sign in."""
    signed_in = await auth.accept_invitation(
        body.token,
        name=body.name,
        password=body.password,
        client_ip=_client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    return _signed_in_response(signed_in, request, response, state)


@operator_router.post(
    "/companies/{company_id}/users",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationOut,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def operator_invite_user(
    company_id: CompanyIdPath, body: InviteIn, auth: ConsoleAuthDep, actor: PlatformAdmin
) -> Any:
    """Invite a company's console user (usually its first owner). The token is shown once."""
    invitation = await auth.invite(
        company_id, email=str(body.email), name=body.name, role=body.role, actor=actor
    )
    return _invitation_out(invitation.user, invitation.token)
