"""Fusing the dense and the lexical ranking of one search, in Python.

The engine returns each list with its own scores (cosine similarity for dense, BM25-like
IDF-weighted overlap for sparse); fusion here sees both lists whole, so it can use the
scores and not only the ranks. Two methods:

- ``rrf``: reciprocal-rank fusion, ``w / (k + rank)`` summed over the lists (Qdrant's own
  hybrid fusion, for comparison and for callers that want it).
- ``convex`` (the default): each list's scores are min-max normalised over the candidates
  it returned, and combined as ``w·dense + (1 - w)·sparse`` with ``w = dense_weight /
  (dense_weight + 1)``. A lexical hit that the dense list ranks low still counts in
  proportion to how *much* better it matches than the other candidates, not merely by its
  position, so a weak lexical list (a paraphrased question that shares few words) barely
  moves a confident dense ranking, while an exact code or product name that dense misses
  comes up. Measured in ``bench/results/retrieval_quality-*`` (fusion comparison).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Literal, TypeAlias

from backend.vectors import VectorMatch

FusionMethod: TypeAlias = Literal["convex", "rrf"]
FUSION_METHODS: Final[tuple[FusionMethod, ...]] = ("convex", "rrf")
RRF_K: Final = 2
# The dense list's weight for ``convex`` fusion (its share is w / (w + 1)) and, for queries
# that ask for an exact string, the lower weight that lets the lexical list decide.
DEFAULT_FUSION_DENSE_WEIGHT: Final = 6.0
EXACT_QUERY_DENSE_WEIGHT: Final = 2.0
# Codes and model numbers (letters and digits in one token: "E-1043", "LH-2", "3.4" is not
# one), acronyms ("HUB", "SSO") and quoted phrases: what a customer copies from a screen.
_EXACT_RE = re.compile(
    r"\b(?=[\w-]*\d)(?=[\w-]*[^\W\d_])[\w-]{2,}\b|\b[A-Z]{2,}\b|\"[^\"]{2,}\"|“[^”]{2,}”"
)


def query_dense_weight(query: str, base: float) -> float:
    """The dense weight for this query: ``base``, or less when the query names an exact
    string (a code, a model number, an acronym, a quoted phrase), which the lexical list
    matches and the dense model may blur."""
    return min(base, EXACT_QUERY_DENSE_WEIGHT) if _EXACT_RE.search(query) else base


def _normalised(matches: Sequence[VectorMatch]) -> dict[object, float]:
    if not matches:
        return {}
    scores = [m.score for m in matches]
    high, low = max(scores), min(scores)
    span = high - low
    return {m.id: (m.score - low) / span if span > 0 else 1.0 for m in matches}


def fuse(
    dense: Sequence[VectorMatch],
    sparse: Sequence[VectorMatch],
    *,
    dense_weight: float,
    method: FusionMethod = "convex",
) -> list[VectorMatch]:
    """One ranking from both lists, best first; each point once, with its fused score."""
    by_id: dict[object, VectorMatch] = {}
    for match in (*dense, *sparse):
        by_id.setdefault(match.id, match)
    fused: dict[object, float] = {}
    if method == "rrf":
        for weight, ranking in ((dense_weight, dense), (1.0, sparse)):
            for rank, match in enumerate(ranking, start=1):
                fused[match.id] = fused.get(match.id, 0.0) + weight / (RRF_K + rank)
    else:
        share = dense_weight / (dense_weight + 1.0)
        dense_scores, sparse_scores = _normalised(dense), _normalised(sparse)
        for point in by_id:
            fused[point] = share * dense_scores.get(point, 0.0) + (1 - share) * sparse_scores.get(
                point, 0.0
            )
    ranked = sorted(fused, key=lambda point: -fused[point])
    return [
        VectorMatch(
            by_id[point].id, fused[point], by_id[point].document_id, by_id[point].external_id
        )
        for point in ranked
    ]
