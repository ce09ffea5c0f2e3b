"""Loaded modules called from many Python threads at once: every result right.

IREE runs each call's dispatches on its own worker threads; these tests add concurrent callers
on top: one module shared by 8 threads, and two different modules (f32 and bf16, static and
dynamic shapes) used side by side in one process.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import ml_dtypes
import numpy as np
import pytest

import mipsc
from mipsc.pipeline import compile_module

pytestmark = pytest.mark.e2e

THREADS = 8
CALLS_PER_THREAD = 60

# relu(x · w1ᵀ + b1) · w2 with a dynamic batch: every call may have its own number of rows.
MLP = """func.func @main(%x: !torch.vtensor<[?,24],f32>, %w1: !torch.vtensor<[40,24],f32>, %b1: !torch.vtensor<[40],f32>, %w2: !torch.vtensor<[40,8],f32>) -> !torch.vtensor<[?,8],f32> {
  %0 = torch.aten.linear %x, %w1, %b1 : !torch.vtensor<[?,24],f32>, !torch.vtensor<[40,24],f32>, !torch.vtensor<[40],f32> -> !torch.vtensor<[?,40],f32>
  %1 = torch.aten.relu %0 : !torch.vtensor<[?,40],f32> -> !torch.vtensor<[?,40],f32>
  %2 = torch.aten.mm %1, %w2 : !torch.vtensor<[?,40],f32>, !torch.vtensor<[40,8],f32> -> !torch.vtensor<[?,8],f32>
  return %2 : !torch.vtensor<[?,8],f32>
}
"""

# A batched bf16 product: another kernel, another executable, another module.
BMM_BF16 = """func.func @main(%a: !torch.vtensor<[3,16,32],bf16>, %b: !torch.vtensor<[3,32,12],bf16>) -> !torch.vtensor<[3,16,12],bf16> {
  %0 = torch.aten.bmm %a, %b : !torch.vtensor<[3,16,32],bf16>, !torch.vtensor<[3,32,12],bf16> -> !torch.vtensor<[3,16,12],bf16>
  return %0 : !torch.vtensor<[3,16,12],bf16>
}
"""


@pytest.fixture(scope="module")
def modules(tmp_path_factory) -> dict[str, mipsc.runtime.Module]:
    work = tmp_path_factory.mktemp("threads")
    loaded = {}
    for name, text in (("mlp", MLP), ("bmm_bf16", BMM_BF16)):
        compile_module(text, f"{name}.mlir", work / f"{name}.vmfb")
        loaded[name] = mipsc.load(work / f"{name}.vmfb")
    return loaded


def mlp_case(rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    rows = int(rng.integers(1, 300))
    x, w1, b1, w2 = (
        rng.standard_normal(s).astype(np.float32) for s in ((rows, 24), (40, 24), (40,), (40, 8))
    )
    want = np.maximum(x.astype(np.float64) @ w1.T + b1, 0) @ w2
    return [x, w1, b1, w2], want


def bmm_case(rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    # Small integers: exact in bf16, and their products and sums are exact in f32.
    a = rng.integers(-3, 4, (3, 16, 32)).astype(ml_dtypes.bfloat16)
    b = rng.integers(-3, 4, (3, 32, 12)).astype(ml_dtypes.bfloat16)
    return [a, b], np.matmul(a.astype(np.float32), b.astype(np.float32))


def check(name: str, got: np.ndarray, want: np.ndarray) -> None:
    if name == "bmm_bf16":
        assert got.dtype == ml_dtypes.bfloat16
        np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


CASES = {"mlp": mlp_case, "bmm_bf16": bmm_case}


def hammer(module: mipsc.runtime.Module, name: str, seed: int) -> int:
    """CALLS_PER_THREAD calls with fresh inputs, each checked; returns how many were made."""
    rng = np.random.default_rng(seed)
    for _ in range(CALLS_PER_THREAD):
        inputs, want = CASES[name](rng)
        check(name, module.main(*inputs), want)
    return CALLS_PER_THREAD


def test_one_module_from_eight_threads(modules):
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(hammer, modules["mlp"], "mlp", seed) for seed in range(THREADS)]
        done = sum(f.result() for f in futures)
    assert done == THREADS * CALLS_PER_THREAD


def test_two_modules_used_concurrently(modules):
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [
            pool.submit(hammer, modules[name], name, 100 + seed)
            for seed in range(THREADS // 2)
            for name in ("mlp", "bmm_bf16")
        ]
        done = sum(f.result() for f in futures)
    assert done == THREADS * CALLS_PER_THREAD
