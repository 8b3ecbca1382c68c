"""The local model's query side on ONNX Runtime, checked against the real PyTorch model.

The int8 kernels differ between CPUs (see ``backend.embeddings.query_model``), and CI may
run on a CPU without VNNI. So besides the runtime this machine picks, the tests play the
other CPU twice: through the injected CPU-flags reader (the choice a CPU without VNNI gets,
run here), and through an emulation of the AVX2 integer kernels (``int8_kernels``), which
computes what that CPU's arithmetic would give for each export.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import onnx
import pytest
from tokenizers import Tokenizer

from backend.embeddings.dense import SentenceTransformerEncoder, default_model_path
from backend.embeddings.query_model import (
    ExportVariant,
    QueryRuntime,
    choose_query_model,
    export_query_model,
    exported_file_name,
    int8_weights_for,
    load_query_model,
    model_digest,
    read_cpu_flags,
)
from tests.embeddings import int8_kernels
from tests.embeddings.fresh_process import json_from_fresh_process

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

# The flags of the CPU CI failed on (a 2-core AMD EPYC: AVX2 and FMA, no AVX-512, no VNNI).
NO_VNNI = frozenset({"sse4_2", "avx", "avx2", "fma", "bmi2"})


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def assert_agrees(vectors: list[list[float]], reference: list[list[float]], worst: float) -> None:
    agreement = [cosine(v, r) for v, r in zip(vectors, reference, strict=True)]
    assert min(agreement) >= worst, agreement
    assert sum(agreement) / len(agreement) >= 0.99, agreement
    # Ranking is what matters: each question is still nearest to its own exact vector.
    for i, vector in enumerate(vectors):
        assert max(range(len(reference)), key=lambda j: cosine(vector, reference[j])) == i


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every export variant, made once for the module (each costs seconds of PyTorch)."""
    folder = tmp_path_factory.mktemp("query-models")
    path = default_model_path()
    for variant in ("onnx", "onnx-int8-u8"):
        load_query_model(path, variant, cache_dir=folder)
    # s8 unchecked: a CPU without VNNI (CI's, maybe) rightly refuses it, and the emulation
    # below needs the file whatever this CPU is.
    s8 = folder / exported_file_name(path, "onnx-int8-s8")
    export_query_model(path, s8, "onnx-int8-s8", check=False)
    return folder


@pytest.fixture(scope="module")
def reference() -> list[list[float]]:
    return SentenceTransformerEncoder(query_runtime="torch").encode_with_torch(QUESTIONS)


@pytest.mark.slow
@pytest.mark.parametrize(("runtime", "worst"), [("onnx", 0.9999), ("onnx-int8", 0.98)])
async def test_onnx_query_vectors_agree_with_pytorch(
    tmp_path: Path, runtime: QueryRuntime, worst: float
) -> None:
    # This machine's own choice, whatever its CPU: the same thresholds everywhere.
    encoder = SentenceTransformerEncoder(
        query_runtime=runtime, document_runtime="torch", model_cache_dir=tmp_path
    )
    await encoder.warm_up()
    assert encoder.query_runtime == runtime
    details = encoder.query_runtime_details()
    variant = details["variant"]
    exported = sorted(tmp_path.iterdir())  # noqa: ASYNC240 (a test's tmp folder)
    assert [p.name for p in exported] == [exported_file_name(default_model_path(), variant)]
    if runtime == "onnx-int8":
        weights, _ = int8_weights_for(read_cpu_flags())
        assert variant == f"onnx-int8-{weights}"
    assert details["refused"] == []
    assert details["probe_agreement"]["worst"] >= worst

    reference = encoder.encode_batch(QUESTIONS)
    vectors = [await encoder.embed_query(q) for q in QUESTIONS]
    assert_agrees(vectors, reference, worst)
    for vector in vectors:
        assert len(vector) == 384
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
async def test_a_cpu_without_vnni_gets_u8_weights_that_agree_with_pytorch(
    exports: Path, reference: list[list[float]]
) -> None:
    encoder = SentenceTransformerEncoder(
        query_runtime="onnx-int8", model_cache_dir=exports, cpu_flags=lambda: NO_VNNI
    )
    await encoder.warm_up()
    details = encoder.query_runtime_details()
    assert encoder.query_runtime == "onnx-int8"
    assert details["variant"] == "onnx-int8-u8"
    assert "no VNNI" in details["reason"]
    assert details["cpu"]["avx2"] is True
    assert details["cpu"]["avx512_vnni"] is False
    assert details["refused"] == []
    vectors = [await encoder.embed_query(q) for q in QUESTIONS]
    assert_agrees(vectors, reference, 0.98)


def test_the_int8_weights_follow_the_cpu_flags(tmp_path: Path) -> None:
    assert int8_weights_for(NO_VNNI)[0] == "u8"
    assert int8_weights_for(NO_VNNI | {"avx512f", "avx512bw"})[0] == "u8"  # Skylake-X
    assert int8_weights_for(frozenset())[0] == "u8"  # unknown CPU: the exact kernel
    assert int8_weights_for(NO_VNNI | {"avx512bw", "avx512_vnni"})[0] == "s8"
    assert int8_weights_for(NO_VNNI | {"avx_vnni"})[0] == "s8"  # Alder Lake and later
    assert int8_weights_for(NO_VNNI | {"amx_int8"})[0] == "s8"

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
        "flags\t\t: fpu sse4_2 avx avx2 fma bmi2\n\nprocessor\t: 1\n"
    )
    assert read_cpu_flags(cpuinfo) == frozenset({"fpu", "sse4_2", "avx", "avx2", "fma", "bmi2"})
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert read_cpu_flags(cpuinfo) == frozenset({"fp", "asimd", "asimddp"})
    assert read_cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.slow
def test_on_avx2_arithmetic_s8_weights_drift_and_u8_weights_agree(
    exports: Path, reference: list[list[float]]
) -> None:
    # The CPU CI failed on, emulated: the s8 export (the former default) saturates there,
    # the u8 export cannot, and its vectors keep the agreement the test asks of any CPU.
    path = default_model_path()
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()  # one query per run, as the service encodes them
    tokenizer.enable_truncation(max_length=256)
    token_ids = [encoding.ids for encoding in tokenizer.encode_batch(QUESTIONS)]

    u8_file = exports / exported_file_name(path, "onnx-int8-u8")
    u8_weights = [
        node.input[1]
        for node in onnx.load(str(u8_file)).graph.node
        if node.op_type == "MatMulInteger"
    ]
    initializers = {i.name: i for i in onnx.load(str(u8_file)).graph.initializer}
    assert u8_weights
    # No u8×s8 product anywhere in the u8 file: no kernel that can saturate is reachable.
    assert all(
        initializers[name].data_type == onnx.TensorProto.UINT8
        for name in u8_weights
        if name in initializers
    )

    int8_kernels.MatMulInteger.saturated_pairs = 0
    u8_vectors = int8_kernels.encode_as_avx2(u8_file, token_ids)
    assert int8_kernels.MatMulInteger.saturated_pairs == 0
    assert_agrees(u8_vectors, reference, 0.98)

    s8_vectors = int8_kernels.encode_as_avx2(
        exports / exported_file_name(path, "onnx-int8-s8"), token_ids
    )
    assert int8_kernels.MatMulInteger.saturated_pairs > 0
    # CI measured 0.96918 on that CPU; the emulation gives the same: it is faithful.
    assert min(cosine(v, r) for v, r in zip(s8_vectors, reference, strict=True)) < 0.98


def _copy_model(source: Path, target: Path) -> Path:
    """The same model files under another path: a separate entry in the process's cache of
    loaded sessions, so a file placed for it is really loaded."""
    target.mkdir()
    for item in source.iterdir():
        (target / item.name).symlink_to(item)
    return target


def _with_wrong_reference(exports: Path, variant: ExportVariant, folder: Path) -> None:
    """The variant's file with probe vectors it cannot reproduce (each probe's reference is
    another probe's vector), as a file whose arithmetic drifts on this CPU would look."""
    model = onnx.load(str(exports / exported_file_name(default_model_path(), variant)))
    for entry in model.metadata_props:
        if entry.key == "helpdesk.probe_reference":
            data = json.loads(entry.value)
            data["vectors"] = data["vectors"][1:] + data["vectors"][:1]
            entry.value = json.dumps(data)
    folder.mkdir(exist_ok=True)
    onnx.save(model, str(folder / exported_file_name(default_model_path(), variant)))


@pytest.mark.slow
def test_a_model_that_disagrees_on_this_cpu_falls_back_to_fp32_then_pytorch(
    exports: Path, tmp_path: Path
) -> None:
    model_path = _copy_model(default_model_path(), tmp_path / "model")
    cache = tmp_path / "cache"
    weights, _ = int8_weights_for(read_cpu_flags())
    _with_wrong_reference(exports, f"onnx-int8-{weights}", cache)

    choice = choose_query_model(model_path, "onnx-int8", cache_dir=cache)
    assert choice.runtime == "onnx"
    assert choice.variant == "onnx"
    (refusal,) = choice.refused
    assert refusal.startswith(f"onnx-int8-{weights}: ")
    assert "disagrees with PyTorch on this CPU" in refusal
    assert choice.details()["probe_agreement"]["worst"] >= 0.9999

    other_path = _copy_model(default_model_path(), tmp_path / "model-2")
    _with_wrong_reference(exports, "onnx", cache)
    choice = choose_query_model(other_path, "onnx-int8", cache_dir=cache)
    assert choice.runtime == "torch"
    assert choice.model is None
    assert [r.split(":")[0] for r in choice.refused] == [f"onnx-int8-{weights}", "onnx"]
    assert choice.details()["reason"] == "no ONNX model agreed with PyTorch here"


@pytest.mark.slow
async def test_a_query_vector_does_not_depend_on_its_neighbours_in_a_batch(
    tmp_path: Path,
) -> None:
    # int8 activations are scaled per run: batched, one query would shift another's vector.
    encoder = SentenceTransformerEncoder(query_runtime="onnx-int8", model_cache_dir=tmp_path)
    alone = encoder.encode_queries([QUESTIONS[1]])[0]
    together = encoder.encode_queries(QUESTIONS)
    assert together[1] == alone


def test_digest_names_the_model_and_the_variant() -> None:
    path = default_model_path()
    assert model_digest(path, "onnx") != model_digest(path, "onnx-int8-s8")
    assert model_digest(path, "onnx-int8-s8") != model_digest(path, "onnx-int8-u8")
    assert model_digest(path, "onnx-int8-u8") == model_digest(path, "onnx-int8-u8")


@pytest.mark.slow
def test_a_later_start_loads_the_exported_file_without_torch(tmp_path: Path) -> None:
    first = choose_query_model(default_model_path(), "onnx-int8", cache_dir=tmp_path)
    (exported,) = tmp_path.glob("query-*.onnx-int8-*.onnx")
    made = exported.stat().st_mtime_ns
    probe = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from backend.embeddings.query_model import choose_query_model\n"
        "from backend.embeddings.dense import default_model_path\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "choice = choose_query_model(default_model_path(), 'onnx-int8', cache_dir=folder)\n"
        "vector = choice.model.encode(['How do I reset my password?'])[0]\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'size': len(vector),\n"
        "                  'variant': choice.variant, 'refused': list(choice.refused)}))\n"
    )
    # The probes were checked again in the new process, on its CPU, without PyTorch.
    assert json_from_fresh_process(probe) == {
        "torch": False,
        "size": 384,
        "variant": first.variant,
        "refused": [],
    }
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
    # Documents too: the ONNX export is refused for them as well.
    assert vector == pytest.approx(encoder.encode_batch(["How do I reset my password?"])[0])
    assert encoder.document_runtime == "torch"
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_the_configuration_can_force_the_int8_weights(exports: Path) -> None:
    # HELPDESK_EMBEDDING_INT8_WEIGHTS=u8 on a VNNI CPU: what a CPU without VNNI would run.
    choice = choose_query_model(
        default_model_path(),
        "onnx-int8",
        cache_dir=exports,
        cpu_flags=lambda: NO_VNNI | {"avx512_vnni"},
        int8_weights="u8",
    )
    assert choice.variant == "onnx-int8-u8"
    assert choice.reason == "int8: u8 weights set by the configuration"
