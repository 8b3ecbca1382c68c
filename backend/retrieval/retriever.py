"""Hybrid retrieval: encode the query both ways, let the store fuse, dedupe per document."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Final

from backend.embeddings.dense import DenseEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.errors import BadRequest
from backend.retrieval.access import AGENT_SCOPE, AccessScope
from backend.retrieval.filters import SOLVED_STATUSES, SearchFilters
from backend.retrieval.fusion import (
    DEFAULT_FUSION_DENSE_WEIGHT,
    FusionMethod,
    fuse,
    query_dense_weight,
)
from backend.retrieval.passages import RetrievedPassage, query_terms
from backend.tenancy.company_id import CompanyId
from backend.vectors import SearchMode, VectorHit, VectorMatch, VectorStore, point_id

MAX_LIMIT: Final = 100
# How many following chunks :meth:`HybridRetriever.continuation` reads at most: an article's
# fix rarely lives more than a section or two after the passage that matched.
MAX_CONTINUATION: Final = 4
# Chunks fetched per requested passage before dedupe. Tickets have several chunks (Q&A,
# thread, notes) that often all match, so a few per document is the common case.
_OVERFETCH: Final = 4
_MIN_FETCH: Final = 20
_MAX_FETCH: Final = 400
_MAX_QUERY_CHARS: Final = 4000
# Candidates read from each list before fusion: fusion rewards what both lists agree on, so
# each must reach well past the passages kept.
_MIN_FUSION_DEPTH: Final = 100


def _is_latin_letter(ch: str) -> bool:
    code = ord(ch)
    # Basic Latin through Latin Extended-B, IPA, and Latin Extended Additional (Vietnamese).
    return code <= 0x02AF or 0x1E00 <= code <= 0x1EFF or 0xFF21 <= code <= 0xFF5A


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x1100 <= code <= 0x11FF
        or 0x3040 <= code <= 0x30FF
        or 0x3130 <= code <= 0x318F
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
    )


def is_mostly_non_latin(text: str) -> bool:
    """True when most of the text is outside the Latin script (Hangul, kana, Han, Cyrillic…).

    A Hangul syllable or a kanji carries about as much as two or three Latin letters, so
    CJK characters count double: "パスワード reset" is mostly Japanese.
    """
    latin = non_latin = 0
    for ch in text:
        if not ch.isalpha():
            continue
        if _is_latin_letter(ch):
            latin += 1
        else:
            non_latin += 2 if _is_cjk(ch) else 1
    return non_latin > latin


class HybridRetriever:
    """Searches one company's chunks. Stateless apart from its injected parts; share one.

    The local dense model (all-MiniLM-L6-v2) was trained on English: for a query written
    mostly in another script its vector is close to noise, and RRF would let that noise
    outvote the lexical list. Such queries run on the sparse side alone, whose CJK character
    bigrams match Korean and Japanese without word segmentation.
    """

    def __init__(
        self,
        vectors: VectorStore,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        *,
        dense_handles_non_latin: bool = False,
        dense_weight: float = DEFAULT_FUSION_DENSE_WEIGHT,
        fusion: FusionMethod = "convex",
    ) -> None:
        self._vectors = vectors
        self._dense = dense
        self._sparse = sparse
        if dense_weight <= 0:
            raise ValueError("dense_weight must be positive")
        self._dense_weight = dense_weight
        self._fusion: FusionMethod = fusion
        # A multilingual dense model (an embeddings API) can be trusted with any script.
        self._dense_handles_non_latin = dense_handles_non_latin

    @property
    def dense_weight(self) -> float:
        """The dense list's weight in hybrid fusion unless a search names its own."""
        return self._dense_weight

    @property
    def fusion(self) -> FusionMethod:
        return self._fusion

    def effective_mode(self, query: str, mode: SearchMode | str) -> SearchMode:
        """The mode a query really runs in (hybrid falls back to sparse, see the class)."""
        resolved = SearchMode(mode)
        if (
            resolved is SearchMode.HYBRID
            and not self._dense_handles_non_latin
            and is_mostly_non_latin(query)
        ):
            return SearchMode.SPARSE
        return resolved

    async def search(
        self,
        company_id: CompanyId,
        query: str,
        *,
        filters: SearchFilters | None = None,
        limit: int = 8,
        mode: SearchMode | str = SearchMode.HYBRID,
        include_internal: bool = True,
        per_document: int = 1,
        scope: AccessScope = AGENT_SCOPE,
        dense_weight: float | None = None,
        exclude_document_ids: Collection[str] = (),
    ) -> list[RetrievedPassage]:
        """The best ``limit`` passages for ``query``, at most ``per_document`` per document.

        ``include_internal=False`` leaves private-note content out (customer-facing use);
        ``scope`` is the caller's audience (see :mod:`backend.retrieval.access`).
        ``dense_weight`` overrides the fusion weight for this search (a company's tuned
        weight); ``exclude_document_ids`` leaves those documents out (an evaluation case's
        own ticket).
        """
        excluded = frozenset(exclude_document_ids)
        return await self._search(
            company_id,
            query,
            filters=filters or SearchFilters(),
            limit=limit,
            mode=mode,
            include_internal=include_internal,
            per_document=per_document,
            scope=scope,
            dense_weight=dense_weight,
            exclude=(lambda match: match.document_id in excluded) if excluded else None,
        )

    async def similar_tickets(
        self,
        company_id: CompanyId,
        ticket_text: str,
        *,
        limit: int = 5,
        exclude_external_id: str | None = None,
        include_internal: bool = True,
        filters: SearchFilters | None = None,
        scope: AccessScope = AGENT_SCOPE,
    ) -> list[RetrievedPassage]:
        """Tickets like ``ticket_text``: solved ones (resolved/closed) first, best first, then
        unsolved ones. ``exclude_external_id`` (e.g. ``ticket:123``) leaves the ticket being
        worked on out of its own results."""
        base = (filters or SearchFilters()).model_copy(update={"kinds": ("ticket",)})

        def excluded(match: VectorMatch) -> bool:
            return exclude_external_id is not None and match.external_id == exclude_external_id

        # A caller who chose statuses gets exactly those, in rank order.
        first_pass = (
            base if base.statuses else base.model_copy(update={"statuses": SOLVED_STATUSES})
        )
        solved = await self._search(
            company_id,
            ticket_text,
            filters=first_pass,
            limit=limit,
            mode=SearchMode.HYBRID,
            include_internal=include_internal,
            per_document=1,
            exclude=excluded,
            scope=scope,
        )
        if len(solved) >= limit or base.statuses:
            return solved[:limit]
        seen = {p.document_id for p in solved}

        def excluded_or_seen(match: VectorMatch) -> bool:
            return excluded(match) or match.document_id in seen

        others = await self._search(
            company_id,
            ticket_text,
            filters=base,
            limit=limit - len(solved),
            mode=SearchMode.HYBRID,
            include_internal=include_internal,
            per_document=1,
            exclude=excluded_or_seen,
            scope=scope,
        )
        return solved + others

    async def continuation(
        self,
        company_id: CompanyId,
        passage: RetrievedPassage,
        *,
        count: int = 2,
        include_internal: bool = True,
        scope: AccessScope = AGENT_SCOPE,
    ) -> list[RetrievedPassage]:
        """The chunks that follow ``passage`` in its own document (chunk ``n+1``, ``n+2``…),
        in order, for a caller that wants the rest of a section it found: an article's
        opening matched, its steps are in the next section.

        Read by point id from the company's own store; the run stops at the first chunk
        that is missing, belongs to another document, is an attachment's text, carries
        another internal mark than the passage, or that this audience may not see (a
        customer never gets a kind outside its scope or internal content; a ticket-bound
        agent token gets internal content of its own ticket only), so what comes back
        always continues the passage without a gap.
        """
        if not 1 <= count <= MAX_CONTINUATION:
            raise ValueError(f"count must be between 1 and {MAX_CONTINUATION}")
        if passage.external_id is None or passage.attachment is not None:
            return []
        allowed_kinds = scope.allowed_kinds(())
        if allowed_kinds is not None and allowed_kinds and passage.kind not in allowed_kinds:
            return []
        internal_from = scope.internal_only_from()
        internal_allowed = include_internal and (
            internal_from is None or passage.external_id in internal_from
        )
        ids = [
            point_id(company_id, passage.source, passage.external_id, passage.chunk_index + step)
            for step in range(1, count + 1)
        ]
        payloads = await self._vectors.payloads(company_id, ids)
        following: list[RetrievedPassage] = []
        for chunk_id in ids:
            payload = payloads.get(chunk_id)
            if (
                payload is None
                or payload.company_id != company_id
                or payload.document_id != passage.document_id
                or payload.kind != passage.kind
                or payload.metadata.get("attachment") is not None
                # One citation carries one internal mark: public text never continues into
                # a private note (an article's internal part is chunked after its public
                # part), whoever asks.
                or payload.internal != passage.internal
                or (payload.internal and not internal_allowed)
            ):
                break
            following.append(RetrievedPassage.from_hit(VectorHit(chunk_id, 0.0, payload), ()))
        return following

    async def _search(
        self,
        company_id: CompanyId,
        query: str,
        *,
        filters: SearchFilters,
        limit: int,
        mode: SearchMode | str,
        include_internal: bool,
        per_document: int,
        scope: AccessScope,
        exclude: Callable[[VectorMatch], bool] | None = None,
        dense_weight: float | None = None,
    ) -> list[RetrievedPassage]:
        if dense_weight is not None and not 0 < dense_weight <= 100:
            raise BadRequest("dense_weight must be in (0, 100]", code="invalid_dense_weight")
        text = query.strip()[:_MAX_QUERY_CHARS]
        if not text:
            raise BadRequest("the search query is empty", code="empty_query")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
        if per_document < 1:
            raise BadRequest("per_document must be at least 1", code="invalid_limit")
        effective = self.effective_mode(text, mode)
        dense = (
            await self._dense.embed_query(text)
            if effective in (SearchMode.DENSE, SearchMode.HYBRID)
            else None
        )
        # Inline, not in a thread: encoding a query takes tens of microseconds, less than
        # the hop to a worker thread would.
        sparse = (
            self._sparse.encode_query(text)
            if effective in (SearchMode.SPARSE, SearchMode.HYBRID)
            else None
        )
        vector_filter = filters.to_vector_filter(include_internal=include_internal, scope=scope)
        if vector_filter is None:
            return []  # nothing this audience may see was asked for
        terms = query_terms(text)

        fetch = max(limit * _OVERFETCH * per_document, _MIN_FETCH)
        while True:
            # Ranking needs only ids and document ids; payloads (the chunk text, ~1 kB) are
            # read for the passages kept after dedupe, a quarter of those ranked.
            if effective is SearchMode.HYBRID:
                # Both lists are read whole and fused here, on their scores (see fusion.py).
                depth = max(fetch, _MIN_FUSION_DEPTH)
                dense_matches = await self._vectors.match(
                    company_id,
                    dense=dense,
                    filter=vector_filter,
                    limit=depth,
                    mode=SearchMode.DENSE,
                )
                sparse_matches = (
                    await self._vectors.match(
                        company_id,
                        sparse=sparse,
                        filter=vector_filter,
                        limit=depth,
                        mode=SearchMode.SPARSE,
                    )
                    if sparse is not None and not sparse.is_empty
                    else []
                )
                matches = fuse(
                    dense_matches,
                    sparse_matches,
                    dense_weight=query_dense_weight(text, dense_weight or self._dense_weight),
                    method=self._fusion,
                )
                exhausted = len(dense_matches) < depth and len(sparse_matches) < depth
            else:
                matches = await self._vectors.match(
                    company_id,
                    dense=dense,
                    sparse=sparse,
                    filter=vector_filter,
                    limit=fetch,
                    mode=effective,
                )
                exhausted = len(matches) < fetch
            kept = _dedupe(matches, limit=limit, per_document=per_document, exclude=exclude)
            # Fetch more only when dedupe left us short and the store had more to give.
            if len(kept) >= limit or exhausted or fetch >= _MAX_FETCH:
                break
            fetch = min(fetch * 2, _MAX_FETCH)
        payloads = await self._vectors.payloads(company_id, [m.id for m in kept])
        # A chunk deleted between the two reads (a sync running) is simply left out.
        return [
            RetrievedPassage.from_hit(VectorHit(m.id, m.score, payloads[m.id]), terms)
            for m in kept
            if m.id in payloads
        ]


def _dedupe(
    matches: Sequence[VectorMatch],
    *,
    limit: int,
    per_document: int,
    exclude: Callable[[VectorMatch], bool] | None,
) -> list[VectorMatch]:
    """Best-first matches with at most ``per_document`` chunks of any one document."""
    taken: dict[str, int] = {}
    kept: list[VectorMatch] = []
    for hit in matches:
        if exclude is not None and exclude(hit):
            continue
        document = hit.document_id
        if taken.get(document, 0) >= per_document:
            continue
        taken[document] = taken.get(document, 0) + 1
        kept.append(hit)
        if len(kept) >= limit:
            break
    return kept
