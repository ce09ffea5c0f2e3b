/* Shared pieces of the kernel library: the ABI version, argument validation,
 * the debug counters (calls and threads; plugin build only), and the choice
 * of instruction-set path. */
#if !defined(MIPS_FREESTANDING) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE */
#endif
#include "mips_amx.h"
#include "mips_internal.h"
#if !defined(MIPS_FREESTANDING) && defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* ---- ABI version -------------------------------------------------------- */

MIPS_EXPORT int mips_kernel_abi_version(void) { return MIPS_KERNEL_ABI_VERSION; }

/* The version as bytes that mipsc can find in the file without loading it
 * (the embedded object: kernel_abi.object_abi_version). */
#define MIPS_STR_(x) #x
#define MIPS_STR(x) MIPS_STR_(x)
MIPS_EXPORT __attribute__((used)) const char mips_kernel_abi_tag[] =
    "mips_kernel_abi_version=" MIPS_STR(MIPS_KERNEL_ABI_VERSION) ";";

/* ---- huge pages for a buffer about to be written (mips_internal.h) ------- */

int mips_advise_huge_pages(const void* floor, const void* begin, size_t bytes) {
#if !defined(MIPS_FREESTANDING) && defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = (uintptr_t)2 << 20; /* x86-64's PMD page */
  const uintptr_t low = ((uintptr_t)floor + huge - 1) & ~(huge - 1);
  uintptr_t start = (uintptr_t)begin & ~(huge - 1);
  const uintptr_t end = ((uintptr_t)begin + bytes + huge - 1) & ~(huge - 1);
  if (start < low) start = low;
  if (bytes == 0 || start >= end) return 1;
  return madvise((void*)start, end - start, MADV_HUGEPAGE) == 0 ? 0 : -1;
#else
  (void)floor;
  (void)begin;
  (void)bytes;
  return -1;
#endif
}

/* ---- huge pages for memory already written (mips_kernels.h) ------------- */
#ifndef MIPS_FREESTANDING
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1's value, for older libc headers */
#endif

MIPS_EXPORT int64_t mips_collapse_huge_pages(void* begin, uint64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = (uintptr_t)2 << 20; /* x86-64's PMD page */
  const uintptr_t start = ((uintptr_t)begin + huge - 1) & ~(huge - 1);
  const uintptr_t end = ((uintptr_t)begin + (uintptr_t)bytes) & ~(huge - 1);
  if (begin == NULL || (uintptr_t)begin + (uintptr_t)bytes < (uintptr_t)begin) return -1;
  if (!mips_config()->pack_huge_pages) return -1;
  if (start >= end) return 0;
  if (madvise((void*)start, end - start, MADV_HUGEPAGE) != 0) return -1;
  /* Synchronous collapse of the pages already there, one huge page at a time: a call over
   * the whole range gives up part way when one region cannot be collapsed (measured: an
   * untouched region answers EINVAL), one call per region collapses every other one.
   * Before Linux 6.1 (EINVAL everywhere) the advice alone leaves it to khugepaged. */
  int64_t collapsed = 0;
  for (uintptr_t region = start; region < end; region += huge)
    if (madvise((void*)region, huge, MADV_COLLAPSE) == 0) collapsed += (int64_t)huge;
  return collapsed;
#else
  (void)begin;
  (void)bytes;
  return -1;
#endif
}
#endif

/* ---- kernel and counter names (plugin build: counters and the test hook) */
#ifndef MIPS_FREESTANDING

static const char* const kKernelNames[MIPS_K_COUNT] = {
    [MIPS_K_F32] = "mips_matmul_f32",
    [MIPS_K_F16] = "mips_matmul_f16",
    [MIPS_K_BF16] = "mips_matmul_bf16",
    [MIPS_K_OPENBLAS_F32] = "mips_matmul_openblas_f32",
    [MIPS_K_OPENBLAS_F32_SGEMM] = "mips_matmul_openblas_f32:sgemm",
    [MIPS_K_OPENBLAS_F32_FALLBACK] = "mips_matmul_openblas_f32:fallback",
    [MIPS_K_BF16_AMX] = "mips_matmul_bf16:amx",
    [MIPS_K_BF16_DP] = "mips_matmul_bf16:avx512bf16",
    [MIPS_K_EPILOGUE_F32] = "mips_epilogue_f32",
    [MIPS_K_EPILOGUE_F16] = "mips_epilogue_f16",
    [MIPS_K_EPILOGUE_BF16] = "mips_epilogue_bf16",
    [MIPS_K_PACKED_F32] = "mips_matmul_packed_f32",
    [MIPS_K_PACKED_BF16] = "mips_matmul_packed_bf16",
    [MIPS_K_PACK_B_F32] = "mips_pack_b_f32",
    [MIPS_K_PACK_B_BF16] = "mips_pack_b_bf16",
    [MIPS_K_ATTENTION_F32] = "mips_attention_f32",
    [MIPS_K_ATTENTION_F16] = "mips_attention_f16",
    [MIPS_K_ATTENTION_BF16] = "mips_attention_bf16",
    [MIPS_K_PACKED_EPILOGUE_F32] = "mips_matmul_packed_epilogue_f32",
    [MIPS_K_PACKED_EPILOGUE_BF16] = "mips_matmul_packed_epilogue_bf16",
    [MIPS_K_PACKED_EPILOGUE_F32_STEPS] = "mips_matmul_packed_epilogue_f32:steps",
    [MIPS_K_PACKED_EPILOGUE_BF16_STEPS] = "mips_matmul_packed_epilogue_bf16:steps",
};

int mips_kernel_index(const char* symbol) {
  if (symbol == NULL) return -1;
  for (int i = 0; i < MIPS_K_COUNT; ++i) {
    if (mips_streq(symbol, kKernelNames[i])) return i;
  }
  return -1;
}

/* ---- debug counters (not in the freestanding object: globals and TLS) --- */

uint64_t mips_call_counts[MIPS_K_COUNT];


MIPS_EXPORT uint64_t mips_debug_call_count(const char* symbol) {
  int i = mips_kernel_index(symbol);
  if (i < 0) return 0;
  return __atomic_load_n(&mips_call_counts[i], __ATOMIC_RELAXED);
}

/* Distinct threads: a fixed table of thread identities (the address of a
 * thread-local variable: distinct for threads alive at the same time), filled
 * lock-free; 0 marks a free slot. */
#define MIPS_MAX_THREADS 64

uint64_t mips_thread_generation_now = 1;
_Thread_local uint64_t mips_thread_generation; /* 0: never registered */

static uintptr_t thread_slots[MIPS_MAX_THREADS];

void mips_register_thread(uint64_t generation) {
  const uintptr_t me = (uintptr_t)&mips_thread_generation;
  for (int i = 0; i < MIPS_MAX_THREADS; ++i) {
    uintptr_t seen = 0;
    if (__atomic_compare_exchange_n(&thread_slots[i], &seen, me, 0,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED) ||
        seen == me) {
      break; /* claimed a free slot, or already listed */
    }
  }
  /* A full table leaves this thread out: the count saturates at the size. */
  mips_thread_generation = generation;
}

MIPS_EXPORT uint64_t mips_debug_thread_count(void) {
  uint64_t count = 0;
  for (int i = 0; i < MIPS_MAX_THREADS; ++i) {
    if (__atomic_load_n(&thread_slots[i], __ATOMIC_RELAXED) != 0) ++count;
  }
  return count;
}

MIPS_EXPORT void mips_debug_reset_counts(void) {
  for (int i = 0; i < MIPS_K_COUNT; ++i) {
    __atomic_store_n(&mips_call_counts[i], 0, __ATOMIC_RELAXED);
  }
  /* Empty the table, then start a new generation so every thread registers
   * again on its next call. */
  for (int i = 0; i < MIPS_MAX_THREADS; ++i) {
    __atomic_store_n(&thread_slots[i], 0, __ATOMIC_RELAXED);
  }
  __atomic_fetch_add(&mips_thread_generation_now, 1, __ATOMIC_RELEASE);
}
#endif /* MIPS_FREESTANDING */

/* ---- profiling build ---------------------------------------------------- */

#if defined(MIPS_PROFILE) && defined(__x86_64__) && !defined(MIPS_FREESTANDING)
uint64_t mips_prof_cycles[MIPS_PROF_COUNT];
uint64_t mips_prof_calls[MIPS_PROF_COUNT];

/* Copies out, then zeroes, the cycle and call sums (MIPS_PROF_COUNT each);
 * only in a -DMIPS_PROFILE build (tools/profile_kernel.py). */
MIPS_EXPORT int mips_debug_profile(uint64_t* cycles, uint64_t* calls) {
  for (int i = 0; i < MIPS_PROF_COUNT; ++i) {
    cycles[i] = mips_prof_cycles[i];
    calls[i] = mips_prof_calls[i];
    mips_prof_cycles[i] = mips_prof_calls[i] = 0;
  }
  return MIPS_PROF_COUNT;
}
#endif

/* ---- instruction-set paths ---------------------------------------------- */

#if defined(__x86_64__)
/* What this CPU and OS offer, from cpuid and XCR0 (the rule of libgcc's
 * __builtin_cpu_supports, which the freestanding object cannot link). */
typedef struct {
  int fma, f16c, avx2, avx512f, avx512bw, avx512vl, avx512bf16;
} x86_features;

static x86_features read_features(void) {
  x86_features f = {0};
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const unsigned c1 = c;
  const int osxsave = (c1 >> 27) & 1, avx = (c1 >> 28) & 1;
  if (!osxsave || !avx || __get_cpuid_max(0, NULL) < 7) return f;
  unsigned xcr0, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0 & 0x6u) != 0x6u) return f; /* the OS saves XMM and YMM */
  const int zmm = (xcr0 & 0xe0u) == 0xe0u; /* ... opmask, ZMM_Hi256, Hi16_ZMM */
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned leaf7_max = a, b7 = b;
  f.fma = (c1 >> 12) & 1;
  f.f16c = (c1 >> 29) & 1;
  f.avx2 = (b7 >> 5) & 1;
  f.avx512f = zmm && ((b7 >> 16) & 1);
  f.avx512bw = zmm && ((b7 >> 30) & 1);
  f.avx512vl = zmm && ((b7 >> 31) & 1);
  if (leaf7_max >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512bf16 = zmm && ((a >> 5) & 1);
  }
  return f;
}

/* read_features, read once: each cpuid traps to the hypervisor in a VM (~7 us on the Zen 4 KVM
 * guest of BENCHMARKS.md), and the packed bf16 kernel asks on every call (3 cpuids: ~20 us, a
 * third of a decode step's 1 x 256 x 2048 tile).  The features never change: racing threads
 * publish the same bits in one atomic word (no lock: the freestanding object has no pthread). */
static x86_features cached_features(void) {
  static unsigned cache; /* bit i: feature i of x86_features; bit 31: read */
  unsigned bits = __atomic_load_n(&cache, __ATOMIC_RELAXED);
  if (bits == 0) {
    const x86_features f = read_features();
    bits = 1u << 31 | (unsigned)f.fma | (unsigned)f.f16c << 1 | (unsigned)f.avx2 << 2 |
           (unsigned)f.avx512f << 3 | (unsigned)f.avx512bw << 4 | (unsigned)f.avx512vl << 5 |
           (unsigned)f.avx512bf16 << 6;
    __atomic_store_n(&cache, bits, __ATOMIC_RELAXED);
  }
  const x86_features f = {(int)(bits & 1), (int)(bits >> 1 & 1), (int)(bits >> 2 & 1),
                          (int)(bits >> 3 & 1), (int)(bits >> 4 & 1), (int)(bits >> 5 & 1),
                          (int)(bits >> 6 & 1)};
  return f;
}
#endif

int mips_isa_supported(int isa) {
#if defined(__x86_64__)
  if (isa == MIPS_ISA_GENERIC) return 1;
  const x86_features f = cached_features();
  const int avx512 = f.avx512f && f.fma && f.f16c;
  switch (isa) {
    case MIPS_ISA_AVX2:
      return f.avx2 && f.fma && f.f16c;
    case MIPS_ISA_AVX512:
      return avx512;
    case MIPS_ISA_AMX:
      return avx512 && mips_bf16_amx_usable();
    case MIPS_ISA_AVX512BF16: /* + BW/VL for the packing and the stores */
      return avx512 && f.avx512bw && f.avx512vl && f.avx512bf16;
    default:
      return 0;
  }
#else
  return isa == MIPS_ISA_GENERIC;
#endif
}

int mips_best_isa(void) { return mips_config()->isa; }

/* The test hook (plugin build only: it packs on the heap). */
#ifndef MIPS_FREESTANDING
MIPS_EXPORT int mips_debug_matmul_isa(const char* symbol, const char* isa_name,
                                      void* params) {
  const int isa = mips_isa_from_name(isa_name);
  if (isa < 0 || !mips_isa_supported(isa)) return -1;
  switch (mips_kernel_index(symbol)) {
    case MIPS_K_F32:
      return mips_matmul_f32_run(params, isa);
    case MIPS_K_F16:
      return mips_matmul_f16_run(params, isa);
    case MIPS_K_BF16:
      return mips_matmul_bf16_run(params, isa);
    case MIPS_K_EPILOGUE_F32:
      return mips_epilogue_f32_run(params, isa);
    case MIPS_K_EPILOGUE_F16:
      return mips_epilogue_f16_run(params, isa);
    case MIPS_K_EPILOGUE_BF16:
      return mips_epilogue_bf16_run(params, isa);
    case MIPS_K_PACKED_F32:
      return mips_matmul_packed_f32_run(params, isa);
    case MIPS_K_PACKED_BF16:
      return mips_matmul_packed_bf16_run(params, isa);
    case MIPS_K_PACKED_EPILOGUE_F32:
      return mips_matmul_packed_epilogue_f32_run(params, isa, isa);
    case MIPS_K_PACKED_EPILOGUE_BF16:
      return mips_matmul_packed_epilogue_bf16_run(params, isa, isa);
    default:
      return -1;
  }
}
#endif

/* ---- argument validation ------------------------------------------------ */

/* Checks one operand of shape rows x cols; 0 if fine. */
int mips_check_operand(const void* ptr, int64_t offset, int64_t stride0,
                         int64_t stride1, int64_t rows, int64_t cols,
                         int64_t elem_size) {
  if (offset < 0 || stride0 < 0 || stride1 < 0) return 1;
  if (rows == 0 || cols == 0) return 0; /* empty: never dereferenced */
  if (ptr == NULL) return 1;
  /* A misaligned T* is undefined behaviour (UBSan: "load of misaligned address"). */
  if ((uintptr_t)ptr % (uintptr_t)elem_size != 0) return 1;
  int64_t last0, last1, last, bytes;
  if (__builtin_mul_overflow(rows - 1, stride0, &last0)) return 1;
  if (__builtin_mul_overflow(cols - 1, stride1, &last1)) return 1;
  if (__builtin_add_overflow(offset, last0, &last)) return 1;
  if (__builtin_add_overflow(last, last1, &last)) return 1;
  /* one past the last element, in bytes, must fit as well */
  if (__builtin_mul_overflow(last, elem_size, &bytes)) return 1;
  if (__builtin_add_overflow(bytes, elem_size, &bytes)) return 1;
  return 0;
}

/* The checks every product shares: sizes, the accumulate flag, A (m x k) and C (m x n). */
static int check_a_and_c(const void* a, int64_t a_offset, int64_t a_stride0, int64_t a_stride1,
                         const void* c, int64_t c_offset, int64_t c_stride0, int64_t c_stride1,
                         int64_t m, int64_t n, int64_t k, int64_t accumulate,
                         int64_t elem_size) {
  if (m < 0 || n < 0 || k < 0) return 1;
  if (accumulate != 0 && accumulate != 1) return 1;
  if (mips_check_operand(a, a_offset, a_stride0, a_stride1, m, k, elem_size)) return 1;
  return mips_check_operand(c, c_offset, c_stride0, c_stride1, m, n, elem_size);
}

int mips_check_matmul(const void* a, int64_t a_offset, int64_t a_stride0,
                      int64_t a_stride1, const void* b, int64_t b_offset,
                      int64_t b_stride0, int64_t b_stride1, const void* c,
                      int64_t c_offset, int64_t c_stride0, int64_t c_stride1,
                      int64_t m, int64_t n, int64_t k, int64_t accumulate,
                      int64_t elem_size) {
  if (check_a_and_c(a, a_offset, a_stride0, a_stride1, c, c_offset, c_stride0, c_stride1, m, n,
                    k, accumulate, elem_size))
    return 1;
  return mips_check_operand(b, b_offset, b_stride0, b_stride1, k, n, elem_size);
}

/* The largest element index of `count` whole panels of `kp` rows from `offset`: 0 if it, and
 * its end in bytes, fit in int64. */
static int check_panels(const void* ptr, int64_t offset, int64_t kp, int64_t count,
                        int64_t elem_size) {
  if (ptr == NULL || (uintptr_t)ptr % 4 != 0) return 1;
  int64_t size, bytes;
  if (__builtin_mul_overflow(count, kp, &size)) return 1;
  if (__builtin_mul_overflow(size, (int64_t)MIPS_PACKED_B_PANEL, &size)) return 1;
  if (__builtin_add_overflow(size, offset, &size)) return 1;
  if (__builtin_mul_overflow(size, elem_size, &bytes)) return 1;
  return 0;
}

int mips_check_pack_b(const mips_pack_b_params* p, int64_t np, int64_t kp,
                      int64_t elem_size) {
  if (p->packed_offset < 0 || p->packed_offset % 2 != 0) return 1;
  if (mips_check_operand(p->b, p->b_offset, p->b_stride0, p->b_stride1, p->k, p->n, elem_size))
    return 1;
  return check_panels(p->packed, p->packed_offset, kp, np / MIPS_PACKED_B_PANEL, elem_size);
}

int mips_check_packed_matmul(const void* a, int64_t a_offset, int64_t a_stride0,
                             int64_t a_stride1, const void* b, int64_t b_offset,
                             int64_t b_stride0, int64_t b_stride1, const void* c,
                             int64_t c_offset, int64_t c_stride0, int64_t c_stride1,
                             int64_t m, int64_t n, int64_t k, int64_t accumulate,
                             int64_t elem_size) {
  if (check_a_and_c(a, a_offset, a_stride0, a_stride1, c, c_offset, c_stride0, c_stride1, m, n,
                    k, accumulate, elem_size))
    return 1;
  if (b_stride1 != MIPS_PACKED_B_PANEL || b_offset < 0 || b_offset % 2 != 0) return 1;
  if (b_stride0 < k || b_stride0 % 2 != 0) return 1;
  if (k == 0 || n == 0) return 0;
  return check_panels(b, b_offset, b_stride0, MIPS_PACKED_B_COLS(n) / MIPS_PACKED_B_PANEL,
                      elem_size);
}
