"""Who may do what through the console and with scoped keys, and what another company or a
customer-audience widget token reaches (issue 16)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx

from backend.db.session import Database
from backend.ingest.sync import SyncService
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from tests.conftest import CompanyWithKey
from tests.console.conftest import PASSWORD, SignIn

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
FILE_IMPORT = {"platform": "article_folder", "name": "Articles"}


async def test_invite_accept_and_role_limits(
    make_company: MakeCompany,
    console_user: SignIn,
    console_clients: Callable[[], httpx.AsyncClient],
) -> None:
    company = await make_company()
    owner = await console_user(company, "owner")
    invited = await owner.client.post(
        "/console/api/users",
        json={"email": "Admin.Person@acme.example", "name": "Ada", "role": "admin"},
        headers=owner.unsafe,
    )
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert body["user"]["email"] == "admin.person@acme.example"
    assert body["invite_url"] == f"/console/#/accept?token={body['invite_token']}"
    listed = (await owner.client.get("/console/api/users")).json()
    assert {u["email"]: u["invitation_pending"] for u in listed}[
        "admin.person@acme.example"
    ] is True
    # An invited user cannot sign in before accepting.
    browser = console_clients()
    early = await browser.post(
        "/console/api/session", json={"email": "admin.person@acme.example", "password": PASSWORD}
    )
    assert early.status_code == 401
    accepted = await browser.post(
        "/console/api/invitations/accept",
        json={"token": body["invite_token"], "name": "Ada L.", "password": PASSWORD},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["user"]["role"] == "admin"
    admin_csrf = {"X-CSRF-Token": accepted.json()["csrf_token"]}
    reused = await console_clients().post(
        "/console/api/invitations/accept",
        json={"token": body["invite_token"], "name": "x", "password": PASSWORD},
    )
    assert reused.status_code == 404 and reused.json()["error"] == "invitation_not_found"

    # An admin invites agents, not admins or owners, and cannot touch the owner.
    for role in ("owner", "admin"):
        refused = await browser.post(
            "/console/api/users",
            json={"email": f"{role}2@acme.example", "role": role},
            headers=admin_csrf,
        )
        assert refused.status_code == 403, refused.text
    agent_invite = await browser.post(
        "/console/api/users",
        json={"email": "agent@acme.example", "role": "agent"},
        headers=admin_csrf,
    )
    assert agent_invite.status_code == 201
    demote_owner = await browser.patch(
        f"/console/api/users/{owner.user['id']}", json={"role": "agent"}, headers=admin_csrf
    )
    assert demote_owner.status_code == 403
    # The last owner stays an owner.
    last = await owner.client.patch(
        f"/console/api/users/{owner.user['id']}", json={"role": "admin"}, headers=owner.unsafe
    )
    assert last.status_code == 409 and last.json()["error"] == "last_owner"


async def test_agent_may_use_the_assistant_but_not_manage(
    make_company: MakeCompany, console_user: SignIn
) -> None:
    company = await make_company()
    agent = await console_user(company, "agent")
    assert (await agent.client.get("/v1/company")).status_code == 200
    assert (await agent.client.get("/v1/documents")).status_code == 200
    search = await agent.client.post(
        "/v1/search", json={"query": "reset password"}, headers=agent.unsafe
    )
    assert search.status_code == 200, search.text
    for method, path, body in [
        ("POST", "/v1/connectors", {"platform": "freshdesk", "name": "x", "settings": {}}),
        ("GET", "/v1/connectors", None),
        ("GET", "/v1/connectors/kinds", None),
        ("GET", "/v1/company/settings", None),
        ("PATCH", "/v1/company/settings", {"pii_redaction": True}),
        ("GET", "/v1/company/api-keys", None),
        ("POST", "/v1/company/api-keys", {"name": "k", "scopes": ["admin"]}),
        ("GET", "/v1/audit-log", None),
        ("DELETE", f"/v1/documents/{uuid.uuid4()}", None),
    ]:
        response = await agent.client.request(method, path, json=body, headers=agent.unsafe)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"] == "role_forbidden"
    users = await agent.client.get("/console/api/users")
    assert users.status_code == 403
    invite = await agent.client.post(
        "/console/api/users", json={"email": "x@y.example", "role": "agent"}, headers=agent.unsafe
    )
    assert invite.status_code == 403


async def test_api_key_scopes(
    make_company: MakeCompany, console_user: SignIn, client: httpx.AsyncClient
) -> None:
    company = await make_company()
    owner = await console_user(company, "owner")

    async def key_with(*scopes: str) -> dict[str, str]:
        made = await owner.client.post(
            "/v1/company/api-keys",
            json={"name": "+".join(scopes), "scopes": list(scopes)},
            headers=owner.unsafe,
        )
        assert made.status_code == 201, made.text
        assert sorted(made.json()["scopes"]) == sorted(scopes)
        return {"Authorization": f"Bearer {made.json()['key']}", "X-Company-ID": company.company_id}

    ingest = await key_with("ingest")
    answer = await client.post("/v1/answer", json={"question": "hi"}, headers=ingest)
    assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"
    assert (await client.get("/v1/connectors", headers=ingest)).status_code == 200
    assert (await client.get("/v1/company/api-keys", headers=ingest)).status_code == 403
    assert (await client.post("/v1/widget-tokens", json={}, headers=ingest)).status_code == 403

    assistant = await key_with("assistant")
    search = await client.post("/v1/search", json={"query": "reset"}, headers=assistant)
    assert search.status_code == 200
    assert (await client.get("/v1/connectors", headers=assistant)).status_code == 403

    minting = await key_with("widget-mint")
    assert (await client.post("/v1/widget-tokens", json={}, headers=minting)).status_code == 201

    admin = await key_with("admin")
    listed = await client.get("/v1/company/api-keys", headers=admin)
    assert listed.status_code == 200
    assert len(listed.json()) == 5  # the company's first key (every scope) and these four
    legacy = next(k for k in listed.json() if k["id"] == company.key_id)
    assert sorted(legacy["scopes"]) == ["admin", "assistant", "ingest", "widget-mint"]
    # Revoke through the API: the key stops at once.
    ingest_id = next(k["id"] for k in listed.json() if k["scopes"] == ["ingest"])
    revoked = await client.delete(f"/v1/company/api-keys/{ingest_id}", headers=admin)
    assert revoked.status_code == 204
    assert (await client.get("/v1/connectors", headers=ingest)).status_code == 401
    bad = await client.post(
        "/v1/company/api-keys", json={"name": "x", "scopes": ["root"]}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"


async def test_another_company_is_out_of_reach_through_the_console(
    make_company: MakeCompany,
    console_user: SignIn,
    database: Database,
    app: object,
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    acme_owner = await console_user(acme, "owner")
    globex_owner = await console_user(globex, "owner")
    # Something of globex with an id: a connector (an operator file import needs no
    # network), a sync run of it, an API key, a user.
    sync: SyncService = app.state.helpdesk.sync  # type: ignore[attr-defined]
    stack: Stack = app.state.helpdesk  # type: ignore[attr-defined]
    import_root = app.state.helpdesk.settings.import_root  # type: ignore[attr-defined]
    folder = import_root / f"articles-{globex.company_id}"
    folder.mkdir(parents=True)
    (folder / "reset.md").write_text("# Reset\nHold the button for ten seconds.\n")
    async with stack.for_tenant(CompanyId(globex.company_id)) as scope:
        connector = await stack.connectors.create(
            scope,
            platform="article_folder",
            name="Articles",
            settings={"root": str(folder)},
            credentials={},
            schedule_minutes=None,
            actor="test",
            allow_file_platforms=True,
        )
    run = await sync.request_sync(globex.company_id, connector.id, trigger="manual")
    globex_key_id = globex.key_id
    globex_user = globex_owner.user["id"]

    a = acme_owner
    for method, path, body in [
        ("GET", f"/v1/connectors/{connector.id}", None),
        ("PATCH", f"/v1/connectors/{connector.id}", {"name": "mine"}),
        ("DELETE", f"/v1/connectors/{connector.id}", None),
        ("POST", f"/v1/connectors/{connector.id}/sync", None),
        ("GET", f"/v1/sync-runs/{run.id}", None),
        ("DELETE", f"/v1/company/api-keys/{globex_key_id}", None),
        ("PATCH", f"/console/api/users/{globex_user}", {"role": "agent"}),
        ("DELETE", f"/console/api/users/{globex_user}", None),
    ]:
        response = await a.client.request(method, path, json=body, headers=a.unsafe)
        assert response.status_code == 404, (method, path, response.text)
    assert (await a.client.get(f"/v1/connectors/{connector.id}/sync-runs")).json() == []
    assert all(
        k["id"] != globex_key_id for k in (await a.client.get("/v1/company/api-keys")).json()
    )
    assert all(u["id"] != globex_user for u in (await a.client.get("/console/api/users")).json())
    # Naming the other company in X-Company-ID does not switch companies.
    cross = await a.client.get("/v1/connectors", headers={"X-Company-ID": globex.company_id})
    assert cross.status_code == 403 and cross.json()["error"] == "company_mismatch"
    # Globex's things are untouched.
    g = globex_owner
    assert (await g.client.get(f"/v1/connectors/{connector.id}")).json()["name"] == "Articles"
    assert (await g.client.get(f"/v1/sync-runs/{run.id}")).status_code == 200
    me = (await g.client.get("/console/api/session")).json()
    assert me["user"]["role"] == "owner"


async def test_customer_widget_token_sees_no_console_endpoint(
    make_company: MakeCompany, client: httpx.AsyncClient
) -> None:
    company = await make_company()
    minted = await client.post(
        "/v1/widget-tokens", json={"audience": "customer"}, headers=company.headers
    )
    assert minted.status_code == 201, minted.text
    widget = {
        "Authorization": f"Bearer {minted.json()['token']}",
        "X-Company-ID": company.company_id,
    }
    for method, path in [
        ("GET", "/console/api/session"),
        ("GET", "/console/api/users"),
        ("POST", "/console/api/users"),
        ("POST", "/console/api/session/revoke-all"),
    ]:
        response = await client.request(method, path, headers=widget, json={})
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "not_signed_in"
    for method, path in [
        ("GET", "/v1/company/api-keys"),
        ("POST", "/v1/company/api-keys"),
        ("GET", "/v1/company/settings"),
        ("PATCH", "/v1/company/settings"),
        ("GET", "/v1/connectors/kinds"),
        ("POST", "/v1/connectors/test"),
        ("POST", "/v1/assistant/preview"),
    ]:
        response = await client.request(method, path, headers=widget, json={})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"] == "api_key_required"
