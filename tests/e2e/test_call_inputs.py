"""How a call's inputs reach IREE: a contiguous, aligned array is read in place (no copy; a
1x4096x4096 f32 input cost ~36-80 ms per call to copy), anything else is copied, and no
output shares an input's memory."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import mipsc
from mipsc.bench import mm_module
from mipsc.runtime import module as runtime_module

pytestmark = pytest.mark.e2e

IDENTITY = """
func.func @main(%a: !torch.vtensor<[4,6],f32>) -> !torch.vtensor<[4,6],f32> {
  return %a : !torch.vtensor<[4,6],f32>
}
"""


def _aligned(shape: tuple[int, ...], dtype: type, offset_bytes: int = 0) -> np.ndarray:
    """A C-contiguous array of `shape` whose data starts `offset_bytes` past a 64-byte line."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(size + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset_bytes
    array = raw[start : start + size].view(dtype).reshape(shape)
    array[...] = np.arange(array.size, dtype=np.float32).reshape(shape) % 7 - 3
    return array


def test_contiguous_aligned_inputs_are_read_in_place(compile_text, kernel_calls):
    model = mipsc.load(compile_text(mm_module(4, 5, 6, "f32")))
    a, b = _aligned((4, 6), np.float32), _aligned((6, 5), np.float32)
    assert runtime_module._imported(a) is not None
    before = kernel_calls["mips_matmul_f32"]
    np.testing.assert_allclose(model.main(a, b), a @ b, rtol=1e-6)
    assert kernel_calls["mips_matmul_f32"] == before + 1


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _aligned((4, 6), np.float32, offset_bytes=4), id="unaligned"),
        pytest.param(lambda: np.asfortranarray(_aligned((4, 6), np.float32)), id="fortran"),
        pytest.param(lambda: _aligned((6, 4), np.float32).T, id="transposed"),
        pytest.param(
            lambda: np.frombuffer(_aligned((4, 6), np.float32).tobytes(), np.float32).reshape(4, 6),
            id="read-only",
        ),
    ],
)
def test_other_inputs_are_copied_and_give_the_same_numbers(compile_text, make):
    model = mipsc.load(compile_text(mm_module(4, 5, 6, "f32")))
    a, b = make(), _aligned((6, 5), np.float32)
    assert runtime_module._imported(a) is None
    np.testing.assert_allclose(model.main(a, b), np.asarray(a) @ b, rtol=1e-6)


def test_bf16_inputs_are_read_in_place(compile_text):
    model = mipsc.load(compile_text(mm_module(4, 5, 6, "bf16")))
    a = _aligned((4, 6), np.float32).astype(ml_dtypes.bfloat16)
    b = _aligned((6, 5), np.float32).astype(ml_dtypes.bfloat16)
    if a.ctypes.data % 64 == 0:
        assert runtime_module._imported(a) is not None
    want = (a.astype(np.float32) @ b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(model.main(a, b), want)


def test_an_output_in_an_input_buffer_is_copied(compile_text):
    model = mipsc.load(compile_text(IDENTITY))
    a = _aligned((4, 6), np.float32)
    want = a.copy()
    got = model.main(a)
    a += 1  # the caller's array changes after the call: the result must not
    np.testing.assert_array_equal(got, want)
