"""Zendesk adapter against a replay of the documented Zendesk API payloads."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from platform_replay import Replay, fixture_json, json_response, rate_limited, server_error
from pydantic import ValidationError

from backend.adapters.base import DocumentKind, ManualClock, Page
from backend.adapters.http import RateLimiter
from backend.adapters.zendesk import (
    ZendeskAdapter,
    ZendeskCheckpoint,
    ZendeskCredentials,
    ZendeskSettings,
)

TICKETS = "/api/v2/incremental/tickets/cursor.json"
ARTICLES = "/api/v2/help_center/incremental/articles.json"
PAGE1_CURSOR = "MTcwOTYzMjk2NS4wfHwxMDJ8"
PAGE2_CURSOR = "MTcwOTYzODgwMC4wfHwxMDN8"


def comments_path(ticket_id: int) -> str:
    return f"/api/v2/tickets/{ticket_id}/comments.json"


def long_thread(ticket_id: int, count: int, page_size: int = 100) -> list[httpx.Response]:
    """A ticket with ``count`` comments, paged as Zendesk's cursor pagination does."""
    comments = [
        {
            "id": ticket_id * 1000 + n,
            "type": "Comment",
            "author_id": 36101 if n % 2 == 0 else 90001,
            "body": f"메시지 {n}: 이어폰 상태 확인 부탁드립니다.",
            "plain_body": f"메시지 {n}: 이어폰 상태 확인 부탁드립니다.",
            "html_body": f"<p>메시지 {n}</p>",
            "public": n % 10 != 5,
            "attachments": [],
            "created_at": f"2024-03-04T{n // 60:02d}:{n % 60:02d}:00Z",
        }
        for n in range(count)
    ]
    pages = [comments[i : i + page_size] for i in range(0, count, page_size)]
    responses = []
    for index, chunk in enumerate(pages):
        last = index == len(pages) - 1
        after = f"cursor-{ticket_id}-{index + 1}"
        responses.append(
            json_response(
                {
                    "comments": chunk,
                    "meta": {"has_more": not last, "after_cursor": after, "before_cursor": "b"},
                    "links": {
                        "next": None
                        if last
                        else f"https://acme.zendesk.com{comments_path(ticket_id)}"
                        f"?page%5Bafter%5D={after}&page%5Bsize%5D={page_size}",
                        "prev": None,
                    },
                }
            )
        )
    return responses


def build(
    replay: Replay, clock: ManualClock, **settings: Any
) -> tuple[ZendeskAdapter, httpx.AsyncClient]:
    client = replay.client()
    adapter = ZendeskAdapter(
        settings=ZendeskSettings(subdomain="acme", **settings),
        credentials=ZendeskCredentials(email="agent@acme.example", api_token="tok-123"),
        client=client,
        limiter=RateLimiter.unlimited(clock=clock),
        clock=clock,
    )
    return adapter, client


def standard_replay() -> Replay:
    replay = Replay()
    replay.on(TICKETS, json_response(fixture_json("zendesk/tickets_cursor_page1.json")))
    replay.on(TICKETS, json_response(fixture_json("zendesk/tickets_cursor_page2.json")))
    replay.on(comments_path(101), *long_thread(101, 130))
    replay.on(comments_path(102), json_response(fixture_json("zendesk/comments_ticket_102.json")))
    replay.on(ARTICLES, json_response(fixture_json("zendesk/articles_incremental_page1.json")))
    replay.on(ARTICLES, json_response(fixture_json("zendesk/articles_incremental_page2.json")))
    source_translations_only(replay)
    return replay


def source_translations_only(replay: Replay) -> None:
    """Each fixture article is published in its source locale only (the translations
    listing always includes the source translation), without attached files."""
    for page in ("articles_incremental_page1.json", "articles_incremental_page2.json"):
        for article in fixture_json(f"zendesk/{page}")["articles"]:
            replay.on(
                f"/api/v2/help_center/articles/{article['id']}/attachments.json",
                json_response({"article_attachments": []}),
                repeat_last=True,
            )
            translation = {
                key: article[key]
                for key in ("title", "body", "locale", "draft", "outdated", "html_url")
            }
            replay.on(
                f"/api/v2/help_center/articles/{article['id']}/translations.json",
                json_response(
                    {
                        "translations": [
                            {
                                **translation,
                                "id": article["id"] + 1000,
                                "source_id": article["id"],
                                "source_type": "Article",
                            }
                        ],
                        "next_page": None,
                        "previous_page": None,
                        "count": 1,
                    }
                ),
                repeat_last=True,
            )


async def drain(
    adapter: ZendeskAdapter, checkpoint: ZendeskCheckpoint, limit: int = 20
) -> list[Page[ZendeskCheckpoint]]:
    pages = []
    for _ in range(limit):
        page = await adapter.fetch_page(checkpoint)
        pages.append(page)
        checkpoint = page.checkpoint
        if not page.has_more:
            return pages
    raise AssertionError("sync did not finish")


async def test_full_sync_maps_tickets_comments_deletions_and_articles() -> None:
    clock = ManualClock()
    replay = standard_replay()
    adapter, client = build(replay, clock)
    async with client:
        pages = await drain(adapter, adapter.initial_checkpoint())

    documents = {doc.external_id: doc for page in pages for doc in page.documents}
    deletions = [deletion for page in pages for deletion in page.deletions]
    assert [page.failures for page in pages] == [[] for _ in pages]
    assert set(documents) == {"ticket:101", "ticket:102", "article:360050001", "article:360050002"}
    assert {(d.external_id, d.reason) for d in deletions} == {
        ("ticket:103", "deleted"),
        ("article:360050003", "draft"),
    }

    # 130 comments over two cursor pages, all kept in order after the subject.
    korean = documents["ticket:101"]
    assert korean.title == "환불 요청: 주문 번호 20240301-7781"
    assert korean.status == "open"
    assert korean.requester == "minji.kim@example.kr"
    assert len(korean.parts) == 1 + 130
    assert korean.parts[1].label == "description"
    assert korean.parts[-1].text.startswith("메시지 129:")
    internal = [part for part in korean.parts if part.internal]
    assert len(internal) == 13
    assert all(part.label == "note" for part in internal)
    assert korean.url == "https://acme.zendesk.com/agent/tickets/101"

    solved = documents["ticket:102"]
    assert solved.status == "resolved"
    labels = [(part.label, part.internal, part.author_role) for part in solved.parts]
    assert labels == [
        ("subject", False, "customer"),
        ("description", False, "customer"),
        ("note", True, "agent"),
        ("reply", False, "agent"),
    ]
    assert solved.requester == "zendesk-user:36102"
    assert solved.metadata["priority"] == "high"
    assert solved.raw["ticket"]["id"] == 102

    article = documents["article:360050001"]
    assert article.kind is DocumentKind.ARTICLE
    assert article.language == "ko"
    assert article.parts[0].format == "html"
    assert "14일 이내" in article.parts[0].text
    assert documents["article:360050002"].metadata["outdated"] is True

    # What was sent: the export starts from start_time, then follows after_cursor.
    exports = replay.sent(TICKETS)
    assert exports[0].url.params["start_time"] == "0"
    assert exports[1].url.params["cursor"] == PAGE1_CURSOR
    first_comments = replay.sent(comments_path(101))
    assert first_comments[0].url.params["page[size]"] == "100"
    assert first_comments[1].url.params["page[after]"] == "cursor-101-1"
    assert replay.sent(comments_path(103)) == []
    assert replay.sent(ARTICLES)[1].url.params["start_time"] == "1709366400"
    expected = base64.b64encode(b"agent@acme.example/token:tok-123").decode()
    assert all(r.headers["authorization"] == f"Basic {expected}" for r in replay.requests)

    final = pages[-1].checkpoint
    assert final.ticket_cursor == PAGE2_CURSOR
    assert final.article_start_time == 1709429400
    assert clock.sleeps == []


async def test_checkpoint_round_trips_through_json_and_resumes_without_gaps() -> None:
    clock = ManualClock()
    adapter, client = build(standard_replay(), clock)
    async with client:
        full = await drain(adapter, adapter.initial_checkpoint())
    expected = sorted(doc.external_id for page in full for doc in page.documents)

    # A second run killed after each page and resumed from the stored JSON in a new adapter.
    replay = standard_replay()
    seen: list[str] = []
    stored = build(replay, clock)[0].initial_checkpoint().model_dump_json()
    for _ in range(10):
        adapter, client = build(replay, clock)
        async with client:
            page = await adapter.fetch_page(adapter.checkpoint_type.model_validate_json(stored))
        seen.extend(doc.external_id for doc in page.documents)
        stored = page.checkpoint.model_dump_json()
        if not page.has_more:
            break
    assert sorted(seen) == expected
    assert len(seen) == len(set(seen))


async def test_finished_round_continues_from_saved_cursors() -> None:
    clock = ManualClock()
    finished = ZendeskCheckpoint(
        phase="articles", ticket_cursor=PAGE2_CURSOR, article_start_time=1709429400, has_more=False
    )
    replay = Replay()
    replay.on(
        TICKETS,
        json_response(
            {"tickets": [], "after_url": None, "after_cursor": None, "end_of_stream": True}
        ),
        query={"cursor": PAGE2_CURSOR},
    )
    replay.on(
        ARTICLES,
        json_response({"articles": [], "next_page": None, "count": 0, "end_time": 1709500000}),
        query={"start_time": "1709429400"},
    )
    adapter, client = build(replay, clock)
    async with client:
        pages = await drain(adapter, finished)
    assert all(not page.documents and not page.failures for page in pages)
    # No new tickets: the old cursor still holds; articles move to the new end_time.
    assert pages[-1].checkpoint.ticket_cursor == PAGE2_CURSOR
    assert pages[-1].checkpoint.article_start_time == 1709500000


async def test_since_limits_the_first_export() -> None:
    clock = ManualClock()
    replay = standard_replay()
    adapter, client = build(replay, clock, include_articles=False)
    since = datetime(2024, 3, 1, tzinfo=UTC)
    async with client:
        await drain(adapter, adapter.initial_checkpoint(since))
    assert replay.sent(TICKETS)[0].url.params["start_time"] == str(int(since.timestamp()))
    assert replay.sent(ARTICLES) == []


async def test_rate_limit_waits_retry_after_on_the_injected_clock() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on(
        TICKETS,
        rate_limited(7),
        json_response(fixture_json("zendesk/tickets_cursor_page2.json")),
    )
    adapter, client = build(replay, clock, include_articles=False)
    async with client:
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert clock.sleeps == [7.0]
    assert len(replay.sent(TICKETS)) == 2
    assert page.failures == []
    assert [d.external_id for d in page.deletions] == ["ticket:103"]


async def test_server_error_then_success_and_timeout_then_success() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on(
        TICKETS,
        httpx.ReadTimeout("read timed out"),
        json_response(fixture_json("zendesk/tickets_cursor_page1.json")),
    )
    replay.on(comments_path(101), server_error(502), *long_thread(101, 3))
    replay.on(comments_path(102), json_response(fixture_json("zendesk/comments_ticket_102.json")))
    adapter, client = build(replay, clock, include_articles=False)
    async with client:
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert page.failures == []
    assert {doc.external_id for doc in page.documents} == {"ticket:101", "ticket:102"}
    # One backoff for the timeout, one for the 502; both on the injected clock.
    assert len(clock.sleeps) == 2
    assert all(delay > 0 for delay in clock.sleeps)
    assert page.checkpoint.ticket_cursor == PAGE1_CURSOR


async def test_persistent_comment_failure_is_a_value_and_the_export_moves_on() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on(TICKETS, json_response(fixture_json("zendesk/tickets_cursor_page1.json")))
    replay.on(comments_path(101), *long_thread(101, 2))
    replay.on(comments_path(102), server_error(500), repeat_last=True)
    adapter, client = build(replay, clock, include_articles=False, max_attempts=3)
    async with client:
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert [doc.external_id for doc in page.documents] == ["ticket:101"]
    [failure] = page.failures
    assert failure.where == "ticket:102"
    assert failure.status_code == 500
    assert failure.retryable is True
    assert len(replay.sent(comments_path(102))) == 3
    assert page.checkpoint.ticket_cursor == PAGE1_CURSOR
    assert not page.blocked


async def test_persistent_export_failure_keeps_the_checkpoint() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on(TICKETS, httpx.ConnectTimeout("connect timed out"), repeat_last=True)
    adapter, client = build(replay, clock, max_attempts=2)
    start = ZendeskCheckpoint(ticket_cursor=PAGE1_CURSOR)
    async with client:
        page = await adapter.fetch_page(start)
    assert page.checkpoint == start
    assert page.blocked
    assert page.documents == []
    [failure] = page.failures
    assert failure.retryable is True
    assert "timed out" in failure.message


async def test_unauthorized_is_a_non_retryable_failure() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on(TICKETS, json_response({"error": "Couldn't authenticate you"}, status=401))
    adapter, client = build(replay, clock)
    async with client:
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    [failure] = page.failures
    assert failure.status_code == 401
    assert failure.retryable is False
    assert len(replay.requests) == 1


async def test_oauth_token_and_injected_base_url() -> None:
    clock = ManualClock()
    replay = Replay()
    replay.on("/zd" + TICKETS, json_response(fixture_json("zendesk/tickets_cursor_page1.json")))
    replay.on("/zd" + comments_path(101), *long_thread(101, 150))
    replay.on(
        "/zd" + comments_path(102), json_response(fixture_json("zendesk/comments_ticket_102.json"))
    )
    async with replay.client() as client:
        adapter = ZendeskAdapter(
            settings=ZendeskSettings(
                subdomain="https://acme.zendesk.com", base_url="http://127.0.0.1:8765/zd"
            ),
            credentials=ZendeskCredentials(oauth_token="oauth-abc"),
            client=client,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
        )
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert page.failures == []
    assert all(r.headers["authorization"] == "Bearer oauth-abc" for r in replay.requests)
    assert all(r.url.host == "127.0.0.1" for r in replay.requests)
    # links.next pointed at acme.zendesk.com; it was followed on the configured root.
    assert len(replay.sent("/zd" + comments_path(101))) == 2
    documents = {doc.external_id: doc for doc in page.documents}
    assert len(documents["ticket:101"].parts) == 151
    assert documents["ticket:101"].url == "https://acme.zendesk.com/agent/tickets/101"


async def test_articles_sharing_one_second_do_not_loop_forever() -> None:
    clock = ManualClock()
    replay = Replay()
    body = fixture_json("zendesk/articles_incremental_page1.json")
    body["next_page"] = (
        "https://acme.zendesk.com/api/v2/help_center/incremental/articles.json?start_time=1709366400"
    )
    body["end_time"] = 1709366400
    replay.on(ARTICLES, json_response(body))
    source_translations_only(replay)
    adapter, client = build(replay, clock, include_tickets=False)
    async with client:
        page = await adapter.fetch_page(
            ZendeskCheckpoint(phase="articles", article_start_time=1709366400)
        )
    assert len(page.documents) == 2
    [failure] = page.failures
    assert failure.retryable is False
    assert page.checkpoint.article_start_time == 1709366401
    assert page.has_more


def article_path(article_id: int, locale: str | None = None) -> str:
    where = f"/{locale}" if locale else ""
    return f"/api/v2/help_center{where}/articles/{article_id}.json"


async def test_fetch_item_reads_one_article_as_the_export_builds_it() -> None:
    """A webhook's ``article:<id>``: ``GET /api/v2/help_center/articles/<id>.json``, then the
    export's own rules (files, translations, drafts); a 404 is a deletion."""
    published, edited = fixture_json("zendesk/articles_incremental_page1.json")["articles"]
    [draft] = fixture_json("zendesk/articles_incremental_page2.json")["articles"]
    replay = standard_replay()
    replay.on(article_path(360050001), json_response({"article": published}))
    # Without a locale Zendesk may answer with another translation than the source locale's.
    korean_view = {**edited, "locale": "ko", "title": "비밀번호 재설정", "body": "<p>재설정</p>"}
    replay.on(article_path(360050002), json_response({"article": korean_view}))
    replay.on(article_path(360050002, "en-us"), json_response({"article": edited}))
    replay.on(article_path(360050003), json_response({"article": draft}), repeat_last=True)
    replay.on(article_path(360050099), json_response({"error": "RecordNotFound"}, 404))
    adapter, client = build(replay, ManualClock(), include_tickets=False)
    async with client:
        exported = {
            d.external_id: d
            for page in await drain(adapter, adapter.initial_checkpoint())
            for d in page.documents
        }
        found = await adapter.fetch_item("article:360050001")
        localized = await adapter.fetch_item("article:360050002")
        unpublished = await adapter.fetch_item("article:360050003")
        gone = await adapter.fetch_item("article:360050099")
        drafts_indexed, _ = build(replay, ManualClock(), include_draft_articles=True)
        kept_draft = await drafts_indexed.fetch_item("article:360050003")
        sent = len(replay.requests)
        no_articles, _ = build(replay, ManualClock(), include_articles=False)
        excluded = await no_articles.fetch_item("article:360050001")
        assert len(replay.requests) == sent

    assert found.documents == [exported["article:360050001"]] and not found.failures
    assert localized.documents == [exported["article:360050002"]]
    assert localized.documents[0].title == "Resetting your password"
    assert len(replay.sent(article_path(360050002, "en-us"))) == 1
    assert [(d.external_id, d.reason) for d in unpublished.deletions] == [
        ("article:360050003", "draft")
    ]
    assert not unpublished.documents and unpublished.counts == {"skipped.draft_article": 1}
    assert [(d.external_id, d.reason) for d in gone.deletions] == [("article:360050099", "deleted")]
    assert [d.status for d in kept_draft.documents] == ["draft"]
    assert excluded.counts == {"skipped.article_not_included": 1} and not excluded.documents


def test_credentials_need_exactly_one_method() -> None:
    with pytest.raises(ValidationError):
        ZendeskCredentials(email="agent@acme.example")
    with pytest.raises(ValidationError):
        ZendeskCredentials(email="a@b.c", api_token="t", oauth_token="o")
    with pytest.raises(ValidationError):
        ZendeskSettings(subdomain="not a domain")
    assert ZendeskSettings(subdomain="Acme.zendesk.com").subdomain == "acme"
