"""ServiceNow adapter against an in-memory Table API (see servicenow_api.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from servicenow_api import (
    INSTANCE,
    NOW,
    PASSWORD,
    TOKEN,
    USER,
    FakeServiceNow,
    make_article,
    make_incident,
    make_journal,
    sn_time,
    sys_id,
)

from backend.adapters.base import DocumentKind, FetchedItem, ManualClock, Page, SourceDocument
from backend.adapters.http import RateLimiter
from backend.adapters.registry import build_adapter
from backend.adapters.servicenow import (
    ServiceNowAdapter,
    ServiceNowCheckpoint,
    ServiceNowCredentials,
    ServiceNowPhase,
    ServiceNowSettings,
)
from backend.errors import BadRequest


def dataset() -> FakeServiceNow:
    api = FakeServiceNow()
    incidents = [make_incident(n, NOW - timedelta(hours=30 - n)) for n in range(1, 11)]
    incidents[0]["state"] = "6"
    incidents[0]["close_notes"] = "Reinstalled the VPN profile."
    incidents[1]["state"] = "3"
    incidents[2]["state"] = "8"
    api.tables["incident"] = incidents
    first = incidents[0]
    api.tables["sys_journal_field"] = [
        make_journal(
            1,
            first,
            "comments",
            "It happened again this morning.",
            by="employee1",
            at=NOW - timedelta(hours=29, minutes=30),
        ),
        make_journal(
            2,
            first,
            "work_notes",
            "Known issue with client 5.2; see PRB0040012.",
            by="agent.smith",
            at=NOW - timedelta(hours=29, minutes=20),
        ),
        make_journal(
            3,
            first,
            "comments",
            "Please reinstall the profile from the portal.",
            by="agent.smith",
            at=NOW - timedelta(hours=29, minutes=10),
        ),
        # Another table's journal with the same element must not leak in.
        {
            **make_journal(
                4, first, "comments", "change request chatter", by="x", at=NOW - timedelta(hours=29)
            ),
            "name": "change_request",
        },
    ]
    api.tables["kb_knowledge"] = [
        make_article(1, NOW - timedelta(days=10)),
        make_article(2, NOW - timedelta(days=9), state="retired"),
        make_article(3, NOW - timedelta(days=8), state="draft"),
    ]
    return api


def adapter_for(
    api: FakeServiceNow,
    clock: ManualClock,
    client: httpx.AsyncClient,
    credentials: ServiceNowCredentials | None = None,
    **settings: Any,
) -> ServiceNowAdapter:
    return ServiceNowAdapter(
        settings=ServiceNowSettings(instance="acme", **settings),
        credentials=credentials or ServiceNowCredentials(username=USER, password=PASSWORD),
        client=client,
        limiter=RateLimiter.unlimited(clock=clock),
        clock=clock,
    )


async def drain(
    adapter: ServiceNowAdapter, checkpoint: ServiceNowCheckpoint, *, max_pages: int = 500
) -> tuple[list[Page[ServiceNowCheckpoint]], ServiceNowCheckpoint]:
    pages: list[Page[ServiceNowCheckpoint]] = []
    for _ in range(max_pages):
        page = await adapter.fetch_page(checkpoint)
        pages.append(page)
        checkpoint = adapter.checkpoint_type.model_validate_json(page.checkpoint.model_dump_json())
        if page.blocked or not page.has_more:
            return pages, checkpoint
    raise AssertionError("adapter did not finish")


def documents(pages: list[Page[ServiceNowCheckpoint]]) -> list[SourceDocument]:
    return [d for p in pages for d in p.documents]


def incident_ids(pages: list[Page[ServiceNowCheckpoint]]) -> list[str]:
    return [d.external_id for d in documents(pages) if d.kind is DocumentKind.TICKET]


async def test_full_sync_normalizes_incidents_journal_and_articles() -> None:
    api, clock = dataset(), ManualClock(NOW)
    async with api.client() as client:
        adapter = adapter_for(api, clock, client)
        pages, final = await drain(adapter, adapter.initial_checkpoint())

    assert final.phase is ServiceNowPhase.DONE and not final.has_more
    assert all(not p.failures for p in pages)
    assert sorted(incident_ids(pages)) == sorted(f"incident:{sys_id(n)}" for n in range(1, 11))
    by_id = {d.external_id: d for d in documents(pages)}

    first = by_id[f"incident:{sys_id(1)}"]
    assert first.status == "resolved"
    assert first.requester == "employee1@acme.example"
    assert first.metadata["number"] == "INC0010001"
    assert first.metadata["priority"] == "moderate"
    assert [(p.label, p.author_role, p.internal) for p in first.parts] == [
        ("subject", "customer", False),
        ("description", "customer", False),
        ("reply", "customer", False),
        ("note", "agent", True),
        ("reply", "agent", False),
        ("resolution", "agent", False),
    ]
    assert "PRB0040012" in first.parts[3].text
    assert all("change request" not in p.text for p in first.parts)
    assert by_id[f"incident:{sys_id(2)}"].status == "pending"
    assert by_id[f"incident:{sys_id(3)}"].status == "closed"
    assert by_id[f"incident:{sys_id(4)}"].status == "open"

    article = by_id[f"article:{sys_id(30001)}"]
    assert article.kind is DocumentKind.ARTICLE and article.language == "en"
    assert article.url == f"https://{INSTANCE}/kb_view.do?sysparm_article=KB0010001"
    assert article.tags == ["vpn", "remote access"]
    deletions = {(d.external_id, d.reason) for p in pages for d in p.deletions}
    assert deletions == {
        (f"article:{sys_id(30002)}", "retired"),
        (f"article:{sys_id(30003)}", "draft"),
    }

    listing = api.requests_to("incident")[0].url.params
    assert listing["sysparm_query"] == (
        "sys_updated_on>=1970-01-01 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    assert listing["sysparm_display_value"] == "false"
    assert "caller_id.email" in listing["sysparm_fields"].split(",")
    journal_query = api.requests_to("sys_journal_field")[0].url.params["sysparm_query"]
    assert journal_query.startswith("name=incident^element_idIN")


async def test_short_and_empty_pages_are_not_the_end() -> None:
    api, clock = dataset(), ManualClock(NOW)
    # Incidents 3-8 are hidden by ACLs: with a limit of 3, page 2 is empty and pages 1 and 3
    # are short, yet incidents 9 and 10 come after them.
    for incident in api.tables["incident"][2:8]:
        incident["_readable"] = False
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, page_size=3, include_articles=False)
        pages, final = await drain(adapter, adapter.initial_checkpoint())

    expected = [f"incident:{sys_id(n)}" for n in (1, 2, 9, 10)]
    assert sorted(incident_ids(pages)) == sorted(expected)
    offsets = [int(r.url.params["sysparm_offset"]) for r in api.requests_to("incident")]
    assert any(offset > 0 for offset in offsets)  # moved on past an all-hidden page
    assert not final.has_more


async def test_journal_batches_follow_link_paging() -> None:
    api, clock = dataset(), ManualClock(NOW)
    second = api.tables["incident"][1]
    api.tables["sys_journal_field"] += [
        make_journal(
            100 + n,
            second,
            "comments",
            f"update {n}",
            by="agent.smith",
            at=NOW - timedelta(hours=27, minutes=50 - n),
        )
        for n in range(1214)
    ]
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, include_articles=False, journal_batch_size=4)
        pages, _ = await drain(adapter, adapter.initial_checkpoint())

    thread = next(d for d in documents(pages) if d.external_id == f"incident:{sys_id(2)}")
    assert len([p for p in thread.parts if p.label == "reply"]) == 1214
    journal_requests = api.requests_to("sys_journal_field")
    assert any(int(r.url.params.get("sysparm_offset", "0")) == 1000 for r in journal_requests)
    id_lists = [
        r.url.params["sysparm_query"].split("element_idIN", 1)[1].split("^")[0].split(",")
        for r in journal_requests
    ]
    assert max(len(ids) for ids in id_lists) == 4  # journal_batch_size
    assert len({tuple(ids) for ids in id_lists}) == 3  # ten incidents in batches of 4, 4, 2


async def test_429_then_5xx_then_timeout_are_retried() -> None:
    api, clock = dataset(), ManualClock(NOW)
    api.fail(
        "incident",
        httpx.Response(
            429, json={"error": {"message": "rate limited"}}, headers={"Retry-After": "9"}
        ),
        httpx.Response(503, text="Service Unavailable"),
    )
    api.fail("sys_journal_field", httpx.ConnectTimeout("connect timed out"))
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, include_articles=False)
        pages, _ = await drain(adapter, adapter.initial_checkpoint())

    assert clock.sleeps[0] == 9.0
    assert len(clock.sleeps) == 3  # Retry-After, then one backoff each for 503 and the timeout
    assert all(not p.failures for p in pages)
    assert len(incident_ids(pages)) == 10


async def test_journal_failures_block_or_degrade() -> None:
    api, clock = dataset(), ManualClock(NOW)
    api.fail("sys_journal_field", *[httpx.Response(500) for _ in range(2)])
    async with api.client() as client:
        adapter = adapter_for(api, clock, client, include_articles=False, max_attempts=2)
        start = adapter.initial_checkpoint()
        blocked = await adapter.fetch_page(start)
        assert blocked.blocked and blocked.checkpoint == start and not blocked.documents
        assert blocked.failures[0].retryable

        # No read access to sys_journal_field: index incidents, report the missing threads.
        api.fail(
            "sys_journal_field",
            httpx.Response(403, json={"error": {"message": "Insufficient rights"}}),
        )
        degraded = await adapter.fetch_page(start)
    assert not degraded.blocked and len(degraded.documents) == 10
    assert [(f.status_code, f.retryable) for f in degraded.failures] == [(403, False)]


async def test_resume_from_json_checkpoints_has_no_duplicates_or_losses() -> None:
    api, clock = dataset(), ManualClock(NOW)
    # Ties on sys_updated_on across page boundaries exercise the inclusive bound.
    for incident in api.tables["incident"][3:7]:
        incident["sys_updated_on"] = sn_time(NOW - timedelta(hours=5))
    stored = adapter_for(api, clock, httpx.AsyncClient()).initial_checkpoint().model_dump_json()
    seen: list[str] = []
    for _ in range(100):
        async with api.client() as client:
            adapter = adapter_for(api, clock, client, page_size=3)
            page = await adapter.fetch_page(ServiceNowCheckpoint.model_validate_json(stored))
        seen += [d.external_id for d in page.documents]
        stored = page.checkpoint.model_dump_json()
        if not page.has_more:
            break
    incidents = [s for s in seen if s.startswith("incident:")]
    assert sorted(incidents) == sorted(f"incident:{sys_id(n)}" for n in range(1, 11))
    assert len(seen) == len(set(seen))
    assert f"article:{sys_id(30001)}" in seen


def deletions_of(pages: list[Page[ServiceNowCheckpoint]]) -> set[tuple[str, str]]:
    return {(d.external_id, d.reason) for p in pages for d in p.deletions}


async def test_finished_checkpoint_starts_the_next_incremental_round() -> None:
    api, clock = dataset(), ManualClock(NOW)
    async with api.client() as client:
        # Three per page, so both listings page and roll their windows.
        adapter = adapter_for(api, clock, client, page_size=3)
        first, finished = await drain(adapter, adapter.initial_checkpoint())
        assert finished.phase is ServiceNowPhase.DONE and not finished.has_more
        assert len(incident_ids(first)) == 10
        newest_incident = api.tables["incident"][9]  # at the saved window's inclusive bound

        # Changes on the instance: an incident updated (with a new comment), one opened, a
        # published article retired, a new article published.
        changed = NOW + timedelta(minutes=5)
        incidents = api.tables["incident"]
        incidents[3] = {
            **make_incident(4, changed),
            "short_description": "VPN drops after the 5.3 update",
        }
        api.tables["sys_journal_field"].append(
            make_journal(20, incidents[3], "comments", "Still broken on 5.3.", by="u", at=changed)
        )
        incidents.append(make_incident(11, changed + timedelta(minutes=1)))
        articles = api.tables["kb_knowledge"]
        articles[0] = make_article(1, changed, state="retired")
        articles.append(make_article(4, changed + timedelta(minutes=1)))
        sent_before = len(api.requests)

        second, finished_again = await drain(adapter, finished)
        # The records at the inclusive bounds are listed again but de-duplicated by sys_id
        # (edge_ids): the round yields exactly the changes.
        assert sorted(incident_ids(second)) == sorted(
            [f"incident:{sys_id(4)}", f"incident:{sys_id(11)}"]
        )
        updated = next(d for d in documents(second) if d.external_id == f"incident:{sys_id(4)}")
        assert updated.title == "VPN drops after the 5.3 update"
        assert "Still broken on 5.3." in [p.text for p in updated.parts]
        assert [d.external_id for d in documents(second) if d.kind is DocumentKind.ARTICLE] == [
            f"article:{sys_id(30004)}"
        ]
        assert deletions_of(second) == {(f"article:{sys_id(30001)}", "retired")}
        # Not from scratch: each table is listed from its saved high-water mark.
        incident_query = next(
            r.url.params["sysparm_query"]
            for r in api.requests[sent_before:]
            if r.url.path == "/api/now/table/incident"
        )
        assert incident_query.startswith(f"sys_updated_on>={newest_incident['sys_updated_on']}^")
        assert not finished_again.has_more

        # A round with no changes yields nothing.
        third, finished_quiet = await drain(adapter, finished_again)
        assert documents(third) == [] and deletions_of(third) == set()

        # That quiet round ended on page 2 of its incident window (page 1 held only the record
        # at the bound); the next round still starts at page 1, where a new incident sorts.
        incidents.append(make_incident(12, changed + timedelta(minutes=10)))
        fourth, _ = await drain(adapter, finished_quiet)
    assert incident_ids(fourth) == [f"incident:{sys_id(12)}"]
    assert all(not p.failures for p in first + second + third + fourth)


async def test_fetch_item_reads_one_article_as_the_sync_builds_it() -> None:
    """A webhook's ``article:<sys_id>``: ``GET /api/now/table/kb_knowledge/<sys_id>`` with the
    sync's fields; published → the sync's document, another workflow state or a 404 → a
    deletion, a server error → a failure (the scheduled sync tries again)."""
    api, clock = dataset(), ManualClock(NOW)
    published, retired, draft = (f"article:{sys_id(30000 + n)}" for n in (1, 2, 3))
    missing = f"article:{sys_id(39999)}"
    async with api.client() as client:
        adapter = adapter_for(api, clock, client)
        synced, _ = await drain(adapter, adapter.initial_checkpoint())
        sent_before = len(api.requests)
        found = await adapter.fetch_item(published)
        single_reads = [r for r in api.requests[sent_before:] if "/kb_knowledge/" in r.url.path]
        gone = [await adapter.fetch_item(ref) for ref in (retired, draft, missing)]
        api.fail(f"kb_knowledge/{sys_id(30001)}", httpx.Response(503), httpx.Response(503))
        failing = await adapter_for(api, clock, client, max_attempts=2).fetch_item(published)
        sent_before = len(api.requests)
        excluded = await adapter_for(api, clock, client, include_articles=False).fetch_item(
            published
        )
        assert len(api.requests) == sent_before  # articles are not synced: nothing is asked

    [document] = found.documents
    assert not found.failures and not found.deletions
    assert document == next(d for d in documents(synced) if d.external_id == published)
    [read] = single_reads
    assert read.url.path == f"/api/now/table/kb_knowledge/{sys_id(30001)}"
    listing = next(r for r in api.requests if r.url.path == "/api/now/table/kb_knowledge")
    for param in ("sysparm_fields", "sysparm_display_value", "sysparm_exclude_reference_link"):
        assert read.url.params[param] == listing.url.params[param]
    assert [[(d.external_id, d.reason) for d in item.deletions] for item in gone] == [
        [(retired, "retired")],
        [(draft, "draft")],
        [(missing, "deleted")],
    ]
    assert all(not item.documents and not item.failures for item in gone)
    assert not failing.documents and not failing.deletions
    assert [(f.status_code, f.retryable) for f in failing.failures] == [(503, True)]
    assert excluded == FetchedItem(counts={"skipped.article_not_included": 1})


async def test_bearer_token_auth() -> None:
    api, clock = dataset(), ManualClock(NOW)
    async with api.client() as client:
        adapter = adapter_for(
            api,
            clock,
            client,
            credentials=ServiceNowCredentials(token=TOKEN),
            include_articles=False,
        )
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert page.documents and not page.failures
    assert api.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_registry_validates_servicenow_credentials() -> None:
    client = httpx.AsyncClient()
    adapter = build_adapter(
        "servicenow", {"instance": "acme"}, {"username": USER, "password": PASSWORD}, client=client
    )
    assert isinstance(adapter, ServiceNowAdapter)
    assert adapter.settings.instance == INSTANCE
    with pytest.raises(BadRequest) as neither:
        build_adapter("servicenow", {"instance": "acme"}, {"username": USER}, client=client)
    assert neither.value.code == "invalid_connector_credentials"
    with pytest.raises(BadRequest) as both:
        build_adapter(
            "servicenow",
            {"instance": "acme"},
            {"username": USER, "password": PASSWORD, "token": TOKEN},
            client=client,
        )
    assert PASSWORD not in str(both.value.detail) and TOKEN not in str(both.value.detail)
