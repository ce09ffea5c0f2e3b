"""What a tile's calls around the packed matmul cost: the bias init and the fused activation.

Usage (from the repo root)::

    .venv/bin/python tools/profile_store_phase.py 64x4096x1024 --tile 64x1024 --activation gelu
    .venv/bin/python tools/profile_store_phase.py 64x1024x4096 --tile 64x512 --dtype bf16

A linear with a bias and a fused activation is lowered (lower-mips-to-call) to three kernel calls
per output tile: mips_epilogue_<t> with BIAS_SET (C = bias), mips_matmul_packed_<t> accumulating
into C, then mips_epilogue_<t> with the activation. This script makes the same three calls per
tile, in the same order, on the normal plugin (src/mipsc/_lib/libmips_kernels.so), one thread,
and prints each call's median time (this thread's CPU time, so other processes' share of the
cores does not count) and its share of the tile's three calls.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("shape", help="MxNxK")
    ap.add_argument("--tile", required=True, help="RxC output tile (R = M: the row tiles alike)")
    ap.add_argument("--dtype", choices=sorted(STORAGE), default="f32")
    ap.add_argument("--activation", choices=sorted(ACTIVATIONS), default="none")
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    m, n, k = _dims(args.shape, 3)
    tm, tn = _dims(args.tile, 2)
    if tm != m:
        raise SystemExit("--tile must span all M rows (the inference shapes' tiles do)")
    lib = ctypes.CDLL(str(PLUGIN))
    tiles, _arrays = _calls(lib, args.dtype, m, n, k, tn, ACTIVATIONS[args.activation])
    names = ("bias init (BIAS_SET)", "packed matmul (accumulate)", f"{args.activation} epilogue")
    times: list[list[int]] = [[], [], []]
    for rnd in range(-2, args.rounds):  # two warm-up rounds
        for calls in tiles:
            for i, (fn, params) in enumerate(calls):
                if i == 2 and args.activation == "none":
                    continue
                start = time.thread_time_ns()
                if fn(ctypes.byref(params), None, None) != 0:
                    raise SystemExit("a kernel rejected a tile")
                if rnd >= 0:
                    times[i].append(time.thread_time_ns() - start)
    medians = [float(np.median(t)) if t else 0.0 for t in times]
    print(f"{m}x{n}x{k} {args.dtype}, {len(tiles)} tiles of {tm}x{tn}, one thread, per tile:")
    for name, med in zip(names, medians, strict=True):
        print(f"  {name:<28}{med / 1e3:>9.1f} us {100 * med / sum(medians):>6.1f}%")


if __name__ == "__main__":
    sys.exit(main())
