"""Ingest throughput: the real sync pipeline against the raw embedding ceiling, in one run.

1. **Pipeline.** A Freshdesk replay server on 127.0.0.1 (``bench/freshdesk_replay.py``)
   serves the StackFAQ export (125 solution articles, 1,249 tickets, each with one agent
   reply derived from its gold article). A fresh company gets a Freshdesk connector and
   :class:`backend.ingest.sync.SyncService` runs it end to end: HTTP fetch with the adapter,
   normalize, chunk, dense + sparse encode, object store, Qdrant, Postgres, a checkpoint per
   page. The stack is the one ``open_stack`` wires (embedded Postgres by default, or
   ``--database-url``), with the replay's HTTP client and an unlimited local rate budget
   (this measures our pipeline, not Freshdesk's per-minute quota).
2. **Ceiling.** ``model.encode`` of exactly the chunk texts the pipeline embedded (recorded
   as they went to the encoder), grouped in the same calls, with the same model, batch size
   and torch threads. For reference, the same texts in a single call are timed too.

The ratio pipeline chunks/s ÷ ceiling chunks/s says how much of the machine the pipeline
leaves to the model (target ≥ 0.85). Results go to ``bench/results/ingest_throughput.{md,json}``.

**Short documents** (``--short-tickets N``): instead of the Freshdesk replay, N one-line
tickets (CLINC150 utterances, each its own ticket) are written to a JSONL export below the
import root and run through the ``file_export`` connector, the path ``helpdesk ingest file``
takes. Here per-document costs (Postgres rows, blobs, vector upserts, checkpoints) weigh
most, since each document is a single short chunk. Results go to
``bench/results/ingest_throughput_short.{md,json}``.

    .venv/bin/python bench/ingest_throughput.py            # embedded default
    .venv/bin/python bench/ingest_throughput.py --short-tickets 10003
    .venv/bin/python bench/ingest_throughput.py --database-url postgresql+asyncpg://...
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import secrets
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from backend.adapters.http import RateLimiter
from backend.config import Settings
from backend.db.models import Document
from backend.egress import Egress
from backend.embeddings.dense import SentenceTransformerEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.ingest.operator import ensure_connector
from backend.ingest.sync import IndexingParts, SyncService
from backend.stack import Stack, open_stack
from backend.tenancy import service as tenancy
from backend.tenancy.company_id import CompanyId

# Runs as `python bench/ingest_throughput.py` too, where only bench/ is on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.freshdesk_replay import (
    API_KEY,
    DATASET_DIR,
    DOMAIN,
    FreshdeskDataset,
    running_replay,
)

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RATIO = 0.85
CLINC150 = Path("/work/shared/datasets/clinc150")


def write_short_tickets(path: Path, count: int, dataset: Path = CLINC150) -> int:
    """``count`` one-line tickets as JSONL: CLINC150 utterances (train, val, test in order),
    each a ticket whose subject is the utterance and whose body repeats it, as a one-line
    ticket from a contact form would. Returns how many were written."""
    texts: list[str] = []
    for split in ("train", "val", "test"):
        with (dataset / f"{split}.jsonl").open(encoding="utf-8") as handle:
            texts.extend(json.loads(line)["text"] for line in handle if line.strip())
    if count > len(texts):
        raise SystemExit(f"only {len(texts)} utterances in {dataset}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for number, text in enumerate(texts[:count], start=1):
            record = {"id": f"short-{number}", "subject": text, "description": text}
            handle.write(json.dumps(record) + "\n")
    return count


class RecordingEncoder:
    """The pipeline's dense encoder, unchanged, noting each text it is asked to embed.

    Injected through :class:`IndexingParts`, so the ceiling encodes exactly what the
    pipeline encoded (same texts, same order); the bookkeeping is a list extend per page.
    """

    def __init__(self, inner: SentenceTransformerEncoder) -> None:
        self.inner = inner
        self.texts: list[str] = []
        self.calls: list[int] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        self.calls.append(len(texts))
        return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> list[float]:
        return await self.inner.embed_query(text)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    import sentence_transformers
    import torch

    from backend.embeddings.query_model import cpu_summary, read_cpu_flags

    return {
        "cpu": cpu,
        # The flags that decide ONNX Runtime's int8 kernels, recorded beside every figure.
        "cpu_flags": cpu_summary(read_cpu_flags()),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    dataset = FreshdeskDataset.load(args.dataset, articles=args.articles, tickets=args.tickets)
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="helpdesk-bench-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        data_dir=data_dir,
        database_url=args.database_url,
        database_owner_url=args.database_owner_url,
        auto_migrate=args.database_owner_url is not None or args.database_url is None,
        embedding_batch_size=args.batch_size,
        torch_threads=args.torch_threads,
        log_level="WARNING",
        scheduler_enabled=False,
    )
    started_at = datetime.now(UTC)
    host = machine()
    if args.short_tickets:
        export = settings.resolved_import_root / "short_tickets.jsonl"
        write_short_tickets(export, args.short_tickets)
        async with open_stack(settings) as state:
            result = await _measure(args, state, state.sync.egress, export=export)
            result["replay_requests"] = 0
    else:
        with running_replay(dataset, conversations=args.conversations) as replay:
            async with open_stack(settings) as state:
                result = await _measure(args, state, replay.egress())
                result["replay_requests"] = replay.request_count
    return {
        "benchmark": "ingest_throughput",
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "date": started_at.isoformat(timespec="seconds"),
        "machine": host,
        "settings": {
            "database": "external (--database-url)" if args.database_url else "embedded postgres",
            "vectors": "qdrant-edge (embedded, on disk)",
            "object_store": "local folder",
            "embedding_model": settings.embedding_model,
            "batch_size": args.batch_size,
            "torch_threads": args.torch_threads,
            "per_page": args.per_page,
            "conversations": args.conversations,
            "articles": 0 if args.short_tickets else len(dataset.articles),
            "tickets": args.short_tickets or len(dataset.tickets),
            "dataset": str(CLINC150 if args.short_tickets else args.dataset),
            "source": "file_export (JSONL, one-line tickets)"
            if args.short_tickets
            else "freshdesk replay",
        },
        **result,
    }


async def _measure(
    args: argparse.Namespace, state: Stack, egress: Egress, *, export: Path | None = None
) -> dict[str, Any]:
    dense = state.dense
    if not isinstance(dense, SentenceTransformerEncoder):
        raise SystemExit("the benchmark needs the local sentence-transformers encoder")
    recorder = RecordingEncoder(dense)
    sync = SyncService(
        database=state.database,
        connectors=state.connectors,
        parts=IndexingParts(
            vectors=state.vectors, dense=recorder, sparse=SparseEncoder(), blobs=state.blobs
        ),
        egress=egress,
        clock=state.clock,
        files=state.connectors.files,
        # The replay's own X-Ratelimit headers are still obeyed; only the local default
        # (50 requests a minute, the smallest Freshdesk plan) is lifted.
        limiter_for=lambda _connector: RateLimiter.unlimited(clock=state.clock),
    )
    company_id = f"bench-{secrets.token_hex(4)}"
    await tenancy.create_company(
        state.database, company_id=company_id, name="Ingest benchmark", actor="bench"
    )
    if export is not None:
        # The operator's path (`helpdesk ingest file --kind ticket`), minus the progress bar.
        connector_id = await ensure_connector(
            state,
            company_id,
            platform="file_export",
            name="file:short_tickets.jsonl",
            settings={"path": str(export), "default_kind": "ticket"},
        )
    else:
        async with state.for_tenant(CompanyId(company_id)) as scope:
            connector = await state.connectors.create(
                scope,
                platform="freshdesk",
                name="stackfaq",
                settings={"domain": DOMAIN, "per_page": args.per_page},
                credentials={"api_key": API_KEY},
                schedule_minutes=None,
                actor="bench",
            )
        connector_id = connector.id

    # Warm-up: load the model and run a few batches so neither measurement pays for it.
    warm = [f"warm-up passage {n} about password resets and invoices" for n in range(256)]
    await dense.embed_documents(warm)
    dense.encode_batch(warm)

    # Load averages and this process's CPU time around each phase: on a shared machine a
    # phase slowed by other work shows up as a higher load and wall time well above CPU time.
    loads: dict[str, float] = {"before_pipeline": os.getloadavg()[0]}
    run_record = await sync.request_sync(company_id, connector_id, trigger="benchmark")
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    began, cpu_began = time.perf_counter(), time.process_time()
    finished = await sync.run(company_id, run_record.id)
    pipeline_s = time.perf_counter() - began
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    pipeline_cpu_s = time.process_time() - cpu_began
    loads["after_pipeline"] = os.getloadavg()[0]

    async with state.database.tenant_session(company_id) as session:
        row = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(Document.chunk_count), 0))
            )
        ).one()
    documents, chunk_total = int(row[0]), int(row[1])
    points = await state.vectors.count(company_id)
    texts = recorder.texts
    if not (len(texts) == chunk_total == points):
        raise SystemExit(
            f"chunk counts disagree: embedded {len(texts)}, postgres {chunk_total}, qdrant {points}"
        )

    # The ceiling: the same texts in the same encode calls (one per page, as the pipeline
    # made them), so the model does identical work and only the pipeline's overhead differs.
    # Batch composition matters: sentence-transformers sorts each call by length and pads
    # every batch to its longest text, so regrouping the texts changes the model's work.
    began, cpu_began = time.perf_counter(), time.process_time()
    encoded, position = 0, 0
    for size in recorder.calls:
        encoded += len(dense.encode_batch(texts[position : position + size]))
        position += size
    ceiling_s = time.perf_counter() - began
    ceiling_cpu_s = time.process_time() - cpu_began
    assert encoded == len(texts)
    loads["after_ceiling"] = os.getloadavg()[0]
    one_call: dict[str, float] | None = None
    if args.one_call_reference:
        # For reference: all texts in one call (one length sort across the whole corpus).
        began, cpu_began = time.perf_counter(), time.process_time()
        vectors = dense.encode_batch(texts)
        one_call_s = time.perf_counter() - began
        assert len(vectors) == len(texts)
        loads["after_one_call"] = os.getloadavg()[0]
        one_call = {
            "wall_s": round(one_call_s, 3),
            "process_cpu_s": round(time.process_time() - cpu_began, 3),
            "chunks_per_s": round(chunk_total / one_call_s, 1),
            "pipeline_ratio": round(one_call_s / pipeline_s, 3),
        }

    pipeline_rate = chunk_total / pipeline_s
    ceiling_rate = chunk_total / ceiling_s
    lengths = sorted(len(t) for t in texts)
    return {
        "company_id": company_id,
        "run": {
            "status": finished.status,
            "fetched": finished.fetched,
            "upserted": finished.upserted,
            "unchanged": finished.unchanged,
            "deleted": finished.deleted,
            "failed": finished.failed,
        },
        "documents": documents,
        "chunks": chunk_total,
        "qdrant_points": points,
        "encode_calls": len(recorder.calls),
        "chunk_chars": {
            "mean": round(sum(lengths) / len(lengths), 1),
            "median": lengths[len(lengths) // 2],
            "max": lengths[-1],
        },
        "load_average_1min": {k: round(v, 2) for k, v in loads.items()},
        "pipeline": {
            "wall_s": round(pipeline_s, 3),
            "process_cpu_s": round(pipeline_cpu_s, 3),
            "documents_per_s": round(documents / pipeline_s, 1),
            "chunks_per_s": round(pipeline_rate, 1),
        },
        "ceiling": {
            "wall_s": round(ceiling_s, 3),
            "process_cpu_s": round(ceiling_cpu_s, 3),
            "chunks_per_s": round(ceiling_rate, 1),
        },
        "one_call": one_call,
        "ratio": round(pipeline_rate / ceiling_rate, 3),
        # On a shared machine each phase gets whatever CPU is left; the ratio of process CPU
        # time (ceiling ÷ pipeline) is the steadier figure of what the pipeline adds.
        "cpu_ratio": round(ceiling_cpu_s / pipeline_cpu_s, 3),
        "target_ratio": TARGET_RATIO,
    }


def render_markdown(result: dict[str, Any]) -> str:
    s, m, p, c = result["settings"], result["machine"], result["pipeline"], result["ceiling"]
    o = result["one_call"]
    verdict = "meets" if result["ratio"] >= result["target_ratio"] else "misses"
    lines = [
        "# Ingest throughput"
        + (" (short documents)" if s.get("source", "").startswith("file_export") else ""),
        "",
        f"- Command: `{result['command']}`",
        f"- Date: {result['date']}",
        f"- Machine: {m['cpu']} (flags: "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m.get("cpu_flags", {}).items())
        + f"), {m['cores']} cores, {m['memory_gib']} GiB RAM; "
        f"Python {m['python']}, torch {m['torch']}, sentence-transformers "
        f"{m['sentence_transformers']}; load average at start {m['load_average_at_start']}",
        f"- Settings: {s['embedding_model']}, batch size {s['batch_size']}, torch threads "
        f"{s['torch_threads']}, Freshdesk per_page {s['per_page']}, {s['database']}, "
        f"{s['vectors']}, {s['object_store']}",
        (
            f"- Data: {s['tickets']} one-line tickets (CLINC150 utterances) from "
            f"`{s['dataset']}`, written as a JSONL export and read by the `file_export` "
            "connector (the `helpdesk ingest file` path)"
            if s.get("source", "").startswith("file_export")
            else f"- Data: {s['articles']} solution articles + {s['tickets']} tickets "
            f"(conversations: {s['conversations']}) from `{s['dataset']}`, served over HTTP "
            f"by `bench/freshdesk_replay.py` ({result['replay_requests']} requests)"
        ),
        "",
        "| measurement | wall time (s) | process CPU (s) | documents | chunks | chunks/s |",
        "|---|---:|---:|---:|---:|---:|",
        f"| pipeline (fetch → normalize → chunk → embed → write, per-page checkpoints) "
        f"| {p['wall_s']:.2f} | {p['process_cpu_s']:.2f} | {result['documents']} "
        f"| {result['chunks']} | {p['chunks_per_s']:.1f} |",
        f"| ceiling (`model.encode` of the same {result['chunks']} texts in the same "
        f"{result['encode_calls']} calls) "
        f"| {c['wall_s']:.2f} | {c['process_cpu_s']:.2f} | | {result['chunks']} "
        f"| {c['chunks_per_s']:.1f} |",
    ]
    if o is not None:
        lines.append(
            f"| reference: the same texts in one `model.encode` call | {o['wall_s']:.2f} "
            f"| {o['process_cpu_s']:.2f} | | {result['chunks']} | {o['chunks_per_s']:.1f} |"
        )
    lines += [
        "",
        f"**Pipeline ÷ ceiling: {result['ratio']:.1%}** ({verdict} the "
        f"{result['target_ratio']:.0%} target). Process CPU time, ceiling ÷ pipeline: "
        f"{result.get('cpu_ratio', 0):.1%} (steadier than wall time when other work "
        "shares the cores; a wall ratio above 100% means the ceiling phase got less CPU).",
        "",
        f"Sync run: {result['run']}. Qdrant points: {result['qdrant_points']}; the dense "
        f"encoder was called {result['encode_calls']} times; chunk length (characters) "
        f"mean {result['chunk_chars']['mean']}, median {result['chunk_chars']['median']}, "
        f"max {result['chunk_chars']['max']}.",
        "",
        f"1-minute load average: {result['load_average_1min']} (the machine has "
        f"{m['cores']} cores and is shared; process CPU of the pipeline includes the replay "
        "server's threads but not the Postgres server process).",
        "",
    ]
    return "\n".join(lines)


def print_table(result: dict[str, Any]) -> None:
    p, c = result["pipeline"], result["ceiling"]
    print(f"{'':<10}{'wall s':>10}{'docs':>8}{'chunks':>9}{'chunks/s':>11}")
    print(
        f"{'pipeline':<10}{p['wall_s']:>10.2f}{result['documents']:>8}"
        f"{result['chunks']:>9}{p['chunks_per_s']:>11.1f}"
    )
    print(
        f"{'ceiling':<10}{c['wall_s']:>10.2f}{'':>8}{result['chunks']:>9}{c['chunks_per_s']:>11.1f}"
    )
    if o := result["one_call"]:
        print(f"{'one call':<10}{o['wall_s']:>10.2f}{'':>17}{o['chunks_per_s']:>11.1f}")
    print(f"ratio {result['ratio']:.1%} (target {result['target_ratio']:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dataset", type=Path, default=DATASET_DIR)
    parser.add_argument("--articles", type=int, default=None, help="first N articles only")
    parser.add_argument("--tickets", type=int, default=None, help="first N tickets only")
    parser.add_argument("--conversations", choices=("gold", "none"), default="gold")
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument(
        "--batch-size", type=int, default=Settings.model_fields["embedding_batch_size"].default
    )
    parser.add_argument(
        "--torch-threads", type=int, default=Settings.model_fields["torch_threads"].default
    )
    parser.add_argument("--database-url", default=None, help="runtime URL; default: embedded")
    parser.add_argument("--database-owner-url", default=None, help="to run migrations first")
    parser.add_argument("--data-dir", default=None, help="default: a fresh temporary folder")
    parser.add_argument(
        "--short-tickets",
        type=int,
        default=0,
        help="N one-line tickets through the file_export connector instead of the replay",
    )
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--one-call-reference",
        action="store_true",
        help="also time all texts in a single encode call (another model pass)",
    )
    args = parser.parse_args()
    if args.output is None:
        name = "ingest_throughput_short" if args.short_tickets else "ingest_throughput"
        args.output = RESULTS / name
    result = asyncio.run(run(args))
    print_table(result)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        args.output.with_suffix(".md").write_text(render_markdown(result))
        print(f"wrote {args.output.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
