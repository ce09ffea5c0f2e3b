"""Is a linear's bias faster as the kernel's init (C += A·B) than as a separate add after it?

Compiles both forms of `x @ w.T + b` with mipsc and times them interleaved in one process.
Run: .venv/bin/python tools/bench_epilogue.py [M N K] (default 512 1024 1024).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mipsc
from mipsc.pipeline import compile_module


def vt(*shape: int) -> str:
    return f"!torch.vtensor<[{','.join(map(str, shape))}],f32>"


def modules(m: int, n: int, k: int) -> dict[str, str]:
    head = f"func.func @main(%x: {vt(m, k)}, %w: {vt(n, k)}, %b: {vt(n)}) -> {vt(m, n)} {{\n"
    fused = (
        head
        + f"  %r = torch.aten.linear %x, %w, %b : {vt(m, k)}, {vt(n, k)}, {vt(n)} -> {vt(m, n)}\n"
        + f"  return %r : {vt(m, n)}\n}}\n"
    )
    separate = (
        head
        + "  %none = torch.constant.none\n  %one = torch.constant.int 1\n"
        + f"  %p = torch.aten.linear %x, %w, %none : {vt(m, k)}, {vt(n, k)}, !torch.none -> {vt(m, n)}\n"
        + f"  %r = torch.aten.add.Tensor %p, %b, %one : {vt(m, n)}, {vt(n)}, !torch.int -> {vt(m, n)}\n"
        + f"  return %r : {vt(m, n)}\n}}\n"
    )
    return {"bias as init": fused, "separate add": separate}


def main() -> None:
    m, n, k = (int(a) for a in sys.argv[1:4]) if len(sys.argv) > 3 else (512, 1024, 1024)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((n, k), dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        calls = {}
        for name, text in modules(m, n, k).items():
            path = Path(tmp) / f"{name.replace(' ', '_')}.vmfb"
            compile_module(text, "epilogue.mlir", path)
            fn = mipsc.load(path).main
            np.testing.assert_allclose(fn(x, w, b), x @ w.T + b, rtol=1e-3, atol=1e-3)
            calls[name] = fn
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(40):
            for name, fn in calls.items():
                t0 = time.perf_counter()
                fn(x, w, b)
                times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["separate add"])
    print(f"linear {m}x{k} · ({n}x{k})ᵀ + bias, median of {len(times['separate add'])}, interleaved:")
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"  {name:<14} {med * 1e3:8.3f} ms   {base / med:.2f}x vs separate add")


if __name__ == "__main__":
    main()
