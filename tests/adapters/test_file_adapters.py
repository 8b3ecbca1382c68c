"""JSONL/CSV record exports and Markdown/HTML article folders."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from platform_replay import FIXTURES

from backend.adapters.base import DocumentKind
from backend.adapters.files.folder import (
    ArticleFolderAdapter,
    ArticleFolderCheckpoint,
    ArticleFolderSettings,
)
from backend.adapters.files.records import (
    RecordColumns,
    RecordExportAdapter,
    RecordExportCheckpoint,
    RecordExportSettings,
)


async def test_jsonl_export_maps_fields_kinds_deletions_and_failures() -> None:
    adapter = RecordExportAdapter(
        settings=RecordExportSettings(path=str(FIXTURES / "files" / "kb_export.jsonl"))
    )
    page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert not page.has_more
    documents = {doc.external_id: doc for doc in page.documents}
    assert list(documents) == ["article:kb-1", "article:kb-2", "ticket:T-77"]
    faq = documents["article:kb-1"]
    assert faq.kind is DocumentKind.ARTICLE
    assert faq.title == "반품 배송비 안내"
    assert faq.parts[0].label == "section"
    assert faq.tags == ["반품", "배송"]
    assert faq.language == "ko"
    assert faq.updated_at == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert faq.url == "https://help.acme.example/kb-1"
    assert documents["article:kb-2"].tags == ["security", "login"]
    ticket = documents["ticket:T-77"]
    assert ticket.kind is DocumentKind.TICKET
    assert ticket.title == "Order arrived damaged"
    assert ticket.parts[0].label == "description"
    assert ticket.status == "solved"
    assert ticket.requester == "jo@example.com"
    assert [(d.external_id, d.reason) for d in page.deletions] == [("article:kb-3", "archived")]
    messages = {f.where: f.message for f in page.failures}
    assert messages == {
        "kb_export.jsonl:5": "unknown kind 'podcast'",
        "kb_export.jsonl:6": "record has no id",
    }


async def test_csv_export_with_column_mapping_in_batches() -> None:
    settings = RecordExportSettings(
        path=str(FIXTURES / "files" / "tickets_export.csv"),
        columns=RecordColumns(id="number", title="short_description", updated_at="sys_updated_on"),
        batch_size=2,
    )
    first = await RecordExportAdapter(settings=settings).fetch_page(RecordExportCheckpoint())
    resumed = RecordExportCheckpoint.model_validate_json(first.checkpoint.model_dump_json())
    second = await RecordExportAdapter(settings=settings).fetch_page(resumed)
    assert first.has_more and not second.has_more
    assert [doc.external_id for doc in first.documents] == [
        "ticket:INC0010001",
        "ticket:INC0010002",
    ]
    assert first.documents[0].status == "resolved"
    assert first.documents[0].updated_at == datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
    assert second.documents == []
    [failure] = second.failures
    assert failure.where == "tickets_export.csv:3"


async def test_record_export_finished_round_rereads_only_a_replaced_file(tmp_path: Path) -> None:
    export = tmp_path / "kb_export.jsonl"
    shutil.copy(FIXTURES / "files" / "kb_export.jsonl", export)
    os.utime(export, ns=(1, 1_700_000_000_000_000_000))
    adapter = RecordExportAdapter(settings=RecordExportSettings(path=str(export)))
    first = await adapter.fetch_page(adapter.initial_checkpoint())
    assert not first.has_more
    before = {doc.external_id: doc for doc in first.documents}

    # The stored finished checkpoint on an unchanged file: a round with nothing to do.
    finished = RecordExportCheckpoint.model_validate_json(first.checkpoint.model_dump_json())
    idle = await adapter.fetch_page(finished)
    assert (idle.documents, idle.deletions, idle.has_more) == ([], [], False)

    # The export is replaced: one record edited, one added.
    lines = export.read_text(encoding="utf-8").splitlines()
    edited = {**json.loads(lines[1]), "body": "Enable 2FA with a passkey instead."}
    lines[1] = json.dumps(edited)
    lines.append(json.dumps({"id": "kb-5", "title": "Passkeys", "body": "Use a passkey."}))
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(export, ns=(2, 1_700_000_100_000_000_000))
    replaced = await adapter.fetch_page(idle.checkpoint)
    after = {doc.external_id: doc for doc in replaced.documents}
    # A snapshot has no per-record watermark: the whole file is read again, so the records
    # ingest already has are re-emitted unchanged (it skips them by content hash).
    assert set(after) == set(before) | {"article:kb-5"}
    assert after["article:kb-2"].parts != before["article:kb-2"].parts
    assert after["article:kb-1"] == before["article:kb-1"]
    assert after["ticket:T-77"] == before["ticket:T-77"]
    assert [(d.external_id, d.reason) for d in replaced.deletions] == [("article:kb-3", "archived")]

    # And the next round on that file has nothing to do again.
    quiet = await adapter.fetch_page(replaced.checkpoint)
    assert (quiet.documents, quiet.deletions, quiet.has_more) == ([], [], False)


def write(path: Path, text: str, mtime: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def article_folder(root: Path) -> None:
    write(
        root / "billing" / "refunds.md",
        "---\ntitle: 환불은 어떻게 하나요?\ntags: [환불, billing]\nlang: ko\n"
        "updated: 2024-03-01\n---\n# 다른 제목\n\n영업일 기준 3일 안에 환불됩니다.\n",
    )
    write(
        root / "account" / "password.md", "Intro line\n\n# Reset your password\n\nUse the link.\n"
    )
    write(
        root / "shipping.html",
        "<html lang='en'><head><title>Shipping times</title></head>"
        "<body><h1>Shipping</h1><p>2-3 business days.</p></body></html>",
    )
    write(root / "drafts" / "new.md", "---\ntitle: Upcoming\ndraft: true\n---\nNot yet.\n")
    write(root / "notes.txt", "not an article")
    write(root / ".git" / "HEAD.md", "# hidden")


async def run_round(
    adapter: ArticleFolderAdapter, stored: str
) -> tuple[list[str], list[str], list[str], str]:
    """One full round, resuming from stored JSON before every page, as a killed worker would."""
    documents: list[str] = []
    deletions: list[str] = []
    failures: list[str] = []
    for _ in range(20):
        page = await adapter.fetch_page(ArticleFolderCheckpoint.model_validate_json(stored))
        documents += [doc.external_id for doc in page.documents]
        deletions += [d.external_id for d in page.deletions]
        failures += [f.where for f in page.failures]
        stored = page.checkpoint.model_dump_json()
        if not page.has_more:
            return documents, deletions, failures, stored
    raise AssertionError("round did not finish")


async def test_folder_titles_ids_and_formats(tmp_path: Path) -> None:
    article_folder(tmp_path)
    adapter = ArticleFolderAdapter(
        settings=ArticleFolderSettings(root=str(tmp_path), base_url="https://kb.acme.example/")
    )
    page = await adapter.fetch_page(adapter.initial_checkpoint())
    documents = {doc.external_id: doc for doc in page.documents}
    assert list(documents) == [
        "article:account/password.md",
        "article:billing/refunds.md",
        "article:shipping.html",
    ]
    refunds = documents["article:billing/refunds.md"]
    assert refunds.title == "환불은 어떻게 하나요?"
    assert refunds.tags == ["환불", "billing"]
    assert refunds.language == "ko"
    assert refunds.parts[0].format == "markdown"
    assert refunds.parts[0].text.startswith("# 다른 제목")
    assert refunds.updated_at == datetime(2024, 3, 1, tzinfo=UTC)
    assert refunds.url == "https://kb.acme.example/billing/refunds.md"
    assert documents["article:account/password.md"].title == "Reset your password"
    shipping = documents["article:shipping.html"]
    assert shipping.title == "Shipping times"
    assert shipping.language == "en"
    assert shipping.parts[0].format == "html"
    assert "2-3 business days" in shipping.parts[0].text
    assert [(d.external_id, d.reason) for d in page.deletions] == [
        ("article:drafts/new.md", "draft")
    ]


async def test_folder_rerun_reads_changes_and_reports_missing_files(tmp_path: Path) -> None:
    article_folder(tmp_path)
    adapter = ArticleFolderAdapter(settings=ArticleFolderSettings(root=str(tmp_path), batch_size=1))
    documents, deletions, failures, stored = await run_round(
        adapter, ArticleFolderCheckpoint().model_dump_json()
    )
    assert sorted(documents) == [
        "article:account/password.md",
        "article:billing/refunds.md",
        "article:shipping.html",
    ]
    assert len(documents) == len(set(documents))
    assert deletions == ["article:drafts/new.md"]
    assert failures == []

    # Nothing changed: a new round reads nothing.
    assert (await run_round(adapter, stored))[:3] == ([], [], [])

    # One edit, one removal, one new file with broken front matter.
    write(tmp_path / "account" / "password.md", "# Reset your password\n\nNew steps.\n", mtime=2)
    (tmp_path / "shipping.html").unlink()
    write(tmp_path / "broken.md", "---\ntitle: [unclosed\n---\nbody\n")
    documents, deletions, failures, stored = await run_round(adapter, stored)
    assert documents == ["article:account/password.md"]
    assert deletions == ["article:shipping.html"]
    assert failures == ["broken.md"]
    # The broken file is not remembered, so it is tried again; the removal is reported once.
    documents, deletions, failures, _ = await run_round(adapter, stored)
    assert (documents, deletions, failures) == ([], [], ["broken.md"])


async def test_missing_folder_blocks(tmp_path: Path) -> None:
    adapter = ArticleFolderAdapter(settings=ArticleFolderSettings(root=str(tmp_path / "nope")))
    page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert page.blocked
    assert page.failures[0].message == "not a folder"
