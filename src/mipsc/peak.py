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
import resource
import shutil
import subprocess
import tempfile
import time
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
    median_gbytes_per_s: float = 0.0
    """The median pass's rate, same units: the figure to compare with a median time (on a
    machine shared with other work the fastest pass is the rate when it was least disturbed,
    which a median time of a model does not claim)."""


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


# ---------------------------------------------------------------------------------------------
# Memory bandwidth: a streaming read
# ---------------------------------------------------------------------------------------------

BANDWIDTH_C = r"""
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
/* Sums a slice of floats with four independent vector accumulators: every byte is loaded
   once per pass, nothing is written. 128 floats (512 bytes) per step. */
__attribute__((target("avx2"), noinline)) static float read256(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 128)
    for (size_t j = i; j < i + 128; j += 32) {
      a0 = _mm256_add_ps(a0, _mm256_load_ps(p + j));
      a1 = _mm256_add_ps(a1, _mm256_load_ps(p + j + 8));
      a2 = _mm256_add_ps(a2, _mm256_load_ps(p + j + 16));
      a3 = _mm256_add_ps(a3, _mm256_load_ps(p + j + 24));
    }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}
__attribute__((noinline)) static float read128(const float* p, size_t n) {
  __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 16) {
    a0 = _mm_add_ps(a0, _mm_load_ps(p + i));
    a1 = _mm_add_ps(a1, _mm_load_ps(p + i + 4));
    a2 = _mm_add_ps(a2, _mm_load_ps(p + i + 8));
    a3 = _mm_add_ps(a3, _mm_load_ps(p + i + 12));
  }
  __m128 s = _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3));
  return s[0] + s[1] + s[2] + s[3];
}
#define MAX_PASSES 1000
typedef struct {
  float* p;
  size_t n;
  int passes, wide;
  pthread_barrier_t* start;
  double began[MAX_PASSES], ended[MAX_PASSES];
  float sink;
} job_t;
/* Each reader stamps its own start and end: a pass lasts from the first start to the last
   end (a clock read by a thread that may be descheduled while the others read would not). */
static void* reader(void* arg) {
  job_t* job = arg;
  memset(job->p, 0, job->n * sizeof(float)); /* fault the pages in, by the thread that reads */
  for (int pass = 0; pass < job->passes; ++pass) {
    pthread_barrier_wait(job->start);
    job->began[pass] = now();
    job->sink += job->wide ? read256(job->p, job->n) : read128(job->p, job->n);
    job->ended[pass] = now();
  }
  return NULL;
}
int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const int threads = atoi(argv[1]), passes = atoi(argv[3]);
  const size_t slice = (size_t)atoll(argv[2]) / threads / 512 * 128; /* floats, 512 B steps */
  if (threads < 1 || threads > 64 || slice == 0 || passes < 1 || passes > MAX_PASSES) return 2;
  __builtin_cpu_init();
  const int wide = __builtin_cpu_supports("avx2");
  const size_t huge = 2 << 20, bytes = (slice * threads * sizeof(float) + huge - 1) / huge * huge;
  float* buffer = aligned_alloc(huge, bytes);
  if (!buffer) return 3;
  /* huge pages as numpy asks for large buffers, or 4 KiB pages as a file mapping (IREE's
     parameters) or a plain malloc (torch's weights, IREE's heap) gets with THP on madvise */
  madvise(buffer, bytes, atoi(argv[4]) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, threads);
  static pthread_t tid[64];
  static job_t jobs[64];
  for (int t = 0; t < threads; ++t) {
    jobs[t] = (job_t){.p = buffer + t * slice, .n = slice, .passes = passes, .wide = wide,
                      .start = &start};
    pthread_create(&tid[t], NULL, reader, &jobs[t]);
  }
  float sink = 0;
  for (int t = 0; t < threads; ++t) {
    pthread_join(tid[t], NULL);
    sink += jobs[t].sink;
  }
  static double took[MAX_PASSES];
  for (int pass = 0; pass < passes; ++pass) {
    double first = 1e30, last = 0;
    for (int t = 0; t < threads; ++t) {
      if (jobs[t].began[pass] < first) first = jobs[t].began[pass];
      if (jobs[t].ended[pass] > last) last = jobs[t].ended[pass];
    }
    took[pass] = last - first;
  }
  for (int i = 1; i < passes; ++i) /* insertion sort: the fastest first */
    for (int j = i; j > 0 && took[j] < took[j - 1]; --j) {
      const double x = took[j];
      took[j] = took[j - 1];
      took[j - 1] = x;
    }
  const double median = passes % 2 ? took[passes / 2]
                                   : (took[passes / 2 - 1] + took[passes / 2]) / 2;
  const double read = (double)(slice * threads * sizeof(float));
  if (sink == 12345.f) puts("");
  printf("%s %.6g %.6g\n", wide ? "AVX2" : "SSE2", read / took[0] / 1e9, read / median / 1e9);
  free(buffer);
  return 0;
}
"""

BANDWIDTH_BUFFER_MIB = 256
"""The buffer read: 8x the 32 MiB L3 of the largest caches seen on this project's machines
(AMD EPYC Zen 4; cpuid leaf 0x8000001D), so that the reads come from memory."""


@dataclass(frozen=True)
class Bandwidth:
    gbytes_per_s: float
    """Bytes read per second, in units of 1e9 bytes."""
    threads: int
    how: str
    """How it was found, for the report."""
    median_gbytes_per_s: float = 0.0
    """The median pass's rate, same units: the figure to compare with a median time (on a
    machine shared with other work the fastest pass is the rate when it was least disturbed,
    which a median time of a model does not claim)."""
    cpus: float = 0.0
    """The CPUs the program's threads got while it ran: its CPU time over its wall time
    (`threads` on an idle machine). Less where other work shares the cores: Linux with
    autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled) gives each busy session an
    equal share, C / N CPUs of C among N sessions, however many threads a session runs, so a
    second thread adds no CPU once two other sessions are busy on 2 cores (measured on the
    2-vCPU AMD EPYC Zen 4 of BENCHMARKS.md at load 4.5, 2026-12-02: 0.47-0.49 CPUs for 1 and
    for 2 threads alike, and the same median pass). A rate measured with fewer CPUs than
    threads says what was left, not what the threads can read."""


def measure_bandwidth(
    threads: int = 1,
    buffer_mib: int = BANDWIDTH_BUFFER_MIB,
    passes: int = 30,
    huge_pages: bool = True,
) -> Bandwidth | None:
    """This machine's streaming-read memory bandwidth with `threads` threads, or None when it
    cannot be measured (no C compiler, not x86-64).

    A small C program (compiled with the system's C compiler) splits a buffer of `buffer_mib`
    MiB into one slice per thread; each thread first writes its slice (faulting its pages in),
    then, `passes` times, all threads start together (a barrier) and sum their slices with
    vector loads (AVX2 where the CPU has it, else SSE2), four independent accumulators, nothing
    written back. The buffer is 2 MiB aligned and advised for huge pages (`MADV_HUGEPAGE`, as
    numpy and torch advise their large buffers; with 4 KiB pages the AMD EPYC Zen 4 VM of
    BENCHMARKS.md read 11-19 GB/s against 13-31 with huge pages, in one loaded run), or with
    `huge_pages=False` against them (`MADV_NOHUGEPAGE`): 4 KiB pages, as a model's weights lie
    in a file mapping (IREE's parameters) or a plain malloc with transparent huge pages on
    "madvise" (one stream per core read 19-20 GB/s there, against 30-32 with huge pages; a
    parameter file's page cache reads faster than such anonymous 4 KiB pages: a thin product's
    kernel took 0.87x the time there, BENCHMARKS.md). The figure is the buffer's bytes divided
    by the fastest pass's time (and, in `median_gbytes_per_s`, by the median pass's), each pass
    from the first thread's start to the last thread's end (each thread stamps its own: a clock
    read by a thread that is descheduled while the others read would make a pass look shorter
    than it was).

    What it stands for: the rate at which `threads` cores can stream read-only data, such as a
    model's weights, from memory; the ceiling of a memory-bound product (a matrix-vector
    product reads its matrix once). On a machine shared with other work it is what was left
    at the time, so measure it in the same run as what it is compared with; `cpus` says how
    many CPUs the threads got meanwhile.
    """
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or platform.machine() not in ("x86_64", "AMD64"):
        return None
    with tempfile.TemporaryDirectory(prefix="mipsc-bandwidth-") as tmp:
        src, exe = Path(tmp, "bandwidth.c"), Path(tmp, "bandwidth")
        src.write_text(BANDWIDTH_C)
        built = subprocess.run(
            [cc, "-O2", "-pthread", "-o", str(exe), str(src)], capture_output=True
        )
        if built.returncode != 0:
            return None
        size = str(buffer_mib << 20)
        before, started = _children_cpu_seconds(), time.perf_counter()
        run = subprocess.run(
            [str(exe), str(threads), size, str(passes), str(int(huge_pages))],
            capture_output=True,
            text=True,
        )
        wall, cpu = time.perf_counter() - started, _children_cpu_seconds() - before
    if run.returncode != 0:
        return None
    isa, gbytes, median = run.stdout.split()
    how = (
        f"measured: {threads} thread(s) summing a {buffer_mib} MiB buffer "
        f"({'huge' if huge_pages else '4 KiB'} pages) with {isa} loads, "
        f"fastest of {passes} passes"
    )
    return Bandwidth(float(gbytes), threads, how, float(median), cpu / wall if wall > 0 else 0.0)


def _children_cpu_seconds() -> float:
    """User and system CPU seconds of this process's finished children (a difference around
    one child's run is that child's, as long as no other thread reaps children meanwhile)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime
