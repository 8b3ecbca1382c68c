"""Ranking through the query runtime: StackFAQ (qa_pair) nDCG@10 with queries encoded by the
runtime this machine chooses, and by the one a CPU without VNNI gets, against PyTorch's.

Documents are encoded by PyTorch, as ingest does; only the queries change runtime. The
ranking is dense only (exact cosine over the whole corpus): hybrid search would dilute a
query-vector drift with the lexical list. To stay affordable on two busy cores the queries
are a fixed third of the 1,249 (every third in id order, so every thread of the FAQ is
asked), over the full corpus of 719 answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.embeddings.dense import SentenceTransformerEncoder
from bench.retrieval_quality import load_dataset, score_rankings

# Within this much of PyTorch's nDCG@10 (the bar for "keeps the model's ranking").
TOLERANCE = 0.005
NO_VNNI = frozenset({"sse4_2", "avx", "avx2", "fma", "bmi2"})


def _stackfaq() -> Path:
    """The shared datasets sit beside the clone (``../shared``); a worktree one level deeper
    finds them one level up."""
    root = Path(__file__).resolve().parents[2]
    for base in (root.parent, root.parent.parent):
        candidate = base / "shared" / "datasets" / "stackfaq" / "beir_qa_pair"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("../shared/datasets/stackfaq/beir_qa_pair is missing")


def _ndcg(
    doc_ids: list[str],
    docs: np.ndarray,
    query_ids: list[str],
    queries: np.ndarray,
    qrels: dict[str, set[str]],
) -> float:
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    rankings = {q: [doc_ids[i] for i in row] for q, row in zip(query_ids, top, strict=True)}
    return score_rankings(rankings, {q: qrels[q] for q in query_ids})["ndcg@10"]


@pytest.mark.slow
async def test_query_runtimes_keep_the_stackfaq_ranking(tmp_path: Path) -> None:
    dataset = load_dataset(_stackfaq())
    doc_ids = list(dataset.corpus)
    query_ids = sorted(dataset.queries)[::3]
    texts = [dataset.queries[q] for q in query_ids]

    exact = SentenceTransformerEncoder(query_runtime="torch")
    docs = np.asarray(exact.encode_batch([dataset.corpus[d] for d in doc_ids]))
    baseline = _ndcg(doc_ids, docs, query_ids, np.asarray(exact.encode_batch(texts)), dataset.qrels)
    assert baseline > 0.8  # the model really ranks (0.9 on the whole set)

    here = SentenceTransformerEncoder(query_runtime="onnx-int8", model_cache_dir=tmp_path)
    without_vnni = SentenceTransformerEncoder(
        query_runtime="onnx-int8", model_cache_dir=tmp_path, cpu_flags=lambda: NO_VNNI
    )
    figures = {}
    for encoder in (here, without_vnni):
        vectors = np.asarray(encoder.encode_queries(texts))
        variant = encoder.query_runtime_details()["variant"]
        figures[variant] = _ndcg(doc_ids, docs, query_ids, vectors, dataset.qrels)
    print(f"StackFAQ qa_pair, {len(query_ids)} queries: nDCG@10 torch {baseline:.4f}", figures)
    assert "onnx-int8-u8" in figures
    for variant, ndcg in figures.items():
        assert abs(ndcg - baseline) <= TOLERANCE, (variant, ndcg, baseline)
