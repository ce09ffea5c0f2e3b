"""torch.aten.mm models compiled by mipsc, run through the kernel plugin, checked against numpy.

Every test also proves that our kernel did the work, with the plugin's call counters.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from harness import DATA, load_npz, tolerance

import mipsc
import mipsc.runtime
from mipsc.diagnostics import MipscError
from mipsc.tiling import DYNAMIC_TILE, choose_tiles

pytestmark = pytest.mark.e2e

RNG = np.random.default_rng(1234)


def mm_module(m, k, n, dtype="f32", name="main") -> str:
    def t(r, c):
        return f"!torch.vtensor<[{r},{c}],{dtype}>"

    return f"""func.func @{name}(%a: {t(m, k)}, %b: {t(k, n)}) -> {t(m, n)} {{
  %0 = torch.aten.mm %a, %b : {t(m, k)}, {t(k, n)} -> {t(m, n)}
  return %0 : {t(m, n)}
}}
"""


def test_a_times_identity_is_a(compile_text, kernel_calls):
    vmfb = compile_text(mm_module(64, 64, 64))
    a = RNG.standard_normal((64, 64), dtype=np.float32)
    before = kernel_calls["mips_matmul_f32"]
    out = mipsc.load(vmfb).main(a, np.eye(64, dtype=np.float32))
    np.testing.assert_array_equal(out, a)
    assert kernel_calls["mips_matmul_f32"] == before + 1  # a small product is one tile


def test_non_square_static_export(compile_text, kernel_calls):
    inputs, (want,) = load_npz("mm_static")  # 37x19 · 19x23
    vmfb = compile_text((DATA / "mm_static.mlir").read_text(), "mm_static.mlir")
    before = kernel_calls["mips_matmul_f32"]
    got = mipsc.load(vmfb).main(*inputs)
    np.testing.assert_allclose(got, want, **tolerance("mm_static"))
    assert kernel_calls["mips_matmul_f32"] == before + 1


@pytest.mark.parametrize(("m", "k", "n"), [(13, 29, 11), (150, 70, 300), (1, 1, 1), (200, 3, 129)])
def test_dynamic_mnk_and_partial_tiles(compile_text, kernel_calls, m, k, n):
    vmfb = compile_text((DATA / "mm_dynamic.mlir").read_text(), "mm_dynamic.mlir")
    a = RNG.standard_normal((m, k), dtype=np.float32)
    b = RNG.standard_normal((k, n), dtype=np.float32)
    before = kernel_calls["mips_matmul_f32"]
    got = mipsc.load(vmfb).main(a, b)
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-4)
    tm, tn = DYNAMIC_TILE  # dynamic shapes get this tile: one kernel call per tile
    tiles = -(-m // tm) * -(-n // tn)
    assert kernel_calls["mips_matmul_f32"] == before + tiles


def test_dynamic_export_matches_torch(compile_text):
    inputs, (want,) = load_npz("mm_dynamic")
    vmfb = compile_text((DATA / "mm_dynamic.mlir").read_text(), "mm_dynamic.mlir")
    np.testing.assert_allclose(mipsc.load(vmfb).main(*inputs), want, **tolerance("mm_dynamic"))


def test_k_mismatch_fails_instead_of_reading_out_of_bounds(compile_text):
    vmfb = compile_text((DATA / "mm_dynamic.mlir").read_text(), "mm_dynamic.mlir")
    a = np.ones((4, 9), np.float32)
    b = np.ones((3, 5), np.float32)
    with pytest.raises(MipscError, match="K dims of a matmul's inputs differ"):
        mipsc.load(vmfb).main(a, b)


def test_chain_of_two_mm_and_elementwise(compile_text, kernel_calls):
    inputs, (want,) = load_npz("mm_chain")  # mm -> add -> relu -> mm
    vmfb = compile_text((DATA / "mm_chain.mlir").read_text(), "mm_chain.mlir")
    before = kernel_calls["mips_matmul_f32"]
    np.testing.assert_allclose(mipsc.load(vmfb).main(*inputs), want, **tolerance("mm_chain"))
    assert kernel_calls["mips_matmul_f32"] == before + 2


def test_decomposed_addmm_export(compile_text, kernel_calls):
    inputs, (want,) = load_npz("addmm")  # mm + mul.Scalar + add.Tensor after decomposition
    vmfb = compile_text((DATA / "addmm.mlir").read_text(), "addmm.mlir")
    before = kernel_calls["mips_matmul_f32"]
    np.testing.assert_allclose(mipsc.load(vmfb).main(*inputs), want, **tolerance("addmm"))
    assert kernel_calls["mips_matmul_f32"] == before + 1


WEIGHTS_MODULE = """
module @module {
  util.global private @w = dense_resource<w_blob> : tensor<3x2xf32>
  func.func @main(%x: !torch.vtensor<[4,3],f32>) -> (!torch.vtensor<[4,2],f32>, !torch.vtensor<[2,2],f32>) {
    %0 = util.global.load @w : tensor<3x2xf32>
    %w = torch_c.from_builtin_tensor %0 : tensor<3x2xf32> -> !torch.vtensor<[3,2],f32>
    %y = torch.aten.mm %x, %w : !torch.vtensor<[4,3],f32>, !torch.vtensor<[3,2],f32> -> !torch.vtensor<[4,2],f32>
    %l = torch.vtensor.literal(dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>) : !torch.vtensor<[2,2],f32>
    %r = torch.vtensor.literal(dense_resource<r_blob> : tensor<2x2xf32>) : !torch.vtensor<[2,2],f32>
    %c = torch.aten.mm %l, %r : !torch.vtensor<[2,2],f32>, !torch.vtensor<[2,2],f32> -> !torch.vtensor<[2,2],f32>
    return %y, %c : !torch.vtensor<[4,2],f32>, !torch.vtensor<[2,2],f32>
  }
}
{-#
  dialect_resources: {
    builtin: {
      w_blob: "0x04000000000080BF0000004000004040000080C000000000000000C0",
      r_blob: "0x040000000000803F0000000000000000000000C0"
    }
  }
#-}
"""


def test_weights_as_constants(compile_text, kernel_calls):
    """A weight global feeds one mm; another mm has only constant operands (const-eval trap)."""
    vmfb = compile_text(WEIGHTS_MODULE, "weights.mlir")
    w = np.array([[-1.0, 2.0], [3.0, -4.0], [0.0, -2.0]], np.float32)
    x = RNG.standard_normal((4, 3), dtype=np.float32)
    before = kernel_calls["mips_matmul_f32"]
    y, c = mipsc.load(vmfb).main(x)
    np.testing.assert_allclose(y, x @ w, rtol=1e-5, atol=1e-6)
    l_mat = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    r_mat = np.array([[1.0, 0.0], [0.0, -2.0]], np.float32)
    np.testing.assert_allclose(c, l_mat @ r_mat)
    assert kernel_calls["mips_matmul_f32"] >= before + 1  # the constant mm may run at load


def round_f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16)


def test_f16_accumulates_in_f32(compile_text, kernel_calls):
    vmfb = compile_text(mm_module(33, 257, 65, "f16"), "f16.mlir")
    a = RNG.standard_normal((33, 257)).astype(np.float16)
    b = RNG.standard_normal((257, 65)).astype(np.float16)
    before = kernel_calls["mips_matmul_f16"]
    got = mipsc.load(vmfb).main(a, b)
    assert got.dtype == np.float16
    want = round_f16(a.astype(np.float32) @ b.astype(np.float32))
    # One rounding of an f32 sum: within 1 ulp of f16 of the f32 reference.
    np.testing.assert_allclose(
        got.astype(np.float32), want.astype(np.float32), rtol=2e-3, atol=2e-3
    )
    assert kernel_calls["mips_matmul_f16"] == before + 1


def test_same_vmfb_fails_without_the_plugin(compile_text, tmp_path):
    vmfb = compile_text(mm_module(8, 8, 8))
    np.save(tmp_path / "a.npy", np.ones((8, 8), np.float32))
    run_module = str(Path(sys.executable).with_name("iree-run-module"))
    result = subprocess.run(
        [run_module, "--device=local-task", f"--module={vmfb}", "--function=main",
         f"--input=@{tmp_path / 'a.npy'}", f"--input=@{tmp_path / 'a.npy'}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "no executable loader" in result.stderr


def test_plugin_without_the_kernel_is_named(compile_text, tmp_path):
    stub = tmp_path / "stub.c"
    stub.write_text("void* iree_hal_executable_plugin_query(unsigned v, void* r) { return 0; }\n")
    lib = tmp_path / "libstub.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(stub)], check=True)
    vmfb = compile_text(mm_module(8, 8, 8))
    with pytest.raises(
        MipscError,
        match=r"calls the kernels mips_matmul_f32, which the plugin .*libstub.so does not provide",
    ):
        mipsc.load(vmfb, plugin=lib)


def test_tiles_run_on_several_threads(compile_text, kernel_calls):
    """The tiles of a big mm spread over IREE's workers: one per core, and there are >= 2."""
    if mipsc.runtime.device_name() == mipsc.runtime.SYNC_DEVICE:
        pytest.skip("this process runs IREE's local-sync device (one CPU): no workers")
    vmfb = compile_text(mm_module(1024, 512, 1024), "mm_big.mlir")
    tm, tn = choose_tiles(1024, 1024, 1, 512)
    tiles = -(-1024 // tm) * -(-1024 // tn)
    assert tiles >= 8
    model = mipsc.load(vmfb)
    a = RNG.standard_normal((1024, 512), dtype=np.float32)
    b = RNG.standard_normal((512, 1024), dtype=np.float32)
    kernel_calls.reset()
    # Usually the first run already spreads; a few more ride out a busy machine's scheduling.
    runs = 0
    while runs < 10 and (runs == 0 or kernel_calls.threads < 2):
        got = model.main(a, b)
        runs += 1
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-3)
    assert kernel_calls["mips_matmul_f32"] == runs * tiles
    assert kernel_calls.threads >= 2
