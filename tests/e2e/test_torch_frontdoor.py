"""The PyTorch front door: mipsc.compile(module, ...) and `mipsc compile model.py:NAME`, checked
against torch's own outputs, with every matmul counted in the kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the torch front door needs the mipsc[torch] extra (torch, iree-turbine)"
)
pytest.importorskip(
    "iree.turbine.aot", reason="the torch front door needs iree-turbine (mipsc[torch] extra)"
)

from click.testing import CliRunner  # noqa: E402

import mipsc  # noqa: E402
from mipsc.cli import main  # noqa: E402
from mipsc.diagnostics import MipscError  # noqa: E402

pytestmark = pytest.mark.e2e


class MLP(torch.nn.Module):
    """Two layers: linear, relu, linear."""

    def __init__(self, d_in: int = 8, hidden: int = 32, d_out: int = 4) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(d_in, hidden)
        self.fc2 = torch.nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class BmmMatmul(torch.nn.Module):
    """A batched product of the two inputs, then a matmul with a weight (N-D · 2-D)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(6, 5))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.bmm(a, b)
        return p, torch.matmul(p, self.w)


def _all_routed(model: mipsc.compiled.CompiledModel, count: int) -> None:
    assert model.routed == (count, count), model.report


def test_mlp_matches_torch_and_runs_in_the_kernel(kernel_calls):
    torch.manual_seed(0)
    module = MLP()
    x = torch.randn(4, 8)
    model = mipsc.compile(module, x)
    _all_routed(model, 2)
    assert model.parameters is None and "dense_resource" in model.mlir  # small: inline
    before = kernel_calls["mips_matmul_f32"]
    got = model(x)
    assert isinstance(got, torch.Tensor)  # torch in, torch out
    torch.testing.assert_close(got, module(x).detach(), rtol=1e-5, atol=1e-5)
    assert kernel_calls["mips_matmul_f32"] == before + 2
    as_numpy = model(x.numpy())  # numpy in, numpy out
    assert isinstance(as_numpy, np.ndarray)
    np.testing.assert_allclose(as_numpy, got.numpy(), rtol=0, atol=0)


def test_bmm_and_matmul_with_dynamic_batch(kernel_calls):
    torch.manual_seed(1)
    module = BmmMatmul()
    a, b = torch.randn(3, 4, 7), torch.randn(3, 7, 6)
    model = mipsc.compile(module, a, b, dynamic_shapes=({0: "batch"}, {0: "batch"}))
    _all_routed(model, 2)
    for batch in (3, 5):
        a, b = torch.randn(batch, 4, 7), torch.randn(batch, 7, 6)
        before = kernel_calls["mips_matmul_f32"]
        p, q = model(a, b)
        want_p, want_q = module(a, b)
        torch.testing.assert_close(p, want_p.detach(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(q, want_q.detach(), rtol=1e-5, atol=1e-5)
        assert kernel_calls["mips_matmul_f32"] >= before + 2


def test_external_weights_go_to_an_irpa_and_save_writes_both(tmp_path):
    torch.manual_seed(2)
    module = MLP()
    x = torch.randn(2, 8)
    model = mipsc.compile(module, x, external_weights=True)
    assert model.parameters is not None and model.parameters.suffix == ".irpa"
    assert '#flow.parameter.named<"model"::' in model.mlir
    torch.testing.assert_close(model(x), module(x).detach(), rtol=1e-5, atol=1e-5)
    vmfb, irpa = model.save(tmp_path / "mlp.vmfb")
    assert irpa == tmp_path / "mlp.irpa" and irpa.stat().st_size > 0
    # A file without a scope serves the module's only scope (`model`).
    # The choice holds for one export: the same module inlines its weights when asked next.
    inline = mipsc.compile(module, x, external_weights=False)
    assert inline.parameters is None and "#flow.parameter.named" not in inline.mlir
    torch.testing.assert_close(inline(x), module(x).detach(), rtol=1e-5, atol=1e-5)
    again = mipsc.load(vmfb, parameters=irpa)
    np.testing.assert_allclose(
        again.main(x.numpy()), module(x).detach().numpy(), rtol=1e-5, atol=1e-5
    )


def test_a_collected_or_closed_model_removes_its_folder_without_a_warning(tmp_path, monkeypatch):
    import gc
    import warnings

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    x = torch.randn(2, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = mipsc.compile(MLP(), x, external_weights=True)
        folder = model.parameters.parent
        assert folder.parent == tmp_path and folder.is_dir()
        del model
        gc.collect()
        assert not folder.exists()
        closed = mipsc.compile(MLP(), x, external_weights=True)
        closed.close()
        assert not closed.parameters.parent.exists()
        del closed
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_large_weights_are_external_by_default(monkeypatch):
    from mipsc.frontends import from_torch

    monkeypatch.setattr(from_torch, "EXTERNAL_WEIGHTS_BYTES", 1024)  # the MLP has ~1.3 KiB
    model = mipsc.compile(MLP(), torch.randn(1, 8))
    assert model.parameters is not None


def test_a_plain_function_and_numpy_examples():
    model = mipsc.compile(
        lambda a, b: torch.mm(a, b).relu(), np.ones((3, 5), np.float32), np.ones((5, 2), np.float32)
    )
    _all_routed(model, 1)
    a = np.arange(15, dtype=np.float32).reshape(3, 5) - 7
    b = np.ones((5, 2), np.float32)
    np.testing.assert_allclose(model(a, b), np.maximum(a @ b, 0))


def test_untraceable_module_is_a_mipsc_error():
    class DataDependent(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # control flow on values: torch.export cannot trace it
                return x @ x
            return x

    with pytest.raises(MipscError, match=r"torch\.export could not trace DataDependent") as info:
        mipsc.compile(DataDependent(), torch.randn(3, 3))
    assert "Traceback" not in info.value.render()


def test_a_wrong_number_of_example_inputs_names_forwards_inputs():
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 4))
    with pytest.raises(MipscError) as info:
        mipsc.compile(mlp, torch.randn(2, 8), torch.randn(2, 8))
    assert info.value.message == (
        "Sequential.forward takes 1 input(s) (input), and 2 example input(s) were given: give "
        "one per input, in order"
    )
    with pytest.raises(MipscError, match=r"takes 1 input\(s\) \(input\), and 0 example"):
        mipsc.compile(mlp)


def test_a_failed_compile_leaves_no_working_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    class Median(torch.nn.Module):  # exported, then refused by iree-compile
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.median(x, dim=-1).values

    with pytest.raises(MipscError, match="median") as info:
        mipsc.compile(Median(), torch.randn(3, 3))
    assert info.value is not None  # the traceback, and its frames, are still alive here
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mipsc-")] == []


def test_a_module_torch_exports_but_iree_turbine_cannot_import_says_so():
    class NoneOut(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict:
            return {"a": x @ x, "n": None}

    with pytest.raises(MipscError, match=r"iree-turbine could not import .* NoneOut") as info:
        mipsc.compile(NoneOut(), torch.randn(3, 3))
    assert "output of `None` is not yet implemented" in str(info.value)  # the cause, in str()


def test_an_encoder_layer_compiled_under_no_grad_traces_to_plain_ops():
    """Under torch.no_grad() nn.TransformerEncoderLayer takes torch's fused inference path
    (aten._transformer_encoder_layer_fwd), which IREE cannot lower: the export traces with
    gradients on."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True).eval()
    x = torch.randn(2, 11, 64)
    with torch.no_grad():
        model = mipsc.compile(layer, x)
        want = layer(x)
    np.testing.assert_allclose(model(x), want.numpy(), rtol=1e-4, atol=1e-5)


def test_wrong_inputs_name_the_input():
    model = mipsc.compile(BmmMatmul(), torch.randn(3, 4, 7), torch.randn(3, 7, 6))
    with pytest.raises(MipscError, match=r"input 2 \(%arg1\) does not match main's signature"):
        model(torch.randn(3, 4, 7), torch.randn(3, 8, 6))
    with pytest.raises(MipscError, match=r"input 1 \(%arg0\) is a list, not an array"):
        model([[1.0]], torch.randn(3, 7, 6))


MODEL_PY = """
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def make_model():
    torch.manual_seed(0)
    return MLP()


def with_examples():
    return make_model(), (torch.randn(2, 8),)


def broken():
    return 1 / 0
"""


def _mipsc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mipsc ARGS` in `cwd`, in this process: torch is imported already (a subprocess per
    command imported torch and iree-turbine again, ~5-10 s each)."""
    here = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def test_cli_compiles_a_module_named_in_a_python_file(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_PY)
    done = _mipsc(
        "compile", "model.py:make_model", "--example-input", "4x8xf32",
        "--dynamic-dim", "0:0=batch", "-o", "m.vmfb", "--report", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "@main: 2 of 2 matmul-family ops run in the kernel" in done.stderr
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = _mipsc("run", "m.vmfb", "--input=@x.npy", "--output=@y.npy", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    torch.manual_seed(0)
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        user = importlib.import_module("model")
        want = user.make_model()(torch.from_numpy(x)).detach().numpy()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("model", None)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-5)


def test_cli_vmfb_to_stdout_says_where_the_weights_went_and_overwrites_no_file(
    tmp_path, monkeypatch
):
    """`-o -` names no file: the weights go beside the input (model.irpa), the message says
    where (absolute) and names no .vmfb; a second run does not overwrite that file."""
    (tmp_path / "model.py").write_text(MODEL_PY)
    monkeypatch.chdir(tmp_path)
    args = ["compile", "model.py:with_examples", "--external-weights", "-o", "-"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.stderr
    weights = tmp_path / "model.irpa"
    assert first.stderr == (
        f"mipsc: the weights are in {weights} (scope 'model'): run the .vmfb written to stdout "
        f"with --parameters={weights}\n"
    )
    assert b"IREE" in first.stdout_bytes[:256] and not (tmp_path / "model.vmfb").exists()
    saved = weights.read_bytes()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1
    assert again.stderr == (
        f"error: the export wrote its weights to a parameter file, and '{Path('model.irpa')}' "
        "exists: name the file for them with --weights-output=FILE.irpa (the output goes to "
        "stdout, and mipsc overwrites no file it was not given)\n"
    )
    assert weights.read_bytes() == saved and again.stdout_bytes == b""
    # --emit=torch without -o prints to stdout too: it overwrote model.irpa silently.
    torch_mlir = CliRunner().invoke(main, [*args[:-2], "--emit=torch"])
    assert torch_mlir.exit_code == 1 and "'model.irpa' exists" in torch_mlir.stderr
    assert weights.read_bytes() == saved and torch_mlir.stdout_bytes == b""
    assert {p.name for p in tmp_path.iterdir()} - {"__pycache__"} == {"model.irpa", "model.py"}


def test_cli_external_weights_run_with_an_unscoped_parameters_file(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_PY)
    done = _mipsc(
        "compile", "model.py:with_examples", "--external-weights", "-o", "w.vmfb", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "--parameters=w.irpa" in done.stderr and (tmp_path / "w.irpa").is_file()
    run = _mipsc("run", "w.vmfb", "--input=2x8xf32=1", "--parameters=w.irpa", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "result[0]: 2x4xf32" in run.stdout
    torch_text = _mipsc(
        "compile",
        "model.py:with_examples",
        "--emit=torch",
        "--inline-weights",
        "-o",
        "-",
        cwd=tmp_path,
    )
    assert "torch.aten.linear" in torch_text.stdout and "dense_resource" in torch_text.stdout


def test_cli_weights_output_puts_small_weights_in_that_file(tmp_path):
    """--weights-output implies external weights: a model under the 16 MiB size rule kept them
    inline, and the command wrote no .irpa and said nothing."""
    (tmp_path / "model.py").write_text(MODEL_PY)
    (tmp_path / "w").mkdir()
    done = _mipsc(
        "compile", "model.py:with_examples", "--weights-output=w/small.irpa", "--emit=torch",
        "-o", "m.mlir", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    weights = Path("w/small.irpa")
    assert done.stderr == f"mipsc: the weights are in {weights} (scope 'model')\n"
    assert (tmp_path / weights).stat().st_size > 4 * (8 * 16 + 16 * 4)
    torch_text = (tmp_path / "m.mlir").read_text()
    assert "flow.parameter.named" in torch_text and "dense_resource" not in torch_text


@pytest.mark.parametrize(
    ("spec", "extra", "message"),
    [
        ("model.py", ["--example-input", "4x8xf32"], "name the module to compile: model.py:NAME"),
        ("model.py:nothing", ["--example-input", "4x8xf32"], "model.py has no 'nothing'"),
        ("model.py:make_model", [], "needs example inputs to be exported"),
        (
            "model.py:broken",
            [],
            "model.py:26:12: error: calling broken() failed: ZeroDivisionError",
        ),
        ("model.py:make_model", ["--example-input", "4x9xf32"], "torch.export could not trace MLP"),
        (
            "model.py:make_model",
            ["--example-input", "4x8xf32", "--dynamic-dim", "1:0"],
            "there is no input 2 (%arg1): 1 example input (--dynamic-dim counts them from 0",
        ),
        (
            "missing.py:make_model",
            ["--example-input", "4x8xf32"],
            "cannot read 'missing.py': no such file",
        ),
    ],
)
def test_cli_python_input_errors(tmp_path, monkeypatch, spec, extra, message):
    # In this process (torch is imported already): a subprocess per case cost ~3 s each.
    (tmp_path / "model.py").write_text(MODEL_PY)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["compile", spec, *extra, "-o", "m.vmfb"])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_python_syntax_error_points_at_the_line(tmp_path, monkeypatch):
    (tmp_path / "bad.py").write_text("import torch\n\ndef make_model(:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["compile", "bad.py:make_model", "--example-input", "2xf32"])
    assert result.exit_code == 1
    assert result.output.startswith("bad.py:3:")
    assert "error: invalid Python" in result.output


def test_bf16_module_with_inline_weights(kernel_calls):
    """bf16 weights inline hit an IREE 3.13 bug unless constants stay out of dispatches: mipsc
    passes the workaround flag by itself."""
    torch.manual_seed(3)
    module = MLP().to(torch.bfloat16)
    x = torch.randn(4, 8).to(torch.bfloat16)
    model = mipsc.compile(module, x, external_weights=False)  # (bf16 default: external)
    assert model.parameters is None
    _all_routed(model, 2)
    before = kernel_calls["mips_matmul_bf16"]
    got = model(x)
    assert got.dtype == torch.bfloat16
    assert kernel_calls["mips_matmul_bf16"] == before + 2
    torch.testing.assert_close(got.float(), module(x).detach().float(), rtol=2e-2, atol=2e-2)
    # An f32 tensor given to it: the hint speaks torch (it gave numpy's ml_dtypes one).
    with pytest.raises(MipscError) as info:
        model(x.float())
    assert str(info.value).endswith(
        "expected bf16 but have f32; give it as a bfloat16 tensor: x.to(torch.bfloat16)"
    )


def test_bf16_weights_go_to_a_parameter_file_by_default():
    """iree-turbine inlines a weight through numpy, which has no bf16: a 48x48 bf16 Linear
    failed to export ("unsupported ScalarType BFloat16") unless its weights were external."""
    torch.manual_seed(4)
    module = torch.nn.Linear(48, 48).to(torch.bfloat16)
    x = torch.randn(3, 48).to(torch.bfloat16)
    model = mipsc.compile(module, x)
    assert model.parameters is not None
    torch.testing.assert_close(model(x).float(), module(x).detach().float(), rtol=2e-2, atol=2e-2)


class Unlowerable(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.median(y @ y.T, dim=1).values  # IREE's torch frontend lacks median.dim


def test_errors_and_report_point_at_the_python_line():
    """torch's source locations reach iree-compile: its error names the line of forward."""
    here = Path(__file__).resolve()
    lines = here.read_text().splitlines()
    median_line = next(i for i, line in enumerate(lines, 1) if "torch.median(y @ y.T" in line)
    with pytest.raises(MipscError) as info:
        mipsc.compile(Unlowerable(), torch.randn(2, 8))
    text = info.value.render()
    assert text.startswith(f"{here}:{median_line}:9: error: iree-compile: failed to legalize")
    assert "(torch.aten.median.dim)" in text
    assert text.splitlines()[1].strip().startswith("return torch.median(y @ y.T")
    model = mipsc.compile(MLP(), torch.randn(2, 8))
    fc1_line = next(
        i for i, line in enumerate(lines, 1) if "self.fc2(torch.relu(self.fc1(x)))" in line
    )
    assert f"({here}:{fc1_line}:" in model.report


class AddInPlace(torch.nn.Module):
    """Changes its input in place, then multiplies it: torch.export makes x a mutable argument
    (torch.copy.to_vtensor / torch.overwrite.tensor.contents), which mipsc's parser carries."""

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x.add_(1)
        return x @ w


def test_an_input_changed_in_place_is_changed_for_the_caller(kernel_calls):
    torch.manual_seed(5)
    x, w = torch.randn(4, 8), torch.randn(8, 8)
    model = mipsc.compile(AddInPlace(), x.clone(), w)
    _all_routed(model, 1)
    assert model.module.written_inputs["main"] == (0,)
    # A contiguous tensor is written in place; a transposed one and a numpy array through a
    # copy that is copied back.
    for given in (x.clone(), x.T.contiguous().T, x.numpy().copy()):
        want_x = torch.as_tensor(given).clone()
        want = AddInPlace()(want_x, w)
        before = kernel_calls["mips_matmul_f32"]
        got = model(given, w)
        assert kernel_calls["mips_matmul_f32"] == before + 1
        torch.testing.assert_close(torch.as_tensor(got), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.as_tensor(given), want_x, rtol=0, atol=0)
    assert float(torch.as_tensor(given)[0, 0]) == pytest.approx(float(x[0, 0]) + 1)


def test_an_input_changed_in_place_must_be_writable_and_not_aliased():
    """Read-only, its change was dropped silently; passed twice (`f(x, x)`), the other input
    read the value from before the change (torch.export assumes inputs do not alias)."""
    model = mipsc.compile(AddInPlace(), torch.zeros(8, 8), torch.zeros(8, 8))
    frozen = np.zeros((8, 8), np.float32)
    frozen.setflags(write=False)
    with pytest.raises(
        MipscError, match=r"changes input 1 \(%arg0\) in place, but the array given is read"
    ):
        model(frozen, np.zeros((8, 8), np.float32))
    x = torch.zeros(8, 8)
    with pytest.raises(
        MipscError, match=r"changes input 1 \(%arg0\) in place, and input 2 \(%arg1\) shares its"
    ):
        model(x, x)
    assert float(x.abs().max()) == 0  # nothing ran
    with pytest.raises(MipscError, match=r"input 2 \(%arg1\) shares its memory"):
        model(x, x[:, :].T)


def test_a_buffer_changed_in_forward_keeps_its_state_across_calls():
    class Counter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)
            self.register_buffer("total", torch.zeros(2, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.total.add_(self.fc(x))
            return self.total * 2

    torch.manual_seed(6)
    module, x = Counter().eval(), torch.randn(2, 4)
    model = mipsc.compile(module, x)
    with torch.no_grad():
        for _ in range(2):  # the module's state lives in the compiled model, as in torch
            torch.testing.assert_close(model(x), module(x), rtol=1e-5, atol=1e-5)


def test_example_inputs_as_one_tuple_as_torch_export_takes_them():
    torch.manual_seed(7)
    a, b = torch.randn(3, 4, 7), torch.randn(3, 7, 6)
    module = BmmMatmul()
    model = mipsc.compile(module, (a, b))
    _, got_q = model(a, b)
    _, want_q = module(a, b)
    torch.testing.assert_close(got_q, want_q.detach(), rtol=1e-5, atol=1e-5)
    with pytest.raises(
        MipscError,
        match=r"takes the example inputs by position, in the order of forward's parameters: "
        r"mipsc.compile\(model, a, b\) or mipsc.compile\(model, \(a, b\)\)",
    ):
        mipsc.compile(module, (a,), kwargs={"b": b})


def test_a_dynamic_dim_beyond_the_rank_names_the_input(tmp_path, monkeypatch):
    message = "input 1 (%arg0) has rank 2 (shape 4x8), so it has no dim 5: its dims are 0 to 1"
    with pytest.raises(MipscError, match=r"dynamic_shapes\[0\] = \{5: 'b'\}: ") as info:
        mipsc.compile(MLP(), torch.randn(4, 8), dynamic_shapes=({5: "b"},))
    assert message in info.value.render()
    (tmp_path / "model.py").write_text(MODEL_PY)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        ["compile", "model.py:make_model", "--example-input", "4x8xf32", "--dynamic-dim", "0:5"],
    )
    assert result.exit_code == 1
    assert result.output == f"error: --dynamic-dim '0:5': {message}\n"


PAIR_PY = """
import torch


class Pair(torch.nn.Module):
    def forward(self, x, y):
        return x + y
"""


@pytest.mark.parametrize(
    ("spec", "flags", "message"),
    [
        (
            "model.py:make_model",
            ["--example-input", "4x8xf32", "--dynamic-dim", "0:1"],
            "error: dim 1 of input 1 (%arg0) (--dynamic-dim 0:1) cannot be dynamic: MLP needs "
            "it to be 8: drop --dynamic-dim 0:1 (the dim then keeps its --example-input size)",
        ),
        (
            "pair.py:Pair",
            ["--example-input", "4x8xf32", "--example-input", "4x8xf32",
             "--dynamic-dim", "0:0=a", "--dynamic-dim", "1:0=b"],
            "error: dim 0 of input 2 (%arg1) (--dynamic-dim 1:0=b) cannot be dynamic: Pair "
            "needs it equal to dim 0 of input 1 (%arg0) (--dynamic-dim 0:0=a): give both one "
            "NAME (--dynamic-dim 1:0=a, as the other dim's)",
        ),
    ],
)  # fmt: skip
def test_a_dynamic_dim_torch_refuses_says_which_flag_to_give(tmp_path, monkeypatch, spec, flags, message):
    """torch.export's refusal reached the user as its own advice ("If you're using
    mark_dynamic, either remove it ... replace it with either Dim.STATIC or Dim.AUTO"), which
    the command line has no use for; now: which --dynamic-dim, and what to give instead."""
    (tmp_path / "model.py").write_text(MODEL_PY)
    (tmp_path / "pair.py").write_text(PAIR_PY)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["compile", spec, *flags, "-o", "m.vmfb"])
    assert result.exit_code == 1
    assert result.output.startswith(message + "\n"), result.output
    assert "mark_dynamic" not in result.output and "Dim." not in result.output


def test_a_dynamic_dim_torch_refuses_says_what_to_give_in_python():
    """The same refusal from mipsc.compile is said in dynamic_shapes' terms; its advice for a
    size that must be even (a Dim multiple) compiles."""

    def halves(x):
        return x.view(2, x.shape[0] // 2, 8) @ torch.ones(8, 3)

    x = torch.randn(6, 8)
    with pytest.raises(MipscError) as info:
        mipsc.compile(halves, x, dynamic_shapes=({0: "n"},))
    said = info.value.render()
    assert said.startswith(
        "error: dim 0 of input 1 (%arg0) cannot be dynamic: Function needs it to be a multiple "
        "of 2: give it as a multiple of a Dim: 2 * torch.export.Dim('n_2') in dynamic_shapes"
    ), said
    assert "mark_dynamic" not in said
    model = mipsc.compile(halves, x, dynamic_shapes=({0: 2 * torch.export.Dim("n_2")},))
    ten = torch.randn(10, 8)
    torch.testing.assert_close(model(ten), halves(ten), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("module", "where"),
    [
        (lambda: torch.nn.Linear(8, 4), "in torch.nn.Linear (built-in): error: "),
        (
            lambda: torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(8, 4)),
            "in torch.nn.Linear (built-in), submodule 1: error: ",
        ),
    ],
)
def test_an_error_in_a_builtin_module_names_it(module, where):
    """Errors on modules built from torch.nn blocks were located at `<Linear export>:5:5`, a
    pseudo-file, and quoted a line of exported MLIR."""
    with pytest.raises(MipscError) as info:
        mipsc.compile(module(), torch.ones(4, 8, dtype=torch.int64))
    said = info.value.render()
    assert said.startswith(where + "'torch.aten.linear' multiplies si64 and f32"), said
    assert "export>" not in said and "torch.vtensor" not in said


def test_the_report_places_builtin_modules(tmp_path, monkeypatch):
    (tmp_path / "seq.py").write_text(
        "import torch\nmodel = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU())\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        ["compile", "seq.py:model", "--example-input", "2x8xf32", "--emit=mips", "-o", "m.mlir",
         "--report"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(in torch.nn.Linear (built-in), submodule 0)" in result.output, result.output


def test_a_plain_function_with_dynamic_shapes():
    """A function is exported as a module with forward(*args): torch.export wanted its specs
    as one varargs entry, and a spec per input failed."""
    w = torch.randn(8, 4)
    model = mipsc.compile(lambda a: a @ w, torch.randn(3, 8), dynamic_shapes=({0: "rows"},))
    for rows in (5, 0):
        a = torch.randn(rows, 8)
        got = model(a)
        assert got.shape == (rows, 4)
        torch.testing.assert_close(got, a @ w, rtol=1e-5, atol=1e-5)


def test_a_module_with_varargs_and_dynamic_shapes():
    """A module whose forward takes a fixed input and then *args: the specs of the inputs
    *args collects go to torch.export as that one entry (one spec per input failed with
    "`inputs` has 2 elements, but `dynamic_shapes` has 3")."""

    class Sum(torch.nn.Module):
        def forward(self, a: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
            return a @ rest[0] + a @ rest[1]

    a, b, c = torch.randn(3, 8), torch.randn(8, 4), torch.randn(8, 4)
    model = mipsc.compile(Sum(), a, b, c, dynamic_shapes=({0: "rows"}, None, None))
    for rows in (5, 1):
        x = torch.randn(rows, 8)
        got = model(x, b, c)
        assert got.shape == (rows, 4)
        torch.testing.assert_close(got, x @ b + x @ c, rtol=1e-5, atol=1e-5)


def test_a_module_with_varargs_given_none_and_dynamic_shapes():
    """A forward with `*args` called with no input for them: the dynamic_shapes have no entry
    for `*args` (an empty one failed: "`inputs` has 3 elements, but `dynamic_shapes` has 4")."""

    class Attention(torch.nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, *mask: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.scaled_dot_product_attention(q, k, k, *mask)

    q, k = torch.randn(2, 7, 16), torch.randn(2, 9, 16)
    model = mipsc.compile(Attention(), q, k, dynamic_shapes=({1: "l"}, {1: "s"}))
    q, k = torch.randn(2, 3, 16), torch.randn(2, 11, 16)
    torch.testing.assert_close(model(q, k), Attention()(q, k), rtol=1e-5, atol=1e-5)


def test_an_output_that_is_an_input_is_not_the_callers_memory():
    """Inputs are read in place (no copy): an output IREE returns in an input's buffer is
    copied, so the caller's later changes to the input do not change it."""
    x = torch.randn(3, 8)
    model = mipsc.compile(lambda a: a, x)
    given = x.clone()
    got = model(given)
    given.add_(1)
    torch.testing.assert_close(got, x, rtol=0, atol=0)


def test_cli_verbose_prints_the_weights_file_and_the_link_from_the_environment(
    tmp_path, monkeypatch
):
    (tmp_path / "model.py").write_text(MODEL_PY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIPSC_KERNEL_LINK", "plugin")
    (tmp_path / "out").mkdir()
    old = os.umask(0o022)
    try:
        done = _mipsc(
            "compile", "model.py:with_examples", "--external-weights", "-o", "out/m.vmfb", "-v",
            cwd=tmp_path,
        )  # fmt: skip
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert (
        "  mipsc compile model.py:with_examples --emit=iree-input --print-debuginfo "
        "--kernel-link=plugin --external-weights --weights-output=out/m.irpa \\\n    | "
    ) in done.stderr
    # The .irpa gets the mode of any other output file (IREE wrote it 0640).
    assert (tmp_path / "out/m.irpa").stat().st_mode & 0o777 == 0o644
    missing = _mipsc(
        "compile", "model.py:with_examples", "--external-weights", "-o", "no/m.vmfb", cwd=tmp_path
    )
    assert missing.returncode == 1
    assert "error: cannot write 'no/m.irpa': no such directory" in missing.stderr


def test_outputs_keep_forwards_structure(kernel_calls):
    """A dict, a list and nested tuples come back as forward returned them (they came back as
    one flat tuple: `out["logits"]` failed)."""

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> dict[str, Any]:
            y = self.fc(x)
            return {"logits": y, "cache": (y * 2, [y.sum(), x])}

    torch.manual_seed(8)
    module, x = Decoder().eval(), torch.randn(3, 8)
    model = mipsc.compile(module, x)
    before = kernel_calls["mips_matmul_f32"]
    got = model(x)
    assert kernel_calls["mips_matmul_f32"] == before + 1
    want = module(x)
    assert isinstance(got, dict) and list(got) == ["logits", "cache"]
    assert isinstance(got["cache"], tuple) and isinstance(got["cache"][1], list)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    single = mipsc.compile(lambda a: (a @ a.T,), x)
    assert isinstance(single(x), tuple) and len(single(x)) == 1


class Product(torch.nn.Module):
    """No matmul: an elementwise product, a concatenation and a sum of three inputs."""

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, a]) * b + c.sum()


def test_inputs_that_break_the_exported_dim_relations_are_refused_not_computed():
    """Inputs given one dim name (and a dim derived from it) must be given sizes that keep the
    relation: a run that breaks it is a MipscError naming both dims and their sizes, not the
    elementwise product of 10 rows with 9 read past the end of the second input (which it
    returned before, with no error)."""
    batch = torch.export.Dim("batch")
    a, b, c = torch.randn(4, 8), torch.randn(8, 8), torch.randn(3, 4)
    shapes = ({0: batch}, {0: 2 * batch}, {1: batch})
    model = mipsc.compile(Product(), a, b, c, dynamic_shapes=shapes)
    a, b, c = torch.randn(5, 8), torch.randn(10, 8), torch.randn(3, 5)
    torch.testing.assert_close(model(a, b, c), Product()(a, b, c))
    with pytest.raises(MipscError) as info:
        model(a, torch.randn(9, 8), c)
    assert str(info.value).endswith(
        "the inputs' dynamic dims do not fit the relations the model was exported with: dim 0 "
        "of input 2 (%arg1) (given 9) must equal (dim 0 of input 1 (%arg0) (given 5) * 2) (dims "
        "named alike are one size: one name in dynamic_shapes or --dynamic-dim, one dim_param "
        "of an ONNX model), so nothing was computed"
    )
    with pytest.raises(MipscError, match=r"dim 1 of input 3 \(%arg2\) \(given 4\) must equal dim "
                       r"0 of input 1 \(%arg0\) \(given 5\)"):  # fmt: skip
        model(a, b, torch.randn(3, 4))


def test_the_cli_refuses_inputs_that_break_a_dim_name(tmp_path):
    """The same check is in the .vmfb: `mipsc run` refuses two inputs named one size given two
    sizes (their elementwise product read past the end of the smaller one)."""
    (tmp_path / "model.py").write_text(
        "import torch\n\nclass Mul(torch.nn.Module):\n"
        "    def forward(self, a, b):\n        return a * b\n"
    )
    compiled = CliRunner().invoke(main, [
        "compile", str(tmp_path / "model.py:Mul"), "--example-input", "4x8xf32",
        "--example-input", "4x8xf32", "--dynamic-dim", "0:0=n", "--dynamic-dim", "1:0=n",
        "-o", str(tmp_path / "m.vmfb"),
    ])  # fmt: skip
    assert compiled.exit_code == 0, compiled.output
    ran = CliRunner().invoke(
        main, ["run", str(tmp_path / "m.vmfb"), "--input=5x8xf32=1", "--input=3x8xf32=2"]
    )
    assert ran.exit_code != 0
    assert "dim 0 of input 2 (%arg1) (given 3) must equal dim 0 of input 1 (%arg0) (given 5)" in (
        ran.output
    )


def test_one_dim_name_on_examples_of_two_sizes_names_both_dims(tmp_path, monkeypatch):
    """Dims given one name must have one size in the example inputs: said in mipsc's terms
    (torch.export said "L['b'].size()[1] = 4 is not equal to L['a'].size()[0] = 2")."""
    a, b = torch.randn(2, 3), torch.randn(3, 4)
    said = (
        "dim 1 of input 2 (%arg1) and dim 0 of input 1 (%arg0) are both named 'n' (one name is "
        "one size), but their example inputs give them 4 and 2: give the example inputs one "
        "size for them, or the dims names of their own"
    )
    with pytest.raises(MipscError) as info:
        mipsc.compile(lambda x, y: x @ y, a, b, dynamic_shapes=({0: "n"}, {1: "n"}))
    assert str(info.value) == said
    (tmp_path / "mm.py").write_text(
        "import torch\n\nclass MM(torch.nn.Module):\n"
        "    def forward(self, a, b):\n        return a @ b\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [
        "compile", "mm.py:MM", "--example-input", "2x3xf32", "--example-input", "3x4xf32",
        "--dynamic-dim", "0:0=n", "--dynamic-dim", "1:1=n",
    ])  # fmt: skip
    assert result.exit_code == 1 and result.output == f"error: {said}\n", result.output


class Bytes(torch.nn.Module):
    """uint8 in, uint8 and int8 out (no matmul)."""

    def forward(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return a + 1, (a.int() * 2).to(torch.int8)


def test_uint8_results_come_back_as_uint8(tmp_path):
    """IREE returns torch's uint8 results as int8 (its torch lowering makes ui8 a signless i8):
    200 + 1 came back as -55, and as an int8 tensor. The .vmfb now says which results are
    unsigned, and they come back as uint8 with torch's values (numpy and torch, and loaded)."""
    a = torch.tensor([[0, 1, 127, 128, 200, 255]], dtype=torch.uint8)
    model = mipsc.compile(Bytes(), a)
    want = Bytes()(a)
    model.save(tmp_path / "m.vmfb")
    for got in (model(a), mipsc.load(tmp_path / "m.vmfb").main(a)):
        assert [g.dtype for g in got] == [torch.uint8, torch.int8]
        for g, w in zip(got, want, strict=True):
            assert torch.equal(g, w)
    unsigned, signed = model(a.numpy())
    assert unsigned.dtype == np.uint8 and unsigned.tolist() == [[1, 2, 128, 129, 201, 0]]
    assert signed.dtype == np.int8 and signed.tolist() == [[0, 2, -2, 0, -112, -2]]


class BytesProducts(torch.nn.Module):
    """8-bit integer products: mm, a batched matmul and a linear with bias, and an mv."""

    def forward(self, a, b, c, w, bias, v):
        return a @ b, torch.bmm(c, c.transpose(1, 2)), torch.nn.functional.linear(a, w, bias), a.T @ v


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8])
def test_8_bit_integer_products_compile_and_wrap_as_torch(dtype):
    """iree-compile aborted on an 8-bit integer product ("for conversion to byte or char type
    dstOriginalDtype has to be passed to convertScalarToDtype"); decompose-torch computes it
    in int32 and wraps the result to 8 bits, as torch does: equal to torch, bit for bit, with
    sums far past 8 bits. They stay on IREE's path (integer), as the report says."""
    low, high = (-128, 128) if dtype == torch.int8 else (0, 256)

    def ints(*shape: int) -> torch.Tensor:
        return torch.randint(low, high, shape, dtype=dtype)

    inputs = (ints(7, 33), ints(33, 13), ints(3, 5, 17), ints(13, 33), ints(13), ints(7))
    model = mipsc.compile(BytesProducts(), *inputs)
    assert "0 of 4 matmul-family ops run in the kernel" in model.report
    for got, want in zip(model(*inputs), BytesProducts()(*inputs), strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)


class BytesEinsums(torch.nn.Module):
    """8-bit integer einsums: a batched one with a permuted output, and a chain of three."""

    def forward(self, a, b, c):
        return torch.einsum("bij,bjk->bki", a, b), torch.einsum("ij,jk,kl->il", a[0], b[0], c)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8])
def test_8_bit_integer_einsums_compile_and_wrap_as_torch(dtype):
    """An 8-bit einsum met iree-compile's abort on an 8-bit product (its own lowering makes
    one); decompose-torch now writes it as matmuls, which WidenBytes computes in int32."""
    low, high = (-128, 128) if dtype == torch.int8 else (0, 256)
    inputs = tuple(
        torch.randint(low, high, shape, dtype=dtype) for shape in ((2, 5, 33), (2, 33, 7), (7, 3))
    )
    model = mipsc.compile(BytesEinsums(), *inputs)
    assert "computed in int32 on IREE's path (8-bit integers)" in model.report
    for got, want in zip(model(*inputs), BytesEinsums()(*inputs), strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)


def test_inputs_given_by_keyword_take_forwards_places():
    """`model(x, y=y)` was a plain TypeError: the compiled model took inputs by position only."""

    class Difference(torch.nn.Module):
        def forward(self, x, y):
            return x @ x.T - y

    x, y = torch.randn(3, 5), torch.randn(3, 3)
    model = mipsc.compile(Difference(), x, y)
    want = Difference()(x, y)
    torch.testing.assert_close(model(y=y, x=x), want)
    torch.testing.assert_close(model.forward(x, y=y), want)
    with pytest.raises(MipscError, match=r"^the inputs do not fit forward\(x, y\): .*'z'"):
        model(x, y, z=y)


def test_a_tensor_without_readable_data_is_a_mipsc_error_naming_the_input():
    """A meta tensor (no data), a sparse one or a complex32 one: a MipscError naming the input
    and why, not torch's NotImplementedError or RuntimeError from inside the call."""
    x = torch.randn(3, 4)
    model = mipsc.compile(torch.nn.Linear(4, 2), x)
    for bad, why in (
        (x.to("meta"), "Cannot copy out of meta tensor; no data!"),
        (x.to_sparse(), "unsupported memory format option Contiguous"),
        (torch.randn(3, 4, dtype=torch.complex32), "Got unsupported ScalarType ComplexHalf"),
    ):
        with pytest.raises(MipscError) as info:
            model(bad)
        assert str(info.value) == (
            f"input 1 (%arg0) cannot be read as an array ({why}): pass a dense tensor with its "
            "data on the CPU, of a dtype numpy has (or bfloat16)"
        )
    with pytest.raises(MipscError, match=r"^example input 1 is an int: pass a torch tensor"):
        mipsc.compile(torch.nn.Linear(4, 2), 3)


class RegroupTwoDynamicDims(torch.nn.Module):
    """Views that regroup two dynamic dims: `[s, b, 16] -> [s, 4b, 4] -> [s·b, 16]`."""

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        s, b, _ = q.shape
        return (q.view(s, b * 4, 4) * 2.0).view(s * b, 16)


def test_a_view_regrouping_two_dynamic_dims_keeps_its_shape():
    """IREE 3.13 lowered `[?, ?, 4] -> [?, 16]` as `[s, 16]`, not `[s·b, 16]`: a [5, 2, 16] input
    gave 5 rows of 10 (wrong numbers, no error). flatten-dynamic-views goes through 1-D."""
    model = RegroupTwoDynamicDims()
    compiled = mipsc.compile(model, torch.randn(5, 2, 16), dynamic_shapes=({0: "s", 1: "b"},))
    for shape in [(5, 2, 16), (3, 7, 16), (1, 1, 16), (9, 4, 16)]:
        x = torch.randn(*shape)
        got, want = compiled(x), model(x)
        assert got.shape == want.shape == (shape[0] * shape[1], 16)
        torch.testing.assert_close(got, want)


def test_multihead_attention_with_batch_and_sequence_dynamic():
    """nn.MultiheadAttention's head views regroup batch and sequence: both dynamic returned wrong
    numbers (and a wrong row count) before flatten-dynamic-views."""
    torch.manual_seed(0)

    class SelfAttention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = torch.nn.MultiheadAttention(16, 4, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mha(x, x, x, need_weights=False)[0]

    model = SelfAttention().eval()
    compiled = mipsc.compile(model, torch.randn(2, 5, 16), dynamic_shapes=({0: "b", 1: "s"},))
    for shape in [(2, 5, 16), (3, 7, 16), (1, 2, 16)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            want = model(x)
        torch.testing.assert_close(compiled(x), want, rtol=1e-5, atol=1e-5)


REGROUPINGS = {
    "merge-two": lambda x: x.view(x.shape[0] * x.shape[1], x.shape[2]),
    "split-then-merge": lambda x: x.view(x.shape[0], x.shape[1] * 2, -1).view(-1, x.shape[2] // 2),
    "three-dynamic": lambda x: x.view(x.shape[0] * x.shape[1] * x.shape[2], 4) + 1.0,
    "to-4d": lambda x: x.view(x.shape[0], x.shape[1], 2, -1).transpose(1, 2).reshape(-1, 8),
}


@pytest.mark.parametrize("name", sorted(REGROUPINGS))
def test_views_regrouping_dynamic_dims_match_torch(name):
    """The kind of the bug above over other regroupings: merges, splits, three dynamic dims,
    a transpose between two views; each at sizes other than the example's."""
    regroup = REGROUPINGS[name]
    three = name == "three-dynamic"

    class Regroup(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return regroup(x) * 3.0

    example = torch.randn(2, 3, 4, 4) if three else torch.randn(2, 3, 16)
    dims = {0: "a", 1: "b", 2: "c"} if three else {0: "a", 1: "b"}
    compiled = mipsc.compile(Regroup(), example, dynamic_shapes=(dims,))
    for shape in [(5, 7, 3, 4), (1, 2, 6, 4)] if three else [(5, 7, 16), (1, 2, 16)]:
        x = torch.randn(*shape)
        torch.testing.assert_close(compiled(x), Regroup()(x))
