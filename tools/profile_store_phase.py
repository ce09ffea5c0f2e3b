"""What a tile's calls around the packed matmul cost: the bias init and the fused activation.

Usage (from the repo root)::

    .venv/bin/python tools/profile_store_phase.py 64x4096x1024 --tile 64x1024 --activation gelu
    .venv/bin/python tools/profile_store_phase.py 64x1024x4096 --tile 64x512 --dtype bf16
    .venv/bin/python tools/profile_store_phase.py 64x4096x1024 --tile 64x1024 --activation gelu \
        --baseline /tmp/old/libmips_kernels.so
    .venv/bin/python tools/profile_store_phase.py 64x4096x1024 --tile 64x1024 --activation gelu \
        --fused

A linear with a bias and a fused activation is lowered (lower-mips-to-call) to three kernel calls
per output tile: mips_epilogue_<t> with BIAS_SET (C = bias), mips_matmul_packed_<t> accumulating
into C, then mips_epilogue_<t> with the activation. This script makes the same three calls per
tile, in the same order, on the normal plugin (src/mipsc/_lib/libmips_kernels.so), one thread,
and prints each call's median time (this thread's CPU time, so other processes' share of the
cores does not count) and its share of the tile's three calls. With --baseline, another build of
the plugin makes the same calls on its own arrays, its tiles alternating with the normal
plugin's (interleaved), and each call's time is also given as a ratio to the baseline's.
With --fused, each tile is also computed by the one call that replaces the three,
mips_matmul_packed_epilogue_<t> (the epilogue in the matmul's store phase), on arrays of its
own, its tiles alternating with the three calls' (interleaved); the script prints both
medians per tile and the ratio fused / three calls, and checks that both wrote the same bits.
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
    PackedEpilogueParams,
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


def _fused_calls(lib, dtype: str, m: int, n: int, k: int, tn: int, activation: int):
    """(one fused call per tile as (kernel, params), the arrays it points into): the same
    operands as _calls' (same seed), its own C."""
    _tiles, (a, packed, _c, bias) = _calls(lib, dtype, m, n, k, tn, activation)
    c = np.zeros((m, n), STORAGE[dtype])
    fused, kp, tiles = _fn(lib, f"mips_matmul_packed_epilogue_{dtype}"), packed_rows(k), []
    for j in range(0, n, tn):
        w = min(tn, n - j)
        params = PackedEpilogueParams(
            a.ctypes.data, 0, k, 1, packed.ctypes.data, j * kp, kp, PACKED_B_PANEL,
            c.ctypes.data, j, n, 1, m, w, k, 0, bias.ctypes.data, j, 1, None, 0, 0, 0,
            BIAS_SET, activation, 0,
        )  # fmt: skip
        tiles.append([(fused, params)])
    return tiles, (a, packed, c, bias)


def _time_fused(args, m: int, n: int, k: int, tm: int, tn: int) -> None:
    """The three calls per tile against the fused call, interleaved tile by tile, this
    thread's CPU time; both must write the same C."""
    lib = ctypes.CDLL(str(PLUGIN))
    activation = ACTIVATIONS[args.activation]
    three, three_arrays = _calls(lib, args.dtype, m, n, k, tn, activation)
    fused, fused_arrays = _fused_calls(lib, args.dtype, m, n, k, tn, activation)
    times: list[list[int]] = [[], []]
    for rnd in range(-2, args.rounds):
        for t in range(len(three)):
            for which, calls in enumerate((three[t], fused[t])):
                start = time.thread_time_ns()
                for i, (fn, params) in enumerate(calls):
                    if i == 2 and activation == 0:
                        continue
                    if fn(ctypes.byref(params), None, None) != 0:
                        raise SystemExit("a kernel rejected a tile")
                if rnd >= 0:
                    times[which].append(time.thread_time_ns() - start)
    if not np.array_equal(three_arrays[2], fused_arrays[2]):
        raise SystemExit("the fused call and the three calls wrote different bits")
    three_us, fused_us = (float(np.median(t)) / 1e3 for t in times)
    print(f"{m}x{n}x{k} {args.dtype} {args.activation}, {len(three)} tiles of {tm}x{tn}, "
          f"one thread, per tile (median of {len(times[0])}):")  # fmt: skip
    print(f"  three calls (bias init, packed matmul, epilogue) {three_us:>9.1f} us")
    print(f"  fused (mips_matmul_packed_epilogue_{args.dtype})     {fused_us:>9.1f} us")
    print(f"  ratio fused / three calls {fused_us / three_us:.3f} (same bits)")


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
    ap.add_argument(
        "--fused", action="store_true", help="time the fused call against the three calls"
    )
    args = ap.parse_args()
    m, n, k = _dims(args.shape, 3)
    tm, tn = _dims(args.tile, 2)
    if tm != m:
        raise SystemExit("--tile must span all M rows (the inference shapes' tiles do)")
    if args.fused:
        _time_fused(args, m, n, k, tm, tn)
        return
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
