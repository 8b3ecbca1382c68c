"""Answer quality of the assistant's ``answer`` task on StackFAQ, scored against gold answers.

The question goes through the same path as ``POST /v1/answer`` minus the HTTP layer, the
response cache and the interaction recorder: :meth:`Assistant.prepare_answer` (hybrid
retrieval, injection screening, the prompt) and :meth:`Assistant.run` (the LLM router).
With no model configured the router answers with the extractive composer, the product's
default; ``--llm-base-url`` sends the same requests to an OpenAI-compatible server through
the router instead, so a deployment can measure its model the same way.

The corpus (StackFAQ ``beir_qa_pair``: one FAQ answer per document, its thread's question
as the title) is cut by the product's chunker as help-centre articles and indexed in the
embedded vector store. For a fixed, seeded sample of questions (a few hundred keeps a run
to a few minutes on two shared cores) it reports, against the best of the question's gold
answers (every answer of the right thread):

- token F1 (SQuAD-style: lower-cased ``\\w+`` tokens, articles dropped),
- ROUGE-L F1 (longest common subsequence on the same tokens),
- first-citation relevance: the share of answers whose first citation is a gold document,
- the share of questions answered at all, and mean answer length.

Citation markers are removed before scoring; the rest of the text is scored as the product
returns it. Results go to bench/results/ with the command, the machine and the date.

    PYTHONPATH=$PWD .venv/bin/python bench/answer_quality.py --label before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shlex
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.assistant import Assistant
from backend.embeddings.dense import SentenceTransformerEncoder
from backend.embeddings.sparse import SparseEncoder
from backend.evaluation.scoring import rouge_l, token_f1, tokens
from backend.ingest.chunking import chunk_document
from backend.llm.builder import build_router_from_settings
from backend.retrieval import HybridRetriever
from backend.vectors.edge import EdgeVectorStore
from backend.vectors.namespace import point_id
from backend.vectors.types import ChunkPayload, ChunkPoint

COMPANY = "bench"
SOURCE = "stackfaq"
_MARKER_RE = re.compile(r"\s*\[\d{1,3}\]")


@dataclass(frozen=True)
class Faq:
    answers: dict[str, tuple[str, str]]  # doc id -> (title, answer text)
    questions: dict[str, str]
    gold: dict[str, set[str]]  # question id -> doc ids of its thread's answers


def load_faq(path: Path) -> Faq:
    answers: dict[str, tuple[str, str]] = {}
    with (path / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            answers[row["_id"]] = (row.get("title", ""), row["text"])
    questions: dict[str, str] = {}
    with (path / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            questions[row["_id"]] = row["text"]
    gold: dict[str, set[str]] = defaultdict(set)
    with (path / "qrels" / "test.tsv").open(encoding="utf-8") as lines:
        next(lines)  # header
        for line in lines:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                gold[query_id].add(doc_id)
    return Faq(answers, {q: t for q, t in questions.items() if q in gold}, dict(gold))


def machine() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "flags": {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile")},
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


async def index_corpus(
    faq: Faq, store: EdgeVectorStore, dense: SentenceTransformerEncoder, sparse: SparseEncoder
) -> int:
    points: list[ChunkPoint] = []
    texts: list[str] = []
    for doc_id, (title, answer) in faq.answers.items():
        external_id = f"article:{doc_id}"
        document = SourceDocument(
            source=SOURCE,
            external_id=external_id,
            kind=DocumentKind.ARTICLE,
            title=title,
            parts=[DocumentPart(text=answer, label="section")],
            status="published",
            language="en",
        )
        for chunk in chunk_document(document):
            texts.append(chunk.text)
            points.append(
                ChunkPoint(
                    # Named like the indexer names them (by platform id), so reading a
                    # passage's following chunks by id works here as in the product.
                    id=point_id(COMPANY, SOURCE, external_id, chunk.index),
                    dense=[],
                    sparse=sparse.encode_document(chunk.text),
                    payload=ChunkPayload(
                        company_id=COMPANY,
                        kind="article",
                        source=SOURCE,
                        # The gold labels name corpus ids: keep them as document ids.
                        document_id=doc_id,
                        external_id=external_id,
                        chunk_index=chunk.index,
                        title=title,
                        language="en",
                        status="published",
                        text=chunk.text,
                        metadata={"section": chunk.section} if chunk.section else {},
                    ),
                )
            )
    vectors = await dense.embed_documents(texts)
    points = [replace(p, dense=v) for p, v in zip(points, vectors, strict=True)]
    for start in range(0, len(points), 256):
        await store.upsert(COMPANY, points[start : start + 256])
    await store.optimize(COMPANY)
    return len(points)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    faq = load_faq(args.dataset)
    question_ids = sorted(faq.questions)
    sample = sorted(
        random.Random(args.seed).sample(question_ids, min(args.sample, len(question_ids)))
    )
    dense = SentenceTransformerEncoder(
        batch_size=64, torch_threads=args.threads, model_cache_dir=args.model_cache_dir
    )
    sparse = SparseEncoder()
    totals: dict[str, float] = defaultdict(float)
    examples: list[dict[str, Any]] = []
    providers: Counter[str] = Counter()
    async with httpx.AsyncClient() as client:
        router = build_router_from_settings(
            client=client,
            local_base_url=args.llm_base_url,
            local_model=args.llm_model,
            timeout_s=args.llm_timeout,
        )
        with tempfile.TemporaryDirectory(prefix="answer-quality-") as root:
            store = EdgeVectorStore(Path(root), dense_dimension=dense.dimension)
            started = time.perf_counter()
            chunks = await index_corpus(faq, store, dense, sparse)
            index_seconds = time.perf_counter() - started
            assistant = Assistant(
                HybridRetriever(store, dense, sparse),
                router,
                answer_continuation=args.answer_continuation,
            )
            started = time.perf_counter()
            for number, question_id in enumerate(sample):
                result = await assistant.answer(COMPANY, faq.questions[question_id])
                providers[result.provider] += 1
                gold = faq.gold[question_id]
                text = _MARKER_RE.sub("", result.text)
                candidate = tokens(text)
                references = [tokens(faq.answers[d][1]) for d in gold if d in faq.answers]
                f1 = max((token_f1(candidate, ref) for ref in references), default=0.0)
                rouge = max((rouge_l(candidate, ref) for ref in references), default=0.0)
                first_relevant = bool(result.citations) and result.citations[0].document_id in gold
                totals["token_f1"] += f1
                totals["rouge_l"] += rouge
                totals["first_citation_relevant"] += first_relevant
                totals["answered"] += bool(result.citations)
                totals["top_passage_relevant"] += bool(result.context) and (
                    result.context[0].document_id in gold
                )
                totals["answer_chars"] += len(result.text)
                if number < args.examples:
                    examples.append(
                        {
                            "question": faq.questions[question_id],
                            "answer": result.text,
                            "token_f1": round(f1, 3),
                            "first_citation_relevant": first_relevant,
                        }
                    )
            answer_seconds = time.perf_counter() - started
            await store.close()
    metrics = {name: round(value / len(sample), 4) for name, value in sorted(totals.items())}
    metrics["ms_per_answer"] = round(1000 * answer_seconds / len(sample), 1)
    return {
        "benchmark": "answer_quality",
        "label": args.label,
        "answer_continuation": args.answer_continuation,
        "dataset": str(args.dataset),
        "sample": {"questions": len(sample), "of": len(question_ids), "seed": args.seed},
        "chunks": chunks,
        "index_seconds": round(index_seconds, 1),
        "providers": dict(providers),
        "llm": {"base_url": args.llm_base_url, "model": args.llm_model}
        if args.llm_base_url
        else None,
        "results": metrics,
        "examples": examples,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", type=Path, default=Path("/work/shared/datasets/stackfaq/beir_qa_pair")
    )
    parser.add_argument("--sample", type=int, default=300, help="questions in the sample")
    parser.add_argument("--seed", type=int, default=14, help="seed of the sample")
    parser.add_argument("--label", default="run", help="a name for this run (before, after…)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--examples", type=int, default=5, help="answers kept in the report")
    parser.add_argument(
        "--llm-base-url",
        default=None,
        help="an OpenAI-compatible server (llama.cpp, vLLM, Ollama…) routed as 'local'",
    )
    parser.add_argument("--llm-model", default="local", help="the model name sent to it")
    parser.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per call")
    parser.add_argument(
        "--answer-continuation",
        type=int,
        default=2,
        help="following chunks read onto the best article passage (0: none)",
    )
    parser.add_argument("--model-cache-dir", type=Path, default=Path(".helpdesk-data/models"))
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    report = asyncio.run(run(args))
    print("  ".join(f"{k}={v}" for k, v in report["results"].items()))
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = args.output / f"answer_quality-{args.label}-{stamp}.json"
    target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
