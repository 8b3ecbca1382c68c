"""Running an evaluation set through the assistant, and comparing two runs."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from backend.assistant import Assistant
from backend.evaluation.scoring import citation_support, token_f1, tokens
from backend.evaluation.sets import EvalSet

_MARKER_RE = re.compile(r"\s*\[\d{1,3}\]")
METRICS = ("retrieval_hit_rate", "answer_f1", "citation_support")


class CaseResult(BaseModel):
    case_id: str
    retrieval_hit: bool | None
    answer_f1: float
    citation_support: float


class EvalRun(BaseModel):
    """One run of a set: what ran (route, model, retrieval settings) and how it scored."""

    id: str
    company_id: str
    set_name: str
    started_at: datetime
    seconds: float
    settings: dict[str, object] = Field(default_factory=dict)
    metrics: dict[str, float]
    cases: list[CaseResult]


async def run_set(
    assistant: Assistant,
    eval_set: EvalSet,
    *,
    dense_weight: float | None = None,
    label: str | None = None,
) -> EvalRun:
    """Ask every case's question as ``/v1/answer`` would and score the answers.

    Retrieval hit: one of the case's relevant documents is among the passages the answer
    was grounded in (cases without known relevant documents are not counted). Answer F1:
    token F1 of the answer (citation markers removed) against the reference. Citation
    support: see :func:`~backend.evaluation.scoring.citation_support`.
    """
    started = datetime.now(UTC)
    clock = time.perf_counter()
    results: list[CaseResult] = []
    models: set[str] = set()
    for case in eval_set.cases:
        prepared = await assistant.prepare_answer(
            eval_set.company_id,
            case.question,
            exclude_document_ids=(case.exclude_document_id,) if case.exclude_document_id else (),
            dense_weight=dense_weight,
        )
        result = await assistant.run(prepared)
        models.add(f"{result.provider}:{result.model}")
        passages = {i: p.text for i, p in enumerate(prepared.passages, start=1)}
        retrieved = {p.document_id for p in prepared.passages}
        results.append(
            CaseResult(
                case_id=case.id,
                retrieval_hit=bool(retrieved & set(case.relevant_document_ids))
                if case.relevant_document_ids
                else None,
                answer_f1=token_f1(tokens(_MARKER_RE.sub("", result.text)), tokens(case.reference)),
                citation_support=citation_support(result.text, passages),
            )
        )
    judged = [r for r in results if r.retrieval_hit is not None]
    count = len(results) or 1
    metrics = {
        "retrieval_hit_rate": round(
            sum(bool(r.retrieval_hit) for r in judged) / (len(judged) or 1), 4
        ),
        "answer_f1": round(sum(r.answer_f1 for r in results) / count, 4),
        "citation_support": round(sum(r.citation_support for r in results) / count, 4),
        "cases": float(len(results)),
        "retrieval_cases": float(len(judged)),
    }
    settings: dict[str, object] = {
        "models": sorted(models),
        "dense_weight": dense_weight
        if dense_weight is not None
        else assistant.retriever.dense_weight,
    }
    if label:
        settings["label"] = label
    return EvalRun(
        id=f"{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}",
        company_id=eval_set.company_id,
        set_name=eval_set.name,
        started_at=started,
        seconds=round(time.perf_counter() - clock, 2),
        settings=settings,
        metrics=metrics,
        cases=results,
    )


class Comparison(BaseModel):
    baseline: str
    candidate: str
    deltas: dict[str, float]
    regressions: list[str]
    tolerance: float

    @property
    def worse(self) -> bool:
        return bool(self.regressions)


def compare_runs(baseline: EvalRun, candidate: EvalRun, *, tolerance: float = 0.02) -> Comparison:
    """Metric by metric, candidate minus baseline; a drop beyond ``tolerance`` regresses."""
    deltas = {
        name: round(candidate.metrics.get(name, 0.0) - baseline.metrics.get(name, 0.0), 4)
        for name in METRICS
    }
    return Comparison(
        baseline=baseline.id,
        candidate=candidate.id,
        deltas=deltas,
        regressions=[name for name, delta in deltas.items() if delta < -tolerance],
        tolerance=tolerance,
    )


def best_weight(runs: Mapping[float, EvalRun]) -> float:
    """The dense weight whose run retrieved best (answer F1 breaks ties; then the smaller
    weight, i.e. the one closer to plain fusion)."""
    return max(
        runs,
        key=lambda w: (runs[w].metrics["retrieval_hit_rate"], runs[w].metrics["answer_f1"], -w),
    )
