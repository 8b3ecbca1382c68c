"""The local model's query side on ONNX Runtime: the same weights, exported once, int8.

Why a second runtime: a search embeds its query on the request path. all-MiniLM-L6-v2 in
PyTorch costs about 8 ms of CPU per short query on this project's machines, and its
Python layers hold the GIL that the event loop and the embedded vector engine need too.
The same weights exported to ONNX cost about 4 ms (fp32, identical vectors) or, with the
matrix multiplications quantized to int8 (per-channel weights, dynamic activations),
1.2–1.7 ms, and ONNX Runtime releases the GIL for the whole run. Documents stay on PyTorch
fp32: ingest is batch work, and the index keeps the model's exact vectors. An int8 query
vector agrees with the fp32 one to a cosine of about 0.995 (at least 0.98 is checked when
the file is made); on StackFAQ hybrid nDCG@10 moved from 0.912 to 0.911
(``bench/retrieval_quality.py --query-runtime``).

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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import structlog

QueryRuntime = Literal["torch", "onnx", "onnx-int8"]
QUERY_RUNTIMES: Final[tuple[QueryRuntime, ...]] = ("torch", "onnx", "onnx-int8")

# Bump when the export recipe changes: the digest in the file name covers it.
_RECIPE: Final = "mean-pool-normalize/eager-attention/opset17/matmul-int8-per-channel/v1"
# Cosine to the PyTorch vectors below which an exported model is refused.
_MIN_AGREEMENT: Final[dict[str, float]] = {"onnx": 0.9999, "onnx-int8": 0.98}
_PROBES: Final = (
    "How do I reset my password?",
    "The invoice shows a double charge for March, please refund one of them.",
    "Wi-Fi setup fails at step 3 on the 2.4 GHz band",
    "Can I export all my tickets to CSV?",
    "app crashes on login after the update",
)
_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")

_log = structlog.get_logger("helpdesk.embeddings")


class QueryModelUnavailable(RuntimeError):
    """The model cannot be served by ONNX Runtime (unsupported layout, failed export)."""


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
def model_digest(model_path: Path, runtime: QueryRuntime) -> str:
    """Names the exported file: the model's weights and configs, the recipe, the runtime.
    Hashed once per process (90 MB of weights): installed model files do not change under
    a running service."""
    digest = hashlib.sha256(f"{_RECIPE}\n{runtime}\n".encode())
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json"):
        digest.update((model_path / name).read_bytes())
    with (model_path / "model.safetensors").open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


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


def export_query_model(model_path: Path, target: Path, runtime: QueryRuntime) -> None:
    """Export the sentence-transformers model at ``model_path`` to ``target`` (atomically),
    quantized for ``onnx-int8``, and check it against PyTorch on a few probe queries."""
    if runtime == "torch":
        raise ValueError("the torch runtime has nothing to export")
    max_length = _model_layout(model_path)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import AutoModel

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
        if runtime == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            exported = Path(scratch) / "model-int8.onnx"
            quantize_dynamic(
                str(plain),
                str(exported),
                per_channel=True,
                weight_type=QuantType.QInt8,
                # Only the weight matrices: quantizing the embedding lookups as well costs
                # agreement (worst probe cosine 0.97 instead of 0.985) for no speed.
                op_types_to_quantize=["MatMul"],
            )
        _check_agreement(model_path, exported, runtime, max_length)
        os.replace(exported, target)


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


def _check_agreement(
    model_path: Path, exported: Path, runtime: QueryRuntime, max_length: int
) -> None:
    from backend.embeddings.dense import load_local_model

    reference = load_local_model(model_path).encode(
        list(_PROBES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    candidate = OnnxQueryModel(
        exported, model_path / "tokenizer.json", max_length=max_length, threads=1
    ).encode(_PROBES)
    worst = min(
        sum(float(a) * b for a, b in zip(ref, vec, strict=True))
        for ref, vec in zip(reference, candidate, strict=True)
    )
    if math.isnan(worst) or worst < _MIN_AGREEMENT[runtime]:
        raise QueryModelUnavailable(
            f"the exported {runtime} model disagrees with PyTorch (worst cosine {worst:.4f})"
        )


_loaded: dict[tuple[Path, str, int], OnnxQueryModel] = {}
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
    model_path: Path, runtime: QueryRuntime, *, cache_dir: Path | None = None, threads: int = 1
) -> OnnxQueryModel:
    """The exported model for ``runtime``, made on first use and kept in ``cache_dir`` (or,
    without one, in a scratch folder for this process); one session per process."""
    if runtime == "torch":
        raise ValueError("the torch runtime needs no exported model")
    with _loaded_lock:
        max_length = _model_layout(model_path)
        folder = cache_dir if cache_dir is not None else _scratch_dir()
        target = folder / f"query-{model_digest(model_path, runtime)}.{runtime}.onnx"
        model = _loaded.get((model_path, runtime, threads))
        if model is not None:
            if not target.is_file():
                # Loaded from another folder already: leave a copy for this folder's next start.
                folder.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.{os.getpid()}")
                shutil.copyfile(model.file, partial)
                os.replace(partial, target)
            return model
        if not target.is_file():
            _log.info("exporting the query model", runtime=runtime, file=str(target))
            try:
                export_query_model(model_path, target, runtime)
            except QueryModelUnavailable:
                raise
            except Exception as exc:  # torch/onnx export errors come in many types
                raise QueryModelUnavailable(f"exporting the query model failed: {exc!r}") from exc
        model = OnnxQueryModel(
            target, model_path / "tokenizer.json", max_length=max_length, threads=threads
        )
        _loaded[(model_path, runtime, threads)] = model
        return model
