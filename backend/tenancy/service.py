"""Companies and their API keys: create, issue, list, revoke, rotate, resolve.

Used by the admin API, the CLI and the request dependency alike, so every path writes the
same audit entries and enforces the same rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from backend.clock import Clock
from backend.console.scopes import ALL_SCOPES, normalize_scopes
from backend.db.models import ApiKey, Company
from backend.db.repositories import api_keys as key_repo
from backend.db.repositories import companies as company_repo
from backend.db.repositories.audit_log import append_audit_entry
from backend.db.session import Database
from backend.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from backend.tenancy.api_keys import generate_api_key, hash_api_key, looks_like_api_key
from backend.tenancy.audience import DEFAULT_AUDIENCE, Audience
from backend.tenancy.company_id import validate_company_id
from backend.tenancy.widget_tokens import MAX_TTL, WidgetClaims, WidgetTokenSigner

# Recording last use on every request would turn each read into a write; once a minute is
# precise enough to spot unused keys.
_LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class Tenant:
    """The company a request acts for, and the credential that proved it."""

    company_id: str
    api_key_id: uuid.UUID | None
    key_prefix: str | None
    via: str = "api_key"
    """``api_key`` or ``widget`` (a short-lived token minted with an API key)."""
    ticket_id: str | None = None
    """Set for widget tokens scoped to one ticket."""
    audience: Audience = DEFAULT_AUDIENCE
    """``agent`` (API keys, agent widget tokens) or ``customer`` (public knowledge only)."""
    scopes: frozenset[str] = ALL_SCOPES
    """An API key's scopes (``backend.console.scopes``); widget tokens are bound otherwise."""
    user_id: uuid.UUID | None = None
    """Set when ``via`` is ``console``: the signed-in company user."""
    role: str | None = None
    """The console user's role (owner, admin, agent)."""

    @property
    def actor(self) -> str:
        if self.via == "console":
            return f"user:{self.user_id}"
        return f"{self.via}:{self.key_prefix}"

    @property
    def is_customer(self) -> bool:
        return self.audience == "customer"


COMPANY_SUSPENDED = "company_suspended"


def company_suspended(company_id: str) -> Forbidden:
    return Forbidden(
        f"company {company_id!r} is suspended; contact the service operator",
        code=COMPANY_SUSPENDED,
    )


@dataclass(frozen=True)
class IssuedApiKey:
    key: ApiKey
    plaintext: str


async def create_company(
    db: Database,
    *,
    company_id: str,
    name: str,
    helpdesk_domain: str | None = None,
    settings: dict[str, Any] | None = None,
    actor: str,
) -> Company:
    validate_company_id(company_id)
    try:
        async with db.tenant_session(company_id) as session:
            company = await company_repo.insert_company(
                session,
                company_id=company_id,
                name=name,
                helpdesk_domain=helpdesk_domain,
                settings=settings,
            )
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="company.create",
                target=company_id,
                details={"name": name},
            )
    except IntegrityError as exc:
        raise Conflict(f"company {company_id!r} already exists", code="company_exists") from exc
    return company


async def get_company(db: Database, company_id: str) -> Company:
    async with db.tenant_session(company_id) as session:
        company = await company_repo.get_company(session, company_id)
    if company is None:
        raise NotFound(f"company {company_id!r} does not exist", code="company_not_found")
    return company


async def list_companies(db: Database, *, limit: int = 100, offset: int = 0) -> list[Company]:
    async with db.platform_session() as session:
        return await company_repo.list_companies(session, limit=limit, offset=offset)


async def issue_api_key(
    db: Database,
    company_id: str,
    *,
    name: str,
    actor: str,
    expires_at: datetime | None = None,
    scopes: frozenset[str] = ALL_SCOPES,
) -> IssuedApiKey:
    new_key = generate_api_key()
    async with db.tenant_session(company_id) as session:
        if await company_repo.get_company(session, company_id) is None:
            raise NotFound(f"company {company_id!r} does not exist", code="company_not_found")
        key = await key_repo.insert_api_key(
            session,
            company_id=company_id,
            name=name,
            prefix=new_key.prefix,
            key_hash=new_key.key_hash,
            created_by=actor,
            expires_at=expires_at,
            scopes=sorted(scopes),
        )
        await append_audit_entry(
            session,
            company_id=company_id,
            actor=actor,
            action="api_key.create",
            target=str(key.id),
            details={"name": name, "prefix": new_key.prefix, "scopes": sorted(scopes)},
        )
    return IssuedApiKey(key=key, plaintext=new_key.plaintext)


async def list_api_keys(
    db: Database, company_id: str, *, include_revoked: bool = False
) -> list[ApiKey]:
    async with db.tenant_session(company_id) as session:
        return await key_repo.list_api_keys(session, include_revoked=include_revoked)


async def revoke_api_key(
    db: Database, company_id: str, key_id: uuid.UUID, *, actor: str, clock: Clock
) -> ApiKey:
    async with db.tenant_session(company_id) as session:
        key = await key_repo.get_api_key(session, key_id)
        if key is None:
            raise NotFound("no such API key for this company", code="api_key_not_found")
        if key.revoked_at is None:
            await key_repo.mark_api_key_revoked(session, key_id, clock.now())
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="api_key.revoke",
                target=str(key_id),
                details={"prefix": key.prefix},
            )
            await session.refresh(key)
    return key


async def rotate_api_key(
    db: Database,
    company_id: str,
    key_id: uuid.UUID,
    *,
    actor: str,
    clock: Clock,
    grace: timedelta = timedelta(0),
) -> IssuedApiKey:
    """Issue a replacement for ``key_id``; the old key stops working after ``grace``."""
    new_key = generate_api_key()
    async with db.tenant_session(company_id) as session:
        old = await key_repo.get_api_key(session, key_id)
        if old is None or old.revoked_at is not None:
            raise NotFound("no such active API key for this company", code="api_key_not_found")
        key = await key_repo.insert_api_key(
            session,
            company_id=company_id,
            name=old.name,
            prefix=new_key.prefix,
            key_hash=new_key.key_hash,
            created_by=actor,
            expires_at=old.expires_at,
            scopes=list(old.scopes),
        )
        if grace > timedelta(0):
            old.expires_at = clock.now() + grace
        else:
            old.revoked_at = clock.now()
        await append_audit_entry(
            session,
            company_id=company_id,
            actor=actor,
            action="api_key.rotate",
            target=str(key_id),
            details={
                "old_prefix": old.prefix,
                "new_prefix": new_key.prefix,
                "grace_seconds": int(grace.total_seconds()),
            },
        )
    return IssuedApiKey(key=key, plaintext=new_key.plaintext)


async def authenticate_widget_token(
    db: Database, token: str, *, signer: WidgetTokenSigner, clock: Clock
) -> Tenant:
    """Resolve a widget token; it dies with the API key that minted it."""
    claims = signer.verify(token, now=clock.now())
    async with db.tenant_session(claims.company_id) as session:
        key = await key_repo.get_api_key(session, claims.api_key_id)
        company = await company_repo.get_company(session, claims.company_id)
    now = clock.now()
    if (
        key is None
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
    ):
        raise Unauthorized(
            "the API key behind this widget token is no longer valid", code="invalid_widget_token"
        )
    if company is not None and company.status != "active":
        raise company_suspended(claims.company_id)
    return Tenant(
        company_id=claims.company_id,
        api_key_id=key.id,
        key_prefix=key.prefix,
        via="widget",
        ticket_id=claims.ticket_id,
        audience=claims.audience,
    )


def mint_widget_token(
    tenant: Tenant,
    *,
    signer: WidgetTokenSigner,
    clock: Clock,
    ttl: timedelta,
    ticket_id: str | None,
    audience: Audience = DEFAULT_AUDIENCE,
) -> tuple[str, datetime]:
    if tenant.via != "api_key" or tenant.api_key_id is None:
        raise Forbidden("widget tokens are minted with an API key", code="api_key_required")
    if audience == "customer" and ticket_id is not None:
        # A customer token sees no tickets at all, so binding it to one would mean nothing.
        raise BadRequest(
            "a customer token cannot be scoped to a ticket", code="customer_token_ticket"
        )
    expires_at = clock.now() + min(ttl, MAX_TTL)
    token = signer.mint(
        WidgetClaims(
            company_id=tenant.company_id,
            api_key_id=tenant.api_key_id,
            expires_at=expires_at,
            ticket_id=ticket_id,
            audience=audience,
        )
    )
    return token, expires_at


async def authenticate_api_key(db: Database, plaintext: str, *, clock: Clock) -> Tenant:
    """Resolve a presented key to its company, or raise 401. Never trusts any header."""
    if not looks_like_api_key(plaintext):
        raise Unauthorized("unknown API key", code="invalid_api_key")
    key_hash = hash_api_key(plaintext)
    async with db.key_lookup_session(key_hash.hex()) as session:
        key = await key_repo.find_api_key_by_hash(session, key_hash)
    now = clock.now()
    if key is None:
        raise Unauthorized("unknown API key", code="invalid_api_key")
    if key.revoked_at is not None:
        raise Unauthorized("this API key was revoked", code="revoked_api_key")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized("this API key has expired", code="expired_api_key")
    async with db.tenant_session(key.company_id) as session:
        company = await company_repo.get_company(session, key.company_id)
        if company is not None and company.status != "active":
            raise company_suspended(key.company_id)
        if key.last_used_at is None or now - key.last_used_at >= _LAST_USED_RESOLUTION:
            await key_repo.touch_api_key(session, key.id, now)
    return Tenant(
        company_id=key.company_id,
        api_key_id=key.id,
        key_prefix=key.prefix,
        scopes=normalize_scopes(key.scopes),
    )
