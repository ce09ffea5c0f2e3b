"""Two builds of the kernel plugin timed on the same tiles, interleaved: a code change, old
against new.

Usage (from the repo root)::

    cp src/mipsc/_lib/libmips_kernels.so /tmp/old.so      # before the change
    make kernels                                          # after it
    .venv/bin/python tools/ab_kernel_builds.py /tmp/old.so 64x4096x1024 --dtype bf16 --bt --packed

Times the tiles of profile_kernel.py (one call per output tile, as IREE's workgroups make them)
on the baseline build (the first argument) and on the plugin (src/mipsc/_lib/libmips_kernels.so,
or --new), alternating in rounds of this thread's CPU time (steady on a machine shared with other
work), and prints each build's median product time and the new/old ratio. One thread.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

from mipsc.tiling import choose_tiles

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PLUGIN = REPO_ROOT / "src" / "mipsc" / "_lib" / "libmips_kernels.so"


def _profile_kernel():
    """tools/profile_kernel.py as a module (its tiles and packing)."""
    spec = importlib.util.spec_from_file_location(
        "profile_kernel", REPO_ROOT / "tools" / "profile_kernel.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load(path: pathlib.Path, tmp: str, name: str) -> ctypes.CDLL:
    """The library at `path`, loaded from a copy of its own name (two builds of one soname
    would otherwise be the same loaded library)."""
    copy = pathlib.Path(tmp, name)
    shutil.copy(path, copy)
    return ctypes.CDLL(str(copy))


def _time(kernel, tiles: list) -> float:
    """Thread CPU seconds of one product (three passes over the tiles, averaged)."""
    start = time.thread_time()
    for _ in range(3):
        for p in tiles:
            if kernel(ctypes.byref(p), None, None) != 0:
                raise SystemExit("the kernel rejected a tile")
    return (time.thread_time() - start) / 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("old", type=pathlib.Path, help="the baseline build of libmips_kernels.so")
    ap.add_argument("shape", help="MxNxK")
    ap.add_argument("--new", type=pathlib.Path, default=PLUGIN, help="the build to compare")
    ap.add_argument("--tile", help="RxC output tile (default: what mipsc picks)")
    ap.add_argument("--dtype", choices=("bf16", "f16", "f32"), default="f32")
    ap.add_argument("--bt", action="store_true", help="B stored transposed (N x K)")
    ap.add_argument("--packed", action="store_true", help="B packed once beforehand")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    pk = _profile_kernel()
    m, n, k = pk._dims(args.shape, 3)
    if args.tile:
        tm, tn = pk._dims(args.tile, 2)
    else:
        tm, tn = choose_tiles(m, n, 1, k, 0, True) if args.packed else choose_tiles(m, n, 1, k)
    with tempfile.TemporaryDirectory(prefix="mipsc-ab-") as tmp:
        libs = {"old": _load(args.old, tmp, "old.so"), "new": _load(args.new, tmp, "new.so")}
        runs = {}
        for name, lib in libs.items():
            kernel = getattr(lib, f"mips_matmul_{'packed_' if args.packed else ''}{args.dtype}")
            kernel.argtypes = [ctypes.c_void_p] * 3
            tiles, arrays = pk._tile_params(lib, args, m, n, k, tm, tn)
            runs[name] = (kernel, tiles, arrays)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for rnd in range(-1, args.rounds):
            for name, (kernel, tiles, _arrays) in runs.items():
                t = _time(kernel, tiles)
                if rnd >= 0:  # the first round warms up
                    times[name].append(t)
        if not np.array_equal(runs["old"][2][2], runs["new"][2][2]):
            print("note: the two builds' C differ")
    old, new = (float(np.median(times[name])) for name in ("old", "new"))
    flops = 2.0 * m * n * k
    print(f"{m}x{n}x{k} {args.dtype}, tiles of {tm}x{tn}, one thread, {args.rounds} rounds")
    print(f"  old {1e3 * old:.3f} ms ({flops / old / 1e9:.1f} GFLOP/s)")
    print(f"  new {1e3 * new:.3f} ms ({flops / new / 1e9:.1f} GFLOP/s), {new / old:.3f}x of old")


if __name__ == "__main__":
    sys.exit(main())
