"""Freshdesk adapter against an in-memory Freshdesk v2 API (see freshdesk_api.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from freshdesk_api import (
    API_KEY,
    DOMAIN,
    NOW,
    FakeFreshdesk,
    iso,
    make_conversation,
    make_ticket,
)

from backend.adapters.base import DocumentKind, ManualClock, Page, SourceDocument
from backend.adapters.freshdesk import (
    FreshdeskAdapter,
    FreshdeskCheckpoint,
    FreshdeskCredentials,
    FreshdeskPhase,
    FreshdeskSettings,
)
from backend.adapters.http import RateLimiter
from backend.adapters.registry import build_adapter
from backend.errors import BadRequest


def dataset() -> FakeFreshdesk:
    """Tickets over 90 days (older than the 30-day default window), one spam, two deleted,
    a thread with a customer reply, an agent reply and a private note, and a small KB."""
    tickets = [make_ticket(n, NOW - timedelta(days=90 - n * 10)) for n in range(1, 8)]
    tickets.append(make_ticket(8, NOW - timedelta(days=1), spam=True, subject="WIN A PRIZE"))
    tickets[0]["status"] = 5
    tickets[1]["status"] = 3
    tickets[2]["status"] = 4
    tickets[3]["status"] = 6  # an account-defined status
    deleted = [
        make_ticket(900, NOW - timedelta(days=3)),
        make_ticket(901, NOW - timedelta(days=2)),
    ]
    conversations = {
        1: [
            make_conversation(
                101,
                1,
                body_text="I still have not received a replacement.",
                incoming=True,
                created_at=NOW - timedelta(days=88),
            ),
            make_conversation(
                102,
                1,
                body_text="Customer is a reseller; replacement approved by finance.",
                private=True,
                created_at=NOW - timedelta(days=87, hours=12),
            ),
            make_conversation(
                103,
                1,
                body_text="We have shipped a replacement, tracking number follows.",
                created_at=NOW - timedelta(days=87),
            ),
        ]
    }
    categories = [
        {"id": 11, "name": "Shipping", "description": None, "visible_in_portals": [1]},
        {"id": 12, "name": "Empty", "description": None, "visible_in_portals": [1]},
    ]
    folders = {
        11: [
            {"id": 21, "name": "Returns", "description": None, "visibility": 1},
            {"id": 22, "name": "Delivery", "description": None, "visibility": 1},
        ]
    }

    def article(article_id: int, folder_id: int, status: int, title: str) -> dict[str, Any]:
        return {
            "id": article_id,
            "type": 1,
            "category_id": 11,
            "folder_id": folder_id,
            "agent_id": 77001,
            "title": title,
            "description": f"<p>{title}: step-by-step instructions.</p>",
            "description_text": f"{title}: step-by-step instructions.",
            "status": status,
            "tags": ["howto"],
            "seo_data": {},
            "hits": 10,
            "thumbs_up": 2,
            "thumbs_down": 0,
            "created_at": iso(NOW - timedelta(days=200)),
            "updated_at": iso(NOW - timedelta(days=100)),
        }

    articles = {
        21: [
            article(31, 21, 2, "How to return an item"),
            article(32, 21, 1, "Draft: new return policy"),
        ],
        22: [article(33, 22, 2, "Delivery times by region")],
    }
    return FakeFreshdesk(
        tickets=tickets,
        deleted=deleted,
        conversations=conversations,
        categories=categories,
        folders=folders,
        articles=articles,
    )


def adapter_for(
    api: FakeFreshdesk, clock: ManualClock, client: httpx.AsyncClient, **settings: Any
) -> FreshdeskAdapter:
    return FreshdeskAdapter(
        settings=FreshdeskSettings(domain="acme", **settings),
        credentials=FreshdeskCredentials(api_key=API_KEY),
        client=client,
        limiter=RateLimiter.unlimited(clock=clock),
        clock=clock,
    )


async def drain(
    adapter: FreshdeskAdapter, checkpoint: FreshdeskCheckpoint, *, max_pages: int = 500
) -> tuple[list[Page[FreshdeskCheckpoint]], FreshdeskCheckpoint]:
    """Fetch until done, storing the checkpoint as JSON between pages as ingest does."""
    pages: list[Page[FreshdeskCheckpoint]] = []
    for _ in range(max_pages):
        page = await adapter.fetch_page(checkpoint)
        pages.append(page)
        checkpoint = adapter.checkpoint_type.model_validate_json(page.checkpoint.model_dump_json())
        if page.blocked or not page.has_more:
            return pages, checkpoint
    raise AssertionError("adapter did not finish")


def documents(pages: list[Page[FreshdeskCheckpoint]]) -> list[SourceDocument]:
    return [d for p in pages for d in p.documents]


def ticket_ids(pages: list[Page[FreshdeskCheckpoint]]) -> list[str]:
    return [d.external_id for d in documents(pages) if d.kind is DocumentKind.TICKET]


async def test_full_sync_normalizes_tickets_articles_and_deletions() -> None:
    api, clock = dataset(), ManualClock(NOW)
    async with api.client() as client:
        adapter = adapter_for(api, clock, client)
        pages, final = await drain(adapter, adapter.initial_checkpoint())

    assert not final.has_more and final.phase is FreshdeskPhase.DONE
    assert all(not p.failures for p in pages)
    # Every non-spam ticket exactly once, including those older than 30 days.
    assert sorted(ticket_ids(pages)) == [f"ticket:{n}" for n in range(1, 8)]
    by_id = {d.external_id: d for d in documents(pages)}

    thread = by_id["ticket:1"]
    assert thread.status == "closed"
    assert thread.url == f"https://{DOMAIN}/a/tickets/1"
    assert thread.requester == "customer1@example.org"
    assert thread.metadata["custom_fields"]["cf_order_number"] == "4001"
    assert thread.metadata["priority"] == "medium"
    assert [(p.label, p.author_role, p.internal) for p in thread.parts] == [
        ("subject", "customer", False),
        ("description", "customer", False),
        ("reply", "customer", False),
        ("note", "agent", True),
        ("reply", "agent", False),
    ]
    assert "reseller" in thread.parts[3].text
    assert thread.raw["ticket"]["id"] == 1 and len(thread.raw["conversations"]) == 3
    assert [by_id[f"ticket:{n}"].status for n in (2, 3, 4)] == ["pending", "resolved", "pending"]

    articles = {d.external_id: d for d in documents(pages) if d.kind is DocumentKind.ARTICLE}
    assert set(articles) == {"article:31", "article:33"}
    assert articles["article:31"].metadata["folder"] == "Returns"
    assert articles["article:31"].metadata["category"] == "Shipping"
    assert articles["article:31"].status == "published"

    deletions = {(d.external_id, d.reason) for p in pages for d in p.deletions}
    assert deletions == {
        ("article:32", "draft"),
        ("ticket:8", "spam"),
        ("ticket:900", "deleted"),
        ("ticket:901", "deleted"),
    }

    listing = api.requests_to("/api/v2/tickets")[0].url.params
    assert listing["order_by"] == "updated_at" and listing["order_type"] == "asc"
    assert listing["updated_since"] == "2000-01-01T00:00:00Z"
    assert set(listing["include"].split(",")) == {"description", "requester"}
    assert clock.sleeps == []


async def test_conversations_follow_link_paging() -> None:
    api, clock = dataset(), ManualClock(NOW)
    api.conversations[2] = [
        make_conversation(
            200 + n, 2, body_text=f"message {n}", created_at=NOW - timedelta(hours=10 - n)
        )
        for n in range(5)
    ]
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, per_page=2, include_articles=False)
        pages, _ = await drain(adapter, adapter.initial_checkpoint())

    thread = next(d for d in documents(pages) if d.external_id == "ticket:2")
    assert [p.text for p in thread.parts if p.label == "reply"] == [
        f"<div>message {n}</div>" for n in range(5)
    ]
    conversation_pages = api.requests_to("/api/v2/tickets/2/conversations")
    assert [r.url.params.get("page", "1") for r in conversation_pages] == ["1", "2", "3"]


async def test_inclusive_updated_since_boundary_is_deduplicated() -> None:
    # Ten tickets in three distinct seconds, read two per page: every window roll re-lists
    # the tickets at its (inclusive) start, which must not be emitted twice.
    stamps = [NOW - timedelta(hours=3)] * 3 + [NOW - timedelta(hours=2)] * 4
    stamps += [NOW - timedelta(hours=1)] * 3
    api = FakeFreshdesk(tickets=[make_ticket(n + 1, at) for n, at in enumerate(stamps)])
    clock = ManualClock(NOW)
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, per_page=2, include_articles=False)
        pages, final = await drain(adapter, adapter.initial_checkpoint())

    ids = ticket_ids(pages)
    assert sorted(ids) == sorted(f"ticket:{n}" for n in range(1, 11))
    assert len(ids) == len(set(ids))
    sent = {r.url.params["updated_since"] for r in api.requests_to("/api/v2/tickets")}
    assert iso(NOW - timedelta(hours=2)) in sent  # the window really rolled forward
    assert final.tickets.since == NOW - timedelta(hours=1)


async def test_page_cap_is_never_exceeded_and_window_rolls_forward() -> None:
    # 40 tickets at two per page need 20 pages; the server refuses pages above 3.
    api = FakeFreshdesk(
        tickets=[make_ticket(n, NOW - timedelta(minutes=100 - n)) for n in range(1, 41)],
        page_cap=3,
    )
    clock = ManualClock(NOW)
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, per_page=2, max_pages=3, include_articles=False)
        pages, _ = await drain(adapter, adapter.initial_checkpoint())

    assert sorted(ticket_ids(pages)) == sorted(f"ticket:{n}" for n in range(1, 41))
    assert all(not p.failures for p in pages)
    listing = api.requests_to("/api/v2/tickets")
    assert max(int(r.url.params["page"]) for r in listing) <= 3
    assert len({r.url.params["updated_since"] for r in listing}) > 3


async def test_more_tickets_in_one_second_than_the_cap_allows_is_a_reported_failure() -> None:
    bulk = NOW - timedelta(hours=5)
    tickets = [make_ticket(n, bulk) for n in range(1, 8)]  # 7 tickets, one second
    tickets += [make_ticket(50, NOW - timedelta(hours=4)), make_ticket(51, NOW)]
    api = FakeFreshdesk(tickets=tickets, page_cap=3)
    clock = ManualClock(NOW)
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, per_page=2, max_pages=3, include_articles=False)
        pages, final = await drain(adapter, adapter.initial_checkpoint())

    failures = [f for p in pages for f in p.failures]
    assert len(failures) == 1 and not failures[0].retryable
    assert iso(bulk) in failures[0].message
    ids = ticket_ids(pages)
    assert len(ids) == len(set(ids)) == 8  # 6 of the bulk second (3 pages x 2), then the rest
    assert {"ticket:50", "ticket:51"} <= set(ids)
    assert all(int(r.url.params["page"]) <= 3 for r in api.requests_to("/api/v2/tickets"))
    assert not final.has_more


async def test_429_waits_the_advertised_retry_after() -> None:
    api, clock = dataset(), ManualClock(NOW)
    api.fail(
        "/api/v2/tickets",
        httpx.Response(429, json={"description": "rate limited"}, headers={"Retry-After": "17"}),
    )
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, include_articles=False)
        pages, final = await drain(adapter, adapter.initial_checkpoint())

    assert clock.sleeps == [17.0]
    assert sorted(ticket_ids(pages)) == [f"ticket:{n}" for n in range(1, 8)]
    assert all(not p.failures for p in pages) and not final.has_more


async def test_server_error_and_timeout_are_retried() -> None:
    api, clock = dataset(), ManualClock(NOW)
    api.fail("/api/v2/tickets/1/conversations", httpx.Response(503, text="Service Unavailable"))
    api.fail("/api/v2/solutions/categories", httpx.ReadTimeout("timed out"))
    async with api.client() as client:
        adapter = adapter_for(api, clock, client)
        pages, _ = await drain(adapter, adapter.initial_checkpoint())

    assert all(not p.failures for p in pages)
    assert len(clock.sleeps) == 2  # one backoff per transient failure
    thread = next(d for d in documents(pages) if d.external_id == "ticket:1")
    assert len(thread.raw["conversations"]) == 3
    assert {d.external_id for d in documents(pages)} >= {"article:31", "article:33"}


async def test_persistent_failures_are_values() -> None:
    api, clock = dataset(), ManualClock(NOW)
    api.fail("/api/v2/tickets/3/conversations", *[httpx.Response(502) for _ in range(3)])
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, max_attempts=3, include_articles=False)
        pages, final = await drain(adapter, adapter.initial_checkpoint())

    failures = [f for p in pages for f in p.failures]
    assert [(f.where, f.status_code, f.retryable) for f in failures] == [("ticket:3", 502, True)]
    assert "ticket:3" not in ticket_ids(pages)
    assert len(ticket_ids(pages)) == 6 and not final.has_more


async def test_listing_failure_blocks_without_losing_the_checkpoint() -> None:
    api, clock = dataset(), ManualClock(NOW)
    api.fail("/api/v2/tickets", *[httpx.Response(500) for _ in range(2)])
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, max_attempts=2, include_articles=False)
        start = adapter.initial_checkpoint()
        page = await adapter.fetch_page(start)
        assert page.blocked and page.checkpoint == start and page.has_more
        assert page.failures[0].status_code == 500 and page.failures[0].retryable
        # The next run resumes from the same checkpoint and succeeds.
        pages, _ = await drain(adapter, page.checkpoint)
    assert sorted(ticket_ids(pages)) == [f"ticket:{n}" for n in range(1, 8)]


async def test_bad_api_key_is_a_non_retryable_failure() -> None:
    api, clock = dataset(), ManualClock(NOW)
    async with api.client() as client:
        adapter = FreshdeskAdapter(
            settings=FreshdeskSettings(domain=DOMAIN),
            credentials=FreshdeskCredentials(api_key="wrong"),
            client=client,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
        )
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert page.blocked
    assert [(f.status_code, f.retryable) for f in page.failures] == [(401, False)]
    assert clock.sleeps == []


async def test_resume_after_each_page_yields_no_duplicates_and_no_losses() -> None:
    reference_api = dataset()
    reference_api.tickets += [make_ticket(n, NOW - timedelta(hours=n)) for n in range(20, 32)]
    clock = ManualClock(NOW)
    async with reference_api.client() as client:
        adapter = adapter_for(reference_api, clock, client, per_page=3)
        reference, _ = await drain(adapter, adapter.initial_checkpoint())
    expected = sorted(d.external_id for d in documents(reference))

    # Kill the run after every page: a new adapter and client each time, resuming from the
    # JSON checkpoint only.
    api = dataset()
    api.tickets += [make_ticket(n, NOW - timedelta(hours=n)) for n in range(20, 32)]
    stored = adapter_for(api, clock, httpx.AsyncClient()).initial_checkpoint().model_dump_json()
    seen: list[str] = []
    for _ in range(200):
        async with api.client() as client:
            adapter = adapter_for(api, clock, client, per_page=3)
            page = await adapter.fetch_page(FreshdeskCheckpoint.model_validate_json(stored))
        seen += [d.external_id for d in page.documents]
        stored = page.checkpoint.model_dump_json()
        if not page.has_more:
            break
    assert sorted(seen) == expected
    assert len(seen) == len(set(seen))


async def test_incremental_sync_from_the_high_water_mark() -> None:
    api, clock = dataset(), ManualClock(NOW)
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, include_articles=False)
        _, final = await drain(adapter, adapter.initial_checkpoint())
        api.tickets.append(make_ticket(60, NOW + timedelta(minutes=5)))
        pages, _ = await drain(adapter, adapter.initial_checkpoint(since=final.tickets.since))
    # The newest ticket of the first run is at the inclusive bound, so it comes back: ingest
    # is idempotent by content hash, and the new ticket is there.
    assert "ticket:60" in ticket_ids(pages)
    assert "ticket:1" not in ticket_ids(pages)


def deletions_of(pages: list[Page[FreshdeskCheckpoint]]) -> set[tuple[str, str]]:
    return {(d.external_id, d.reason) for p in pages for d in p.deletions}


def articles_of(pages: list[Page[FreshdeskCheckpoint]]) -> dict[str, SourceDocument]:
    return {d.external_id: d for d in documents(pages) if d.kind is DocumentKind.ARTICLE}


async def test_finished_checkpoint_starts_the_next_incremental_round() -> None:
    api, clock = dataset(), ManualClock(NOW)
    async with api.client() as client:
        # Two per page, so every listing pages and rolls its window.
        adapter = adapter_for(api, clock, client, per_page=2)
        first, finished = await drain(adapter, adapter.initial_checkpoint())
        assert not finished.has_more and finished.phase is FreshdeskPhase.DONE
        assert sorted(ticket_ids(first)) == [f"ticket:{n}" for n in range(1, 8)]
        newest_ticket = api.tickets[6]  # ticket 7: at the saved window's inclusive bound

        # Changes on the platform: one ticket updated, one created, one deleted (it leaves the
        # plain listing for filter=deleted), one marked spam, one article edited.
        changed = NOW + timedelta(minutes=5)
        api.tickets[2] = make_ticket(3, changed, subject="Replacement arrived damaged too")
        api.tickets.append(make_ticket(60, changed + timedelta(minutes=1)))
        deleted = api.tickets.pop(4)
        assert deleted["id"] == 5
        api.deleted.append({**deleted, "updated_at": iso(changed + timedelta(minutes=2))})
        spam = next(t for t in api.tickets if t["id"] == 6)
        spam.update(spam=True, updated_at=iso(changed + timedelta(minutes=3)))
        edited = api.articles[22][0]
        edited.update(title="Delivery times by region (2025)", updated_at=iso(changed))
        # The next sync runs a few minutes after those changes (a read at the very second of a
        # change would leave that ticket's thread to be re-read once, see windowing.EDGE_SETTLE).
        clock.advance((changed + timedelta(minutes=10) - NOW).total_seconds())
        sent_before = len(api.requests)

        second, finished_again = await drain(adapter, finished)
        listings = [
            r.url.params for r in api.requests[sent_before:] if r.url.path == "/api/v2/tickets"
        ]
        # The ticket at the inclusive bound is listed again but skipped (same id and digest at
        # the edge), so the round yields exactly the changed tickets and the new deletions.
        assert sorted(ticket_ids(second)) == ["ticket:3", "ticket:60"]
        updated = next(d for d in documents(second) if d.external_id == "ticket:3")
        assert updated.title == "Replacement arrived damaged too"
        assert deletions_of(second) == {
            ("ticket:5", "deleted"),
            ("ticket:6", "spam"),
            ("article:32", "draft"),  # articles are re-read each round (no updated filter)
        }
        # Not from scratch: every listing starts at the saved watermarks.
        ticket_listings = [p for p in listings if p.get("filter") is None]
        assert ticket_listings[0]["updated_since"] == newest_ticket["updated_at"]
        assert all(p["updated_since"] != "2000-01-01T00:00:00Z" for p in ticket_listings)
        deleted_listing = next(p for p in listings if p.get("filter") == "deleted")
        assert deleted_listing["updated_since"] == iso(NOW - timedelta(days=2))
        # Articles are all listed again (no updated-since filter), but only the edited one is
        # emitted: the unchanged one matches its saved digest.
        articles = articles_of(second)
        assert list(articles) == ["article:33"]
        assert articles["article:33"].title == "Delivery times by region (2025)"
        assert not finished_again.has_more

        # A round with no changes: no tickets, no ticket deletions and no articles; the
        # draft's deletion is reported again (idempotent, and counted in the run).
        third, finished_quiet = await drain(adapter, finished_again)
        assert ticket_ids(third) == []
        assert deletions_of(third) == {("article:32", "draft")}
        assert articles_of(third) == {}

        # That quiet round ended on page 2 of its ticket window (page 1 held only the ticket at
        # the bound); the next round still starts at page 1, where a new ticket sorts.
        api.tickets.append(make_ticket(61, changed + timedelta(minutes=10)))
        fourth, _ = await drain(adapter, finished_quiet)
    assert ticket_ids(fourth) == ["ticket:61"]
    assert all(not p.failures for p in first + second + third + fourth)


def test_registry_validates_connector_input() -> None:
    client = httpx.AsyncClient()
    adapter = build_adapter(
        "freshdesk", {"domain": "https://ACME.freshdesk.com/"}, {"api_key": API_KEY}, client=client
    )
    assert isinstance(adapter, FreshdeskAdapter)
    assert adapter.settings.domain == DOMAIN

    with pytest.raises(BadRequest) as bad_domain:
        build_adapter("freshdesk", {"domain": "acme.com/evil"}, {"api_key": "k"}, client=client)
    assert bad_domain.value.code == "invalid_connector_settings"
    assert bad_domain.value.detail[0]["field"] == "domain"

    with pytest.raises(BadRequest) as bad_key:
        build_adapter("freshdesk", {"domain": "acme"}, {"api_key": ""}, client=client)
    assert bad_key.value.code == "invalid_connector_credentials"

    with pytest.raises(BadRequest) as secret_echo:
        build_adapter(
            "freshdesk", {"domain": "acme"}, {"api_key": "s3cret", "extra": "s3cret"}, client=client
        )
    assert "s3cret" not in str(secret_echo.value.detail)

    with pytest.raises(BadRequest) as unknown:
        build_adapter("freshservice", {}, {}, client=client)
    assert unknown.value.code == "unknown_platform"
