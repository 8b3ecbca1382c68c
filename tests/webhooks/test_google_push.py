"""Google Pub/Sub push authentication (backend.webhooks.google_push): the OIDC token Google
signs for each push, checked against keys served the way Google serves them (a JWKS with
``Cache-Control: max-age``, replayed through ``httpx.MockTransport`` behind the egress
policy), and tokens signed the way Google signs them (RS256, ``kid``, Google's claims) with
RSA keys made here. First the verifier on its own with a manual clock (claims, key rotation,
caching, an unreachable key endpoint), then deliveries through the HTTP API against real
Postgres (connector settings, the token on top of ``?token=``, another company's audience)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from backend.app import create_app
from backend.clock import ManualClock
from backend.config import Settings
from backend.egress import Egress, EgressPolicy, EgressRefused, StaticResolver
from backend.errors import AppError
from backend.webhooks.google_push import GOOGLE_KEYS_URL, GooglePushVerifier, PushIdentity
from tests.adapters.platform_replay import fixture_json, json_response
from tests.conftest import CompanyWithKey
from tests.webhooks.test_webhook_protocols import GOOGLE_REVIEW, pubsub_push

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
SERVICE_ACCOUNT = "pubsub-push@acme-reviews.iam.gserviceaccount.com"
AUDIENCE = "https://helpdesk.example/v1/webhooks/acme"
IDENTITY = PushIdentity(SERVICE_ACCOUNT, AUDIENCE)
GOOGLE_API_HOSTS = ("www.googleapis.com", "mybusiness.googleapis.com")


def signing_key(kid: str) -> RSAKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return RSAKey.import_key(pem, parameters={"kid": kid})


# Made once: 2048-bit keys take a while. "stranger" shares k1's key id but is not Google's.
KEYS = {name: signing_key(kid) for name, kid in [("k1", "k1"), ("k2", "k2"), ("stranger", "k1")]}


@dataclass
class GoogleKeys:
    """Google's JWKS endpoint (https://www.googleapis.com/oauth2/v3/certs)."""

    published: list[RSAKey]
    max_age_s: int = 3600
    failure: httpx.Response | Exception | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == GOOGLE_KEYS_URL, request.url
        self.requests.append(request)
        if isinstance(self.failure, Exception):
            raise self.failure
        if self.failure is not None:
            return self.failure
        keys = [
            {**key.as_dict(private=False), "alg": "RS256", "use": "sig"} for key in self.published
        ]
        return json_response(
            {"keys": keys},
            headers={"Cache-Control": f"public, max-age={self.max_age_s}, must-revalidate"},
        )


def google_token(key: RSAKey | OctKey, at: datetime, alg: str = "RS256", **claims: Any) -> str:
    """An ID token as Google mints one for a push; ``claims`` override (``None`` drops one)."""
    issued = int(at.timestamp())
    body = {
        "aud": AUDIENCE,
        "azp": "113774264463038321964",
        "email": SERVICE_ACCOUNT,
        "email_verified": True,
        "exp": issued + 3600,
        "iat": issued,
        "iss": "https://accounts.google.com",
        "sub": "113774264463038321964",
    }
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, body, key, algorithms=[alg])


def unsigned_token(at: datetime) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = json.loads(base64.urlsafe_b64decode(google_token(KEYS["k1"], at).split(".")[1] + "=="))
    return f"{part({'alg': 'none', 'kid': 'k1'})}.{part(claims)}."


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def google() -> GoogleKeys:
    return GoogleKeys(published=[KEYS["k1"]])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def verifier(google: GoogleKeys, clock: ManualClock) -> GooglePushVerifier:
    # A public address for Google's host: the policy runs unrelaxed in front of the replay.
    egress = Egress(
        EgressPolicy(),
        resolver=StaticResolver({"www.googleapis.com": "142.250.74.202"}),
        transport=httpx.MockTransport(google.handle),
    )
    return GooglePushVerifier(egress=egress, clock=clock)


async def answer(verifier: GooglePushVerifier, headers: dict[str, str]) -> str:
    try:
        await verifier.verify(headers, IDENTITY)
    except AppError as error:
        return f"{error.status_code} {error.code}"
    return "ok"


# -- the verifier ---------------------------------------------------------------------------


async def test_a_token_google_signed_for_this_subscription_is_accepted(
    verifier: GooglePushVerifier, google: GoogleKeys, clock: ManualClock
) -> None:
    assert await answer(verifier, bearer(google_token(KEYS["k1"], clock.now()))) == "ok"
    bare_issuer = google_token(KEYS["k1"], clock.now(), iss="accounts.google.com")
    assert await answer(verifier, bearer(bare_issuer)) == "ok"
    # RFC 7519 allows a list of audiences; Google sends one string, but either names us.
    listed = google_token(KEYS["k1"], clock.now(), aud=[AUDIENCE])
    assert await answer(verifier, bearer(listed)) == "ok"
    assert len(google.requests) == 1
    assert google.requests[0].headers["accept-encoding"] == "identity"  # through the egress


async def test_every_wrong_token_is_the_same_401(
    verifier: GooglePushVerifier, clock: ManualClock
) -> None:
    now = clock.now()
    at = int(now.timestamp())

    def signed(key: RSAKey | OctKey = KEYS["k1"], alg: str = "RS256", **claims: Any) -> Any:
        return bearer(google_token(key, now, alg, **claims))

    hmac_key = OctKey.import_key(b"k" * 32, {"kid": "k1"})
    wrong = {
        "no header": {},
        "basic, not bearer": {"authorization": "Basic cHVzaDpzZWNyZXQ="},
        "empty bearer": {"authorization": "Bearer "},
        "not a JWT": bearer("not-a-jwt"),
        "three dots of junk": bearer("a.b.c"),
        "oversized": bearer("a" * 10_000),
        "expired": signed(iat=at - 7200, exp=at - 3600),
        "issued in the future": signed(iat=at + 600),
        "no exp": signed(exp=None),
        "no iat": signed(iat=None),
        "another audience": signed(aud="https://helpdesk.example/v1/webhooks/globex"),
        "no audience": signed(aud=None),
        "another service account": signed(email="intruder@evil.iam.gserviceaccount.com"),
        "no email": signed(email=None),
        "email not verified": signed(email_verified=False),
        "email_verified as a string": signed(email_verified="true"),
        "email_verified missing": signed(email_verified=None),
        "another issuer": signed(iss="https://evil.example"),
        "no issuer": signed(iss=None),
        "signed by another key with Google's kid": signed(KEYS["stranger"]),
        "signature cut": bearer(google_token(KEYS["k1"], now)[:-8] + "AAAAAAAA"),
        "alg none": bearer(unsigned_token(now)),
        # HMAC keyed with something public: the classic algorithm confusion.
        "alg HS256": signed(hmac_key, "HS256"),
        "RS512 instead of RS256": signed(alg="RS512"),
    }
    answers = {case: await answer(verifier, headers) for case, headers in wrong.items()}
    assert answers == dict.fromkeys(wrong, "401 invalid_webhook_signature")


async def test_keys_are_kept_for_their_max_age_within_bounds(
    verifier: GooglePushVerifier, google: GoogleKeys, clock: ManualClock
) -> None:
    google.max_age_s = 300
    for _ in range(3):
        assert await answer(verifier, bearer(google_token(KEYS["k1"], clock.now()))) == "ok"
    assert len(google.requests) == 1
    clock.advance(299)
    assert await answer(verifier, bearer(google_token(KEYS["k1"], clock.now()))) == "ok"
    assert len(google.requests) == 1
    clock.advance(2)
    assert await answer(verifier, bearer(google_token(KEYS["k1"], clock.now()))) == "ok"
    assert len(google.requests) == 2

    # A max-age of 5 s is kept a minute; one of ten years, a day.
    google.max_age_s = 5
    clock.advance(301)
    await verifier.verify(bearer(google_token(KEYS["k1"], clock.now())), IDENTITY)
    clock.advance(59)
    await verifier.verify(bearer(google_token(KEYS["k1"], clock.now())), IDENTITY)
    assert len(google.requests) == 3
    google.max_age_s = 10 * 365 * 24 * 3600
    clock.advance(2)
    await verifier.verify(bearer(google_token(KEYS["k1"], clock.now())), IDENTITY)
    clock.advance(24 * 3600 - 1)
    await verifier.verify(bearer(google_token(KEYS["k1"], clock.now())), IDENTITY)
    assert len(google.requests) == 4
    clock.advance(2)
    await verifier.verify(bearer(google_token(KEYS["k1"], clock.now())), IDENTITY)
    assert len(google.requests) == 5


async def test_a_new_key_id_refetches_once_and_made_up_ones_no_more_than_once_a_minute(
    verifier: GooglePushVerifier, google: GoogleKeys, clock: ManualClock
) -> None:
    assert await answer(verifier, bearer(google_token(KEYS["k1"], clock.now()))) == "ok"
    # Google rotates: k2 is published and signs from now on, well before k1's max-age ends.
    google.published = [KEYS["k2"], KEYS["k1"]]
    clock.advance(120)
    assert await answer(verifier, bearer(google_token(KEYS["k2"], clock.now()))) == "ok"
    assert len(google.requests) == 2
    assert await answer(verifier, bearer(google_token(KEYS["k2"], clock.now()))) == "ok"
    assert len(google.requests) == 2

    # A key id Google never published: one refetch a minute at most, whatever the rate.
    forged = signing_key("k9")
    clock.advance(60)
    for _ in range(5):
        assert await answer(verifier, bearer(google_token(forged, clock.now()))) == (
            "401 invalid_webhook_signature"
        )
    assert len(google.requests) == 3
    clock.advance(30)
    assert await answer(verifier, bearer(google_token(forged, clock.now()))) == (
        "401 invalid_webhook_signature"
    )
    assert len(google.requests) == 3


async def test_deliveries_waiting_for_the_keys_share_one_fetch(
    verifier: GooglePushVerifier, google: GoogleKeys, clock: ManualClock
) -> None:
    token = google_token(KEYS["k1"], clock.now())
    answers = await asyncio.gather(*(answer(verifier, bearer(token)) for _ in range(10)))
    assert answers == ["ok"] * 10
    assert len(google.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, text="backend error"),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"keys": []}),
        httpx.Response(200, json={"keys": [{"kty": "RSA", "kid": "k1", "n": "!!", "e": "AQAB"}]}),
        httpx.Response(200, content=b'{"keys": [' + b" " * 70_000 + b"]}"),
        httpx.Response(302, headers={"Location": "https://elsewhere.example/certs"}),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
    ],
    ids=["5xx", "not-json", "no-keys", "bad-key", "too-large", "redirect", "timeout", "refused"],
)
async def test_unreadable_keys_refuse_the_delivery_with_a_503_then_recover(
    verifier: GooglePushVerifier,
    google: GoogleKeys,
    clock: ManualClock,
    failure: httpx.Response | Exception,
) -> None:
    """Not accepted (we cannot verify it) and not a 401: Pub/Sub retries non-2xx pushes, so
    a 503 with Retry-After brings the delivery back once Google's keys are readable."""
    google.failure = failure
    token = google_token(KEYS["k1"], clock.now())
    with pytest.raises(AppError) as refused:
        await verifier.verify(bearer(token), IDENTITY)
    assert (refused.value.status_code, refused.value.code) == (
        503,
        "webhook_verification_unavailable",
    )
    assert refused.value.headers == {"Retry-After": "60"}
    # Retries inside the minute are answered without asking Google again.
    clock.advance(30)
    assert await answer(verifier, bearer(token)) == "503 webhook_verification_unavailable"
    assert len(google.requests) == 1
    google.failure = None
    clock.advance(31)
    assert await answer(verifier, bearer(token)) == "ok"
    assert len(google.requests) == 2


def test_the_keys_url_passes_the_egress_policy() -> None:
    egress = Egress(EgressPolicy())
    for url in ("https://evil.example/certs", "http://www.googleapis.com/oauth2/v3/certs"):
        with pytest.raises(EgressRefused):
            GooglePushVerifier(egress=egress, clock=ManualClock(), keys_url=url)


# -- through the API ------------------------------------------------------------------------


@pytest.fixture
async def app(settings: Settings, google: GoogleKeys) -> AsyncIterator[FastAPI]:
    review = fixture_json("reviews/google_reviews_page1.json")["reviews"][0]

    def platforms(request: httpx.Request) -> httpx.Response:
        if request.url.host == "www.googleapis.com":
            return google.handle(request)
        assert request.url.path == f"/v4/{GOOGLE_REVIEW}", request.url
        return json_response(review)

    application = create_app(
        settings.model_copy(update={"webhook_coalesce_s": 0.05}),
        http_transport=httpx.MockTransport(platforms),
        egress_resolver=StaticResolver(dict.fromkeys(GOOGLE_API_HOSTS, "127.0.0.1")),
    )
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


def google_connector(**push: str) -> dict[str, Any]:
    return {
        "platform": "google_business",
        "name": "Reviews",
        "settings": {"account": "accounts/104211111111111111111", **push},
        "credentials": {"access_token": "ya29.token"},
    }


async def pushing_connector(
    client: httpx.AsyncClient, company: CompanyWithKey
) -> tuple[str, str, str]:
    """A connector whose pushes must carry Google's token: (id, secret, audience)."""
    created = await client.post("/v1/connectors", headers=company.headers, json=google_connector())
    assert created.status_code == 201, created.text
    connector_id = created.json()["id"]
    audience = f"https://helpdesk.example/v1/webhooks/{connector_id}"
    settings = google_connector(push_service_account=SERVICE_ACCOUNT, push_audience=audience)
    updated = await client.patch(
        f"/v1/connectors/{connector_id}",
        headers=company.headers,
        json={"settings": settings["settings"]},
    )
    assert updated.status_code == 200, updated.text
    issued = await client.post(
        f"/v1/connectors/{connector_id}/webhook-secret", headers=company.headers
    )
    assert issued.status_code == 201, issued.text
    return connector_id, issued.json()["secret"], audience


def review_push(n: int = 1) -> dict[str, Any]:
    return pubsub_push(
        {"type": "NEW_REVIEW", "review": GOOGLE_REVIEW, "location": "accounts/1/locations/2"},
        message_id=f"20704436013115{n:02d}",
    )


def minted_now(audience: str, **claims: Any) -> str:
    return google_token(KEYS["k1"], datetime.now(UTC), aud=audience, **claims)


async def test_push_identity_settings_go_together(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    halves = [
        {"push_service_account": SERVICE_ACCOUNT},
        {"push_audience": AUDIENCE},
        {"push_service_account": "not an e-mail", "push_audience": AUDIENCE},
        {"push_service_account": SERVICE_ACCOUNT, "push_audience": ""},
    ]
    for push in halves:
        refused = await client.post(
            "/v1/connectors", headers=acme.headers, json=google_connector(**push)
        )
        assert refused.status_code == 400, push
        assert refused.json()["error"] == "invalid_connector_settings"
    created = await client.post("/v1/connectors", headers=acme.headers, json=google_connector())
    assert created.status_code == 201, created.text
    connector = f"/v1/connectors/{created.json()['id']}"
    half = await client.patch(
        connector,
        headers=acme.headers,
        json={"settings": google_connector(push_audience=AUDIENCE)["settings"]},
    )
    assert (half.status_code, half.json()["error"]) == (400, "invalid_connector_settings")
    assert "together" in json.dumps(half.json()["detail"])
    both = google_connector(push_service_account=SERVICE_ACCOUNT, push_audience=AUDIENCE)
    whole = await client.patch(connector, headers=acme.headers, json={"settings": both["settings"]})
    assert whole.status_code == 200, whole.text
    assert whole.json()["settings"]["push_audience"] == AUDIENCE


async def test_a_push_needs_google_token_and_the_connector_secret(
    client: httpx.AsyncClient, google: GoogleKeys, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    connector_id, secret, audience = await pushing_connector(client, acme)
    hook = f"/v1/webhooks/{connector_id}"
    signed = bearer(minted_now(audience))

    refused = {
        "no token": await client.post(hook, params={"token": secret}, json=review_push()),
        "token, no secret": await client.post(hook, headers=signed, json=review_push()),
        "token, wrong secret": await client.post(
            hook, params={"token": "x" * 43}, headers=signed, json=review_push()
        ),
        "token for another audience": await client.post(
            hook,
            params={"token": secret},
            headers=bearer(minted_now(AUDIENCE)),
            json=review_push(),
        ),
        "expired token": await client.post(
            hook,
            params={"token": secret},
            headers=bearer(minted_now(audience, exp=int(time.time()) - 3600)),
            json=review_push(),
        ),
    }
    for case, response in refused.items():
        assert response.status_code == 401, case
        assert response.json()["error"] == "invalid_webhook_signature", case

    accepted = await client.post(hook, params={"token": secret}, headers=signed, json=review_push())
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"items": 1, "duplicates": 0, "queued": 1}
    assert len(google.requests) == 1  # kept for the deliveries that follow


async def test_another_companys_connector_refuses_a_token_minted_for_this_one(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    """Both connectors trust the same service account (one Pub/Sub project may push for
    several); only the audience tells their pushes apart, and each has its own."""
    acme, globex = await make_company("acme"), await make_company("globex")
    _, _, acme_audience = await pushing_connector(client, acme)
    globex_id, globex_secret, globex_audience = await pushing_connector(client, globex)
    hook = f"/v1/webhooks/{globex_id}"
    for_acme = await client.post(
        hook,
        params={"token": globex_secret},
        headers=bearer(minted_now(acme_audience)),
        json=review_push(),
    )
    assert (for_acme.status_code, for_acme.json()["error"]) == (401, "invalid_webhook_signature")
    for_globex = await client.post(
        hook,
        params={"token": globex_secret},
        headers=bearer(minted_now(globex_audience)),
        json=review_push(),
    )
    assert for_globex.status_code == 202, for_globex.text


async def test_a_connector_without_push_identity_still_takes_the_secret_alone(
    client: httpx.AsyncClient, google: GoogleKeys, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    created = await client.post("/v1/connectors", headers=acme.headers, json=google_connector())
    connector_id = created.json()["id"]
    issued = await client.post(
        f"/v1/connectors/{connector_id}/webhook-secret", headers=acme.headers
    )
    secret = issued.json()["secret"]
    answer = await client.post(
        f"/v1/webhooks/{connector_id}", params={"token": secret}, json=review_push()
    )
    assert answer.status_code == 202, answer.text
    assert google.requests == []  # nothing to verify, nothing fetched


async def test_unreachable_google_keys_answer_503_and_nothing_is_queued(
    client: httpx.AsyncClient, google: GoogleKeys, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    connector_id, secret, audience = await pushing_connector(client, acme)
    google.failure = httpx.Response(500, text="backend error")
    answer = await client.post(
        f"/v1/webhooks/{connector_id}",
        params={"token": secret},
        headers=bearer(minted_now(audience)),
        json=review_push(),
    )
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "webhook_verification_unavailable"
    assert answer.headers["retry-after"] == "60"
    assert "backend error" not in answer.text
