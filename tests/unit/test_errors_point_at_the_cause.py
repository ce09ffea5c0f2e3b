"""Errors that point at the cause (issue 14, parts 4, 5 and 8): iree-compile's first error
without its IR dumps, elided weights named, `-v`'s copy-pasteable iree-compile command and the
CPU it compiled for, and the small things (hasattr, --shape 0x4x4, the demo's advice)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import mipsc
from mipsc.backend.iree_compile import MAX_LINE, MAX_NOTE_LINES, iree_compile_error
from mipsc.cli import main

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
BIN = Path(sys.executable).parent


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


TARGET = (
    '#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64", {cpu = "znver4", cpu_features = "'
    + ",".join(f"+feature{i}" for i in range(300))
    + '", native_vector_size = 64 : i64}>'
)
# What iree-compile printed for a module whose weights were elided: an unlocated root cause,
# then a located consequence whose note dumps a whole executable of LLVM dialect IR.
ELIDED_STDERR = (
    "error: resource does not exist\n"
    "m.mlir:1:1: error: failed to translate the MLIR LLVM dialect to the native llvm::Module\n"
    "m.mlir:1:1: note: see current operation: \n"
    f'"hal.executable.variant"() <{{sym_name = "embedded_elf_x86_64", target = {TARGET}}}> ({{\n'
    + "".join(f'  %{i} = "llvm.add"(%a, %b) : (i64, i64) -> i64\n' for i in range(400))
    + "}) : () -> ()\n"
    "m.mlir:1:1: error: failed to serialize executables\n"
)


def test_the_first_error_is_the_headline_even_without_a_location():
    err = iree_compile_error(ELIDED_STDERR, 1)
    assert err.message == "iree-compile: resource does not exist"
    text = err.render()
    assert "failed to serialize executables" in text  # the consequences are notes
    assert "llvm.add" not in text  # no IR dump
    assert "feature299" not in text and "#hal.executable.target<...>" in text
    assert len(text.splitlines()) <= MAX_NOTE_LINES + 4
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE + 40


def test_an_8_bit_scalar_op_says_how_to_compute_it():
    """IREE's abort on `x * 3` of an int8 tensor said only "dstOriginalDtype has to be passed"."""
    stderr = (
        "m.py:6:9: error: unimplemented: for conversion to byte or char type dstOriginalDtype "
        "has to be passed to convertScalarToDtype\nPlease report issues to IREE\n"
    )
    err = iree_compile_error(stderr, 1)
    assert err.notes[0].startswith("IREE cannot compile this op on 8-bit integers")
    assert "(x.to(torch.int32) * 3).to(torch.int8)" in err.notes[0]


def test_long_notes_are_cut_with_a_pointer_to_the_full_output():
    stderr = "m.mlir:2:3: error: boom\n" + "".join(
        f"m.mlir:{i}:1: note: note number {i}\n" for i in range(3, 60)
    )
    text = iree_compile_error(stderr, 1).render()
    assert "note number 3" in text and "note number 59" not in text
    assert "more; rerun the iree-compile command that `mipsc compile -v` prints" in text


def test_elided_weights_get_a_sentence_not_llvm_ir(tmp_path):
    text = (DATA / "mlp.mlir").read_text()
    text = re.sub(r"dense_resource<[^>]+>", "dense_resource<__elided__>", text)
    path = tmp_path / "elided.mlir"
    path.write_text(text[: text.index("{-#")])
    result = run("compile", path, "-o", tmp_path / "e.vmfb")
    assert result.exit_code == 1
    assert f"{path}:2:" in result.output
    assert "the weights of this export were left out when it was printed" in result.output
    assert "save_mlir" in result.output
    assert "llvm" not in result.output
    assert len(result.output.splitlines()) < 8


UNLOWERABLE = """func.func @main(%x: !torch.vtensor<[4,4],f32>) -> !torch.vtensor<[4],f32> {
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %0:2 = torch.operator "torch.aten.median.dim"(%x, %int1, %false) : (!torch.vtensor<[4,4],f32>, !torch.int, !torch.bool) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],si64>)
  return %0#0 : !torch.vtensor<[4],f32>
}
"""


def test_an_unlowerable_torch_operator_is_named(tmp_path):
    path = tmp_path / "median.mlir"
    path.write_text(UNLOWERABLE)
    result = run("compile", path, "-o", tmp_path / "m.vmfb")
    assert result.exit_code == 1
    assert (
        f"{path}:4:3: error: iree-compile: failed to legalize operation 'torch.operator' "
        "(torch.aten.median.dim)" in result.output
    )


def test_verbose_prints_a_command_that_runs_and_the_cpu(tmp_path):
    out = tmp_path / "mlp.vmfb"
    done = subprocess.run(
        [str(BIN / "mipsc"), "compile", str(DATA / "mlp.mlir"), "-o", str(out), "-v"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    at = lines.index("mipsc: iree-compile command (the module goes to its stdin):")
    command = (lines[at + 1].removesuffix("\\") + lines[at + 2].lstrip()).strip()
    assert command.startswith(f"mipsc compile {DATA / 'mlp.mlir'} --emit=iree-input")
    assert "--iree-opt-const-eval=false" in command and f"-o {out}" in command
    cpu = re.search(r"is for the CPU '([\w.+-]+)' \(--target-cpu=host\)", done.stderr)
    assert cpu is not None and cpu[1] != "host"
    # Copy-paste: the printed command builds a module that runs and matches the first.
    again = tmp_path / "again.vmfb"
    pasted = command.replace(f"-o {out}", f"-o {again}")
    env = {"PATH": f"{BIN}:/usr/bin:/bin"}
    subprocess.run(["bash", "-c", pasted], check=True, cwd=tmp_path, env=env)
    x = np.random.default_rng(0).standard_normal((8, 32), dtype=np.float32)
    np.testing.assert_array_equal(mipsc.load(again).main(x), mipsc.load(out).main(x))


def test_hasattr_on_a_module_is_false_for_a_missing_function(mm_vmfb):
    model = mipsc.load(mm_vmfb)
    assert hasattr(model, "main") and not hasattr(model, "forward")
    assert getattr(model, "forward", None) is None
    with pytest.raises(mipsc.runtime.MipscError, match="has no function 'forward'"):
        model.forward  # noqa: B018


def test_a_list_input_asks_for_an_array(mm_vmfb):
    with pytest.raises(
        mipsc.runtime.MipscError, match=r"input 2 \(%arg1\) is a list, not an array"
    ):
        mipsc.load(mm_vmfb).main(np.ones((37, 19), np.float32), [[1.0] * 23] * 19)


def test_bench_shape_with_a_zero_says_so():
    result = run("bench", "--shape", "0x4x4")
    assert result.exit_code == 1
    assert "M, N and K must be at least 1" in result.output
    assert "write MxNxK" not in result.output


def test_the_demo_advice_names_files_that_exist():
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "demo.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    advice = done.stdout.strip().splitlines()[-1].split()
    assert advice[0].endswith("iree-run-module")
    files = [
        a.split("=@", 1)[1] if "=@" in a else a.split("=", 1)[1]
        for a in advice
        if a.startswith(("--module=", "--input="))
    ]
    assert files and all(Path(f).is_file() for f in files)
    subprocess.run(advice, check=True, capture_output=True)


def test_an_error_in_a_megabyte_line_quotes_a_window_of_it():
    """A module cut short inside its inline weights: the error quotes QUOTE_WIDTH characters
    around the column, not the line (which was 20 MB of hex)."""
    from mipsc.diagnostics import QUOTE_WIDTH, MipscError, SourceLocation, _quoted_line

    line = "x" * 1000 + "Y" + "z" * 1_000_000
    text, caret = _quoted_line(line, 1001)
    assert len(text) <= QUOTE_WIDTH + 6 and text.startswith("...") and text.endswith("...")
    assert text[caret.index("^")] == "Y"
    assert _quoted_line("short", 3) == ["short", "  ^"]
    head, head_caret = _quoted_line("Y" + "z" * (QUOTE_WIDTH + 100), 1)
    assert head.startswith("Yz") and head.endswith("...") and head_caret == "^"
    err = MipscError("bad", SourceLocation("f.mlir", 1, 1), notes=["because"])
    assert str(err) == "bad\nnote: because"  # what a Python traceback shows


def test_dynamic_dim_flags_name_inputs_as_other_messages_do_and_refuse_two_names():
    """--dynamic-dim counts inputs from 0 (its syntax); its messages name them as every other
    message does, `input 2 (%arg1)`; two names for one dim are an error, not the last one."""
    from mipsc.diagnostics import MipscError
    from mipsc.frontends.from_torch import dynamic_dims_spec

    examples = [np.zeros((4, 8), np.float32), np.zeros((4, 3), np.float32)]
    assert dynamic_dims_spec(["0:0=batch", "1:0=batch", "0:0"], examples) == (
        {0: "batch"},
        {0: "batch"},
    )
    assert dynamic_dims_spec(["1:1", "1:1=cols"], examples) == ({}, {1: "cols"})
    with pytest.raises(MipscError) as conflict:
        dynamic_dims_spec(["0:0=batch", "1:0=batch", "0:0=rows"], examples)
    assert str(conflict.value) == (
        "--dynamic-dim '0:0=rows': dim 0 of input 1 (%arg0) is already named 'batch' by "
        "--dynamic-dim '0:0=batch': a dim has one size, give it one name (the same name on "
        "several dims makes them one size)"
    )
    with pytest.raises(MipscError, match=r"there is no input 3 \(%arg2\): 2 example inputs "):
        dynamic_dims_spec(["2:0"], examples)
    with pytest.raises(MipscError, match=r"input 2 \(%arg1\) has rank 2 \(shape 4x3\), so it "):
        dynamic_dims_spec(["1:2"], examples)


MIXED_DTYPES = """\
func.func @main(%arg0: !torch.vtensor<[2,8],bf16>, %arg1: !torch.vtensor<[8,4],f32>) -> !torch.vtensor<[2,4],f32> {
  %w = torch.vtensor.literal(dense<1.0> : tensor<4x8xf32>) : !torch.vtensor<[4,8],f32>
  %none = torch.constant.none
  %x = torch.aten.relu %arg0 : !torch.vtensor<[2,8],bf16> -> !torch.vtensor<[2,8],bf16>
  %0 = torch.aten.linear %x, %w, %none : !torch.vtensor<[2,8],bf16>, !torch.vtensor<[4,8],f32>, !torch.none -> !torch.vtensor<[2,4],f32>
  %1 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[2,8],bf16>, !torch.vtensor<[8,4],f32> -> !torch.vtensor<[2,4],f32>
  return %0 : !torch.vtensor<[2,4],f32>
}
"""


def test_a_product_of_two_float_dtypes_names_the_input_before_iree_compile(tmp_path):
    """A bf16 input to an f32 model's Linear (torch.export traces it; eager torch refuses it):
    a located error naming the input and the dtype expected, not IREE's 'failed to legalize
    operation' from deep in its lowering; two inputs of two dtypes are named each."""
    source = tmp_path / "mixed.mlir"
    source.write_text(MIXED_DTYPES)
    linear = run("compile", source, "-o", tmp_path / "m.vmfb")
    assert linear.exit_code == 1
    assert linear.output.splitlines()[0] == (
        f"{source}:5:3: error: 'torch.aten.linear' multiplies bf16 and f32 tensors, which torch "
        "does not do (a product takes one dtype): input 1 (%arg0) is bf16, where the other "
        "operand is f32"
    )
    assert linear.output.splitlines()[-1] == (
        "note: give that input as f32 (x.to(torch.float32)), or export the model in bf16 "
        "(model.to(torch.bfloat16))"
    )
    source.write_text(MIXED_DTYPES.replace("return %0", "return %1"))
    mm = run("compile", source, "--emit=mips")
    assert mm.exit_code == 1
    assert "'torch.aten.mm' multiplies bf16 and f32 tensors" in mm.output
    # Both operands are inputs: each is named (it said 'operand 1 is bf16, operand 2 is f32')
    assert "input 1 (%arg0) is bf16, input 2 (%arg1) is f32\n" in mm.output
    assert mm.output.endswith("note: convert one input to the other's dtype before the product\n")
    # with the names an ONNX import gives its inputs in their locations
    named = MIXED_DTYPES.replace("return %0", "return %1").replace(
        "%arg1: !torch.vtensor<[8,4],f32>", '%arg1: !torch.vtensor<[8,4],f32> loc("w16")'
    )
    source.write_text(named)
    mm = run("compile", source, "--emit=mips")
    assert mm.exit_code == 1
    assert f"{source}:6:3: error: 'torch.aten.mm'" in mm.output
    assert 'input 1 (%arg0) is bf16, input 2 ("w16", %arg1) is f32\n' in mm.output


MIXED_WEIGHT = """\
module {
  util.global private @__auto.1.weight = dense<1.0> : tensor<4x8xf16>
  func.func @main(%arg0: !torch.vtensor<[2,8],f32>, %arg1: !torch.vtensor<[8,8],f32>) -> !torch.vtensor<[2,4],f32> {
    %h = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[2,8],f32>, !torch.vtensor<[8,8],f32> -> !torch.vtensor<[2,8],f32>
    %g = util.global.load @__auto.1.weight : tensor<4x8xf16>
    %w = torch_c.from_builtin_tensor %g : tensor<4x8xf16> -> !torch.vtensor<[4,8],f16>
    %none = torch.constant.none
    %0 = torch.aten.linear %h, %w, %none : !torch.vtensor<[2,8],f32>, !torch.vtensor<[4,8],f16>, !torch.none -> !torch.vtensor<[2,4],f32>
    return %0 : !torch.vtensor<[2,4],f32>
  }
}
"""


def test_a_weight_of_another_dtype_is_named_as_a_weight(tmp_path):
    """Sequential(Linear(8, 8), Linear(8, 4).half()) said 'operand 1 is f32, operand 2 is f16':
    the weight is named as the module's state_dict names it (inline: 'a weight')."""
    source = tmp_path / "weight.mlir"
    source.write_text(MIXED_WEIGHT)
    result = run("compile", source, "--emit=mips")
    assert result.exit_code == 1
    assert f"{source}:8:5: error: 'torch.aten.linear' multiplies f32 and f16" in result.output
    assert "operand 1 is f32, operand 2 (weight '1.weight') is f16\n" in result.output
    inline = "%w = torch.vtensor.literal(dense<1.0> : tensor<4x8xf16>) : !torch.vtensor<[4,8],f16>"
    source.write_text(
        MIXED_WEIGHT.replace(
            "%w = torch_c.from_builtin_tensor %g : tensor<4x8xf16> -> !torch.vtensor<[4,8],f16>",
            inline,
        )
    )
    result = run("compile", source, "--emit=mips")
    assert result.exit_code == 1
    assert "operand 1 is f32, operand 2 (a weight) is f16\n" in result.output


def test_an_integer_input_to_a_float_product_names_the_input(tmp_path):
    """An int64 input to an f32 model's Linear failed in iree-compile ('failed to legalize
    operation torch.aten.mm', with a note blaming IREE's torch frontend); int x int stays."""
    source = tmp_path / "mixed.mlir"
    source.write_text(MIXED_DTYPES.replace("bf16", "si64"))
    linear = run("compile", source, "--emit=mips")
    assert linear.exit_code == 1
    assert linear.output.splitlines()[0] == (
        f"{source}:5:3: error: 'torch.aten.linear' multiplies si64 and f32 tensors, which torch "
        "does not do (a product takes one dtype): input 1 (%arg0) is si64, where the other "
        "operand is f32"
    )
    assert linear.output.splitlines()[-1] == "note: give that input as f32 (x.to(torch.float32))"
    ints = MIXED_DTYPES.replace("bf16", "si64").replace("f32", "si32").replace("1.0", "1")
    source.write_text(ints.replace("return %0", "return %1"))
    assert run("compile", source, "--emit=mips").exit_code == 0  # IREE's path, with a remark


class _Node:
    def __init__(self, modules: dict | None, trace: str | None) -> None:
        self.meta = {"nn_module_stack": modules, "stack_trace": trace}


class _Graph:
    def __init__(self, *nodes: _Node) -> None:
        self.nodes = nodes


TORCH_FRAME = '  File "/venv/lib/python3.11/site-packages/torch/nn/modules/linear.py", line 134, in forward\n'


def test_an_op_of_a_builtin_module_is_placed_in_it_not_in_a_pseudo_file():
    """An error on an nn.Linear (or an nn.Sequential of them) was located at `<Linear
    export>:5:5`, a line of an MLIR text the user never sees. A node no line of the user's made
    gets a last frame naming its torch.nn module, which errors print as `in torch.nn.Linear
    (built-in), submodule 0`; a node of the user's code keeps its line."""
    from mipsc.diagnostics import SourceLocation
    from mipsc.frontends.from_torch import name_builtin_frames, python_locations

    sequential = ("0", "torch.nn.modules.linear.Linear")
    user = '  File "model.py", line 12, in forward\n'
    nodes = (
        _Node({"a": ("", "torch.nn.modules.container.Sequential"), "b": sequential}, TORCH_FRAME),
        _Node({"a": ("L['self'].seq.1", "torch.nn.modules.activation.ReLU")}, None),  # TorchDynamo's
        _Node({"a": ("fc", "torch.nn.modules.linear.Linear")}, user),
        _Node({"a": ("", "transformers.models.bert.BertLayer")}, TORCH_FRAME),  # not torch.nn's
    )
    name_builtin_frames(_Graph(*nodes))
    assert nodes[0].meta["stack_trace"].endswith(
        'File "torch.nn.Linear (built-in), submodule 0", line 0, in forward\n'
    )
    assert 'File "torch.nn.ReLU (built-in), submodule seq.1", line 0' in nodes[1].meta["stack_trace"]
    assert nodes[2].meta["stack_trace"] == user and nodes[3].meta["stack_trace"] == TORCH_FRAME
    text = '#loc1 = loc("torch.nn.Linear (built-in)":0:0)\n%0 = torch.aten.linear %a loc(#loc1)\n'
    assert python_locations(text) == '%0 = torch.aten.linear %a loc("torch.nn.Linear (built-in)":0:0)\n'
    assert str(SourceLocation("torch.nn.Linear (built-in)", 0, 0)) == "in torch.nn.Linear (built-in)"
    assert str(SourceLocation("model.py", 12, 5)) == "model.py:12:5"


# iree-opt's onnx-to-torch output with --mlir-print-debuginfo, for a model imported by
# mipsc.frontends.onnx_import (each node named `NAME (OpType)`, each argument its graph input).
ONNX_CONVERTED = """#loc2 = loc("hidden")
module {
  func.func @main_graph(%arg0: !torch.vtensor<[2,8],f32> loc("hidden"), %arg1: !torch.vtensor<[2,4],f32> loc("attention_mask")) -> !torch.vtensor<[2,4],f32> {
    %int1 = torch.constant.int 1 loc(#loc)
    %1 = torch.aten.mm %arg0, %arg1 : !torch.vtensor<[2,8],f32>, !torch.vtensor<[8,4],f32> -> !torch.vtensor<[2,4],f32> loc(#loc5)
    %2 = torch.aten.add.Tensor %1, %1, %int1 : !torch.vtensor<[2,4],f32>, !torch.vtensor<[2,4],f32>, !torch.int -> !torch.vtensor<[2,4],f32> loc(fused["#2 (Add)", "/x (Mul)"])
    return %2 : !torch.vtensor<[2,4],f32> loc(#loc)
  } loc(#loc1)
} loc(#loc)
#loc = loc(unknown)
#loc1 = loc("graph:main_graph")
#loc5 = loc("/encoder/proj/MatMul (MatMul)")
"""


def test_onnx_ops_are_placed_at_their_nodes_and_inputs_keep_their_names():
    from mipsc.diagnostics import SourceLocation, input_name, input_names
    from mipsc.frontends.from_onnx import onnx_locations

    text = onnx_locations(ONNX_CONVERTED, "model.onnx")
    assert "#loc" not in text
    assert 'loc("model.onnx, node /encoder/proj/MatMul (MatMul)":0:0)' in text
    assert 'loc("model.onnx, node #2 (Add)":0:0)' in text  # the first node of a fused one
    assert '%arg1: !torch.vtensor<[2,4],f32> loc("attention_mask")' in text
    assert "torch.constant.int 1\n" in text and "graph:" not in text
    place = SourceLocation("model.onnx, node #2 (Add)", 0, 0)
    assert str(place) == "in model.onnx, node #2 (Add)"
    assert input_name(1, "attention_mask") == 'input 2 ("attention_mask", %arg1)'
    assert input_name(1) == "input 2 (%arg1)"
    assert input_names({"mipsc.input_names": '["hidden", null]'}) == ["hidden", None]
    assert input_names({}) == [] and input_names({"mipsc.input_names": "?"}) == []


def test_describe_nodes_names_each_node_with_its_op_type():
    from types import SimpleNamespace

    from mipsc.frontends.onnx_import import describe_nodes

    graph = SimpleNamespace(
        node=[SimpleNamespace(name="/fc/MatMul", op_type="MatMul"), SimpleNamespace(name="", op_type="Add")]
    )
    describe_nodes(graph)
    assert [n.name for n in graph.node] == ["/fc/MatMul (MatMul)", "#1 (Add)"]


# What iree-compile printed for f64 tanh and f64 gelu (erf) with f64 kept as f64: the link
# error naming the C function comes unlocated, before the located "failed to link".
F64_TANH_STDERR = (
    "iree-lld: error: undefined symbol: tanh\n"
    ">>> referenced by m.py:5\n"
    ">>>               /tmp/main_async_dispatch_0-84f519.o:(main$async_dispatch_0_elementwise_32_f64)\n"
    "Linking failed; escaped command line returned exit code 256:\n"
    "LLD_VERSION=IREE iree-lld -flavor gnu -o /tmp/x.so\n"
    "m.py:5:9: error: failed to link executable and generate target dylib (check above for more "
    "specific error messages)\n"
    "m.py:5:9: error: failed to serialize executable for target backend llvm-cpu\n"
)
F64_ERF_STDERR = (
    "m.py:8:9: error: failed to legalize operation 'math.erf'\n"
    'm.py:8:9: note: see current operation: %57 = "math.erf"(%56) <{fastmath = '
    "#arith.fastmath<none>}> : (vector<8xf64>) -> vector<8xf64>\n"
)


@pytest.mark.parametrize(
    ("stderr", "headline"),
    [
        (F64_TANH_STDERR, "iree-compile: failed to link a dispatch: it calls 'tanh', which "
                          "IREE's embedded CPU code does not provide"),
        (F64_ERF_STDERR, "iree-compile: failed to legalize operation 'math.erf'"),
    ],
)  # fmt: skip
def test_f64_math_iree_cannot_compile_says_what_to_do(stderr, headline):
    # Before: "failed to link executable and generate target dylib (check above ...)", with
    # the line above (the missing symbol) dropped, and no way out named.
    err = iree_compile_error(stderr, 1)
    assert err.message == headline
    assert str(err.location).startswith("m.py:")
    assert "compute that op in f32 (e.g. `torch.tanh(x.float()).double()`)" in err.render()


def test_an_f32_math_op_iree_cannot_legalize_gets_no_f64_advice():
    stderr = F64_ERF_STDERR.replace("f64", "f32")
    assert "in f32" not in iree_compile_error(stderr, 1).render()
