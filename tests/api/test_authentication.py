"""The key/header matrix of DESIGN.md §2, through the HTTP API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from backend.clock import SystemClock
from backend.db.session import Database
from backend.tenancy import service
from backend.tenancy.scope import open_rows
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert body["detail"]


async def test_valid_key_and_matching_header(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    response = await client.get("/v1/company", headers=acme.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["company"]["company_id"] == acme.company_id
    assert acme.api_key.startswith(body["api_key_prefix"])


async def test_missing_key_is_401(client: httpx.AsyncClient, make_company: MakeCompany) -> None:
    acme = await make_company("acme")
    response = await client.get("/v1/company", headers={"X-Company-ID": acme.company_id})
    assert_error(response, 401, "missing_api_key")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer hdk_" + "A" * 43, "Bearer not-a-key", "Basic dXNlcjpwYXNz", "Bearer "],
)
async def test_unknown_or_malformed_key_is_401(
    client: httpx.AsyncClient, make_company: MakeCompany, authorization: str
) -> None:
    acme = await make_company("acme")
    response = await client.get(
        "/v1/company", headers={"Authorization": authorization, "X-Company-ID": acme.company_id}
    )
    assert response.status_code == 401
    assert response.json()["error"] in {"invalid_api_key", "missing_api_key"}


async def test_revoked_key_is_401(
    client: httpx.AsyncClient, make_company: MakeCompany, database: Database
) -> None:
    import uuid

    acme = await make_company("acme")
    async with open_rows(database, acme.company_id) as rows:
        await service.revoke_api_key(
            rows, uuid.UUID(acme.key_id), actor="test", clock=SystemClock()
        )
    assert_error(await client.get("/v1/company", headers=acme.headers), 401, "revoked_api_key")


async def test_key_of_another_company_is_403(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    headers = {"Authorization": f"Bearer {acme.api_key}", "X-Company-ID": globex.company_id}
    assert_error(await client.get("/v1/company", headers=headers), 403, "company_mismatch")


async def test_header_alone_grants_nothing(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    for path in ("/v1/company", "/v1/audit-log"):
        response = await client.get(path, headers={"X-Company-ID": acme.company_id})
        assert response.status_code == 401


@pytest.mark.parametrize("company_id", ["Acme", "acme_inc", "-acme", "a" * 64, "acme.com", ""])
async def test_malformed_company_id_is_400(
    client: httpx.AsyncClient, make_company: MakeCompany, company_id: str
) -> None:
    acme = await make_company("acme")
    headers = {"Authorization": f"Bearer {acme.api_key}", "X-Company-ID": company_id}
    assert_error(await client.get("/v1/company", headers=headers), 400, "invalid_company_id")


async def test_missing_company_header_is_400(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    headers = {"Authorization": f"Bearer {acme.api_key}"}
    assert_error(await client.get("/v1/company", headers=headers), 400, "missing_company_id")


async def test_last_used_is_recorded(
    client: httpx.AsyncClient, make_company: MakeCompany, database: Database
) -> None:
    acme = await make_company("acme")
    async with open_rows(database, acme.company_id) as rows:
        (before,) = await service.list_api_keys(rows)
    assert before.last_used_at is None
    assert (await client.get("/v1/company", headers=acme.headers)).status_code == 200
    async with open_rows(database, acme.company_id) as rows:
        (after,) = await service.list_api_keys(rows)
    assert after.last_used_at is not None


async def test_audit_log_is_per_company(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    entries = (await client.get("/v1/audit-log", headers=acme.headers)).json()
    assert {e["action"] for e in entries} == {"company.create", "api_key.create"}
    assert all(globex.company_id not in (e["target"] or "") for e in entries)
