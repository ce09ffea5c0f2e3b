"""What a tile's calls around the packed matmul cost: the bias init and the fused activation.

Usage (from the repo root)::

    .venv/bin/python tools/profile_store_phase.py 64x4096x1024 --tile 64x1024 --activation gelu
    .venv/bin/python tools/profile_store_phase.py 64x1024x4096 --tile 64x512 --dtype bf16
    .venv/bin/python tools/profile_store_phase.py 64x4096x1024 --tile 64x1024 --activation gelu \
        --baseline /tmp/old/libmips_kernels.so

A linear with a bias and a fused activation is lowered (lower-mips-to-call) to three kernel calls
per output tile: mips_epilogue_<t> with BIAS_SET (C = bias), mips_matmul_packed_<t> accumulating
into C, then mips_epilogue_<t> with the activation. This script makes the same three calls per
tile, in the same order, on the normal plugin (src/mipsc/_lib/libmips_kernels.so), one thread,
and prints each call's median time (this thread's CPU time, so other processes' share of the
cores does not count) and its share of the tile's three calls. With --baseline, another build of
the plugin makes the same calls on its own arrays, its tiles alternating with the normal
plugin's (interleaved), and each call's time is also given as a ratio to the baseline's.
"""

from __future__ import annotations

import argparse
import ctypes
import pathlib
import sys
import time

import numpy as np

from mipsc.kernel_abi import (
    PACKED_B_PANEL,
    EpilogueParams,
    MatmulParams,
    PackParams,
    packed_rows,
    packed_size,
)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PLUGIN = REPO_ROOT / "src" / "mipsc" / "_lib" / "libmips_kernels.so"
ACTIVATIONS = {"none": 0, "relu": 1, "gelu": 2, "gelu_tanh": 3, "silu": 4}  # MIPS_EPILOGUE_*
BIAS_SET = 2
STORAGE = {"f32": np.float32, "bf16": np.uint16}


def _dims(text: str, count: int) -> list[int]:
    parts = text.lower().split("x")
    if len(parts) != count or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SystemExit(f"bad size '{text}': want {count} positive numbers joined by 'x'")
    return [int(p) for p in parts]


def _fn(lib: ctypes.CDLL, name: str):
    fn = getattr(lib, name)
    fn.argtypes = [ctypes.c_void_p] * 3
    return fn


def _calls(lib, dtype: str, m: int, n: int, k: int, tn: int, activation: int):
    """(the three calls per tile as (kernel, params) lists, the arrays they point into)."""
    st = STORAGE[dtype]
    rng = np.random.default_rng(0)
    a = rng.integers(-3, 4, (m, k)).astype(st)
    b = rng.integers(-3, 4, (k, n)).astype(st)
    c, bias = np.zeros((m, n), st), np.ones(n, st)
    packed = np.zeros(packed_size(k, n), st)
    pack = PackParams(b.ctypes.data, 0, n, 1, packed.ctypes.data, 0, k, n)
    if _fn(lib, f"mips_pack_b_{dtype}")(ctypes.byref(pack), None, None) != 0:
        raise SystemExit("the pack rejected B")
    matmul, epilogue = _fn(lib, f"mips_matmul_packed_{dtype}"), _fn(lib, f"mips_epilogue_{dtype}")
    kp, tiles = packed_rows(k), []
    for j in range(0, n, tn):
        w = min(tn, n - j)
        init = EpilogueParams(c.ctypes.data, j, n, 1, bias.ctypes.data, j, 1, None, 0, 0, 0,
                              m, w, BIAS_SET, 0, 0)  # fmt: skip
        mm = MatmulParams(a.ctypes.data, 0, k, 1, packed.ctypes.data, j * kp, kp,
                          PACKED_B_PANEL, c.ctypes.data, j, n, 1, m, w, k, 1)  # fmt: skip
        act = EpilogueParams(c.ctypes.data, j, n, 1, None, 0, 0, None, 0, 0, 0, m, w, 0,
                             activation, 0)  # fmt: skip
        tiles.append([(epilogue, init), (matmul, mm), (epilogue, act)])
    return tiles, (a, packed, c, bias)


def _time_round(tiles, times: list[list[int]], skip_activation: bool, keep: bool) -> None:
    """Makes each tile's three calls once, appending their thread CPU times (ns) to `times`."""
    for calls in tiles:
        for i, (fn, params) in enumerate(calls):
            if i == 2 and skip_activation:
                continue
            start = time.thread_time_ns()
            if fn(ctypes.byref(params), None, None) != 0:
                raise SystemExit("a kernel rejected a tile")
            if keep:
                times[i].append(time.thread_time_ns() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("shape", help="MxNxK")
    ap.add_argument("--tile", required=True, help="RxC output tile (R = M: the row tiles alike)")
    ap.add_argument("--dtype", choices=sorted(STORAGE), default="f32")
    ap.add_argument("--activation", choices=sorted(ACTIVATIONS), default="none")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--baseline", help="another build of the plugin to compare with (path)")
    args = ap.parse_args()
    m, n, k = _dims(args.shape, 3)
    tm, tn = _dims(args.tile, 2)
    if tm != m:
        raise SystemExit("--tile must span all M rows (the inference shapes' tiles do)")
    paths = [str(PLUGIN)] + ([args.baseline] if args.baseline else [])
    # keep each library's arrays alive while its calls point into them
    runs = [_calls(ctypes.CDLL(path), args.dtype, m, n, k, tn, ACTIVATIONS[args.activation])
            for path in paths]  # fmt: skip
    times: list[list[list[int]]] = [[[], [], []] for _ in runs]
    for rnd in range(-2, args.rounds):  # two warm-up rounds
        for (tiles, _arrays), lib_times in zip(runs, times, strict=True):
            _time_round(tiles, lib_times, args.activation == "none", rnd >= 0)
    names = ("bias init (BIAS_SET)", "packed matmul (accumulate)", f"{args.activation} epilogue")
    medians = [[float(np.median(t)) if t else 0.0 for t in lib_times] for lib_times in times]
    print(f"{m}x{n}x{k} {args.dtype}, {len(runs[0][0])} tiles of {tm}x{tn}, one thread, per tile:")
    for i, name in enumerate(names):
        line = f"  {name:<28}{medians[0][i] / 1e3:>9.1f} us {100 * medians[0][i] / sum(medians[0]):>6.1f}%"
        if args.baseline and medians[1][i]:
            line += f"   baseline {medians[1][i] / 1e3:>9.1f} us  ratio {medians[0][i] / medians[1][i]:.3f}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
