"""Incremental windows never lose an update stamped with the same second as the watermark.

Freshdesk ``updated_at`` and ServiceNow ``sys_updated_on`` have one-second resolution; an
automation often changes a ticket within the second an agent touched it. The inclusive window
re-lists those rows, and a re-listed row with changed content must be emitted again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import freshdesk_api as fd
import servicenow_api as sn
import test_freshdesk as fd_tests
import test_servicenow as sn_tests
import test_zendesk as zd_tests
from platform_replay import Replay, fixture_json, json_response

from backend.adapters.base import ManualClock
from backend.adapters.freshdesk import FreshdeskPhase
from backend.adapters.servicenow.documents import parse_time as parse_sn_time
from backend.adapters.windowing import EDGE_SETTLE, UpdatedWindow, record_digest
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


def _thread(pages: list[Any], external_id: str) -> str:
    [document] = [d for d in fd_tests.documents(pages) if d.external_id == external_id]
    return "\n".join(part.text for part in document.parts)


def _edge_refetches(pages: list[Any]) -> int:
    return sum(p.counts.get("refetched.edge_second", 0) for p in pages)


async def test_freshdesk_note_added_within_the_last_read_second_is_picked_up_once() -> None:
    """A private note added in the same second as the ticket's last-read updated_at leaves the
    listed row (and its digest) unchanged; the next round after that second has closed reads
    the edge ticket's conversations again, once."""
    api, clock = fd.FakeFreshdesk(), ManualClock(fd.NOW)
    api.tickets = [
        fd.make_ticket(1, fd.NOW - timedelta(hours=2)),
        fd.make_ticket(2, fd.NOW),  # updated in the very second this round reads it
    ]
    api.conversations = {
        2: [fd.make_conversation(201, 2, body_text="We are sending a replacement today.")]
    }
    conversation_path = "/api/v2/tickets/2/conversations"
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client, include_articles=False)
        first, finished = await fd_tests.drain(adapter, adapter.initial_checkpoint())
        assert fd_tests.ticket_ids(first) == ["ticket:1", "ticket:2"]
        assert finished.tickets.since == fd.NOW and finished.tickets.unsettled == ("2",)

        # Still within that second an agent adds a private note: Freshdesk keeps updated_at
        # (one-second resolution) and the listed row is byte for byte the same.
        api.conversations[2].append(
            fd.make_conversation(
                202, 2, body_text="Refund approved by finance.", private=True, created_at=fd.NOW
            )
        )
        # A round while the second may still be open re-reads nothing (it would prove nothing).
        early, finished = await fd_tests.drain(adapter, finished)
        assert fd_tests.ticket_ids(early) == [] and _edge_refetches(early) == 0
        assert finished.tickets.unsettled == ("2",)

        clock.advance(EDGE_SETTLE.total_seconds() + 1)
        reads_before = len(api.requests_to(conversation_path))
        second, finished = await fd_tests.drain(adapter, finished)
        assert fd_tests.ticket_ids(second) == ["ticket:2"]
        assert "Refund approved by finance." in _thread(second, "ticket:2")
        assert _edge_refetches(second) == 1
        assert len(api.requests_to(conversation_path)) == reads_before + 1
        assert finished.tickets.since == fd.NOW and finished.tickets.unsettled == ()

        # Nothing new: later rounds list the edge ticket again but never re-read its thread.
        quiet: list[Any] = []
        for _ in range(3):
            clock.advance(600)
            pages, finished = await fd_tests.drain(adapter, finished)
            quiet.extend(pages)
    assert fd_tests.ticket_ids(quiet) == [] and _edge_refetches(quiet) == 0
    assert len(api.requests_to(conversation_path)) == reads_before + 1


async def test_freshdesk_edge_thread_is_reread_before_the_window_rolls_past_it() -> None:
    """A newer ticket moves the window beyond the edge second, after which the edge ticket is
    never listed again: its thread is re-read on that page even though our clock has not yet
    passed the settling margin (the newer row proves Freshdesk's clock has left the second)."""
    api, clock = fd.FakeFreshdesk(), ManualClock(fd.NOW)
    api.tickets = [fd.make_ticket(1, fd.NOW)]
    api.conversations = {1: [fd.make_conversation(101, 1, body_text="Reply sent.")]}
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client, include_articles=False)
        _, finished = await fd_tests.drain(adapter, adapter.initial_checkpoint())
        assert finished.tickets.unsettled == ("1",)

        api.conversations[1].append(
            fd.make_conversation(
                102, 1, body_text="Escalated to tier 2.", private=True, created_at=fd.NOW
            )
        )
        clock.advance(2)
        api.tickets.append(fd.make_ticket(2, fd.NOW + timedelta(seconds=1)))
        second, finished = await fd_tests.drain(adapter, finished)
        assert fd_tests.ticket_ids(second) == ["ticket:1", "ticket:2"]
        assert "Escalated to tier 2." in _thread(second, "ticket:1")
        assert _edge_refetches(second) == 1
        # Ticket 2 was read 1 s after its second: unsettled in turn, re-read once later.
        assert finished.tickets.since == fd.NOW + timedelta(seconds=1)
        assert finished.tickets.unsettled == ("2",)

        rounds: list[int] = []
        for _ in range(3):
            clock.advance(EDGE_SETTLE.total_seconds() + 1)
            pages, finished = await fd_tests.drain(adapter, finished)
            rounds.append(_edge_refetches(pages))
    assert rounds == [1, 0, 0]


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


async def test_servicenow_work_note_within_the_watermark_second_is_seen() -> None:
    """A work note is written through the incident's journal field: ServiceNow counts that as
    an update of the incident (sys_mod_count + 1), even when sys_updated_on keeps its second.
    The listed version counter changes the digest, so the incident is read again with its
    journal."""
    api, clock = sn_tests.dataset(), ManualClock(sn.NOW)
    async with api.client() as client:
        adapter = sn_tests.adapter_for(api, clock, client, page_size=3)
        _, finished = await sn_tests.drain(adapter, adapter.initial_checkpoint())
        newest = api.tables["incident"][-1]
        assert finished.incidents.since == parse_sn_time(newest["sys_updated_on"])
        api.tables["sys_journal_field"].append(
            sn.make_journal(
                99,
                newest,
                "work_notes",
                "Vendor confirmed the regression in client 5.2.",
                by="agent.smith",
                at=parse_sn_time(newest["sys_updated_on"]) or sn.NOW,
            )
        )
        newest["sys_mod_count"] = str(int(newest["sys_mod_count"]) + 1)
        second, finished = await sn_tests.drain(adapter, finished)
        [document] = sn_tests.documents(second)
        assert document.external_id == f"incident:{newest['sys_id']}"
        assert any("Vendor confirmed the regression" in part.text for part in document.parts)
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
