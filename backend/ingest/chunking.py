"""Chunking: a normalized document → the passages that are embedded and retrieved.

Each kind is cut the way its readers use it:

- **Tickets and conversations.** First a question/answer chunk (the subject, the start of
  the description, and the resolution, or the last public agent reply), because "how was
  this solved?" is what similar-ticket search and answers look for. Then the public thread
  in order. Internal notes are chunked on their own and flagged ``internal``: they may
  inform an agent but must never be quoted to a customer, so they never share a chunk
  with public text.
- **Articles.** Split along their headings (LangChain's Markdown header splitter), each
  chunk prefixed with the article title and its section path, so a passage read alone
  still says where it comes from.
- **Reviews.** Usually one chunk: the review and the owner's reply together.
- **Attachments** (text extracted from a ticket's or article's files) are chunked on their
  own, each chunk headed with the parent's title and "attachment X of ticket Y", so the
  passage is cited as the attachment of its parent; one on a private note stays internal.

Long sections are cut with LangChain's ``RecursiveCharacterTextSplitter`` at paragraph,
line and sentence boundaries (including CJK sentence punctuation) with some overlap.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Final

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from backend.adapters.base import DocumentKind, SourceDocument
from backend.ingest.normalize import (
    NormalizedDocument,
    NormalizedPart,
    normalize_document,
    normalize_whitespace,
)

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_SIZE",
    "Chunk",
    "Chunker",
    "chunk_document",
]

DEFAULT_CHUNK_SIZE: Final = 1000
DEFAULT_CHUNK_OVERLAP: Final = 150

SECTION_RESOLUTION: Final = "resolution"
SECTION_THREAD: Final = "thread"
SECTION_INTERNAL: Final = "internal notes"
SECTION_ATTACHMENT: Final = "attachment"

# Paragraphs, lines, then sentences (CJK full stops carry no trailing space), then clauses.
_SEPARATORS: Final = [
    "\n\n", "\n", "。", "！", "？", ". ", "! ", "? ", "；", "; ", "、", "，", ", ", " ", "",
]  # fmt: skip
_HEADERS: Final = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
_ROLE_NAMES: Final = {
    "customer": "Customer",
    "agent": "Agent",
    "system": "System",
    "owner": "Owner",
}
_RESOLVED_STATUSES: Final = frozenset({"resolved", "closed", "solved", "done"})
# The question side of the Q&A chunk is a reminder of the problem, not the whole story.
_QUESTION_EXCERPT: Final = 400
_MIN_BODY: Final = 200


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage to embed. ``index`` is its position in the document, from 0."""

    index: int
    text: str
    internal: bool
    section: str | None
    attachment: str | None = None
    """The file name when the chunk is an attachment's text."""
    cite_as: str | None = None
    """How a citation names an attachment chunk: ``attachment X of ticket #Y``."""


def _excerpt(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


def _speaker(part: NormalizedPart) -> str:
    if part.label == "resolution":
        return "Resolution: "
    if part.label == "owner_reply":
        return "Owner reply: "
    if part.internal:
        return "Internal note: "
    name = _ROLE_NAMES.get(part.author_role or "")
    # The author's display name helps agents ("what did Dana tell them?"); their email never
    # goes into chunk text.
    if name and part.author_name:
        return f"{name} ({part.author_name}): "
    if part.author_name:
        return f"{part.author_name}: "
    return f"{name}: " if name else ""


class Chunker:
    """Cuts normalized documents into chunks of about ``chunk_size`` characters."""

    def __init__(
        self, chunk_size: int = DEFAULT_CHUNK_SIZE, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    ) -> None:
        if chunk_size < _MIN_BODY * 2:
            raise ValueError(f"chunk_size must be at least {_MIN_BODY * 2}")
        if not 0 <= chunk_overlap < chunk_size // 2:
            raise ValueError("chunk_overlap must be between 0 and half of chunk_size")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._headers = MarkdownHeaderTextSplitter(headers_to_split_on=_HEADERS, strip_headers=True)
        self._splitters: dict[int, RecursiveCharacterTextSplitter] = {}

    def _splitter(self, body_size: int) -> RecursiveCharacterTextSplitter:
        # One splitter per body size; titles vary, so sizes do too, but only within a range.
        splitter = self._splitters.get(body_size)
        if splitter is None:
            splitter = RecursiveCharacterTextSplitter(
                chunk_size=body_size,
                chunk_overlap=min(self.chunk_overlap, body_size // 3),
                separators=_SEPARATORS,
                keep_separator="end",
                strip_whitespace=True,
            )
            if len(self._splitters) < 256:
                self._splitters[body_size] = splitter
        return splitter

    def _split(self, header: str, body: str) -> list[str]:
        """``header`` + each piece of ``body``, each about ``chunk_size`` characters."""
        body_size = max(_MIN_BODY, self.chunk_size - len(header))
        pieces = self._splitter(body_size).split_text(body) if body.strip() else []
        return [header + piece for piece in pieces if piece.strip()]

    def chunk(self, document: NormalizedDocument | SourceDocument) -> list[Chunk]:
        normalized = (
            normalize_document(document) if isinstance(document, SourceDocument) else document
        )
        attachments = [p for p in normalized.parts if p.label == "attachment"]
        if attachments:
            normalized = dataclasses.replace(
                normalized, parts=tuple(p for p in normalized.parts if p.label != "attachment")
            )
        if normalized.kind == DocumentKind.ARTICLE:
            drafts = self._article(normalized)
        elif normalized.kind == DocumentKind.REVIEW:
            drafts = self._review(normalized)
        else:
            drafts = self._ticket(normalized)
        chunks = [
            Chunk(index=i, text=text, internal=internal, section=section)
            for i, (text, internal, section) in enumerate(drafts)
        ]
        for part in attachments:
            name = part.attachment_name or "file"
            cite_as = f"attachment {name} of {normalized.reference or normalized.kind.value}"
            header = f"{normalized.title}\n[{cite_as}]"
            if part.internal:
                header += "\n[internal, not for customers]"
            for text in self._split(header + "\n\n", part.text):
                chunks.append(
                    Chunk(
                        index=len(chunks),
                        text=text,
                        internal=part.internal,
                        section=SECTION_ATTACHMENT,
                        attachment=name,
                        cite_as=cite_as,
                    )
                )
        return chunks

    # --- kinds ----------------------------------------------------------------------------

    def _ticket(self, doc: NormalizedDocument) -> list[tuple[str, bool, str | None]]:
        title = doc.title
        body_parts = [p for p in doc.parts if p.label != "subject"]
        public = [p for p in body_parts if not p.internal]
        internal = [p for p in body_parts if p.internal]
        drafts: list[tuple[str, bool, str | None]] = []

        qa = self._question_answer(doc, public)
        if qa is not None:
            drafts.append((qa, False, SECTION_RESOLUTION))

        thread = "\n\n".join(_speaker(p) + p.text for p in public)
        drafts += [(t, False, SECTION_THREAD) for t in self._split(f"{title}\n\n", thread)]

        notes = "\n\n".join(_speaker(p) + p.text for p in internal)
        header = f"{title}\n[internal notes, not for customers]\n\n"
        drafts += [(t, True, SECTION_INTERNAL) for t in self._split(header, notes)]

        if not drafts and title:
            drafts.append((title, False, SECTION_THREAD))
        return drafts

    def _question_answer(self, doc: NormalizedDocument, public: list[NormalizedPart]) -> str | None:
        resolutions = [p for p in public if p.label == "resolution"]
        agent_replies = [
            p for p in public if p.author_role == "agent" and p.label in ("reply", "note")
        ]
        if resolutions:
            answer, heading = resolutions[-1].text, "Resolution"
        elif agent_replies:
            resolved = doc.status is None or doc.status.lower() in _RESOLVED_STATUSES
            answer = agent_replies[-1].text
            heading = "Resolution" if resolved else "Latest agent reply"
        else:
            return None
        description = next((p.text for p in public if p.label == "description"), "")
        question = f"Q: {doc.title}"
        if description:
            question += "\n" + _excerpt(description, _QUESTION_EXCERPT)
        room = max(_MIN_BODY, self.chunk_size - len(question) - len(heading) - 4)
        return f"{question}\n\n{heading}: {_excerpt(answer, room)}"

    def _article(self, doc: NormalizedDocument) -> list[tuple[str, bool, str | None]]:
        drafts: list[tuple[str, bool, str | None]] = []
        for internal in (False, True):
            parts = [p for p in doc.parts if p.internal == internal and p.label != "subject"]
            body = "\n\n".join(p.text for p in parts)
            if not body.strip():
                continue
            for section, content in self._sections(doc.title, body):
                header = doc.title + (f"\n{section}" if section else "")
                if internal:
                    header += "\n[internal, not for customers]"
                drafts += [(t, internal, section) for t in self._split(header + "\n\n", content)]
        if not drafts and doc.title:
            drafts.append((doc.title, False, None))
        return drafts

    def _sections(self, title: str, body: str) -> list[tuple[str | None, str]]:
        sections: list[tuple[str | None, str]] = []
        for piece in self._headers.split_text(body):
            path = [
                str(piece.metadata[key])
                for _, key in _HEADERS
                if key in piece.metadata
                # A first heading that repeats the title adds nothing to the prefix.
                and str(piece.metadata[key]).strip().casefold() != title.strip().casefold()
            ]
            content = normalize_whitespace(piece.page_content)
            if content:
                sections.append((" › ".join(path) or None, content))
        return sections

    def _review(self, doc: NormalizedDocument) -> list[tuple[str, bool, str | None]]:
        lines: list[str] = []
        for part in doc.parts:
            if part.label == "subject" or part.internal:
                continue
            if part.label == "review":
                stars = f" ({doc.rating:g}/5)" if doc.rating is not None else ""
                lines.append(f"Review{stars}: {part.text}")
            else:
                lines.append(_speaker(part) + part.text)
        header = f"{doc.title}\n\n" if doc.title else ""
        drafts: list[tuple[str, bool, str | None]] = [
            (t, False, None) for t in self._split(header, "\n\n".join(lines))
        ]
        notes = "\n\n".join(_speaker(p) + p.text for p in doc.parts if p.internal)
        internal_header = f"{doc.title}\n[internal notes, not for customers]\n\n"
        drafts += [(t, True, SECTION_INTERNAL) for t in self._split(internal_header, notes)]
        return drafts


@functools.cache
def _default_chunker(chunk_size: int, chunk_overlap: int) -> Chunker:
    return Chunker(chunk_size, chunk_overlap)


def chunk_document(
    document: NormalizedDocument | SourceDocument,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
) -> list[Chunk]:
    """Chunk one document (a ``SourceDocument`` is normalized first)."""
    return _default_chunker(chunk_size, chunk_overlap).chunk(document)
