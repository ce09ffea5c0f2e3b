"""Float constants written as bit patterns (`dense<0xFF800000> : tensor<f32>`, MLIR's way of
writing NaN, ±inf and any value decimal cannot carry) round-trip bit for bit.

xDSL reads such an element as an integer (4286578688.0), which once turned an attention
mask's -inf into 4.29e9 silently. Every float type the kernels meet (f16, bf16, f32, f64),
splat and non-splat, scalar and tensor, in torch literals, util.global initial values and
arith constants.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from mipsc.diagnostics import MipscError
from mipsc.ir import make_context, parse_module, print_module, verify_module

# Special values per type, as bit patterns: +inf, -inf, a quiet NaN, a negative quiet NaN, a
# signaling NaN, a NaN with a payload, -0, the smallest subnormal, the largest finite, 1.0.
SPECIALS: dict[str, tuple[int, list[int]]] = {
    "f16": (16, [0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7E5A, 0x8000, 0x0001, 0x7BFF, 0x3C00]),
    "bf16": (16, [0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x7FC5, 0x8000, 0x0001, 0x7F7F, 0x3F80]),
    "f32": (32, [0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FC0ABCD,
                 0x80000000, 0x00000001, 0x7F7FFFFF, 0x3F800000]),
    "f64": (64, [0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000,
                 0xFFF8000000000000, 0x7FF0000000000001, 0x7FF80000DEADBEEF,
                 0x8000000000000000, 0x0000000000000001, 0x7FEFFFFFFFFFFFFF,
                 0x3FF0000000000000]),
}  # fmt: skip


def hexbits(bits: int, width: int) -> str:
    return f"0x{bits:0{width // 4}X}"


def round_trip(text: str) -> str:
    ctx = make_context()
    module = parse_module(ctx, text, "bits.mlir")
    verify_module(module)
    return print_module(ctx, module)


def stored_bits(text: str, width: int) -> list[list[int]]:
    """The bits of every dense float attribute of the module, in order."""
    from xdsl.dialects.builtin import DenseIntOrFPElementsAttr

    module = parse_module(make_context(), text, "bits.mlir")
    found = []
    for op in module.walk():
        for attr in [*op.properties.values(), *op.attributes.values()]:
            if isinstance(attr, DenseIntOrFPElementsAttr):
                raw = np.frombuffer(attr.data.data, dtype=f"<u{width // 8}")
                found.append([int(b) for b in raw])
    return found


@pytest.mark.parametrize("dtype", sorted(SPECIALS))
def test_every_special_value_round_trips_bit_for_bit(dtype):
    width, patterns = SPECIALS[dtype]
    n = len(patterns)
    elements = ", ".join(hexbits(b, width) for b in patterns)
    text = f"""module {{
  util.global private @g = dense<[{elements}]> : tensor<{n}x{dtype}>
  func.func @main() -> !torch.vtensor<[{n}],{dtype}> {{
    %0 = torch.vtensor.literal(dense<[{elements}]> : tensor<{n}x{dtype}>) : !torch.vtensor<[{n}],{dtype}>
    %1 = arith.constant dense<[{elements}]> : tensor<{n}x{dtype}>
    return %0 : !torch.vtensor<[{n}],{dtype}>
  }}
}}
"""
    printed = round_trip(text)
    assert stored_bits(text, width) == [patterns] * 3
    assert stored_bits(printed, width) == [patterns] * 3
    assert round_trip(printed) == printed
    for bits in patterns[:6]:  # the non-finite ones are printed as their bits
        assert printed.count(hexbits(bits, width)) == 3


@pytest.mark.parametrize("dtype", sorted(SPECIALS))
@pytest.mark.parametrize("index", range(10))
def test_splats_and_scalars_keep_their_bits(dtype, index):
    width, patterns = SPECIALS[dtype]
    bits = hexbits(patterns[index], width)
    text = f"""module {{
  util.global private @g = dense<{bits}> : tensor<{dtype}>
  func.func @main() -> !torch.vtensor<[3],{dtype}> {{
    %0 = torch.vtensor.literal(dense<{bits}> : tensor<3x{dtype}>) : !torch.vtensor<[3],{dtype}>
    %1 = arith.constant dense<{bits}> : tensor<{dtype}>
    return %0 : !torch.vtensor<[3],{dtype}>
  }}
}}
"""
    printed = round_trip(text)
    want = [[patterns[index]], [patterns[index]] * 3, [patterns[index]]]
    assert stored_bits(text, width) == want
    assert stored_bits(printed, width) == want


def test_the_issue_example_is_minus_infinity_not_four_billion():
    text = """func.func @main() -> !torch.vtensor<[],f32> {
  %0 = torch.vtensor.literal(dense<0xFF800000> : tensor<f32>) : !torch.vtensor<[],f32>
  return %0 : !torch.vtensor<[],f32>
}
"""
    printed = round_trip(text)
    assert "dense<0xFF800000> : tensor<f32>" in printed
    assert not re.search(r"e\+0?9", printed)


def test_integer_tensors_keep_reading_hex_as_integers():
    text = """func.func @main() -> tensor<2xi32> {
  %0 = arith.constant dense<[0x10, 3]> : tensor<2xi32>
  return %0 : tensor<2xi32>
}
"""
    assert stored_bits(text, 32) == [[16, 3]]


@pytest.mark.parametrize(
    ("literal", "dtype"), [("0xFF800000", "f16"), ("0x1FF80", "bf16"), ("-0x3C00", "f16")]
)
def test_a_bit_pattern_that_does_not_fit_its_type_is_a_located_error(literal, dtype):
    text = f"""func.func @main() -> tensor<{dtype}> {{
  %0 = arith.constant dense<{literal}> : tensor<{dtype}>
  return %0 : tensor<{dtype}>
}}
"""
    with pytest.raises(MipscError) as info:
        round_trip(text)
    assert info.value.location is not None and info.value.location.line == 2


def test_large_tensors_with_specials_keep_their_bits():
    patterns = SPECIALS["f32"][1] * 13  # 130 elements: printed as one hex string of the bytes
    elements = ", ".join(hexbits(b, 32) for b in patterns)
    text = f"""func.func @main() -> tensor<130xf32> {{
  %0 = arith.constant dense<[{elements}]> : tensor<130xf32>
  return %0 : tensor<130xf32>
}}
"""
    printed = round_trip(text)
    assert stored_bits(printed, 32) == [patterns]
    assert round_trip(printed) == printed
