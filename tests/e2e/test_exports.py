"""Every committed PyTorch export, through `mipsc opt` (round trip) and `mipsc compile`.

The round trip must stay something iree-compile accepts and that computes torch's numbers;
`mipsc compile` must give the same numbers with its matmuls in our kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import DATA, MANIFEST, MATMUL_FAMILY, load_npz, parameters

import mipsc
from mipsc.backend.iree_compile import compile_mlir
from mipsc.ir import make_context, parse_module, print_module, verify_module
from mipsc.pipeline import compile_module, lower_module

pytestmark = pytest.mark.e2e


def check_outputs(name: str, got) -> None:
    """Same dtype and shape as torch's outputs, values within the manifest's tolerance."""
    _, want = load_npz(name)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    tol = MANIFEST[name]["tolerance"]
    for g, w in zip(got, want, strict=True):
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        # Compared in f64: exact for f32, f16 and bf16 (ml_dtypes) values alike.
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), **tol)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_round_trip_is_accepted_by_iree_and_computes_the_same(name, tmp_path):
    ctx = make_context()
    module = parse_module(ctx, (DATA / f"{name}.mlir").read_text(), f"{name}.mlir")
    verify_module(module)
    text = print_module(ctx, module)
    vmfb = tmp_path / f"{name}.vmfb"
    compile_mlir(text, vmfb, extra_flags=MANIFEST[name].get("compile_flags", []))
    inputs, _ = load_npz(name)
    check_outputs(name, mipsc.load(vmfb, parameters=parameters(name)).main(*inputs))


def kernel_symbol(name: str) -> str:
    dtype = MANIFEST[name]["inputs"][0]["dtype"]
    return f"mips_matmul_{dtype}"


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_mipsc_compile_computes_torch_numbers(name, tmp_path, kernel_calls):
    text = (DATA / f"{name}.mlir").read_text()
    lowered = lower_module(text, f"{name}.mlir")
    left = [op.strip() for op in MATMUL_FAMILY if op in lowered]
    assert not left, f"left on IREE's path: {left}"
    assert "flow.dispatch @mips_exe_0" in lowered
    vmfb = tmp_path / f"{name}.vmfb"
    # No flag from the manifest: mipsc compile must find the flags a model needs by itself.
    compile_module(text, f"{name}.mlir", vmfb)
    inputs, _ = load_npz(name)
    before = kernel_calls[kernel_symbol(name)]
    check_outputs(name, mipsc.load(vmfb, parameters=parameters(name)).main(*inputs))
    assert kernel_calls[kernel_symbol(name)] > before
