"""Per-company evaluation sets: built from the company's own solved tickets and feedback,
run through the assistant, stored under the company's prefix, compared run to run."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from backend.blobs import LocalBlobStore
from backend.db.repositories import interactions as interaction_repo
from backend.db.session import Database
from backend.errors import NotFound
from backend.evaluation import EvalStore, build_set, compare_runs, run_set
from backend.evaluation.runner import best_weight
from backend.retrieval import HybridRetriever
from tests.assistant.test_assistant import assistant_for
from tests.knowledge_corpus import INTERNAL_MARKER, Corpus


async def _confirmed_answer(database: Database, company_id: str, question: str) -> uuid.UUID:
    """An answer an agent up-voted, written the way the recorder and the feedback API do."""
    interaction_id = uuid.uuid4()
    async with database.tenant_session(company_id) as session:
        await interaction_repo.insert_interactions(
            session,
            [
                {
                    "id": interaction_id,
                    "company_id": company_id,
                    "task": "answer",
                    "question": question,
                    "answer": "Resend the reset link; it is valid for 24 hours. [1]",
                    "citations": [],
                    "provider": "extractive",
                    "model": "extractive-v2",
                }
            ],
        )
        await interaction_repo.insert_feedback(
            session,
            company_id=company_id,
            interaction_id=interaction_id,
            rating="up",
            reason=None,
            comment=None,
            inserted=False,
        )
    return interaction_id


async def test_a_set_is_built_from_solved_tickets_and_feedback_of_one_company(
    database: Database, corpus: Corpus
) -> None:
    upvoted = await _confirmed_answer(database, corpus.company_a, "Reset link expired?")
    eval_set = await build_set(database, corpus.store, corpus.company_a)
    by_id = {case.id: case for case in eval_set.cases}

    solved = by_id["ticket:freshdesk:ticket:5001"]
    # First customer message → the agent's final public reply; the private note stays out.
    assert solved.question.startswith("I reset my password yesterday")
    assert "clear your browser cache" in solved.reference
    assert INTERNAL_MARKER not in solved.reference
    assert solved.exclude_document_id == corpus.docs_a["login_solved"]
    assert "ticket:freshdesk:ticket:5003" in by_id  # closed counts as solved
    assert not any("ticket:5002" in case_id for case_id in by_id)  # still open
    assert by_id[f"interaction:{upvoted}"].origin == "upvoted_answer"

    # Company B's set holds none of A's tickets or feedback.
    other = await build_set(database, corpus.store, corpus.company_b)
    assert not {case.id for case in other.cases} & set(by_id)
    assert all(case.exclude_document_id not in corpus.docs_a.values() for case in other.cases)


async def test_runs_are_scored_stored_per_company_and_compared(
    database: Database, corpus: Corpus, retriever: HybridRetriever, tmp_path: Path
) -> None:
    eval_set = await build_set(database, corpus.store, corpus.company_a)
    blobs = LocalBlobStore(tmp_path)
    mine, theirs = EvalStore(blobs, corpus.company_a), EvalStore(blobs, corpus.company_b)
    await mine.save_set(eval_set)

    result = await run_set(assistant_for(retriever), eval_set)
    assert result.metrics["cases"] == len(eval_set.cases)
    assert 0 < result.metrics["answer_f1"] <= 1
    assert 0 <= result.metrics["citation_support"] <= 1
    assert result.settings["dense_weight"] == retriever.dense_weight
    await mine.save_run(result)

    # Another company can neither read this company's set nor see its runs.
    with pytest.raises(NotFound):
        await theirs.load_set()
    assert await theirs.run_ids() == []
    assert await mine.run_ids() == [result.id]
    assert (await mine.load_run(result.id)).metrics == result.metrics

    worse = result.model_copy(
        update={
            "id": "later",
            "metrics": {**result.metrics, "answer_f1": result.metrics["answer_f1"] - 0.1},
        }
    )
    assert compare_runs(result, worse).regressions == ["answer_f1"]
    assert not compare_runs(result, result).worse
    slightly = worse.model_copy(
        update={"metrics": {**result.metrics, "answer_f1": result.metrics["answer_f1"] - 0.01}}
    )
    assert not compare_runs(result, slightly, tolerance=0.02).worse


async def test_a_cases_own_ticket_never_grounds_its_answer(
    database: Database, corpus: Corpus, retriever: HybridRetriever
) -> None:
    eval_set = await build_set(database, corpus.store, corpus.company_a)
    case = next(c for c in eval_set.cases if c.id == "ticket:freshdesk:ticket:5001")
    prepared = await assistant_for(retriever).prepare_answer(
        corpus.company_a, case.question, exclude_document_ids=[case.exclude_document_id or ""]
    )
    assert prepared.passages
    assert corpus.docs_a["login_solved"] not in {p.document_id for p in prepared.passages}


def test_the_best_weight_retrieves_best_then_answers_best() -> None:
    from backend.evaluation.runner import EvalRun

    def run(hit: float, f1: float) -> EvalRun:
        return EvalRun(
            id=f"{hit}-{f1}",
            company_id="acme",
            set_name="default",
            started_at="2026-12-05T00:00:00Z",  # type: ignore[arg-type]
            seconds=1.0,
            metrics={"retrieval_hit_rate": hit, "answer_f1": f1, "citation_support": 1.0},
            cases=[],
        )

    assert best_weight({1.0: run(0.8, 0.5), 2.0: run(0.9, 0.4), 4.0: run(0.9, 0.45)}) == 4.0
    assert best_weight({1.0: run(0.9, 0.5), 3.0: run(0.9, 0.5)}) == 1.0


async def test_a_tuned_weight_is_kept_in_that_companys_settings_only(
    database: Database, corpus: Corpus
) -> None:
    from backend.assistant.settings import company_settings_from_database, resolve_settings
    from backend.db.repositories import companies as company_repo

    async with database.tenant_session(corpus.company_a) as session:
        await company_repo.merge_company_settings(
            session,
            corpus.company_a,
            "retrieval",
            {"dense_weight": 3.5, "tuned_by_run": "20261205T030000Z-abc123"},
        )
    # Writing through another company's session changes nothing (row-level security).
    async with database.tenant_session(corpus.company_b) as session:
        await company_repo.merge_company_settings(
            session, corpus.company_a, "retrieval", {"dense_weight": 99.0}
        )
    loader = company_settings_from_database(database)
    tuned = await resolve_settings(loader, corpus.company_a)
    assert tuned.retrieval.dense_weight == 3.5
    assert tuned.retrieval.tuned_by_run == "20261205T030000Z-abc123"
    assert (await resolve_settings(loader, corpus.company_b)).retrieval.dense_weight is None
