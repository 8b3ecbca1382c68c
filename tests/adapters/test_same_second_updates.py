"""Incremental windows never lose an update stamped with the same second as the watermark.

Freshdesk ``updated_at`` and ServiceNow ``sys_updated_on`` have one-second resolution; an
automation often changes a ticket within the second an agent touched it. The inclusive window
re-lists those rows, and a re-listed row with changed content must be emitted again.
"""

from __future__ import annotations

from datetime import timedelta

import freshdesk_api as fd
import servicenow_api as sn
import test_freshdesk as fd_tests
import test_servicenow as sn_tests
import test_zendesk as zd_tests
from platform_replay import Replay, fixture_json, json_response

from backend.adapters.base import ManualClock
from backend.adapters.freshdesk import FreshdeskPhase
from backend.adapters.windowing import UpdatedWindow, record_digest
from backend.adapters.zendesk import ZendeskCheckpoint


def test_window_keeps_digests_and_reads_legacy_checkpoints() -> None:
    at = fd.NOW
    window = UpdatedWindow(since=at - timedelta(seconds=5)).advance(
        [("1", at - timedelta(seconds=1), "aa"), ("2", at, "bb"), ("3", at, "cc")]
    )
    assert window.since == at and window.page == 1 and window.edge == {"2": "bb", "3": "cc"}
    assert not window.is_new("2", at, "bb")
    assert window.is_new("2", at, "changed")  # same second, new content
    assert window.is_new("4", at, "dd")  # same second, new row
    assert window.is_new("2", at + timedelta(seconds=1), "bb")
    # A checkpoint saved before digests were kept: its rows are emitted once more.
    legacy = UpdatedWindow.model_validate({"since": at.isoformat(), "edge_ids": ["2"]})
    assert legacy.edge == {"2": ""} and legacy.is_new("2", at, "bb")
    assert record_digest({"b": 1, "a": [1, 2]}) == record_digest({"a": [1, 2], "b": 1})


async def test_freshdesk_two_updates_in_one_second_are_both_seen() -> None:
    api, clock = fd_tests.dataset(), ManualClock(fd.NOW)
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client, include_articles=False)
        _, finished = await fd_tests.drain(adapter, adapter.initial_checkpoint())
        newest = api.tickets[6]
        assert newest["id"] == 7 and fd.iso(finished.tickets.since) == newest["updated_at"]

        # Within the same second as the stored copy: an automation resolves ticket 7 with a
        # new subject and tags, and a new ticket arrives.
        same_second = newest["updated_at"]
        newest.update(status=4, subject="Resolved: replacement shipped", tags=["resolved"])
        api.tickets.append({**fd.make_ticket(70, fd.NOW), "updated_at": same_second})
        second, finished = await fd_tests.drain(adapter, finished)
        by_id = {d.external_id: d for d in fd_tests.documents(second)}
        assert sorted(by_id) == ["ticket:7", "ticket:70"]
        assert by_id["ticket:7"].status == "resolved"
        assert by_id["ticket:7"].title == "Resolved: replacement shipped"
        assert by_id["ticket:7"].tags == ["resolved"]

        # Nothing changed since: the rows at the bound are listed again and skipped.
        third, _ = await fd_tests.drain(adapter, finished)
    assert fd_tests.ticket_ids(third) == []


async def test_freshdesk_update_at_the_boundary_across_a_page_break() -> None:
    api, clock = fd.FakeFreshdesk(), ManualClock(fd.NOW)
    second_mark = fd.NOW - timedelta(hours=1)
    api.tickets = [
        fd.make_ticket(1, second_mark - timedelta(minutes=1)),
        fd.make_ticket(2, second_mark),
        fd.make_ticket(3, second_mark + timedelta(minutes=1)),
    ]
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client, include_articles=False, per_page=2)
        checkpoint = adapter.initial_checkpoint()
        first = await adapter.fetch_page(checkpoint)
        assert fd_tests.ticket_ids([first]) == ["ticket:1", "ticket:2"]
        window = first.checkpoint.tickets
        assert window.since == second_mark and set(window.edge) == {"2"}

        # Between the two page reads, ticket 2 is changed again in the same second.
        api.tickets[1].update(status=5, subject="Closed by automation")
        stored = first.checkpoint.model_dump_json()
        rest, _ = await fd_tests.drain(adapter, adapter.checkpoint_type.model_validate_json(stored))
    docs = {d.external_id: d for d in fd_tests.documents(rest)}
    assert sorted(docs) == ["ticket:2", "ticket:3"]
    assert docs["ticket:2"].status == "closed" and docs["ticket:2"].title == "Closed by automation"


async def test_freshdesk_deletions_at_the_edge_are_not_repeated() -> None:
    api, clock = fd_tests.dataset(), ManualClock(fd.NOW)
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client, include_articles=False)
        first, finished = await fd_tests.drain(adapter, adapter.initial_checkpoint())
        assert finished.phase is FreshdeskPhase.DONE
        second, _ = await fd_tests.drain(adapter, finished)
    assert {d.external_id for p in first for d in p.deletions} >= {"ticket:900", "ticket:901"}
    assert [d.external_id for p in second for d in p.deletions] == []


async def test_servicenow_update_in_the_same_second_is_seen() -> None:
    api, clock = sn_tests.dataset(), ManualClock(sn.NOW)
    async with api.client() as client:
        adapter = sn_tests.adapter_for(api, clock, client, page_size=3)
        _, finished = await sn_tests.drain(adapter, adapter.initial_checkpoint())
        newest = api.tables["incident"][-1]
        # Same sys_updated_on, new content: resolved with close notes.
        newest.update(state="6", close_notes="Rolled back the VPN client to 5.1.")
        # The newest article (a draft) is published within the second it was last saved.
        draft = api.tables["kb_knowledge"][-1]
        draft["workflow_state"] = "published"
        second, finished = await sn_tests.drain(adapter, finished)
        docs = {d.external_id: d for d in sn_tests.documents(second)}
        assert sorted(docs) == [f"article:{draft['sys_id']}", f"incident:{newest['sys_id']}"]
        assert docs[f"incident:{newest['sys_id']}"].status == "resolved"
        third, _ = await sn_tests.drain(adapter, finished)
    assert sn_tests.documents(third) == []


async def test_zendesk_article_changed_within_the_watermark_second_is_emitted() -> None:
    """The article export restarts at its saved start_time, inclusive, and emits every row:
    an edit stamped with that same second is not skipped (no (id, updated_at) de-duplication).
    """
    saved_second = 1709259000  # 2024-03-01T02:10:00Z, the first fixture article's updated_at
    page = fixture_json("zendesk/articles_incremental_page1.json")
    article = page["articles"][0]
    assert article["updated_at"] == "2024-03-01T02:10:00Z"
    article["title"] = "환불 정책 (2024년 3월 개정)"
    page.update(articles=[article], next_page=None, end_time=saved_second)
    replay = Replay()
    replay.on(zd_tests.ARTICLES, json_response(page), query={"start_time": str(saved_second)})
    replay.on(
        f"/api/v2/help_center/articles/{article['id']}/translations.json",
        json_response({"translations": [], "next_page": None, "count": 0}),
    )
    replay.on(
        f"/api/v2/help_center/articles/{article['id']}/attachments.json",
        json_response({"article_attachments": []}),
    )
    adapter, client = zd_tests.build(replay, ManualClock(), include_tickets=False)
    finished = ZendeskCheckpoint(phase="articles", article_start_time=saved_second, has_more=False)
    async with client:
        pages = await zd_tests.drain(adapter, finished)
    [document] = [d for p in pages for d in p.documents]
    assert document.title == "환불 정책 (2024년 3월 개정)"
