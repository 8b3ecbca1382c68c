"""Console fixtures: a company with an API key and a signed-in console user of any role,
each user in a client of their own (so their cookies never mix)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import CompanyWithKey

PASSWORD = "correct horse battery staple"


@dataclass
class ConsoleUser:
    client: httpx.AsyncClient
    company: CompanyWithKey
    user: dict[str, object]
    csrf: str
    email: str

    @property
    def unsafe(self) -> dict[str, str]:
        """Headers for POST/PUT/PATCH/DELETE with the cookie."""
        return {"X-CSRF-Token": self.csrf}


SignIn = Callable[..., Awaitable[ConsoleUser]]


@pytest.fixture
async def console_clients(app: FastAPI) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def new() -> httpx.AsyncClient:
        # Each client comes from an address of its own, as separate browsers would: the
        # per-address sign-in limit then counts one test's attempts only.
        address = (
            f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
        )
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 50000)),
            base_url="http://testserver",
        )
        clients.append(c)
        return c

    yield new
    for c in clients:
        await c.aclose()


@pytest.fixture
def console_user(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    console_clients: Callable[[], httpx.AsyncClient],
) -> SignIn:
    """Invite (through the operator API) and sign in a user of ``role`` in ``company``."""

    async def make(company: CompanyWithKey, role: str = "owner") -> ConsoleUser:
        email = f"{role}-{secrets.token_hex(4)}@{company.company_id}.example"
        invited = await client.post(
            f"/admin/companies/{company.company_id}/users",
            json={"email": email, "name": role.title(), "role": role},
            headers=admin_headers,
        )
        assert invited.status_code == 201, invited.text
        own = console_clients()
        accepted = await own.post(
            "/console/api/invitations/accept",
            json={"token": invited.json()["invite_token"], "name": role, "password": PASSWORD},
        )
        assert accepted.status_code == 200, accepted.text
        body = accepted.json()
        return ConsoleUser(own, company, body["user"], body["csrf_token"], email)

    return make
