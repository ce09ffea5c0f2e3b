"""A -inf written as a bit pattern (as exporters write attention masks) reaches the result as
-inf through the whole path: parse, print, iree-compile, the kernel."""

from __future__ import annotations

import numpy as np
import pytest

import mipsc

pytestmark = pytest.mark.e2e

MASKED_MM = """func.func @main(%a: !torch.vtensor<[2,3],f32>, %b: !torch.vtensor<[3,2],f32>) -> !torch.vtensor<[2,2],f32> {
  %int1 = torch.constant.int 1
  %mask = torch.vtensor.literal(dense<[[0.000000e+00, 0xFF800000], [0x7FC00000, 0x7F800000]]> : tensor<2x2xf32>) : !torch.vtensor<[2,2],f32>
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],f32>, !torch.vtensor<[3,2],f32> -> !torch.vtensor<[2,2],f32>
  %1 = torch.aten.add.Tensor %0, %mask, %int1 : !torch.vtensor<[2,2],f32>, !torch.vtensor<[2,2],f32>, !torch.int -> !torch.vtensor<[2,2],f32>
  return %1 : !torch.vtensor<[2,2],f32>
}
"""


def test_a_minus_inf_mask_added_to_a_matmul_gives_minus_inf(compile_text, kernel_calls):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((3, 2), np.float32)
    vmfb = compile_text(MASKED_MM, "masked.mlir")
    before = kernel_calls["mips_matmul_f32"]
    got = mipsc.load(vmfb).main(a, b)
    assert kernel_calls["mips_matmul_f32"] > before
    assert got[0, 0] == 3.0
    assert got[0, 1] == -np.inf
    assert np.isnan(got[1, 0])
    assert got[1, 1] == np.inf
