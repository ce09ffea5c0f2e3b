"""The demo behind `make demo`: compile a torch.aten.mm model with mipsc (the kernels linked into
the module) and run it, showing each command. First A x I = A, then a random case against numpy,
then the same module in stock iree-run-module, with no plugin."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
MODEL = """func.func @main(%a: !torch.vtensor<[?,?],f32>, %b: !torch.vtensor<[?,?],f32>) -> !torch.vtensor<[?,?],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[?,?],f32>, !torch.vtensor<[?,?],f32> -> !torch.vtensor<[?,?],f32>
  return %0 : !torch.vtensor<[?,?],f32>
}
"""


def sh(*args: str) -> str:
    print("$", shlex.join(args), flush=True)
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def run_case(work: Path, vmfb: Path, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    np.save(work / "a.npy", a)
    np.save(work / "b.npy", b)
    sh(
        str(BIN / "mipsc"), "run", str(vmfb),
        f"--input=@{work / 'a.npy'}", f"--input=@{work / 'b.npy'}", f"--output=@{work / 'c.npy'}",
    )  # fmt: skip
    return np.load(work / "c.npy")


# The demo's files stay here (build/ is git-ignored), so that its closing advice can be run.
WORK = Path(__file__).resolve().parents[1] / "build" / "demo"


def main() -> int:
    work = WORK
    work.mkdir(parents=True, exist_ok=True)
    (work / "mm.mlir").write_text(MODEL)
    print(sh(str(BIN / "mipsc"), "opt", str(work / "mm.mlir"), "--convert-torch-to-mips"))
    vmfb = work / "mm.vmfb"
    # embedded is the default; said here so that $MIPSC_KERNEL_LINK cannot change the demo
    sh(str(BIN / "mipsc"), "compile", str(work / "mm.mlir"), "--kernel-link=embedded", "-o", str(vmfb))

    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 300), dtype=np.float32)
    c = run_case(work, vmfb, a, np.eye(300, dtype=np.float32))
    ok_identity = np.array_equal(c, a)
    print(f"A x I == A (300x300): {'OK' if ok_identity else 'FAILED'}")

    a = rng.standard_normal((257, 129), dtype=np.float32)
    b = rng.standard_normal((129, 383), dtype=np.float32)
    c = run_case(work, vmfb, a, b)
    err = float(np.max(np.abs(c - a @ b)))
    ok_random = bool(np.allclose(c, a @ b, rtol=1e-4, atol=1e-4))
    print(f"random 257x129 · 129x383 vs numpy: max abs error {err:.2e}: "
          f"{'OK' if ok_random else 'FAILED'}")  # fmt: skip
    stock = [
        str(BIN / "iree-run-module"), "--device=local-task", f"--module={vmfb}",
        "--function=main", f"--input=@{work / 'a.npy'}", f"--input=@{work / 'b.npy'}",
        f"--output=@{work / 'c_iree.npy'}",
    ]  # fmt: skip
    sh(*stock)
    ok_stock = np.array_equal(np.load(work / "c_iree.npy"), c)
    print(f"stock iree-run-module, no plugin, same bits: {'OK' if ok_stock else 'FAILED'}")
    print(f"\nThe files are in {work}. The module carries its kernels (--kernel-link=embedded):\n"
          f"  {shlex.join(stock[:-1])}")  # fmt: skip
    return 0 if ok_identity and ok_random and ok_stock else 1


if __name__ == "__main__":
    sys.exit(main())
