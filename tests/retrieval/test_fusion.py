"""Score-aware fusion: a weak lexical list barely moves a confident dense ranking; an exact
string (a code, a model number) that the lexical list matches comes first."""

from __future__ import annotations

import uuid

from backend.retrieval.fusion import (
    DEFAULT_FUSION_DENSE_WEIGHT,
    EXACT_QUERY_DENSE_WEIGHT,
    fuse,
    query_dense_weight,
)
from backend.vectors import VectorMatch

IDS = {name: uuid.uuid4() for name in "abcdx"}


def _list(*scored: tuple[str, float]) -> list[VectorMatch]:
    return [VectorMatch(IDS[name], score, name, None) for name, score in scored]


def _names(matches: list[VectorMatch]) -> list[str]:
    return [m.document_id for m in matches]


DENSE = _list(("a", 0.82), ("b", 0.61), ("c", 0.58), ("d", 0.40))


def test_a_weak_lexical_list_does_not_overturn_a_confident_dense_ranking() -> None:
    # The lexical list prefers b and c by a little; a is far ahead on meaning.
    sparse = _list(("b", 3.1), ("c", 3.0), ("a", 2.8), ("d", 0.5))
    fused = fuse(DENSE, sparse, dense_weight=DEFAULT_FUSION_DENSE_WEIGHT)
    assert _names(fused)[0] == "a"
    assert len(fused) == 4 and len({m.id for m in fused}) == 4


def test_an_exact_code_the_dense_list_blurs_comes_first() -> None:
    query = "hub shows error E-1043 after update"
    weight = query_dense_weight(query, DEFAULT_FUSION_DENSE_WEIGHT)
    assert weight == EXACT_QUERY_DENSE_WEIGHT
    dense = _list(("a", 0.71), ("x", 0.66), ("b", 0.60), ("c", 0.55))
    sparse = _list(("x", 9.0), ("a", 2.0), ("b", 1.5))  # only x contains "E-1043"
    assert _names(fuse(dense, sparse, dense_weight=weight))[0] == "x"


def test_exact_strings_are_recognised() -> None:
    for query in ('"factory reset" steps', "LH-2 offline", "SSO login", "error 0x80070005"):
        assert query_dense_weight(query, 6.0) == EXACT_QUERY_DENSE_WEIGHT, query
    for query in ("Why does my hub go offline?", "firmware 3.4 release", "I can't log in"):
        assert query_dense_weight(query, 6.0) == 6.0, query


def test_rrf_and_one_sided_lists() -> None:
    sparse = _list(("x", 4.0))
    assert _names(fuse(DENSE, [], dense_weight=2.0)) == ["a", "b", "c", "d"]
    assert _names(fuse([], sparse, dense_weight=2.0)) == ["x"]
    rrf = fuse(DENSE, _list(("d", 5.0), ("a", 1.0)), dense_weight=1.0, method="rrf")
    assert _names(rrf)[:2] == ["a", "d"]
