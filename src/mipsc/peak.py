"""This CPU's f32 FMA peak, measured, for the "% of peak" columns of the benchmarks.

The nominal clock in /proc/cpuinfo is not the clock a core runs at (turbo, a VM's fiction), and
the ISA flags do not say how many FMA pipes a core has, so the peak is measured: a small C loop
of independent vector FMAs (512-bit where the CPU has AVX-512, else 256-bit), compiled with the
system's C compiler, timed for a fraction of a second. Without a compiler the estimate from
/proc/cpuinfo stands in, and says so.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PEAK_C = r"""
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
/* 24 independent accumulator chains: enough to cover the FMA latency on two pipes. */
#define CHAINS 24
#define KERNEL(NAME, TARGET, VEC, SET1, FMA, LANES)                        \
  __attribute__((target(TARGET), noinline)) static double NAME(long n) {   \
    VEC acc[CHAINS];                                                       \
    const VEC x = SET1(1.0000001f), y = SET1(1e-7f);                       \
    for (int i = 0; i < CHAINS; ++i) acc[i] = SET1((float)i);              \
    double t = now();                                                      \
    for (long it = 0; it < n; ++it) {                                      \
      _Pragma("GCC unroll 24") for (int i = 0; i < CHAINS; ++i)            \
          acc[i] = FMA(acc[i], x, y);                                      \
    }                                                                      \
    t = now() - t;                                                         \
    float sink = 0;                                                        \
    for (int i = 0; i < CHAINS; ++i) sink += acc[i][0];                    \
    if (sink == 12345.f) puts("");                                        \
    return 2.0 * LANES * CHAINS * n / t / 1e9;                             \
  }
KERNEL(fma512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
KERNEL(fma256, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
int main(void) {
  __builtin_cpu_init();
  const int wide = __builtin_cpu_supports("avx512f");
  if (!wide && !__builtin_cpu_supports("fma")) return 2;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    double g = wide ? fma512(4000000) : fma256(4000000);
    if (g > best) best = g;
  }
  printf("%s %.6g\n", wide ? "AVX-512" : "AVX2", best);
  return 0;
}
"""


@dataclass(frozen=True)
class Peak:
    gflops_per_core: float
    """f32 FLOP/s of one core (an FMA counts as two)."""
    how: str
    """How it was found, for the report."""


def _cpuinfo() -> tuple[str, set[str], float]:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU", set(), float("nan")
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", info, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)
    return (
        model.group(1) if model else "x86-64",
        set(flags.group(1).split()) if flags else set(),
        float(mhz.group(1)) / 1000 if mhz else float("nan"),
    )


def cpu_model() -> str:
    return _cpuinfo()[0]


def estimated_peak() -> Peak:
    """Two FMA pipes at the nominal clock: a guess, used only without a compiler."""
    _model, flags, ghz = _cpuinfo()
    lanes, isa = (
        (16, "AVX-512")
        if "avx512f" in flags
        else (8, "AVX2")
        if "avx2" in flags
        else (
            4,
            "SSE",
        )
    )
    return Peak(2 * lanes * 2 * ghz, f"estimated: 2 {isa} FMA pipes at {ghz:.2f} GHz (nominal)")


def measure_peak() -> Peak:
    """The measured f32 FMA peak of one core, or the estimate when that cannot be measured."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or platform.machine() not in ("x86_64", "AMD64"):
        return estimated_peak()
    with tempfile.TemporaryDirectory(prefix="mipsc-peak-") as tmp:
        src, exe = Path(tmp, "peak.c"), Path(tmp, "peak")
        src.write_text(PEAK_C)
        built = subprocess.run([cc, "-O2", "-o", str(exe), str(src)], capture_output=True)
        if built.returncode != 0:
            return estimated_peak()
        run = subprocess.run([str(exe)], capture_output=True, text=True)
    if run.returncode != 0:
        return estimated_peak()
    isa, gflops = run.stdout.split()
    return Peak(float(gflops), f"measured: independent {isa} FMAs, one core")
