"""Hybrid retrieval over a real corpus: real indexer, real encoders, both vector engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.errors import BadRequest, InvalidCompanyId
from backend.retrieval import (
    SOLVED_STATUSES,
    HybridRetriever,
    SearchFilters,
    is_mostly_non_latin,
    make_snippet,
)
from backend.vectors import SearchMode
from tests.knowledge_corpus import B_RESET_MARKER, INTERNAL_MARKER, Corpus

pytestmark = [
    pytest.mark.slow,
    # qdrant-client's :memory: mode warns that payload indexes are no-ops there.
    pytest.mark.filterwarnings(
        "ignore:Payload indexes have no effect in the local Qdrant:UserWarning"
    ),
]


async def test_each_company_retrieves_only_its_own_passages(
    corpus: Corpus, retriever: HybridRetriever
) -> None:
    question = "How do I reset my password?"
    from_a = await retriever.search(corpus.company_a, question, limit=8)
    from_b = await retriever.search(corpus.company_b, question, limit=8)

    assert from_a and from_b
    assert {p.document_id for p in from_a} <= set(corpus.docs_a.values())
    assert {p.document_id for p in from_b} <= set(corpus.docs_b.values())
    assert not any(B_RESET_MARKER in p.text for p in from_a)
    assert any(B_RESET_MARKER in p.text for p in from_b)
    # Both companies have an "article:101"; their document ids never collide.
    assert corpus.docs_a["reset"] != corpus.docs_b["reset"]
    assert from_a[0].document_id == corpus.docs_a["reset"]
    assert from_b[0].document_id == corpus.docs_b["reset"]


async def test_passages_carry_citation_handles(corpus: Corpus, retriever: HybridRetriever) -> None:
    [top] = await retriever.search(corpus.company_a, "reset link expires", limit=1)
    assert top.document_id == corpus.docs_a["reset"]
    assert top.title == "How to reset your password"
    assert top.url == "https://help.example.com/article/101"
    assert (top.kind, top.source, top.status, top.language) == (
        "article",
        "freshdesk",
        "published",
        "en",
    )
    assert top.internal is False
    assert top.external_id == "article:101"
    assert top.score > 0
    assert "reset" in top.snippet.lower()
    assert top.snippet in " ".join(top.text.split())
    llm = top.to_llm_passage()
    assert llm.id == top.id and llm.url == top.url
    # The title header ingest prefixed to the chunk is not part of the quotable body.
    assert not llm.text.startswith(top.title)


async def test_results_are_deduplicated_per_document_and_fill_the_limit(
    corpus: Corpus, retriever: HybridRetriever
) -> None:
    query = "password manager two-step verification strong password"
    deduped = await retriever.search(corpus.company_a, query, limit=6)
    ids = [p.document_id for p in deduped]
    assert len(ids) == len(set(ids)) == 6
    # The long guide has several matching chunks; only its best one is kept by default.
    assert ids[0] == corpus.docs_a["security"]

    two_each = await retriever.search(corpus.company_a, query, limit=6, per_document=2)
    guide_chunks = [p for p in two_each if p.document_id == corpus.docs_a["security"]]
    assert len(guide_chunks) == 2
    assert len({p.id for p in guide_chunks}) == 2
    assert all(sum(1 for q in two_each if q.document_id == p.document_id) <= 2 for p in two_each)


async def test_filters_restrict_results(corpus: Corpus, retriever: HybridRetriever) -> None:
    company, query = corpus.company_a, "password reset login refund"

    articles = await retriever.search(
        company, query, filters=SearchFilters(kinds=("article",)), limit=20
    )
    assert articles and {p.kind for p in articles} == {"article"}

    zendesk = await retriever.search(
        company, query, filters=SearchFilters(sources=("zendesk",)), limit=20
    )
    assert [p.document_id for p in zendesk] == [corpus.docs_a["invoice_zendesk"]]

    korean = await retriever.search(
        company, query, filters=SearchFilters(languages=("ko",)), limit=20
    )
    assert korean and {p.language for p in korean} == {"ko"}

    solved = await retriever.search(
        company, query, filters=SearchFilters(statuses=SOLVED_STATUSES), limit=20
    )
    assert {corpus.name_of(company, p.document_id) for p in solved} == {
        "login_solved",
        "login_closed",
        "login_ko",
        "invoice_zendesk",
    }

    billing = await retriever.search(
        company, query, filters=SearchFilters(tags=("billing",)), limit=20
    )
    assert {corpus.name_of(company, p.document_id) for p in billing} == {
        "refunds",
        "refunds_ko",
        "invoice_zendesk",
    }

    spring = SearchFilters(
        updated_from=datetime(2024, 3, 1, tzinfo=UTC),
        updated_to=datetime(2024, 3, 31, 23, 59, tzinfo=UTC),
    )
    in_march = await retriever.search(company, query, filters=spring, limit=20)
    assert {corpus.name_of(company, p.document_id) for p in in_march} == {
        "reset",
        "reset_ko",
        "reset_ja",
        "invoice_zendesk",
    }

    requester = await retriever.search(
        company, query, filters=SearchFilters(requester_ids=("jane@example.com",)), limit=20
    )
    assert {p.document_id for p in requester} == {corpus.docs_a["login_solved"]}

    with pytest.raises(ValueError, match="updated_from"):
        SearchFilters(
            updated_from=datetime(2024, 5, 1, tzinfo=UTC),
            updated_to=datetime(2024, 4, 1, tzinfo=UTC),
        )


async def test_internal_notes_are_marked_and_can_be_excluded(
    corpus: Corpus, retriever: HybridRetriever
) -> None:
    query = "legacy SSO plan force a password sync from the admin console"
    for_agent = await retriever.search(corpus.company_a, query, limit=5, per_document=3)
    notes = [p for p in for_agent if INTERNAL_MARKER in p.text]
    assert notes and all(p.internal for p in notes)
    assert all(p.kind == "ticket" for p in notes)

    for_customer = await retriever.search(
        corpus.company_a, query, limit=10, per_document=3, include_internal=False
    )
    assert for_customer
    assert not any(p.internal for p in for_customer)
    assert not any(INTERNAL_MARKER in p.text for p in for_customer)

    only_internal = await retriever.search(
        corpus.company_a, query, filters=SearchFilters(internal=True), limit=10
    )
    assert only_internal and all(p.internal for p in only_internal)


@pytest.mark.parametrize(
    ("query", "expected", "language"),
    [
        ("비밀번호를 재설정하려면 어떻게 하나요?", "reset_ko", "ko"),
        ("환불은 언제 처리되나요?", "refunds_ko", "ko"),
        ("パスワードを再設定する方法を教えてください", "reset_ja", "ja"),
    ],
)
async def test_korean_and_japanese_queries_find_their_articles(
    corpus: Corpus, retriever: HybridRetriever, query: str, expected: str, language: str
) -> None:
    assert retriever.effective_mode(query, "hybrid") is SearchMode.SPARSE
    results = await retriever.search(corpus.company_a, query, limit=3)
    assert results[0].document_id == corpus.docs_a[expected]
    assert results[0].language == language
    # The snippet is cut around the query's terms, which CJK bigrams locate.
    assert any(term in results[0].snippet for term in ("비밀번호", "환불", "パスワード"))


async def test_each_mode_runs(corpus: Corpus, retriever: HybridRetriever) -> None:
    for mode in ("dense", "sparse", "hybrid"):
        results = await retriever.search(
            corpus.company_a, "refund to the original payment method", limit=3, mode=mode
        )
        assert results[0].document_id == corpus.docs_a["refunds"], mode
    assert retriever.effective_mode("reset my password", "hybrid") is SearchMode.HYBRID


async def test_similar_tickets_lists_solved_ones_first(
    corpus: Corpus, retriever: HybridRetriever
) -> None:
    text = "I can't log in, it says my password is wrong after I reset it"
    similar = await retriever.similar_tickets(corpus.company_a, text, limit=5)
    names = [corpus.name_of(corpus.company_a, p.document_id) for p in similar]
    assert len(names) == len(set(names)) == 5
    assert all(p.kind == "ticket" for p in similar)
    solved_flags = [p.status in SOLVED_STATUSES for p in similar]
    # Every solved ticket comes before every unsolved one, and there is an unsolved one.
    assert solved_flags == sorted(solved_flags, reverse=True)
    assert "login_open" in names and not solved_flags[-1]
    assert names[0] == "login_solved"

    without_self = await retriever.similar_tickets(
        corpus.company_a, text, limit=5, exclude_external_id="ticket:5001"
    )
    assert corpus.docs_a["login_solved"] not in {p.document_id for p in without_self}

    public_only = await retriever.similar_tickets(
        corpus.company_a, text, limit=5, include_internal=False
    )
    assert not any(p.internal for p in public_only)

    # Another company's tickets never show up, even for the same text.
    assert await retriever.similar_tickets(corpus.company_b, text, limit=5) == []


async def test_bad_queries_are_refused(corpus: Corpus, retriever: HybridRetriever) -> None:
    with pytest.raises(BadRequest) as empty:
        await retriever.search(corpus.company_a, "   ")
    assert empty.value.code == "empty_query"
    with pytest.raises(BadRequest) as too_many:
        await retriever.search(corpus.company_a, "password", limit=1000)
    assert too_many.value.code == "invalid_limit"
    with pytest.raises(InvalidCompanyId):
        await retriever.search("Not A Slug!", "password")


def test_script_detection() -> None:
    assert is_mostly_non_latin("비밀번호를 재설정하려면")
    assert is_mostly_non_latin("パスワード reset")
    assert is_mostly_non_latin("Как сбросить пароль")
    assert not is_mostly_non_latin("Réinitialiser le mot de passe")
    assert not is_mostly_non_latin("reset my password 비번")
    assert not is_mostly_non_latin("12345 ?!")


def test_snippet_is_cut_around_the_query_terms() -> None:
    filler = "Lorem ipsum dolor sit amet consectetur. " * 20
    text = filler + "The refund reaches your card within five business days. " + filler
    snippet = make_snippet(text, ["refund", "card"], max_chars=120)
    assert "refund reaches your card" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 122
    assert make_snippet("short text", ["x"]) == "short text"
    unmatched = make_snippet(text, ["absent"], max_chars=100)
    assert unmatched.startswith("Lorem") and unmatched.endswith("…")
