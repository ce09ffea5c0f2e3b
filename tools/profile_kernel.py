"""Where a matmul's time goes inside the kernel: a profiling build, one thread, IREE's tiles.

Usage (from the repo root)::

    .venv/bin/python tools/profile_kernel.py 1024x1024x1024            # tiles as mipsc picks them
    .venv/bin/python tools/profile_kernel.py 2048x2048x2048 --tile 516x256 --dtype f16
    .venv/bin/python tools/profile_kernel.py 64x1024x4096 --packed --compare a_in_place=0,1

Builds build/profile/libmips_kernels.so with -DMIPS_PROFILE (`make kernels-profile`): the GEMM
then sums time-stamp-counter cycles and calls per part (plain microkernel, microkernels that also
pack A or B, separate packing passes, edge microkernels, whole calls). This script calls the
kernel once per output tile, as IREE's workgroups do (same tiles as lower-mips-to-call unless
--tile), for --reps rounds after two warm-up rounds, and prints each part's share of the calls'
time and its cycles per call relative to the plain microkernel. Cycles are TSC cycles (a
constant clock, not the core's); shares and ratios do not depend on that.

With --compare FIELD=V0,V1,... it profiles nothing: it times the same tiles on the normal
plugin (src/mipsc/_lib/libmips_kernels.so), the live configuration's FIELD set to each value in
turn (mips_debug_set_config), in interleaved rounds of this thread's CPU time, and prints each
value's median product time and its ratio to V0's (the kernel alone, old against new).
"""

from __future__ import annotations

import argparse
import ctypes
import pathlib
import subprocess
import sys
import time

import numpy as np

from mipsc.kernel_abi import (
    PACKED_B_PANEL,
    MatmulParams,
    PackParams,
    packed_rows,
    packed_size,
)
from mipsc.peak import measure_peak
from mipsc.tiling import choose_tiles

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
LIB = REPO_ROOT / "build" / "profile" / "libmips_kernels.so"
PLUGIN = REPO_ROOT / "src" / "mipsc" / "_lib" / "libmips_kernels.so"
PARTS = (  # kernels/mips_internal.h, MIPS_PROF_*
    "microkernel, packed A and B",
    "  ... that also reads and packs B",
    "  ... that also reads and packs A",
    "  ... that also reads and packs both",
    "edge microkernels (< MR rows)",
    "packing A in a pass of its own",
    "packing B in a pass of its own",
)
CALL = len(PARTS)
STORAGE = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}


def _dims(text: str, count: int) -> list[int]:
    parts = text.lower().split("x")
    if len(parts) != count or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SystemExit(f"bad size '{text}': want {count} positive numbers joined by 'x'")
    return [int(p) for p in parts]


def _tile_params(lib, args, m: int, n: int, k: int, tm: int, tn: int) -> tuple[list, tuple]:
    """(one MatmulParams per output tile, the arrays they point into: keep them alive); with
    --packed, B packed beforehand and addressed by panel."""
    rng = np.random.default_rng(0)
    st = STORAGE[args.dtype]
    a = (rng.integers(-3, 4, (m, k))).astype(st)
    b_store = (rng.integers(-3, 4, (n, k) if args.bt else (k, n))).astype(st)
    bs0, bs1 = (1, k) if args.bt else (n, 1)  # B[q, j] at q * bs0 + j * bs1
    c = np.zeros((m, n), st)
    if args.packed:  # B in the packed layout; tiles then address it by panel
        b_store, bs0, bs1 = _pack(lib, args.dtype, b_store, bs0, bs1, k, n), packed_rows(k), 0
    tiles = [
        MatmulParams(
            a.ctypes.data, i * k, k, 1, b_store.ctypes.data, j * (bs1 or bs0), bs0,
            bs1 or PACKED_B_PANEL,
            c.ctypes.data, i * n + j, n, 1,
            min(tm, m - i), min(tn, n - j), k, 0,
        )
        for i in range(0, m, tm)
        for j in range(0, n, tn)
    ]  # fmt: skip
    return tiles, (a, b_store, c)


def _profile(lib, kernel, tiles: list, reps: int) -> tuple[list, list, float]:
    """(cycles per part, calls per part, seconds) of `reps` rounds over the tiles, after two
    warm-up rounds."""
    cycles = (ctypes.c_uint64 * (CALL + 1))()
    calls = (ctypes.c_uint64 * (CALL + 1))()
    for rep in range(-2, reps):
        if rep == 0:
            lib.mips_debug_profile(cycles, calls)  # drop the warm-up rounds
            start = time.perf_counter()
        for p in tiles:
            if kernel(ctypes.byref(p), None, None) != 0:
                raise SystemExit("the kernel rejected a tile")
    seconds = time.perf_counter() - start
    lib.mips_debug_profile(cycles, calls)
    return list(cycles), list(calls), seconds


def _print_parts(cycles: list, calls: list, reps: int) -> None:
    """Each part's share of the cycles, its calls per round and cycles per call."""
    total = cycles[CALL]
    plain = cycles[0] / calls[0] if calls[0] else float("nan")
    print(f"  {'part':<38}{'share':>7}{'calls/round':>13}{'cycles/call':>13}{'vs plain':>10}")
    for i, name in enumerate(PARTS):
        if calls[i]:
            per = cycles[i] / calls[i]
            print(
                f"  {name:<38}{100 * cycles[i] / total:>6.1f}%{calls[i] / reps:>13.0f}"
                f"{per:>13.0f}{per / plain:>9.2f}x"
            )
    rest = total - sum(cycles[:CALL])
    print(f"  {'the rest (loops, allocation, stores)':<38}{100 * rest / total:>6.1f}%")


def _pack(lib, dtype: str, b: np.ndarray, bs0: int, bs1: int, k: int, n: int) -> np.ndarray:
    """B (k x n at strides bs0, bs1 of `b`) in the packed layout (mips_kernels.h)."""
    packed = np.zeros(packed_size(k, n), b.dtype)
    pack = getattr(lib, f"mips_pack_b_{dtype}")
    pack.argtypes = [ctypes.c_void_p] * 3
    params = PackParams(b.ctypes.data, 0, bs0, bs1, packed.ctypes.data, 0, k, n)
    if pack(ctypes.byref(params), None, None) != 0:
        raise SystemExit("the pack rejected B")
    return packed


def _compare(kernel, set_config, tiles: list, field: str, values: list[int], rounds: int) -> None:
    """Each value's median product time (thread CPU time) over interleaved rounds, and its
    ratio to the first value's."""
    times: dict[int, list[float]] = {v: [] for v in values}
    for rnd in range(-1, rounds):
        for v in values:
            if set_config(field.encode(), v) != 0:
                raise SystemExit(f"mips_debug_set_config refused {field}={v}")
            start = time.thread_time()
            for _ in range(3):
                for p in tiles:
                    if kernel(ctypes.byref(p), None, None) != 0:
                        raise SystemExit("the kernel rejected a tile")
            if rnd >= 0:  # the first round warms up
                times[v].append((time.thread_time() - start) / 3)
    base = float(np.median(times[values[0]]))
    for v in values:
        med = float(np.median(times[v]))
        print(
            f"  {field}={v}: {1e3 * med:.3f} ms per product (median of {rounds}), "
            f"{med / base:.3f}x of {field}={values[0]}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("shape", help="MxNxK")
    ap.add_argument("--tile", help="RxC output tile (default: what mipsc picks)")
    ap.add_argument("--dtype", choices=sorted(STORAGE), default="f32")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--bt", action="store_true", help="B stored transposed (N x K), as nn.Linear's weight"
    )
    ap.add_argument(
        "--packed",
        action="store_true",
        help="B packed once beforehand (mips_pack_b_<t>), tiles on mips_matmul_packed_<t>",
    )
    ap.add_argument(
        "--compare",
        metavar="FIELD=V0,V1",
        help="time the plugin with the configuration's FIELD at each value, interleaved",
    )
    ap.add_argument("--rounds", type=int, default=30, help="rounds of --compare")
    args = ap.parse_args()
    m, n, k = _dims(args.shape, 3)
    tm, tn = _dims(args.tile, 2) if args.tile else choose_tiles(m, n, 1, k, packed_b=args.packed)

    if args.compare:
        field, _, vals = args.compare.partition("=")
        lib = ctypes.CDLL(str(PLUGIN))
        lib.mips_debug_set_config.argtypes = [ctypes.c_char_p, ctypes.c_int64]
    else:
        subprocess.run(["make", "-s", "kernels-profile"], cwd=REPO_ROOT, check=True)
        lib = ctypes.CDLL(str(LIB))
    if args.dtype == "bf16":  # the vector GEMM, not AMX (which this build does not profile)
        print("note: bf16 runs with MIPSC_DISABLE_AMX unset may take the AMX path, not profiled")
    kernel = getattr(lib, f"mips_matmul_{'packed_' if args.packed else ''}{args.dtype}")
    kernel.argtypes = [ctypes.c_void_p] * 3
    if args.packed and not args.tile:  # tiles start on a panel of the packed B
        tm, tn = choose_tiles(m, n, 1, k, 0, True)
    tiles, _arrays = _tile_params(lib, args, m, n, k, tm, tn)
    if args.compare:
        print(f"{m}x{n}x{k} {args.dtype}, {len(tiles)} tiles of {tm}x{tn}, one thread")
        values = [int(v) for v in vals.split(",")]
        _compare(kernel, lib.mips_debug_set_config, tiles, field, values, args.rounds)
        return
    cycles, calls, seconds = _profile(lib, kernel, tiles, args.reps)
    total = cycles[CALL]
    print(
        f"{m}x{n}x{k} {args.dtype}, {len(tiles)} tiles of {tm}x{tn}, one thread, {args.reps} "
        f"rounds: {total / args.reps / 1e6:.1f} M TSC cycles per product"
    )
    _print_parts(cycles, calls, args.reps)
    # Every FMA runs in a microkernel: their cycles, in seconds, give the microkernels' own rate.
    tsc_hz = total / seconds
    ukr = sum(cycles[:5]) / tsc_hz
    flops = 2.0 * m * n * k * args.reps
    if ukr == 0:  # few rows: the matrix-vector loops ran, no packed microkernel
        print(f"  whole calls {flops / seconds / 1e9:.1f} GFLOP/s (no microkernel call)")
        return
    peak = measure_peak()
    print(
        f"  whole calls {flops / seconds / 1e9:.1f} GFLOP/s; the microkernels alone "
        f"{flops / ukr / 1e9:.1f} GFLOP/s = {100 * flops / ukr / 1e9 / peak.gflops_per_core:.0f}% "
        f"of the f32 peak ({peak.gflops_per_core:.0f} GFLOP/s, {peak.how})"
    )


if __name__ == "__main__":
    sys.exit(main())
