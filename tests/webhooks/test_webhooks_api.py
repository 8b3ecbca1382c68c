"""Webhooks in, through the HTTP API against real Postgres, the embedded vector engine and
the object store, with the platforms replayed at the protocol level (httpx.MockTransport):
the secret's life cycle and who may manage it, forged and replayed deliveries, an item
re-fetched and searchable, a deletion that reaches every store, and a burst coalesced."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from taskiq import InMemoryBroker

from backend.adapters.http import RateLimiter
from backend.app import create_app
from backend.blobs import TenantBlobs
from backend.config import Settings
from backend.egress import StaticResolver
from backend.ingest.indexer import document_uuid
from backend.stack import Stack
from backend.vectors.types import VectorFilter
from backend.webhooks.jobs import register_drain_task
from backend.webhooks.platforms import InboundWebhook, zendesk_signature
from backend.webhooks.service import EnqueueDrain, WebhookService
from tests.adapters.freshdesk_api import API_KEY, NOW, FakeFreshdesk, make_ticket
from tests.adapters.platform_replay import Replay, fixture_json, json_response
from tests.conftest import CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
ZENDESK_HOST = "acme.zendesk.com"
FRESHDESK = {
    "platform": "freshdesk",
    "name": "Freshdesk",
    "settings": {"domain": "acme.freshdesk.com"},
    "credentials": {"api_key": API_KEY},
}
ZENDESK = {
    "platform": "zendesk",
    "name": "Zendesk",
    "settings": {"subdomain": "acme"},
    "credentials": {"email": "agent@acme.example", "api_token": "zd-token"},
}
ZENDESK_SIGNING_SECRET = "dGhpcyBpcyBhIHNpZ25pbmcgc2VjcmV0"
GLOBEX_SIGNING_SECRET = "Z2xvYmV4IHNpZ25pbmcgc2VjcmV0IDEyMzQ="
SERVICENOW_HOST = "acme.service-now.com"
SERVICENOW = {
    "platform": "servicenow",
    "name": "ServiceNow",
    "settings": {"instance": SERVICENOW_HOST},
    "credentials": {"username": "integration.bot", "password": "sn-password"},
}
# fixture article 360050002, "Resetting your password" (en-us), as the single-article
# endpoint serves it.
ARTICLE_ID = 360050002
ARTICLE_PATH = f"/api/v2/help_center/articles/{ARTICLE_ID}.json"
KB_SYS_ID = "46d44a23a9fe19810012d100cca80666"
KB_PATH = f"/api/now/table/kb_knowledge/{KB_SYS_ID}"
BURST_TICKETS = 50
BURST_EVENTS = 1000
EVENTS = 20
CI_P95_BOUND_S = 15.0


@pytest.fixture
def freshdesk() -> FakeFreshdesk:
    # Solved tickets: the case webhooks are for (an agent solves one, others cite it at once).
    # Open ones would also be triaged on ingest, one suggestion at a time.
    tickets = [
        make_ticket(
            n, NOW - timedelta(hours=n), subject=f"Printer {n} jams on duplex pages", status=4
        )
        for n in range(1, BURST_TICKETS + 1)
    ]
    return FakeFreshdesk(tickets=tickets)


@pytest.fixture
def zendesk() -> Replay:
    ticket = fixture_json("zendesk/tickets_cursor_page1.json")["tickets"][1]
    replay = Replay()
    replay.on("/api/v2/tickets/102.json", json_response({"ticket": ticket}), repeat_last=True)
    replay.on(
        "/api/v2/tickets/102/comments.json",
        json_response(fixture_json("zendesk/comments_ticket_102.json")),
        repeat_last=True,
    )
    # The article's files and translations (its source locale only); the article itself is
    # served by each test, version by version.
    replay.on(
        f"/api/v2/help_center/articles/{ARTICLE_ID}/attachments.json",
        json_response({"article_attachments": []}),
        repeat_last=True,
    )
    replay.on(
        f"/api/v2/help_center/articles/{ARTICLE_ID}/translations.json",
        lambda _request: json_response(
            {"translations": [{**zendesk_article(), "id": 1, "source_id": ARTICLE_ID}]}
        ),
        repeat_last=True,
    )
    return replay


@pytest.fixture
def servicenow() -> Replay:
    replay = Replay()
    replay.on("/api/now/table/sys_attachment", json_response({"result": []}), repeat_last=True)
    return replay


@pytest.fixture
async def app(
    settings: Settings, freshdesk: FakeFreshdesk, zendesk: Replay, servicenow: Replay
) -> AsyncIterator[FastAPI]:
    def platforms(request: httpx.Request) -> httpx.Response:
        if request.url.host == ZENDESK_HOST:
            return zendesk(request)
        if request.url.host == SERVICENOW_HOST:
            return servicenow(request)
        return freshdesk.handle(request)

    application = create_app(
        settings.model_copy(update={"webhook_coalesce_s": 0.05}),
        http_transport=httpx.MockTransport(platforms),
        egress_resolver=StaticResolver(
            {
                "acme.freshdesk.com": "127.0.0.1",
                ZENDESK_HOST: "127.0.0.1",
                SERVICENOW_HOST: "127.0.0.1",
            }
        ),
    )
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


def zendesk_article(**changes: Any) -> dict[str, Any]:
    articles = fixture_json("zendesk/articles_incremental_page1.json")["articles"]
    article = next(a for a in articles if a["id"] == ARTICLE_ID)
    return {**article, **changes}


def zendesk_article_event(
    event_type: str, event_id: str, *, secret: str = ZENDESK_SIGNING_SECRET, **changes: Any
) -> dict[str, Any]:
    """A signed Help Center article event (developer.zendesk.com/api-reference/webhooks/
    event-types/article-events/), as keyword arguments of ``client.post``."""
    event = {
        "account_id": 10168721,
        "detail": {"brand_id": "224348602", "id": str(ARTICLE_ID)},
        "event": {},
        "id": event_id,
        "subject": f"zen:article:{ARTICLE_ID}",
        "time": datetime.now(UTC).isoformat(),
        "type": f"zen:event-type:article.{event_type}",
        "zendesk_event_version": "2022-11-06",
        **changes,
    }
    body = json.dumps(event).encode()
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "headers": {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature": zendesk_signature(secret, timestamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        },
        "content": body,
    }


async def customer_headers(client: httpx.AsyncClient, company: CompanyWithKey) -> dict[str, str]:
    minted = await client.post(
        "/v1/widget-tokens", headers=company.headers, json={"audience": "customer"}
    )
    assert minted.status_code == 201, minted.text
    return {"Authorization": f"Bearer {minted.json()['token']}", "X-Company-ID": company.company_id}


async def search_titles(
    client: httpx.AsyncClient, headers: dict[str, str], query: str
) -> list[str]:
    found = await client.post("/v1/search", headers=headers, json={"query": query, "limit": 5})
    assert found.status_code == 200, found.text
    return [hit["title"] for hit in found.json()["results"]]


async def knowledge_generation(client: httpx.AsyncClient, company: CompanyWithKey) -> int:
    answer = await client.get("/v1/company", headers=company.headers)
    return int(answer.json()["company"]["knowledge_generation"])


async def dense_written(state: Stack, company_id: str) -> bool:
    """Whether the drain's second write (dense vectors, after keywords first) is done, so
    that the next change of the knowledge generation is the next event's."""
    async with state.database.tenant_session(company_id) as session:
        waiting = await session.execute(text("SELECT count(*) FROM documents WHERE dense_pending"))
        return waiting.scalar() == 0


async def connector_with_secret(
    client: httpx.AsyncClient,
    company: CompanyWithKey,
    body: dict[str, Any] = FRESHDESK,
    signing_secret: str = ZENDESK_SIGNING_SECRET,
) -> tuple[str, str | None]:
    created = await client.post("/v1/connectors", headers=company.headers, json=body)
    assert created.status_code == 201, created.text
    connector_id = created.json()["id"]
    payload = {"signing_secret": signing_secret} if body["platform"] == "zendesk" else None
    issued = await client.post(
        f"/v1/connectors/{connector_id}/webhook-secret", headers=company.headers, json=payload
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["webhook_path"] == f"/v1/webhooks/{connector_id}"
    return connector_id, issued.json()["secret"]


def freshdesk_delivery(ticket_id: int, secret: str) -> dict[str, Any]:
    return {
        "headers": {"X-Helpdesk-Webhook-Secret": secret},
        # Pushed fields beyond the id are never indexed: the ticket is re-read.
        "json": {"ticket_id": str(ticket_id), "subject": "IGNORE ME pushed subject"},
    }


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def ticket_views(freshdesk: FakeFreshdesk) -> int:
    return sum(
        1
        for request in freshdesk.requests
        if request.url.path.startswith("/api/v2/tickets/")
        and request.url.path.rstrip("/").split("/")[-1].isdigit()
    )


def service_like(live: WebhookService, enqueue: EnqueueDrain) -> WebhookService:
    """The app's webhook service with another job queue and no local rate budget: these
    tests measure our pipeline, not the platform's per-minute quota (Freshdesk's smallest
    plan allows 50 calls a minute, which the default budget honours)."""
    return WebhookService(
        database=live.database,
        connectors=live.connectors,
        secret_box=live.secret_box,
        parts=live.parts,
        egress=live.egress,
        clock=live.clock,
        settings=live.settings,
        enqueue=enqueue,
        limiter_for=lambda _connector: RateLimiter.unlimited(clock=live.clock),
    )


async def test_secret_is_shown_once_rotates_and_only_an_api_key_manages_it(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme, globex = await make_company("acme"), await make_company("globex")
    connector_id, first = await connector_with_secret(client, acme)
    assert first is not None and len(first) >= 32
    url = f"/v1/connectors/{connector_id}/webhook-secret"
    rotated = (await client.post(url, headers=acme.headers)).json()["secret"]
    assert rotated not in (None, first)
    # Both work during the grace period (the platform's side is being updated).
    for secret in (first, rotated):
        answer = await client.post(f"/v1/webhooks/{connector_id}", **freshdesk_delivery(1, secret))
        assert answer.status_code == 202, answer.text

    # Widget tokens (agent or customer audience) cannot manage it; another company's key
    # cannot see the connector at all.
    for audience in ("agent", "customer"):
        minted = await client.post(
            "/v1/widget-tokens", headers=acme.headers, json={"audience": audience}
        )
        assert minted.status_code == 201, minted.text
        widget = {
            "Authorization": f"Bearer {minted.json()['token']}",
            "X-Company-ID": acme.company_id,
        }
        refused = await client.post(url, headers=widget)
        assert (refused.status_code, refused.json()["error"]) == (403, "api_key_required")
    foreign = await client.post(url, headers=globex.headers)
    assert (foreign.status_code, foreign.json()["error"]) == (404, "connector_not_found")
    foreign_delete = await client.delete(url, headers=globex.headers)
    assert foreign_delete.status_code == 404

    # Zendesk generates its own signing secret: it must be given, and is never echoed.
    zd = await client.post("/v1/connectors", headers=acme.headers, json=ZENDESK)
    zd_url = f"/v1/connectors/{zd.json()['id']}/webhook-secret"
    missing = await client.post(zd_url, headers=acme.headers)
    assert (missing.status_code, missing.json()["error"]) == (400, "signing_secret_required")
    given = await client.post(
        zd_url, headers=acme.headers, json={"signing_secret": ZENDESK_SIGNING_SECRET}
    )
    assert given.status_code == 201 and given.json()["secret"] is None

    # Removed: deliveries are refused like any unknown connector.
    assert (await client.delete(url, headers=acme.headers)).status_code == 204
    gone = await client.post(f"/v1/webhooks/{connector_id}", **freshdesk_delivery(1, rotated))
    assert gone.status_code == 401


async def test_webhook_refetches_the_item_and_refuses_forgeries(
    client: httpx.AsyncClient,
    app: FastAPI,
    freshdesk: FakeFreshdesk,
    make_company: MakeCompany,
) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    connector_id, secret = await connector_with_secret(client, acme)
    _, globex_secret = await connector_with_secret(client, globex)
    assert secret and globex_secret
    hook = f"/v1/webhooks/{connector_id}"

    forged = [
        await client.post(hook, **freshdesk_delivery(1, globex_secret)),  # another company's
        await client.post(hook, json={"ticket_id": "1"}),  # no secret
        await client.post(f"/v1/webhooks/{uuid.uuid4()}", **freshdesk_delivery(1, secret)),
        await client.post("/v1/webhooks/not-a-uuid", **freshdesk_delivery(1, secret)),
    ]
    for answer in forged:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "invalid_webhook_signature"
    too_big = await client.post(
        hook,
        headers={"X-Helpdesk-Webhook-Secret": secret},
        content=b'{"ticket_id": "1", "pad": "' + b"x" * 300_000 + b'"}',
    )
    assert (too_big.status_code, too_big.json()["error"]) == (413, "payload_too_large")
    malformed = await client.post(
        hook, headers={"X-Helpdesk-Webhook-Secret": secret}, json={"ticket": 1}
    )
    assert (malformed.status_code, malformed.json()["error"]) == (400, "invalid_webhook_payload")
    assert ticket_views(freshdesk) == 0

    accepted = await client.post(hook, **freshdesk_delivery(1, secret))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"items": 1, "duplicates": 0, "queued": 1}

    async def indexed() -> bool:
        docs = (await client.get("/v1/documents", headers=acme.headers)).json()
        return [d["external_id"] for d in docs] == ["ticket:1"]

    await wait_for(indexed)
    # Keywords first: the drain's second write bumps the generation too; read it after that.
    await wait_for(lambda: dense_written(state, acme.company_id))
    doc = (await client.get("/v1/documents", headers=acme.headers)).json()[0]
    detail = (await client.get(f"/v1/documents/{doc['id']}", headers=acme.headers)).json()
    assert "IGNORE ME" not in json.dumps(detail)
    assert "Printer 1 jams" in json.dumps(detail)
    document_id = str(document_uuid(acme.company_id, "freshdesk", "ticket:1"))
    only_ticket = VectorFilter(document_ids=(document_id,))
    assert await state.vectors.count(acme.company_id, only_ticket) > 0
    blobs = TenantBlobs(state.blobs, acme.company_id)
    assert [k async for k in blobs.list_documents("freshdesk")]
    company = (await client.get("/v1/company", headers=acme.headers)).json()["company"]
    generation = company["knowledge_generation"]
    # Nothing reached the other company.
    assert (await client.get("/v1/documents", headers=globex.headers)).json() == []
    assert await state.vectors.count(globex.company_id) == 0

    # Deleted on the platform: the webhook's re-fetch finds it gone; every store forgets it.
    freshdesk.tickets = [t for t in freshdesk.tickets if t["id"] != 1]
    assert (await client.post(hook, **freshdesk_delivery(1, secret))).status_code == 202

    async def removed() -> bool:
        return (await client.get("/v1/documents", headers=acme.headers)).json() == []

    await wait_for(removed)
    assert await state.vectors.count(acme.company_id, only_ticket) == 0
    assert [k async for k in blobs.list_documents("freshdesk")] == []
    company = (await client.get("/v1/company", headers=acme.headers)).json()["company"]
    assert company["knowledge_generation"] > generation  # cached answers voided


async def test_zendesk_article_events_publish_and_unpublish_the_article(
    client: httpx.AsyncClient, app: FastAPI, zendesk: Replay, make_company: MakeCompany
) -> None:
    """article.published → one fetch of that article → searchable, by a customer token of
    this company too (published articles are public knowledge) and by no one of another;
    article.unpublished → the article, now a draft, leaves every store and cached answers."""
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    connector_id, _ = await connector_with_secret(client, acme, ZENDESK)
    globex_zendesk = {**ZENDESK, "settings": {"subdomain": "globex"}}
    await connector_with_secret(client, globex, globex_zendesk, GLOBEX_SIGNING_SECRET)
    hook = f"/v1/webhooks/{connector_id}"
    acme_customer = await customer_headers(client, acme)
    globex_customer = await customer_headers(client, globex)
    query = "forgot password link"

    # Another company's signing secret, or a signed body that is not an article event's
    # documented shape: nothing is fetched.
    forged = await client.post(
        hook, **zendesk_article_event("published", "01J0FORGED", secret=GLOBEX_SIGNING_SECRET)
    )
    assert (forged.status_code, forged.json()["error"]) == (401, "invalid_webhook_signature")
    malformed = await client.post(
        hook, **zendesk_article_event("published", "01J0BAD", subject="zen:article:x")
    )
    assert (malformed.status_code, malformed.json()["error"]) == (400, "invalid_webhook_payload")
    assert zendesk.sent(ARTICLE_PATH) == []

    zendesk.on(ARTICLE_PATH, json_response({"article": zendesk_article()}))
    published = await client.post(hook, **zendesk_article_event("published", "01J0PUBLISHED"))
    assert published.json() == {"items": 1, "duplicates": 0, "queued": 1}, published.text

    async def indexed() -> bool:
        docs = (await client.get("/v1/documents", headers=acme.headers)).json()
        return [d["external_id"] for d in docs] == [f"article:{ARTICLE_ID}"]

    await wait_for(indexed)
    assert len(zendesk.sent(ARTICLE_PATH)) == 1
    assert await search_titles(client, acme_customer, query) == ["Resetting your password"]
    assert await search_titles(client, globex_customer, query) == []
    assert (await client.get("/v1/documents", headers=globex.headers)).json() == []
    document_id = str(document_uuid(acme.company_id, "zendesk", f"article:{ARTICLE_ID}"))
    only_article = VectorFilter(document_ids=(document_id,))
    assert await state.vectors.count(acme.company_id, only_article) > 0
    assert await state.vectors.count(globex.company_id) == 0
    blobs = TenantBlobs(state.blobs, acme.company_id)
    assert [k async for k in blobs.list_documents("zendesk")]
    await wait_for(lambda: dense_written(state, acme.company_id))
    generation = await knowledge_generation(client, acme)

    # Unpublished: the re-read finds a draft, which the sync would not index either.
    zendesk.on(ARTICLE_PATH, json_response({"article": zendesk_article(draft=True)}))
    unpublished = await client.post(hook, **zendesk_article_event("unpublished", "01J0UNPUB"))
    assert unpublished.status_code == 202, unpublished.text

    async def removed() -> bool:
        # The drain commits the removal, then voids the company's cached answers.
        documents = (await client.get("/v1/documents", headers=acme.headers)).json()
        return documents == [] and await knowledge_generation(client, acme) > generation

    await wait_for(removed)
    assert len(zendesk.sent(ARTICLE_PATH)) == 2
    assert await state.vectors.count(acme.company_id, only_article) == 0
    assert [k async for k in blobs.list_documents("zendesk")] == []
    # The customer's earlier search was cached; it is not answered from that cache.
    assert await search_titles(client, acme_customer, query) == []


async def test_servicenow_kb_knowledge_rule_publishes_and_retires_the_article(
    client: httpx.AsyncClient, app: FastAPI, servicenow: Replay, make_company: MakeCompany
) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    connector_id, secret = await connector_with_secret(client, acme, SERVICENOW)
    _, globex_secret = await connector_with_secret(client, globex, SERVICENOW)
    hook = f"/v1/webhooks/{connector_id}"
    record = {
        "sys_id": KB_SYS_ID,
        "number": "KB0010001",
        "short_description": "Configure the Quillfeather VPN client",
        "text": "<p>Import the Quillfeather profile from the portal, then sign in.</p>",
        "workflow_state": "published",
        "language": "en",
        "sys_created_on": "2026-11-01 08:00:00",
        "sys_updated_on": "2026-12-05 03:59:58",
    }

    def rule_body(mod_count: int, table: str = "kb_knowledge") -> dict[str, Any]:
        return {"table": table, "sys_id": KB_SYS_ID, "sys_mod_count": str(mod_count)}

    foreign = await client.post(
        hook, headers={"Authorization": f"Bearer {globex_secret}"}, json=rule_body(1)
    )
    assert (foreign.status_code, foreign.json()["error"]) == (401, "invalid_webhook_signature")
    bearer = {"Authorization": f"Bearer {secret}"}
    other_table = await client.post(hook, headers=bearer, json=rule_body(1, "sys_user"))
    assert (other_table.status_code, other_table.json()["error"]) == (
        400,
        "invalid_webhook_payload",
    )
    assert servicenow.sent(KB_PATH) == []

    servicenow.on(KB_PATH, json_response({"result": record}))
    accepted = await client.post(hook, headers=bearer, json=rule_body(1))
    assert accepted.json() == {"items": 1, "duplicates": 0, "queued": 1}, accepted.text

    async def indexed() -> bool:
        docs = (await client.get("/v1/documents", headers=acme.headers)).json()
        return [d["external_id"] for d in docs] == [f"article:{KB_SYS_ID}"]

    await wait_for(indexed)
    [read] = servicenow.sent(KB_PATH)
    assert read.url.params["sysparm_fields"].startswith("sys_id,number,short_description,text")
    customer = await customer_headers(client, acme)
    titles = ["Configure the Quillfeather VPN client"]
    assert await search_titles(client, customer, "Quillfeather profile") == titles

    await wait_for(lambda: dense_written(state, acme.company_id))
    generation = await knowledge_generation(client, acme)
    servicenow.on(KB_PATH, json_response({"result": {**record, "workflow_state": "retired"}}))
    assert (await client.post(hook, headers=bearer, json=rule_body(2))).status_code == 202

    async def removed() -> bool:
        documents = (await client.get("/v1/documents", headers=acme.headers)).json()
        return documents == [] and await knowledge_generation(client, acme) > generation

    await wait_for(removed)
    document_id = str(document_uuid(acme.company_id, "servicenow", f"article:{KB_SYS_ID}"))
    assert (
        await state.vectors.count(acme.company_id, VectorFilter(document_ids=(document_id,))) == 0
    )
    blobs = TenantBlobs(state.blobs, acme.company_id)
    assert [k async for k in blobs.list_documents("servicenow")] == []
    assert await search_titles(client, customer, "Quillfeather profile") == []


async def test_zendesk_replayed_delivery_is_not_fetched_again(
    client: httpx.AsyncClient, zendesk: Replay, make_company: MakeCompany
) -> None:
    acme = await make_company("acme")
    connector_id, _ = await connector_with_secret(client, acme, ZENDESK)
    body = json.dumps(
        {
            "id": "cbe4028c-7239-495d-b020-f22348516046",
            "subject": "zen:ticket:102",
            "type": "zen:event-type:ticket.comment_added",
            "detail": {"id": "102"},
            "time": datetime.now(UTC).isoformat(),
            "zendesk_event_version": "2022-11-06",
        }
    ).encode()
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": zendesk_signature(ZENDESK_SIGNING_SECRET, timestamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }
    hook = f"/v1/webhooks/{connector_id}"
    first = await client.post(hook, headers=headers, content=body)
    assert first.json() == {"items": 1, "duplicates": 0, "queued": 1}, first.text

    async def indexed() -> bool:
        docs = (await client.get("/v1/documents", headers=acme.headers)).json()
        return [d["external_id"] for d in docs] == ["ticket:102"]

    await wait_for(indexed)
    replayed = await client.post(hook, headers=headers, content=body)
    assert replayed.json() == {"items": 1, "duplicates": 1, "queued": 0}
    await asyncio.sleep(0.3)  # a drain, had one been queued, would have fetched by now
    assert len(zendesk.sent("/api/v2/tickets/102.json")) == 1

    stale_at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = await client.post(
        hook,
        headers={
            **headers,
            "X-Zendesk-Webhook-Signature": zendesk_signature(
                ZENDESK_SIGNING_SECRET, stale_at, body
            ),
            "X-Zendesk-Webhook-Signature-Timestamp": stale_at,
        },
        content=body,
    )
    assert (stale.status_code, stale.json()["error"]) == (401, "stale_webhook")


async def test_a_burst_of_events_for_the_same_tickets_is_one_fetch_per_ticket(
    client: httpx.AsyncClient,
    app: FastAPI,
    freshdesk: FakeFreshdesk,
    make_company: MakeCompany,
) -> None:
    """1,000 events for 50 tickets → one queued drain → 50 fetches. The service here is the
    app's, with the job queue replaced by a recorder, so the test decides when the drain
    runs (after the whole burst)."""
    state: Stack = app.state.helpdesk
    assert state.webhooks is not None
    acme = await make_company("acme")
    connector_id, secret = await connector_with_secret(client, acme)
    assert secret
    queued: list[tuple[str, uuid.UUID]] = []

    async def record(company_id: str, connector: uuid.UUID) -> None:
        queued.append((company_id, connector))

    service = service_like(state.webhooks, record)
    gate = asyncio.Semaphore(16)

    async def deliver(n: int) -> None:
        body = json.dumps({"ticket_id": str(n % BURST_TICKETS + 1)}).encode()
        async with gate:
            await service.receive(
                connector_id,
                InboundWebhook({"x-helpdesk-webhook-secret": secret}, {}, body),
            )

    await asyncio.gather(*(deliver(n) for n in range(BURST_EVENTS)))
    assert queued == [(acme.company_id, uuid.UUID(connector_id))]
    result = await service.drain(acme.company_id, uuid.UUID(connector_id))
    assert result.fetched == BURST_TICKETS
    assert ticket_views(freshdesk) == BURST_TICKETS
    assert result.upserted == BURST_TICKETS
    assert len((await client.get("/v1/documents?limit=100", headers=acme.headers)).json()) == (
        BURST_TICKETS
    )


async def test_webhook_to_searchable_under_20_events_per_second(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany
) -> None:
    """A short run of bench/webhooks.py's measurement with a much looser bound (the bench
    records the real figure against the 2 s target): CI machines are shared, and this
    catches a webhook that waits for anything like a polling interval. 20 new tickets, one
    event each, at 20 events/s, drained by the real task on taskiq's in-memory broker."""
    state: Stack = app.state.helpdesk
    assert state.webhooks is not None
    acme = await make_company("acme")
    connector_id, secret = await connector_with_secret(client, acme)
    assert secret
    broker = InMemoryBroker()
    service = service_like(state.webhooks, register_drain_task(broker))
    broker.state.webhook_service = service
    await broker.startup()
    sent: dict[str, float] = {}
    searchable: dict[str, float] = {}

    async def post(n: int) -> None:
        sent[f"ticket:{n}"] = time.monotonic()
        body = json.dumps({"ticket_id": str(n)}).encode()
        await service.receive(
            connector_id, InboundWebhook({"x-helpdesk-webhook-secret": secret}, {}, body)
        )

    async def watch() -> None:
        while len(searchable) < EVENTS:
            async with state.database.tenant_session(acme.company_id) as session:
                rows = await session.execute(text("SELECT external_id FROM documents"))
                now = time.monotonic()
                for (external_id,) in rows:
                    searchable.setdefault(external_id, now)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    posts = []
    for n in range(1, EVENTS + 1):
        posts.append(asyncio.create_task(post(n)))
        await asyncio.sleep(1 / 20)
    await asyncio.gather(*posts)
    await asyncio.wait_for(watcher, timeout=60)
    await broker.shutdown()
    latencies = sorted(searchable[key] - sent[key] for key in sent)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    assert p95 <= CI_P95_BOUND_S, latencies


async def test_the_lookup_session_reveals_one_endpoint_row_and_nothing_else(
    client: httpx.AsyncClient, app: FastAPI, make_company: MakeCompany
) -> None:
    """A webhook names only a connector id: the session that resolves it to its company sees
    that connector's endpoint row (read-only), no other row of any table."""
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    acme_connector, _ = await connector_with_secret(client, acme)
    await connector_with_secret(client, globex)
    async with state.database.webhook_lookup_session(acme_connector) as session:
        rows = (await session.execute(text("SELECT company_id FROM webhook_endpoints"))).all()
        assert [tuple(row) for row in rows] == [(acme.company_id,)]
        for table in ("connectors", "companies", "webhook_events", "webhook_pending"):
            count = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
            assert count == 0, table
        changed = await session.execute(
            text("UPDATE webhook_endpoints SET drain_queued = true RETURNING connector_id")
        )
        assert changed.all() == []
    async with state.database.webhook_lookup_session(str(uuid.uuid4())) as session:
        assert (await session.execute(text("SELECT count(*) FROM webhook_endpoints"))).scalar() == 0
