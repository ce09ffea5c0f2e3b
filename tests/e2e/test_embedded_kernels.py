"""Modules with the kernels linked in (--kernel-link=embedded): no plugin anywhere.

- Every committed export runs in stock `iree-run-module --device=local-task` (no
  --executable_plugin) and gives torch's numbers.
- The kernel ran (no counters in the object): a one-tile product gives exactly the bits of the
  same object called through ctypes, on every configuration this CPU can run (the object cannot
  read MIPSC_KERNEL_CONFIG: test objects are built with -DMIPS_FORCE_CONFIG): detected (zen4 on
  the project's machine: AVX-512, bf16 on VDPBF16PS), intel-avx512 (bf16 widened on AVX-512),
  avx2, sse2; and IREE's own codegen gives other bits on the same product.
- mipsc.load / mipsc run never ask for a plugin for such a module.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from harness import DATA, MANIFEST, load_npz, parameters
from test_exports import check_outputs

import mipsc
from mipsc.backend.iree_compile import compile_mlir
from mipsc.bench import mm_module
from mipsc.kernel_abi import EMBEDDED_OBJECT_ENV, EMBEDDED_WORKSPACE_MAX_BYTES, embedded_object_path
from mipsc.options import CompileOptions
from mipsc.pipeline import compile_module

EMBEDDED = CompileOptions(kernel_link="embedded")
PLUGIN = CompileOptions(kernel_link="plugin")

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
IREE_RUN_MODULE = Path(sys.executable).parent / "iree-run-module"
NP_DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}


def _arg(array: np.ndarray, path: Path) -> str:
    """An iree-run-module --input: .npy, or raw bytes with the shape for bf16 (no .npy form)."""
    if array.dtype == ml_dtypes.bfloat16:
        array.tofile(path.with_suffix(".bin"))
        return "x".join(map(str, array.shape)) + f"xbf16=@{path.with_suffix('.bin')}"
    np.save(path.with_suffix(".npy"), array)
    return f"@{path.with_suffix('.npy')}"


def run_stock(vmfb: Path, name: str, inputs: list[np.ndarray], tmp: Path) -> tuple[np.ndarray, ...]:
    """The module run by stock iree-run-module, no plugin; outputs shaped as torch's."""
    _, want = load_npz(name)
    cmd = [str(IREE_RUN_MODULE), "--device=local-task", f"--module={vmfb}", "--function=main"]
    if (spec := MANIFEST[name].get("parameters")) is not None:
        cmd.append(f"--parameters={spec['scope']}={DATA / spec['file']}")
    cmd += [f"--input={_arg(x, tmp / f'in{i}')}" for i, x in enumerate(inputs)]
    outs = [tmp / f"out{i}.bin" for i in range(len(want))]
    cmd += [f"--output=@{path}" for path in outs]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIPSC_")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return tuple(
        np.fromfile(path, w.dtype).reshape(w.shape) for path, w in zip(outs, want, strict=True)
    )


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_export_runs_in_stock_iree_run_module(name, tmp_path):
    vmfb = tmp_path / f"{name}.vmfb"
    compile_module((DATA / f"{name}.mlir").read_text(), f"{name}.mlir", vmfb, EMBEDDED)
    inputs, _ = load_npz(name)
    check_outputs(name, run_stock(vmfb, name, inputs, tmp_path))


# --------------------------------------------------------------------------------------------
# Proof that the kernel ran: the object's own bits, through IREE and through ctypes


def _object(config: str | None) -> Path:
    """The package's object, or one forced to `config` (built in build/, incrementally)."""
    if config is None:
        return embedded_object_path()
    build = f"build/embedded-{config}"
    target = f"{build}/mips_kernels_embedded.o"
    cmd = ["make", "-s", "-C", str(REPO_ROOT), f"EMBEDDED={target}", f"EMBEDDED_BUILD={build}",
           f"EMBEDDED_DEFS=-DMIPS_FORCE_CONFIG={config}", target]  # fmt: skip
    subprocess.run(cmd, check=True)
    return REPO_ROOT / target


def _linked(obj: Path, out: Path) -> ctypes.CDLL:
    """The object linked as IREE links it (no libc, nothing undefined), loaded for ctypes."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to link the object")
    subprocess.run([cc, "-shared", "-nostdlib", "-Wl,--no-undefined", "-o", str(out), str(obj)],
                   check=True)  # fmt: skip
    return ctypes.CDLL(str(out))


def _kernel_bits(library: ctypes.CDLL, dtype: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A·B by mips_matmul_<dtype>_embedded on the whole (row-major) matrices."""
    (m, k), n = a.shape, b.shape[1]
    c = np.zeros((m, n), a.dtype)
    workspace = np.zeros(EMBEDDED_WORKSPACE_MAX_BYTES, np.uint8)
    fn = getattr(library, f"mips_matmul_{dtype}_embedded")
    i64, vp = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [vp, i64, i64, i64] * 3 + [i64] * 4 + [vp, i64]
    fn.restype = ctypes.c_int
    rc = fn(a.ctypes.data, 0, k, 1, b.ctypes.data, 0, n, 1, c.ctypes.data, 0, n, 1,
            m, n, k, 0, workspace.ctypes.data, workspace.nbytes)  # fmt: skip
    assert rc == 0
    return c.view(np.uint16 if c.itemsize == 2 else np.uint32)


M, N, K = 36, 32, 600
"""One output tile (mipsc's tiles for this shape cover it whole), so the module makes exactly
the ctypes call; k long enough that the order of the f32 sums shows in the bits."""


def _isa_available(config: str) -> bool:
    """Whether this CPU runs the configuration's vector path (the plugin's test hook says)."""
    from mipsc.runtime import plugin_path

    plugin = ctypes.CDLL(str(plugin_path()))
    plugin.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    isa = {"intel-avx512": b"avx512", "avx2": b"avx2", "sse2": b"generic"}[config]
    return plugin.mips_debug_matmul_isa(b"mips_matmul_f32", isa, None) == 1


@pytest.mark.parametrize("config", [None, "intel-avx512", "avx2", "sse2"])
@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_the_object_computed_it(config, dtype, tmp_path, monkeypatch):
    if config is not None and not _isa_available(config):
        pytest.skip(f"this CPU lacks the {config} entry's vector path")
    obj = _object(config)
    monkeypatch.setenv(EMBEDDED_OBJECT_ENV, str(obj))
    vmfb = tmp_path / "mm.vmfb"
    compile_module(mm_module(M, N, K, dtype), "mm.mlir", vmfb, EMBEDDED)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((M, K)).astype(NP_DTYPES[dtype])
    b = rng.standard_normal((K, N)).astype(NP_DTYPES[dtype])
    got = mipsc.load(vmfb).main(a, b)
    want = _kernel_bits(_linked(obj, tmp_path / "k.so"), dtype, a, b)
    assert np.array_equal(got.view(want.dtype), want)
    if config is None and dtype == "f32":  # IREE's own codegen sums in another order
        iree_vmfb = tmp_path / "iree.vmfb"
        compile_mlir(mm_module(M, N, K, dtype), iree_vmfb)
        theirs = mipsc.load(iree_vmfb).main(a, b)
        assert not np.array_equal(theirs.view(want.dtype), want)
        np.testing.assert_allclose(theirs, got, rtol=1e-4, atol=1e-4)


def test_embedded_module_needs_no_plugin(tmp_path):
    """`mipsc run` and mipsc.load run an embedded module with no plugin to be found; the same
    model compiled for the plugin keeps today's error."""
    text = (DATA / "mm_static.mlir").read_text()
    embedded, plugin = tmp_path / "embedded.vmfb", tmp_path / "plugin.vmfb"
    compile_module(text, "mm_static.mlir", embedded, EMBEDDED)
    compile_module(text, "mm_static.mlir", plugin, PLUGIN)
    env = dict(os.environ, MIPSC_PLUGIN=str(tmp_path / "no_such_plugin.so"))
    run = [sys.executable, "-m", "mipsc", "run", "--input=37x19xf32=1", "--input=19x23xf32=2"]
    ok = subprocess.run([*run[:4], str(embedded), *run[4:]], capture_output=True, text=True,
                        env=env, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "37x23xf32" in ok.stdout and "38." in ok.stdout
    bad = subprocess.run([*run[:4], str(plugin), *run[4:]], capture_output=True, text=True,
                         env=env, check=False)  # fmt: skip
    assert bad.returncode == 1
    assert "kernel plugin not found" in bad.stderr and "make kernels" in bad.stderr
    inputs, _ = load_npz("mm_static")
    check_outputs("mm_static", mipsc.load(embedded, parameters=parameters("mm_static")).main(*inputs))


DYNAMIC_MM = """
func.func @main(%a: !torch.vtensor<[?,?],f32>, %b: !torch.vtensor<[?,?],f32>) -> !torch.vtensor<[?,?],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[?,?],f32>, !torch.vtensor<[?,?],f32> -> !torch.vtensor<[?,?],f32>
  return %0 : !torch.vtensor<[?,?],f32>
}
"""


@pytest.mark.parametrize("link", ["embedded", "plugin"])
def test_sizes_that_do_not_agree_fail_the_call(tmp_path, link):
    """A 3x4 times 5x6 call of a dynamic mm: IREE ignores an embedded kernel's refusal, and
    the result was zeros; the host now checks the sizes first, on both links."""
    vmfb = tmp_path / f"mm_{link}.vmfb"
    compile_module(DYNAMIC_MM, "mm.mlir", vmfb, CompileOptions(kernel_link=link))
    module = mipsc.load(vmfb)
    ones = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(module.main(ones, np.ones((4, 6), np.float32)), 4.0)
    with pytest.raises(mipsc.MipscError, match="the sizes of its operands do not agree"):
        module.main(ones, np.ones((5, 6), np.float32))
