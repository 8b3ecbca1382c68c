"""ONNX Runtime's x86 int8 matrix kernels, emulated in numpy, to run an exported query model
as a CPU without VNNI would, on a machine that has VNNI.

ONNX Runtime picks its integer GEMM kernel from the CPU (MLAS, onnxruntime/core/mlas/lib):
- u8×s8 with AVX2, or AVX-512BW without VNNI (``QgemmU8S8KernelAvx2.S``,
  ``QgemmU8S8KernelAvx512Core``): ``vpmaddubsw`` multiplies u8 by s8 and adds each pair of
  neighbouring products (k, k+1) into a signed 16-bit integer, saturating; ``vpmaddwd`` with
  ones then widens the pair sums to 32 bits.
- u8×s8 with VNNI or AMX (``vpdpbusd``, ``tdpbusd``): products accumulate in 32 bits, exact.
- u8×u8 on every x86 level (``QgemmU8U8KernelAvx2.S``: "elements from matrix A have been
  zero extended to 16-bits"): ``vpmaddwd`` on 16-bit values into 32 bits, exact.
Zero points are applied afterwards through row and column sums, on the raw bytes.

``onnx.reference`` runs the rest of the graph as written; only ``MatMulInteger`` is replaced.
The emulation reproduces the figure CI reported on an AMD EPYC without VNNI for the former
s8 export (worst cosine 0.96918 on the agreement test's questions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

INT16_MIN, INT16_MAX = -32768, 32767


class MatMulInteger(OpRun):  # the class name is the op type it replaces
    """``MatMulInteger`` as the AVX2 kernels compute it (see the module docstring)."""

    saturated_pairs = 0  # how many pair sums left the int16 range, over all runs

    def _run(  # type: ignore[override]
        self, a: Any, b: Any, a_zero_point: Any = None, b_zero_point: Any = None
    ) -> tuple[Any]:
        a32, b32 = a.astype(np.int32), b.astype(np.int32)
        a_zp = np.int32(0) if a_zero_point is None else a_zero_point.astype(np.int32)
        b_zp = np.int32(0) if b_zero_point is None else b_zero_point.astype(np.int32)
        if not (a.dtype == np.uint8 and b.dtype == np.int8 and b.ndim == 2):
            # u8×u8 (and anything else): widened before multiplying, exact.
            return (np.matmul(a32 - a_zp, b32 - b_zp).astype(np.int32),)
        depth = a.shape[-1]
        rows = a32.reshape(-1, depth)
        if depth % 2:
            rows = np.pad(rows, ((0, 0), (0, 1)))
            b32 = np.pad(b32, ((0, 1), (0, 0)))
        pairs = rows[:, 0::2, None] * b32[None, 0::2, :] + rows[:, 1::2, None] * b32[None, 1::2, :]
        MatMulInteger.saturated_pairs += int(((pairs < INT16_MIN) | (pairs > INT16_MAX)).sum())
        raw = np.clip(pairs, INT16_MIN, INT16_MAX).sum(axis=1)
        raw = raw.reshape((*a.shape[:-1], b.shape[1]))
        row_sums = a.astype(np.int32).sum(axis=-1, keepdims=True)
        column_sums = b.astype(np.int32).sum(axis=0)
        exact_offsets = -a_zp * column_sums - row_sums * b_zp + depth * a_zp * b_zp
        return ((raw + exact_offsets).astype(np.int32),)


def encode_as_avx2(onnx_file: Path, token_ids: list[list[int]]) -> list[list[float]]:
    """The model's normalized vectors for each tokenized query, computed with the AVX2
    kernels' integer arithmetic."""
    evaluator = ReferenceEvaluator(str(onnx_file), new_ops=[MatMulInteger])
    vectors: list[list[float]] = []
    for ids in token_ids:
        batch = np.asarray([ids], dtype=np.int64)
        feeds = {
            "input_ids": batch,
            "attention_mask": np.ones_like(batch),
            "token_type_ids": np.zeros_like(batch),
        }
        (output,) = evaluator.run(None, feeds)
        vector = np.asarray(output[0], dtype=np.float64)
        vectors.append((vector / np.linalg.norm(vector)).tolist())
    return vectors
