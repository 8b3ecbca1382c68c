"""ServiceNow: people, service-level fields and attachments (``sys_attachment`` rows, files
from ``/api/now/attachment/{sys_id}/file``), and unpublished articles counted.

Field names follow the Table API and the base system's dictionary: incident ``caller_id``,
``assigned_to`` (dot-walked ``.name``/``.user_name``/``.email``), ``due_date``, ``escalation``
(0 normal … 3 overdue), ``made_sla``; sys_attachment ``file_name``, ``content_type``,
``size_bytes``, ``table_name``, ``table_sys_id``.
"""

from __future__ import annotations

from datetime import timedelta

import attachment_files as files
import httpx
import servicenow_api as sn
import test_servicenow as sn_tests

from backend.adapters.base import ManualClock
from backend.ingest.chunking import chunk_document


def attachment_row(
    n: int, record: dict[str, object], table: str, name: str, kind: str, size: int
) -> dict[str, object]:
    return {
        "sys_id": sn.sys_id(60000 + n),
        "file_name": name,
        "content_type": kind,
        "size_bytes": str(size),
        "table_name": table,
        "table_sys_id": record["sys_id"],
        "sys_created_by": "employee1",
        "sys_created_on": sn.sn_time(sn.NOW - timedelta(hours=29, minutes=n)),
        "_readable": True,
    }


def dataset() -> sn.FakeServiceNow:
    api = sn_tests.dataset()
    incident = api.tables["incident"][0]
    incident.update(
        {
            "caller_id.name": "Eun-ji Seo",
            "assigned_to": sn.sys_id(8001),
            "assigned_to.name": "Agent Smith",
            "assigned_to.user_name": "agent.smith",
            "contact_type": "email",
            "due_date": "2025-03-03 17:00:00",
            "escalation": "2",
            "made_sla": "false",
        }
    )
    guide = files.docx("VPN profile 5.2 reinstall: remove the old profile first.")
    screenshot = files.PNG
    rows = [
        attachment_row(1, incident, "incident", "vpn-guide.docx",
                       "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                       len(guide)),
        attachment_row(2, incident, "incident", "error.png", "image/png", len(screenshot)),
        attachment_row(3, api.tables["kb_knowledge"][0], "kb_knowledge", "checklist.pdf",
                       "application/pdf", 0),
    ]  # fmt: skip
    checklist = files.pdf("VPN checklist: certificate, profile, MFA")
    rows[2]["size_bytes"] = str(len(checklist))
    api.tables["sys_attachment"] = rows
    api.files = {
        str(rows[0]["sys_id"]): guide,
        str(rows[1]["sys_id"]): screenshot,
        str(rows[2]["sys_id"]): checklist,
    }
    return api


async def test_people_fields_and_attachments_arrive() -> None:
    api, clock = dataset(), ManualClock(sn.NOW)
    async with api.client() as client:
        adapter = sn_tests.adapter_for(api, clock, client)
        pages, _ = await sn_tests.drain(adapter, adapter.initial_checkpoint())
    assert all(not p.failures for p in pages)
    documents = {d.external_id: d for p in pages for d in p.documents}
    incident = documents[f"incident:{sn.sys_id(1)}"]
    meta = incident.metadata
    assert meta["caller_name"] == "Eun-ji Seo" and meta["assignee_name"] == "Agent Smith"
    assert meta["due_date"] == "2025-03-03T17:00:00+00:00"
    assert meta["escalation"] == "high" and meta["made_sla"] is False
    assert meta["channel"] == "email"
    authors = [(p.label, p.author_id, p.author_name) for p in incident.parts if p.author_id]
    assert authors == [
        ("description", "employee1", "Eun-ji Seo"),
        ("reply", "employee1", "Eun-ji Seo"),
        ("note", "agent.smith", "Agent Smith"),
        ("reply", "agent.smith", "Agent Smith"),
    ]
    outcomes = {r["name"]: r["outcome"] for r in meta["attachments"]}
    assert outcomes == {"vpn-guide.docx": "indexed", "error.png": "image"}
    [guide] = [p for p in incident.parts if p.label == "attachment"]
    assert "remove the old profile first" in guide.text
    chunk = next(c for c in chunk_document(incident) if c.attachment)
    assert chunk.cite_as == "attachment vpn-guide.docx of incident INC0010001"

    article = documents[f"article:{sn.sys_id(30001)}"]
    [checklist] = [p for p in article.parts if p.label == "attachment"]
    assert "certificate, profile, MFA" in checklist.text

    counts: dict[str, int] = {}
    for page in pages:
        for key, value in page.counts.items():
            counts[key] = counts.get(key, 0) + value
    assert counts == {
        "attachments_indexed": 2,
        "attachments_skipped.image": 1,
        "skipped.unpublished_article": 2,  # one retired, one draft
    }
    downloads = [r for r in api.requests if r.url.path.startswith("/api/now/attachment/")]
    assert len(downloads) == 2  # the image is recorded, not downloaded
    assert all(r.headers["authorization"].startswith("Basic ") for r in downloads)
    listing = api.requests_to("sys_attachment")[0].url.params["sysparm_query"]
    assert listing.startswith("table_name=kb_knowledge^table_sys_idIN")


async def test_attachment_listing_outage_blocks_the_page_for_a_retry() -> None:
    api, clock = dataset(), ManualClock(sn.NOW)
    api.fail("sys_attachment", *[httpx.Response(503)] * 10)
    async with api.client() as client:
        adapter = sn_tests.adapter_for(api, clock, client, max_attempts=2)
        page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert page.blocked and page.documents == []
    assert page.checkpoint == adapter.initial_checkpoint()
