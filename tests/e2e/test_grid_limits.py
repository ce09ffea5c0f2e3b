"""Dispatch grids beyond IREE's 16-bit workgroup ids: every tile is computed, exactly once.

IREE's CPU executable ABI keeps workgroup ids y and z in 16 bits: a grid of 65537 batches once
wrapped, and element 65536 of a bmm came back 0. The lowering now asks for a 1-D grid of at
most 65535 workgroups, each looping over its tiles.
"""

from __future__ import annotations

import numpy as np
import pytest

import mipsc
from mipsc.backend.iree_compile import compile_mlir
from mipsc.ir import make_context, parse_module, print_module
from mipsc.pipeline import COMPILE_FLAGS, build_pipeline, run_pipeline

pytestmark = pytest.mark.e2e


def vt(*shape: int) -> str:
    return f"!torch.vtensor<[{','.join(map(str, shape))}],f32>"


def test_a_batch_of_65537_is_computed_to_the_last_element(compile_text, kernel_calls):
    t = vt(65537, 1, 1)
    text = f"""func.func @main(%a: {t}, %b: {t}) -> {t} {{
  %0 = torch.aten.bmm %a, %b : {t}, {t} -> {t}
  return %0 : {t}
}}
"""
    vmfb = compile_text(text, "big_batch.mlir")
    before = kernel_calls["mips_matmul_f32"]
    got = mipsc.load(vmfb).main(
        np.full((65537, 1, 1), 2, np.float32), np.full((65537, 1, 1), 3, np.float32)
    )
    assert kernel_calls["mips_matmul_f32"] - before == 65537
    np.testing.assert_array_equal(got, np.full((65537, 1, 1), 6, np.float32))


def test_more_row_and_column_tiles_than_one_grid_dimension_holds(tmp_path, kernel_calls):
    # 1x1 tiles of a 300x250 product: 75000 tiles, more than the 65535 workgroups of the grid,
    # so some workgroups take two tiles; each output element says which tile wrote it.
    m, n = 300, 250
    text = f"""func.func @main(%a: {vt(m, 1)}, %b: {vt(1, n)}) -> {vt(m, n)} {{
  %0 = torch.aten.mm %a, %b : {vt(m, 1)}, {vt(1, n)} -> {vt(m, n)}
  return %0 : {vt(m, n)}
}}
"""
    ctx = make_context()
    module = parse_module(ctx, text, "tiles.mlir")
    run_pipeline(
        ctx, module, build_pipeline("convert-torch-to-mips,lower-mips-to-call{tile_m=1 tile_n=1}")
    )
    vmfb = tmp_path / "tiles.vmfb"
    compile_mlir(print_module(ctx, module), vmfb, extra_flags=COMPILE_FLAGS)
    a = np.arange(1, m + 1, dtype=np.float32).reshape(m, 1)
    b = np.arange(1, n + 1, dtype=np.float32).reshape(1, n) * 1000
    before = kernel_calls["mips_matmul_f32"]
    got = mipsc.load(vmfb).main(a, b)
    assert kernel_calls["mips_matmul_f32"] - before == m * n
    np.testing.assert_array_equal(got, a @ b)
