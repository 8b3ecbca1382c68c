"""Console users and sessions: sign in and out, invitations, roles.

Sessions are server-side: the cookie carries 256 random bits, the database keeps only their
SHA-256 (a stolen database row cannot be replayed). A session dies when it expires
(``HELPDESK_CONSOLE_SESSION_HOURS``), on sign-out, on sign-out everywhere, when its user
is removed (cascade) or their role changes. Resolved sessions are remembered in the
process's credential cache like API keys, and every change made here clears it.

The CSRF token is an HMAC of the session's cookie value: only a page that was given it (the
console, by ``GET``/``POST /console/api/session``) knows it, since the cookie itself is
HttpOnly, and it needs no storage of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import Clock
from backend.config import Settings
from backend.console import store
from backend.console.passwords import hash_password, verify_password
from backend.console.scopes import ROLES
from backend.db.models import ConsoleUser
from backend.db.repositories import companies as company_repo
from backend.db.repositories.audit_log import append_audit_entry
from backend.db.session import Database
from backend.errors import AppError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from backend.tenancy.credential_cache import CredentialCache
from backend.tenancy.service import Tenant, company_suspended

_log = structlog.get_logger("helpdesk.console")

COOKIE_NAME: Final = "hd_console"
CSRF_HEADER: Final = "X-CSRF-Token"
_CSRF_CONTEXT: Final = b"helpdesk-console-csrf"
# Redis keys "hd:{console-login}:...": one hash tag for all, apart from every company's.
_LIMIT_NAMESPACE: Final = "{console-login}"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def csrf_token_for(session_token: str) -> str:
    return hmac.new(session_token.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token_for(session_token).encode(), presented.encode())


def normalize_email(email: str) -> str:
    return email.strip().lower()


def invalid_credentials() -> Unauthorized:
    return Unauthorized("wrong e-mail or password", code="invalid_credentials")


def not_signed_in() -> Unauthorized:
    return Unauthorized("not signed in to the console", code="not_signed_in")


@dataclass(frozen=True)
class SignedIn:
    user: ConsoleUser
    token: str
    """The cookie value: set once, never shown again."""

    @property
    def csrf_token(self) -> str:
        return csrf_token_for(self.token)


@dataclass(frozen=True)
class Invitation:
    user: ConsoleUser
    token: str


class LoginLimiter:
    """Sign-in attempts per e-mail and per client IP, in a moving window, through the same
    ``limits`` store as the plans (Redis shared by every process, or memory). Like the plan
    limiter, a failing store lets attempts through (logged) rather than locking everyone out;
    argon2 keeps each guess expensive regardless."""

    def __init__(self, storage: Storage, *, attempts: int, window_seconds: int) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._item: RateLimitItem = RateLimitItemPerSecond(
            attempts, window_seconds, namespace=_LIMIT_NAMESPACE
        )
        self._window = window_seconds

    async def hit(self, *, email: str, client_ip: str | None) -> None:
        # E-mails are hashed: Redis keys are no place for personal data.
        keys = [("email", hashlib.sha256(email.encode()).hexdigest()[:32])]
        if client_ip:
            keys.append(("ip", client_ip))
        try:
            allowed = [await self._limiter.hit(self._item, kind, key) for kind, key in keys]
        except Exception:
            _log.warning("console_login_limiter_failed", exc_info=True)
            return
        if not all(allowed):
            raise RateLimited(
                "too many sign-in attempts; wait and try again",
                headers={"Retry-After": str(self._window)},
            )


class ConsoleAuth:
    """Everything about console people. Cheap to build: one per request is fine."""

    def __init__(
        self,
        *,
        database: Database,
        clock: Clock,
        settings: Settings,
        limiter_storage: Storage,
        credentials: CredentialCache,
    ) -> None:
        self.database = database
        self.clock = clock
        self.settings = settings
        self.credentials = credentials
        self.limiter = LoginLimiter(
            limiter_storage,
            attempts=settings.console_login_attempts,
            window_seconds=settings.console_login_window_seconds,
        )

    # ------------------------------------------------------------------ sessions

    async def sign_in(
        self, email: str, password: str, *, client_ip: str | None, user_agent: str | None
    ) -> SignedIn:
        email = normalize_email(email)
        await self.limiter.hit(email=email, client_ip=client_ip)
        user = await store.find_user_by_email(self.database, email)
        if not await verify_password(user.password_hash if user else None, password):
            raise invalid_credentials()
        assert user is not None
        return await self._open_session(
            user, client_ip=client_ip, user_agent=user_agent, action="console.sign_in"
        )

    async def _open_session(
        self,
        user: ConsoleUser,
        *,
        client_ip: str | None,
        user_agent: str | None,
        action: str,
    ) -> SignedIn:
        token = secrets.token_urlsafe(32)
        async with self.database.tenant_session(user.company_id) as session:
            company = await company_repo.get_company(session, user.company_id)
            if company is not None and company.status != "active":
                raise company_suspended(user.company_id)
            await store.delete_expired_sessions(session, user.id, self.clock.now())
            await store.insert_session(
                session,
                company_id=user.company_id,
                user_id=user.id,
                token_hash=token_hash(token),
                expires_at=self.clock.now() + timedelta(hours=self.settings.console_session_hours),
                client_ip=client_ip,
                user_agent=(user_agent or "")[:300] or None,
            )
            await append_audit_entry(
                session,
                company_id=user.company_id,
                actor=f"user:{user.id}",
                action=action,
                target=str(user.id),
                details={"client_ip": client_ip} if client_ip else {},
            )
        return SignedIn(user=user, token=token)

    async def authenticate(self, token: str) -> Tenant:
        """The tenant a console cookie stands for, or 401 ``not_signed_in``."""
        if not token or len(token) > 200:
            raise not_signed_in()
        row = await store.find_session(self.database, token_hash(token))
        if row is None or row.expires_at <= self.clock.now():
            raise not_signed_in()
        async with self.database.tenant_session(row.company_id) as session:
            user = await store.get_user(session, row.user_id)
            company = await company_repo.get_company(session, row.company_id)
        if user is None:
            raise not_signed_in()
        if company is not None and company.status != "active":
            raise company_suspended(row.company_id)
        return Tenant(
            company_id=row.company_id,
            api_key_id=None,
            key_prefix=None,
            via="console",
            user_id=user.id,
            role=user.role,
        )

    async def current_user(self, tenant: Tenant) -> ConsoleUser:
        async with self.database.tenant_session(tenant.company_id) as session:
            user = await store.get_user(session, _user_id(tenant))
        if user is None:
            raise not_signed_in()
        return user

    async def sign_out(self, tenant: Tenant, token: str) -> None:
        async with self.database.tenant_session(tenant.company_id) as session:
            await store.delete_session(session, token_hash(token))
            await append_audit_entry(
                session,
                company_id=tenant.company_id,
                actor=tenant.actor,
                action="console.sign_out",
                target=str(tenant.user_id),
            )
        self.credentials.clear()

    async def sign_out_everywhere(self, tenant: Tenant) -> int:
        async with self.database.tenant_session(tenant.company_id) as session:
            ended = await store.delete_user_sessions(session, _user_id(tenant))
            await append_audit_entry(
                session,
                company_id=tenant.company_id,
                actor=tenant.actor,
                action="console.sign_out_everywhere",
                target=str(tenant.user_id),
                details={"sessions": ended},
            )
        self.credentials.clear()
        return ended

    # ------------------------------------------------------------------ users

    async def list_users(self, tenant: Tenant, *, limit: int = 500) -> list[ConsoleUser]:
        _require_manager(tenant)
        async with self.database.tenant_session(tenant.company_id) as session:
            return await store.list_users(session, limit=limit)

    async def invite(
        self, company_id: str, *, email: str, name: str, role: str, actor: str
    ) -> Invitation:
        """Create a user without a password and an invitation token (shown once)."""
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
        token = secrets.token_urlsafe(32)
        try:
            async with self.database.tenant_session(company_id) as session:
                if await company_repo.get_company(session, company_id) is None:
                    raise NotFound(
                        f"company {company_id!r} does not exist", code="company_not_found"
                    )
                user = ConsoleUser(
                    company_id=company_id,
                    email=normalize_email(email),
                    name=name.strip(),
                    role=role,
                    invite_token_hash=token_hash(token),
                    invite_expires_at=self.clock.now()
                    + timedelta(hours=self.settings.console_invite_hours),
                )
                session.add(user)
                await session.flush()
                await session.refresh(user)
                await append_audit_entry(
                    session,
                    company_id=company_id,
                    actor=actor,
                    action="console_user.invite",
                    target=str(user.id),
                    details={"role": role},
                )
        except IntegrityError as exc:
            raise Conflict("a console user with this e-mail exists", code="user_exists") from exc
        return Invitation(user=user, token=token)

    async def invite_by(self, tenant: Tenant, *, email: str, name: str, role: str) -> Invitation:
        """An owner invites anyone; an admin invites agents only."""
        _require_manager(tenant)
        if tenant.role != "owner" and role != "agent":
            raise Forbidden("only an owner may invite owners and admins", code="role_forbidden")
        return await self.invite(
            tenant.company_id, email=email, name=name, role=role, actor=tenant.actor
        )

    async def change_role(self, tenant: Tenant, user_id: uuid.UUID, role: str) -> ConsoleUser:
        _require_manager(tenant)
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
        async with self.database.tenant_session(tenant.company_id) as session:
            user = await _managed_user(session, tenant, user_id)
            if tenant.role != "owner" and role == "owner":
                raise Forbidden("only an owner may make owners", code="role_forbidden")
            if user.role == "owner" and role != "owner" and await store.count_owners(session) <= 1:
                raise Conflict("a company keeps at least one owner", code="last_owner")
            previous = user.role
            user.role = role
            # A changed role applies at once: the user signs in again.
            await store.delete_user_sessions(session, user.id)
            await append_audit_entry(
                session,
                company_id=tenant.company_id,
                actor=tenant.actor,
                action="console_user.role",
                target=str(user.id),
                details={"from": previous, "to": role},
            )
            await session.flush()
            await session.refresh(user)
        self.credentials.clear()
        return user

    async def remove_user(self, tenant: Tenant, user_id: uuid.UUID) -> None:
        _require_manager(tenant)
        async with self.database.tenant_session(tenant.company_id) as session:
            user = await _managed_user(session, tenant, user_id)
            if user.role == "owner" and await store.count_owners(session) <= 1:
                raise Conflict("a company keeps at least one owner", code="last_owner")
            await session.delete(user)
            await append_audit_entry(
                session,
                company_id=tenant.company_id,
                actor=tenant.actor,
                action="console_user.remove",
                target=str(user_id),
                details={"role": user.role},
            )
        self.credentials.clear()

    async def accept_invitation(
        self,
        token: str,
        *,
        name: str,
        password: str,
        client_ip: str | None,
        user_agent: str | None,
    ) -> SignedIn:
        # The invitation token is a credential too: guesses count like sign-in attempts.
        await self.limiter.hit(email="invite:" + (client_ip or ""), client_ip=client_ip)
        user = await store.find_user_by_invite(self.database, token_hash(token))
        now = self.clock.now()
        if user is None or user.invite_expires_at is None or user.invite_expires_at <= now:
            raise NotFound("no such invitation, or it has expired", code="invitation_not_found")
        password_hash = await hash_password(password)
        async with self.database.tenant_session(user.company_id) as session:
            current = await store.get_user(session, user.id)
            if current is None or current.invite_token_hash != token_hash(token):
                raise NotFound("no such invitation, or it was used", code="invitation_not_found")
            current.password_hash = password_hash
            current.name = name.strip() or current.name
            current.invite_token_hash = None
            current.invite_expires_at = None
            await append_audit_entry(
                session,
                company_id=user.company_id,
                actor=f"user:{user.id}",
                action="console_user.accept",
                target=str(user.id),
            )
            await session.flush()
            await session.refresh(current)
        return await self._open_session(
            current, client_ip=client_ip, user_agent=user_agent, action="console.sign_in"
        )


def _user_id(tenant: Tenant) -> uuid.UUID:
    if tenant.via != "console" or tenant.user_id is None:
        raise Forbidden("this endpoint is for console users", code="console_user_required")
    return tenant.user_id


def _require_manager(tenant: Tenant) -> None:
    _user_id(tenant)
    if tenant.role not in ("owner", "admin"):
        raise Forbidden("managing users needs the owner or admin role", code="role_forbidden")


async def _managed_user(session: AsyncSession, tenant: Tenant, user_id: uuid.UUID) -> ConsoleUser:
    user = await store.get_user(session, user_id)
    if user is None:
        # Another company's user id reads exactly like an unknown one (RLS hides it).
        raise NotFound("no such user", code="user_not_found")
    if user.role == "owner" and tenant.role != "owner":
        raise Forbidden("only an owner may manage owners", code="role_forbidden")
    return user
