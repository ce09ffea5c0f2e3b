"""`--kernel-backend=openblas` end to end: compiled by mipsc, run through the plugin, against
numpy, with the plugin's counters proving that every tile ran in OpenBLAS's sgemm.

mipsc.load points the plugin at the scipy-openblas32 wheel (the `test` extra installs it) unless
$MIPSC_OPENBLAS_LIB is set.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import DATA

import mipsc
from mipsc.kernel_abi import OPENBLAS_SYMBOL
from mipsc.tiling import DYNAMIC_TILE, choose_tiles

pytestmark = pytest.mark.e2e

RNG = np.random.default_rng(2024)
OPENBLAS = "openblas"


def vt(shape, dtype="f32"):
    dims = ",".join("?" if d is None else str(d) for d in shape)
    return f"!torch.vtensor<[{dims}],{dtype}>"


def module(args: list[str], result: str, body: str) -> str:
    params = ", ".join(f"%a{i}: {t}" for i, t in enumerate(args))
    return f"""func.func @main({params}) -> {result} {{
  %one = torch.constant.int 1
  %beta = torch.constant.float 5.000000e-01
{body}
  return %r : {result}
}}
"""


def tiles(m: int, n: int, k: int, batch: int = 1) -> int:
    tm, tn = choose_tiles(m, n, batch, k)
    return -(-m // tm) * -(-n // tn) * batch


class Paths:
    """Counter deltas of one run: OpenBLAS calls, how many went to sgemm and to the builtin
    fallback, and builtin kernel calls."""

    NAMES = {
        "openblas": OPENBLAS_SYMBOL,
        "sgemm": f"{OPENBLAS_SYMBOL}:sgemm",
        "fallback": f"{OPENBLAS_SYMBOL}:fallback",
        "f32": "mips_matmul_f32",
        "bf16": "mips_matmul_bf16",
    }

    def __init__(self, kernel_calls) -> None:
        self._calls = kernel_calls
        self._before = self._now()

    def _now(self) -> dict[str, int]:
        return {key: self._calls[name] for key, name in self.NAMES.items()}

    def delta(self) -> dict[str, int]:
        now = self._now()
        return {key: now[key] - self._before[key] for key in now}


def in_sgemm(count: int) -> dict[str, int]:
    return {"openblas": count, "sgemm": count, "fallback": 0, "f32": 0, "bf16": 0}


@pytest.mark.parametrize(("m", "n", "k"), [(37, 23, 19), (150, 70, 300), (300, 260, 400)])
def test_mm(compile_text, kernel_calls, m, n, k):
    text = module([vt((m, k)), vt((k, n))], vt((m, n)), (
        f"  %r = torch.aten.mm %a0, %a1 : {vt((m, k))}, {vt((k, n))} -> {vt((m, n))}"
    ))  # fmt: skip
    vmfb = compile_text(text, "mm.mlir", kernel_backend=OPENBLAS)
    a, b = RNG.standard_normal((m, k), np.float32), RNG.standard_normal((k, n), np.float32)
    paths = Paths(kernel_calls)
    got = mipsc.load(vmfb).main(a, b)
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-4)
    assert paths.delta() == in_sgemm(tiles(m, n, k))


@pytest.mark.parametrize("bias_shape", [(90, 70), (70,)])
def test_addmm_accumulates_into_the_bias(compile_text, kernel_calls, bias_shape):
    """alpha = 1: beta·input is the init, and sgemm adds the product to it (beta = 1)."""
    m, n, k = 90, 70, 50
    args = [vt(bias_shape), vt((m, k)), vt((k, n))]
    text = module(args, vt((m, n)), (
        f"  %r = torch.aten.addmm %a0, %a1, %a2, %beta, %one : {', '.join(args)}, !torch.float, "
        f"!torch.int -> {vt((m, n))}"
    ))  # fmt: skip
    vmfb = compile_text(text, "addmm.mlir", kernel_backend=OPENBLAS)
    bias = RNG.standard_normal(bias_shape, np.float32)
    a, b = RNG.standard_normal((m, k), np.float32), RNG.standard_normal((k, n), np.float32)
    paths = Paths(kernel_calls)
    got = mipsc.load(vmfb).main(bias, a, b)
    np.testing.assert_allclose(got, 0.5 * bias + a @ b, rtol=1e-4, atol=1e-4)
    assert paths.delta() == in_sgemm(tiles(m, n, k))


def test_linear_reads_the_weight_transposed(compile_text, kernel_calls):
    """linear's [N, K] weight is a column-major B tile: sgemm with a Trans flag."""
    x, w, bias = (RNG.standard_normal(s, np.float32) for s in ((2, 64, 96), (80, 96), (80,)))
    args = [vt((2, 64, 96)), vt((80, 96)), vt((80,))]
    text = module(args, vt((2, 64, 80)), (
        f"  %r = torch.aten.linear %a0, %a1, %a2 : {', '.join(args)} -> {vt((2, 64, 80))}"
    ))  # fmt: skip
    vmfb = compile_text(text, "linear.mlir", kernel_backend=OPENBLAS)
    paths = Paths(kernel_calls)
    got = mipsc.load(vmfb).main(x, w, bias)
    np.testing.assert_allclose(got, x @ w.T + bias, rtol=1e-4, atol=1e-4)
    assert paths.delta() == in_sgemm(tiles(128, 80, 96))  # N-D input: its dims fold into M


def test_bmm_one_call_per_tile_and_batch(compile_text, kernel_calls):
    shape_a, shape_b, shape_c = (3, 40, 24), (3, 24, 56), (3, 40, 56)
    text = module([vt(shape_a), vt(shape_b)], vt(shape_c), (
        f"  %r = torch.aten.bmm %a0, %a1 : {vt(shape_a)}, {vt(shape_b)} -> {vt(shape_c)}"
    ))  # fmt: skip
    vmfb = compile_text(text, "bmm.mlir", kernel_backend=OPENBLAS)
    a, b = RNG.standard_normal(shape_a, np.float32), RNG.standard_normal(shape_b, np.float32)
    paths = Paths(kernel_calls)
    np.testing.assert_allclose(mipsc.load(vmfb).main(a, b), a @ b, rtol=1e-4, atol=1e-4)
    assert paths.delta() == in_sgemm(tiles(40, 56, 24, batch=3))


@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (150, 70, 300), (200, 3, 129)])
def test_dynamic_shapes_and_partial_tiles(compile_text, kernel_calls, m, k, n):
    vmfb = compile_text(
        (DATA / "mm_dynamic.mlir").read_text(), "mm_dynamic.mlir", kernel_backend=OPENBLAS
    )
    a, b = RNG.standard_normal((m, k), np.float32), RNG.standard_normal((k, n), np.float32)
    paths = Paths(kernel_calls)
    np.testing.assert_allclose(mipsc.load(vmfb).main(a, b), a @ b, rtol=1e-4, atol=1e-4)
    tm, tn = DYNAMIC_TILE
    assert paths.delta() == in_sgemm(-(-m // tm) * -(-n // tn))


def test_bf16_keeps_the_builtin_kernel(compile_text, kernel_calls):
    """scipy-openblas32 has no bf16 gemm: with the openblas backend bf16 calls mips_matmul_bf16."""
    import ml_dtypes

    m, n, k = 24, 40, 32
    text = module([vt((m, k), "bf16"), vt((k, n), "bf16")], vt((m, n), "bf16"), (
        f"  %r = torch.aten.mm %a0, %a1 : {vt((m, k), 'bf16')}, {vt((k, n), 'bf16')} -> "
        f"{vt((m, n), 'bf16')}"
    ))  # fmt: skip
    vmfb = compile_text(text, "mm_bf16.mlir", kernel_backend=OPENBLAS)
    a = RNG.standard_normal((m, k)).astype(ml_dtypes.bfloat16)
    b = RNG.standard_normal((k, n)).astype(ml_dtypes.bfloat16)
    paths = Paths(kernel_calls)
    got = mipsc.load(vmfb).main(a, b).astype(np.float32)
    want = a.astype(np.float32) @ b.astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-2)
    delta = paths.delta()
    assert delta["bf16"] == tiles(m, n, k) and delta["openblas"] == 0


def test_both_backends_in_one_process(compile_text, kernel_calls):
    """The same model compiled for each backend, loaded side by side: each calls its kernel."""
    m, n, k = 96, 64, 128
    text = module([vt((m, k)), vt((k, n))], vt((m, n)), (
        f"  %r = torch.aten.mm %a0, %a1 : {vt((m, k))}, {vt((k, n))} -> {vt((m, n))}"
    ))  # fmt: skip
    builtin = mipsc.load(compile_text(text, "mm.mlir"))
    openblas = mipsc.load(compile_text(text, "mm.mlir", kernel_backend=OPENBLAS))
    a, b = RNG.standard_normal((m, k), np.float32), RNG.standard_normal((k, n), np.float32)
    paths = Paths(kernel_calls)
    got_blas, got_builtin = openblas.main(a, b), builtin.main(a, b)
    np.testing.assert_allclose(got_blas, got_builtin, rtol=1e-4, atol=1e-4)
    assert paths.delta() == {**in_sgemm(tiles(m, n, k)), "f32": tiles(m, n, k)}
