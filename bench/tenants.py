"""Tenant capacity: many companies × 300 chunks in one process, and what they cost.

For each company the bench creates the company (Postgres, RLS), then writes 300 one-line
tickets through :class:`backend.ingest.indexer.KnowledgeIndexer` — normalize, chunk,
sparse-encode, object store, vector store, Postgres rows — the write path every sync takes.
At checkpoints (``--checkpoints``, e.g. 100 and 1,000 companies) it records:

- resident memory (RSS) and open file descriptors of this process,
- disk: vector store, object store and the Postgres database,
- ingest time (all companies so far, and per company),
- search p50/p95 for a random company, **warm** (its shard open, asked before) and **cold**
  (the vector store closed and reopened, so the company's first query opens it).

**Vectors are reused, not re-encoded.** A pool of CLINC150 utterances is encoded once with
the configured model; each chunk gets a pool vector chosen by a hash of its text, and each
query a pool vector. This measures the store/DB/ingest path at its real dimension, not the
model (``bench/ingest_throughput.py`` measures that) and not retrieval quality. Searches are
vector-store queries (hybrid: dense + sparse with RRF, top 10), not the HTTP API.

Engines: ``--engine embedded`` (default: qdrant-edge shards, one per company) or
``--engine local-server`` (qdrant-client local mode: the server engine's collections and
filters in process, no network; small counts only, it holds every point in Python).

The embedded engine's open-shard budget (``--max-open-shards``, ``--open-shards-memory-mb``)
is passed on when this checkout's settings have it (``HELPDESK_EDGE_MAX_OPEN_SHARDS`` …);
otherwise it is recorded as unsupported and every shard stays open.

``--time-box-s`` stops adding companies when the time is up; the last checkpoint then is
the count reached, and larger counts are extrapolated (linear in companies, and marked so).

    .venv/bin/python bench/tenants.py --checkpoints 100,1000 --time-box-s 1500
    .venv/bin/python bench/tenants.py --engine local-server --checkpoints 10,50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.blobs import LocalBlobStore
from backend.config import Settings
from backend.embeddings.dense import SentenceTransformerEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.ingest.indexer import KnowledgeIndexer
from backend.stack import Stack, open_stack
from backend.tenancy import service as tenancy
from backend.vectors import VectorStore
from backend.vectors.factory import build_vector_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.ingest_throughput import CLINC150, machine

RESULTS = Path(__file__).resolve().parent / "results"
CHUNKS_PER_COMPANY = 300
SOURCE = "bench"


class PooledEncoder:
    """A dense encoder answering from vectors encoded once: a chunk gets the pool vector at
    a hash of its text (stable across runs), so no model runs per company."""

    def __init__(self, vectors: list[list[float]], model_name: str) -> None:
        self.vectors = vectors
        self._model_name = model_name

    @property
    def dimension(self) -> int:
        return len(self.vectors[0])

    @property
    def model_name(self) -> str:
        return self._model_name

    def _pick(self, text: str) -> list[float]:
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        return self.vectors[int.from_bytes(digest, "big") % len(self.vectors)]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._pick(t) for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return self._pick(text)


def load_utterances(count: int) -> list[str]:
    texts: list[str] = []
    for split in ("train", "val", "test"):
        with (CLINC150 / f"{split}.jsonl").open(encoding="utf-8") as handle:
            texts.extend(json.loads(line)["text"] for line in handle if line.strip())
    return texts[:count]


def company_tickets(company: int, utterances: list[str]) -> list[SourceDocument]:
    """300 one-line tickets (one chunk each) for company number ``company``."""
    rng = random.Random(company)
    return [
        SourceDocument(
            source=SOURCE,
            external_id=f"ticket:{n}",
            kind=DocumentKind.TICKET,
            title=title,
            parts=[DocumentPart(label="description", text=title)],
            status="closed",
        )
        for n, title in enumerate(rng.sample(utterances, CHUNKS_PER_COMPANY))
    ]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def du_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file removed while we walk
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return round(total / 1024**2, 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Budget:
    max_open_shards: int | None
    memory_mb: int | None
    supported: bool


def budget_settings(args: argparse.Namespace) -> tuple[dict[str, Any], Budget]:
    """Settings kwargs for the open-shard budget, if this checkout has the settings."""
    fields = Settings.model_fields
    supported = "edge_max_open_shards" in fields
    kwargs: dict[str, Any] = {}
    if supported:
        if args.max_open_shards is not None:
            kwargs["edge_max_open_shards"] = args.max_open_shards
        if args.open_shards_memory_mb is not None:
            kwargs["edge_open_shards_memory_mb"] = args.open_shards_memory_mb
    budget = Budget(
        max_open_shards=kwargs.get(
            "edge_max_open_shards",
            fields["edge_max_open_shards"].default if supported else None,
        ),
        memory_mb=kwargs.get(
            "edge_open_shards_memory_mb",
            fields["edge_open_shards_memory_mb"].default if supported else None,
        ),
        supported=supported,
    )
    return kwargs, budget


def reopen_vectors(state: Stack, args: argparse.Namespace) -> VectorStore:
    """A fresh vector store over the same data (what a restarted process would open)."""
    settings = state.settings
    extra: dict[str, Any] = {}
    if "edge_max_open_shards" in Settings.model_fields:
        extra = {
            "max_open_shards": settings.edge_max_open_shards,  # type: ignore[attr-defined]
            "open_shards_memory_bytes": settings.edge_open_shards_memory_mb  # type: ignore[attr-defined]
            * 1024**2,
        }
    return build_vector_store(
        None,
        None,
        settings.resolved_data_dir,
        dense_dimension=state.dense.dimension,
        **extra,
    )


async def search_once(
    vectors: VectorStore, company_id: str, pool: PooledEncoder, sparse: SparseEncoder, q: str
) -> float:
    began = time.perf_counter()
    hits = await vectors.query(
        company_id, dense=await pool.embed_query(q), sparse=sparse.encode_query(q), limit=10
    )
    elapsed = (time.perf_counter() - began) * 1000
    if not hits:
        raise SystemExit(f"no hits for {company_id}")
    return elapsed


async def measure_searches(
    state: Stack,
    vectors: VectorStore,
    companies: list[str],
    pool: PooledEncoder,
    utterances: list[str],
    args: argparse.Namespace,
    *,
    reopen: bool,
) -> tuple[dict[str, float], dict[str, float], VectorStore]:
    """Cold: the store is reopened, then each sampled company's first query. Warm: a second
    round of queries on the same companies."""
    rng = random.Random(len(companies))
    sample = rng.sample(companies, min(args.search_sample, len(companies)))
    sparse = SparseEncoder()
    if reopen:
        await vectors.close()
        vectors = reopen_vectors(state, args)
    cold = [await search_once(vectors, c, pool, sparse, rng.choice(utterances)) for c in sample]
    warm: list[float] = []
    for _ in range(args.warm_rounds):
        for company in sample:
            warm.append(await search_once(vectors, company, pool, sparse, rng.choice(utterances)))

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "n": len(values),
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(percentile(values, 0.95), 2),
        }

    return stats(cold), stats(warm), vectors


async def disk(state: Stack) -> dict[str, float]:
    data_dir = state.settings.resolved_data_dir
    async with state.database.platform_session() as session:
        query = text("select pg_database_size(current_database())")
        size = (await session.execute(query)).scalar_one()
    blobs = state.blobs
    return {
        "vectors_mb": du_mb(data_dir / "qdrant-edge"),
        "blobs_mb": du_mb(blobs.root) if isinstance(blobs, LocalBlobStore) else 0.0,
        "postgres_db_mb": round(int(size) / 1024**2, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="helpdesk-tenants-"))
    budget_kwargs, budget = budget_settings(args)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        data_dir=data_dir,
        database_url=args.database_url,
        database_owner_url=args.database_owner_url,
        auto_migrate=args.database_owner_url is not None or args.database_url is None,
        qdrant_url=":memory:" if args.engine == "local-server" else None,
        log_level="WARNING",
        scheduler_enabled=False,
        **budget_kwargs,
    )
    started_at = datetime.now(UTC)
    host = machine()
    checkpoints = sorted(args.checkpoints)
    utterances = load_utterances(args.pool)
    async with open_stack(settings) as state:
        dense = state.dense
        if not isinstance(dense, SentenceTransformerEncoder):
            raise SystemExit("the benchmark needs the local sentence-transformers encoder")
        began = time.perf_counter()
        pool = PooledEncoder(await dense.embed_documents(utterances), dense.model_name)
        pool_s = time.perf_counter() - began
        indexer = KnowledgeIndexer(
            database=state.database,
            vectors=state.vectors,
            dense=pool,
            sparse=SparseEncoder(),
            blobs=state.blobs,
        )
        vectors = state.vectors
        points: list[dict[str, Any]] = []
        companies: list[str] = []
        ingest_s = 0.0
        per_company: list[float] = []
        deadline = time.monotonic() + args.time_box_s
        prefix = f"tn{os.getpid() % 10000}"
        timed_out = False
        for target in checkpoints:
            while len(companies) < target:
                if time.monotonic() > deadline or rss_mb() > args.max_rss_mb:
                    timed_out = True
                    break
                number = len(companies)
                company_id = f"{prefix}-{number:05d}"
                began = time.perf_counter()
                await tenancy.create_company(
                    state.database, company_id=company_id, name=company_id, actor="bench"
                )
                # A fresh indexer per company would change nothing: it holds no state.
                indexer.vectors = vectors
                counts = await indexer.index(company_id, company_tickets(number, utterances))
                if counts.chunks != CHUNKS_PER_COMPANY:
                    raise SystemExit(f"{company_id}: {counts.chunks} chunks written")
                elapsed = time.perf_counter() - began
                ingest_s += elapsed
                per_company.append(elapsed)
                companies.append(company_id)
                if len(companies) % 50 == 0:
                    print(f"{len(companies)} companies, {ingest_s:.0f} s ingest", flush=True)
            after_ingest = {"rss_mb": rss_mb(), "open_fds": open_fds()}
            cold, warm, vectors = await measure_searches(
                state,
                vectors,
                companies,
                pool,
                utterances,
                args,
                reopen=args.engine == "embedded",
            )
            points.append(
                {
                    "companies": len(companies),
                    "chunks": len(companies) * CHUNKS_PER_COMPANY,
                    "measured": True,
                    "ingest_s": round(ingest_s, 1),
                    "ingest_per_company_s": {
                        "mean": round(statistics.fmean(per_company), 3),
                        "p95": round(percentile(per_company, 0.95), 3),
                        "last_50_mean": round(statistics.fmean(per_company[-50:]), 3),
                    },
                    "after_ingest": after_ingest,
                    "after_searches": {"rss_mb": rss_mb(), "open_fds": open_fds()},
                    "disk": await disk(state),
                    "search_cold": cold,
                    "search_warm": warm,
                }
            )
            print(json.dumps(points[-1]), flush=True)
            if timed_out:
                break
        if vectors is not state.vectors:
            # The stack closes the store it opened; the reopened one is ours to close.
            await vectors.close()
    for target in args.extrapolate:
        if points and target > points[-1]["companies"]:
            points.append(extrapolate(points, target))
    return {
        "benchmark": "tenants",
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "date": started_at.isoformat(timespec="seconds"),
        "machine": host,
        "settings": {
            "engine": "qdrant-edge (embedded, a shard per company)"
            if args.engine == "embedded"
            else "qdrant-client local mode (server engine semantics, in process)",
            "database": "external (--database-url)" if args.database_url else "embedded postgres",
            "object_store": "local folder",
            "embedding_model": settings.embedding_model,
            "chunks_per_company": CHUNKS_PER_COMPANY,
            "vector_pool": len(utterances),
            "vector_pool_encode_s": round(pool_s, 1),
            "search_sample": args.search_sample,
            "warm_rounds": args.warm_rounds,
            "time_box_s": args.time_box_s,
            "max_rss_mb": args.max_rss_mb,
            "timed_out": timed_out,
            "open_shard_budget": {
                "supported": budget.supported,
                "max_open_shards": budget.max_open_shards,
                "memory_mb": budget.memory_mb,
            },
        },
        "points": points,
    }


def extrapolate(points: list[dict[str, Any]], target: int) -> dict[str, Any]:
    """Linear in companies through the last two measured points (with one point, through
    zero: an over-estimate for what has a fixed base, like memory). Search times are carried
    over from the largest measured point, not extrapolated."""
    last = points[-1]
    first = points[-2] if len(points) > 1 else None

    def grow(path: tuple[str, ...]) -> float:
        def value(point: dict[str, Any]) -> float:
            found: Any = point
            for key in path:
                found = found[key]
            return float(found)

        b = value(last)
        if first is None:
            slope = b / last["companies"]
        else:
            slope = (b - value(first)) / (last["companies"] - first["companies"])
        return round(b + slope * (target - last["companies"]), 1)

    return {
        "companies": target,
        "chunks": target * CHUNKS_PER_COMPANY,
        "measured": False,
        "extrapolated_from": [p["companies"] for p in (first, last) if p is not None],
        "ingest_s": grow(("ingest_s",)),
        "after_ingest": {k: grow(("after_ingest", k)) for k in ("rss_mb", "open_fds")},
        "disk": {k: grow(("disk", k)) for k in last["disk"]},
        "search_cold": last["search_cold"],
        "search_warm": last["search_warm"],
    }


def render_markdown(result: dict[str, Any]) -> str:
    s, m = result["settings"], result["machine"]
    b = s["open_shard_budget"]
    budget = (
        f"max open shards {b['max_open_shards']}, memory {b['memory_mb']} MB"
        if b["supported"]
        else "none (this checkout has no open-shard budget: every shard stays open)"
    )
    lines = [
        f"# Tenant capacity ({s['engine']})",
        "",
        f"- Command: `{result['command']}`",
        f"- Date: {result['date']}",
        f"- Machine: {m['cpu']} (flags: "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m.get("cpu_flags", {}).items())
        + f"), {m['cores']} cores, {m['memory_gib']} GiB RAM, Python {m['python']}; "
        f"load average at start {m['load_average_at_start']}",
        f"- Each company: {s['chunks_per_company']} one-line tickets (one chunk each) through "
        "`KnowledgeIndexer` (normalize, chunk, sparse encode, object store, vector store, "
        f"Postgres rows); {s['database']}, {s['object_store']}",
        f"- Dense vectors **reused**: a pool of {s['vector_pool']} CLINC150 utterances "
        f"encoded once with {s['embedding_model']} ({s['vector_pool_encode_s']} s); each chunk "
        "and query takes a pool vector, so no model runs per company",
        f"- Search: vector-store hybrid query (dense + sparse, RRF, top 10) for "
        f"{s['search_sample']} random companies; cold = first query after the store is "
        f"reopened (embedded engine; in local mode the first query), warm = "
        f"{s['warm_rounds']} more rounds",
        f"- Open-shard budget: {budget}",
        f"- Time box {s['time_box_s']} s, memory box {s['max_rss_mb']} MB RSS"
        + (" — **reached**: the last measured row is as far as it got" if s["timed_out"] else ""),
        "",
        "| companies | chunks | measured? | ingest total (s) | per company (s) | RSS (MB) "
        "| open fds | vectors (MB) | blobs (MB) | Postgres (MB) | cold p50/p95 (ms) "
        "| warm p50/p95 (ms) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in result["points"]:
        per = p.get("ingest_per_company_s", {}).get("mean")
        d, a = p["disk"], p["after_ingest"]
        c, w = p["search_cold"], p["search_warm"]
        lines.append(
            f"| {p['companies']:,} | {p['chunks']:,} "
            f"| {'measured' if p['measured'] else 'extrapolated'} | {p['ingest_s']:,} "
            f"| {per if per is not None else '—'} | {a['rss_mb']:,} | {a['open_fds']:,} "
            f"| {d['vectors_mb']:,} | {d['blobs_mb']:,} | {d['postgres_db_mb']:,} "
            f"| {c['p50_ms']} / {c['p95_ms']} | {w['p50_ms']} / {w['p95_ms']} |"
        )
    lines += [
        "",
        "RSS and open fds are this process after ingest (embedded Postgres runs in its own "
        "processes and is not counted). Extrapolated rows are linear in companies through "
        "the measured points; their search times are the largest measured point's.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--engine", choices=("embedded", "local-server"), default="embedded")
    parser.add_argument(
        "--checkpoints",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[100, 1000],
        help="company counts to measure at, e.g. 100,1000",
    )
    parser.add_argument(
        "--extrapolate",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[1_000, 10_000],
        help="company counts to extrapolate to from the measured points (those above the "
        "largest measured count)",
    )
    parser.add_argument("--pool", type=int, default=3000, help="utterances encoded once")
    parser.add_argument("--search-sample", type=int, default=50)
    parser.add_argument("--warm-rounds", type=int, default=3)
    parser.add_argument("--time-box-s", type=float, default=1500.0)
    parser.add_argument(
        "--max-rss-mb",
        type=float,
        default=12_000,
        help="stop adding companies past this resident memory (as for the time box)",
    )
    parser.add_argument("--max-open-shards", type=int, default=None)
    parser.add_argument("--open-shards-memory-mb", type=int, default=None)
    parser.add_argument("--database-url", default=None, help="runtime URL; default: embedded")
    parser.add_argument("--database-owner-url", default=None, help="to run migrations first")
    parser.add_argument("--data-dir", default=None, help="default: a fresh temporary folder")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    output = args.output or RESULTS / f"tenants-{args.engine}"
    markdown = render_markdown(result)
    print(markdown)
    if not args.no_write:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        output.with_suffix(".md").write_text(markdown)
        print(f"wrote {output.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
