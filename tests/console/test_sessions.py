"""Console sign-in, sessions, cookies, CSRF and sign-out (issue 16)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.requests import Request

from backend.api.console import _cookie_secure
from backend.console.service import LoginLimiter, RateLimited
from backend.db.session import Database
from backend.tenancy.plans import build_limiter_storage
from tests.conftest import CompanyWithKey
from tests.console.conftest import PASSWORD, SignIn

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


async def test_sign_in_sets_a_strict_httponly_cookie_and_reads_back(
    make_company: MakeCompany,
    console_user: SignIn,
    console_clients: Callable[[], httpx.AsyncClient],
) -> None:
    company = await make_company()
    owner = await console_user(company, "owner")
    fresh = console_clients()
    response = await fresh.post(
        "/console/api/session", json={"email": owner.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["company_id"] == company.company_id
    assert body["user"]["role"] == "owner"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("hd_console=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    # The test environment is treated as loopback: no Secure flag (see the dev test below).
    assert "secure" not in lowered.replace("samesite", "")

    me = await fresh.get("/console/api/session")
    assert me.status_code == 200
    assert me.json()["user"]["id"] == owner.user["id"]
    assert me.json()["csrf_token"] == body["csrf_token"]
    # The console cookie works on /v1 without X-Company-ID.
    company_view = await fresh.get("/v1/company")
    assert company_view.status_code == 200, company_view.text
    assert company_view.json()["company"]["company_id"] == company.company_id


async def test_wrong_password_and_unknown_email_are_the_same_401(
    make_company: MakeCompany,
    console_user: SignIn,
    console_clients: Callable[[], httpx.AsyncClient],
) -> None:
    owner = await console_user(await make_company(), "owner")
    client = console_clients()
    wrong = await client.post(
        "/console/api/session", json={"email": owner.email, "password": "not the password"}
    )
    unknown = await client.post(
        "/console/api/session", json={"email": "nobody@nowhere.example", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"] == unknown.json()["error"] == "invalid_credentials"
    assert "set-cookie" not in wrong.headers
    assert (await client.get("/console/api/session")).json()["error"] == "not_signed_in"


async def test_sign_in_is_rate_limited_per_email_and_per_address(
    make_company: MakeCompany,
    console_user: SignIn,
    app: object,
    console_clients: Callable[[], httpx.AsyncClient],
) -> None:
    owner = await console_user(await make_company(), "owner")
    client = console_clients()
    attempts = app.state.helpdesk.settings.console_login_attempts  # type: ignore[attr-defined]
    statuses = []
    for _ in range(attempts + 1):
        r = await client.post(
            "/console/api/session", json={"email": owner.email, "password": "wrong password!"}
        )
        statuses.append(r.status_code)
    assert statuses[:attempts] == [401] * attempts
    assert statuses[-1] == 429
    # Even the right password is refused until the window passes.
    r = await client.post("/console/api/session", json={"email": owner.email, "password": PASSWORD})
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0
    # Another browser (address) is refused for this e-mail too; the first address is
    # refused for any e-mail.
    elsewhere = await console_clients().post(
        "/console/api/session", json={"email": owner.email, "password": PASSWORD}
    )
    assert elsewhere.status_code == 429
    other_email = await client.post(
        "/console/api/session", json={"email": "someone@else.example", "password": PASSWORD}
    )
    assert other_email.status_code == 429


async def test_unsafe_requests_need_the_csrf_token(
    make_company: MakeCompany, console_user: SignIn
) -> None:
    owner = await console_user(await make_company(), "owner")
    body = {"platform": "freshdesk", "name": "x", "settings": {}}
    refused = await owner.client.post("/v1/connectors", json=body)
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    wrong = await owner.client.post("/v1/connectors", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403 and wrong.json()["error"] == "csrf_failed"
    users = await owner.client.post(
        "/console/api/users", json={"email": "a@b.example", "role": "agent"}
    )
    assert users.status_code == 403 and users.json()["error"] == "csrf_failed"
    signout = await owner.client.delete("/console/api/session")
    assert signout.status_code == 403
    # With the token the same request passes the CSRF check (and fails validation instead).
    passed = await owner.client.post("/v1/connectors", json=body, headers=owner.unsafe)
    assert passed.status_code == 400, passed.text


async def test_sign_out_and_sign_out_everywhere(
    make_company: MakeCompany,
    console_user: SignIn,
    console_clients: Callable[[], httpx.AsyncClient],
    database: Database,
) -> None:
    company = await make_company()
    owner = await console_user(company, "owner")
    second = console_clients()
    again = await second.post(
        "/console/api/session", json={"email": owner.email, "password": PASSWORD}
    )
    csrf2 = again.json()["csrf_token"]
    third = console_clients()
    await third.post("/console/api/session", json={"email": owner.email, "password": PASSWORD})

    out = await second.delete("/console/api/session", headers={"X-CSRF-Token": csrf2})
    assert out.status_code == 204
    assert "hd_console=" in out.headers["set-cookie"]
    assert (await second.get("/console/api/session")).status_code == 401
    assert (await owner.client.get("/console/api/session")).status_code == 200

    everywhere = await owner.client.post("/console/api/session/revoke-all", headers=owner.unsafe)
    assert everywhere.status_code == 204
    for c in (owner.client, third):
        c.cookies.clear()  # the old value, replayed, must not work either
    third.cookies.set("hd_console", "x" * 43)
    stale = await third.get("/console/api/session")
    assert stale.status_code == 401
    log = await owner.client.get("/v1/audit-log")
    assert log.status_code == 401


async def test_revoked_cookie_value_is_refused_when_replayed(
    make_company: MakeCompany,
    console_user: SignIn,
    console_clients: Callable[[], httpx.AsyncClient],
) -> None:
    owner = await console_user(await make_company(), "owner")
    cookie = owner.client.cookies["hd_console"]
    await owner.client.post("/console/api/session/revoke-all", headers=owner.unsafe)
    replay = console_clients()
    replay.cookies.set("hd_console", cookie)
    r = await replay.get("/v1/company")
    assert r.status_code == 401 and r.json()["error"] == "not_signed_in"


async def test_audit_entries_name_the_user(make_company: MakeCompany, console_user: SignIn) -> None:
    company = await make_company()
    owner = await console_user(company, "owner")
    made = await owner.client.post(
        "/v1/company/api-keys", json={"name": "ci", "scopes": ["ingest"]}, headers=owner.unsafe
    )
    assert made.status_code == 201, made.text
    log = await owner.client.get("/v1/audit-log")
    assert log.status_code == 200
    actions = {(e["action"], e["actor"]) for e in log.json()}
    actor = f"user:{owner.user['id']}"
    assert ("api_key.create", actor) in actions
    assert ("console.sign_in", actor) in actions


def test_cookie_is_secure_except_on_loopback_outside_production() -> None:
    def request(host: str) -> Request:
        return Request(
            {
                "type": "http",
                "method": "POST",
                "scheme": "http",
                "path": "/console/api/session",
                "headers": [(b"host", host.encode())],
                "server": (host, 80),
                "query_string": b"",
            }
        )

    def state(environment: str) -> Any:
        return SimpleNamespace(settings=SimpleNamespace(environment=environment))

    assert _cookie_secure(request("127.0.0.1:8000"), state("production")) is True
    assert _cookie_secure(request("console.acme.example"), state("development")) is True
    assert _cookie_secure(request("127.0.0.1:8000"), state("development")) is False
    assert _cookie_secure(request("localhost:8000"), state("development")) is False


async def test_sign_in_limit_is_shared_through_redis() -> None:
    """Two API processes (two limiters on one Redis) count one budget per e-mail."""
    storage = build_limiter_storage("redis://127.0.0.1:6379/12", None)
    first = LoginLimiter(storage, attempts=2, window_seconds=60)
    second = LoginLimiter(storage, attempts=2, window_seconds=60)
    email = f"{secrets.token_hex(6)}@limit.example"
    await first.hit(email=email, client_ip=f"10.1.{secrets.randbelow(250)}.1")
    await second.hit(email=email, client_ip=f"10.2.{secrets.randbelow(250)}.1")
    with pytest.raises(RateLimited):
        await first.hit(email=email, client_ip=f"10.3.{secrets.randbelow(250)}.1")
    # Nothing personal in Redis: the e-mail is hashed in the key.
    redis = Redis.from_url("redis://127.0.0.1:6379/12")
    try:
        keys = [k async for k in redis.scan_iter(match="hd:*console-login*")]
    finally:
        await redis.aclose()
    assert keys and not any(email.encode() in k for k in keys)
