"""What an open embedded shard costs, and what a budget of open shards does to searches.

One process, this machine, synthetic data (random unit dense vectors, real sparse encoder
output, ~1 kB payload texts): ``--companies`` companies of ``--chunks`` chunks each are
written through ``EdgeVectorStore.upsert`` and optimized, the store is closed, then
reopened with ``max_open_shards=--budget`` and searched (hybrid, limit 10):

1. **each company once, unbudgeted order**: file descriptors and resident memory (anonymous
   and file-backed, ``/proc/self/status``) before and after opening them all, per shard;
2. **``--rounds`` x companies random searches under the budget**: the most shards open at
   once, the most extra descriptors, every ``vectors.cold_search`` (open + query; eviction of
   the least recently used shard included) and ``vectors.shard_closed`` log entry.

Writes JSON to ``bench/results/edge_shard_costs-<UTC stamp>.json`` with the command, the
machine and the date. The machine's load average is recorded too: on a busy shared machine
the millisecond figures are upper bounds.

    PYTHONPATH=. .venv/bin/python bench/edge_shard_costs.py --companies 24 --budget 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from backend.embeddings.sparse import SparseEncoder
from backend.vectors import ChunkPayload, ChunkPoint, EdgeVectorStore, point_id

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ["password", "reset", "invoice", "refund", "login", "sso", "okta", "billing", "export"]


def status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def allocated_bytes(root: Path) -> int:
    """Disk blocks under ``root`` (shard files are sparse: far below their apparent size)."""
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file())


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def unit_vector(rng: random.Random, dimension: int) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(dimension)]
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector]


async def build(root: Path, args: argparse.Namespace, rng: random.Random) -> float:
    sparse = SparseEncoder()
    store = EdgeVectorStore(root, dense_dimension=args.dimension)
    started = time.perf_counter()
    for index in range(args.companies):
        company = f"co{index}"
        points = []
        for chunk in range(args.chunks):
            text = " ".join(rng.choice(WORDS) for _ in range(30))
            points.append(
                ChunkPoint(
                    point_id(company, "bench", str(chunk), 0),
                    unit_vector(rng, args.dimension),
                    sparse.encode_document(text),
                    ChunkPayload(
                        company_id=company,
                        kind="ticket",
                        source="bench",
                        document_id=str(chunk),
                        chunk_index=0,
                        text=text * 5,
                    ),
                )
            )
        await store.upsert(company, points)
        await store.optimize(company)
    await store.close()
    return time.perf_counter() - started


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    sparse = SparseEncoder()
    query_sparse = sparse.encode_query("password reset")
    root = Path(tempfile.mkdtemp(prefix="edge_shard_costs-"))
    try:
        build_s = await build(root, args, rng)
        disk = await asyncio.to_thread(allocated_bytes, root)

        # 1. Every company opened once, no budget: the cost of an open shard.
        store = EdgeVectorStore(root, dense_dimension=args.dimension)
        fds0, anon0, file0 = open_fds(), status_bytes("RssAnon"), status_bytes("RssFile")
        for index in range(args.companies):
            await store.query(
                f"co{index}", dense=unit_vector(rng, args.dimension), sparse=query_sparse
            )
        per_shard = {
            "fds": (open_fds() - fds0) / args.companies,
            "rss_anon_mib": (status_bytes("RssAnon") - anon0) / args.companies / 2**20,
            "rss_file_mib": (status_bytes("RssFile") - file0) / args.companies / 2**20,
            "disk_allocated_mib": disk / args.companies / 2**20,
        }
        await store.close()

        # 2. Random companies under the budget.
        store = EdgeVectorStore(root, dense_dimension=args.dimension, max_open_shards=args.budget)
        fds0 = open_fds()
        most_open = most_fds = 0
        warm: list[float] = []
        with capture_logs() as logs:
            for _ in range(args.rounds * args.companies):
                company = f"co{rng.randrange(args.companies)}"
                cold_before = sum(e["event"] == "vectors.cold_search" for e in logs)
                started = time.perf_counter()
                await store.query(
                    company, dense=unit_vector(rng, args.dimension), sparse=query_sparse
                )
                elapsed = (time.perf_counter() - started) * 1000
                if sum(e["event"] == "vectors.cold_search" for e in logs) == cold_before:
                    warm.append(elapsed)
                most_open = max(most_open, store.open_shard_count())
                most_fds = max(most_fds, open_fds() - fds0)
        await store.close()
        cold = [e for e in logs if e["event"] == "vectors.cold_search"]
        closed = [e for e in logs if e["event"] == "vectors.shard_closed"]
        opened = [e for e in logs if e["event"] == "vectors.shard_opened"]
        budgeted = {
            "searches": args.rounds * args.companies,
            "most_open_shards": most_open,
            "most_extra_fds": most_fds,
            "cold_searches": len(cold),
            "cold_total_ms_p50": percentile([e["total_ms"] for e in cold], 0.5),
            "cold_total_ms_p95": percentile([e["total_ms"] for e in cold], 0.95),
            "cold_open_ms_p50": percentile([e["open_ms"] for e in cold], 0.5),
            "close_ms_p50": percentile([e["close_ms"] for e in closed], 0.5),
            "warm_ms_p50": percentile(warm, 0.5),
            "warm_ms_p95": percentile(warm, 0.95),
            "memory_recorded_per_open_mib_p50": percentile(
                [e["memory_bytes"] / 2**20 for e in opened], 0.5
            ),
        }
        return {"build_s": build_s, "per_open_shard": per_shard, "under_budget": budgeted}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=24)
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.budget < 1 or args.companies < 1 or args.chunks < 1:
        parser.error("--companies, --chunks and --budget must be positive")
    figures = asyncio.run(measure(args))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "parameters": vars(args),
        **figures,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"edge_shard_costs-{stamp}.json"
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
