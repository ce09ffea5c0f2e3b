"""Two (or more) builds of one model, timed interleaved in one process: did a change help?

Each NAME=FILE.vmfb is a compile of the same model (same inputs and outputs), e.g. the main
branch's `mipsc compile` output against a branch's, kept by `tools/bench_models.py --keep`.
All run on this mipsc's kernel plugin (a module importing only kernels the plugin has runs on
it whatever build made it), on random inputs of the given shapes (--input once per input, in
order), checked to agree (the first output), then timed with mipsc.bench.time_interleaved
(bursts, rounds, medians) per thread count.

    .venv/bin/python tools/bench_vmfb_ab.py --input 64x1024xf32 --parameters mlp.irpa \\
        before=run_base/mlp.mipsc.vmfb after=run_new/mlp.mipsc.vmfb --threads 1 2

Prints each build's median, first quartile and minimum (ms) and their ratios to the first
build's (below 1: faster); on a loaded machine the quartile and the minimum are the steadier
figures.

`--config NAME KEY=VALUE` sets a field of the plugin's live kernel configuration
(mips_debug_set_config, kernels/mips_kernels.h) just before build NAME loads (its initializers,
e.g. the packs of its weights, run then) and restores the previous builds' value after: an A/B
of a kernel setting on the same .vmfb, e.g. `a=m.vmfb b=m.vmfb --config a pack_huge_pages=0`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator

import numpy as np

from mipsc.kernel_abi import CONFIG_VALUE_SYMBOL

DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def make_input(spec: str, seed: int = 0) -> np.ndarray:
    """A seeded standard-normal array from `64x1024xf32`."""
    import ml_dtypes

    *dims, dtype = spec.split("x")
    values = np.random.default_rng(seed).standard_normal([int(d) for d in dims], np.float32)
    return values.astype(ml_dtypes.bfloat16 if dtype == "bf16" else DTYPES[dtype])


def worker(spec: dict) -> dict[str, list[float]]:
    """In a process of its own (the thread count is fixed per process): check, then time."""
    import iree.runtime as rt

    from mipsc import runtime
    from mipsc.bench import cpu_times, time_interleaved

    rt.flags.parse_flags(f"--task_topology_group_count={spec['threads']}")
    xs = [make_input(shape, seed) for seed, shape in enumerate(spec["inputs"])]
    params = {"model": spec["parameters"]} if spec["parameters"] else None
    calls, outputs = {}, {}
    for name, path in spec["builds"].items():
        with kernel_config(spec["config"].get(name, [])):
            function = runtime.load(path, parameters=params).function("main")
        device = runtime.device()
        dxs = [rt.asdevicearray(device, x) for x in xs]
        result = function(*dxs)
        first_result = result[0] if isinstance(result, (tuple, list)) else result
        outputs[name] = np.asarray(first_result).astype(np.float32)
        calls[name] = lambda f=function, dxs=dxs: f(*dxs)
    first = next(iter(outputs.values()))
    for name, out in outputs.items():
        scale = float(np.abs(first).max()) or 1.0
        if float(np.abs(out - first).max()) > spec["tolerance"] * scale:
            raise SystemExit(f"{name} does not agree with the first build")
    if spec["clock"] == "cpu":
        samples = cpu_times(calls, spec["seconds"])
    else:
        samples = time_interleaved(calls, spec["seconds"], 500)
    return {
        name: [1e3 * statistics.median(t), 1e3 * min(t), len(t), 1e3 * quartile(t)]
        for name, t in samples.items()
    }


def quartile(samples: list[float]) -> float:
    """The first quartile: the time that a quarter of the calls beat (on a loaded machine,
    steadier than the minimum, and less mixed with preemptions than the median)."""
    return sorted(samples)[len(samples) // 4]


@contextlib.contextmanager
def kernel_config(settings: list[str]) -> Iterator[None]:
    """The plugin's live configuration with each KEY=VALUE of `settings` set, restored after."""
    from mipsc import runtime

    lib = ctypes.CDLL(str(runtime.plugin_path()))
    lib.mips_debug_set_config.argtypes = [ctypes.c_char_p, ctypes.c_int64]
    live_value = getattr(lib, CONFIG_VALUE_SYMBOL)  # "" names the live configuration
    live_value.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)]
    before = {}
    for setting in settings:
        key, value = setting.split("=", 1)
        current = ctypes.c_int64()
        if live_value(b"", key.encode(), ctypes.byref(current)) != 0:
            raise SystemExit(f"--config {setting}: the plugin has no field '{key}'")
        before[key] = current.value
        if lib.mips_debug_set_config(key.encode(), int(value)) != 0:
            raise SystemExit(f"--config {setting}: the plugin refused it")
    try:
        yield
    finally:
        for key, value in before.items():
            lib.mips_debug_set_config(key.encode(), value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="*", help="NAME=FILE.vmfb, the first is the baseline")
    parser.add_argument(
        "--input",
        action="append",
        help="shape and dtype, e.g. 64x1024xf32 (required); once per input, in order",
    )
    parser.add_argument("--parameters", help="the .irpa of scope 'model', if any")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="cpu: process CPU time"
    )
    parser.add_argument(
        "--config",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "KEY=VALUE"),
        help="a kernel configuration field set while build NAME loads (repeatable)",
    )
    parser.add_argument("--tolerance", type=float, default=2e-2, help="relative to max |out|")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        json.dump(worker(json.loads(sys.stdin.read())), sys.stdout)
        return
    if not opts.builds or not opts.input:
        parser.error("give the builds (NAME=FILE.vmfb ...) and --input")
    builds = dict(b.split("=", 1) for b in opts.builds)
    base = next(iter(builds))
    config: dict[str, list[str]] = {}
    for name, setting in opts.config:
        if name not in builds or "=" not in setting:
            parser.error(f"--config {name} {setting}: want a build's NAME and KEY=VALUE")
        config.setdefault(name, []).append(setting)
    for threads in opts.threads:
        spec = {
            "threads": threads,
            "builds": builds,
            "inputs": opts.input,
            "parameters": opts.parameters,
            "seconds": opts.seconds,
            "tolerance": opts.tolerance,
            "clock": opts.clock,
            "config": config,
        }
        proc = subprocess.run(
            [sys.executable, __file__, "--worker"],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr.strip()[-2000:])
        ms = json.loads(proc.stdout)
        cells = [
            f"{name} {med:.3f} ms ({med / ms[base][0]:.2f}x), p25 {q1:.3f} "
            f"({q1 / ms[base][3]:.2f}x), min {low:.3f} ({low / ms[base][1]:.2f}x), {count} samples"
            for name, (med, low, count, q1) in ms.items()
        ]
        print(f"{threads} thread(s): " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
