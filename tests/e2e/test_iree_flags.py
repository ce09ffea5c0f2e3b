"""mipsc compile chooses the iree-compile flags a model needs, with no flag from the user:
f64 is kept only where the model computes in f64, bf16 constants stay out of the dispatches."""

from __future__ import annotations

import numpy as np
import pytest

import mipsc
from mipsc.ir import make_context, parse_module
from mipsc.pipeline import KEEP_F64, NO_INLINE_CONSTANTS, compile_module, iree_flags_for

pytestmark = pytest.mark.e2e

# As iree-turbine 3.9 exports torch.ops.quantized_decomposed.dequantize_per_tensor (f64 scales)
# feeding a matmul.
DEQUANTIZED_MATMUL = """module @module {
  func.func @main(%arg0: !torch.vtensor<[4,8],si8>, %arg1: !torch.vtensor<[8,5],si8>) -> !torch.vtensor<[4,5],f32> {
    %float5.000000e-02 = torch.constant.float 5.000000e-02
    %int3 = torch.constant.int 3
    %int-128 = torch.constant.int -128
    %int127 = torch.constant.int 127
    %int1 = torch.constant.int 1
    %none = torch.constant.none
    %0 = torch.quantized_decomposed.dequantize_per_tensor %arg0, %float5.000000e-02, %int3, %int-128, %int127, %int1, %none : !torch.vtensor<[4,8],si8>, !torch.float, !torch.int, !torch.int, !torch.int, !torch.int, !torch.none -> !torch.vtensor<[4,8],f32>
    %float2.000000e-02 = torch.constant.float 2.000000e-02
    %int0 = torch.constant.int 0
    %1 = torch.quantized_decomposed.dequantize_per_tensor %arg1, %float2.000000e-02, %int0, %int-128, %int127, %int1, %none : !torch.vtensor<[8,5],si8>, !torch.float, !torch.int, !torch.int, !torch.int, !torch.int, !torch.none -> !torch.vtensor<[8,5],f32>
    %2 = torch.aten.matmul %0, %1 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[8,5],f32> -> !torch.vtensor<[4,5],f32>
    return %2 : !torch.vtensor<[4,5],f32>
  }
}
"""

BF16_LINEAR_INLINE_BIAS = """module {
  func.func @main(%x: !torch.vtensor<[4,8],bf16>, %w: !torch.vtensor<[6,8],bf16>) -> !torch.vtensor<[4,6],bf16> {
    %b = torch.vtensor.literal(dense_resource<bias> : tensor<6xbf16>) : !torch.vtensor<[6],bf16>
    %0 = torch.aten.linear %x, %w, %b : !torch.vtensor<[4,8],bf16>, !torch.vtensor<[6,8],bf16>, !torch.vtensor<[6],bf16> -> !torch.vtensor<[4,6],bf16>
    return %0 : !torch.vtensor<[4,6],bf16>
  }
}
{-#
  dialect_resources: {
    builtin: {
      bias: "0x02000000803F0040404080BF003F803E"
    }
  }
#-}
"""
"""A bf16 nn.Linear whose bias (1, 2, 3, -1, 0.5, 0.25) is inlined, as iree-turbine writes it."""


def flags(text: str) -> list[str]:
    return iree_flags_for(parse_module(make_context(), text, "m.mlir"))


def test_dequantized_matmul_compiles_and_matches_torch(tmp_path, kernel_calls):
    assert flags(DEQUANTIZED_MATMUL) == []
    vmfb = tmp_path / "dq.vmfb"
    compile_module(DEQUANTIZED_MATMUL, "dq.mlir", vmfb)
    rng = np.random.default_rng(3)
    qx = rng.integers(-128, 128, (4, 8), dtype=np.int8)
    qw = rng.integers(-128, 128, (8, 5), dtype=np.int8)
    before = kernel_calls["mips_matmul_f32"]
    got = mipsc.load(vmfb).main(qx, qw)
    assert kernel_calls["mips_matmul_f32"] > before
    # torch: (q - zero_point) * scale in f32, then the f32 matmul.
    x = (qx.astype(np.float32) - 3) * np.float32(0.05)
    w = qw.astype(np.float32) * np.float32(0.02)
    np.testing.assert_allclose(got, x @ w, rtol=1e-5, atol=1e-5)


def test_f64_is_kept_where_the_model_computes_in_f64():
    f64_signature = DEQUANTIZED_MATMUL.replace("[4,5],f32>", "[4,5],f64>")
    assert flags(f64_signature) == [KEEP_F64]


def test_bf16_linear_with_an_inlined_bias_compiles_with_no_flag(tmp_path, kernel_calls):
    assert flags(BF16_LINEAR_INLINE_BIAS) == [NO_INLINE_CONSTANTS]
    vmfb = tmp_path / "bf16.vmfb"
    compile_module(BF16_LINEAR_INLINE_BIAS, "bf16.mlir", vmfb)
    import ml_dtypes

    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 8)).astype(ml_dtypes.bfloat16)
    w = rng.standard_normal((6, 8)).astype(ml_dtypes.bfloat16)
    before = kernel_calls["mips_matmul_bf16"]
    got = mipsc.load(vmfb).main(x, w)
    assert kernel_calls["mips_matmul_bf16"] > before
    bias = np.array([1.0, 2.0, 3.0, -1.0, 0.5, 0.25])
    want = (x.astype(np.float64) @ w.astype(np.float64).T + bias).astype(ml_dtypes.bfloat16)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2**-7, atol=1e-6)
