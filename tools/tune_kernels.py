"""Sweep the kernel configuration's cache blocks through the real path and print the best.

Each candidate value of a block (KC, MC, NC of the f32-packed GEMM, the VDPBF16PS GEMM's
bf16_kc / bf16_mc / bf16_nc, the B prefetch distance) is timed on the whole mipsc path: the
module `mipsc compile --kernel-link plugin` makes of a torch `mm`, run by IREE with the kernel
plugin, so the tiles and threads are IREE's (the default link, kernels in the module, runs its
own copy of the kernels, whose configuration the sweep cannot set). All candidates run in one
process and take turns in short bursts (`mipsc.bench.time_interleaved`); before each call the
plugin's live configuration is set to the candidate (`mips_debug_set_config`, mips_kernels.h),
so a busy machine slows every candidate alike; `--clock cpu` times each call in this
process's CPU time instead (what other processes take of the cores does not count). The
ratios are against the first value given (put the current one first). One process per thread
count, as `mipsc bench` does.

    .venv/bin/python tools/tune_kernels.py --param bf16_kc=512,256,384,1024 \\
        --shape 1024x1024x1024 --dtype bf16 --threads 1 --threads 2

The code path can be swept the same way (`isa` for f32/f16, `bf16_isa` for bf16, as
MIPS_ISA_* numbers: 0 generic, 1 avx2, 2 avx512, 3 amx, 4 avx512bf16; only paths this CPU has),
e.g. `--param bf16_isa=4,2` times VDPBF16PS against widening bf16 to f32.

The tile cost model's constants (the entry's `tile_*` fields: tile_max_rows, tile_max_cols,
tile_packed_max_cols, tile_pack_flops, tile_narrow_cols, tile_workgroup_flops,
tile_wake_flops, tile_one_worker_pct, tile_thin_bytes; mips_kernels.h, "Tile cost model") are
swept the same way, except that they act at compile time: the module is compiled once per
value, with the live configuration set to it (a compile for `--target-cpu=host` reads this
machine's live entry from the plugin, mipsc.tiling.tile_model) and its tiles chosen for
`--threads` workers, and each value's module runs in its turn; the rows say which tiles each value gave. Values that give the same tiles time the
same module twice (a check of the noise). thin_streams acts on both: each value's module runs
with the kernels set to it. E.g. the per-workgroup cost on 2 threads, on the shapes whose tiles
it decides:

    .venv/bin/python tools/tune_kernels.py --param tile_workgroup_flops=1000000,300000,3000000 \
        --shape 256x256x256 --shape 256x512x384 --shape 128x2304x768 --threads 1 --threads 2

A new CPU kind gets its entry this way: a copy of the closest entry in kernels/mips_config.c
(its `about` saying so), then each block and each tile_ field swept on the machine through
this tool, and the values that win written into the entry with the command, the CPU and the
ratios as their source (a field left unmeasured says "carried over from <entry>, not
measured"). The values that win go into the CPU's entry in kernels/mips_config.c (with the
measurement as their source); `mipsc kernel-info` shows the entry this machine gets.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def worker(spec: dict) -> list[dict]:
    import iree.runtime as rt

    from mipsc import runtime
    from mipsc.bench import NP_DTYPES, PLUGIN_BACKEND, compile_backends, cpu_times, time_interleaved

    rt.flags.parse_flags(f"--task_topology_group_count={spec['threads']}")
    plugin = runtime.plugin_path()
    compiled = TileSweep(Path(spec["work"]), spec["param"], spec["threads"])
    lib = ctypes.CDLL(str(plugin))  # the same handle IREE's loader gets (same path)
    lib.mips_debug_set_config.argtypes = [ctypes.c_char_p, ctypes.c_int64]
    lib.mips_debug_set_config.restype = ctypes.c_int
    lib.mips_kernel_info.restype = ctypes.c_char_p
    name, values = spec["param"], spec["values"]
    key = name.encode()
    if lib.mips_debug_set_config(key, values[0]) != 0:
        raise SystemExit(f"the plugin has no configuration field '{name}'")
    rows = []
    for m, n, k in spec["shapes"]:
        for dtype in spec["dtypes"]:
            # the module that calls the plugin: one with the kernels linked in (mipsc's default
            # link) runs its own copy, which the plugin's live configuration does not reach
            if compiled.per_value:
                paths = {v: compiled.module(lib, key, v, (m, n, k), dtype) for v in values}
            else:
                path = compile_backends(Path(spec["work"]), m, n, k, dtype)[PLUGIN_BACKEND]
                paths = dict.fromkeys(values, path)
            rng = np.random.default_rng(0)
            a = rng.standard_normal((m, k)).astype(NP_DTYPES[dtype])
            b = rng.standard_normal((k, n)).astype(NP_DTYPES[dtype])
            # (loaded before the device is made: the first load hands IREE the plugin)
            functions = {v: runtime.load(p).function("main") for v, p in paths.items()}
            device = runtime.device()
            da, db = rt.asdevicearray(device, a), rt.asdevicearray(device, b)

            def call(v, functions=functions, da=da, db=db):
                lib.mips_debug_set_config(key, v)
                return functions[v](da, db)

            calls = {str(v): (lambda v=v: call(v)) for v in values}
            if spec["clock"] == "cpu":
                samples = cpu_times(calls, spec["seconds"])
            else:
                samples = time_interleaved(calls, spec["seconds"], 100000)
            base = statistics.median(samples[str(values[0])])
            for v in values:
                t = statistics.median(samples[str(v)])
                rows.append({
                    "shape": f"{m}x{n}x{k}", "dtype": dtype, "threads": spec["threads"],
                    "value": v, "ms": 1e3 * t, "gflops": 2e-9 * m * n * k / t,
                    "speedup": base / t, "tiles": compiled.tiles.get((m, n, k, dtype, v), ""),
                })  # fmt: skip
    lib.mips_debug_set_config(key, values[0])
    return rows


class TileSweep:
    """The modules of a sweep of a field the tile cost model reads (tile_*, thin_streams): one
    per value, compiled for this machine with the live configuration set to the value."""

    def __init__(self, work: Path, param: str, threads: int) -> None:
        from mipsc.tiling import TILE_CONFIG_KEYS

        self.work, self.threads = work, threads
        self.per_value = param in TILE_CONFIG_KEYS
        self.tiles: dict[tuple, str] = {}

    def module(self, lib, key: bytes, value: int, shape: tuple[int, int, int], dtype: str) -> Path:
        from mipsc.bench import mm_module
        from mipsc.options import CompileOptions
        from mipsc.pipeline import compile_module
        from mipsc.tiling import choose_tiles, forget_tile_models

        m, n, k = shape
        if lib.mips_debug_set_config(key, value) != 0:
            raise SystemExit(f"the plugin refuses {key.decode()}={value}")
        forget_tile_models()  # the compile reads the live entry again
        tile = choose_tiles(m, n, 1, k, self.threads, False, 2 if dtype != "f32" else 4)
        self.tiles[(m, n, k, dtype, value)] = "{}x{}".format(*tile)
        path = self.work / f"tune_{m}x{n}x{k}_{dtype}_{key.decode()}_{value}.vmfb"
        options = CompileOptions(kernel_link="plugin", workers=self.threads)
        compile_module(mm_module(m, n, k, dtype), "tune.mlir", path, options)
        return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--param", required=True, help="FIELD=V1,V2,... (the first is the baseline)")
    ap.add_argument("--shape", action="append", default=[], help="MxNxK (repeatable)")
    ap.add_argument("--dtype", action="append", default=[], choices=["f32", "f16", "bf16"])
    ap.add_argument("--threads", action="append", type=int, default=[])
    ap.add_argument("--seconds", type=float, default=1.0, help="time per candidate and case")
    ap.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall",
        help="cpu: this process's CPU time (all IREE workers), steadier on a shared machine",
    )  # fmt: skip
    args = ap.parse_args()
    name, _, text = args.param.partition("=")
    values = [int(v) for v in text.split(",") if v]
    if not name or not values:
        ap.error("--param needs FIELD=V1,V2,...")
    shapes = [tuple(int(x) for x in s.lower().split("x")) for s in args.shape] or [(1024,) * 3]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mipsc-tune-") as work:
        for threads in args.threads or [1]:
            spec = {
                "param": name, "values": values, "shapes": shapes,
                "dtypes": args.dtype or ["f32"], "threads": threads, "seconds": args.seconds,
                "work": work, "clock": args.clock,
            }  # fmt: skip
            proc = subprocess.run(
                [sys.executable, __file__, "--worker"],
                input=json.dumps(spec), capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(proc.stderr.strip()[-3000:])
            rows += json.loads(proc.stdout)
    print(
        f"{'shape':16s} {'dtype':5s} {'thr':>3s} {name:>20s} {'ms':>9s} {'GFLOP/s':>8s} "
        f"speedup  tiles"
    )
    for r in rows:
        print(
            f"{r['shape']:16s} {r['dtype']:5s} {r['threads']:3d} {r['value']:20d} "
            f"{r['ms']:9.3f} {r['gflops']:8.1f} {r['speedup']:6.3f}x  {r['tiles']}"
        )
    score = {v: float(np.exp(np.mean([np.log(r["speedup"]) for r in rows if r["value"] == v])))
             for v in values}  # fmt: skip
    best = max(score, key=score.__getitem__)
    print(f"best {name}={best}: geometric mean {score[best]:.3f}x of {name}={values[0]}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        json.dump(worker(json.loads(sys.stdin.read())), sys.stdout)
    else:
        main()
