"""Parsing and printing whole modules: resources, locations, errors."""

from pathlib import Path

import pytest

from mipsc.diagnostics import MipscError
from mipsc.ir import make_context, parse_module, print_module, split_chunks, verify_module

BLOB_MODULE = """
module {
  util.global private @w = dense_resource<w_blob> : tensor<2xf32>
  func.func @main() -> !torch.vtensor<[2],f32> {
    %0 = torch.vtensor.literal(dense_resource<lit_blob> : tensor<2xf32>) : !torch.vtensor<[2],f32>
    return %0 : !torch.vtensor<[2],f32>
  }
}
{-#
  dialect_resources: {
    builtin: {
      w_blob: "0x040000000000803F00000040",
      lit_blob: "0x0400000000004040000080C0"
    }
  }
#-}
"""


def round_trip(text: str, name: str = "m.mlir") -> str:
    ctx = make_context()
    module = parse_module(ctx, text, name)
    verify_module(module)
    return print_module(ctx, module)


def test_blobs_survive_two_parses_in_one_process():
    first = round_trip(BLOB_MODULE)
    second = round_trip(BLOB_MODULE)
    for out in (first, second):
        assert 'w_blob: "0x040000000000803F00000040"' in out
        assert 'lit_blob: "0x0400000000004040000080C0"' in out
        assert "dense_resource<w_blob>" in out and "dense_resource<lit_blob>" in out
    assert first == second


def test_blobs_survive_interleaved_parses():
    ctx_a, ctx_b = make_context(), make_context()
    mod_a = parse_module(ctx_a, BLOB_MODULE, "a.mlir")
    mod_b = parse_module(ctx_b, BLOB_MODULE, "b.mlir")
    assert print_module(ctx_a, mod_a) == print_module(ctx_b, mod_b)
    assert "w_blob_0" not in print_module(ctx_b, mod_b)


def test_print_is_a_fixed_point():
    once = round_trip(BLOB_MODULE)
    assert round_trip(once) == once


def test_ops_carry_their_source_location():
    ctx = make_context()
    module = parse_module(ctx, BLOB_MODULE, "m.mlir")
    text = print_module(ctx, module, debuginfo=True)
    assert 'loc("m.mlir":3:3)' in text  # util.global
    assert 'loc("m.mlir":5:5)' in text  # the literal


def test_parse_error_is_located():
    with pytest.raises(MipscError) as info:
        parse_module(make_context(), "func.func @f() {\n  %0 = arith.constant : i32\n}", "bad.mlir")
    err = info.value
    assert (err.location.file, err.location.line) == ("bad.mlir", 2)
    rendered = err.render()
    assert rendered.startswith("bad.mlir:2:")
    assert "  %0 = arith.constant : i32" in rendered


def test_truncated_input_is_a_located_error():
    text = (
        Path(__file__)
        .parent.parent.joinpath("filecheck/convert-torch-to-mips/mm_static.mlir")
        .read_text()
    )
    truncated = text[: text.index("torch.aten.relu")]
    with pytest.raises(MipscError) as info:
        parse_module(make_context(), truncated, "cut.mlir")
    assert info.value.location is not None and info.value.location.file == "cut.mlir"


def test_verify_error_names_op_and_location():
    text = """func.func @f(%a: tensor<4x5xf32>, %b: tensor<6x3xf32>, %c: tensor<4x3xf32>) -> tensor<4x3xf32> {
  %0 = mips.matmul ins(%a, %b : tensor<4x5xf32>, tensor<6x3xf32>) outs(%c : tensor<4x3xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}"""
    module = parse_module(make_context(), text, "v.mlir")
    with pytest.raises(MipscError) as info:
        verify_module(module)
    assert str(info.value.location) == "v.mlir:2:3"
    assert "'mips.matmul' op K mismatch" in info.value.message


def test_split_chunks_keep_line_numbers():
    chunks = split_chunks("a\n// -----\nb\nc\n// -----\nd\n")
    assert len(chunks) == 3
    assert chunks[1].splitlines()[2] == "b"
    assert chunks[2].splitlines()[5] == "d"


@pytest.mark.parametrize(
    ("use", "column"),
    [
        # an operand used with another shape than its definition's (the function argument)
        ("%0 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[4,19],f32>, !torch.vtensor<[18,23],f32> -> !torch.vtensor<[4,23],f32>", 29),
        # another dtype
        ("%0 = torch.aten.relu %arg1 : !torch.vtensor<[19,23],f16> -> !torch.vtensor<[19,23],f16>", 24),
        # another rank
        ("%0 = torch.aten.relu %arg1 : !torch.vtensor<[19,23,1],f32> -> !torch.vtensor<[19,23,1],f32>", 24),
    ],
)
def test_a_use_typed_unlike_its_definition_is_a_located_error(use, column):
    # Every torch tensor type once compared equal to every other, and such uses were retyped.
    text = ("func.func @main(%arg0: !torch.vtensor<[4,19],f32>, %arg1: !torch.vtensor<[19,23],f32>) {\n"
            f"  {use}\n  return\n}}\n")  # fmt: skip
    with pytest.raises(MipscError) as info:
        parse_module(make_context(), text, "use.mlir")
    err = info.value
    assert (err.location.line, err.location.column) == (2, column)
    assert "previously used or defined with type !torch.vtensor<[19,23],f32>" in err.message


def test_torch_types_compare_by_their_parameters():
    from xdsl.dialects.builtin import f16, f32

    from mipsc.dialects.torch import IntType, ListType, ValueTensorType

    assert ValueTensorType([18, 23], f32) != ValueTensorType([19, 23], f32)
    assert ValueTensorType([2], f32) != ValueTensorType([2], f16)
    assert ValueTensorType([2], f32) == ValueTensorType([2], f32)
    assert len({ValueTensorType([2], f32), ValueTensorType([3], f32)}) == 2
    assert ListType([IntType()]) != ListType([ValueTensorType([2], f32)])


def test_importing_mipsc_leaves_xdsl_lexer_as_it_is():
    import re

    import xdsl.utils.mlir_lexer as lexer

    import mipsc.ir

    stock = lexer.MLIRLexer._unescaped_characters_regex
    assert stock is not mipsc.ir._LinearStringLexer._unescaped_characters_regex
    assert stock.pattern == re.compile(stock.pattern).pattern and "(?:[^" in stock.pattern


def test_a_stray_quote_is_an_error_at_once():
    import time

    start = time.monotonic()
    with pytest.raises(MipscError):
        parse_module(make_context(), 'func.func @f() {\n  %0 = "x' + "a" * 5000 + "\n}\n", "q.mlir")
    assert time.monotonic() - start < 1.0


def test_runtime_assert_keeps_its_custom_syntax():
    """torch-mlir's onnx-to-torch conversion prints `torch.runtime.assert` in its own syntax."""
    text = """
func.func @f(%arg0: !torch.int) {
  %0 = torch.aten.ge.int %arg0, %arg0 : !torch.int, !torch.int -> !torch.bool
  torch.runtime.assert %0, "dim must be >= 1"
  return
}
"""
    out = round_trip(text)
    assert 'torch.runtime.assert %0, "dim must be >= 1"' in out
    assert round_trip(out) == out
