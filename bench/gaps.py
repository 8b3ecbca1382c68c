"""Knowledge-gap recall: hide a share of a help center's articles, replay its tickets, and
count how many hidden topics come back as top-ranked gaps.

Data: StackFAQ as Freshdesk solution articles (125 topics) and 1,249 tickets, each with its
gold article (``tickets_gold.tsv``). A seeded ``--hide`` share of the articles is left out
of the index; the rest go into the embedded vector store with the local model, as ingest
does. Every ticket is then replayed through the gap finder's own steps
(:mod:`backend.insight.gaps`): its article support is the closest article's cosine
similarity through the tenant-scoped retriever; tickets below the support threshold are
signals; signals are embedded and clustered, clusters ranked by volume. The top K clusters
(K = the number of hidden articles) are judged by their members' majority gold article:

- precision@K: the share of the top K clusters whose majority topic is a hidden article;
- recall@K: the share of hidden articles that are the majority topic of a top-K cluster.

The service defaults are reported first, then a small sweep of both thresholds.

    .venv/bin/python bench/gaps.py --hide 0.2 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shlex
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.embeddings.dense import SentenceTransformerEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.ingest.normalize import html_to_text
from backend.insight.gaps import (
    GapSettings,
    GapSignal,
    article_support,
    cluster_signals,
    rank_clusters,
)
from backend.retrieval import HybridRetriever
from backend.vectors.edge import EdgeVectorStore
from backend.vectors.namespace import point_id
from backend.vectors.types import ChunkPayload, ChunkPoint
from bench.triage import cpu_flags, cpu_model

COMPANY = "bench-gaps"


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    text: str
    gold: str


def load(root: Path) -> tuple[dict[str, str], list[Ticket]]:
    articles = {
        str(
            a["id"]
        ): f"{a['title']}\n\n{a.get('description_text') or html_to_text(a['description'])}"
        for a in json.loads((root / "solution_articles.json").read_text(encoding="utf-8"))
    }
    gold: dict[str, str] = {}
    for line in (root / "tickets_gold.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        ticket_id, article_id = line.split("\t")[:2]
        gold[ticket_id] = article_id
    tickets = [
        Ticket(
            str(t["id"]),
            f"{t['subject']}\n\n{t.get('description_text') or ''}".strip(),
            gold[str(t["id"])],
        )
        for t in json.loads((root / "tickets.json").read_text(encoding="utf-8"))
        if str(t["id"]) in gold
    ]
    return articles, tickets


def judge(
    tickets: list[Ticket],
    supports: list[float],
    vectors: list[list[float]],
    hidden: set[str],
    settings: GapSettings,
) -> dict[str, Any]:
    by_id = {t.ticket_id: t for t in tickets}
    at = datetime(2026, 1, 1, tzinfo=UTC)
    flagged = [
        (
            GapSignal(
                kind="ticket", ref=t.ticket_id, text=t.text, reasons=("weak_support",), at=at
            ),
            v,
        )
        for t, s, v in zip(tickets, supports, vectors, strict=True)
        if s < settings.support_threshold
    ]
    clusters = cluster_signals(
        [s for s, _ in flagged], [v for _, v in flagged], similarity=settings.cluster_similarity
    )
    ranked = rank_clusters(clusters, since=at, until=at, min_volume=settings.min_volume)
    k = len(hidden)
    top = ranked[:k]
    majority = [
        Counter(by_id[m.ref].gold for m in cluster.members).most_common(1)[0][0]
        for cluster, _ in top
    ]
    hidden_tickets = [t for t in tickets if t.gold in hidden]
    flagged_ids = {s.ref for s, _ in flagged}
    return {
        "support_threshold": settings.support_threshold,
        "cluster_similarity": settings.cluster_similarity,
        "min_volume": settings.min_volume,
        "k": k,
        "precision_at_k": round(sum(1 for m in majority if m in hidden) / max(len(top), 1), 4),
        "recall_at_k": round(len(set(majority) & hidden) / k, 4),
        "clusters": len(ranked),
        "signals": len(flagged),
        "hidden_topic_tickets_flagged": round(
            sum(1 for t in hidden_tickets if t.ticket_id in flagged_ids)
            / max(len(hidden_tickets), 1),
            4,
        ),
        "covered_topic_tickets_flagged": round(
            sum(1 for t in tickets if t.gold not in hidden and t.ticket_id in flagged_ids)
            / max(len(tickets) - len(hidden_tickets), 1),
            4,
        ),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    articles, tickets = load(args.dataset)
    ids = sorted(articles)
    hidden = set(random.Random(args.seed).sample(ids, round(len(ids) * args.hide)))
    visible = [a for a in ids if a not in hidden]
    dense = SentenceTransformerEncoder(
        torch_threads=args.threads, model_cache_dir=args.model_cache_dir
    )
    sparse = SparseEncoder()
    started = time.perf_counter()
    article_vectors = await dense.embed_documents([articles[a] for a in visible])
    ticket_vectors = await dense.embed_documents([t.text for t in tickets])
    encode_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-gaps-") as root:
        store = EdgeVectorStore(Path(root), dense_dimension=dense.dimension)
        await store.ensure_company(COMPANY)
        await store.upsert(
            COMPANY,
            [
                ChunkPoint(
                    id=point_id(COMPANY, "stackfaq", article_id, 0),
                    dense=vector,
                    sparse=sparse.encode_document(articles[article_id]),
                    payload=ChunkPayload(
                        company_id=COMPANY,
                        kind="article",
                        source="stackfaq",
                        document_id=article_id,
                        chunk_index=0,
                        text=articles[article_id],
                    ),
                )
                for article_id, vector in zip(visible, article_vectors, strict=True)
            ],
        )
        retriever = HybridRetriever(store, dense, sparse)
        started = time.perf_counter()
        supports = [await article_support(retriever, COMPANY, t.text) for t in tickets]
        support_ms = 1000 * (time.perf_counter() - started) / len(tickets)
        await store.close()

    default = GapSettings()
    sweep = [
        judge(
            tickets,
            supports,
            ticket_vectors,
            hidden,
            GapSettings(support_threshold=s, cluster_similarity=c),
        )
        for s in (0.4, 0.5, 0.6)
        for c in (0.4, 0.5, 0.6)
    ]
    return {
        "benchmark": "gaps",
        "dataset": str(args.dataset),
        "articles": len(ids),
        "hidden_articles": len(hidden),
        "hide_share": args.hide,
        "seed": args.seed,
        "tickets": len(tickets),
        "dense_model": dense.model_name,
        "encode_seconds": round(encode_seconds, 1),
        "support_search_ms_per_ticket": round(support_ms, 2),
        "service_defaults": judge(tickets, supports, ticket_vectors, hidden, default),
        "sweep": sweep,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "cpu": cpu_model(),
            "cpu_flags": cpu_flags(),
            "torch_threads": args.threads,
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", type=Path, default=Path("/work/shared/datasets/stackfaq/freshdesk_shaped")
    )
    parser.add_argument("--hide", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model-cache-dir", type=Path, default=Path(".helpdesk-data/models"))
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(report["service_defaults"], indent=2))
    for row in report["sweep"]:
        print(
            f"support<{row['support_threshold']} cluster>={row['cluster_similarity']}: "
            f"P@K {row['precision_at_k']}  R@K {row['recall_at_k']}"
        )
    args.output.mkdir(parents=True, exist_ok=True)
    target = args.output / "gaps.json"
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
