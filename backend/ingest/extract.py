"""Attachment text extraction: the bytes of a PDF, DOCX, XLSX, PPTX, HTML, TXT or EML file →
plain text, with well-kept libraries (pypdf, python-docx, openpyxl, python-pptx, the standard
library's email parser, our HTML renderer).

Pure and synchronous: callers run :func:`extract_text` in a worker thread (it is CPU-bound and
a large PDF takes a while). Images and unknown types have no text here: :func:`file_type`
tells them apart so they can be recorded without being indexed.

Office files are ZIP archives; a small one can inflate to gigabytes (a "zip bomb"), so the
archive's declared uncompressed size is checked before any library opens it.
"""

from __future__ import annotations

import email
import email.policy
import io
import zipfile
from collections.abc import Iterable, Iterator
from email.message import EmailMessage
from typing import Final, Literal

from charset_normalizer import from_bytes

from backend.ingest.normalize import html_to_text, normalize_whitespace

FileType = Literal["pdf", "docx", "xlsx", "pptx", "html", "txt", "eml"]
TEXT_TYPES: Final[frozenset[str]] = frozenset({"pdf", "docx", "xlsx", "pptx", "html", "txt", "eml"})

_BY_EXTENSION: Final[dict[str, FileType]] = {
    "pdf": "pdf",
    "docx": "docx",
    "xlsx": "xlsx",
    "xlsm": "xlsx",
    "pptx": "pptx",
    "html": "html",
    "htm": "html",
    "txt": "txt",
    "text": "txt",
    "log": "txt",
    "csv": "txt",
    "md": "txt",
    "eml": "eml",
}
_BY_MIME: Final[dict[str, FileType]] = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "txt",
    "text/csv": "txt",
    "text/markdown": "txt",
    "message/rfc822": "eml",
}
_IMAGE_EXTENSIONS: Final = frozenset(
    {"png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff", "heic", "svg", "ico"}
)

# Spreadsheets can hold a million rows; the first few thousand say what the file is about.
_MAX_SHEET_ROWS: Final = 5000


class ExtractionError(Exception):
    """The file could not be read as its type (damaged, encrypted, not what it claims)."""


def file_type(name: str | None, content_type: str | None) -> FileType | Literal["image"] | None:
    """The type to extract ``name`` as, ``"image"`` for pictures, ``None`` when unknown.

    The extension decides first (platforms often send ``application/octet-stream``); the
    declared MIME type is the fallback.
    """
    extension = (name or "").rsplit(".", 1)[-1].lower() if "." in (name or "") else ""
    if extension in _BY_EXTENSION:
        return _BY_EXTENSION[extension]
    if extension in _IMAGE_EXTENSIONS:
        return "image"
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime.startswith("image/"):
        return "image"
    return _BY_MIME.get(mime)


def extract_text(data: bytes, kind: FileType, *, max_chars: int, max_inflated: int) -> str:
    """The text of a file of type ``kind``, normalized and cut to ``max_chars``.

    ``max_inflated`` bounds the uncompressed size of Office archives. Raises
    :class:`ExtractionError` when the file cannot be read.
    """
    try:
        if kind in ("docx", "xlsx", "pptx"):
            _check_archive(data, max_inflated)
        pieces = _EXTRACTORS[kind](data)
        text = normalize_whitespace("\n\n".join(_bounded(pieces, max_chars)))
    except ExtractionError:
        raise
    except Exception as exc:  # each library raises its own family of errors
        raise ExtractionError(f"{kind}: {type(exc).__name__}: {exc}"[:300]) from exc
    return text[:max_chars]


def _bounded(pieces: Iterable[str], max_chars: int) -> Iterator[str]:
    """Stop reading once enough text is gathered (a 900-page PDF need not be read whole)."""
    total = 0
    for piece in pieces:
        if total >= max_chars:
            return
        total += len(piece) + 2
        yield piece


def _check_archive(data: bytes, max_inflated: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise ExtractionError("not an Office (ZIP) file") from exc
    if inflated > max_inflated:
        raise ExtractionError(f"archive inflates to {inflated} bytes (limit {max_inflated})")


def _pdf(data: bytes) -> Iterator[str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        # Many PDFs are "encrypted" with an empty user password (print restrictions only).
        try:
            if not reader.decrypt(""):
                raise ExtractionError("pdf: password protected")
        except NotImplementedError as exc:
            raise ExtractionError("pdf: unsupported encryption") from exc
    for page in reader.pages:
        yield page.extract_text() or ""


def _docx(data: bytes) -> Iterator[str]:
    from docx import Document

    document = Document(io.BytesIO(data))
    for paragraph in document.paragraphs:
        yield paragraph.text
    for table in document.tables:
        for row in table.rows:
            yield " | ".join(cell.text.strip() for cell in row.cells)


def _xlsx(data: bytes) -> Iterator[str]:
    from openpyxl import load_workbook

    # read_only streams rows; data_only gives cached formula results instead of formulas.
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for sheet in workbook.worksheets:
            yield f"# {sheet.title}"
            for count, row in enumerate(sheet.iter_rows(values_only=True)):
                if count >= _MAX_SHEET_ROWS:
                    break
                cells = [str(value) for value in row if value is not None and str(value).strip()]
                if cells:
                    yield " | ".join(cells)
    finally:
        workbook.close()


def _pptx(data: bytes) -> Iterator[str]:
    from pptx import Presentation

    presentation = Presentation(io.BytesIO(data))
    for number, slide in enumerate(presentation.slides, start=1):
        texts = [
            shape.text_frame.text
            for shape in slide.shapes
            if shape.has_text_frame and shape.text_frame.text.strip()
        ]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text
            if notes.strip():
                texts.append(notes)
        if texts:
            yield f"Slide {number}\n" + "\n".join(texts)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Legacy encodings are common in mail from Korea and Japan (CP949, Shift_JIS).
        best = from_bytes(data).best()
        return str(best) if best is not None else data.decode("latin-1")


def _html(data: bytes) -> Iterator[str]:
    yield html_to_text(_decode(data))


def _txt(data: bytes) -> Iterator[str]:
    yield _decode(data)


def _eml(data: bytes) -> Iterator[str]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage):
        raise ExtractionError("eml: not a MIME message")
    for header in ("From", "To", "Date", "Subject"):
        value = message.get(header)
        if value:
            yield f"{header}: {value}"
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        if isinstance(content, bytes):
            content = _decode(content)
        yield html_to_text(content) if body.get_content_type() == "text/html" else content
    names = [part.get_filename() for part in message.iter_attachments() if part.get_filename()]
    if names:
        yield "Attached: " + ", ".join(str(name) for name in names)


_EXTRACTORS: Final = {
    "pdf": _pdf,
    "docx": _docx,
    "xlsx": _xlsx,
    "pptx": _pptx,
    "html": _html,
    "txt": _txt,
    "eml": _eml,
}

__all__ = ["TEXT_TYPES", "ExtractionError", "FileType", "extract_text", "file_type"]
