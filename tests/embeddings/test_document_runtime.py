"""Documents on ONNX Runtime fp32: PyTorch's vectors (the index must not drift when the
runtime changes), for passages up to the model's 256 tokens, and no torch import once the
model is exported."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from backend.embeddings.dense import SentenceTransformerEncoder
from tests.embeddings.fresh_process import json_from_fresh_process

PASSAGES = [
    "How do I reset my password?",
    "Ticket #4411 — Customer: The invoice for March shows a double charge of 49.00 EUR. "
    "Agent: Refunded one of the two charges; it reaches the card in 5–10 business days.",
    # Longer than 256 tokens: truncated the same way by both runtimes.
    "Wi-Fi setup fails at step 3 on the 2.4 GHz band. " * 40,
    "주문한 상품이 아직 도착하지 않았어요. 배송 조회는 어디서 하나요?",
    "ERROR 0x80070005 access denied when syncing the shared mailbox (Outlook 365, build 2408)",
    "",
]


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


@pytest.mark.slow
def test_onnx_document_vectors_are_pytorchs(tmp_path: Path) -> None:
    encoder = SentenceTransformerEncoder(document_runtime="onnx", model_cache_dir=tmp_path)
    vectors = encoder.encode_batch(PASSAGES)
    assert encoder.document_runtime == "onnx"
    assert list(tmp_path.glob("query-*.onnx.onnx"))  # the fp32 export, kept for next start
    reference = encoder.encode_with_torch(PASSAGES)
    agreement = [_cosine(v, r) for v, r in zip(vectors, reference, strict=True)]
    assert min(agreement) >= 0.9999, agreement
    for vector in vectors:
        assert len(vector) == 384
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_a_later_start_encodes_documents_without_torch(tmp_path: Path) -> None:
    SentenceTransformerEncoder(document_runtime="onnx", model_cache_dir=tmp_path).encode_batch(
        ["warm up"]
    )
    probe = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from backend.embeddings.dense import SentenceTransformerEncoder\n"
        f"encoder = SentenceTransformerEncoder(model_cache_dir=Path({str(tmp_path)!r}))\n"
        "vectors = encoder.encode_batch(['How do I reset my password?', 'Refund please'])\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'sizes': [len(v) for v in vectors],\n"
        "                  'runtime': encoder.document_runtime}))\n"
    )
    # The probe vectors were checked again in the new process, on its CPU, without PyTorch.
    assert json_from_fresh_process(probe) == {
        "torch": False,
        "sizes": [384, 384],
        "runtime": "onnx",
    }
