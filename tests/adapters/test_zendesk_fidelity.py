"""Zendesk: comment authors (sideloaded users), comment attachments, Help Center translations.

Payload shapes follow developer.zendesk.com: ticket comments with ``include=users`` (a
``users`` array beside ``comments``), comment ``attachments`` entries ``{id, file_name,
content_url, content_type, size, inline, ...}``, and ``GET /api/v2/help_center/articles/{id}
/translations.json`` (``translations`` with ``locale``, ``title``, ``body``, ``draft``,
``outdated``; offset paging through ``next_page``).
"""

from __future__ import annotations

import attachment_files as files
import httpx
from platform_replay import Replay, fixture_json, json_response
from test_zendesk import ARTICLES, TICKETS, build, comments_path, drain

from backend.adapters.attachments import AttachmentReader, AttachmentRef, AttachmentSettings
from backend.adapters.base import ManualClock
from backend.adapters.http import RateLimiter
from backend.ingest.chunking import chunk_document

CRASH_LOG = b"2024-03-04 10:58:01 ERROR charger C-40 fw=3.2 PD negotiation failed code=E47\n"
ROLLBACK = (
    b"<html><body><h1>Rollback</h1><p>Install firmware 3.1 from the service menu.</p></body></html>"
)


def ticket_103() -> dict[str, object]:
    ticket = fixture_json("zendesk/tickets_cursor_page1.json")["tickets"][0]
    return {
        **ticket,
        "id": 103,
        "requester_id": 36103,
        "assignee_id": 90002,
        "type": "task",
        "due_at": "2024-03-08T09:00:00Z",
        "status": "open",
        "subject": "Charger dead after firmware update",
    }


async def test_authors_and_attachments_of_comments() -> None:
    replay = Replay()
    replay.on(
        TICKETS,
        json_response({"tickets": [ticket_103()], "after_cursor": "c1", "end_of_stream": True}),
    )
    replay.on(
        comments_path(103), json_response(fixture_json("zendesk/comments_ticket_103_users.json"))
    )
    # content_url answers with a redirect to the user-content host, as Zendesk's does.
    replay.on(
        "/attachments/token/hT2kq9/",
        httpx.Response(
            302, headers={"Location": "https://acme.zdusercontent.example/1/crash.log?t=x"}
        ),
    )
    replay.on("/1/crash.log", httpx.Response(200, content=CRASH_LOG))
    replay.on("/attachments/rollback.html", httpx.Response(200, content=ROLLBACK))
    adapter, client = build(replay, ManualClock(), include_articles=False)
    async with client:
        pages = await drain(adapter, adapter.initial_checkpoint())
    assert all(not page.failures for page in pages)
    [document] = [d for page in pages for d in page.documents]
    assert replay.sent(comments_path(103))[0].url.params["include"] == "users"

    thread = [p for p in document.parts if p.label in ("description", "note")]
    assert [(p.author_id, p.author_name, p.author_email) for p in thread] == [
        ("36103", "Ji-woo Han", "jiwoo@example.kr"),
        ("90002", "Sam Rivera", "sam@acme.example"),
    ]
    meta = document.metadata
    assert meta["requester_name"] == "Ji-woo Han" and meta["assignee_name"] == "Sam Rivera"
    assert meta["type"] == "task" and meta["due_at"] == "2024-03-08T09:00:00Z"

    outcomes = {r["name"]: r["outcome"] for r in meta["attachments"]}
    assert outcomes == {"crash.log": "indexed", "receipt.jpg": "image", "rollback.html": "indexed"}
    files = {p.attachment_name: p for p in document.parts if p.label == "attachment"}
    assert "PD negotiation failed code=E47" in files["crash.log"].text
    assert "Install firmware 3.1" in files["rollback.html"].text
    assert files["rollback.html"].internal and not files["crash.log"].internal
    counts: dict[str, int] = {}
    for page in pages:
        for key, value in page.counts.items():
            counts[key] = counts.get(key, 0) + value
    assert counts == {"attachments_indexed": 2, "attachments_skipped.image": 1}

    # Credentials go to the account's own host only, never to an external file host.
    own = replay.sent("/attachments/token/hT2kq9/")[0]
    redirected = replay.sent("/1/crash.log")[0]
    external = replay.sent("/attachments/rollback.html")[0]
    assert own.headers["authorization"].startswith("Basic ")
    assert redirected.url.host == "acme.zdusercontent.example"
    assert "authorization" not in redirected.headers
    assert "authorization" not in external.headers
    assert replay.sent("/attachments/token/Qp7mZ1/") == []  # images are never downloaded

    chunk = next(c for c in chunk_document(document) if c.attachment == "crash.log")
    assert chunk.cite_as == "attachment crash.log of ticket #103"


REFUND_FORM = files.pdf("Refund request form: order number, reason, bank account")


async def test_help_center_translations_are_linked_documents() -> None:
    replay = Replay()
    page = fixture_json("zendesk/articles_incremental_page1.json")
    page["articles"] = page["articles"][:1]  # 360050001, source locale ko
    page["next_page"] = None
    replay.on(ARTICLES, json_response(page))
    replay.on(
        "/api/v2/help_center/articles/360050001/translations.json",
        json_response(fixture_json("zendesk/translations_article_360050001.json")),
    )
    replay.on(
        "/api/v2/help_center/articles/360050001/attachments.json",
        json_response(
            {
                "article_attachments": [
                    {
                        "id": 1428,
                        "url": "https://acme.zendesk.com/api/v2/help_center/articles/attachments/1428",
                        "article_id": 360050001,
                        "file_name": "refund-form.pdf",
                        "content_url": "https://acme.zendesk.com/hc/article_attachments/1428/refund-form.pdf",
                        "content_type": "application/pdf",
                        "size": len(REFUND_FORM),
                        "inline": False,
                        "created_at": "2024-03-01T02:00:00Z",
                        "updated_at": "2024-03-01T02:00:00Z",
                    },
                    {
                        "id": 1429,
                        "article_id": 360050001,
                        "file_name": "refund-steps.png",
                        "content_url": "https://acme.zendesk.com/hc/article_attachments/1429/refund-steps.png",
                        "content_type": "image/png",
                        "size": 20480,
                        "inline": True,
                    },
                ]
            }
        ),
    )
    replay.on(
        "/hc/article_attachments/1428/refund-form.pdf", httpx.Response(200, content=REFUND_FORM)
    )
    adapter, client = build(replay, ManualClock(), include_tickets=False)
    async with client:
        pages = await drain(adapter, adapter.initial_checkpoint())
    documents = {d.external_id: d for p in pages for d in p.documents}
    assert sorted(documents) == ["article:360050001", "article:360050001:en-us"]
    source, english = documents["article:360050001"], documents["article:360050001:en-us"]
    assert source.language == "ko" and source.metadata["translation_of"] is None
    assert english.language == "en" and english.title == "Refund policy"
    assert english.metadata["translation_of"] == "article:360050001"
    assert english.metadata["outdated"] is True
    assert english.url == "https://acme.zendesk.com/hc/en-us/articles/360050001"
    deletions = [(d.external_id, d.reason) for p in pages for d in p.deletions]
    assert deletions == [("article:360050001:ja", "draft")]
    assert sum(p.counts.get("skipped.draft_article", 0) for p in pages) == 1
    # The article's attached PDF is indexed with it; its inline image only recorded.
    [form] = [p for p in source.parts if p.label == "attachment"]
    assert form.attachment_name == "refund-form.pdf" and "bank account" in form.text
    outcomes = {r["name"]: r["outcome"] for r in source.metadata["attachments"]}
    assert outcomes == {"refund-form.pdf": "indexed", "refund-steps.png": "image"}
    cite = next(c for c in chunk_document(source) if c.attachment).cite_as
    assert cite == 'attachment refund-form.pdf of article "환불 정책"'


async def test_file_redirects_are_bounded_and_https_only() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/plain":
            return httpx.Response(302, headers={"Location": "http://files.example/a.txt"})
        return httpx.Response(302, headers={"Location": "/loop"})  # forever

    clock = ManualClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        reader = AttachmentReader(
            AttachmentSettings(),
            client=client,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
        )
        results = await reader.read_all(
            [
                AttachmentRef(id="1", name="a.txt", url="https://acme.zendesk.com/plain"),
                AttachmentRef(id="2", name="b.txt", url="https://acme.zendesk.com/loop"),
            ],
            where="ticket:1",
        )
    assert [r["outcome"] for r in results.records] == ["download_failed", "download_failed"]
    assert "non-https" in results.failures[0].message
    assert results.failures[1].message == "too many redirects"
    assert results.parts == []
