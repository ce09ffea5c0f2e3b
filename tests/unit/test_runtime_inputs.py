"""A loaded function's inputs as a user passes them: Python numbers, big-endian arrays, and
the shape a function with dynamic dims expects, each with the right value or a message that
names the input and the fix."""

from pathlib import Path

import numpy as np
import pytest

import mipsc
from mipsc.diagnostics import MipscError
from mipsc.pipeline import compile_module
from mipsc.runtime.module import Function

SCALE = """func.func @main(%a: !torch.vtensor<[2,3],f32>, %s: !torch.vtensor<[],f32>) -> !torch.vtensor<[2,3],f32> {
  %0 = torch.aten.mul.Tensor %a, %s : !torch.vtensor<[2,3],f32>, !torch.vtensor<[],f32> -> !torch.vtensor<[2,3],f32>
  return %0 : !torch.vtensor<[2,3],f32>
}
"""

A = np.arange(6, dtype=np.float32).reshape(2, 3)


@pytest.fixture(scope="module")
def scale(tmp_path_factory) -> Function:
    out = tmp_path_factory.mktemp("inputs") / "scale.vmfb"
    compile_module(SCALE, "scale.mlir", Path(out))
    return mipsc.load(out).main


@pytest.mark.parametrize("number", [2.5, 2])
def test_a_python_number_for_a_tensor_input_is_named(scale, number):
    """IREE takes a Python int or float as a VM scalar: the call failed with `Error invoking
    function: .../vm/list.c:863: FAILED_PRECONDITION`, naming neither the input nor the fix."""
    kind = type(number).__name__
    with pytest.raises(MipscError, match=rf"input 2 \(%arg1\) is a Python {kind}.*np\.asarray"):
        scale(A, number)
    np.testing.assert_array_equal(scale(A, np.asarray(number, np.float32)), A * number)


def test_a_big_endian_array_reads_as_its_values(scale):
    """A `>f4` array (a .npy written on a big-endian machine) was refused with a hint about
    bf16; it is read in native byte order, its values kept."""
    big = A.astype(">f4")
    np.testing.assert_array_equal(scale(big, np.array(3, ">f4")), A * 3)


DYNAMIC = """func.func @main(%a: !torch.vtensor<[?,3],f32>, %b: !torch.vtensor<[3,4],f32>) -> !torch.vtensor<[?,4],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[?,3],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[?,4],f32>
  return %0 : !torch.vtensor<[?,4],f32>
}
"""


@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ((), "rank mismatch; expected 2 but have 0 (scalar); expected shape `?x3`"),
        ((1, 2, 3), "rank mismatch; expected 2 but have 3; expected shape `?x3`"),
        ((5, 2), "dimension 1 mismatch; expected 3 but have 2; expected shape `?x3`"),
    ],
)
def test_a_wrong_shape_gives_the_declared_shape_with_its_dynamic_dims(tmp_path, shape, said):
    """IREE's message gave a dynamic dim as the size it read from the wrong input: `expected
    shape `1x2`` for a 1x2x3 input where `?x3` is declared (`4849x0` for a 0-d one), which
    reads as the shape to give. The declared shape is kept in the .vmfb and given instead."""
    compile_module(DYNAMIC, "dynamic.mlir", tmp_path / "dynamic.vmfb")
    main = mipsc.load(tmp_path / "dynamic.vmfb").main
    assert main.input_shapes == ("?x3", "3x4")
    b = np.ones((3, 4), np.float32)
    with pytest.raises(MipscError, match=r"input 1 \(%arg0\)") as raised:
        main(np.ones(shape, np.float32), b)
    assert said in str(raised.value), raised.value
    np.testing.assert_array_equal(main(np.ones((5, 3), np.float32), b), np.full((5, 4), 3.0))
