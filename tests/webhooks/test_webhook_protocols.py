"""Each platform's webhook at the protocol level: the documented payloads and signature
schemes (backend.webhooks.platforms), and each adapter's ``fetch_item`` against a replay of
the platform's single-item endpoint (httpx.MockTransport)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from backend.adapters.base import ItemFetcher, ManualClock
from backend.adapters.http import RateLimiter
from backend.adapters.registry import build_adapter
from backend.errors import AppError
from backend.webhooks.platforms import (
    InboundWebhook,
    verify_and_parse,
    zendesk_signature,
)
from tests.adapters.platform_replay import Replay, fixture_json, json_response

NOW = datetime(2026, 12, 5, 4, 0, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
SECRET = "whsec-current-0123456789abcdef"
PREVIOUS = "whsec-previous-0123456789abcdef"
SYS_ID = "46d44a23a9fe19810012d100cca80666"


def basic(password: str, user: str = "hook") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def verify(
    platform: str,
    body: Any,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (SECRET,),
    now: datetime = NOW,
) -> list[tuple[str, str | None]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = InboundWebhook(headers=headers or {}, query=query or {}, body=raw)
    items = verify_and_parse(platform, request, secrets, now=now, replay_window=WINDOW)
    return [(item.item_ref, item.event_id) for item in items]


def refused(platform: str, body: Any, **kwargs: Any) -> str:
    with pytest.raises(AppError) as error:
        verify(platform, body, **kwargs)
    return f"{error.value.status_code} {error.value.code}"


# -- Zendesk: base64(HMAC-SHA256(secret, timestamp + body)) --------------------------------

ZENDESK_EVENT = {
    # An event-subscription webhook as Zendesk documents it (ticket events, 2022-11-06).
    "account_id": 10545386,
    "detail": {"id": "102", "status": "SOLVED", "subject": "Password reset email"},
    "event": {"current": "SOLVED", "previous": "OPEN"},
    "id": "cbe4028c-7239-495d-b020-f22348516046",
    "subject": "zen:ticket:102",
    "time": "2026-12-05T03:59:58.000Z",
    "type": "zen:event-type:ticket.status_changed",
    "zendesk_event_version": "2022-11-06",
}


def zendesk_headers(body: bytes, secret: str = SECRET, at: datetime = NOW) -> dict[str, str]:
    timestamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "x-zendesk-webhook-signature": zendesk_signature(secret, timestamp, body),
        "x-zendesk-webhook-signature-timestamp": timestamp,
    }


def test_zendesk_signature_timestamp_and_event_id() -> None:
    body = json.dumps(ZENDESK_EVENT).encode()
    assert verify("zendesk", body, headers=zendesk_headers(body)) == [
        ("ticket:102", ZENDESK_EVENT["id"])
    ]
    # A trigger webhook: the admin's JSON body; the signature serves as the event id.
    trigger = json.dumps({"ticket_id": "103"}).encode()
    headers = zendesk_headers(trigger)
    assert verify("zendesk", trigger, headers=headers) == [
        ("ticket:103", headers["x-zendesk-webhook-signature"])
    ]
    # Another secret, a changed body, no headers: one answer.
    assert refused("zendesk", body, headers=zendesk_headers(body, "other-secret-0000000")) == (
        "401 invalid_webhook_signature"
    )
    tampered = body.replace(b"102", b"101")
    assert refused("zendesk", tampered, headers=zendesk_headers(body)) == (
        "401 invalid_webhook_signature"
    )
    assert refused("zendesk", body) == "401 invalid_webhook_signature"
    # Correctly signed, but captured and replayed after the window.
    old = zendesk_headers(body, at=NOW - WINDOW - timedelta(seconds=1))
    assert refused("zendesk", body, headers=old) == "401 stale_webhook"
    # During a rotation the previous secret still signs.
    rotated = zendesk_headers(body, PREVIOUS)
    assert verify("zendesk", body, headers=rotated, secrets=(SECRET, PREVIOUS))
    # Signed but not a ticket event.
    user_event = json.dumps({**ZENDESK_EVENT, "subject": "zen:user:5", "type": "x"}).encode()
    assert refused("zendesk", user_event, headers=zendesk_headers(user_event)) == (
        "400 invalid_webhook_payload"
    )


ZENDESK_ARTICLE_EVENT = {
    # A Help Center article event as Zendesk documents it (event-subscription webhook,
    # developer.zendesk.com/api-reference/webhooks/event-types/article-events/).
    "account_id": 10168721,
    "detail": {"brand_id": "224348602", "id": "360050001"},
    "event": {
        "author_id": "225859532",
        "category_id": "7005437869694",
        "locale": "ko",
        "section_id": "360010001",
        "title": "환불 정책",
    },
    "id": "01GX4P86AC7T0AFF86QGAHTEFR",
    "subject": "zen:article:360050001",
    "time": "2026-12-05T03:59:58.571545199Z",
    "type": "zen:event-type:article.published",
    "zendesk_event_version": "2022-11-06",
}


def zendesk_verify(event: dict[str, Any]) -> list[tuple[str, str | None]]:
    body = json.dumps(event).encode()
    return verify("zendesk", body, headers=zendesk_headers(body))


def zendesk_refused(event: dict[str, Any]) -> str:
    body = json.dumps(event).encode()
    return refused("zendesk", body, headers=zendesk_headers(body))


def test_zendesk_article_events_name_the_article() -> None:
    named = [("article:360050001", "01GX4P86AC7T0AFF86QGAHTEFR")]
    assert zendesk_verify(ZENDESK_ARTICLE_EVENT) == named
    unpublished = {
        **ZENDESK_ARTICLE_EVENT,
        "type": "zen:event-type:article.unpublished",
        "event": {},
    }
    assert zendesk_verify(unpublished) == named
    # Votes, comments and subscriptions leave the article's text as it was: accepted, nothing
    # to fetch (an admin may subscribe the webhook to every article event).
    vote = {**ZENDESK_ARTICLE_EVENT, "type": "zen:event-type:article.vote_created"}
    assert zendesk_verify(vote) == []
    # Signed with another secret: refused before the body is read.
    body = json.dumps(ZENDESK_ARTICLE_EVENT).encode()
    other = zendesk_headers(body, "other-secret-0000000")
    assert refused("zendesk", body, headers=other) == "401 invalid_webhook_signature"
    # Signed, but not the documented shape.
    for malformed in (
        {**ZENDESK_ARTICLE_EVENT, "subject": "zen:article:../tickets/1"},
        {**ZENDESK_ARTICLE_EVENT, "subject": None, "detail": None},
        {key: value for key, value in ZENDESK_ARTICLE_EVENT.items() if key != "id"},
    ):
        assert zendesk_refused(malformed) == "400 invalid_webhook_payload"


def test_freshdesk_secret_header_or_basic_auth() -> None:
    body = {"ticket_id": "1"}
    assert verify("freshdesk", body, headers={"x-helpdesk-webhook-secret": SECRET}) == [
        ("ticket:1", None)
    ]
    assert verify("freshdesk", body, headers=basic(SECRET)) == [("ticket:1", None)]
    assert refused("freshdesk", body, headers=basic("wrong")) == "401 invalid_webhook_signature"
    assert refused("freshdesk", body) == "401 invalid_webhook_signature"
    assert refused(
        "freshdesk", {"ticket_id": "1; drop"}, headers={"x-helpdesk-webhook-secret": SECRET}
    ) == ("400 invalid_webhook_payload")
    assert refused("freshdesk", b"not json", headers={"x-helpdesk-webhook-secret": SECRET}) == (
        "400 invalid_webhook_payload"
    )


def test_servicenow_bearer_and_mod_count() -> None:
    body = {
        "table": "incident",
        "sys_id": SYS_ID,
        "sys_mod_count": "7",
        "sys_updated_on": "2026-12-05 03:59:58",
        "operation": "update",
    }
    bearer = {"authorization": f"Bearer {SECRET}"}
    assert verify("servicenow", body, headers=bearer) == [(f"incident:{SYS_ID}", f"{SYS_ID}:7")]
    assert verify("servicenow", body, headers=basic(SECRET, "servicenow"))
    assert refused("servicenow", body, headers={"authorization": "Bearer nope"}) == (
        "401 invalid_webhook_signature"
    )
    assert refused("servicenow", {**body, "table": "sys_user"}, headers=bearer) == (
        "400 invalid_webhook_payload"
    )
    # The same business rule on kb_knowledge names the knowledge article.
    article = {**body, "table": "kb_knowledge", "sys_mod_count": "3"}
    assert verify("servicenow", article, headers=bearer) == [(f"article:{SYS_ID}", f"{SYS_ID}:3")]
    assert refused("servicenow", {**article, "sys_id": "KB0010001"}, headers=bearer) == (
        "400 invalid_webhook_payload"
    )


def pubsub_push(notification: dict[str, Any], message_id: str = "2070443601311540") -> Any:
    return {
        "message": {
            "attributes": {},
            "data": base64.b64encode(json.dumps(notification).encode()).decode(),
            "messageId": message_id,
            "publishTime": "2026-12-05T03:59:58.123Z",
        },
        "subscription": "projects/acme/subscriptions/business-profile-push",
    }


GOOGLE_REVIEW = (
    "accounts/104211111111111111111/locations/2233445566778899001/reviews/AbFvOqn1Xk9dKr2"
)


def test_google_pubsub_push_with_token() -> None:
    push = pubsub_push(
        {
            "type": "NEW_REVIEW",
            "review": GOOGLE_REVIEW,
            "location": "accounts/104211111111111111111/locations/2233445566778899001",
        }
    )
    assert verify("google_business", push, query={"token": SECRET}) == [
        (GOOGLE_REVIEW, "2070443601311540")
    ]
    assert refused("google_business", push, query={"token": "x"}) == (
        "401 invalid_webhook_signature"
    )
    # A notification about something else names no review: accepted, nothing to fetch.
    other = pubsub_push({"type": "GOOGLE_UPDATE", "location": "accounts/1/locations/2"})
    assert verify("google_business", other, query={"token": SECRET}) == []
    bad = pubsub_push({"type": "NEW_REVIEW", "review": "../../etc/passwd"})
    assert refused("google_business", bad, query={"token": SECRET}) == (
        "400 invalid_webhook_payload"
    )


def test_trustpilot_events_batch() -> None:
    body = {
        "events": [
            {
                "eventName": "service-review-created",
                "version": "1",
                "eventData": {
                    "id": "53bffd360000640002975387",
                    "language": "en",
                    "title": "Great service",
                    "text": "Nothing other than excellent customer service.",
                    "stars": 5,
                    "createdAt": "2026-12-05T03:59:58.000Z",
                    "isVerified": True,
                    "link": "https://api.trustpilot.com/v1/reviews/53bffd360000640002975387",
                },
            },
            {
                "eventName": "service-review-deleted",
                "version": "1",
                "eventData": {"id": "53bffd360000640002975388"},
            },
        ]
    }
    items = verify("trustpilot", body, headers=basic(SECRET, "trustpilot"))
    assert items == [
        (
            "review:53bffd360000640002975387",
            "service-review-created:53bffd360000640002975387:2026-12-05T03:59:58.000Z",
        ),
        ("review:53bffd360000640002975388", None),
    ]
    assert verify("trustpilot", body, query={"token": SECRET}) == items
    assert refused("trustpilot", body, query={"token": "guess"}) == (
        "401 invalid_webhook_signature"
    )
    too_many = {"events": body["events"][:1] * 101}
    assert refused("trustpilot", too_many, query={"token": SECRET}) == (
        "400 invalid_webhook_payload"
    )


# -- fetch_item: the single-item endpoints -----------------------------------------------


def adapter_for(
    platform: str, settings: dict[str, Any], credentials: dict[str, Any], replay: Replay
) -> tuple[ItemFetcher, httpx.AsyncClient]:
    clock = ManualClock(NOW)
    client = replay.client()
    adapter = build_adapter(
        platform,
        settings,
        credentials,
        client=client,
        limiter=RateLimiter.unlimited(clock=clock),
        clock=clock,
    )
    assert isinstance(adapter, ItemFetcher)
    return adapter, client


async def test_zendesk_fetch_item_reads_ticket_and_comments() -> None:
    ticket = fixture_json("zendesk/tickets_cursor_page1.json")["tickets"][1]
    replay = Replay()
    replay.on("/api/v2/tickets/102.json", json_response({"ticket": ticket}))
    replay.on(
        "/api/v2/tickets/102/comments.json",
        json_response(fixture_json("zendesk/comments_ticket_102.json")),
    )
    replay.on("/api/v2/tickets/104.json", json_response({"error": "RecordNotFound"}, 404))
    adapter, client = adapter_for(
        "zendesk", {"subdomain": "acme"}, {"email": "a@acme.example", "api_token": "t"}, replay
    )
    async with client:
        found = await adapter.fetch_item("ticket:102")
        gone = await adapter.fetch_item("ticket:104")
        foreign = await adapter.fetch_item("user:1")
    assert [d.external_id for d in found.documents] == ["ticket:102"]
    assert "password reset" in found.documents[0].parts[0].text.lower()
    assert [(d.external_id, d.reason) for d in gone.deletions] == [("ticket:104", "deleted")]
    assert foreign.failures and not foreign.documents


async def test_zendesk_article_event_fetches_that_article() -> None:
    [(item_ref, _)] = zendesk_verify(ZENDESK_ARTICLE_EVENT)
    article = fixture_json("zendesk/articles_incremental_page1.json")["articles"][0]
    replay = Replay()
    replay.on("/api/v2/help_center/articles/360050001.json", json_response({"article": article}))
    replay.on(
        "/api/v2/help_center/articles/360050001/attachments.json",
        json_response({"article_attachments": []}),
    )
    replay.on(
        "/api/v2/help_center/articles/360050001/translations.json",
        json_response(fixture_json("zendesk/translations_article_360050001.json")),
    )
    adapter, client = adapter_for(
        "zendesk", {"subdomain": "acme"}, {"email": "a@acme.example", "api_token": "t"}, replay
    )
    async with client:
        found = await adapter.fetch_item(item_ref)
    assert [d.external_id for d in found.documents] == [
        "article:360050001",
        "article:360050001:en-us",
    ]
    assert [(d.external_id, d.reason) for d in found.deletions] == [
        ("article:360050001:ja", "draft")
    ]
    assert "14일 이내" in found.documents[0].parts[0].text
    assert len(replay.sent("/api/v2/help_center/articles/360050001.json")) == 1


async def test_servicenow_fetch_item_reads_incident_and_journal() -> None:
    record = {
        "sys_id": SYS_ID,
        "number": "INC0010001",
        "short_description": "VPN drops every hour",
        "description": "Since Monday the VPN disconnects hourly.",
        "state": "2",
        "priority": "3",
        "sys_created_on": "2026-12-01 08:00:00",
        "sys_updated_on": "2026-12-05 03:59:58",
    }
    replay = Replay()
    replay.on(f"/api/now/table/incident/{SYS_ID}", json_response({"result": record}))
    replay.on(
        "/api/now/table/sys_journal_field",
        json_response(
            {
                "result": [
                    {
                        "element_id": SYS_ID,
                        "element": "comments",
                        "value": "Reinstalled the client; looks stable.",
                        "sys_created_on": "2026-12-05 03:00:00",
                        "sys_created_by": "agent.smith",
                    }
                ]
            }
        ),
    )
    replay.on("/api/now/table/sys_attachment", json_response({"result": []}))
    missing = "0" * 32
    replay.on(f"/api/now/table/incident/{missing}", json_response({"error": {}}, 404))
    adapter, client = adapter_for(
        "servicenow",
        {"instance": "acme.service-now.com"},
        {"username": "bot", "password": "pw"},
        replay,
    )
    async with client:
        found = await adapter.fetch_item(f"incident:{SYS_ID}")
        gone = await adapter.fetch_item(f"incident:{missing}")
    assert [d.external_id for d in found.documents] == [f"incident:{SYS_ID}"], found.failures
    assert any("Reinstalled" in part.text for part in found.documents[0].parts)
    assert [d.external_id for d in gone.deletions] == [f"incident:{missing}"]


async def test_servicenow_kb_knowledge_event_fetches_that_article() -> None:
    [(item_ref, _)] = verify(
        "servicenow",
        {"table": "kb_knowledge", "sys_id": SYS_ID, "sys_mod_count": "3"},
        headers={"authorization": f"Bearer {SECRET}"},
    )
    record = {
        "sys_id": SYS_ID,
        "number": "KB0010001",
        "short_description": "Configure the VPN client",
        "text": "<p>Import the profile from the portal, then sign in.</p>",
        "workflow_state": "published",
        "language": "en",
        "sys_created_on": "2026-11-01 08:00:00",
        "sys_updated_on": "2026-12-05 03:59:58",
    }
    retired = "0" * 31 + "1"
    replay = Replay()
    replay.on(f"/api/now/table/kb_knowledge/{SYS_ID}", json_response({"result": record}))
    replay.on("/api/now/table/sys_attachment", json_response({"result": []}))
    replay.on(
        f"/api/now/table/kb_knowledge/{retired}",
        json_response({"result": {**record, "sys_id": retired, "workflow_state": "retired"}}),
    )
    adapter, client = adapter_for(
        "servicenow",
        {"instance": "acme.service-now.com"},
        {"username": "bot", "password": "pw"},
        replay,
    )
    async with client:
        found = await adapter.fetch_item(item_ref)
        gone = await adapter.fetch_item(f"article:{retired}")
    assert [d.external_id for d in found.documents] == [f"article:{SYS_ID}"], found.failures
    assert (
        found.documents[0].url
        == "https://acme.service-now.com/kb_view.do?sysparm_article=KB0010001"
    )
    assert [(d.external_id, d.reason) for d in gone.deletions] == [
        (f"article:{retired}", "retired")
    ]


async def test_google_fetch_item_reads_only_this_connectors_reviews() -> None:
    review = fixture_json("reviews/google_reviews_page1.json")["reviews"][0]
    replay = Replay()
    replay.on(f"/v4/{GOOGLE_REVIEW}", json_response(review))
    adapter, client = adapter_for(
        "google_business",
        {"account": "accounts/104211111111111111111"},
        {"access_token": "ya29.token"},
        replay,
    )
    async with client:
        found = await adapter.fetch_item(GOOGLE_REVIEW)
        foreign = await adapter.fetch_item(GOOGLE_REVIEW.replace("1042111", "9999999"))
    assert [d.external_id for d in found.documents] == ["review:AbFvOqn1Xk9dKr2"]
    assert foreign.failures and not foreign.documents
    assert len(replay.requests) == 1  # nothing was asked about the foreign account


async def test_trustpilot_fetch_item_and_deleted_review() -> None:
    reviews = fixture_json("reviews/trustpilot_reviews_page1.json")["reviews"]
    review = reviews[0]
    unit = review["businessUnit"]["id"]
    replay = Replay()
    replay.on(f"/v1/reviews/{review['id']}", json_response(review))
    replay.on("/v1/reviews/53bffd360000640002975388", json_response({"message": "Not found"}, 404))
    adapter, client = adapter_for(
        "trustpilot", {"business_unit_id": unit}, {"api_key": "tp-key"}, replay
    )
    async with client:
        found = await adapter.fetch_item(f"review:{review['id']}")
        gone = await adapter.fetch_item("review:53bffd360000640002975388")
    assert [d.external_id for d in found.documents] == [f"review:{review['id']}"]
    assert [d.external_id for d in gone.deletions] == ["review:53bffd360000640002975388"]
