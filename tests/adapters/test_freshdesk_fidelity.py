"""What Freshdesk sends arrives whole: people, service-level fields, translations, attachments.

Payload shapes follow the Freshdesk v2 reference (developers.freshdesk.com/api): ticket
``attachments`` / conversation ``attachments`` entries ``{id, name, content_type, size,
attachment_url, thumb_url}``, conversation ``from_email`` and ``user_id``, ``GET
/api/v2/settings/helpdesk`` with ``primary_language`` and ``supported_languages``, and the
translated listings ``/solutions/folders/{id}/articles/{language}``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attachment_files as files
import freshdesk_api as fd
import test_freshdesk as fd_tests

from backend.adapters.base import DocumentKind, ManualClock, SourceDocument
from backend.adapters.freshdesk.documents import ticket_document
from backend.ingest.chunking import chunk_document
from backend.ingest.normalize import normalize_document


def by_id(pages: list[Any]) -> dict[str, SourceDocument]:
    return {d.external_id: d for p in pages for d in p.documents}


def counts_of(pages: list[Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for page in pages:
        for key, value in page.counts.items():
            total[key] = total.get(key, 0) + value
    return total


def test_people_and_service_fields_survive_normalisation() -> None:
    ticket = fd.make_ticket(1, fd.NOW)
    ticket.update(
        requester={"id": 80001, "name": "Dana Park", "email": "dana@example.org"},
        is_escalated=True,
        fr_escalated=False,
        nr_due_by="2025-03-02T09:00:00Z",
    )
    incoming = fd.make_conversation(
        101, 1, body_text="The replacement is broken too.", incoming=True
    )
    incoming["from_email"] = "dana@example.org"
    reply = fd.make_conversation(102, 1, body_text="Sorry! A refund is on its way.")
    reply["from_email"] = "support@acme.example"
    document = ticket_document(ticket, [incoming, reply], domain=fd.DOMAIN)
    meta = document.metadata
    assert meta["type"] == "Problem"
    assert meta["requester_name"] == "Dana Park"
    assert meta["due_by"] == "2025-03-02T12:00:00+00:00"
    assert meta["fr_due_by"] == "2025-02-28T12:00:00+00:00"
    assert meta["nr_due_by"] == "2025-03-02T09:00:00+00:00"
    assert meta["is_escalated"] is True and meta["fr_escalated"] is False

    thread = [p for p in document.parts if p.label == "reply"]
    assert [(p.author_id, p.author_email, p.author_name) for p in thread] == [
        ("80001", "dana@example.org", "Dana Park"),
        ("77001", "support@acme.example", None),
    ]
    description = next(p for p in document.parts if p.label == "description")
    assert description.author_name == "Dana Park"
    # Names reach the passages; addresses never do.
    text = "\n".join(c.text for c in chunk_document(document))
    assert "Customer (Dana Park): The replacement is broken too." in text
    assert "dana@example.org" not in text


def test_legacy_listing_fields_are_read() -> None:
    """v1-style listings name the type ticket_type and carry requester/responder names."""
    ticket = fd.make_ticket(2, fd.NOW)
    del ticket["type"]
    ticket.update(
        ticket_type="Refund",
        requester_name="Min-jun Kim",
        responder_name="Alex Agent",
        isescalated=True,
    )
    del ticket["is_escalated"]
    reply = fd.make_conversation(201, 2, body_text="Refund approved.")
    document = ticket_document(ticket, [reply], domain=fd.DOMAIN)
    assert document.metadata["type"] == "Refund"
    assert document.metadata["requester_name"] == "Min-jun Kim"
    assert document.metadata["responder_name"] == "Alex Agent"
    assert document.metadata["is_escalated"] is True
    assert next(p for p in document.parts if p.label == "reply").author_name == "Alex Agent"


def test_a_name_change_changes_the_content_hash() -> None:
    ticket = fd.make_ticket(3, fd.NOW)
    ticket["requester"] = {"id": 80003, "name": "Jo", "email": "jo@example.org"}
    first = normalize_document(ticket_document(ticket, [], domain=fd.DOMAIN))
    ticket["requester"] = {"id": 80003, "name": "Joanna", "email": "jo@example.org"}
    second = normalize_document(ticket_document(ticket, [], domain=fd.DOMAIN))
    assert first.content_hash != second.content_hash


def multilingual() -> fd.FakeFreshdesk:
    api = fd_tests.dataset()
    api.supported_languages = ["en", "fr", "ko"]
    source = api.articles[21][0]  # article 31, "How to return an item"
    # The default endpoint serves an article whose own language field says French.
    api.articles[22][0]["language"] = "fr"
    api.translated_articles[(21, "fr")] = [
        {
            **source,
            "title": "Comment retourner un article",
            "description": "<p>Imprimez l'étiquette de retour et déposez le colis.</p>",
            "description_text": "Imprimez l'étiquette de retour et déposez le colis.",
            "language": "fr",
        },
        {**api.articles[21][1], "title": "Brouillon : nouvelle politique", "language": "fr"},
    ]
    api.translated_articles[(21, "ko")] = [
        {
            **source,
            "title": "상품 반품 방법",
            "description": "<p>반품 라벨을 인쇄하여 택배로 보내 주세요.</p>",
            "description_text": "반품 라벨을 인쇄하여 택배로 보내 주세요.",
        }
    ]
    return api


async def test_every_published_language_becomes_a_linked_document() -> None:
    api, clock = multilingual(), ManualClock(fd.NOW)
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client)
        pages, _ = await fd_tests.drain(adapter, adapter.initial_checkpoint())
    documents = by_id(pages)
    articles = {k: d for k, d in documents.items() if d.kind is DocumentKind.ARTICLE}
    assert sorted(articles) == ["article:31", "article:31:fr", "article:31:ko", "article:33"]
    french, korean = articles["article:31:fr"], articles["article:31:ko"]
    assert (french.language, french.title) == ("fr", "Comment retourner un article")
    assert french.metadata["translation_of"] == "article:31"
    assert french.url == f"https://{fd.DOMAIN}/fr/support/solutions/articles/31"
    # No language field in the payload: the language it was requested in.
    assert korean.language == "ko" and korean.metadata["translation_of"] == "article:31"
    # Default endpoint: the primary language, unless the article's own field says otherwise.
    assert articles["article:31"].language == "en"
    assert articles["article:31"].metadata["translation_of"] is None
    assert articles["article:33"].language == "fr"
    # Drafts, in every language, are deletions and are counted.
    deletions = {(d.external_id, d.reason) for p in pages for d in p.deletions}
    assert {("article:32", "draft"), ("article:32:fr", "draft")} <= deletions
    assert counts_of(pages)["skipped.draft_article"] == 2
    # A folder without a Korean translation (22) is not an error; nothing failed.
    assert all(not p.failures for p in pages)
    languages = {r.url.path for r in api.requests if "/articles/" in r.url.path}
    assert "/api/v2/solutions/folders/22/articles/ko" in languages


async def test_translations_can_be_turned_off() -> None:
    api, clock = multilingual(), ManualClock(fd.NOW)
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client, include_translations=False)
        pages, _ = await fd_tests.drain(adapter, adapter.initial_checkpoint())
    assert not any(":fr" in key or ":ko" in key for key in by_id(pages))
    assert not api.requests_to("/api/v2/settings/helpdesk")


def with_attachments() -> fd.FakeFreshdesk:
    api = fd.FakeFreshdesk()
    ticket = fd.make_ticket(5, fd.NOW - timedelta(hours=1), subject="Invoice total is wrong")
    ticket["attachments"] = [
        api.attach(
            "invoice-4005.pdf", "application/pdf", files.pdf("Invoice 4005 total 129.00 EUR"), 1
        ),
        api.attach("photo.jpg", "image/jpeg", files.PNG, 2),
        api.attach("firmware.bin", "application/octet-stream", b"\x00\x01", 3),
    ]
    api.tickets = [ticket]
    note = fd.make_conversation(501, 5, body_text="Finance spreadsheet attached.", private=True)
    note["attachments"] = [
        api.attach(
            "refunds.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            files.xlsx([["Order", "Refund"], [4005, "12.50 EUR goodwill"]]),
            4,
        )
    ]
    reply = fd.make_conversation(502, 5, body_text="Here is the corrected invoice.")
    reply["attachments"] = [
        api.attach(
            "corrected.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            files.docx("Corrected invoice 4005: total 116.50 EUR"),
            5,
        ),
        api.attach(
            "setup.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            files.pptx("Reset steps", "Hold the pairing button for ten seconds"),
            6,
        ),
        api.attach(
            "forwarded.eml",
            "message/rfc822",
            files.eml("Fwd: invoice", "a@b.example", "Original invoice thread"),
            7,
        ),
        api.attach(
            "notes.html",
            "text/html",
            b"<html><body><h1>Notes</h1><p>Call back Friday</p></body></html>",
            8,
        ),
        api.attach("log.txt", "text/plain", "Fehler: Zahlung abgelehnt".encode("cp1252"), 9),
    ]
    api.conversations = {5: [note, reply]}
    return api


async def test_attachment_text_is_indexed_with_its_ticket() -> None:
    api, clock = with_attachments(), ManualClock(fd.NOW)
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client, include_articles=False)
        pages, _ = await fd_tests.drain(adapter, adapter.initial_checkpoint())
    assert all(not p.failures for p in pages)
    document = by_id(pages)["ticket:5"]
    extracted = {p.attachment_name: p for p in document.parts if p.label == "attachment"}
    assert sorted(extracted) == [
        "corrected.docx", "forwarded.eml", "invoice-4005.pdf", "log.txt", "notes.html",
        "refunds.xlsx", "setup.pptx",
    ]  # fmt: skip
    assert "129.00 EUR" in extracted["invoice-4005.pdf"].text
    assert "116.50 EUR" in extracted["corrected.docx"].text
    assert "12.50 EUR goodwill" in extracted["refunds.xlsx"].text
    assert "ten seconds" in extracted["setup.pptx"].text
    assert "Original invoice thread" in extracted["forwarded.eml"].text
    assert "Call back Friday" in extracted["notes.html"].text
    assert "Zahlung abgelehnt" in extracted["log.txt"].text
    # A private note's spreadsheet is internal knowledge.
    assert extracted["refunds.xlsx"].internal and not extracted["corrected.docx"].internal

    records = {r["name"]: r for r in document.metadata["attachments"]}
    assert records["photo.jpg"]["outcome"] == "image"
    assert records["firmware.bin"]["outcome"] == "unsupported_type"
    assert records["invoice-4005.pdf"]["outcome"] == "indexed"
    assert records["invoice-4005.pdf"]["size"] > 0
    assert counts_of(pages) == {
        "attachments_indexed": 7,
        "attachments_skipped.image": 1,
        "attachments_skipped.unsupported_type": 1,
    }
    # Images and unknown types are recorded, never downloaded; files travel without the key.
    downloads = [r for r in api.requests if r.url.host == fd.FILE_HOST]
    assert len(downloads) == 7
    assert all("authorization" not in r.headers for r in downloads)

    chunks = chunk_document(document)
    pdf_chunk = next(c for c in chunks if c.attachment == "invoice-4005.pdf")
    assert pdf_chunk.cite_as == "attachment invoice-4005.pdf of ticket #5"
    assert pdf_chunk.text.startswith("Invoice total is wrong\n[attachment invoice-4005.pdf of")
    assert next(c for c in chunks if c.attachment == "refunds.xlsx").internal


async def test_attachment_limits_come_from_settings() -> None:
    api, clock = with_attachments(), ManualClock(fd.NOW)
    async with api.client() as client:
        adapter = fd_tests.adapter_for(
            api,
            clock,
            client,
            include_articles=False,
            attachments={"max_bytes": 2000, "types": ["pdf", "txt", "xlsx"]},
        )
        pages, _ = await fd_tests.drain(adapter, adapter.initial_checkpoint())
    counts = counts_of(pages)
    outcomes = {r["name"]: r["outcome"] for r in by_id(pages)["ticket:5"].metadata["attachments"]}
    assert outcomes["invoice-4005.pdf"] == "indexed"
    assert outcomes["log.txt"] == "indexed"
    assert outcomes["refunds.xlsx"] == "too_large"  # an .xlsx is ~5 KB
    assert outcomes["notes.html"] == "type_not_enabled"
    assert counts["attachments_indexed"] == 2
    assert counts["attachments_skipped.too_large"] == 1
    assert counts["attachments_skipped.type_not_enabled"] == 4


async def test_a_failed_download_is_reported_and_the_ticket_still_indexed() -> None:
    api, clock = with_attachments(), ManualClock(fd.NOW)
    broken = api.tickets[0]["attachments"][0]
    broken["attachment_url"] = broken["attachment_url"].split("?")[0]  # link without signature
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client, include_articles=False)
        pages, _ = await fd_tests.drain(adapter, adapter.initial_checkpoint())
    failures = [f for p in pages for f in p.failures]
    assert [f.status_code for f in failures] == [403]
    assert failures[0].where == "ticket:5/attachment:1"
    assert "ticket:5" in by_id(pages)
    assert counts_of(pages)["attachments_skipped.download_failed"] == 1


async def test_description_attachments_by_viewing_the_ticket() -> None:
    api, clock = with_attachments(), ManualClock(fd.NOW)
    listed_attachments = api.tickets[0].pop("attachments")
    api.ticket_attachments[5] = listed_attachments
    async with api.client() as client:
        adapter = fd_tests.adapter_for(
            api, clock, client, include_articles=False, view_tickets_for_attachments=True
        )
        pages, _ = await fd_tests.drain(adapter, adapter.initial_checkpoint())
    assert api.requests_to("/api/v2/tickets/5")
    names = {r["name"] for r in by_id(pages)["ticket:5"].metadata["attachments"]}
    assert "invoice-4005.pdf" in names


async def test_unchanged_articles_are_not_downloaded_again() -> None:
    api, clock = fd_tests.dataset(), ManualClock(fd.NOW)
    manual = files.pdf("Return shipping label instructions")
    api.articles[21][0]["attachments"] = [api.attach("label.pdf", "application/pdf", manual, 40)]
    async with api.client() as client:
        adapter = fd_tests.adapter_for(api, clock, client)
        first, finished = await fd_tests.drain(adapter, adapter.initial_checkpoint())
        assert "label.pdf" in {
            p.attachment_name for p in by_id(first)["article:31"].parts if p.label == "attachment"
        }
        downloads = len([r for r in api.requests if r.url.host == fd.FILE_HOST])
        assert downloads == 1

        # Next round: the same article, with a freshly signed link and more views.
        article = api.articles[21][0]
        article["hits"] += 25
        article["attachments"][0]["attachment_url"] += "&X-Amz-Date=20250301T130000Z"
        second, finished = await fd_tests.drain(adapter, finished)
        assert "article:31" not in by_id(second)
        assert len([r for r in api.requests if r.url.host == fd.FILE_HOST]) == downloads

        # A new file on the article makes it changed: emitted again, files read again.
        article["attachments"].append(
            api.attach("label-2025.txt", "text/plain", b"New carrier from March", 41)
        )
        third, _ = await fd_tests.drain(adapter, finished)
    names = {p.attachment_name for p in by_id(third)["article:31"].parts if p.label == "attachment"}
    assert names == {"label.pdf", "label-2025.txt"}
