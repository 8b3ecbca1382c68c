"""The demo company's sample exports, read by the real file adapters they are written for."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from backend.adapters.base import DocumentKind, FetchFailure, SourceDocument
from backend.adapters.registry import build_adapter
from backend.demo import (
    KB_BASE_URL,
    SAMPLE_OPEN_TICKET_ID,
    SAMPLE_OPEN_TICKET_ID_KO,
    TICKET_SOURCE,
    TICKETS_FILE,
    demo_sources,
)


async def read_source(
    platform: str, settings: dict[str, Any]
) -> tuple[list[SourceDocument], list[FetchFailure]]:
    documents: list[SourceDocument] = []
    failures: list[FetchFailure] = []
    async with httpx.AsyncClient() as client:  # file adapters never use it
        adapter = build_adapter(platform, settings, {}, client=client)
        checkpoint = adapter.initial_checkpoint()
        while True:
            page = await adapter.fetch_page(checkpoint)
            documents.extend(page.documents)
            failures.extend(page.failures)
            assert not page.deletions
            checkpoint = page.checkpoint
            if not page.has_more:
                return documents, failures


async def read_all() -> dict[str, list[SourceDocument]]:
    by_platform: dict[str, list[SourceDocument]] = {}
    for platform, settings in demo_sources():
        documents, failures = await read_source(platform, settings)
        assert failures == [], f"{platform}: {failures}"
        by_platform.setdefault(platform, []).extend(documents)
    return by_platform


async def test_every_sample_export_reads_cleanly_in_both_languages() -> None:
    documents = await read_all()

    articles = documents["article_folder"]
    assert len(articles) == 12
    assert {doc.kind for doc in articles} == {DocumentKind.ARTICLE}
    assert Counter(doc.language for doc in articles) == {"en": 9, "ko": 3}
    for article in articles:
        assert article.url is not None and article.url.startswith(KB_BASE_URL)
        assert article.title and article.parts and article.parts[0].format == "markdown"

    tickets = documents["file_export"]
    assert len(tickets) == 16
    assert {doc.kind for doc in tickets} == {DocumentKind.TICKET}
    assert {doc.source for doc in tickets} == {TICKET_SOURCE}
    assert Counter(doc.language for doc in tickets) == {"en": 12, "ko": 4}
    assert {"open", "pending", "resolved", "closed"} <= {doc.status for doc in tickets}
    assert all(doc.requester and doc.created_at and doc.url for doc in tickets)

    reviews = documents["review_export"]
    assert len(reviews) == 12
    assert Counter(doc.language for doc in reviews) == {"en": 7, "ko": 5}
    ratings = [doc.rating for doc in reviews]
    assert ratings.count(None) == 1
    assert {rating for rating in ratings if rating is not None} == {1, 2, 3, 4, 5}
    assert any(doc.status == "replied" for doc in reviews)
    assert any(doc.status == "unreplied" for doc in reviews)


async def test_naver_dates_are_seoul_time_and_the_unrated_review_is_kept() -> None:
    naver = next(s for p, s in demo_sources() if p == "review_export" and s["platform"] == "naver")
    reviews, failures = await read_source("review_export", naver)
    assert failures == []
    by_id = {doc.external_id: doc for doc in reviews}
    first = by_id["review:naver:nv-9001"]
    assert first.created_at == datetime(2024, 8, 14, 12, 10, tzinfo=UTC)  # 21:10 in Seoul
    assert first.language == "ko"
    unrated = by_id["review:naver:nv-9003"]
    assert unrated.rating is None
    assert "6,000원" in unrated.parts[0].text


async def test_the_open_tickets_are_answered_by_the_knowledge_base() -> None:
    documents = await read_all()
    tickets = {doc.external_id: doc for doc in documents["file_export"]}
    articles = {doc.metadata["path"]: doc for doc in documents["article_folder"]}

    english = tickets[f"ticket:{SAMPLE_OPEN_TICKET_ID}"]
    assert (english.status, english.language) == ("open", "en")
    assert "one Wi-Fi name" in english.parts[0].text
    hub_article = articles["en/hub-offline.md"].parts[0].text
    assert "only to 2.4 GHz Wi-Fi" in hub_article and "band steering" in hub_article

    korean = tickets[f"ticket:{SAMPLE_OPEN_TICKET_ID_KO}"]
    assert (korean.status, korean.language) == ("open", "ko")
    assert "배송비" in korean.parts[0].text
    refund_article = articles["ko/refund-policy.md"].parts[0].text
    assert "왕복 배송비 6,000원" in refund_article and "3~5일" in refund_article


async def test_ticket_threads_are_parts_with_private_notes_flagged() -> None:
    records = [json.loads(line) for line in TICKETS_FILE.read_text(encoding="utf-8").splitlines()]
    documents = {doc.external_id: doc for doc in (await read_all())["file_export"]}
    notes = 0
    for record in records:
        conversation = record["conversation"]
        assert conversation, record["id"]
        for entry in conversation:
            assert entry["author_role"] in {"customer", "agent"}
            if not entry["internal"]:
                continue
            notes += 1
            assert entry["author_role"] == "agent"
        parts = documents[f"ticket:{record['id']}"].parts
        for entry in conversation:
            (part,) = [p for p in parts if p.text == entry["text"]]
            assert part.internal == entry["internal"]
            assert part.label == ("note" if entry["internal"] else "reply")
        # The raw payload keeps the whole thread, notes marked, for the ticket endpoint.
        raw = documents[f"ticket:{record['id']}"].raw["record"]
        assert raw["conversation"] == conversation
    assert notes >= 8
