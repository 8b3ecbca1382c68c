"""One contract, two engines: every test runs against qdrant-edge and qdrant-client, the
server engine in both its layouts (one shared collection partitioned by company, and a
collection per company), so every tenant-isolation test below also proves that companies
sharing one collection never see, count or delete each other's points."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient
from vector_points import DIM, JAN, SPARSE, axis, chunk

from backend.errors import BadRequest, InvalidCompanyId
from backend.vectors import (
    EdgeVectorStore,
    QdrantServerVectorStore,
    SearchMode,
    VectorFilter,
    VectorHit,
    VectorStore,
    point_id,
)

pytestmark = pytest.mark.filterwarnings(
    # qdrant-client's :memory: mode warns that payload indexes are no-ops there.
    "ignore:Payload indexes have no effect in the local Qdrant:UserWarning"
)


ENGINES = ["edge", "server-shared", "server-per_company"]


def make_store(engine: str, tmp_path: Path, *, dense_weight: float = 1.0) -> VectorStore:
    if engine == "edge":
        return EdgeVectorStore(tmp_path / "edge", dense_dimension=DIM, dense_weight=dense_weight)
    return QdrantServerVectorStore(
        AsyncQdrantClient(location=":memory:"),
        dense_dimension=DIM,
        dense_weight=dense_weight,
        layout="shared" if engine == "server-shared" else "per_company",
    )


@pytest.fixture(params=ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    engine = make_store(request.param, tmp_path)
    yield engine
    await engine.close()


def doc_ids(hits: list[VectorHit]) -> list[str]:
    return [hit.payload.document_id for hit in hits]


async def seed_acme(store: VectorStore) -> None:
    await store.ensure_company("acme")
    await store.upsert(
        "acme",
        [
            chunk("acme", "t1", "Password reset link expired", dense=axis(0)),
            chunk(
                "acme",
                "t2",
                "Refund for a double charge on the invoice",
                dense=axis(1),
                status="open",
                tags=["billing", "vip"],
                updated_at=JAN + timedelta(days=30),
            ),
            chunk(
                "acme",
                "a1",
                "How to configure single sign-on with Okta",
                dense=axis(2),
                kind="article",
                source="zendesk",
                status=None,
                tags=["sso"],
                updated_at=JAN + timedelta(days=60),
            ),
            chunk(
                "acme",
                "n1",
                "Private note: customer is on the legacy plan, refund approved",
                dense=axis(3),
                kind="conversation",
                internal=True,
                tags=["billing"],
            ),
            chunk(
                "acme",
                "k1",
                "비밀번호 재설정 링크가 만료되었습니다",
                dense=axis(4),
                language="ko",
            ),
            chunk(
                "acme",
                "r1",
                "パスワードを再設定できません",
                dense=axis(5),
                kind="review",
                source="google",
                language="ja",
                status=None,
            ),
        ],
    )


# --- each search mode -----------------------------------------------------------------


async def test_dense_mode_ranks_by_vector_similarity(store: VectorStore) -> None:
    await seed_acme(store)
    hits = await store.query("acme", dense=axis(1, wobble=0.3), limit=2, mode=SearchMode.DENSE)
    assert doc_ids(hits) == ["t2", "a1"]
    assert hits[0].score > hits[1].score
    assert hits[0].payload.text == "Refund for a double charge on the invoice"


async def test_optimize_keeps_every_point_and_ranking(store: VectorStore) -> None:
    await seed_acme(store)
    before = await store.query("acme", dense=axis(1, wobble=0.3), limit=3, mode=SearchMode.DENSE)
    count = await store.count("acme")
    await store.optimize("acme")
    await store.optimize("globex")  # a company with no data yet: nothing to do, no error
    assert await store.count("acme") == count
    after = await store.query("acme", dense=axis(1, wobble=0.3), limit=3, mode=SearchMode.DENSE)
    assert doc_ids(after) == doc_ids(before)
    assert await store.count("globex") == 0


async def test_sparse_mode_matches_terms(store: VectorStore) -> None:
    await seed_acme(store)
    hits = await store.query(
        "acme", sparse=SPARSE.encode_query("okta single"), limit=5, mode=SearchMode.SPARSE
    )
    assert doc_ids(hits) == ["a1"]


async def test_a_point_without_its_dense_vector_is_found_by_its_words_until_it_gets_one(
    store: VectorStore,
) -> None:
    """Keywords first (a webhook's fast path): the point is written with its sparse vector
    only, hybrid search finds it through the sparse list, dense search does not, and
    upserting it again with a dense vector completes it."""
    await seed_acme(store)
    seeded = await store.count("acme")
    words = chunk("acme", "t9", "Zephyrine thermostat pairing", dense=axis(7))
    await store.upsert("acme", [dataclasses.replace(words, dense=None)])
    query = SPARSE.encode_query("zephyrine pairing")
    hybrid = await store.query("acme", dense=axis(7), sparse=query, limit=3)
    assert "t9" in doc_ids(hybrid)
    assert "t9" not in doc_ids(await store.query("acme", dense=axis(7), mode=SearchMode.DENSE))
    assert await store.count("acme") == seeded + 1

    await store.upsert("acme", [words])
    assert doc_ids(await store.query("acme", dense=axis(7), limit=1, mode=SearchMode.DENSE)) == [
        "t9"
    ]
    assert await store.count("acme") == seeded + 1
    assert await store.query("globex", sparse=query, mode=SearchMode.SPARSE) == []


async def test_dense_vectors_are_read_back_for_own_points_only(store: VectorStore) -> None:
    """What an update reuses: the dense vector and text of this company's points; keyword-only
    points, missing ids and another company's points (one shared collection) are absent."""
    await seed_acme(store)
    await store.ensure_company("globex")
    theirs = chunk("globex", "t1", "Password reset link expired", dense=axis(0))
    await store.upsert("globex", [theirs])
    words = chunk("acme", "t9", "Zephyrine thermostat pairing", dense=axis(7))
    await store.upsert("acme", [dataclasses.replace(words, dense=None)])
    ours = point_id("acme", "freshdesk", "t1", 0)
    found = await store.dense_vectors("acme", [ours, words.id, theirs.id, uuid.uuid4()])
    assert list(found) == [ours]
    payload, vector = found[ours]
    assert payload.text == "Password reset link expired" and payload.company_id == "acme"
    assert math.isclose(sum(a * b for a, b in zip(vector, axis(0), strict=True)), 1.0, rel_tol=1e-5)
    assert await store.dense_vectors("globex", [ours]) == {}
    assert await store.dense_vectors("nobody", [ours]) == {}


async def test_hybrid_mode_fuses_dense_and_sparse(store: VectorStore) -> None:
    await seed_acme(store)
    # Dense points at the invoice ticket, the words at the password ticket: both come back,
    # and a document found by both lists beats documents found by one.
    hits = await store.query(
        "acme",
        dense=axis(0, wobble=0.2),
        sparse=SPARSE.encode_query("password reset"),
        limit=3,
        mode=SearchMode.HYBRID,
    )
    assert doc_ids(hits)[0] == "t1"
    assert len(hits) == 3
    # Dense alone ranks k1 > r1 > n1 > a1 > t2 > t1; the words find t2, then n1. Fused with
    # RRF (k=2): t2 = 1/6 + 1/2, n1 = 1/4 + 1/3, k1 = 1/2.
    graded = [0.1, 0.2, 0.3, 0.4, 1.0, 0.5, 0.0, 0.0]
    norm = math.sqrt(sum(x * x for x in graded))
    fused = await store.query(
        "acme",
        dense=[x / norm for x in graded],
        sparse=SPARSE.encode_query("invoice refund"),
        limit=3,
        mode=SearchMode.HYBRID,
    )
    assert doc_ids(fused) == ["t2", "n1", "k1"]


@pytest.mark.parametrize("mode", list(SearchMode))
async def test_match_ranks_as_query_does_and_payloads_complete_it(
    store: VectorStore, mode: SearchMode
) -> None:
    await seed_acme(store)
    # Graded similarities and two matching words: no two candidates tie in any mode, so
    # both calls must give the one true order.
    graded = [0.1, 0.2, 0.3, 0.4, 1.0, 0.5, 0.0, 0.0]
    norm = math.sqrt(sum(x * x for x in graded))
    search = {
        "dense": [x / norm for x in graded],
        "sparse": SPARSE.encode_query("invoice refund"),
        "limit": 4,
        "mode": mode,
    }
    hits = await store.query("acme", **search)  # type: ignore[arg-type]
    matches = await store.match("acme", **search)  # type: ignore[arg-type]
    assert hits
    assert [(m.id, m.document_id, m.external_id) for m in matches] == [
        (h.id, h.payload.document_id, h.payload.external_id) for h in hits
    ]
    assert [m.score for m in matches] == pytest.approx([h.score for h in hits])
    payloads = await store.payloads("acme", [m.id for m in reversed(matches)])
    assert payloads == {h.id: h.payload for h in hits}


async def test_payloads_leave_out_missing_points(store: VectorStore) -> None:
    await seed_acme(store)
    t1 = point_id("acme", "freshdesk", "t1", 0)
    found = await store.payloads("acme", [t1, uuid.uuid4()])
    assert list(found) == [t1]
    assert found[t1].text == "Password reset link expired"
    assert await store.payloads("acme", []) == {}
    assert await store.payloads("nobody", [t1]) == {}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("dense_weight", "winner"), [(10.0, "k1"), (0.1, "t2")])
async def test_dense_weight_tilts_the_fusion(
    engine: str, tmp_path: Path, dense_weight: float, winner: str
) -> None:
    store = make_store(engine, tmp_path, dense_weight=dense_weight)
    await seed_acme(store)
    # Each list holds one candidate (dense: the Korean ticket, sparse: the invoice ticket),
    # so the weights alone decide the order.
    fused = await store.query(
        "acme",
        dense=axis(4),
        sparse=SPARSE.encode_query("invoice refund"),
        limit=1,
        prefetch_limit=1,
    )
    assert doc_ids(fused) == [winner]
    await store.close()


async def test_hybrid_with_an_empty_sparse_query_falls_back_to_dense(
    store: VectorStore,
) -> None:
    await seed_acme(store)
    hits = await store.query("acme", dense=axis(2), sparse=SPARSE.encode_query("?!"), limit=1)
    assert doc_ids(hits) == ["a1"]
    assert await store.query("acme", sparse=SPARSE.encode_query("?!"), mode=SearchMode.SPARSE) == []


async def test_korean_and_japanese_text_is_retrievable_by_sparse(store: VectorStore) -> None:
    await seed_acme(store)
    korean = await store.query(
        "acme", sparse=SPARSE.encode_query("비밀번호 재설정"), limit=3, mode=SearchMode.SPARSE
    )
    assert doc_ids(korean)[0] == "k1"
    japanese = await store.query(
        "acme", sparse=SPARSE.encode_query("パスワード再設定"), limit=3, mode=SearchMode.SPARSE
    )
    assert doc_ids(japanese)[0] == "r1"


async def test_payload_round_trips(store: VectorStore) -> None:
    await seed_acme(store)
    [hit] = await store.query("acme", dense=axis(1), limit=1, mode=SearchMode.DENSE)
    payload = hit.payload
    assert hit.id == point_id("acme", "freshdesk", "t2", 0)
    assert payload.company_id == "acme"
    assert payload.kind == "ticket"
    assert payload.tags == ["billing", "vip"]
    assert payload.updated_at == JAN + timedelta(days=30)
    assert payload.created_at == JAN + timedelta(days=29)
    assert payload.url == "https://acme.example.com/t2"
    assert payload.external_id == "ext-t2"
    assert payload.internal is False


# --- filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vector_filter", "expected"),
    [
        (VectorFilter(kinds=("article",)), {"a1"}),
        (VectorFilter(kinds=("ticket", "review")), {"t1", "t2", "k1", "r1"}),
        (VectorFilter(sources=("zendesk", "google")), {"a1", "r1"}),
        (VectorFilter(languages=("ko",)), {"k1"}),
        (VectorFilter(statuses=("open",)), {"t2"}),
        (VectorFilter(internal=True), {"n1"}),
        (VectorFilter(internal=False), {"t1", "t2", "a1", "k1", "r1"}),
        (VectorFilter(tags=("billing",)), {"t2", "n1"}),
        (VectorFilter(document_ids=("t1", "a1")), {"t1", "a1"}),
        (VectorFilter(updated_from=JAN + timedelta(days=20)), {"t2", "a1"}),
        (VectorFilter(updated_to=JAN + timedelta(days=30)), {"t1", "t2", "n1", "k1", "r1"}),
        (
            VectorFilter(updated_from=JAN + timedelta(days=1), updated_to=JAN + timedelta(days=45)),
            {"t2"},
        ),
        (VectorFilter(kinds=("ticket",), languages=("en",), internal=False), {"t1", "t2"}),
    ],
)
async def test_filters_restrict_every_mode_and_count(
    store: VectorStore, vector_filter: VectorFilter, expected: set[str]
) -> None:
    await seed_acme(store)
    sparse = SPARSE.encode_query(
        "password reset refund invoice okta note 비밀번호 パスワード customer"
    )
    for mode in SearchMode:
        hits = await store.query(
            "acme",
            dense=axis(0),
            sparse=sparse,
            filter=vector_filter,
            limit=10,
            mode=mode,
        )
        found = set(doc_ids(hits))
        assert found <= expected, mode
        if mode is not SearchMode.SPARSE:  # dense always finds every candidate
            assert found == expected, mode
    assert await store.count("acme", vector_filter) == len(expected)


async def test_naive_datetimes_are_taken_as_utc(store: VectorStore) -> None:
    await seed_acme(store)
    feb_14 = datetime(2024, 2, 14, 0, 0)  # t2's update time, in UTC, without an offset
    naive = VectorFilter(updated_from=feb_14, updated_to=feb_14)
    assert await store.count("acme", naive) == 1


# --- writes ------------------------------------------------------------------------------


async def test_upsert_is_idempotent(store: VectorStore) -> None:
    first = chunk("acme", "t1", "Printer is offline", dense=axis(0))
    await store.upsert("acme", [first])
    await store.upsert("acme", [first])
    changed = chunk("acme", "t1", "Printer is back online", dense=axis(0), status="closed")
    await store.upsert("acme", [changed])
    assert await store.count("acme") == 1
    [hit] = await store.query("acme", dense=axis(0), limit=5, mode=SearchMode.DENSE)
    assert hit.payload.text == "Printer is back online"
    assert hit.payload.status == "closed"


async def test_delete_documents_removes_every_chunk_of_them(store: VectorStore) -> None:
    await store.upsert(
        "acme",
        [
            chunk("acme", "long", "part one", dense=axis(0), chunk_index=0),
            chunk("acme", "long", "part two", dense=axis(1), chunk_index=1),
            chunk("acme", "long", "part three", dense=axis(2), chunk_index=2),
            chunk("acme", "keep", "other document", dense=axis(3)),
        ],
    )
    assert await store.count("acme") == 4
    await store.delete_documents("acme", ["long", "never-indexed"])
    assert await store.count("acme") == 1
    hits = await store.query("acme", dense=axis(0), limit=10, mode=SearchMode.DENSE)
    assert doc_ids(hits) == ["keep"]


async def test_delete_points_by_id(store: VectorStore) -> None:
    await seed_acme(store)
    await store.delete_points("acme", [point_id("acme", "freshdesk", "t1", 0)])
    assert await store.count("acme") == 5
    assert await store.count("acme", VectorFilter(document_ids=("t1",))) == 0


async def test_drop_company_removes_everything_and_can_start_again(store: VectorStore) -> None:
    await seed_acme(store)
    await store.upsert("globex", [chunk("globex", "g1", "globex ticket", dense=axis(0))])
    await store.drop_company("acme")
    assert await store.count("acme") == 0
    assert await store.query("acme", dense=axis(0), mode=SearchMode.DENSE) == []
    assert await store.count("globex") == 1
    await store.drop_company("acme")  # idempotent
    await store.upsert("acme", [chunk("acme", "t9", "fresh start", dense=axis(0))])
    assert await store.count("acme") == 1


async def test_unknown_company_reads_as_empty(store: VectorStore) -> None:
    assert await store.count("nobody") == 0
    assert await store.query("nobody", dense=axis(0), sparse=SPARSE.encode_query("x y")) == []
    await store.delete_documents("nobody", ["d"])
    await store.delete_points("nobody", [uuid.uuid4()])


# --- tenant isolation ----------------------------------------------------------------------


async def test_tenants_never_see_each_other(store: VectorStore) -> None:
    await seed_acme(store)
    # Globex indexes the very same documents, vectors and words.
    await store.upsert(
        "globex", [chunk("globex", "t1", "Password reset link expired", dense=axis(0))]
    )
    for mode in SearchMode:
        hits = await store.query(
            "globex",
            dense=axis(0),
            sparse=SPARSE.encode_query("password refund okta 비밀번호"),
            limit=10,
            mode=mode,
        )
        assert {hit.payload.company_id for hit in hits} == {"globex"}
        assert [hit.id for hit in hits] == [point_id("globex", "freshdesk", "t1", 0)]
    assert await store.count("globex") == 1
    assert await store.count("acme") == 6


async def test_a_tenant_cannot_read_another_tenants_points_by_id(store: VectorStore) -> None:
    await seed_acme(store)
    await store.upsert("globex", [chunk("globex", "g1", "Globex only", dense=axis(0))])
    acme_ids = [point_id("acme", "freshdesk", d, 0) for d in ("t1", "t2", "n1", "k1")]
    assert await store.payloads("globex", acme_ids) == {}
    for mode in SearchMode:
        matches = await store.match(
            "globex",
            dense=axis(0),
            sparse=SPARSE.encode_query("password refund globex"),
            limit=10,
            mode=mode,
        )
        assert {m.document_id for m in matches} <= {"g1"}


async def test_a_tenant_cannot_delete_another_tenants_points(store: VectorStore) -> None:
    await seed_acme(store)
    await store.ensure_company("globex")
    acme_ids = [point_id("acme", "freshdesk", d, 0) for d in ("t1", "t2", "n1", "k1")]
    await store.delete_points("globex", acme_ids)
    await store.delete_documents("globex", ["t1", "t2", "a1", "n1", "k1", "r1"])
    await store.drop_company("globex")
    assert await store.count("acme") == 6


async def test_points_of_another_company_are_refused(store: VectorStore) -> None:
    with pytest.raises(BadRequest) as refused:
        await store.upsert("globex", [chunk("acme", "t1", "sneaky", dense=axis(0))])
    assert refused.value.code == "tenant_mismatch"
    assert await store.count("globex") == 0
    assert await store.count("acme") == 0


@pytest.mark.parametrize("bad_id", ["", "Acme", "acme_corp", "-acme", "../acme", "a" * 64])
async def test_malformed_company_ids_are_rejected_everywhere(
    store: VectorStore, bad_id: str
) -> None:
    calls = [
        store.ensure_company(bad_id),
        store.upsert(bad_id, []),
        store.delete_documents(bad_id, ["d"]),
        store.delete_points(bad_id, [uuid.uuid4()]),
        store.query(bad_id, dense=axis(0), mode=SearchMode.DENSE),
        store.match(bad_id, dense=axis(0), mode=SearchMode.DENSE),
        store.payloads(bad_id, [uuid.uuid4()]),
        store.count(bad_id),
        store.drop_company(bad_id),
    ]
    for call in calls:
        with pytest.raises(InvalidCompanyId):
            await call


# --- input validation --------------------------------------------------------------------


async def test_wrong_dimensions_and_missing_vectors_are_bad_requests(store: VectorStore) -> None:
    with pytest.raises(BadRequest) as wrong_size:
        await store.upsert("acme", [chunk("acme", "t1", "x", dense=[1.0, 0.0])])
    assert wrong_size.value.code == "vector_dimension_mismatch"
    with pytest.raises(BadRequest):
        await store.query("acme", dense=[1.0], mode=SearchMode.DENSE)
    with pytest.raises(BadRequest):
        await store.query("acme", sparse=SPARSE.encode_query("x"), mode=SearchMode.HYBRID)
    with pytest.raises(BadRequest):
        await store.query("acme", dense=axis(0), mode=SearchMode.SPARSE)
    with pytest.raises(BadRequest):
        await store.query("acme", dense=axis(0), limit=0, mode=SearchMode.DENSE)


async def test_healthcheck(store: VectorStore) -> None:
    assert await store.healthcheck() is True


async def test_concurrent_writes_and_reads_are_safe(store: VectorStore) -> None:
    writes = [
        store.upsert(company, [chunk(company, f"d{i}", f"text {i}", dense=axis(i))])
        for i in range(8)
        for company in ("acme", "globex")
    ]
    await asyncio.gather(*writes)
    reads = await asyncio.gather(
        *(store.query("acme", dense=axis(i), limit=1, mode=SearchMode.DENSE) for i in range(8))
    )
    assert [doc_ids(hits) for hits in reads] == [[f"d{i}"] for i in range(8)]
    assert await store.count("acme") == 8
    assert await store.count("globex") == 8
