"""The ``helpdesk eval`` operations on a running stack, tenant-scoped throughout."""

from __future__ import annotations

from collections.abc import Sequence

from backend.db.repositories import companies as company_repo
from backend.errors import BadRequest
from backend.evaluation.runner import Comparison, EvalRun, best_weight, compare_runs, run_set
from backend.evaluation.sets import EvalSet, build_set
from backend.evaluation.store import EvalStore
from backend.stack import Stack
from backend.tenancy.company_id import validate_company_id


async def build(state: Stack, company_id: str, *, name: str, max_cases: int) -> EvalSet:
    """Build the company's set from its solved tickets and feedback, and store it."""
    company_id = validate_company_id(company_id)
    eval_set = await build_set(
        state.database, state.vectors, company_id, name=name, max_cases=max_cases
    )
    if not eval_set.cases:
        raise BadRequest(
            "no solved ticket with an agent reply and no confirmed feedback to build from",
            code="empty_eval_set",
        )
    await EvalStore(state.blobs, company_id).save_set(eval_set)
    return eval_set


async def run(
    state: Stack,
    company_id: str,
    *,
    name: str,
    dense_weight: float | None = None,
    label: str | None = None,
) -> EvalRun:
    """Run the stored set through the assistant as configured now, and store the run."""
    checked = validate_company_id(company_id)
    store = EvalStore(state.blobs, checked)
    eval_set = await store.load_set(name)
    assistant = state.assistant.assistant
    if dense_weight is None:
        dense_weight = (await assistant.settings_for(checked)).retrieval.dense_weight
    result = await run_set(assistant, eval_set, dense_weight=dense_weight, label=label)
    await store.save_run(result)
    return result


async def compare(
    state: Stack,
    company_id: str,
    *,
    baseline: str | None,
    candidate: str | None,
    tolerance: float,
) -> Comparison:
    """Compare two stored runs (default: the last two)."""
    store = EvalStore(state.blobs, validate_company_id(company_id))
    ids = await store.run_ids()
    candidate_id = candidate or (ids[-1] if ids else None)
    earlier = [i for i in ids if i != candidate_id]
    baseline_id = baseline or (earlier[-1] if earlier else None)
    if candidate_id is None or baseline_id is None:
        raise BadRequest("compare needs two stored runs", code="eval_runs_missing")
    return compare_runs(
        await store.load_run(baseline_id), await store.load_run(candidate_id), tolerance=tolerance
    )


async def tune(
    state: Stack, company_id: str, *, name: str, weights: Sequence[float]
) -> tuple[float, EvalRun]:
    """Run the set once per dense weight, keep the best in the company's settings together
    with the id of the run that chose it; return (weight, that run)."""
    company_id = validate_company_id(company_id)
    if not weights or any(w <= 0 for w in weights):
        raise BadRequest("weights must be positive numbers", code="invalid_dense_weight")
    runs = {
        w: await run(state, company_id, name=name, dense_weight=w, label=f"tune dense_weight={w:g}")
        for w in dict.fromkeys(weights)
    }
    chosen = best_weight(runs)
    async with state.for_tenant(company_id) as scope:
        await company_repo.merge_company_settings(
            scope.session,
            company_id,
            "retrieval",
            {"dense_weight": chosen, "tuned_by_run": runs[chosen].id},
        )
        # Answers cached under the old weight are stale now (in a shared cache too).
        await scope.knowledge_changed()
    return chosen, runs[chosen]
