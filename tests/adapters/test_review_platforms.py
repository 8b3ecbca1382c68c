"""Google Business Profile and Trustpilot review adapters against replayed API payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from platform_replay import Replay, fixture_json, json_response, rate_limited, server_error

from backend.adapters.base import Adapter, DocumentKind, ManualClock
from backend.adapters.http import RateLimiter
from backend.adapters.registry import ADAPTERS, build_adapter
from backend.adapters.reviews.google_business import (
    GoogleBusinessCredentials,
    GoogleBusinessReviewsAdapter,
    GoogleBusinessSettings,
    GoogleReviewsCheckpoint,
    split_translation,
)
from backend.adapters.reviews.trustpilot import (
    TrustpilotCheckpoint,
    TrustpilotCredentials,
    TrustpilotReviewsAdapter,
    TrustpilotSettings,
)
from backend.errors import BadRequest

ACCOUNT = "104211111111111111111"
LOCATION = "2233445566778899001"
REVIEWS = f"/v4/accounts/{ACCOUNT}/locations/{LOCATION}/reviews"
UNIT = "507f191e810c19729de860ea"
TP_REVIEWS = f"/v1/business-units/{UNIT}/reviews"


def google(
    replay: Replay, clock: ManualClock, client: httpx.AsyncClient, **settings: Any
) -> GoogleBusinessReviewsAdapter:
    return GoogleBusinessReviewsAdapter(
        settings=GoogleBusinessSettings(**settings),
        credentials=GoogleBusinessCredentials(access_token="ya29.token"),
        client=client,
        limiter=RateLimiter.unlimited(clock=clock),
        clock=clock,
    )


def trustpilot(
    clock: ManualClock, client: httpx.AsyncClient, **settings: Any
) -> TrustpilotReviewsAdapter:
    return TrustpilotReviewsAdapter(
        settings=TrustpilotSettings(business_unit_id=UNIT, per_page=2, **settings),
        credentials=TrustpilotCredentials(api_key="tp-key"),
        client=client,
        limiter=RateLimiter.unlimited(clock=clock),
        clock=clock,
    )


def google_replay() -> Replay:
    replay = Replay()
    replay.on(REVIEWS, json_response(fixture_json("reviews/google_reviews_page1.json")))
    replay.on(
        REVIEWS,
        json_response(fixture_json("reviews/google_reviews_page2.json")),
        query={"pageToken": "CiAKGjBBTXh1cFhfWVU4M0hiM2ZmV0FnSFFfRVJtEAE"},
    )
    return replay


async def test_google_reviews_pages_ratings_replies_and_korean_text() -> None:
    clock = ManualClock()
    replay = google_replay()
    async with replay.client() as client:
        adapter = google(replay, clock, client, account=ACCOUNT, location=LOCATION)
        first = await adapter.fetch_page(adapter.initial_checkpoint())
        second = await adapter.fetch_page(first.checkpoint)
    assert first.has_more and not second.has_more
    documents = {doc.external_id: doc for doc in first.documents + second.documents}
    assert list(documents) == [
        "review:AbFvOqn1Xk9dKr2",
        "review:AbFvOqm7Tt3pLq8",
        "review:AbFvOqk2Zz0aBc4",
    ]
    korean = documents["review:AbFvOqn1Xk9dKr2"]
    assert korean.kind is DocumentKind.REVIEW
    assert korean.rating == 5.0
    assert korean.requester == "이서연"
    assert [(p.label, p.author_role) for p in korean.parts] == [
        ("review", "customer"),
        ("owner_reply", "owner"),
    ]
    assert korean.parts[0].text.startswith("직원분들이 친절하고")
    assert korean.status == "replied"
    assert korean.metadata["location_average_rating"] == 3.7
    assert documents["review:AbFvOqm7Tt3pLq8"].rating == 2.0
    assert documents["review:AbFvOqm7Tt3pLq8"].status == "unreplied"
    # Rating only, anonymous: kept, with no text part and no requester.
    silent = documents["review:AbFvOqk2Zz0aBc4"]
    assert silent.parts == []
    assert silent.requester is None
    assert silent.metadata["has_text"] is False

    sent = replay.sent(REVIEWS)
    assert sent[0].url.params["pageSize"] == "50"
    assert sent[0].url.params["orderBy"] == "updateTime desc"
    assert "pageToken" not in sent[0].url.params
    assert all(r.headers["authorization"] == "Bearer ya29.token" for r in replay.requests)
    location = f"accounts/{ACCOUNT}/locations/{LOCATION}"
    assert second.checkpoint.watermarks[location] == datetime(
        2024, 3, 2, 5, 11, 9, 412000, tzinfo=UTC
    )


async def test_google_next_round_stops_at_the_watermark_and_resumes_from_json() -> None:
    clock = ManualClock()
    location = f"accounts/{ACCOUNT}/locations/{LOCATION}"
    # The previous round saw everything up to the Feb 28 update.
    stored = GoogleReviewsCheckpoint(
        locations=[location],
        watermarks={location: datetime(2024, 2, 28, 8, 15, 30, tzinfo=UTC)},
        has_more=False,
    ).model_dump_json()
    replay = google_replay()
    async with replay.client() as client:
        adapter = google(replay, clock, client, account=ACCOUNT, location=LOCATION)
        page = await adapter.fetch_page(adapter.checkpoint_type.model_validate_json(stored))
        last = await adapter.fetch_page(
            adapter.checkpoint_type.model_validate_json(page.checkpoint.model_dump_json())
        )
    # Both reviews on page 1 changed at or after the watermark (the one exactly at it is sent
    # again; ingest skips it by content hash). Page 2 starts below it: nothing more to read.
    assert [doc.external_id for doc in page.documents] == [
        "review:AbFvOqn1Xk9dKr2",
        "review:AbFvOqm7Tt3pLq8",
    ]
    assert page.has_more
    assert last.documents == []
    assert not last.has_more
    assert last.checkpoint.watermarks[location] == datetime(
        2024, 3, 2, 5, 11, 9, 412000, tzinfo=UTC
    )


async def test_google_lists_accounts_and_locations_when_none_configured() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on("/v1/accounts", json_response(fixture_json("reviews/google_accounts.json")))
    replay.on(
        f"/v1/accounts/{ACCOUNT}/locations",
        json_response(
            {
                "locations": fixture_json("reviews/google_locations.json")["locations"][:1],
                "nextPageToken": "loc-page-2",
            }
        ),
        json_response(
            {"locations": fixture_json("reviews/google_locations.json")["locations"][1:]}
        ),
    )
    replay.on(REVIEWS, json_response({"reviews": [], "totalReviewCount": 0}))
    replay.on(
        f"/v4/accounts/{ACCOUNT}/locations/2233445566778899002/reviews",
        json_response(fixture_json("reviews/google_reviews_page2.json")),
    )
    async with replay.client() as client:
        adapter = google(replay, clock, client)
        first = await adapter.fetch_page(adapter.initial_checkpoint())
        second = await adapter.fetch_page(first.checkpoint)
    assert first.checkpoint.locations == [
        f"accounts/{ACCOUNT}/locations/{LOCATION}",
        f"accounts/{ACCOUNT}/locations/2233445566778899002",
    ]
    assert first.documents == [] and first.has_more
    assert [doc.external_id for doc in second.documents] == ["review:AbFvOqk2Zz0aBc4"]
    assert not second.has_more
    listing = replay.sent(f"/v1/accounts/{ACCOUNT}/locations")
    assert listing[0].url.params["readMask"] == "name,title"
    assert listing[1].url.params["pageToken"] == "loc-page-2"
    # The hosts are the three documented Google APIs.
    hosts = {r.url.host for r in replay.requests}
    assert hosts == {
        "mybusinessaccountmanagement.googleapis.com",
        "mybusinessbusinessinformation.googleapis.com",
        "mybusiness.googleapis.com",
    }


async def test_google_rate_limit_then_5xx_then_success() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on(
        REVIEWS,
        rate_limited(30),
        server_error(500),
        json_response(fixture_json("reviews/google_reviews_page2.json")),
    )
    async with replay.client() as client:
        adapter = google(replay, clock, client, account=f"accounts/{ACCOUNT}", location=LOCATION)
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert page.failures == []
    assert len(page.documents) == 1
    assert clock.sleeps[0] == 30.0
    assert len(clock.sleeps) == 2


async def test_google_persistent_failure_keeps_the_checkpoint() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on(REVIEWS, httpx.ReadTimeout("slow"), repeat_last=True)
    async with replay.client() as client:
        adapter = google(replay, clock, client, account=ACCOUNT, location=LOCATION, max_attempts=3)
        start = adapter.initial_checkpoint()
        page = await adapter.fetch_page(start)
    [failure] = page.failures
    assert failure.retryable
    assert len(replay.sent(REVIEWS)) == 3
    assert page.checkpoint.locations == [f"accounts/{ACCOUNT}/locations/{LOCATION}"]
    assert page.checkpoint.page_token is None and page.has_more
    assert page.blocked


def test_google_translation_keeps_the_original() -> None:
    original, translation = split_translation(
        "(Translated by Google) Very kind staff\n\n(Original)\n직원이 매우 친절해요"
    )
    assert original == "직원이 매우 친절해요"
    assert translation == "Very kind staff"
    assert split_translation("그냥 리뷰") == ("그냥 리뷰", None)


def trustpilot_replay() -> Replay:
    replay = Replay()
    replay.on(
        TP_REVIEWS,
        json_response(fixture_json("reviews/trustpilot_reviews_page1.json")),
        query={"page": "1"},
    )
    replay.on(
        TP_REVIEWS,
        json_response(fixture_json("reviews/trustpilot_reviews_page2.json")),
        query={"page": "2"},
    )
    return replay


async def test_trustpilot_pages_with_next_page_links_and_company_replies() -> None:
    clock = ManualClock()
    replay = trustpilot_replay()
    async with replay.client() as client:
        adapter = trustpilot(clock, client)
        first = await adapter.fetch_page(adapter.initial_checkpoint())
        second = await adapter.fetch_page(
            adapter.checkpoint_type.model_validate_json(first.checkpoint.model_dump_json())
        )
    assert first.has_more and not second.has_more
    documents = {doc.external_id: doc for doc in first.documents + second.documents}
    assert len(documents) == 3
    refund = documents["review:65e6f1a2b3c4d5e6f7a8b9c0"]
    assert refund.rating == 1.0
    assert refund.title == "Refund took six weeks"
    assert [p.label for p in refund.parts] == ["review", "owner_reply"]
    assert refund.status == "replied"
    assert refund.url == "https://www.trustpilot.com/reviews/65e6f1a2b3c4d5e6f7a8b9c0"
    korean = documents["review:65e4a0b1c2d3e4f5a6b7c8d9"]
    assert korean.language == "ko"
    assert korean.parts[0].text == "주문 다음 날 바로 도착했고 포장도 꼼꼼했습니다."
    assert korean.requester == "박지훈"

    sent = replay.sent(TP_REVIEWS)
    assert [r.url.params["page"] for r in sent] == ["1", "2"]
    assert sent[0].url.params["orderBy"] == "createdat.desc"
    assert sent[0].url.params["perPage"] == "2"
    assert all(r.headers["apikey"] == "tp-key" for r in sent)
    assert "apikey" not in sent[0].url.params
    assert second.checkpoint.watermark == datetime(2024, 3, 5, 16, 22, 10, tzinfo=UTC)


async def test_trustpilot_next_round_stops_below_watermark_minus_lookback() -> None:
    clock = ManualClock()
    replay = trustpilot_replay()
    finished = TrustpilotCheckpoint(
        watermark=datetime(2024, 3, 5, 16, 22, 10, tzinfo=UTC), has_more=False
    )
    async with replay.client() as client:
        adapter = trustpilot(clock, client, lookback_days=1)
        page = await adapter.fetch_page(finished)
    # Reviews from the last day before the watermark are re-read (replies change them);
    # the Mar 3 review is below the floor, so paging stops without asking for page 2.
    assert [doc.external_id for doc in page.documents] == ["review:65e6f1a2b3c4d5e6f7a8b9c0"]
    assert len(replay.sent(TP_REVIEWS)) == 1
    assert not page.has_more


async def test_trustpilot_removed_review_is_a_deletion_and_errors_are_values() -> None:
    clock = ManualClock()
    body = fixture_json("reviews/trustpilot_reviews_page2.json")
    body["reviews"][0]["status"] = "archived"
    replay = Replay()
    replay.on(TP_REVIEWS, rate_limited(12), server_error(503), json_response(body))
    async with replay.client() as client:
        adapter = trustpilot(clock, client)
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert [(d.external_id, d.reason) for d in page.deletions] == [
        ("review:65e1c9d8e7f6a5b4c3d2e1f0", "archived")
    ]
    assert clock.sleeps[0] == 12.0

    replay = Replay()
    replay.on(TP_REVIEWS, json_response({"message": "Forbidden"}, status=403))
    async with replay.client() as client:
        adapter = trustpilot(clock, client)
        start = adapter.initial_checkpoint()
        page = await adapter.fetch_page(start)
    [failure] = page.failures
    assert failure.status_code == 403 and not failure.retryable
    assert page.checkpoint == start
    assert page.blocked


async def test_registry_builds_review_and_file_adapters(tmp_path: Path) -> None:
    clock = ManualClock()
    inputs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "google_business": ({"account": ACCOUNT, "location": LOCATION}, {"access_token": "t"}),
        "trustpilot": ({"business_unit_id": UNIT}, {"api_key": "k"}),
        "review_export": ({"path": str(tmp_path / "r.csv")}, {}),
        "file_export": ({"path": str(tmp_path / "kb.jsonl")}, {}),
        "article_folder": ({"root": str(tmp_path)}, {}),
    }
    async with Replay().client() as client:
        for platform, (settings, credentials) in inputs.items():
            adapter = build_adapter(platform, settings, credentials, client=client, clock=clock)
            assert isinstance(adapter, Adapter)
            assert adapter.source == ADAPTERS[platform].factory.source  # type: ignore[attr-defined]
            stored = adapter.initial_checkpoint().model_dump_json()
            assert adapter.checkpoint_type.model_validate_json(stored).has_more
    with pytest.raises(BadRequest) as error:
        build_adapter("trustpilot", {}, {"api_key": "secret-value"}, client=client)
    assert error.value.code == "invalid_connector_settings"
    assert "secret-value" not in str(error.value.detail)
