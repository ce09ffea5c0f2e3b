"""How a call's inputs reach IREE. IREE copied every numpy input into a new device buffer
(~36-80 ms per call for a 1x4096x4096 f32, mostly page faults); a large input now goes through
a staging array of the module's, allocated once. IREE may write into an input's buffer (an
addmm's init is tied to its result; `y = x.clone(); y[:, 0] = 5` updates x's buffer), so the
caller's own memory is never lent, and no result is handed out in a staging array."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import mipsc
from mipsc.bench import mm_module
from mipsc.runtime import module as runtime_module

pytestmark = pytest.mark.e2e

ROWS = runtime_module.STAGE_BYTES // (4 * 256)  # a ROWSx256 f32 input is staged


def vt(shape: tuple[int | None, ...]) -> str:
    dims = ",".join("?" if d is None else str(d) for d in shape)
    return f"!torch.vtensor<[{dims}],f32>"


ADDMM = f"""
func.func @main(%c: {vt((None, None))}, %a: {vt((None, 8))}, %b: {vt((8, None))}) -> {vt((None, None))} {{
  %one = torch.constant.int 1
  %r = torch.aten.addmm %c, %a, %b, %one, %one : {vt((None, None))}, {vt((None, 8))}, {vt((8, None))}, !torch.int, !torch.int -> {vt((None, None))}
  return %r : {vt((None, None))}
}}
"""

IDENTITY = f"""
func.func @main(%a: {vt((ROWS, 256))}) -> {vt((ROWS, 256))} {{
  return %a : {vt((ROWS, 256))}
}}
"""


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def test_a_large_input_goes_through_the_staging_array(compile_text, kernel_calls):
    model = mipsc.load(compile_text(mm_module(ROWS, 5, 256, "f32")))
    a, b = rand(ROWS, 256), rand(256, 5)
    for given in (a, np.asfortranarray(a), a[::1, :], np.repeat(a, 2, axis=1)[:, ::2]):
        before = kernel_calls["mips_matmul_f32"]
        np.testing.assert_allclose(model.main(given, b), a @ b, rtol=1e-4, atol=1e-4)
        assert kernel_calls["mips_matmul_f32"] > before
    staged = model.staging[("main", 0)]
    assert staged.shape == a.shape and staged.ctypes.data % runtime_module.IMPORT_ALIGNMENT == 0
    assert ("main", 1) not in model.staging  # a small input goes IREE's way


def test_an_input_the_module_writes_into_stays_the_callers(compile_text):
    """The addmm's init is tied to its result: IREE computes the result in the init's buffer.
    Lent the caller's array, IREE overwrote it (found by the suite's addmm test)."""
    model = mipsc.load(compile_text(ADDMM))
    a, b = rand(ROWS, 8), rand(8, 256)
    init = rand(ROWS, 256)
    kept = init.copy()
    first = model.main(init, a, b)
    np.testing.assert_array_equal(init, kept)
    np.testing.assert_allclose(first, kept + a @ b, rtol=1e-4, atol=1e-4)
    second = model.main(init * 2, a, b)  # the same staging array: the first result stays
    np.testing.assert_allclose(first, kept + a @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(second, 2 * kept + a @ b, rtol=1e-4, atol=1e-4)


def test_a_result_in_an_input_buffer_is_copied(compile_text):
    model = mipsc.load(compile_text(IDENTITY))
    a = rand(ROWS, 256)
    got = model.main(a)
    again = model.main(a + 1)
    np.testing.assert_array_equal(got, a)
    np.testing.assert_array_equal(again, a + 1)


def test_bf16_and_small_inputs(compile_text):
    model = mipsc.load(compile_text(mm_module(4, 5, 6, "bf16")))
    a = rand(4, 6).astype(ml_dtypes.bfloat16)
    b = rand(6, 5).astype(ml_dtypes.bfloat16)
    want = (a.astype(np.float32) @ b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(model.main(a, b), want)
