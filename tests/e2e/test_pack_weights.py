"""Weights packed once, at load time (pack-weights), end to end, on both kernel links.

Real exports whose linear weights are inline constants, parameters (.irpa) or bf16: the module
packs each weight once when it loads (mips_pack_b_<t>, counted through the plugin), every call
then runs mips_matmul_packed_epilogue_<t> only (both linears have a bias: the packed matmul with
the epilogue fused), and the outputs are torch's. With the kernels embedded,
the same modules run in stock iree-run-module, no plugin anywhere, with the same numbers, and
under mipsc's runtime their packed weights go to huge pages.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from harness import DATA, MANIFEST, load_npz, parameters
from test_embedded_kernels import IREE_RUN_MODULE, run_stock

import mipsc
from mipsc.kernel_abi import packed_size
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
    packed = kernel_calls.exact(f"mips_matmul_packed_epilogue_{dtype}")
    model = mipsc.load(vmfb, parameters=parameters(name))
    check_outputs(name, model.main(*inputs))
    # Both weights (64 and 16 columns: one pack tile each) were packed when the module loaded...
    assert kernel_calls.exact(f"mips_pack_b_{dtype}") == packs + 2
    assert kernel_calls.exact(f"mips_matmul_packed_epilogue_{dtype}") == packed + 2
    check_outputs(name, model.main(*inputs))
    # ... and never again; the products never take the unpacked B.
    assert kernel_calls.exact(f"mips_pack_b_{dtype}") == packs + 2
    assert kernel_calls.exact(f"mips_matmul_packed_epilogue_{dtype}") == packed + 4
    assert kernel_calls.exact(f"mips_matmul_{dtype}") == plain


def test_report_says_the_weight_is_pre_packed(tmp_path):
    from mipsc.remarks import collect_remarks, format_report

    text = (DATA / "mlp.mlir").read_text()
    with collect_remarks() as remarks:
        lower_module(text, "mlp.mlir", PLUGIN)
    report = format_report(remarks)
    # the first linear's bias and ReLU are fused (fuse-epilogues), into the packed kernel's
    # store phase
    first = "mips_matmul_packed_epilogue_f32 (1 12x64 tile; B pre-packed at load; epilogue: bias, relu)"
    assert report.count(first) == 1, report
    second = "mips_matmul_packed_epilogue_f32 (1 12x32 tile; B pre-packed at load; epilogue: bias)"
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
    assert lowered.count(f"func.call @mips_matmul_packed_epilogue_{dtype}_embedded(") == 2
    assert f"@mips_matmul_{dtype}(" not in lowered
    assert f"@mips_pack_b_{dtype}(" not in lowered
    vmfb = tmp_path / f"{name}.vmfb"
    compile_module(text, f"{name}.mlir", vmfb, EMBEDDED)
    inputs, _ = load_npz(name)
    check_outputs(name, run_stock(vmfb, name, inputs, tmp_path))


def test_decode_step_weights_packed_on_both_links(kernel_calls, tmp_path):
    """A one-row f32 product (a decode step) packs its weight with either kernel link
    (tiling.prepack_pays: the configuration's prepack_f32_min_rows); both match torch, the
    embedded module also in stock iree-run-module (no plugin: its packs stay on 4 KiB pages).
    Widths of several pack tiles and 32-column panels (the packed thin path's stripes), one not
    a multiple of 32."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    module = torch.nn.Sequential(
        torch.nn.Linear(96, 600, bias=False), torch.nn.SiLU(), torch.nn.Linear(600, 70)
    )
    x = torch.randn(1, 96)
    want = module(x).detach()
    for link in ("plugin", "embedded"):
        model = mipsc.compile(module, x, kernel_link=link)
        assert "B pre-packed at load" in model.report, model.report
        # (both linears have an epilogue, SiLU and the bias: the fused kernel)
        before = kernel_calls.exact("mips_matmul_packed_epilogue_f32")
        torch.testing.assert_close(model(x), want, rtol=1e-5, atol=1e-5)
        calls = kernel_calls.exact("mips_matmul_packed_epilogue_f32") - before
        assert (calls > 0) == (link == "plugin"), (link, calls)  # the object counts nothing
    vmfb, inputs, out = tmp_path / "m.vmfb", tmp_path / "x.npy", tmp_path / "y.npy"
    vmfb.write_bytes(model.vmfb)
    np.save(inputs, x.numpy())
    run_iree(vmfb, inputs, out)
    torch.testing.assert_close(torch.from_numpy(np.load(out)), want, rtol=1e-5, atol=1e-5)


def run_iree(vmfb, inputs, out) -> None:
    """Stock iree-run-module, no plugin, no MIPSC_ variable."""
    command = [str(IREE_RUN_MODULE), "--device=local-task", f"--module={vmfb}"]
    command += ["--function=main", f"--input=@{inputs}", f"--output=@{out}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIPSC_")}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr


def thp_usable() -> bool:
    """Transparent huge pages on request, and MADV_COLLAPSE (Linux 6.1+)."""
    try:
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return ("[madvise]" in mode or "[always]" in mode) and (major, minor) >= (6, 1)


LOAD_AND_RUN = """
import sys, numpy as np, mipsc
model = mipsc.load(sys.argv[1])
y = np.asarray(model.main(np.load(sys.argv[2])))
print(model.huge_page_bytes, float(np.abs(y - np.load(sys.argv[3])).max()))
"""


@pytest.mark.skipif(not thp_usable(), reason="needs transparent huge pages and Linux 6.1+")
def test_embedded_packs_go_to_huge_pages_through_mipscs_runtime(tmp_path):
    """The embedded object's pack cannot advise huge pages; mipsc.load collapses the memory
    the load mapped (the packed copy among it) into huge pages, unless the configuration's
    pack_huge_pages is 0 (MIPSC_KERNEL_PACK_HUGE_PAGES). An 8 MiB packed weight, loaded by a
    fresh process (whose allocator maps a buffer that size anew): at least its whole 2 MiB
    regions; the numbers are torch's either way."""
    torch = pytest.importorskip("torch")
    module = torch.nn.Linear(1024, 2048, bias=False)
    x = torch.randn(1, 1024)
    model = mipsc.compile(module, x, kernel_link="embedded")
    assert "B pre-packed at load" in model.report
    files = [tmp_path / "m.vmfb", tmp_path / "x.npy", tmp_path / "y.npy"]
    files[0].write_bytes(model.vmfb)
    np.save(files[1], x.numpy())
    np.save(files[2], module(x).detach().numpy())
    collapsed = {}
    for setting in ("0", "1"):
        env = {**os.environ, "MIPSC_KERNEL_PACK_HUGE_PAGES": setting}
        command = [sys.executable, "-c", LOAD_AND_RUN, *map(str, files)]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        done, error = proc.stdout.split()
        assert float(error) < 1e-4
        collapsed[setting] = int(done)
    assert collapsed["0"] == 0
    assert collapsed["1"] >= packed_size(1024, 2048) * 4 - (2 << 20), collapsed
