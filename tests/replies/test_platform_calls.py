"""Each platform call replies make, against protocol-level fakes: the documented request
(method, URL, body, auth), retries on 429 and 5xx, no retry on other 4xx, and the egress
policy in front of every one of them."""

from __future__ import annotations

import base64
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from backend.adapters.registry import validate_connector
from backend.clock import ManualClock
from backend.db.models import Connector
from backend.egress import Egress, EgressPolicy, StaticResolver, parse_allowed_hosts
from backend.ingest.connectors import ConnectorConfig
from backend.replies.outbound import OutboundCaller, PlatformAnswer, RetryRule
from backend.replies.platforms import (
    PlannedCall,
    PublishNotPossible,
    review_reply_call,
    ticket_note_call,
)
from tests.replies.platform_fakes import PUBLIC_ADDRESSES, PlatformFakes

RULE = RetryRule(max_attempts=4, max_retry_after_s=60.0, excerpt_chars=200)


def config(platform: str, settings: dict[str, Any], credentials: dict[str, Any]) -> ConnectorConfig:
    checked_settings, checked_credentials = validate_connector(platform, settings, credentials)
    connector = Connector(
        id=uuid.uuid4(), company_id="acme", platform=platform, name=platform, settings=settings
    )
    return ConnectorConfig(connector, checked_settings, checked_credentials)


def caller(fakes: PlatformFakes, *, allowed: str | None = None) -> tuple[OutboundCaller, Egress]:
    egress = Egress(
        EgressPolicy(allowed_hosts=parse_allowed_hosts(allowed)),
        resolver=StaticResolver(PUBLIC_ADDRESSES),
        transport=fakes.transport(),
    )
    clock = ManualClock(datetime(2026, 12, 5, 6, 0, tzinfo=UTC))
    return OutboundCaller(egress, clock, RULE, rng=random.Random(7)), egress


async def send(fakes: PlatformFakes, call: PlannedCall) -> PlatformAnswer:
    outbound, egress = caller(fakes)
    return await outbound.send(
        egress.policy.scope(call.platform, call.base_urls),
        call.method,
        call.url,
        json=call.json,
        headers=call.headers,
        auth=call.auth,
        where=call.where,
    )


TRUSTPILOT = config(
    "trustpilot",
    {
        "business_unit_id": "46d6a890000064000500e0c3",
        "business_user_id": "507f191e810c19729de860ea",
    },
    {"api_key": "tp-key", "access_token": "tp-business-token"},
)


async def test_trustpilot_reply_is_the_documented_post_and_retries_server_errors() -> None:
    fakes = PlatformFakes()
    fakes.script("api.trustpilot.com", httpx.Response(502), httpx.Response(500))
    call = review_reply_call(
        TRUSTPILOT, external_id="review:5e3de1b45fb06f0001790b51", metadata={}, text="Thanks!"
    )
    answer = await send(fakes, call)
    assert answer.ok and answer.status == 201
    sent = fakes.to("api.trustpilot.com")
    assert len(sent) == 3
    last = sent[-1]
    assert last.method == "POST"
    assert (
        last.url == "https://api.trustpilot.com/v1/private/reviews/5e3de1b45fb06f0001790b51/reply"
    )
    assert last.body == {"authorBusinessUserId": "507f191e810c19729de860ea", "message": "Thanks!"}
    assert last.headers["authorization"] == "Bearer tp-business-token"


def test_trustpilot_without_a_business_user_cannot_publish() -> None:
    reader_only = config("trustpilot", {"business_unit_id": "46d6a89"}, {"api_key": "tp-key"})
    with pytest.raises(PublishNotPossible):
        review_reply_call(reader_only, external_id="review:abc", metadata={}, text="Hi")


async def test_a_retry_after_beyond_the_bound_fails_retryable_without_waiting() -> None:
    fakes = PlatformFakes()
    fakes.script("api.trustpilot.com", httpx.Response(429, headers={"Retry-After": "3600"}))
    call = review_reply_call(TRUSTPILOT, external_id="review:abc", metadata={}, text="Hi")
    answer = await send(fakes, call)
    assert not answer.ok and answer.retryable and answer.status == 429
    assert len(fakes.to("api.trustpilot.com")) == 1


async def test_a_client_error_is_not_retried_and_its_body_is_not_kept() -> None:
    fakes = PlatformFakes()
    fakes.script(
        "api.trustpilot.com",
        httpx.Response(400, json={"message": "Reply already exists: internal-id 991"}),
    )
    call = review_reply_call(TRUSTPILOT, external_id="review:abc", metadata={}, text="Hi")
    answer = await send(fakes, call)
    assert not answer.ok and not answer.retryable and answer.status == 400
    assert "internal-id" not in answer.excerpt
    assert len(fakes.to("api.trustpilot.com")) == 1


def test_ids_that_could_leave_the_documented_path_are_refused() -> None:
    for bad in ("review:../../v1/other", "review:a/b", "review:a?b=1", "review:"):
        with pytest.raises(PublishNotPossible):
            review_reply_call(TRUSTPILOT, external_id=bad, metadata={}, text="Hi")
    google = config(
        "google_business", {"account": "1", "location": "2"}, {"access_token": "google-token"}
    )
    with pytest.raises(PublishNotPossible):
        review_reply_call(
            google, external_id="review:x", metadata={"location": "../accounts"}, text="Hi"
        )


async def test_zendesk_private_comment_is_a_ticket_update_with_public_false() -> None:
    fakes = PlatformFakes()
    zendesk = config(
        "zendesk",
        {"subdomain": "acme"},
        {"email": "agent@acme.test", "api_token": "zd-token"},
    )
    answer = await send(fakes, ticket_note_call(zendesk, ticket_id="ticket:35436", text="Draft"))
    assert answer.ok and answer.status == 200
    (sent,) = fakes.to("acme.zendesk.com")
    assert sent.method == "PUT" and sent.url == "https://acme.zendesk.com/api/v2/tickets/35436.json"
    assert sent.body == {"ticket": {"comment": {"body": "Draft", "public": False}}}
    expected = base64.b64encode(b"agent@acme.test/token:zd-token").decode()
    assert sent.headers["authorization"] == f"Basic {expected}"


async def test_servicenow_work_note_patches_the_record_and_backs_off_on_503() -> None:
    fakes = PlatformFakes()
    fakes.script("acme.service-now.com", httpx.Response(503))
    servicenow = config(
        "servicenow", {"instance": "acme"}, {"username": "svc", "password": "sn-pass"}
    )
    sys_id = "9d385017c611228701d22104cc95c371"
    answer = await send(
        fakes, ticket_note_call(servicenow, ticket_id=f"incident:{sys_id}", text="Draft")
    )
    assert answer.ok and "INC0010001" in answer.excerpt
    sent = fakes.to("acme.service-now.com")
    assert len(sent) == 2
    assert sent[-1].method == "PATCH"
    assert sent[-1].url == f"https://acme.service-now.com/api/now/table/incident/{sys_id}"
    assert sent[-1].body == {"work_notes": "Draft"}
    with pytest.raises(PublishNotPossible):
        ticket_note_call(servicenow, ticket_id=sys_id, text="Draft", table="sys_user")


async def test_an_alert_to_an_allowed_name_on_a_private_address_is_never_sent() -> None:
    fakes = PlatformFakes()
    outbound, egress = caller(fakes, allowed="alerts.internal-relay.example")
    url = "https://alerts.internal-relay.example/hook"
    answer = await outbound.send(
        egress.policy.scope("alert_webhook", [url]), "POST", url, json={"text": "x"}, where="alert"
    )
    assert not answer.ok and not answer.retryable
    assert "non-public" in answer.excerpt
    assert fakes.received == []
