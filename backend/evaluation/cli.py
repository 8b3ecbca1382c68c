"""``helpdesk eval``: build, run, compare and tune a company's evaluation set."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

eval_app = typer.Typer(
    help="Per-company evaluation sets: build from solved tickets and feedback, run, compare.",
    no_args_is_help=True,
)
_console = Console()
CompanyOption = Annotated[str, typer.Option("--company", "-c", help="Company id.")]
SetOption = Annotated[str, typer.Option("--set", help="Name of the evaluation set.")]


def _print_metrics(title: str, metrics: dict[str, float]) -> None:
    _console.print(title)
    for name, value in metrics.items():
        _console.print(f"  {name:<20} {value:g}")


@eval_app.command("build")
def build_command(
    company_id: CompanyOption,
    name: SetOption = "default",
    max_cases: Annotated[int, typer.Option(help="Most cases to keep (newest first).")] = 500,
) -> None:
    """Build (or rebuild) the set from the company's solved tickets and agents' feedback."""
    from backend.cli import _run
    from backend.evaluation import operator

    eval_set = _run(lambda state: operator.build(state, company_id, name=name, max_cases=max_cases))
    _console.print(f"set {eval_set.name!r}: {len(eval_set.cases)} cases {eval_set.counts()}")


@eval_app.command("run")
def run_command(
    company_id: CompanyOption,
    name: SetOption = "default",
    dense_weight: Annotated[
        float | None, typer.Option(help="Fusion weight to try (default: the company's).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="A note stored with the run.")] = None,
) -> None:
    """Run the set through the assistant as configured now (route, model, retrieval)."""
    from backend.cli import _run
    from backend.evaluation import operator

    result = _run(
        lambda state: operator.run(
            state, company_id, name=name, dense_weight=dense_weight, label=label
        )
    )
    _print_metrics(f"run {result.id} ({result.settings})", result.metrics)


@eval_app.command("compare")
def compare_command(
    company_id: CompanyOption,
    baseline: Annotated[str | None, typer.Option(help="Run id (default: the one before).")] = None,
    candidate: Annotated[str | None, typer.Option(help="Run id (default: the latest).")] = None,
    tolerance: Annotated[float, typer.Option(help="Drop allowed per metric.")] = 0.02,
) -> None:
    """Compare two runs; exits 1 when the candidate is worse beyond the tolerance."""
    from backend.cli import _run
    from backend.evaluation import operator

    comparison = _run(
        lambda state: operator.compare(
            state, company_id, baseline=baseline, candidate=candidate, tolerance=tolerance
        )
    )
    _print_metrics(f"{comparison.candidate} vs {comparison.baseline}", comparison.deltas)
    if comparison.worse:
        _console.print(f"[red]worse[/red]: {', '.join(comparison.regressions)}")
        raise typer.Exit(code=1)
    _console.print("[green]not worse[/green]")


@eval_app.command("tune")
def tune_command(
    company_id: CompanyOption,
    name: SetOption = "default",
    weights: Annotated[str, typer.Option(help="Dense weights to try, comma-separated.")] = (
        "1,2,3.5,5.5,8"
    ),
) -> None:
    """Try fusion weights on the set; the best is saved in the company's settings with the
    id of the run that chose it."""
    from backend.cli import _run
    from backend.evaluation import operator

    try:
        values = [float(w) for w in weights.split(",") if w.strip()]
    except ValueError as exc:
        raise typer.BadParameter("weights must be numbers, e.g. 1,2,4") from exc
    chosen, chosen_run = _run(
        lambda state: operator.tune(state, company_id, name=name, weights=values)
    )
    _print_metrics(f"dense_weight {chosen:g} chosen by run {chosen_run.id}", chosen_run.metrics)
