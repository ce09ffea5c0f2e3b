"""Check tests/data against the project's IREE: each .mlir compiles as-is and reproduces torch.

Why: the exports are made in a separate venv (torch + iree-turbine); this confirms that the
project's own iree-compile / iree-run-module (IREE 3.13, llvm-cpu) accept the torch-dialect
files unchanged and that their results match the eager torch outputs stored in the .npz, so
any later mismatch in mipsc is mipsc's, not the test data's.

Run with the project venv (needs only numpy)::

    .venv/bin/python tools/check_exports.py              # every model in manifest.json
    .venv/bin/python tools/check_exports.py mlp mm_dynamic --keep /tmp/exports
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
COMPILE_FLAGS = [
    "--iree-hal-target-device=local",
    "--iree-hal-local-target-device-backends=llvm-cpu",
    "--iree-llvmcpu-target-cpu=host",
]


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """uint16 bfloat16 bit patterns -> float32 values (bf16 is the top half of an f32)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def run(cmd: list[str]) -> None:
    """Runs a tool, raising with its stderr so a failure says why."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n-> exit {proc.returncode}\n{proc.stderr[-4000:]}")


def check_model(entry: dict[str, Any], data: Path, bin_dir: Path, work: Path) -> float:
    """Compiles and runs one model; returns the max abs error, raises on mismatch."""
    name = entry["name"]
    vmfb = work / f"{name}.vmfb"
    # compile_flags: a workaround the manifest records for a known IREE bug (see known_issue).
    run(
        [
            str(bin_dir / "iree-compile"),
            str(data / f"{name}.mlir"),
            *COMPILE_FLAGS,
            *entry.get("compile_flags", []),
            "-o",
            str(vmfb),
        ]
    )
    npz = np.load(data / f"{name}.npz")
    cmd = [
        str(bin_dir / "iree-run-module"),
        "--device=local-task",
        f"--module={vmfb}",
        f"--function={entry['function']}",
    ]
    if "parameters" in entry:
        params = entry["parameters"]
        cmd.append(f"--parameters={params['scope']}={data / params['file']}")
    cmd += [
        _input_flag(spec, npz[spec["key"]], work / f"{name}_{spec['key']}")
        for spec in entry["inputs"]
    ]
    out_paths = [
        work / f"{name}_{spec['key']}.{'bin' if spec['dtype'] == 'bf16' else 'npy'}"
        for spec in entry["outputs"]
    ]
    cmd += [f"--output=@{path}" for path in out_paths]
    run(cmd)
    return _worst_error(entry, npz, out_paths)


def _input_flag(spec: dict[str, Any], arr: np.ndarray, stem: Path) -> str:
    """An input written next to the module, as iree-run-module's --input flag."""
    if spec["dtype"] == "bf16":
        # numpy has no bf16, so pass the raw bits with an explicit shape and type.
        path = stem.with_suffix(".bin")
        arr.astype(np.uint16).tofile(path)
        shape = "x".join(str(d) for d in arr.shape)
        return f"--input={shape}x{spec['dtype']}=@{path}"
    path = stem.with_suffix(".npy")
    np.save(path, arr)
    return f"--input=@{path}"


def _worst_error(entry: dict[str, Any], npz: Any, out_paths: list[Path]) -> float:
    """The max abs error of the outputs against torch's; raises past the tolerance."""
    tol = entry["tolerance"]
    worst = 0.0
    for spec, path in zip(entry["outputs"], out_paths, strict=True):
        want = npz[spec["key"]]
        if spec["dtype"] == "bf16":
            got = bf16_bits_to_f32(np.fromfile(path, dtype=np.uint16).reshape(want.shape))
            want = bf16_bits_to_f32(want)
        else:
            got = np.load(path)
        if got.shape != want.shape:
            raise AssertionError(f"{spec['key']}: shape {got.shape} != torch's {want.shape}")
        got64, want64 = got.astype(np.float64), want.astype(np.float64)
        worst = max(worst, float(np.max(np.abs(got64 - want64))))
        if not np.allclose(got64, want64, atol=tol["atol"], rtol=tol["rtol"]):
            raise AssertionError(f"{spec['key']}: max abs err {worst:.3g} over {tol}")
    return worst


def main() -> int:
    """Checks the selected (default: all) models; exit status 1 if any fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models to check (default: all in manifest)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--iree-bin",
        type=Path,
        default=REPO / ".venv" / "bin",
        help="directory holding iree-compile and iree-run-module",
    )
    parser.add_argument("--keep", type=Path, help="keep vmfb/npy files in this directory")
    opts = parser.parse_args()

    models: dict[str, Any] = json.loads((opts.data / "manifest.json").read_text())["models"]
    names = opts.names or list(models)
    unknown = set(names) - set(models)
    if unknown:
        parser.error(f"unknown models: {sorted(unknown)}")

    with tempfile.TemporaryDirectory(prefix="check_exports_") as tmp:
        work = opts.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        failed = 0
        for name in names:
            start = time.monotonic()
            try:
                err = check_model(models[name], opts.data, opts.iree_bin, work)
                status = f"ok    max abs err {err:.3g}"
                if entry_flags := models[name].get("compile_flags"):
                    status += f" (with {' '.join(entry_flags)})"
            except (RuntimeError, AssertionError) as exc:
                failed += 1
                status = f"FAIL  {exc}"
            print(f"{name:22} {status}  ({time.monotonic() - start:.1f}s)", flush=True)
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
