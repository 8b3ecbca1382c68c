"""The local model's query side on ONNX Runtime: the same weights, exported once, int8.

Why a second runtime: a search embeds its query on the request path. all-MiniLM-L6-v2 in
PyTorch costs about 8 ms of CPU per short query on this project's machines, and its
Python layers hold the GIL that the event loop and the embedded vector engine need too.
The same weights exported to ONNX cost about 4 ms (fp32, identical vectors) or, with the
matrix multiplications quantized to int8 (per-channel weights, dynamic activations),
1.2–1.7 ms, and ONNX Runtime releases the GIL for the whole run. Documents use the fp32
export only (``SentenceTransformerEncoder``'s ``document_runtime``): the index keeps the
model's exact vectors, and one passage per run, without a batch's padding, is still about
1.5× faster than batched PyTorch on one core.

Which int8 weights depend on the CPU, because ONNX Runtime's int8 kernels do. Activations
are u8. With s8 weights, CPUs with VNNI or AMX multiply-accumulate u8×s8 straight into 32
bits, but the AVX2 (and AVX-512 without VNNI) kernel first adds each pair of products into a
saturating 16-bit integer (``vpmaddubsw``): 2 × 255 × 127 does not fit, and on a 2-core AMD
EPYC without VNNI the worst test query fell to a cosine of 0.969 against PyTorch. u8
weights go through a u8×u8 kernel that widens both sides to 16 bits before multiplying
(``vpmaddwd`` into 32 bits) and cannot saturate on any CPU. So: s8 weights where the CPU
has VNNI/AMX (fastest there), u8 weights everywhere else (exact integer arithmetic, at
about twice the s8 cost on a VNNI CPU). Weights in 7 bits (``reduce_range``), ONNX
Runtime's own advice for CPUs without VNNI, cannot saturate either but cost too much
agreement (worst cosine 0.977). Measured on this project's machine, worst and mean cosine
to PyTorch over the agreement test's questions and the probes: s8 0.983 / 0.994, u8 0.987
/ 0.994; s8 under an emulation of the AVX2 kernel 0.969 (the CI figure, to four digits),
u8 under it 0.987 (``tests/embeddings/test_query_model.py``).

Every start checks the model it loads on this very CPU: the file carries the PyTorch
vectors of a few probe queries (in several languages: saturation showed first on Korean),
and a session whose vectors disagree is refused, falling back to fp32 ONNX, then PyTorch;
the choice and why are logged and shown in ``/readyz``. That needs no torch at start-up.

Queries are encoded one at a time, never batched: dynamic quantization scales activations
per tensor, so in a batch one query's vector would depend on which others share it.

The exported file is made on first use (a few seconds, needs torch) and kept under the
cache folder, named by a digest of the model files and the export recipe, so a changed
model or recipe never loads a stale file.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import structlog

QueryRuntime = Literal["torch", "onnx", "onnx-int8"]
QUERY_RUNTIMES: Final[tuple[QueryRuntime, ...]] = ("torch", "onnx", "onnx-int8")
# How the int8 file stores its weights (see the module docstring).
Int8Weights = Literal["s8", "u8"]
# What the operator asks for: ``auto`` follows the CPU flags.
Int8Choice = Literal["auto", "s8", "u8"]
# What an exported file holds: the runtime, and for int8 the weight type.
ExportVariant = Literal["onnx", "onnx-int8-s8", "onnx-int8-u8"]

# Bump when the export recipe changes: the digest in the file name covers it.
_RECIPE: Final = "mean-pool-normalize/eager-attention/opset17/matmul-int8-per-channel/v2-probes"
# The agreement a model must keep with the PyTorch vectors, checked when the file is made
# and again at every start on the CPU that serves it: (worst cosine, mean cosine).
_MIN_AGREEMENT: Final[dict[ExportVariant, tuple[float, float]]] = {
    "onnx": (0.9999, 0.9999),
    "onnx-int8-s8": (0.98, 0.99),
    "onnx-int8-u8": (0.98, 0.99),
}
# Short and long, and not only English: int8 drift shows first on scripts whose tokens push
# activations to the ends of their range (a Korean query saturated first on AVX2).
_PROBES: Final = (
    "How do I reset my password?",
    "The invoice shows a double charge for March, please refund one of them.",
    "Wi-Fi setup fails at step 3 on the 2.4 GHz band",
    "Can I export all my tickets to CSV?",
    "app crashes on login after the update",
    "주문한 상품이 아직 도착하지 않았어요. 배송 조회는 어디서 하나요?",
    "결제가 두 번 되었는데 환불 받을 수 있나요?",
    "パスワードを忘れました。どうすればいいですか？",
    "Meine Rechnung ist doppelt abgebucht worden, bitte um Erstattung.",
    "¿Cómo cambio la dirección de envío de mi pedido?",
    "ERROR 0x80070005 access denied when syncing the shared mailbox (Outlook 365, build 2408)",
)
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
# The exported file's metadata key holding the probes' PyTorch vectors.
_REFERENCE_KEY: Final = "helpdesk.probe_reference"

# The CPU flags (as Linux names them in /proc/cpuinfo) that decide the int8 kernels.
# VNNI (AVX-512 or the VEX form) and AMX accumulate u8×s8 products in 32 bits.
_WIDE_INT8_FLAGS: Final = ("avx512_vnni", "avx_vnni", "amx_int8")
REPORTED_CPU_FLAGS: Final = ("avx2", "fma", "avx512bw", *_WIDE_INT8_FLAGS)

CpuFlagsReader = Callable[[], frozenset[str]]

_log = structlog.get_logger("helpdesk.embeddings")


class QueryModelUnavailable(RuntimeError):
    """The model cannot be served by ONNX Runtime (unsupported layout, failed export, or
    vectors that disagree with PyTorch on this CPU)."""


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's instruction-set flags as Linux reports them; empty where there is no
    /proc/cpuinfo (then the int8 choice takes the kernel that is exact everywhere)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        # x86 says "flags", ARM says "Features".
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def int8_weights_for(flags: frozenset[str]) -> tuple[Int8Weights, str]:
    """The int8 weight type whose ONNX Runtime kernel cannot saturate on a CPU with these
    flags, and why (for the log and ``/readyz``)."""
    wide = [flag for flag in _WIDE_INT8_FLAGS if flag in flags]
    if wide:
        return "s8", (
            f"the CPU has {', '.join(wide)}: u8×s8 products accumulate in 32 bits, "
            "so the fastest int8 kernel is exact"
        )
    return "u8", (
        "the CPU has no VNNI/AMX: its u8×s8 kernel (vpmaddubsw) adds pairs of products in "
        "16 bits and saturates, so the weights are u8 (the u8×u8 kernel widens to 16 bits "
        "first and cannot saturate)"
    )


def cpu_summary(flags: frozenset[str]) -> dict[str, bool]:
    """The flags that matter to the query runtime, for logs, ``/readyz`` and benchmarks."""
    return {flag: flag in flags for flag in REPORTED_CPU_FLAGS}


def _model_layout(model_path: Path) -> int:
    """The maximum sequence length; refuses layouts the export does not reproduce."""
    try:
        modules = json.loads((model_path / "modules.json").read_text())
        pooling = json.loads((model_path / "1_Pooling" / "config.json").read_text())
        config = json.loads((model_path / "sentence_bert_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise QueryModelUnavailable(f"cannot read the model layout: {exc}") from exc
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        raise QueryModelUnavailable(f"unsupported module layout {kinds}")
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise QueryModelUnavailable(f"unsupported pooling {sorted(modes)}")
    if not (model_path / "tokenizer.json").is_file():
        raise QueryModelUnavailable("the model has no tokenizer.json")
    return int(config.get("max_seq_length", 256))


@functools.cache
def model_digest(model_path: Path, variant: ExportVariant) -> str:
    """Names the exported file: the model's weights and configs, the recipe, the variant.
    Hashed once per process (90 MB of weights): installed model files do not change under
    a running service."""
    digest = hashlib.sha256(f"{_RECIPE}\n{variant}\n".encode())
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json"):
        digest.update((model_path / name).read_bytes())
    with (model_path / "model.safetensors").open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


def exported_file_name(model_path: Path, variant: ExportVariant) -> str:
    return f"query-{model_digest(model_path, variant)}.{variant}.onnx"


@dataclass(frozen=True)
class Agreement:
    """Cosines of a runtime's probe vectors to PyTorch's, measured on this CPU."""

    worst: float
    mean: float

    def acceptable(self, variant: ExportVariant) -> bool:
        least_worst, least_mean = _MIN_AGREEMENT[variant]
        if math.isnan(self.worst) or math.isnan(self.mean):
            return False
        return self.worst >= least_worst and self.mean >= least_mean

    @classmethod
    def between(
        cls, reference: Sequence[Sequence[float]], candidate: Sequence[Sequence[float]]
    ) -> Agreement:
        cosines = [
            sum(float(a) * float(b) for a, b in zip(ref, vec, strict=True))
            for ref, vec in zip(reference, candidate, strict=True)
        ]
        return cls(worst=min(cosines), mean=sum(cosines) / len(cosines))


class OnnxQueryModel:
    """One exported model in one ONNX Runtime session; thread-safe (``run`` is)."""

    def __init__(
        self, onnx_file: Path, tokenizer_file: Path, *, max_length: int, threads: int
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        # The request path runs one query per call: more threads only contend with the
        # event loop for the few cores; parallelism comes from concurrent requests.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._feeds = [i.name for i in self._session.get_inputs()]
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(max_length=max_length)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self.file = onnx_file
        # Set by load_query_model once the probes agree on this CPU.
        self.agreement: Agreement | None = None

    def reference(self) -> list[list[float]] | None:
        """The probes' PyTorch vectors stored in the file at export, if any."""
        stored = self._session.get_modelmeta().custom_metadata_map.get(_REFERENCE_KEY)
        if stored is None:
            return None
        data = json.loads(stored)
        if data.get("probes") != list(_PROBES):
            return None
        return [[float(x) for x in row] for row in data["vectors"]]

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        """L2-normalized vectors, one query per session run (see the module docstring)."""
        import numpy as np

        vectors: list[list[float]] = []
        for encoding in self._tokenizer.encode_batch(list(texts)):
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feed = {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            }
            (output,) = self._session.run(None, {name: feed[name] for name in self._feeds})
            vectors.append(output[0].tolist())
        return vectors


def export_query_model(
    model_path: Path, target: Path, variant: ExportVariant, *, check: bool = True
) -> None:
    """Export the sentence-transformers model at ``model_path`` to ``target`` (atomically),
    quantized for the int8 variants, with the probes' PyTorch vectors inside, and check it
    against PyTorch on those probes (``check=False`` only for studying a variant this CPU
    would refuse, as the tests' emulation of other CPUs does)."""
    max_length = _model_layout(model_path)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import onnx
    import torch
    from transformers import AutoModel

    from backend.embeddings.dense import load_local_model

    # Eager attention exports as plain MatMul/Softmax nodes, which ONNX Runtime runs about
    # 40 % faster for one short query than the exported scaled-dot-product form.
    transformer = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class _Embedder(torch.nn.Module):
        """Transformer → mean over the real tokens → L2 norm, as the three modules do."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    reference = load_local_model(model_path).encode(
        list(_PROBES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as scratch,
        _quiet_export(),
    ):
        plain = Path(scratch) / "model.onnx"
        sample = torch.ones((1, 8), dtype=torch.int64)
        dynamic = {"input_ids": {0: "batch", 1: "tokens"}}
        dynamic |= {"attention_mask": dynamic["input_ids"], "token_type_ids": dynamic["input_ids"]}
        with torch.no_grad():
            torch.onnx.export(
                _Embedder(transformer),
                (sample, sample, torch.zeros_like(sample)),
                str(plain),
                input_names=list(_INPUTS),
                output_names=["embedding"],
                dynamic_axes={**dynamic, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        exported = plain
        if variant != "onnx":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            exported = Path(scratch) / "model-int8.onnx"
            quantize_dynamic(
                str(plain),
                str(exported),
                per_channel=True,
                weight_type=QuantType.QInt8 if variant == "onnx-int8-s8" else QuantType.QUInt8,
                # Only the weight matrices: quantizing the embedding lookups as well costs
                # agreement (worst probe cosine 0.97 instead of 0.985) for no speed.
                op_types_to_quantize=["MatMul"],
            )
        graph = onnx.load(str(exported))
        entry = graph.metadata_props.add()
        entry.key = _REFERENCE_KEY
        entry.value = json.dumps(
            {
                "probes": list(_PROBES),
                "vectors": [[round(float(x), 7) for x in row] for row in reference],
            }
        )
        stamped = Path(scratch) / "stamped.onnx"
        onnx.save(graph, str(stamped))
        if check:
            _verify(
                OnnxQueryModel(
                    stamped, model_path / "tokenizer.json", max_length=max_length, threads=1
                ),
                variant,
            )
        os.replace(stamped, target)


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """The tracer warns about constructs the checked export handles (shape-dependent
    branches, index ops), and the quantizer advises a pre-processing step through the root
    logger; neither is actionable for an operator, so neither reaches the service log."""
    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)


def _verify(model: OnnxQueryModel, variant: ExportVariant) -> Agreement:
    """Encode the probes on this CPU and compare them with the PyTorch vectors in the file;
    refuse the model when they disagree (a kernel that saturates here, a damaged file)."""
    reference = model.reference()
    if reference is None:
        raise QueryModelUnavailable(f"the {variant} file carries no probe reference")
    agreement = Agreement.between(reference, model.encode(_PROBES))
    if not agreement.acceptable(variant):
        least_worst, least_mean = _MIN_AGREEMENT[variant]
        raise QueryModelUnavailable(
            f"the {variant} model disagrees with PyTorch on this CPU (worst cosine "
            f"{agreement.worst:.4f}, mean {agreement.mean:.4f}; needs {least_worst} and "
            f"{least_mean})"
        )
    model.agreement = agreement
    return agreement


_loaded: dict[tuple[Path, ExportVariant, int], OnnxQueryModel] = {}
_loaded_lock = threading.Lock()
_scratch: Path | None = None


def _scratch_dir() -> Path:
    """A folder for exports that have no cache folder, kept for the life of the process."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="helpdesk-query-model-"))
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def load_query_model(
    model_path: Path, variant: ExportVariant, *, cache_dir: Path | None = None, threads: int = 1
) -> OnnxQueryModel:
    """The exported model for ``variant``, made on first use and kept in ``cache_dir`` (or,
    without one, in a scratch folder for this process), checked against the PyTorch probe
    vectors on this CPU; one session per process."""
    with _loaded_lock:
        max_length = _model_layout(model_path)
        folder = cache_dir if cache_dir is not None else _scratch_dir()
        target = folder / exported_file_name(model_path, variant)
        model = _loaded.get((model_path, variant, threads))
        if model is not None:
            if not target.is_file():
                # Loaded from another folder already: leave a copy for this folder's next start.
                folder.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.{os.getpid()}")
                shutil.copyfile(model.file, partial)
                os.replace(partial, target)
            return model
        if not target.is_file():
            _log.info("exporting the query model", variant=variant, file=str(target))
            try:
                export_query_model(model_path, target, variant)
            except QueryModelUnavailable:
                raise
            except Exception as exc:  # torch/onnx export errors come in many types
                raise QueryModelUnavailable(f"exporting the query model failed: {exc!r}") from exc
        try:
            model = OnnxQueryModel(
                target, model_path / "tokenizer.json", max_length=max_length, threads=threads
            )
        except Exception as exc:  # a truncated or foreign file: ONNX Runtime's many errors
            raise QueryModelUnavailable(f"loading {target.name} failed: {exc!r}") from exc
        # A file made on another CPU (a copied cache folder, a baked image) is checked here too.
        _verify(model, variant)
        _loaded[(model_path, variant, threads)] = model
        return model


@dataclass(frozen=True)
class QueryModelChoice:
    """Which runtime encodes queries in this process, and why: for the log and ``/readyz``."""

    requested: QueryRuntime
    runtime: QueryRuntime
    model: OnnxQueryModel | None
    reason: str
    cpu: dict[str, bool]
    variant: ExportVariant | None = None
    refused: tuple[str, ...] = field(default=())

    def details(self) -> dict[str, Any]:
        agreement = self.model.agreement if self.model is not None else None
        return {
            "requested": self.requested,
            "runtime": self.runtime,
            "variant": self.variant,
            "reason": self.reason,
            "refused": list(self.refused),
            "cpu": self.cpu,
            "probe_agreement": (
                None
                if agreement is None
                else {"worst": round(agreement.worst, 4), "mean": round(agreement.mean, 4)}
            ),
        }


def choose_query_model(
    model_path: Path,
    requested: QueryRuntime,
    *,
    cache_dir: Path | None = None,
    threads: int = 1,
    cpu_flags: CpuFlagsReader = read_cpu_flags,
    int8_weights: Int8Choice = "auto",
) -> QueryModelChoice:
    """The first runtime, from ``requested`` down to fp32 ONNX and then PyTorch, whose
    vectors agree with PyTorch on this CPU. ``cpu_flags`` is injectable so tests can play
    a CPU without VNNI; ``int8_weights`` forces the int8 weight type (the probe check
    still refuses a forced one that drifts here)."""
    flags = cpu_flags()
    cpu = cpu_summary(flags)
    candidates: list[tuple[ExportVariant, str]] = []
    if requested == "onnx-int8":
        weights, why = int8_weights_for(flags)
        if int8_weights != "auto":
            weights, why = int8_weights, f"{int8_weights} weights set by the configuration"
        candidates.append(("onnx-int8-s8" if weights == "s8" else "onnx-int8-u8", f"int8: {why}"))
    if requested in ("onnx-int8", "onnx"):
        candidates.append(("onnx", "fp32 ONNX: the exact vectors"))
    refused: list[str] = []
    for variant, reason in candidates:
        try:
            model = load_query_model(model_path, variant, cache_dir=cache_dir, threads=threads)
        except QueryModelUnavailable as exc:
            refused.append(f"{variant}: {exc}")
            continue
        runtime: QueryRuntime = "onnx" if variant == "onnx" else "onnx-int8"
        if refused:
            reason = f"{reason} (after refusing {'; '.join(refused)})"
        return QueryModelChoice(
            requested, runtime, model, reason, cpu, variant=variant, refused=tuple(refused)
        )
    reason = "configured" if requested == "torch" else "no ONNX model agreed with PyTorch here"
    return QueryModelChoice(requested, "torch", None, reason, cpu, refused=tuple(refused))
