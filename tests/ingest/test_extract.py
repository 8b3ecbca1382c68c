"""Attachment text extraction: every supported type, limits, and damaged files."""

from __future__ import annotations

import io
import zipfile

import pytest

from backend.ingest.extract import ExtractionError, extract_text, file_type
from tests.adapters import attachment_files as files

LIMITS = {"max_chars": 100_000, "max_inflated": 50 * 1024 * 1024}


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("Invoice.PDF", "application/octet-stream", "pdf"),
        ("report", "application/pdf", "pdf"),
        ("a.docx", None, "docx"),
        ("b.xlsx", None, "xlsx"),
        ("c.pptx", None, "pptx"),
        ("d.htm", None, "html"),
        ("e.log", None, "txt"),
        ("mail.eml", None, "eml"),
        ("forwarded", "message/rfc822", "eml"),
        ("scan.jpeg", "image/jpeg", "image"),
        ("screenshot", "image/png", "image"),
        ("setup.exe", "application/octet-stream", None),
        ("legacy.doc", "application/msword", None),
        (None, None, None),
    ],
)
def test_file_type(name: str | None, content_type: str | None, expected: str | None) -> None:
    assert file_type(name, content_type) == expected


def test_each_type_gives_its_text() -> None:
    assert extract_text(files.pdf("Serial number SN-4411"), "pdf", **LIMITS) == (
        "Serial number SN-4411"
    )
    docx_text = extract_text(
        files.docx("Steps to reset", table=[["Model", "Hold"], ["Hub 2", "10 s"]]),
        "docx",
        **LIMITS,
    )
    assert "Steps to reset" in docx_text and "Hub 2 | 10 s" in docx_text
    sheet = extract_text(files.xlsx([["Order", "Total"], [4001, 129.5]]), "xlsx", **LIMITS)
    assert sheet.splitlines()[0] == "# Orders" and "4001 | 129.5" in sheet
    slides = extract_text(files.pptx("Pairing", "Press and hold"), "pptx", **LIMITS)
    assert "Pairing" in slides and "Press and hold" in slides
    mail = extract_text(files.eml("Broken hub", "Jo <jo@example.org>", "It hums."), "eml", **LIMITS)
    assert "Subject: Broken hub" in mail and "It hums." in mail and "Attached: a.bin" in mail
    page = b"<html><head><style>p{}</style></head><body><p>One</p><ul><li>Two</li></ul></body>"
    assert extract_text(page, "html", **LIMITS) == "One\n\n- Two"
    korean = "배송이 지연되고 있습니다. 주문 번호 4001번 확인 부탁드립니다."
    assert extract_text(korean.encode("cp949"), "txt", **LIMITS) == korean
    assert extract_text("naïve café".encode("utf-8-sig"), "txt", **LIMITS) == "naïve café"


def test_text_is_cut_to_the_limit() -> None:
    text = extract_text(("word " * 10_000).encode(), "txt", max_chars=1000, max_inflated=1)
    assert len(text) == 1000


def test_damaged_and_hostile_files_are_errors() -> None:
    with pytest.raises(ExtractionError):
        extract_text(b"%PDF-1.4 nothing else", "pdf", **LIMITS)
    with pytest.raises(ExtractionError, match="ZIP"):
        extract_text(b"not a zip", "docx", **LIMITS)
    # A "zip bomb": small on the wire, huge inflated. Refused before any library opens it.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (8 * 1024 * 1024))
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(ExtractionError, match="inflates"):
        extract_text(bomb.getvalue(), "docx", max_chars=1000, max_inflated=1024 * 1024)
