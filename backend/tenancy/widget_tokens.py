"""Short-lived widget tokens: what the browser holds instead of an API key.

A token is ``hdw_<payload>.<signature>``: the payload (company, optional ticket, audience, the
minting key's id, expiry) is base64url JSON and the signature is HMAC-SHA256 over it with a server
secret. Tokens are scoped to one company (and optionally one ticket), expire within an hour,
and die with the API key that minted them (checked on each use).

The audience claim (``a``: ``agent`` or ``customer``, see :mod:`backend.tenancy.audience`)
was added later; a token without it is an ``agent`` token, which is what it was minted as.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from backend.errors import Unauthorized
from backend.tenancy.audience import AUDIENCES, DEFAULT_AUDIENCE, Audience

TOKEN_SCHEME = "hdw_"  # noqa: S105 - a visible prefix, not a secret
MAX_TTL = timedelta(hours=1)
SIGNING_KEY_PURPOSE = b"widget token signing v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class WidgetClaims:
    company_id: str
    api_key_id: uuid.UUID
    expires_at: datetime
    ticket_id: str | None = None
    audience: Audience = DEFAULT_AUDIENCE


class WidgetTokenSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("widget token secret must be at least 32 bytes")
        self._secret = secret

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def mint(self, claims: WidgetClaims) -> str:
        payload = _b64(
            orjson.dumps(
                {
                    "c": claims.company_id,
                    "k": str(claims.api_key_id),
                    "t": claims.ticket_id,
                    "a": claims.audience,
                    "e": int(claims.expires_at.timestamp()),
                }
            )
        )
        return f"{TOKEN_SCHEME}{payload}.{self._sign(payload)}"

    def verify(self, token: str, *, now: datetime) -> WidgetClaims:
        # Non-ASCII text can be no token of ours (and would not encode for the HMAC).
        if not token.isascii() or not token.startswith(TOKEN_SCHEME) or token.count(".") != 1:
            raise Unauthorized("malformed widget token", code="invalid_widget_token")
        payload, signature = token[len(TOKEN_SCHEME) :].split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise Unauthorized(
                "widget token signature does not verify", code="invalid_widget_token"
            )
        try:
            data = orjson.loads(_unb64(payload))
            audience = data.get("a", DEFAULT_AUDIENCE)
            if audience not in AUDIENCES:
                raise ValueError("unknown audience")
            ticket = data.get("t")
            claims = WidgetClaims(
                company_id=str(data["c"]),
                api_key_id=uuid.UUID(data["k"]),
                ticket_id=None if ticket is None else str(ticket),
                expires_at=datetime.fromtimestamp(int(data["e"]), tz=now.tzinfo),
                audience=audience,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise Unauthorized("malformed widget token", code="invalid_widget_token") from exc
        if claims.expires_at <= now:
            raise Unauthorized("widget token expired", code="expired_widget_token")
        return claims
