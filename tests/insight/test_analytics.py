"""Analytics over HTTP: per-day figures read from rollups that the database keeps as calls,
feedback, reviews and syncs are written — and nothing of another company in them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from backend.adapters.base import Deletion, DocumentKind, DocumentPart, SourceDocument
from backend.insight.analytics import bucket_of, bucket_value_ms, percentile
from backend.stack import Stack
from tests.insight.conftest import MakeCompany, indexer_for


def record_calls(
    state: Stack, company_id: str, latencies: list[int], **fields: object
) -> list[uuid.UUID]:
    return [
        state.assistant.recorder.record(
            company_id=company_id,
            task=str(fields.get("task", "answer")),
            question=str(fields.get("question", "How do I reset my password?")),
            answer="Open Settings.",
            citations=[],
            provider=fields.get("provider", "extractive"),
            model="extractive",
            latency_ms=latency,
            prompt_tokens=int(fields.get("prompt_tokens", 0)),  # type: ignore[call-overload]
            completion_tokens=int(fields.get("completion_tokens", 0)),  # type: ignore[call-overload]
            cost_usd=float(fields.get("cost_usd", 0.0)),  # type: ignore[arg-type]
            cache_hit=bool(fields.get("cache_hit", False)),
        )
        for latency in latencies
    ]


def review(review_id: str, rating: float, location: str, text: str) -> SourceDocument:
    when = datetime.now(UTC)
    return SourceDocument(
        source="google_business",
        external_id=f"review:{review_id}",
        kind=DocumentKind.REVIEW,
        title=f"{int(rating)}-star Google review",
        parts=[DocumentPart(text=text, label="review", author_role="customer")],
        rating=rating,
        language="en",
        created_at=when,
        updated_at=when,
        metadata={"platform": "google", "location": location},
    )


def test_percentiles_come_from_log_buckets_within_their_width() -> None:
    latencies = list(range(1, 1001))
    histogram: dict[int, int] = {}
    for value in latencies:
        histogram[bucket_of(value)] = histogram.get(bucket_of(value), 0) + 1
    p50, p95 = percentile(histogram, 0.5), percentile(histogram, 0.95)
    assert p50 is not None and p95 is not None
    assert abs(p50 - 500) / 500 < 0.06
    assert abs(p95 - 950) / 950 < 0.06
    assert percentile({-1: 5}, 0.5) is None
    assert bucket_value_ms(bucket_of(120)) == pytest.approx(120, rel=0.06)


async def test_analytics_are_per_company_and_kept_as_rows_arrive(
    app: FastAPI, client: httpx.AsyncClient, make_company: MakeCompany, tmp_path: Path
) -> None:
    state: Stack = app.state.helpdesk
    acme, globex = await make_company("acme"), await make_company("globex")

    # Calls: 20 answers (4 cache hits) and 5 drafts through a model provider.
    answers = record_calls(state, acme.company_id, [100] * 10 + [200] * 6 + [1000] * 4)
    record_calls(state, acme.company_id, [5] * 4, cache_hit=True, question="Where is my refund?")
    record_calls(
        state, acme.company_id, [2000] * 5, task="draft_reply", provider="openai",
        prompt_tokens=1000, completion_tokens=200, cost_usd=0.01,
    )  # fmt: skip
    record_calls(state, globex.company_id, [50] * 3)
    await state.assistant.recorder.flush()

    # Feedback: the widget reports what became of drafts; one answer rated down.
    for outcome in ("inserted", "inserted", "edited", "discarded"):
        response = await client.post(
            "/v1/feedback",
            json={"interaction_id": str(answers[0]), "outcome": outcome},
            headers=acme.headers,
        )
        assert response.status_code == 201, response.text
    await client.post(
        "/v1/feedback",
        json={"interaction_id": str(answers[1]), "rating": "down", "reason": "outdated"},
        headers=acme.headers,
    )
    bad = await client.post(
        "/v1/feedback",
        json={"interaction_id": str(answers[1]), "outcome": "framed"},
        headers=acme.headers,
    )
    assert bad.status_code in (400, 422)

    # Reviews at two locations; one re-rated, one deleted: the rollup follows both.
    indexer = indexer_for(app)
    await indexer.index(
        acme.company_id,
        [
            review("1", 5, "seoul", "Great service, fast delivery."),
            review("2", 1, "seoul", "The app keeps crashing, terrible."),
            review("3", 4, "busan", "Good, but a bit slow."),
        ],
    )
    await indexer.index(acme.company_id, [review("2", 3, "seoul", "Better after the update.")])
    await indexer.index(
        acme.company_id,
        [],
        [Deletion(source="google_business", external_id="review:3", reason="deleted")],
    )

    # A real sync run (a file import) finishes and is counted for its connector.
    from backend.ingest.operator import ensure_connector

    export = tmp_path / "kb.jsonl"
    export.write_text(json.dumps({"id": "a1", "title": "Reset", "body": "Open Settings."}) + "\n")
    connector_id = await ensure_connector(
        state, acme.company_id, platform="file_export", name="kb", settings={"path": str(export)}
    )
    run = await state.sync.request_sync(acme.company_id, connector_id, trigger="manual")
    assert (await state.sync.run(acme.company_id, run.id)).status == "succeeded"

    usage = (await client.get("/v1/analytics/assistant", headers=acme.headers)).json()
    tasks = {t["task"]: t for t in usage["by_task"]}
    assert tasks["answer"]["calls"] == 24
    assert tasks["answer"]["cache_hits"] == 4
    assert tasks["answer"]["cache_hit_rate"] == pytest.approx(4 / 24, abs=1e-3)
    assert tasks["answer"]["latency_p50_ms"] == pytest.approx(100, rel=0.06)
    assert tasks["answer"]["latency_p95_ms"] == pytest.approx(1000, rel=0.06)
    assert tasks["draft_reply"]["calls"] == 5
    providers = {p["provider"]: p for p in usage["by_provider"]}
    assert providers["openai"]["prompt_tokens"] == 5000
    assert providers["openai"]["cost_usd"] == pytest.approx(0.05)
    assert len(usage["by_day"]) == 2  # today: answer and draft_reply

    feedback = (await client.get("/v1/analytics/feedback", headers=acme.headers)).json()
    assert feedback["drafts"]["inserted"] == 2
    assert feedback["drafts"]["edited"] == 1
    assert feedback["drafts"]["discarded"] == 1
    assert feedback["drafts"]["acceptance_rate"] == pytest.approx(0.75)
    assert feedback["reasons"] == {"outdated": 1}

    questions = (await client.get("/v1/analytics/questions", headers=acme.headers)).json()
    top = questions["questions"]
    assert top[0] == {**top[0], "question": "How do I reset my password?", "asks": 20}
    assert top[1]["question"] == "Where is my refund?" and top[1]["asks"] == 4

    reviews = (await client.get("/v1/analytics/reviews", headers=acme.headers)).json()
    places = {(r["platform"], r["location"]): r for r in reviews["by_day"]}
    assert set(places) == {("google", "seoul")}
    seoul = places[("google", "seoul")]
    assert seoul["reviews"] == 2
    assert seoul["average_rating"] == pytest.approx(4.0)
    assert (seoul["positive"], seoul["neutral"], seoul["negative"]) == (1, 1, 0)

    syncs = (await client.get("/v1/analytics/syncs", headers=acme.headers)).json()
    [connector] = syncs["connectors"]
    assert connector["connector_id"] == str(connector_id)
    assert connector["runs"] == 1 and connector["succeeded"] == 1
    assert connector["last_status"] == "succeeded"
    assert connector["by_day"][0]["upserted"] == 1

    # Globex's own figures only; Acme's rows are invisible to it.
    other = (await client.get("/v1/analytics/assistant", headers=globex.headers)).json()
    assert [t["calls"] for t in other["by_task"]] == [3]
    for path in ("feedback", "reviews", "syncs", "triage"):
        body = (await client.get(f"/v1/analytics/{path}", headers=globex.headers)).json()
        assert not body.get("by_day") and not body.get("connectors"), (path, body)
    assert (await client.get("/v1/analytics/questions", headers=globex.headers)).json()[
        "questions"
    ][0]["asks"] == 3

    # Management data: a widget token (agent or customer audience) is refused.
    minted = await client.post("/v1/widget-tokens", json={}, headers=acme.headers)
    widget = {"Authorization": f"Bearer {minted.json()['token']}", "X-Company-ID": acme.company_id}
    refused = await client.get("/v1/analytics/assistant", headers=widget)
    assert refused.status_code == 403
    assert refused.json()["error"] == "api_key_required"
    bad_window = await client.get(
        "/v1/analytics/assistant?since=2026-12-05&until=2026-01-01", headers=acme.headers
    )
    assert bad_window.status_code == 400 and bad_window.json()["error"] == "invalid_window"
