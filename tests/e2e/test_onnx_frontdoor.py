"""The ONNX front door: `mipsc compile model.onnx` (iree-import-onnx, then iree-opt's
onnx-to-torch pipeline, then mipsc), on small models made here with onnx's helper API and
checked against onnx's reference evaluator, every MatMul and Gemm counted in the kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX front door needs the mipsc[onnx] extra")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import mipsc  # noqa: E402
from mipsc.diagnostics import MipscError  # noqa: E402
from mipsc.frontends.from_onnx import import_onnx  # noqa: E402
from mipsc.pipeline import compile_module  # noqa: E402
from mipsc.remarks import collect_remarks  # noqa: E402

pytestmark = pytest.mark.e2e
MIPSC = str(Path(sys.executable).with_name("mipsc"))
RNG = np.random.default_rng(7)


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def make_model(
    path: Path,
    nodes: list,
    inputs: dict[str, list[int | str]],
    outputs: dict[str, list[int | str]],
    weights: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> Path:
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        initializer=[numpy_helper.from_array(v, n) for n, v in (weights or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def compile_onnx(path: Path, tmp_path: Path) -> tuple[mipsc.runtime.Module, list]:
    text, _ = import_onnx(path)
    out = tmp_path / f"{path.stem}.vmfb"
    with collect_remarks() as remarks:
        compile_module(text, f"<{path.name}>", out)
    return mipsc.load(out), [r for r in remarks if r.routed is not None]


def check(path: Path, tmp_path: Path, feeds: dict[str, np.ndarray], kernel_calls, ops: int) -> None:
    module, rows = compile_onnx(path, tmp_path)
    assert len(rows) == ops and all(r.routed for r in rows), [str(r) for r in rows]
    want = ReferenceEvaluator(str(path)).run(None, feeds)
    before = kernel_calls["mips_matmul_f32"]
    got = module.main_graph(*feeds.values())
    got = got if isinstance(got, tuple) else (got,)
    assert kernel_calls["mips_matmul_f32"] >= before + ops
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("trans_a", "trans_b", "alpha", "beta", "bias"),
    [
        (0, 0, 1.0, 1.0, None),
        (0, 1, 1.0, 1.0, "row"),
        (1, 0, 0.5, 2.0, "full"),
        (1, 1, -1.5, 0.25, "row"),
        (0, 1, 2.0, 0.0, "full"),
    ],
)
def test_gemm_attributes(tmp_path, kernel_calls, trans_a, trans_b, alpha, beta, bias):
    m, k, n = 5, 7, 3
    a_shape = [k, m] if trans_a else [m, k]
    weights = {"B": f32(*([n, k] if trans_b else [k, n]))}
    node_inputs = ["A", "B"]
    if bias is not None:
        weights["C"] = f32(n) if bias == "row" else f32(m, n)
        node_inputs.append("C")
    node = helper.make_node(
        "Gemm", node_inputs, ["Y"], transA=trans_a, transB=trans_b, alpha=alpha, beta=beta
    )
    path = make_model(tmp_path / "gemm.onnx", [node], {"A": a_shape}, {"Y": [m, n]}, weights)
    check(path, tmp_path, {"A": f32(*a_shape)}, kernel_calls, ops=1)


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "y_shape"),
    [
        ([4, 6], [6, 5], [4, 5]),
        ([2, 4, 6], [2, 6, 5], [2, 4, 5]),  # batched
        ([3, 4, 6], [6, 5], [3, 4, 5]),  # N-D · 2-D
        ([6], [6, 5], [5]),  # vector · matrix
        ([2, 3, 6], [6], [2, 3]),  # 3-D · vector (IREE's own onnx lowering lacks it)
    ],
)
def test_matmul_ranks(tmp_path, kernel_calls, a_shape, b_shape, y_shape):
    node = helper.make_node("MatMul", ["A", "B"], ["Y"])
    path = make_model(tmp_path / "mm.onnx", [node], {"A": a_shape, "B": b_shape}, {"Y": y_shape})
    check(path, tmp_path, {"A": f32(*a_shape), "B": f32(*b_shape)}, kernel_calls, ops=1)


def test_attention_as_exporters_write_it(tmp_path, kernel_calls):
    """Q·Kᵀ, scale, softmax, ·V as plain ONNX ops: both products run in the kernel."""
    s, d = 6, 8
    nodes = [
        helper.make_node("MatMul", ["X", "Wq"], ["Q"]),
        helper.make_node("MatMul", ["X", "Wk"], ["K"]),
        helper.make_node("MatMul", ["X", "Wv"], ["V"]),
        helper.make_node("Transpose", ["K"], ["Kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["Q", "Kt"], ["S"]),
        helper.make_node("Mul", ["S", "scale"], ["Ss"]),
        helper.make_node("Softmax", ["Ss"], ["P"], axis=-1),
        helper.make_node("MatMul", ["P", "V"], ["Y"]),
    ]
    weights = {
        "Wq": f32(d, d),
        "Wk": f32(d, d),
        "Wv": f32(d, d),
        "scale": np.array(1 / np.sqrt(d), np.float32),
    }
    path = make_model(tmp_path / "attn.onnx", nodes, {"X": [2, s, d]}, {"Y": [2, s, d]}, weights)
    check(path, tmp_path, {"X": f32(2, s, d)}, kernel_calls, ops=5)


MLP_NODES = [
    helper.make_node("MatMul", ["x", "W1"], ["h"]),
    helper.make_node("Add", ["h", "b1"], ["hb"]),
    helper.make_node("Relu", ["hb"], ["r"]),
    helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], transB=1),
]


def mlp_onnx(tmp_path: Path) -> Path:
    weights = {"W1": f32(8, 16), "b1": f32(16), "W2": f32(4, 16), "b2": f32(4)}
    return make_model(
        tmp_path / "mlp.onnx", MLP_NODES, {"x": ["batch", 8]}, {"y": ["batch", 4]}, weights
    )


def mipsc_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MIPSC, *args], capture_output=True, text=True, cwd=cwd, check=False)


def test_cli_compile_and_run_an_onnx_file(tmp_path):
    path = mlp_onnx(tmp_path)
    done = mipsc_cli("compile", "mlp.onnx", "-o", "mlp.vmfb", "--report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "@main_graph: 2 of 2 matmul-family ops run in the kernel" in done.stderr
    x = f32(3, 8)  # a dynamic batch dim
    np.save(tmp_path / "x.npy", x)
    # No --function: the module's only function (main_graph) is called.
    run = mipsc_cli("run", "mlp.vmfb", "--input=@x.npy", "--output=@y.npy", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    (want,) = ReferenceEvaluator(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-5)


def test_cli_onnx_external_weights(tmp_path):
    path = mlp_onnx(tmp_path)
    done = mipsc_cli("compile", "mlp.onnx", "--external-weights", "-o", "w.vmfb", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "w.irpa").is_file() and "--parameters=w.irpa" in done.stderr
    x = f32(2, 8)
    got = mipsc.load(tmp_path / "w.vmfb", parameters=tmp_path / "w.irpa").main_graph(x)
    (want,) = ReferenceEvaluator(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_cli_opt_reads_onnx(tmp_path):
    mlp_onnx(tmp_path)
    done = mipsc_cli("opt", "mlp.onnx", "--convert-torch-to-mips", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("mips.matmul") == 2 and "onnx." not in done.stdout.replace(
        "torch.onnx_meta", ""
    )


def test_not_an_onnx_file(tmp_path):
    (tmp_path / "bad.onnx").write_text("hello")
    done = mipsc_cli("compile", "bad.onnx", cwd=tmp_path)
    assert done.returncode == 1
    assert "error: cannot import 'bad.onnx': not an ONNX model" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(MipscError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx")


@pytest.mark.parametrize(
    ("attributes", "q_heads", "kv_heads", "mask"),
    [
        ({"is_causal": 1}, 2, 2, False),
        ({"scale": 0.3}, 2, 2, True),  # an additive float mask
        ({"is_causal": 1}, 4, 2, False),  # grouped-query: 2 query heads per key/value head
    ],
    ids=["causal", "mask-and-scale", "gqa"],
)
def test_opset23_attention_node(tmp_path, kernel_calls, attributes, q_heads, kv_heads, mask):
    """IREE 3.13 cannot convert opset 23's one-node Attention (the dynamo exporter's form):
    mipsc expands it into its ONNX function body, and both products run in the kernel."""
    s, d = 5, 8
    shapes = {"q": [1, q_heads, s, d], "k": [1, kv_heads, s, d], "v": [1, kv_heads, s, d]}
    if mask:
        shapes["m"] = [s, s]
    node = helper.make_node("Attention", list(shapes), ["Y"], **attributes)
    path = make_model(tmp_path / "att.onnx", [node], shapes, {"Y": [1, q_heads, s, d]}, opset=23)
    check(path, tmp_path, {name: f32(*shape) for name, shape in shapes.items()}, kernel_calls, 2)


def test_left_over_op_without_a_function_body_is_named(tmp_path):
    from mipsc.frontends.from_onnx import _import_expanded

    path = mlp_onnx(tmp_path)
    with pytest.raises(MipscError, match="does not handle here: NoSuchOp"):
        _import_expanded(path, {"NoSuchOp"}, None, lambda _msg: None)


def test_external_data_counts_toward_the_weights_size(tmp_path):
    """A model whose weights are in an external data file (a small .onnx beside a large
    .data) is as large as both: the 16 MiB rule puts such weights in an .irpa."""
    from mipsc.frontends.from_onnx import model_bytes

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "main_graph",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])],
        initializer=[numpy_helper.from_array(f32(64, 64), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, location="ext.data", size_threshold=0)
    data = (tmp_path / "ext.data").stat().st_size
    assert data == 64 * 64 * 4
    assert model_bytes(path) == path.stat().st_size + data


def named_inputs_onnx(
    path: Path,
    mask_type: int = TensorProto.FLOAT,
    hidden: str = "hidden",
    node: str = "/encoder/proj/MatMul",
) -> Path:
    """hidden @ w + attention_mask, its nodes named as torch's exporter names them."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [hidden, "w"], ["proj"], name=node),
            helper.make_node("MatMul", ["attention_mask", "w"], ["masked"]),  # no name
            helper.make_node("Add", ["proj", "masked"], ["y"], name="/encoder/Add"),
        ],
        "main_graph",
        [
            helper.make_tensor_value_info(hidden, TensorProto.FLOAT, [2, 8]),
            helper.make_tensor_value_info("attention_mask", mask_type, [2, 8]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        initializer=[numpy_helper.from_array(f32(8, 4), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)  # (unchecked: the f16 form multiplies f16 by f32)
    return path


def test_messages_name_onnx_inputs_and_place_ops_in_the_model(tmp_path, monkeypatch):
    """An ONNX model's inputs were `input 2 (%arg1)`, and its ops were located in
    `<model.onnx as torch MLIR>:5:5`, a text the user never sees. Now the input's ONNX name is
    given, and an op is placed at its node (name and op type; `#1`, its index, when unnamed)."""
    from click.testing import CliRunner

    from mipsc.cli import main

    named_inputs_onnx(tmp_path / "f16.onnx", TensorProto.FLOAT16)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["compile", "f16.onnx", "-o", "m.vmfb"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "in f16.onnx, node #1 (MatMul): error: 'torch.aten.mm' multiplies f16 and f32 "
        "tensors, which torch does not do (a product takes one dtype): input 2 "
        '("attention_mask", %arg1) is f16, where the other operand is f32\n'
    ), result.output
    named_inputs_onnx(tmp_path / "m.onnx")
    result = CliRunner().invoke(main, ["compile", "m.onnx", "-o", "m.vmfb", "--report"])
    assert result.exit_code == 0, result.output
    assert "(in m.onnx, node /encoder/proj/MatMul (MatMul))" in result.output, result.output


def test_non_ascii_onnx_names_compile_and_read_as_written(tmp_path, monkeypatch):
    """iree-opt prints a non-ASCII name with MLIR's byte escapes (`loc("\\C3\\A9")` for
    `é`), which mipsc's parser refused ("Unexpected location syntax"): such a model did not
    compile. The escapes are read as the name's UTF-8, so messages show it as written."""
    from click.testing import CliRunner

    from mipsc.cli import main

    named_inputs_onnx(tmp_path / "wn.onnx", hidden="é", node="nœud/MatMul")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["compile", "wn.onnx", "-o", "wn.vmfb", "--report"])
    assert result.exit_code == 0, result.output
    assert "(in wn.onnx, node nœud/MatMul (MatMul))" in result.output, result.output
    main_graph = mipsc.load(tmp_path / "wn.vmfb").main_graph
    assert main_graph.input_names == ("é", "attention_mask")
    with pytest.raises(MipscError, match=r'input 1 \("é", %arg0\)'):
        main_graph(f32(3, 8), f32(2, 8))


def test_the_vmfb_keeps_the_onnx_input_names(tmp_path):
    """For messages about a call's inputs: the names are in the function's reflection."""
    import iree.runtime

    from mipsc.diagnostics import input_names

    text, _ = import_onnx(named_inputs_onnx(tmp_path / "m.onnx"))
    compile_module(text, "<m.onnx>", tmp_path / "m.vmfb")
    vm = iree.runtime.VmModule.mmap(iree.runtime.VmInstance(), str(tmp_path / "m.vmfb"))
    reflection = vm.lookup_function("main_graph").reflection
    assert input_names(reflection) == ["hidden", "attention_mask"]


def test_a_wrong_input_at_run_time_names_the_onnx_input(tmp_path):
    """Calling a compiled ONNX model with a wrong shape said `input 2 (%arg1)`; the message
    now gives the graph input's name too, read from the .vmfb."""
    text, _ = import_onnx(named_inputs_onnx(tmp_path / "m.onnx"))
    compile_module(text, "<m.onnx>", tmp_path / "m.vmfb")
    main_graph = mipsc.load(tmp_path / "m.vmfb").main_graph
    assert main_graph.input_names == ("hidden", "attention_mask")
    with pytest.raises(MipscError, match=r'input 2 \("attention_mask", %arg1\)'):
        main_graph(f32(2, 8), f32(3, 8))
    with pytest.raises(MipscError, match=r'input 1 \("hidden", %arg0\) is a str'):
        main_graph("x", f32(2, 8))


def test_inputs_that_share_a_dim_param_must_be_given_one_size(tmp_path):
    """ONNX gives dims of one dim_param one size. Two inputs `[batch, 8]` given 5 and 3 rows
    are refused, naming both; before, their elementwise product read past the end of the
    second and returned garbage. The MatMul's own batch dim is checked as well."""
    nodes = [helper.make_node("Mul", ["a", "b"], ["p"]), helper.make_node("MatMul", ["p", "w"], ["y"])]
    path = make_model(
        tmp_path / "mul.onnx", nodes, {"a": ["batch", 8], "b": ["batch", 8]}, {"y": ["batch", 4]},
        weights={"w": f32(8, 4)},
    )  # fmt: skip
    module, rows = compile_onnx(path, tmp_path)
    assert len(rows) == 1 and rows[0].routed
    a, b = f32(5, 8), f32(5, 8)
    want = ReferenceEvaluator(str(path)).run(None, {"a": a, "b": b})[0]
    np.testing.assert_allclose(module.main_graph(a, b), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(MipscError) as info:
        module.main_graph(a, f32(3, 8))
    assert (
        'dim 0 of input 2 ("b", %arg1) (given 3) must equal dim 0 of input 1 ("a", %arg0) (given '
        "5) (dims named alike are one size: one name in dynamic_shapes or --dynamic-dim, one "
        "dim_param of an ONNX model), so nothing was computed"
    ) in str(info.value)


def test_an_if_node_is_refused_at_the_node(tmp_path):
    """IREE converts an ONNX If into torch.prim.If, which mipsc's parser does not read: the
    compile failed with `<if.onnx as torch MLIR>:7:27: error: Expected ':'`, a place in a text
    the user never sees. It is refused at the node, saying what is not supported."""

    def branch(name: str, weight: str) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(name, TensorProto.FLOAT, [4, 3])
        return helper.make_graph(
            [helper.make_node("MatMul", ["A", weight], [name])], name, [], [out]
        )

    graph = helper.make_graph(
        [
            helper.make_node(
                "If", ["c"], ["Y"], then_branch=branch("t", "W"), else_branch=branch("e", "W2")
            )
        ],
        "main_graph",
        [
            helper.make_tensor_value_info("A", TensorProto.FLOAT, [4, 8]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4, 3])],
        initializer=[
            numpy_helper.from_array(f32(8, 3), "W"),
            numpy_helper.from_array(f32(8, 3), "W2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, tmp_path / "if.onnx")
    done = mipsc_cli("compile", "if.onnx", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(
        "in if.onnx, node #0 (If): error: ONNX control flow (an If or Loop node, which IREE "
        "converts to torch.prim.If) is not supported"
    ), done.stderr
