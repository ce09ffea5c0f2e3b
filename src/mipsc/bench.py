"""`mipsc bench`: the same matmuls through mipsc, IREE's own codegen and numpy, side by side.

mipsc runs twice: `mipsc` with the kernels linked into the module (--kernel-link=embedded, the
default) and `mipsc-plugin` with the same kernels resolved from the plugin (--kernel-link=plugin);
the `vs plugin` column compares each row with the latter.

f32 also runs through mipsc with the OpenBLAS kernel backend (`mipsc-openblas`: the same
dispatch and tiles, each tile one single-threaded sgemm) when OpenBLAS is available.

Each thread count runs in its own process (IREE reads its worker count and the kernel plugin
once per process; OpenBLAS its thread count at import). Inside a process the backends are
timed interleaved, call by call, so a busy machine slows all of them alike; the median counts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import ml_dtypes
import numpy as np

from mipsc.backend.iree_compile import compile_mlir
from mipsc.diagnostics import MipscError
from mipsc.peak import cpu_model, measure_peak

IREE_BEST_FLAGS = ("--iree-opt-data-tiling",)
"""IREE's own codegen at its best on this CPU (with target-cpu=host, which compile_mlir sets)."""

DEFAULT_SHAPES = ((256, 256, 256), (256, 512, 384), (512, 512, 512), (1024, 1024, 1024))
NP_DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}
DTYPES = tuple(NP_DTYPES)


@dataclass
class Result:
    m: int
    n: int
    k: int
    dtype: str
    threads: int
    backend: str
    median_ms: float
    gflops: float
    percent_of_peak: float
    samples: int


@dataclass
class Report:
    machine: str
    peak_gflops_per_core: float
    peak_how: str
    openblas_coretype: str | None
    openblas_backend: str | None = None
    """The `mipsc-openblas` row's library and core, or why there is no such row."""
    results: list[Result] = field(default_factory=list)


def mm_module(m: int, n: int, k: int, dtype: str) -> str:
    def t(r: int, c: int) -> str:
        return f"!torch.vtensor<[{r},{c}],{dtype}>"

    return (
        f"func.func @main(%a: {t(m, k)}, %b: {t(k, n)}) -> {t(m, n)} {{\n"
        f"  %0 = torch.aten.mm %a, %b : {t(m, k)}, {t(k, n)} -> {t(m, n)}\n"
        f"  return %0 : {t(m, n)}\n}}\n"
    )


PLUGIN_BACKEND = "mipsc-plugin"
"""mipsc with `--kernel-link=plugin`: the kernels from libmips_kernels.so, not the module."""

OPENBLAS_BACKEND = "mipsc-openblas"
"""mipsc with `--kernel-backend=openblas`; f32 only (f16/bf16 would run the builtin kernels)."""


def compile_backends(
    work: Path, m: int, n: int, k: int, dtype: str, openblas: bool = False
) -> dict[str, Path]:
    """The .vmfb of each IREE-based backend for one shape."""
    from mipsc.options import CompileOptions
    from mipsc.pipeline import compile_module

    text = mm_module(m, n, k, dtype)
    paths = {"mipsc": work / f"mipsc_{m}x{n}x{k}_{dtype}.vmfb"}
    compile_module(text, "bench.mlir", paths["mipsc"], CompileOptions(kernel_link="embedded"))
    paths[PLUGIN_BACKEND] = work / f"mipsc_plugin_{m}x{n}x{k}_{dtype}.vmfb"
    compile_module(text, "bench.mlir", paths[PLUGIN_BACKEND], CompileOptions(kernel_link="plugin"))
    if openblas and dtype == "f32":
        paths[OPENBLAS_BACKEND] = work / f"mipsc_openblas_{m}x{n}x{k}_{dtype}.vmfb"
        compile_module(
            text, "bench.mlir", paths[OPENBLAS_BACKEND], CompileOptions(kernel_backend="openblas")
        )
    paths["iree-best"] = work / f"iree_{m}x{n}x{k}_{dtype}.vmfb"
    compile_mlir(text, paths["iree-best"], extra_flags=IREE_BEST_FLAGS)
    return paths


BURST_SECONDS = 0.1
"""Each backend runs for about this long before the next one takes its turn."""

WARM_SECONDS = 0.02
"""The start of each burst, not counted: the switch from another backend (and, after a pause,
an idle core) slows the first calls. Counting them made whichever backend came right after
multi-threaded numpy's pause up to 1.5x slower on 2 threads at 256x512x384."""

SETTLE_SECONDS = 0.25
"""Idle time after a burst of a multi-threaded host library (numpy's OpenBLAS, torch's OpenMP):
its workers spin for up to ~0.1 s after each call (OpenBLAS's THREAD_TIMEOUT) and would
otherwise steal a core from the next backend."""


def settle_after(spinner: str, threads: int) -> Callable[[str], None]:
    """time_interleaved's `settle`: pause SETTLE_SECONDS after a burst of the backend `spinner`
    when it runs on several threads."""

    def settle(name: str) -> None:
        if name == spinner and threads > 1:
            time.sleep(SETTLE_SECONDS)

    return settle


def cpu_times(
    calls: dict[str, Callable[[], object]], seconds: float, burst: int = 5
) -> dict[str, list[float]]:
    """Per-call CPU time of this process (all its threads: IREE's workers too), in rounds of
    `burst` calls per build, until each build has used `seconds` of CPU. Other processes on
    the machine take wall time, not this process's CPU time: the steadier clock when the
    machine is shared (it counts a worker's spinning too, alike for every build)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    while min(sum(t) * burst for t in samples.values()) < seconds:
        for name, call in calls.items():
            start = time.process_time()
            for _ in range(burst):
                call()
            samples[name].append((time.process_time() - start) / burst)
    return samples


def time_interleaved(
    calls: dict[str, Callable[[], object]],
    min_seconds: float,
    max_samples: int,
    settle: Callable[[str], None] = lambda _name: None,
) -> dict[str, list[float]]:
    """Per-call times of each backend, taken in rounds of short bursts, backend after backend.

    Bursts (not single calls) so that each backend runs with its own threads warm and nobody
    else's spinning; rounds so that a slow phase of the machine hits every backend alike, each
    round starting one backend later so none always follows the same one. The first
    WARM_SECONDS of each burst (at least one call) are not counted.
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # first-call allocations and page faults
        call()
    spent = dict.fromkeys(calls, 0.0)
    order = list(calls)
    burst = min(BURST_SECONDS, min_seconds)
    rounds = 0
    while any(spent[n] < min_seconds and len(samples[n]) < max_samples for n in calls):
        start = rounds % len(order)
        rounds += 1
        for name in order[start:] + order[:start]:
            call = calls[name]
            warm_start = time.perf_counter()
            call()
            while time.perf_counter() - warm_start < min(WARM_SECONDS, burst):
                call()
            burst_start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                call()
                t1 = time.perf_counter()
                samples[name].append(t1 - t0)
                if t1 - burst_start >= burst or len(samples[name]) >= max_samples:
                    break
            spent[name] += time.perf_counter() - burst_start
            settle(name)
    return samples


def worker(spec: dict) -> list[dict]:
    """One process, one thread count: every shape and dtype, backends interleaved."""
    import iree.runtime as rt

    from mipsc import runtime

    threads = spec["threads"]
    runtime.set_threads(threads)  # every backend's module shares the device it picks
    results: list[dict] = []
    work = Path(spec["work"])
    for m, n, k in spec["shapes"]:
        for dtype in spec["dtypes"]:
            paths = compile_backends(work, m, n, k, dtype, spec.get("openblas", False))
            rng = np.random.default_rng(0)
            np_dtype = NP_DTYPES[dtype]
            a = rng.standard_normal((m, k)).astype(np_dtype)
            b = rng.standard_normal((k, n)).astype(np_dtype)
            calls: dict[str, Callable[[], object]] = {}
            for backend, path in paths.items():
                module = runtime.load(path)
                device = runtime.device()
                da, db = rt.asdevicearray(device, a), rt.asdevicearray(device, b)
                function = module.function("main")
                calls[backend] = lambda f=function, da=da, db=db: f(da, db)
            if dtype == "f32":
                calls["numpy"] = lambda a=a, b=b: a @ b
            samples = time_interleaved(
                calls,
                spec["min_seconds"],
                spec["max_samples"],
                settle=settle_after("numpy", threads),
            )
            flops = 2.0 * m * n * k
            for backend, times in samples.items():
                median = statistics.median(times)
                gflops = flops / median / 1e9
                peak = spec["peak"] * threads
                percent = 100 * gflops / peak
                row = Result(
                    m, n, k, dtype, threads, backend, 1e3 * median, gflops, percent, len(times)
                )
                results.append(asdict(row))
    return results


def _worker_error(
    stderr: str, shapes: Sequence[tuple[int, int, int]], dtypes: Sequence[str]
) -> MipscError:
    """A failed worker's error: its traceback, or one line when it ran out of memory."""
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if "MemoryError" in last:
        largest = max(shapes, key=lambda s: s[0] * s[2] + s[2] * s[1] + s[0] * s[1])
        shown = "x".join(map(str, largest))
        return MipscError(
            f"the benchmark ran out of memory: the operands of {shown} ({', '.join(dtypes)}) "
            f"do not fit in this machine's memory ({last.split(': ', 1)[-1]}); give smaller "
            "--shape values"
        )
    return MipscError(f"benchmark worker failed:\n{stderr.strip()[-3000:]}")


def run_bench(
    shapes: Sequence[tuple[int, int, int]],
    dtypes: Sequence[str],
    threads: Sequence[int],
    *,
    min_seconds: float = 2.0,
    max_samples: int = 200,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Report:
    """Times `shapes` (M, N, K) in `dtypes` on each thread count, in a worker process per
    count. MipscError: `min_seconds` not above 0 (nothing would be timed, and the worker
    failed with `no median for empty data`), or a worker's failure; one that ran out of
    memory (operands of a shape too large for this machine) says so in one line."""
    if not min_seconds > 0:
        raise MipscError(f"min_seconds={min_seconds} (--seconds) must be above 0: time per case")
    progress("measuring this CPU's f32 FMA peak")
    peak = measure_peak()
    report = Report(
        cpu_model(), peak.gflops_per_core, peak.how, os.environ.get("OPENBLAS_CORETYPE")
    )
    openblas = "f32" in dtypes and _openblas_backend(report, progress)
    with tempfile.TemporaryDirectory(prefix="mipsc-bench-") as work:
        for count in threads:
            progress(f"{count} thread(s): {len(shapes)} shape(s) x {', '.join(dtypes)}")
            spec = {
                "threads": count,
                "shapes": [list(s) for s in shapes],
                "dtypes": list(dtypes),
                "work": work,
                "min_seconds": min_seconds,
                "max_samples": max_samples,
                "peak": peak.gflops_per_core,
                "openblas": openblas,
            }
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(count), OMP_NUM_THREADS=str(count))
            proc = subprocess.run(
                [sys.executable, "-m", "mipsc.bench"],
                input=json.dumps(spec),
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if proc.returncode != 0:
                raise _worker_error(proc.stderr, shapes, dtypes)
            report.results += [Result(**r) for r in json.loads(proc.stdout)]
    return report


def _openblas_backend(report: Report, progress: Callable[[str], None]) -> bool:
    """Whether the kernel plugin can open OpenBLAS here (after the peak was measured: this
    opens it in this process); says once, and in the report, why not. The workers inherit
    $MIPSC_OPENBLAS_LIB, set here when it was not."""
    from mipsc import runtime

    plugin = runtime.plugin_path()
    runtime.check_plugin(plugin)
    problem = runtime.openblas_problem(plugin)
    if problem is not None:
        report.openblas_backend = f"skipped: {problem}"
        progress(f"no {OPENBLAS_BACKEND} row: {problem}")
        return False
    core = runtime.openblas_corename(plugin) or "?"
    report.openblas_backend = f"{runtime.openblas_library()} (core {core})"
    return True


def format_table(report: Report) -> str:
    coretype = report.openblas_coretype or "unset (OpenBLAS picks its kernel for this CPU)"
    lines = [
        f"machine: {report.machine}",
        f"f32 peak: {report.peak_gflops_per_core:.0f} GFLOP/s per core ({report.peak_how});"
        " %peak = GFLOP/s / (peak x threads)",
        f"OPENBLAS_CORETYPE: {coretype}",
    ]
    if report.openblas_backend is not None:
        lines.append(
            f"{OPENBLAS_BACKEND} (f32; one single-threaded sgemm per tile): "
            f"{report.openblas_backend}"
        )
    lines += [
        "",
        f"{'shape (MxNxK)':<16}{'dtype':<6}{'thr':>4} {'backend':<15}{'ms':>9}{'GFLOP/s':>9}"
        f"{'%peak':>7}{'vs iree':>9}{'vs numpy':>9}{'vs plugin':>10}",
    ]
    by_case: dict[tuple, dict[str, Result]] = {}
    for r in report.results:
        by_case.setdefault((r.m, r.n, r.k, r.dtype, r.threads), {})[r.backend] = r
    for (m, n, k, dtype, threads), backends in by_case.items():
        iree = backends.get("iree-best")
        numpy_r = backends.get("numpy")
        plugin_r = backends.get(PLUGIN_BACKEND)
        for name, r in backends.items():
            vs_iree = f"{iree.median_ms / r.median_ms:.2f}x" if iree else "-"
            vs_np = f"{numpy_r.median_ms / r.median_ms:.2f}x" if numpy_r else "-"
            vs_plugin = f"{plugin_r.median_ms / r.median_ms:.2f}x" if plugin_r else "-"
            lines.append(
                f"{f'{m}x{n}x{k}':<16}{dtype:<6}{threads:>4} {name:<15}{r.median_ms:>9.3f}"
                f"{r.gflops:>9.1f}{r.percent_of_peak:>6.0f}%{vs_iree:>9}{vs_np:>9}{vs_plugin:>10}"
            )
    lines.append("")
    lines.append("ratios: how many times faster than that baseline (>1 is faster), medians")
    return "\n".join(lines)


if __name__ == "__main__":
    json.dump(worker(json.loads(sys.stdin.read())), sys.stdout)
