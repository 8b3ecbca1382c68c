"""Retrieved passages: one chunk of a company's knowledge with its citation handle."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from backend.embeddings.sparse import tokenize
from backend.llm.types import Passage
from backend.vectors import ChunkKind, VectorHit

DEFAULT_SNIPPET_CHARS = 240


class RetrievedPassage(BaseModel):
    """A search result. ``id`` is the chunk's point id; ``document_id`` names the document
    (the documents-table id), so a citation can be resolved to the source record.

    ``internal`` marks content from private notes: an agent may read it, a customer never.
    ``text`` is the whole chunk; ``snippet`` is a short excerpt around the query's terms.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    document_id: str
    external_id: str | None = None
    chunk_index: int = 0
    title: str
    url: str | None = None
    kind: ChunkKind
    source: str
    language: str | None = None
    status: str | None = None
    internal: bool = False
    tags: tuple[str, ...] = ()
    section: str | None = None
    attachment: str | None = None
    """The file name when the passage is text extracted from an attachment."""
    cite_as: str | None = None
    """How to cite an attachment passage: ``attachment X of ticket #Y``."""
    rating: float | None = None
    updated_at: datetime | None = None
    score: float
    snippet: str
    text: str

    @classmethod
    def from_hit(cls, hit: VectorHit, query_terms: Iterable[str]) -> RetrievedPassage:
        payload = hit.payload
        rating = payload.metadata.get("rating")
        section = payload.metadata.get("section")
        attachment = payload.metadata.get("attachment")
        cite_as = payload.metadata.get("cite_as")
        return cls(
            id=str(hit.id),
            document_id=payload.document_id,
            external_id=payload.external_id,
            chunk_index=payload.chunk_index,
            title=payload.title,
            url=payload.url,
            kind=payload.kind,
            source=payload.source,
            language=payload.language,
            status=payload.status,
            internal=payload.internal,
            tags=tuple(payload.tags),
            section=section if isinstance(section, str) else None,
            attachment=attachment if isinstance(attachment, str) else None,
            cite_as=cite_as if isinstance(cite_as, str) else None,
            rating=float(rating) if isinstance(rating, int | float) else None,
            updated_at=payload.updated_at,
            score=hit.score,
            snippet=make_snippet(payload.text, query_terms),
            text=payload.text,
        )

    @property
    def body(self) -> str:
        """The chunk without the title/section header that ingest prefixes to it (the header
        helps embedding; quoted back, it would read as a stray sentence)."""
        head, separator, rest = self.text.partition("\n\n")
        if separator and rest.strip() and self.title and head.startswith(self.title):
            return rest.strip()
        return self.text

    @property
    def citation_title(self) -> str:
        """The title a citation shows: an attachment's passage names the file and its parent
        ("Invoice total is wrong — attachment invoice.pdf of ticket #5")."""
        return f"{self.title} — {self.cite_as}" if self.cite_as else self.title

    def to_llm_passage(self) -> Passage:
        return Passage(
            id=self.id,
            title=self.citation_title,
            text=self.body,
            url=self.url,
            kind=self.kind,
            internal=self.internal,
            language=self.language,
            status=self.status,
        )


def _fold(text: str) -> str:
    # NFKC + lower-case keeps the string the same length for the scripts we meet in practice
    # (full-width Latin and half-width kana fold 1:1), so offsets map back to the original.
    folded = unicodedata.normalize("NFKC", text).lower()
    return folded if len(folded) == len(text) else text.lower()


def make_snippet(
    text: str, query_terms: Iterable[str], *, max_chars: int = DEFAULT_SNIPPET_CHARS
) -> str:
    """An excerpt of ``text`` of at most about ``max_chars`` characters, placed where the
    most distinct query terms occur; ``…`` marks cut ends. Terms are the sparse encoder's
    (words, and character bigrams for Korean, Japanese and Chinese)."""
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    folded = _fold(flat)
    # Plain substring search: every query has new terms, and compiling a pattern per term
    # (or per query) cost more than the search itself on the search hot path.
    hits: list[tuple[int, str]] = []
    for term in set(query_terms):
        if not term:
            continue
        position = folded.find(term)
        while position != -1:
            hits.append((position, term))
            position = folded.find(term, position + 1)
    hits.sort()
    start = 0
    if hits:
        # Slide a window that starts a little before each hit; keep the one covering the
        # most distinct terms (the earliest wins ties: leads usually say the most). Both
        # window edges only move forward, so two pointers over the sorted hits and a count
        # per term keep this linear in the number of hits.
        best_count = -1
        counts: dict[str, int] = {}
        low = high = 0
        for position, _ in hits:
            window_start = max(0, position - max_chars // 6)
            window_end = window_start + max_chars
            while high < len(hits) and hits[high][0] < window_end:
                counts[hits[high][1]] = counts.get(hits[high][1], 0) + 1
                high += 1
            while hits[low][0] < window_start:
                counts[hits[low][1]] -= 1
                if not counts[hits[low][1]]:
                    del counts[hits[low][1]]
                low += 1
            if len(counts) > best_count:
                best_count, start = len(counts), window_start
    end = min(len(flat), start + max_chars)
    start = max(0, end - max_chars)
    # Cut at word boundaries where there are any (CJK text may have none nearby).
    if start > 0:
        space = flat.find(" ", start, start + 30)
        start = space + 1 if space != -1 else start
    if end < len(flat):
        space = flat.rfind(" ", end - 30, end)
        end = space if space != -1 else end
    excerpt = flat[start:end].strip()
    return ("…" if start > 0 else "") + excerpt + ("…" if end < len(flat) else "")


def query_terms(query: str) -> list[str]:
    """The terms a snippet looks for: the sparse encoder's tokens of the query."""
    return tokenize(query)
