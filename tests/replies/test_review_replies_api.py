"""Review replies end to end: reviews ingested through the real indexer get drafts and
alerts, agents approve, edit, reject and publish through the API, the platforms are faked at
the protocol level, and every step is tenant-bound and audited."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.config import Settings
from backend.db.models import AuditLogEntry
from backend.ingest.indexer import IndexedReview, KnowledgeIndexer
from backend.replies.wiring import longest_call
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from tests.conftest import CompanyWithKey
from tests.replies.platform_fakes import PlatformFakes

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
SLACK_URL = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop"
LOCATION = "accounts/1234567890/locations/9876543210"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The fakes sit behind public names on https: the loopback relaxation stays off, so the
    # policy here is production's (plus one allow-listed host that points somewhere private).
    return settings.model_copy(
        update={
            "egress_allow_loopback_for_tests": False,
            "egress_allowed_hosts": "alerts.internal-relay.example",
        }
    )


def review(
    review_id: str, text: str, rating: float, *, language: str = "en", days_ago: float = 1
) -> SourceDocument:
    # Relative to now: the service drafts only reviews younger than its age bound.
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return SourceDocument(
        source="google_business",
        external_id=f"review:{review_id}",
        kind=DocumentKind.REVIEW,
        title=f"{int(rating)}-star Google review by Dana Smith",
        parts=[DocumentPart(text=text, label="review", author_role="customer", created_at=when)],
        status="unreplied",
        language=language,
        rating=rating,
        requester="Dana Smith",
        created_at=when,
        updated_at=when,
        metadata={
            "platform": "google",
            "location": LOCATION,
            "rating_scale": 5,
            "has_text": True,
            "has_reply": False,
        },
    )


@dataclass
class Company:
    who: CompanyWithKey
    connector_id: uuid.UUID
    indexer: KnowledgeIndexer


async def google_company(app: FastAPI, make_company: MakeCompany, prefix: str) -> Company:
    state: Stack = app.state.helpdesk
    who = await make_company(prefix)
    async with state.for_tenant(CompanyId(who.company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="google_business",
            name="Google reviews",
            settings={"account": "1234567890", "location": "9876543210"},
            credentials={"access_token": "google-token"},
            schedule_minutes=None,
            actor="test",
        )
    parts = state.sync.parts
    indexer = KnowledgeIndexer(
        database=state.database,
        vectors=parts.vectors,
        dense=parts.dense,
        sparse=parts.sparse,
        blobs=parts.blobs,
        connector_id=connector.id,
        reviews_indexed=parts.reviews_indexed,
    )
    return Company(who, connector.id, indexer)


async def replies_of(client: httpx.AsyncClient, company: Company, **params: str) -> list[dict]:
    response = await client.get("/v1/review-replies", headers=company.who.headers, params=params)
    assert response.status_code == 200, response.text
    replies: list[dict] = response.json()["replies"]
    return replies


async def test_review_reply_workflow_publish_alert_and_isolation(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_company: MakeCompany,
    fakes: PlatformFakes,
    tmp_path: Path,
) -> None:
    state: Stack = app.state.helpdesk
    acme = await google_company(app, make_company, "acme")
    globex = await google_company(app, make_company, "globex")

    # The alert webhook is vetted when it is set.
    for refused in (
        "http://hooks.slack.com/services/T0001/B0001/x",  # not https
        "https://example.com/hook",  # not Slack's, not allow-listed
        "https://alerts.internal-relay.example/hook",  # allowed name, private address
        "https://hooks.slack.com/services/x?token=1",  # a query
        "https://10.0.0.8/hook",  # an IP literal
    ):
        response = await client.put(
            "/v1/review-replies/settings",
            headers=acme.who.headers,
            json={"alert_webhook_url": refused},
        )
        assert response.status_code == 400, refused
        assert response.json()["error"] == "alert_webhook_refused"
    response = await client.put(
        "/v1/review-replies/settings",
        headers=acme.who.headers,
        json={"alert_webhook_url": SLACK_URL, "alert_rating_threshold": 2},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "alert_webhook_host": "hooks.slack.com",
        "alert_rating_threshold": 2.0,
        "ticket_notes_enabled": False,
    }

    angry = review(
        "AbC-angry-1",
        "The delivery took three weeks and the support never answered my emails.",
        1.0,
    )
    happy = review("AbC-happy-2", "Wonderful staff and great food, thank you!", 5.0)
    # A first sync's backlog: an old negative review gets no draft and raises no alert.
    backlog = review("AbC-old-3", "Terrible, years ago.", 1.0, days_ago=400)
    await acme.indexer.index(acme.who.company_id, [angry, happy, backlog])
    await globex.indexer.index(globex.who.company_id, [review("GlX-1", "Bad service.", 2.0)])
    await state.jobs.finish_in_process()  # the queued draft jobs

    drafts = {r["review_id"]: r for r in await replies_of(client, acme, state="draft")}
    assert set(drafts) == {"review:AbC-angry-1", "review:AbC-happy-2"}
    negative, positive = drafts["review:AbC-angry-1"], drafts["review:AbC-happy-2"]
    assert negative["sentiment"] == "negative" and positive["sentiment"] == "positive"
    assert negative["language"] == "en" and negative["text"] == negative["draft"]
    assert "sorry" in negative["draft"].lower()
    assert {"topic": "delivery", "sentiment": "negative"} in negative["topics"]
    assert negative["alert_status"] == "sent" and positive["alert_status"] is None

    # One alert, for the negative review only, in Slack's JSON; a re-sync of the same
    # reviews (one edited) neither drafts again nor alerts again.
    alerts = fakes.to("hooks.slack.com")
    assert len(alerts) == 1
    assert alerts[0].url == SLACK_URL
    assert set(alerts[0].body) == {"text"} and "three weeks" in alerts[0].body["text"]
    edited = angry.model_copy(
        update={"parts": [DocumentPart(text="Still waiting. Awful delivery.", label="review")]}
    )
    await acme.indexer.index(acme.who.company_id, [edited, happy])
    await state.jobs.finish_in_process()
    assert len(fakes.to("hooks.slack.com")) == 1
    assert len(await replies_of(client, acme)) == 2

    # Another company cannot see or act on them: a guessed id is "not found".
    negative_id = negative["id"]
    for method, path in (
        ("GET", f"/v1/review-replies/{negative_id}"),
        ("POST", f"/v1/review-replies/{negative_id}/approve"),
        ("POST", f"/v1/review-replies/{negative_id}/reject"),
        ("POST", f"/v1/review-replies/{negative_id}/publish"),
        ("PATCH", f"/v1/review-replies/{negative_id}"),
    ):
        response = await client.request(
            method, path, headers=globex.who.headers, json={"text": "hijacked"}
        )
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "review_reply_not_found"
    assert [r["review_id"] for r in await replies_of(client, globex)] == ["review:GlX-1"]

    # A customer-audience token sees no drafts and can do nothing with them; an agent
    # widget token can.
    minted = await client.post(
        "/v1/widget-tokens", headers=acme.who.headers, json={"audience": "customer"}
    )
    assert minted.status_code == 201, minted.text
    customer = {
        "Authorization": f"Bearer {minted.json()['token']}",
        "X-Company-ID": acme.who.company_id,
    }
    for method, path in (
        ("GET", "/v1/review-replies"),
        ("GET", f"/v1/review-replies/{negative_id}"),
        ("POST", f"/v1/review-replies/{negative_id}/approve"),
        ("POST", f"/v1/review-replies/{negative_id}/publish"),
        ("GET", "/v1/review-replies/settings"),
    ):
        response = await client.request(method, path, headers=customer)
        assert response.status_code == 403, (method, path)
    assert fakes.to("mybusiness.googleapis.com") == []

    # Publishing needs an approval first.
    response = await client.post(
        f"/v1/review-replies/{negative_id}/publish", headers=acme.who.headers
    )
    assert response.status_code == 409 and response.json()["error"] == "reply_not_approved"

    # Edit (the editor's approval), then publish: Google rate-limits once, then answers.
    final_text = "Dear Dana, we are sorry about the delivery. Please write to help@acme.test."
    response = await client.patch(
        f"/v1/review-replies/{negative_id}", headers=acme.who.headers, json={"text": final_text}
    )
    assert response.status_code == 200 and response.json()["state"] == "edited"
    fakes.script(
        "mybusiness.googleapis.com",
        httpx.Response(429, headers={"Retry-After": "1"}, json={"error": {"code": 429}}),
        httpx.Response(503, json={"error": {"code": 503, "status": "UNAVAILABLE"}}),
    )
    # Three agents press "publish" at once: one post reaches Google, the others are told
    # it is in progress (or, if it already finished, get the recorded result).
    responses = await asyncio.gather(
        *(
            client.post(f"/v1/review-replies/{negative_id}/publish", headers=acme.who.headers)
            for _ in range(3)
        )
    )
    assert sorted(r.status_code for r in responses)[0] == 200, [r.text for r in responses]
    for other in responses:
        assert other.status_code == 200 or other.json()["error"] == "publish_in_progress"
    response = await client.get(f"/v1/review-replies/{negative_id}", headers=acme.who.headers)
    published = response.json()
    assert published["state"] == "published" and published["platform_status"] == 200
    assert '"updateTime"' in published["platform_answer"]
    assert published["published_by"] == published["approved_by"] != "system:ingest"
    calls = fakes.to("mybusiness.googleapis.com")
    assert len(calls) == 3
    assert {c.method for c in calls} == {"PUT"}
    assert calls[-1].url == (
        f"https://mybusiness.googleapis.com/v4/{LOCATION}/reviews/AbC-angry-1/reply"
    )
    assert calls[-1].body == {"comment": final_text}
    assert calls[-1].headers["authorization"] == "Bearer google-token"

    # Publishing again posts nothing and answers the recorded result.
    again = await client.post(f"/v1/review-replies/{negative_id}/publish", headers=acme.who.headers)
    assert again.status_code == 200 and again.json()["published_at"] == published["published_at"]
    assert len(fakes.to("mybusiness.googleapis.com")) == 3
    for verb in ("approve", "reject"):
        response = await client.post(
            f"/v1/review-replies/{negative_id}/{verb}", headers=acme.who.headers
        )
        assert response.status_code == 409 and response.json()["error"] == "invalid_reply_state"

    # A platform refusal is recorded and the reply stays approved; it can be rejected.
    positive_id = positive["id"]
    response = await client.post(
        f"/v1/review-replies/{positive_id}/approve", headers=acme.who.headers
    )
    assert response.status_code == 200 and response.json()["state"] == "approved"
    fakes.script(
        "mybusiness.googleapis.com",
        httpx.Response(403, json={"error": {"code": 403, "status": "PERMISSION_DENIED"}}),
    )
    response = await client.post(
        f"/v1/review-replies/{positive_id}/publish", headers=acme.who.headers
    )
    assert response.status_code == 502 and response.json()["error"] == "platform_refused"
    failed = (
        await client.get(f"/v1/review-replies/{positive_id}", headers=acme.who.headers)
    ).json()
    assert failed["state"] == "approved" and failed["platform_status"] == 403
    assert "PERMISSION_DENIED" not in (failed["platform_answer"] or "")  # no upstream body
    response = await client.post(
        f"/v1/review-replies/{positive_id}/reject",
        headers=acme.who.headers,
        json={"reason": "we answer praise by phone"},
    )
    assert response.status_code == 200 and response.json()["state"] == "rejected"

    # Who did what, in the audit log (and only the company's own entries).
    async with state.database.tenant_session(acme.who.company_id) as session:
        entries = (
            (await session.execute(select(AuditLogEntry).order_by(AuditLogEntry.id)))
            .scalars()
            .all()
        )
    actions = [(e.action, e.target) for e in entries if e.action.startswith("review_reply.")]
    assert ("review_reply.drafted", negative_id) in actions
    assert ("review_reply.alerted", negative_id) in actions
    assert ("review_reply.edited", negative_id) in actions
    assert ("review_reply.published", negative_id) in actions
    assert ("review_reply.publish_failed", positive_id) in actions
    assert ("review_reply.rejected", positive_id) in actions
    assert all(e.company_id == acme.who.company_id for e in entries)

    # Two syncs racing over the same new negative review (three jobs queued for it, as a
    # redelivery would): one draft, one alert.
    racing = review("AbC-race-4", "Broken on arrival, nobody answers.", 1.0)
    parts = state.sync.parts
    plain = KnowledgeIndexer(
        database=state.database,
        vectors=parts.vectors,
        dense=parts.dense,
        sparse=parts.sparse,
        blobs=parts.blobs,
        connector_id=acme.connector_id,
    )
    seen: list[IndexedReview] = []

    async def collect(_company_id: str, reviews: list[IndexedReview]) -> None:
        seen.extend(reviews)

    plain.reviews_indexed = collect
    await plain.index(acme.who.company_id, [racing])
    before = len(fakes.to("hooks.slack.com"))
    await asyncio.gather(
        *(state.replies.on_reviews_indexed(acme.who.company_id, seen) for _ in range(3))
    )
    await state.jobs.finish_in_process()
    assert len(fakes.to("hooks.slack.com")) == before + 1
    raced = [r for r in await replies_of(client, acme) if r["review_id"] == "review:AbC-race-4"]
    assert len(raced) == 1 and raced[0]["alert_status"] == "sent"


async def test_ticket_drafts_as_private_notes_are_off_by_default_and_per_company(
    app: FastAPI, client: httpx.AsyncClient, make_company: MakeCompany, fakes: PlatformFakes
) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")
    async with state.for_tenant(CompanyId(acme.company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="freshdesk",
            name="Freshdesk",
            settings={"domain": "acme.freshdesk.com"},
            credentials={"api_key": "fd-key"},
            schedule_minutes=None,
            actor="test",
        )
    note = {"connector_id": str(connector.id), "ticket_id": "ticket:812", "text": "Try <b>X</b>"}
    response = await client.post("/v1/ticket-notes", headers=acme.headers, json=note)
    assert response.status_code == 409 and response.json()["error"] == "ticket_notes_disabled"
    assert fakes.to("acme.freshdesk.com") == []

    response = await client.put(
        "/v1/review-replies/settings", headers=acme.headers, json={"ticket_notes_enabled": True}
    )
    assert response.status_code == 200 and response.json()["ticket_notes_enabled"] is True
    # Another company's setting and connector are not this one's.
    response = await client.post("/v1/ticket-notes", headers=globex.headers, json=note)
    assert response.status_code == 409 and response.json()["error"] == "ticket_notes_disabled"
    await client.put(
        "/v1/review-replies/settings", headers=globex.headers, json={"ticket_notes_enabled": True}
    )
    response = await client.post("/v1/ticket-notes", headers=globex.headers, json=note)
    assert response.status_code == 404 and response.json()["error"] == "connector_not_found"

    response = await client.post("/v1/ticket-notes", headers=acme.headers, json=note)
    assert response.status_code == 201, response.text
    assert response.json()["platform_status"] == 201
    (sent,) = fakes.to("acme.freshdesk.com")
    assert sent.url == "https://acme.freshdesk.com/api/v2/tickets/812/notes"
    assert sent.body == {"body": "Try &lt;b&gt;X&lt;/b&gt;", "private": True}

    minted = await client.post(
        "/v1/widget-tokens", headers=acme.headers, json={"audience": "customer"}
    )
    customer = {
        "Authorization": f"Bearer {minted.json()['token']}",
        "X-Company-ID": acme.company_id,
    }
    response = await client.post("/v1/ticket-notes", headers=customer, json=note)
    assert response.status_code == 403
    assert len(fakes.to("acme.freshdesk.com")) == 1


async def test_a_trustpilot_sync_drafts_and_publishing_posts_the_documented_reply(
    app: FastAPI, client: httpx.AsyncClient, make_company: MakeCompany, fakes: PlatformFakes
) -> None:
    """The whole path: a connector sync (not a hand-fed indexer) drafts the new review, and
    publishing posts Trustpilot's documented reply as the connector's business user."""
    state: Stack = app.state.helpdesk
    acme = await make_company("acme")
    unit, user = "507f191e810c19729de860ea", "60a1b2c3d4e5f60718293a4b"
    async with state.for_tenant(CompanyId(acme.company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="trustpilot",
            name="Trustpilot",
            settings={"business_unit_id": unit, "business_user_id": user},
            credentials={"api_key": "tp-key", "access_token": "tp-business-token"},
            schedule_minutes=None,
            actor="test",
        )
    written = (datetime.now(UTC) - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page = {
        "links": [],
        "reviews": [
            {
                "id": "65e6f1a2b3c4d5e6f7a8b9ff",
                "consumer": {"id": "5f0c1d2e3f4a5b6c7d8e9f01", "displayName": "Hannah W."},
                "businessUnit": {"id": unit, "displayName": "Acme"},
                "stars": 2,
                "title": "Refund still missing",
                "text": "The refund never arrived and support keeps closing my ticket.",
                "language": "en",
                "createdAt": written,
                "updatedAt": None,
                "companyReply": None,
                "isVerified": True,
                "numberOfLikes": 0,
                "status": "active",
            }
        ],
    }
    fakes.script("api.trustpilot.com", httpx.Response(200, json=page))
    run = await state.sync.request_sync(acme.company_id, connector.id, trigger="manual")
    finished = await state.sync.run(acme.company_id, run.id)
    assert finished.status == "succeeded", finished.errors
    await state.jobs.finish_in_process()  # the review's queued draft job

    response = await client.get("/v1/review-replies", headers=acme.headers)
    (draft,) = response.json()["replies"]
    assert (
        draft["source"] == "trustpilot" and draft["review_id"] == "review:65e6f1a2b3c4d5e6f7a8b9ff"
    )
    assert draft["sentiment"] == "negative" and draft["state"] == "draft"
    # No webhook set: the negative review is marked, and nothing is sent anywhere.
    assert draft["alert_status"] == "no_webhook" and fakes.to("hooks.slack.com") == []

    reply_id = draft["id"]
    approved = await client.post(f"/v1/review-replies/{reply_id}/approve", headers=acme.headers)
    assert approved.status_code == 200 and approved.json()["approved_by"].startswith("api_key:")
    published = await client.post(f"/v1/review-replies/{reply_id}/publish", headers=acme.headers)
    assert published.status_code == 200, published.text
    assert published.json()["state"] == "published" and published.json()["platform_status"] == 201
    posts = [r for r in fakes.to("api.trustpilot.com") if r.method == "POST"]
    assert len(posts) == 1
    assert posts[0].url == (
        "https://api.trustpilot.com/v1/private/reviews/65e6f1a2b3c4d5e6f7a8b9ff/reply"
    )
    assert posts[0].body == {"authorBusinessUserId": user, "message": draft["text"]}
    again = await client.post(f"/v1/review-replies/{reply_id}/publish", headers=acme.headers)
    assert again.status_code == 200
    assert len([r for r in fakes.to("api.trustpilot.com") if r.method == "POST"]) == 1

    # A publish claim left by a process that died mid-call: refused while it could still be
    # running, taken over once it is older than the longest call can take.
    async with state.database.tenant_session(acme.company_id) as session:
        await session.execute(
            text(
                "UPDATE review_replies SET state = 'publishing', "
                "state_before_publish = 'approved', updated_at = now() WHERE id = :id"
            ),
            {"id": reply_id},
        )
    response = await client.post(f"/v1/review-replies/{reply_id}/publish", headers=acme.headers)
    assert response.status_code == 409 and response.json()["error"] == "publish_in_progress"
    stale = longest_call(state.settings) + timedelta(minutes=1)
    async with state.database.tenant_session(acme.company_id) as session:
        await session.execute(
            text("UPDATE review_replies SET updated_at = :when WHERE id = :id"),
            {"id": reply_id, "when": datetime.now(UTC) - stale},
        )
    response = await client.post(f"/v1/review-replies/{reply_id}/publish", headers=acme.headers)
    assert response.status_code == 200 and response.json()["state"] == "published"
    assert response.json()["publish_attempts"] == 2
