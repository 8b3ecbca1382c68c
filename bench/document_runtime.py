"""Documents: PyTorch (sentence-transformers, batched) against ONNX Runtime fp32 (one passage
per run), on the passages ingest really embeds.

The passages are StackFAQ tickets as the Freshdesk replay serves them (subject, description
and one agent reply from the gold article), normalized and chunked by the ingest pipeline's
own functions. Each runtime encodes all of them on one thread (``HELPDESK_TORCH_THREADS``'s
default), alternating twice so a burst of other load on a shared machine hits both; the
better round of each is reported, with the cosine of every ONNX vector to PyTorch's.

    .venv/bin/python bench/document_runtime.py --tickets 150

Results go to ``bench/results/document_runtime.{md,json}`` with the command, machine and date.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.embeddings.dense import SentenceTransformerEncoder
from backend.ingest.chunking import chunk_document
from backend.ingest.normalize import normalize_document

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.freshdesk_replay import FreshdeskDataset
from bench.ingest_throughput import machine

RESULTS = Path(__file__).resolve().parent / "results"


def passages(tickets: int) -> list[str]:
    dataset = FreshdeskDataset.load(tickets=tickets)
    articles = {article["id"]: article for article in dataset.articles}
    texts: list[str] = []
    for ticket in dataset.tickets:
        parts = [
            DocumentPart(text=str(ticket["subject"]), label="subject"),
            DocumentPart(
                text=str(ticket.get("description_text") or ""),
                label="description",
                author_role="customer",
            ),
        ]
        article = articles.get(dataset.gold.get(ticket["id"], -1))
        if article is not None:
            parts.append(
                DocumentPart(
                    text=str(article.get("description") or ""),
                    format="html",
                    label="reply",
                    author_role="agent",
                )
            )
        document = SourceDocument(
            source="freshdesk",
            external_id=f"ticket:{ticket['id']}",
            kind=DocumentKind.TICKET,
            title=str(ticket["subject"]),
            status="resolved",
            parts=parts,
        )
        texts.extend(chunk.text for chunk in chunk_document(normalize_document(document)))
    return texts


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    texts = passages(args.tickets)
    host = machine()
    started = datetime.now(UTC)
    encoder = SentenceTransformerEncoder(
        document_runtime="onnx", model_cache_dir=Path(tempfile.mkdtemp(prefix="bench-models-"))
    )
    encoder.encode_batch(["warm up"])
    encoder.encode_with_torch(["warm up"])
    assert encoder.document_runtime == "onnx"
    best = {"torch": math.inf, "onnx": math.inf}
    vectors: dict[str, list[list[float]]] = {}
    for _ in range(args.rounds):
        for runtime, encode in (
            ("torch", encoder.encode_with_torch),
            ("onnx", encoder.encode_batch),
        ):
            begin = time.perf_counter()
            vectors[runtime] = encode(texts)
            best[runtime] = min(best[runtime], time.perf_counter() - begin)
    agreement = [cosine(o, t) for o, t in zip(vectors["onnx"], vectors["torch"], strict=True)]
    return {
        "benchmark": "document_runtime",
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "date": started.isoformat(timespec="seconds"),
        "machine": host,
        "passages": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
        "threads": 1,
        "torch_batch_size": 64,
        "rounds": args.rounds,
        "chunks_per_s": {k: round(len(texts) / v, 1) for k, v in best.items()},
        "speedup": round(best["torch"] / best["onnx"], 2),
        "cosine_onnx_to_torch": {
            "worst": round(min(agreement), 6),
            "mean": round(sum(agreement) / len(agreement), 6),
        },
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def render_markdown(result: dict[str, Any]) -> str:
    m, rate, agree = result["machine"], result["chunks_per_s"], result["cosine_onnx_to_torch"]
    return "\n".join(
        [
            "# Documents: PyTorch against ONNX Runtime fp32",
            "",
            f"- Command: `{result['command']}`",
            f"- Date: {result['date']}",
            f"- Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, torch "
            f"{m['torch']}; load average at start {m['load_average_at_start']}, at end "
            f"{result['load_average_at_end']}",
            f"- Passages: {result['passages']} StackFAQ ticket passages (mean "
            f"{result['mean_chars']} characters), one thread, best of {result['rounds']} "
            "alternating rounds",
            "",
            "| runtime | passages/s |",
            "|---|---:|",
            f"| PyTorch (sentence-transformers, batch {result['torch_batch_size']}) | "
            f"{rate['torch']} |",
            f"| ONNX Runtime fp32 (one passage per run) | {rate['onnx']} |",
            "",
            f"ONNX ÷ PyTorch: **{result['speedup']}×**; cosine of each ONNX vector to "
            f"PyTorch's: worst {agree['worst']}, mean {agree['mean']}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS / "document_runtime")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result["chunks_per_s"]), result["speedup"], result["cosine_onnx_to_torch"])
    if not args.no_write:
        args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        args.output.with_suffix(".md").write_text(render_markdown(result))
        print(f"wrote {args.output.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
