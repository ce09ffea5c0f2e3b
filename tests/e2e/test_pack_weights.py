"""Weights packed once, at load time (pack-weights), end to end, on both kernel links.

Real exports whose linear weights are inline constants, parameters (.irpa) or bf16: the module
packs each weight once when it loads (mips_pack_b_<t>, counted through the plugin), every call
then runs mips_matmul_packed_<t> only, and the outputs are torch's. With the kernels embedded,
the same modules run in stock iree-run-module, no plugin anywhere, with the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import DATA, MANIFEST, load_npz, parameters
from test_embedded_kernels import run_stock

import mipsc
from mipsc.options import CompileOptions
from mipsc.pipeline import compile_module, lower_module

PLUGIN = CompileOptions(kernel_link="plugin")
EMBEDDED = CompileOptions(kernel_link="embedded")

pytestmark = pytest.mark.e2e

# name: (dtype, weights). mlp: Linear(32, 64) -> ReLU -> Linear(64, 16), batch 8.
MODELS = {"mlp": "f32", "mlp_external": "f32", "mlp_bf16": "bf16"}


def check_outputs(name: str, got) -> None:
    _, want = load_npz(name)
    got = got if isinstance(got, tuple) else (got,)
    tol = MANIFEST[name]["tolerance"]
    for g, w in zip(got, want, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), **tol)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weights_packed_once_at_load(name, tmp_path, kernel_calls):
    dtype = MODELS[name]
    text = (DATA / f"{name}.mlir").read_text()
    lowered = lower_module(text, f"{name}.mlir", PLUGIN)
    assert lowered.count("util.initializer") == 1  # one for every weight
    assert lowered.count("util.optimization_barrier") == 2  # one per weight
    vmfb = tmp_path / f"{name}.vmfb"
    compile_module(text, f"{name}.mlir", vmfb, PLUGIN)
    inputs, _ = load_npz(name)

    packs = kernel_calls.exact(f"mips_pack_b_{dtype}")
    plain = kernel_calls.exact(f"mips_matmul_{dtype}")
    packed = kernel_calls.exact(f"mips_matmul_packed_{dtype}")
    model = mipsc.load(vmfb, parameters=parameters(name))
    check_outputs(name, model.main(*inputs))
    # Both weights (64 and 16 columns: one pack tile each) were packed when the module loaded...
    assert kernel_calls.exact(f"mips_pack_b_{dtype}") == packs + 2
    assert kernel_calls.exact(f"mips_matmul_packed_{dtype}") == packed + 2
    check_outputs(name, model.main(*inputs))
    # ... and never again; the products never take the unpacked B.
    assert kernel_calls.exact(f"mips_pack_b_{dtype}") == packs + 2
    assert kernel_calls.exact(f"mips_matmul_packed_{dtype}") == packed + 4
    assert kernel_calls.exact(f"mips_matmul_{dtype}") == plain


def test_report_says_the_weight_is_pre_packed(tmp_path):
    from mipsc.remarks import collect_remarks, format_report

    text = (DATA / "mlp.mlir").read_text()
    with collect_remarks() as remarks:
        lower_module(text, "mlp.mlir", PLUGIN)
    report = format_report(remarks)
    # the first linear's bias and ReLU are fused (fuse-epilogues), and kept on the packed B
    first = "mips_matmul_packed_f32 (1 12x64 tile; B pre-packed at load; epilogue: bias, relu)"
    assert report.count(first) == 1, report
    second = "mips_matmul_packed_f32 (1 12x32 tile; B pre-packed at load; epilogue: bias)"
    assert report.count(second) == 1, report
    assert any("packed once at load into @" in str(r) for r in remarks)


def test_openblas_backend_takes_b_unpacked():
    text = (DATA / "mlp.mlir").read_text()
    lowered = lower_module(text, "mlp.mlir", CompileOptions(kernel_backend="openblas"))
    assert "util.initializer" not in lowered
    assert "mips_matmul_openblas_f32" in lowered


@pytest.mark.parametrize("name", sorted(MODELS))
def test_embedded_packed_module_runs_in_stock_iree_run_module(name, tmp_path):
    """--kernel-link=embedded: the pack and the packed matmuls are the object's entry points
    (nothing imported from a plugin), and stock iree-run-module gives torch's numbers."""
    dtype = MODELS[name]
    text = (DATA / f"{name}.mlir").read_text()
    lowered = lower_module(text, f"{name}.mlir", EMBEDDED)
    assert lowered.count("util.initializer") == 1
    assert lowered.count(f"func.call @mips_pack_b_{dtype}_embedded(") == 2
    assert lowered.count(f"func.call @mips_matmul_packed_{dtype}_embedded(") == 2
    assert f"@mips_matmul_{dtype}(" not in lowered
    assert f"@mips_pack_b_{dtype}(" not in lowered
    vmfb = tmp_path / f"{name}.vmfb"
    compile_module(text, f"{name}.mlir", vmfb, EMBEDDED)
    inputs, _ = load_npz(name)
    check_outputs(name, run_stock(vmfb, name, inputs, tmp_path))


def test_decode_step_weights_packed_with_the_plugin_only(kernel_calls):
    """A one-row f32 product (a decode step) packs its weight with the plugin link (its pack
    puts the copy on huge pages) and keeps it unpacked with the embedded link
    (tiling.prepack_pays); both match torch. Widths of several pack tiles and 32-column
    panels (the packed thin path's stripes), one not a multiple of 32."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    module = torch.nn.Sequential(
        torch.nn.Linear(96, 600, bias=False), torch.nn.SiLU(), torch.nn.Linear(600, 70)
    )
    x = torch.randn(1, 96)
    want = module(x).detach()
    for link, packed in (("plugin", True), ("embedded", False)):
        model = mipsc.compile(module, x, kernel_link=link)
        assert ("B pre-packed at load" in model.report) == packed, model.report
        before = kernel_calls.exact("mips_matmul_packed_f32")
        torch.testing.assert_close(model(x), want, rtol=1e-5, atol=1e-5)
        calls = kernel_calls.exact("mips_matmul_packed_f32") - before
        assert (calls > 0) == packed, (link, calls)
