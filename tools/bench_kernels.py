"""Time mips_matmul_f32 (one call on the whole matrix, one thread) against numpy's `a @ b`.

Usage (from the repo root, after `make kernels`)::

    .venv/bin/python tools/bench_kernels.py                 # the default table
    .venv/bin/python tools/bench_kernels.py --reps 15 --peak --dtypes f32 f16 bf16
    MIPSC_PLUGIN=/path/to/libmips_kernels.so .venv/bin/python tools/bench_kernels.py

Each numpy configuration runs in its own subprocess with OPENBLAS_NUM_THREADS=1 (and
OMP_NUM_THREADS=1) set before numpy is imported: with the environment's OPENBLAS_CORETYPE, with
OPENBLAS_CORETYPE=Haswell, and with it unset (OpenBLAS then picks its kernel from cpuid); each
distinct setting once.  In each
subprocess the kernel and numpy are timed interleaved (kernel, numpy, kernel, numpy, ...) on the
same operands, and the median of --reps runs is reported as GFLOP/s (2*m*n*k / time) with the ratio
kernel / numpy.  threadpoolctl, if importable (e.g. PYTHONPATH=dir of a `pip install --target dir
threadpoolctl`), reports which OpenBLAS kernel ("architecture") and
how many threads numpy used.  --peak measures this core's f32 FMA peak
(mipsc.peak: a compiled loop of independent vector FMAs) for the "% peak" column.

Cases (M x N x K, C = A . B): 256^3, 512^3, 1024^3, 256x512x384, 1024^3 with B transposed
(b_stride0 == 1: B is the transpose of a row-major N x K array), and 1024^3 computed as IREE
does it, one call per 64x128 tile of C with the full K ("tiled 64x128"); and two matrix-vector
products x @ W (1x4096x4096, B row-major and B^T, as torch.nn.Linear's weight arrives).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

from mipsc.kernel_abi import MatmulParams
from mipsc.peak import measure_peak

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_LIB = REPO_ROOT / "src" / "mipsc" / "_lib" / "libmips_kernels.so"
I64 = ctypes.c_int64
VP = ctypes.c_void_p

CASES = [  # (label, m, n, k, b_transposed, tile)
    ("256^3", 256, 256, 256, False, None),
    ("512^3", 512, 512, 512, False, None),
    ("1024^3", 1024, 1024, 1024, False, None),
    ("256x512x384", 256, 512, 384, False, None),
    ("1024^3 B^T", 1024, 1024, 1024, True, None),
    ("1024^3 tiled 64x128", 1024, 1024, 1024, False, (64, 128)),
    ("1x4096x4096", 1, 4096, 4096, False, None),
    ("1x4096x4096 B^T", 1, 4096, 4096, True, None),
]


def _view_params(a, b, c) -> MatmulParams:
    """Params for C = A . B on numpy 2-D views (strides in elements, offsets 0)."""
    it = a.itemsize

    def desc(x):
        return (x.ctypes.data, 0, x.strides[0] // it, x.strides[1] // it)

    m, k = a.shape
    n = b.shape[1]
    return MatmulParams(*desc(a), *desc(b), *desc(c), m, n, k, 0)


# --------------------------------------------------------------------------------------------
# Worker: runs in a subprocess whose environment is already set up for numpy.


def _load_kernels(path: str, dtypes: list[str]) -> dict:
    """mips_matmul_<dtype> of the library, by dtype."""
    lib = ctypes.CDLL(path)
    kernels = {}
    for t in dtypes:
        fn = getattr(lib, f"mips_matmul_{t}")
        fn.argtypes = [VP, VP, VP]
        fn.restype = ctypes.c_int
        kernels[t] = fn
    return kernels


def _blas_info() -> dict:
    """OPENBLAS_CORETYPE, and what threadpoolctl says numpy's BLAS is (None without it)."""
    info = {"coretype": os.environ.get("OPENBLAS_CORETYPE"), "threadpoolctl": None}
    try:
        import threadpoolctl

        info["threadpoolctl"] = [
            {key: d.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        pass
    return info


def _operands(np, a, b, b_t: bool, dtype: str) -> tuple:
    """(A, B, C) of one dtype from the f32 operands; bf16 truncated (only timing matters)."""
    m, n = a.shape[0], b.shape[1]
    if dtype == "f32":
        return a, b, np.empty((m, n), np.float32)
    if dtype == "f16":
        return a.astype(np.float16), b.astype(np.float16), np.empty((m, n), np.float16)
    aa = (a.view(np.uint32) >> 16).astype(np.uint16)
    bb = (np.ascontiguousarray(b).view(np.uint32) >> 16).astype(np.uint16)
    bb = np.ascontiguousarray(bb.T).T if b_t else bb
    return aa, bb, np.empty((m, n), np.uint16)


def _call_params(aa, bb, c, tile) -> list:
    """One call on the whole matrix, or one per tile of C (with the full K), as IREE does."""
    if tile is None:
        return [_view_params(aa, bb, c)]
    (m, n), (tm, tn) = c.shape, tile
    return [
        _view_params(aa[i : i + tm], bb[:, j : j + tn], c[i : i + tm, j : j + tn])
        for i in range(0, m, tm)
        for j in range(0, n, tn)
    ]


def _warm_up(run_kernel) -> None:
    """The first ~10 calls in a process are slower (the heap grows and new pages fault in):
    warm up for 20 calls or 50 ms before timing."""
    run_kernel()  # a check, and the first of the warm-up calls
    warm_start = time.perf_counter()
    for _ in range(19):
        if time.perf_counter() - warm_start > 0.05:
            break
        run_kernel()


def _interleaved(run_kernel, run_np, reps: int) -> tuple[list[float], list[float]]:
    """Seconds per run of the kernel and of numpy (if any), taking turns."""
    tk, tnp = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        run_kernel()
        tk.append(time.perf_counter() - t0)
        if run_np is not None:
            t0 = time.perf_counter()
            run_np()
            tnp.append(time.perf_counter() - t0)
    return tk, tnp


def _time_case(np, fn, case: tuple, dtype: str, operands: tuple, reps: int) -> dict:
    """One row: the kernel (checked against numpy in f32) and, for f32, numpy, interleaved."""
    label, m, n, k, b_t, tile = case
    a, b, ref = operands
    aa, bb, c = _operands(np, a, b, b_t, dtype)
    params = _call_params(aa, bb, c, tile)  # kept alive: the kernel reads them by address
    addrs = [ctypes.addressof(p) for p in params]

    def run_kernel() -> None:
        for ad in addrs:
            if fn(ad, None, None) != 0:
                raise RuntimeError("kernel returned non-zero")

    _warm_up(run_kernel)
    if dtype == "f32":
        err = float(np.max(np.abs(c - ref)) / np.max(np.abs(ref)))
        assert err < 1e-5, (label, err)
    run_np = (lambda: a @ b) if dtype == "f32" else None
    if run_np is not None:
        run_np()
    tk, tnp = _interleaved(run_kernel, run_np, reps)
    flops = 2.0 * m * n * k
    return {
        "case": label,
        "dtype": dtype,
        "kernel_gflops": flops / statistics.median(tk) / 1e9,
        "numpy_gflops": flops / statistics.median(tnp) / 1e9 if tnp else None,
        "calls": len(addrs),
    }


def _worker(args) -> None:
    """Every case and dtype, printed as one JSON line."""
    import numpy as np

    kernels = _load_kernels(args.lib, args.dtypes)
    info = _blas_info()
    rng = np.random.default_rng(0)
    rows = []
    for case in CASES:
        _, m, n, k, b_t, _ = case
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, k)).astype(np.float32).T if b_t else None
        if b is None:
            b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        operands = (a, b, a @ b)
        for dtype in args.dtypes:
            rows.append(_time_case(np, kernels[dtype], case, dtype, operands, args.reps))
    print(json.dumps({"info": info, "rows": rows}))


# --------------------------------------------------------------------------------------------
# Driver


def cpu_summary() -> str:
    model, mhz = platform.processor() or "?", "?"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz"):
                mhz = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                isa = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_bf16") if f in flags]
                break
    except OSError:
        isa = []
    return f"{model}, cpu MHz {mhz}, ISA: {' '.join(isa)}"


def run_worker(args, coretype: str | None) -> dict:
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    if coretype is None:
        env.pop("OPENBLAS_CORETYPE", None)
    else:
        env["OPENBLAS_CORETYPE"] = coretype
    cmd = [sys.executable, __file__, "--worker", "--lib", args.lib, "--reps", str(args.reps)]
    cmd += ["--dtypes", *args.dtypes]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _print_table(coretype: str | None, res: dict, peak: float | None) -> None:
    """One worker's rows, under what numpy's BLAS was."""
    tpc = res["info"]["threadpoolctl"]
    used = (
        ", ".join(
            f"{d['internal_api']} {d['version']} kernel={d['architecture']} "
            f"threads={d['num_threads']}"
            for d in tpc
        )
        if tpc
        else "threadpoolctl not installed"
    )
    print(f"\nnumpy with OPENBLAS_CORETYPE={coretype if coretype is not None else '(unset)'}: {used}")
    head = f"{'case (MxNxK)':<22}{'dtype':<6}{'calls':>6}{'kernel GF/s':>13}"
    head += f"{'numpy GF/s':>12}{'kernel/numpy':>14}"
    if peak is not None:
        head += f"{'% peak':>8}"
    print(head)
    for r in res["rows"]:
        line = f"{r['case']:<22}{r['dtype']:<6}{r['calls']:>6}{r['kernel_gflops']:>13.1f}"
        if r["numpy_gflops"]:
            ratio = r["kernel_gflops"] / r["numpy_gflops"]
            line += f"{r['numpy_gflops']:>12.1f}{ratio:>14.2f}"
        else:
            line += f"{'-':>12}{'-':>14}"
        if peak is not None:
            line += f"{100 * r['kernel_gflops'] / peak:>8.0f}"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--lib", default=os.environ.get("MIPSC_PLUGIN") or str(DEFAULT_LIB))
    ap.add_argument("--reps", type=int, default=9, help="timed runs per case (median)")
    ap.add_argument("--dtypes", nargs="+", default=["f32"], choices=["f32", "f16", "bf16"])
    ap.add_argument("--peak", action="store_true", help="measure the FMA peak (needs gcc)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args)
        return
    if not pathlib.Path(args.lib).is_file():
        sys.exit(f"{args.lib} not found: run `make kernels` (or pass --lib)")

    print(f"CPU: {cpu_summary()}")
    print(f"library: {args.lib}")
    peak = None
    if args.peak:
        measured = measure_peak()
        peak = measured.gflops_per_core
        print(f"f32 peak of one core: {peak:.1f} GFLOP/s ({measured.how})")
    # The environment's OPENBLAS_CORETYPE (this project's sets Haswell), Haswell, and unset.
    env_ct = os.environ.get("OPENBLAS_CORETYPE")
    print(f"OPENBLAS_CORETYPE in this environment: {env_ct if env_ct is not None else '(unset)'}")
    coretypes = list(dict.fromkeys([env_ct, "Haswell", None]))
    results = [(ct, run_worker(args, ct)) for ct in coretypes]

    for ct, res in results:
        _print_table(ct, res, peak)
    print(f"\n(median of {args.reps} interleaved runs per case; 1 thread; numpy: a @ b)")


if __name__ == "__main__":
    main()
