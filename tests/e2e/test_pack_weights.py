"""Weights packed once, at load time (pack-weights), end to end.

Real exports whose linear weights are inline constants, parameters (.irpa) or bf16: the module
packs each weight once when it loads (mips_pack_b_<t>, counted), every call then runs
mips_matmul_packed_<t> only, and the outputs are torch's.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import DATA, MANIFEST, load_npz, parameters

import mipsc
from mipsc.pipeline import compile_module, lower_module

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
    lowered = lower_module(text, f"{name}.mlir")
    assert lowered.count("util.initializer") == 2  # one per weight
    assert "util.optimization_barrier" in lowered
    vmfb = tmp_path / f"{name}.vmfb"
    compile_module(text, f"{name}.mlir", vmfb)
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
        lower_module(text, "mlp.mlir")
    report = format_report(remarks)
    assert report.count("mips_matmul_packed_f32 (1 12x64 tile; B pre-packed at load)") == 1
    assert report.count("mips_matmul_packed_f32 (1 12x32 tile; B pre-packed at load)") == 1
    assert any("packed once at load into @" in str(r) for r in remarks)


def test_openblas_backend_takes_b_unpacked():
    text = (DATA / "mlp.mlir").read_text()
    lowered = lower_module(text, "mlp.mlir", kernel_backend="openblas")
    assert "util.initializer" not in lowered
    assert "mips_matmul_openblas_f32" in lowered
