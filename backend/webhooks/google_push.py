"""Google Pub/Sub push authentication: the OIDC token Google signs for each push.

A push subscription with authentication on sends ``Authorization: Bearer <JWT>``
(https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions): a Google ID token,
signed RS256, whose claims name Google as issuer (``iss``), the audience configured on the
subscription (``aud``) and the subscription's service account (``email``, with
``email_verified: true``). Google publishes its public keys as a JWKS at
``https://www.googleapis.com/oauth2/v3/certs``, rotated, with ``Cache-Control: max-age``.

:class:`GooglePushVerifier` checks a token against the identity a connector expects
(:class:`PushIdentity`), with joserfc doing the JWS/JWT work. The keys are fetched through
the egress policy (the one outbound path; the URL is the operator's, never a tenant's),
bounded in size and time, and kept for their max-age (one minute to one day). A token whose
key id the kept set lacks (Google rotated) makes one refetch, at most one a minute, so
made-up key ids cannot make us hammer Google.

Answers: anything wrong with the token is 401 ``invalid_webhook_signature``, the answer to
every other signature failure. Keys that cannot be fetched are 503
``webhook_verification_unavailable``: a delivery we cannot verify is not accepted, and
Pub/Sub retries anything but a 2xx (with backoff), so it comes back once the keys are
readable instead of being dropped as a 401 would suggest.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.jwt import JWTClaimsRegistry

from backend.adapters.reviews import GoogleBusinessSettings
from backend.clock import Clock
from backend.egress import Egress
from backend.errors import Unavailable
from backend.webhooks.platforms import bad_signature

_log = structlog.get_logger("helpdesk.webhooks")

GOOGLE_KEYS_URL = "https://www.googleapis.com/oauth2/v3/certs"
KEYS_EGRESS_PLATFORM = "google_signing_keys"
"""The egress policy's name for Google's key host (:data:`backend.egress.PLATFORM_HOSTS`)."""
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
ALGORITHM = "RS256"

MIN_KEYS_AGE_S = 60.0
MAX_KEYS_AGE_S = 24 * 3600.0
REFETCH_INTERVAL_S = 60.0
"""No two fetches of the keys start closer together than this (rotation, failures)."""
MAX_KEYS_BYTES = 64 * 1024
"""Google's JWKS is about 1.5 KiB; anything near this is not it."""
FETCH_TIMEOUT_S = 5.0
CLOCK_SKEW_S = 60
"""Leeway on ``exp`` and ``iat`` for the difference between Google's clock and ours."""
MAX_TOKEN_CHARS = 8192

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})\"?", re.IGNORECASE)


@dataclass(frozen=True)
class PushIdentity:
    """Who may push for one connector: the subscription's service account and audience."""

    service_account: str
    audience: str


def expected_push_identity(platform: str, settings: Mapping[str, Any]) -> PushIdentity | None:
    """The identity a connector's pushes must prove, or ``None`` when it asks for none."""
    if platform != "google_business":
        return None
    valid = GoogleBusinessSettings.model_validate(settings)
    if valid.push_service_account is None or valid.push_audience is None:
        return None
    return PushIdentity(valid.push_service_account, valid.push_audience)


def verification_unavailable() -> Unavailable:
    return Unavailable(
        "the push cannot be verified now (Google's signing keys are unreachable); retry",
        code="webhook_verification_unavailable",
        retry_after_s=int(REFETCH_INTERVAL_S),
    )


class _KeysUnreadable(Exception):
    """The key endpoint answered something that is not a usable JWKS."""


def _bearer_token(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    token = value.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return token


def _max_age_s(cache_control: str | None) -> float:
    match = _MAX_AGE.search(cache_control or "")
    age = float(match.group(1)) if match else MIN_KEYS_AGE_S
    return min(MAX_KEYS_AGE_S, max(MIN_KEYS_AGE_S, age))


def _rsa_keys(document: Any) -> dict[str, RSAKey]:
    """The JWKS's RS256 signing keys by key id; other keys (types, uses) are left out."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _KeysUnreadable("not a JWKS")
    keys: dict[str, RSAKey] = {}
    for entry in document["keys"]:
        if (
            not isinstance(entry, dict)
            or entry.get("kty") != "RSA"
            or not isinstance(entry.get("kid"), str)
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", ALGORITHM) != ALGORITHM
        ):
            continue
        keys[entry["kid"]] = RSAKey.import_key(entry)
    if not keys:
        raise _KeysUnreadable("no RS256 keys")
    return keys


class GooglePushVerifier:
    """Verifies Pub/Sub push tokens; one per process (it keeps Google's keys)."""

    def __init__(self, *, egress: Egress, clock: Clock, keys_url: str = GOOGLE_KEYS_URL) -> None:
        self.egress = egress
        self.clock = clock
        self.keys_url = keys_url
        # Checked now: a keys URL the policy refuses is a start-up error, not a 503 later.
        self._scope = egress.policy.scope(KEYS_EGRESS_PLATFORM, [keys_url])
        self._keys: dict[str, RSAKey] = {}
        self._fresh_until = float("-inf")
        self._last_fetch: float | None = None
        self._fetching = asyncio.Lock()

    async def verify(self, headers: Mapping[str, str], expected: PushIdentity) -> None:
        """Return when the request carries a valid Google token for ``expected``; raise 401
        ``invalid_webhook_signature`` otherwise, 503 when the keys cannot be fetched."""
        token = _bearer_token(headers)
        if token is None:
            raise bad_signature()
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError):
            raise bad_signature() from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise bad_signature()
        key = await self._key(kid)
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
            JWTClaimsRegistry(
                now=int(self.clock.now().timestamp()),
                leeway=CLOCK_SKEW_S,
                iss={"essential": True, "values": list(GOOGLE_ISSUERS)},
                aud={"essential": True, "value": expected.audience},
                email={"essential": True, "value": expected.service_account},
                exp={"essential": True},
                iat={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError):
            raise bad_signature() from None
        # Strictly the boolean: the registry's equality would also take 1.
        if claims.get("email_verified") is not True:
            raise bad_signature()

    # -- keys -------------------------------------------------------------------------------

    def _kept_key(self, kid: str) -> RSAKey | None:
        """The key for ``kid`` if the kept set is fresh and has it; ``None`` when a fetch is
        due; 401 or 503 when one is due but the last was under a minute ago."""
        now = self.clock.monotonic()
        fresh = now < self._fresh_until
        if fresh and kid in self._keys:
            return self._keys[kid]
        if self._last_fetch is not None and now - self._last_fetch < REFETCH_INTERVAL_S:
            # Fresh keys without this kid: not one of Google's. No fresh keys: the last
            # fetch failed.
            raise bad_signature() if fresh else verification_unavailable()
        return None

    async def _key(self, kid: str) -> RSAKey:
        key = self._kept_key(kid)
        if key is not None:
            return key
        async with self._fetching:
            # Deliveries that waited here find what the one before them fetched.
            key = self._kept_key(kid)
            if key is None:
                await self._fetch()
                key = self._keys.get(kid)
        if key is None:
            raise bad_signature()
        return key

    async def _fetch(self) -> None:
        started = self.clock.monotonic()
        self._last_fetch = started
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_S):
                body, max_age = await self._download()
            keys = _rsa_keys(json.loads(body))
        except (httpx.HTTPError, TimeoutError, ValueError, JoseError, _KeysUnreadable) as exc:
            # The reason is ours or an exception's class name: nothing Google sent is echoed.
            reason = str(exc) if isinstance(exc, _KeysUnreadable) else type(exc).__name__
            _log.warning("google signing keys unreadable", reason=reason)
            raise verification_unavailable() from None
        self._keys = keys
        self._fresh_until = started + max_age

    async def _download(self) -> tuple[bytes, float]:
        """The JWKS as sent (at most :data:`MAX_KEYS_BYTES`) and for how long to keep it.
        The egress transport also refuses redirects and compressed bodies."""
        async with (
            self.egress.client(self._scope) as client,
            client.stream("GET", self.keys_url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise _KeysUnreadable(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_KEYS_BYTES:
                    raise _KeysUnreadable("too large")
            return bytes(body), _max_age_s(response.headers.get("cache-control"))
