"""Retrieval quality of dense-only, sparse-only and hybrid search on a BEIR-format dataset
(StackFAQ) or on CLINC150 (train utterances as the corpus, test utterances as queries, the
same intent = relevant; out-of-scope rows stay in the corpus as distractors).

Indexes the corpus into the embedded vector store (the same code path the service uses:
SparseEncoder, the local dense model — documents on PyTorch, queries on a query runtime —
EdgeVectorStore) and reports nDCG@10, recall@1/5/10 and MRR@10 per mode — ``dense``,
``sparse``, ``hybrid`` (the engine's weighted RRF) and ``retriever`` (what the service runs:
``HybridRetriever.search``, which fuses both lists on their scores, see
backend/retrieval/fusion.py) — and per query runtime: PyTorch, fp32 ONNX, int8 ONNX as
this CPU gets it, and int8 ONNX as a CPU without VNNI gets it (u8 weights; see
backend/embeddings/query_model.py). Results are written to bench/results/ together with the
command, the machine (CPU flags included) and the date.

    .venv/bin/python bench/retrieval_quality.py \
        --dataset ../shared/datasets/stackfaq/beir_qa_pair
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backend.embeddings.dense import SentenceTransformerEncoder
from backend.embeddings.query_model import cpu_summary, read_cpu_flags
from backend.embeddings.sparse import SparseEncoder
from backend.retrieval import HybridRetriever
from backend.retrieval.fusion import DEFAULT_FUSION_DENSE_WEIGHT, FUSION_METHODS
from backend.vectors.edge import EdgeVectorStore
from backend.vectors.namespace import point_id
from backend.vectors.store import DEFAULT_DENSE_WEIGHT, DEFAULT_RRF_K
from backend.vectors.types import ChunkPayload, ChunkPoint, SearchMode

COMPANY = "bench"
CUTOFF = 10
# The query runtimes a run can compare; the last is int8 as a CPU without VNNI gets it.
RUNTIMES = ("torch", "onnx", "onnx-int8", "onnx-int8-without-vnni")
_WITHOUT_VNNI = frozenset({"avx", "avx2", "fma"})


@dataclass(frozen=True)
class Dataset:
    corpus: dict[str, str]  # doc id -> title + text
    queries: dict[str, str]
    qrels: dict[str, set[str]]  # query id -> relevant doc ids


def load_dataset(path: Path) -> Dataset:
    corpus: dict[str, str] = {}
    with (path / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            corpus[row["_id"]] = f"{row.get('title', '')}\n{row['text']}".strip()
    queries: dict[str, str] = {}
    with (path / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    qrels: dict[str, set[str]] = defaultdict(set)
    with (path / "qrels" / "test.tsv").open(encoding="utf-8") as lines:
        next(lines)  # header
        for line in lines:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels[query_id].add(doc_id)
    return Dataset(corpus, {q: t for q, t in queries.items() if q in qrels}, dict(qrels))


def load_clinc(path: Path) -> Dataset:
    corpus: dict[str, str] = {}
    by_intent: dict[str, set[str]] = defaultdict(set)
    with (path / "train.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            row = json.loads(line)
            corpus[f"train-{number}"] = row["text"]
            if row["intent"]:
                by_intent[row["intent"]].add(f"train-{number}")
    queries: dict[str, str] = {}
    qrels: dict[str, set[str]] = {}
    with (path / "test.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            row = json.loads(line)
            if row["intent"]:  # out-of-scope questions have no relevant utterance
                queries[f"test-{number}"] = row["text"]
                qrels[f"test-{number}"] = by_intent[row["intent"]]
    return Dataset(corpus, queries, qrels)


def score_rankings(rankings: dict[str, list[str]], qrels: dict[str, set[str]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for query_id, relevant in qrels.items():
        ranked = rankings.get(query_id, [])[:CUTOFF]
        dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked) if doc in relevant)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), CUTOFF)))
        totals["ndcg@10"] += dcg / ideal
        for k in (1, 5, 10):
            totals[f"recall@{k}"] += len(set(ranked[:k]) & relevant) / len(relevant)
        first = next((i for i, doc in enumerate(ranked) if doc in relevant), None)
        totals["mrr@10"] += 0.0 if first is None else 1.0 / (first + 1)
    return {name: round(value / len(qrels), 4) for name, value in sorted(totals.items())}


def _encoder(args: argparse.Namespace, runtime: str) -> SentenceTransformerEncoder:
    if runtime == "onnx-int8-without-vnni":
        return SentenceTransformerEncoder(
            batch_size=args.batch_size,
            torch_threads=args.threads,
            query_runtime="onnx-int8",
            model_cache_dir=args.model_cache_dir,
            cpu_flags=lambda: _WITHOUT_VNNI,
        )
    return SentenceTransformerEncoder(
        batch_size=args.batch_size,
        torch_threads=args.threads,
        query_runtime=runtime,  # type: ignore[arg-type]
        model_cache_dir=args.model_cache_dir,
    )


async def run(args: argparse.Namespace) -> dict[str, object]:
    dataset = (
        load_clinc(args.dataset)
        if (args.dataset / "train.jsonl").exists()
        else load_dataset(args.dataset)
    )
    documents_encoder = _encoder(args, "torch")
    sparse_encoder = SparseEncoder()
    doc_ids = list(dataset.corpus)
    query_ids = list(dataset.queries)

    started = time.perf_counter()
    doc_vectors = await documents_encoder.embed_documents([dataset.corpus[d] for d in doc_ids])
    encode_seconds = time.perf_counter() - started

    by_runtime: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="retrieval-quality-") as root:
        store = EdgeVectorStore(
            Path(root),
            dense_dimension=documents_encoder.dimension,
            rrf_k=args.rrf_k,
            dense_weight=args.dense_weight,
        )
        points = [
            ChunkPoint(
                id=point_id(COMPANY, "beir", doc_id, 0),
                dense=vector,
                sparse=sparse_encoder.encode_document(dataset.corpus[doc_id]),
                payload=ChunkPayload(
                    company_id=COMPANY,
                    kind="article",
                    source="beir",
                    document_id=doc_id,
                    chunk_index=0,
                    text=dataset.corpus[doc_id],
                ),
            )
            for doc_id, vector in zip(doc_ids, doc_vectors, strict=True)
        ]
        for start in range(0, len(points), 256):
            await store.upsert(COMPANY, points[start : start + 256])

        for runtime in args.query_runtimes:
            # Queries go through the query runtime, as the service's searches do; documents
            # through the document path, as ingest does.
            encoder = _encoder(args, runtime)
            began = time.perf_counter()
            query_vectors = encoder.encode_queries([dataset.queries[q] for q in query_ids])
            query_seconds = time.perf_counter() - began
            results: dict[str, dict[str, float]] = {}
            for mode in SearchMode:
                began = time.perf_counter()
                rankings: dict[str, list[str]] = {}
                for query_id, dense in zip(query_ids, query_vectors, strict=True):
                    hits = await store.query(
                        COMPANY,
                        dense=dense,
                        sparse=sparse_encoder.encode_query(dataset.queries[query_id]),
                        limit=CUTOFF,
                        mode=mode,
                        prefetch_limit=args.prefetch_limit,
                    )
                    rankings[query_id] = [hit.payload.document_id for hit in hits]
                metrics = score_rankings(rankings, dataset.qrels)
                metrics["ms_per_query"] = round(
                    1000 * (time.perf_counter() - began) / len(query_ids), 3
                )
                results[mode.value] = metrics
            # The service's path: query encoding, both lists, score-aware fusion, dedupe.
            retriever = HybridRetriever(
                store,
                encoder,
                sparse_encoder,
                dense_weight=args.fusion_dense_weight,
                fusion=args.fusion,
            )
            began = time.perf_counter()
            rankings = {}
            for query_id in query_ids:
                passages = await retriever.search(COMPANY, dataset.queries[query_id], limit=CUTOFF)
                rankings[query_id] = [p.document_id for p in passages]
            metrics = score_rankings(rankings, dataset.qrels)
            metrics["ms_per_query"] = round(
                1000 * (time.perf_counter() - began) / len(query_ids), 3
            )
            results["retriever"] = metrics
            by_runtime[runtime] = {
                "query_runtime": encoder.query_runtime_details(),
                "encode_queries_seconds": round(query_seconds, 1),
                "results": results,
            }
        await store.close()

    return {
        "benchmark": "retrieval_quality",
        "dataset": str(args.dataset),
        "documents": len(doc_ids),
        "queries": len(query_ids),
        "dense_model": documents_encoder.model_name,
        "rrf_k": args.rrf_k,
        "dense_weight": args.dense_weight,
        "prefetch_limit": args.prefetch_limit,
        "retriever_fusion": {"method": args.fusion, "dense_weight": args.fusion_dense_weight},
        "encode_documents_seconds": round(encode_seconds, 1),
        "results_by_query_runtime": by_runtime,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            # What decides the int8 query kernels (see backend.embeddings.query_model).
            "cpu_flags": cpu_summary(read_cpu_flags()),
            "torch_threads": args.threads,
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", type=Path, default=Path("/work/shared/datasets/stackfaq/beir_qa_pair")
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rrf-k", type=int, default=DEFAULT_RRF_K)
    parser.add_argument(
        "--dense-weight", type=float, default=DEFAULT_DENSE_WEIGHT, help="RRF weight of dense"
    )
    parser.add_argument("--prefetch-limit", type=int, default=None)
    parser.add_argument(
        "--fusion", choices=FUSION_METHODS, default="convex", help="the retriever's fusion"
    )
    parser.add_argument(
        "--fusion-dense-weight",
        type=float,
        default=DEFAULT_FUSION_DENSE_WEIGHT,
        help="the retriever's dense weight",
    )
    parser.add_argument(
        "--query-runtimes",
        type=lambda text: [part for part in text.split(",") if part],
        default=list(RUNTIMES),
        help=f"comma-separated, from {', '.join(RUNTIMES)} (default: all)",
    )
    parser.add_argument(
        "--model-cache-dir",
        type=Path,
        default=Path(".helpdesk-data/models"),
        help="where the exported query model is kept",
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    unknown = set(args.query_runtimes) - set(RUNTIMES)
    if unknown:
        parser.error(f"unknown query runtimes {sorted(unknown)}; use {', '.join(RUNTIMES)}")
    report = asyncio.run(run(args))
    for runtime, figures in report["results_by_query_runtime"].items():  # type: ignore[attr-defined]
        chosen = figures["query_runtime"]
        print(f"{runtime} (runs as {chosen['runtime']}, {chosen.get('variant')})")
        for mode, metrics in figures["results"].items():
            print(f"  {mode:>7}  " + "  ".join(f"{k}={v}" for k, v in metrics.items()))
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = args.output / f"retrieval_quality-{args.dataset.name}-{stamp}.json"
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
