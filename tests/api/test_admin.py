"""Platform administration: companies and API key lifecycle through the admin API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx

from backend.config import Settings
from tests.conftest import CompanyWithKey, new_company_id

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


async def test_admin_requires_the_admin_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/companies")).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    response = await client.get("/admin/companies", headers=bad)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_admin_token"


async def test_api_key_does_not_open_the_admin_api(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    assert (await client.get("/admin/companies", headers=acme.headers)).status_code == 401


async def test_admin_disabled_without_token(settings: Settings) -> None:
    from asgi_lifespan import LifespanManager

    from backend.app import create_app

    app = create_app(settings.model_copy(update={"admin_token": None}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            response = await c.get("/admin/companies", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403
    assert response.json()["error"] == "admin_disabled"


async def test_company_and_key_lifecycle(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    company_id = new_company_id("life")
    created = await client.post(
        "/admin/companies",
        headers=admin_headers,
        json={"company_id": company_id, "name": "Lifecycle Ltd"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["knowledge_generation"] == 0

    duplicate = await client.post(
        "/admin/companies", headers=admin_headers, json={"company_id": company_id, "name": "x"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "company_exists"

    listed = await client.get("/admin/companies?limit=1000", headers=admin_headers)
    assert company_id in {c["company_id"] for c in listed.json()}

    issued = await client.post(
        f"/admin/companies/{company_id}/api-keys", headers=admin_headers, json={"name": "crm"}
    )
    assert issued.status_code == 201
    secret, key = issued.json()["api_key"], issued.json()["key"]
    assert secret.startswith(key["prefix"]) and len(secret) > len(key["prefix"]) + 20
    tenant_headers = {"Authorization": f"Bearer {secret}", "X-Company-ID": company_id}
    assert (await client.get("/v1/company", headers=tenant_headers)).status_code == 200

    keys = (
        await client.get(f"/admin/companies/{company_id}/api-keys", headers=admin_headers)
    ).json()
    assert [k["prefix"] for k in keys] == [key["prefix"]]
    assert "api_key" not in keys[0] and "key_hash" not in keys[0]
    assert keys[0]["last_used_at"] is not None

    rotated = await client.post(
        f"/admin/companies/{company_id}/api-keys/{key['id']}/rotate",
        headers=admin_headers,
        json={},
    )
    assert rotated.status_code == 201
    new_secret = rotated.json()["api_key"]
    assert new_secret != secret
    old = await client.get("/v1/company", headers=tenant_headers)
    assert old.status_code == 401 and old.json()["error"] == "revoked_api_key"
    new_headers = {"Authorization": f"Bearer {new_secret}", "X-Company-ID": company_id}
    assert (await client.get("/v1/company", headers=new_headers)).status_code == 200

    new_id = rotated.json()["key"]["id"]
    revoked = await client.post(
        f"/admin/companies/{company_id}/api-keys/{new_id}/revoke", headers=admin_headers
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await client.get("/v1/company", headers=new_headers)).status_code == 401

    audit = await client.get("/v1/audit-log", headers=new_headers)
    assert audit.status_code == 401  # every key is gone; the audit trail is the admin's now


async def test_rotation_with_grace_keeps_old_key_until_expiry(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_company: MakeCompany
) -> None:
    acme = await make_company("grace")
    rotated = await client.post(
        f"/admin/companies/{acme.company_id}/api-keys/{acme.key_id}/rotate",
        headers=admin_headers,
        json={"grace_seconds": 3600},
    )
    assert rotated.status_code == 201
    assert (await client.get("/v1/company", headers=acme.headers)).status_code == 200
    keys = (
        await client.get(f"/admin/companies/{acme.company_id}/api-keys", headers=admin_headers)
    ).json()
    old = next(k for k in keys if k["id"] == acme.key_id)
    expires = datetime.fromisoformat(old["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)


async def test_expired_key_is_401(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_company: MakeCompany
) -> None:
    acme = await make_company("exp")
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    issued = await client.post(
        f"/admin/companies/{acme.company_id}/api-keys",
        headers=admin_headers,
        json={"name": "old", "expires_at": past},
    )
    headers = {
        "Authorization": f"Bearer {issued.json()['api_key']}",
        "X-Company-ID": acme.company_id,
    }
    response = await client.get("/v1/company", headers=headers)
    assert response.status_code == 401 and response.json()["error"] == "expired_api_key"


async def test_company_id_derived_from_domain(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    sub = new_company_id("dom")
    response = await client.post(
        "/admin/companies",
        headers=admin_headers,
        json={"name": "Derived", "helpdesk_domain": f"https://{sub}.freshdesk.com/"},
    )
    assert response.status_code == 201
    assert response.json()["company_id"] == sub


async def test_bad_admin_input_is_a_clear_4xx(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_company: MakeCompany
) -> None:
    cases = [
        ("/admin/companies", {"company_id": "Bad_Id", "name": "x"}, 422, "validation_error"),
        ("/admin/companies", {"name": "no id or domain"}, 422, "validation_error"),
        ("/admin/companies", {"name": "x", "helpdesk_domain": "..."}, 400, "invalid_company_id"),
        ("/admin/companies/nope-" + "0" * 8 + "/api-keys", {"name": "k"}, 404, "company_not_found"),
    ]
    for path, body, status, code in cases:
        response = await client.post(path, headers=admin_headers, json=body)
        assert (response.status_code, response.json()["error"]) == (status, code), response.text
    acme = await make_company("bad")
    response = await client.post(
        f"/admin/companies/{acme.company_id}/api-keys/not-a-uuid/revoke", headers=admin_headers
    )
    assert response.status_code == 422
    other = await make_company("other")
    # A key id of another company is not found under this company (RLS hides it).
    response = await client.post(
        f"/admin/companies/{acme.company_id}/api-keys/{other.key_id}/revoke",
        headers=admin_headers,
    )
    assert response.status_code == 404
    assert (await client.get("/v1/company", headers=other.headers)).status_code == 200
