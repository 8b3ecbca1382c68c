"""The local model's query side on ONNX Runtime, checked against the real PyTorch model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.embeddings.dense import SentenceTransformerEncoder, default_model_path
from backend.embeddings.query_model import QueryRuntime, load_query_model, model_digest

QUESTIONS = [
    "How do I reset my password?",
    "The invoice shows a double charge for March",
    "Wi-Fi setup fails at step 3",
    "Can I export every ticket to a CSV file?",
    "My order arrived damaged, what now?",
    "Two-factor codes never arrive by SMS",
    "비밀번호를 재설정하려면 어떻게 하나요?",
    "How do I cancel my subscription before the renewal date and get a refund for the "
    "remaining months, given that I was charged twice last year as well?",
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize(("runtime", "worst"), [("onnx", 0.9999), ("onnx-int8", 0.98)])
async def test_onnx_query_vectors_agree_with_pytorch(
    tmp_path: Path, runtime: QueryRuntime, worst: float
) -> None:
    encoder = SentenceTransformerEncoder(query_runtime=runtime, model_cache_dir=tmp_path)
    await encoder.warm_up()
    assert encoder.query_runtime == runtime
    exported = sorted(tmp_path.iterdir())  # noqa: ASYNC240 (a test's tmp folder)
    assert [p.name for p in exported] == [
        f"query-{model_digest(default_model_path(), runtime)}.{runtime}.onnx"
    ]

    reference = encoder.encode_batch(QUESTIONS)
    vectors = [await encoder.embed_query(q) for q in QUESTIONS]
    agreement = [cosine(v, r) for v, r in zip(vectors, reference, strict=True)]
    assert min(agreement) >= worst
    assert sum(agreement) / len(agreement) >= 0.99
    for vector in vectors:
        assert len(vector) == 384
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-4)
    # Ranking is what matters: each question is still nearest to its own exact vector.
    for i, vector in enumerate(vectors):
        assert max(range(len(reference)), key=lambda j: cosine(vector, reference[j])) == i


@pytest.mark.slow
async def test_a_query_vector_does_not_depend_on_its_neighbours_in_a_batch(
    tmp_path: Path,
) -> None:
    # int8 activations are scaled per run: batched, one query would shift another's vector.
    encoder = SentenceTransformerEncoder(query_runtime="onnx-int8", model_cache_dir=tmp_path)
    alone = encoder.encode_queries([QUESTIONS[1]])[0]
    together = encoder.encode_queries(QUESTIONS)
    assert together[1] == alone


def test_digest_names_the_model_and_the_runtime() -> None:
    path = default_model_path()
    assert model_digest(path, "onnx") != model_digest(path, "onnx-int8")
    assert model_digest(path, "onnx-int8") == model_digest(path, "onnx-int8")


@pytest.mark.slow
def test_a_later_start_loads_the_exported_file_without_torch(tmp_path: Path) -> None:
    load_query_model(default_model_path(), "onnx-int8", cache_dir=tmp_path)
    (exported,) = tmp_path.glob("query-*.onnx-int8.onnx")
    made = exported.stat().st_mtime_ns
    probe = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from backend.embeddings.query_model import load_query_model\n"
        "from backend.embeddings.dense import default_model_path\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "model = load_query_model(default_model_path(), 'onnx-int8', cache_dir=folder)\n"
        "vector = model.encode(['How do I reset my password?'])[0]\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'size': len(vector)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert json.loads(done.stdout.splitlines()[-1]) == {"torch": False, "size": 384}
    assert exported.stat().st_mtime_ns == made  # used as it was, not exported again


@pytest.mark.slow
async def test_a_model_the_export_cannot_reproduce_falls_back_to_pytorch(tmp_path: Path) -> None:
    # The same weights with CLS pooling: the export only knows mean pooling, so it refuses,
    # and queries go through PyTorch (the exact vectors) instead.
    source = default_model_path()
    model = tmp_path / "cls-model"
    model.mkdir()
    for item in source.iterdir():
        (model / item.name).symlink_to(item)
    (model / "1_Pooling").unlink()
    (model / "1_Pooling").mkdir()
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    pooling |= {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))

    encoder = SentenceTransformerEncoder(
        model_path=model, query_runtime="onnx-int8", model_cache_dir=tmp_path / "cache"
    )
    vector = await encoder.embed_query("How do I reset my password?")
    assert encoder.query_runtime == "torch"
    assert vector == pytest.approx(encoder.encode_batch(["How do I reset my password?"])[0])
    assert not (tmp_path / "cache").exists()
