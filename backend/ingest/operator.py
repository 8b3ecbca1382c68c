"""Operator-side ingestion: one-off imports and foreground backfills, with a progress bar.

Used by ``helpdesk ingest …`` and the batch scripts. It goes through the same connectors and
sync runs as scheduled syncs, so a file import is resumable, de-duplicated and visible in the
sync history like any other source.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from backend.db.models import SyncRun
from backend.ingest.file_imports import FILE_PLATFORMS
from backend.ingest.indexer import IndexCounts
from backend.stack import Stack
from backend.tenancy.company_id import validate_company_id

OPERATOR = "cli"


class _ChunkRateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        chunks = task.fields.get("chunks", 0)
        elapsed = task.elapsed or 0.0
        rate = chunks / elapsed if elapsed > 0 else 0.0
        return Text(f"{chunks} chunks · {rate:.1f} chunks/s", style="cyan")


@dataclass
class IngestSummary:
    run: SyncRun
    seconds: float
    chunks: int

    def lines(self) -> list[str]:
        run = self.run
        rate = self.chunks / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"status:    {run.status}",
            f"fetched:   {run.fetched}",
            f"upserted:  {run.upserted}",
            f"unchanged: {run.unchanged}",
            f"deleted:   {run.deleted}",
            f"failed:    {run.failed}",
            f"chunks:    {self.chunks} ({rate:.1f} chunks/s)",
            f"time:      {self.seconds:.1f} s",
        ]
        # Items left out on purpose, and attachment outcomes, by reason.
        out += [f"  {key}: {value}" for key, value in sorted((run.counts or {}).items())]
        out += [f"  error: {json.dumps(e, ensure_ascii=False)[:300]}" for e in run.errors[:10]]
        return out


def count_records(path: Path) -> int | None:
    """How many records a JSONL/CSV/JSON export holds (for the ETA); None if unknown."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with path.open("rb") as handle:
                return sum(1 for line in handle if line.strip())
        if suffix in {".csv", ".tsv"}:
            with path.open("rb") as handle:
                return max(0, sum(1 for _ in handle) - 1)
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8-sig"))
            return len(data) if isinstance(data, list) else None
    except (OSError, ValueError):
        return None
    return None


async def ensure_connector(
    state: Stack,
    company_id: str,
    *,
    platform: str,
    name: str,
    settings: dict[str, Any],
    credentials: dict[str, Any] | None = None,
) -> uuid.UUID:
    """The connector named ``name`` with these settings (created, or updated in place).

    The operator's path: file imports are allowed (below the import root only, checked by
    the connector service here and again at every sync)."""
    if platform in FILE_PLATFORMS:
        # Stored as its checked real path, so an unchanged import compares equal.
        settings = state.connectors.files.resolve_settings(platform, settings)
    async with state.for_tenant(validate_company_id(company_id)) as scope:
        for connector in await state.connectors.list(scope):
            if connector.name == name:
                if connector.platform != platform:
                    raise ValueError(f"connector {name!r} exists for platform {connector.platform}")
                if connector.settings != settings:
                    await state.connectors.update(
                        scope, connector.id, actor=OPERATOR, settings=settings, by_operator=True
                    )
                return connector.id
        created = await state.connectors.create(
            scope,
            platform=platform,
            name=name,
            settings=settings,
            credentials=credentials or {},
            schedule_minutes=None,
            actor=OPERATOR,
            allow_file_platforms=True,
        )
        return created.id


async def run_sync_with_progress(
    state: Stack,
    company_id: str,
    connector_id: uuid.UUID,
    *,
    total: int | None = None,
    console: Console | None = None,
    trigger: str = "cli",
) -> IngestSummary:
    """Run one sync in this process, showing documents, chunks/s and an ETA."""
    console = console or Console(stderr=True)
    run = await state.sync.request_sync(company_id, connector_id, trigger=trigger)
    started = time.perf_counter()
    chunks = 0
    columns: list[ProgressColumn] = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _ChunkRateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("documents", total=total, chunks=0)

        def on_page(counts: IndexCounts) -> None:
            nonlocal chunks
            chunks += counts.chunks
            progress.update(task, advance=counts.fetched + counts.deleted, chunks=chunks)

        finished = await state.sync.run(validate_company_id(company_id), run.id, progress=on_page)
        if total is None:
            progress.update(task, total=progress.tasks[0].completed)
    # Review drafts are queued jobs; in-process ones must finish before the command exits.
    await state.jobs.finish_in_process()
    if chunks:
        # A foreground import is the moment to build the embedded engine's search index.
        await state.vectors.optimize(company_id)
    return IngestSummary(finished, time.perf_counter() - started, chunks)
