"""The audience conditions, as both vector engines evaluate them (qdrant-edge and a Qdrant
server through qdrant-client): what a scope excludes is never ranked, on either engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from backend.retrieval import AGENT_SCOPE, CUSTOMER_SCOPE, AccessScope, SearchFilters
from backend.vectors import (
    EdgeVectorStore,
    QdrantServerVectorStore,
    SearchMode,
    VectorFilter,
    VectorStore,
)
from backend.vectors.filters import EitherOf, MatchAnyOf, MatchFlag, conditions_for
from tests.vectors.vector_points import DIM, axis, chunk

pytestmark = pytest.mark.filterwarnings(
    "ignore:Payload indexes have no effect in the local Qdrant:UserWarning"
)


@pytest.fixture(params=["edge", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    engine: VectorStore
    if request.param == "edge":
        engine = EdgeVectorStore(tmp_path / "edge", dense_dimension=DIM)
    else:
        engine = QdrantServerVectorStore(
            AsyncQdrantClient(location=":memory:"), dense_dimension=DIM
        )
    await engine.ensure_company("acme")
    await engine.upsert(
        "acme",
        [
            chunk("acme", "t1", "lock is stuck", dense=axis(0)),
            chunk("acme", "t1", "note: override 4471", dense=axis(0, 0.1), chunk_index=1,
                  internal=True),
            chunk("acme", "t2", "battery drains", dense=axis(1)),
            chunk("acme", "t2", "note: recall 9932", dense=axis(1, 0.1), chunk_index=1,
                  internal=True),
            chunk("acme", "a1", "emergency unlock", dense=axis(2), kind="article"),
            chunk("acme", "r1", "great lock", dense=axis(3), kind="review"),
        ],
    )  # fmt: skip
    yield engine
    await engine.close()


async def _texts(store: VectorStore, vector_filter: VectorFilter | None) -> set[str]:
    hits = await store.query(
        "acme", dense=axis(0), filter=vector_filter, limit=20, mode=SearchMode.DENSE
    )
    return {hit.payload.text for hit in hits}


async def test_scopes_on_both_engines(store: VectorStore) -> None:
    everything = await _texts(store, SearchFilters().to_vector_filter(scope=AGENT_SCOPE))
    assert {"note: override 4471", "note: recall 9932"} <= everything

    # The chunks' external ids are "ext-<document>": a token for t2 sees t2's note only.
    for_t2 = await _texts(
        store, SearchFilters().to_vector_filter(scope=AccessScope(ticket_id="ext-t2"))
    )
    assert "note: recall 9932" in for_t2
    assert "note: override 4471" not in for_t2
    assert {"lock is stuck", "battery drains", "emergency unlock"} <= for_t2

    customer = await _texts(store, SearchFilters().to_vector_filter(scope=CUSTOMER_SCOPE))
    assert customer == {"emergency unlock"}
    assert SearchFilters(kinds=("review",)).to_vector_filter(scope=CUSTOMER_SCOPE) is None
    asked = SearchFilters(internal=True).to_vector_filter(scope=CUSTOMER_SCOPE)
    assert asked is not None and asked.internal is False
    assert await _texts(store, asked) == {"emergency unlock"}


def test_scope_conditions_lead_with_the_tenant() -> None:
    scoped = SearchFilters().to_vector_filter(scope=AccessScope(ticket_id="42"))
    conditions = conditions_for("acme", scoped)
    assert conditions[0] == MatchAnyOf("company_id", ("acme",))
    assert conditions[-1] == EitherOf(
        (MatchFlag("internal", False), MatchAnyOf("external_id", ("ticket:42", "42")))
    )
    customer = conditions_for("acme", SearchFilters().to_vector_filter(scope=CUSTOMER_SCOPE))
    assert MatchFlag("internal", False) in customer
    assert MatchAnyOf("kind", ("article",)) in customer
