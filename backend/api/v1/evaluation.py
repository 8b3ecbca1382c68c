"""Your evaluation runs: how the assistant scored on your evaluation set, run by run.

Runs are made with `helpdesk eval run` and kept in the object store under your company's
prefix, so another company's runs are never listed or readable here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from backend.api.dependencies import KeyTenant, StateDep, require_api_key
from backend.api.schemas import ERROR_RESPONSES, NOT_FOUND, ErrorBody
from backend.evaluation import operator
from backend.evaluation.runner import EvalRun
from backend.evaluation.store import EvalStore

router = APIRouter(
    prefix="/v1/evaluation",
    tags=["insight"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(require_api_key)],
)

RUN_ID_MAX = 80
RUN_ID_PATTERN = r"^[A-Za-z0-9._-]+$"
RunId = Annotated[
    str, Path(pattern=RUN_ID_PATTERN, max_length=RUN_ID_MAX, description="An evaluation run's id.")
]


class EvaluationRunOut(BaseModel):
    id: str
    set_name: str = Field(description="The evaluation set the run scored.")
    created_at: datetime = Field(description="When the run started (UTC).")
    seconds: float = Field(description="How long the run took.")
    settings: dict[str, object] = Field(
        description="What ran: route, model and retrieval settings, and a label if given."
    )
    metrics: dict[str, float] = Field(
        description="retrieval_hit_rate, answer_f1 and citation_support, each 0-1."
    )
    cases: int = Field(description="Cases scored.")

    @classmethod
    def of(cls, run: EvalRun) -> EvaluationRunOut:
        return cls(
            id=run.id,
            set_name=run.set_name,
            created_at=run.started_at,
            seconds=run.seconds,
            settings=run.settings,
            metrics=run.metrics,
            cases=len(run.cases),
        )


class EvaluationRunList(BaseModel):
    runs: list[EvaluationRunOut] = Field(description="Newest first.")


class CaseResultOut(BaseModel):
    case_id: str
    retrieval_hit: bool | None = Field(description="`null` when the case names no source.")
    answer_f1: float
    citation_support: float


class EvaluationRunDetail(EvaluationRunOut):
    case_results: list[CaseResultOut]


class EvaluationComparisonOut(BaseModel):
    base: str = Field(description="The earlier (baseline) run's id.")
    candidate: str = Field(description="The run compared with it.")
    deltas: dict[str, float] = Field(description="Candidate minus base, metric by metric.")
    regressions: list[str] = Field(description="Metrics that dropped by more than `tolerance`.")
    tolerance: float


@router.get("/runs", response_model=EvaluationRunList)
async def list_evaluation_runs(
    tenant: KeyTenant,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Most runs to return.")] = 20,
) -> EvaluationRunList:
    """Your evaluation runs, newest first, each with its scores. Needs an `admin`-scoped key
    or a console owner/admin."""
    store = EvalStore(state.blobs, tenant.company_id)
    newest = list(reversed(await store.run_ids()))[:limit]
    return EvaluationRunList(runs=[EvaluationRunOut.of(await store.load_run(i)) for i in newest])


@router.get("/runs/{run_id}", response_model=EvaluationRunDetail, responses=NOT_FOUND)
async def get_evaluation_run(
    run_id: RunId, tenant: KeyTenant, state: StateDep
) -> EvaluationRunDetail:
    """One evaluation run with the score of every case."""
    run = await EvalStore(state.blobs, tenant.company_id).load_run(run_id)
    return EvaluationRunDetail(
        **EvaluationRunOut.of(run).model_dump(),
        case_results=[CaseResultOut(**case.model_dump()) for case in run.cases],
    )


@router.get(
    "/compare",
    response_model=EvaluationComparisonOut,
    responses={**NOT_FOUND, 400: {"model": ErrorBody}},
)
async def compare_evaluation_runs(
    tenant: KeyTenant,
    state: StateDep,
    base: Annotated[
        str | None,
        Query(
            pattern=RUN_ID_PATTERN,
            max_length=RUN_ID_MAX,
            description="Baseline run id; the one before `candidate` when omitted.",
        ),
    ] = None,
    candidate: Annotated[
        str | None,
        Query(
            pattern=RUN_ID_PATTERN,
            max_length=RUN_ID_MAX,
            description="Run id; the newest when omitted.",
        ),
    ] = None,
    tolerance: Annotated[
        float, Query(ge=0, le=1, description="A drop beyond this is a regression.")
    ] = 0.02,
) -> EvaluationComparisonOut:
    """Compare two of your runs metric by metric, as `helpdesk eval compare` does (default:
    the newest two). 400 `eval_runs_missing` with fewer than two runs."""
    comparison = await operator.compare(
        state, tenant.company_id, baseline=base, candidate=candidate, tolerance=tolerance
    )
    return EvaluationComparisonOut(
        base=comparison.baseline,
        candidate=comparison.candidate,
        deltas=comparison.deltas,
        regressions=comparison.regressions,
        tolerance=comparison.tolerance,
    )
