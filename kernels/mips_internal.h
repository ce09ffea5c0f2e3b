/* Internal helpers shared by the kernel sources (not part of the contract;
 * nothing here is exported from the shared library).
 *
 * Two builds of the same sources (mips_kernels.h, "Builds"): the plugin
 * (libmips_kernels.so, libc) and the freestanding object linked into the
 * .vmfb (-DMIPS_FREESTANDING, mips_kernels_embedded.o).  Code that must run in
 * the object follows the freestanding rules written there: no libc calls
 * (compiler headers only: stdint, stddef, immintrin, cpuid), no malloc (its
 * memory is a mips_scratch, below), no TLS, no syscalls, no mutable globals
 * but the configuration cache, no getenv. */
#ifndef MIPS_INTERNAL_H_
#define MIPS_INTERNAL_H_

#include <stddef.h>
#include <stdint.h>
#ifndef MIPS_FREESTANDING
#include <stdlib.h>
#include <string.h>
#else
/* The object defines its own (hidden) memcpy and memset, freestanding.c:
 * gcc and clang emit calls to them for struct copies and loops. */
void* memcpy(void* restrict dst, const void* restrict src, size_t n);
void* memset(void* dst, int c, size_t n);
/* -ffreestanding implies -fno-builtin: keep small fixed-size copies inline. */
#define memcpy __builtin_memcpy
#define memset __builtin_memset
#endif

#include "mips_kernels.h"

#define MIPS_HIDDEN __attribute__((visibility("hidden")))
#define MIPS_INLINE static inline __attribute__((always_inline))

/* ---- kernels and their debug counters ---------------------------------- */

/* One counter per kernel entry point, plus sub-counters that say which path a
 * call took: the OpenBLAS backend's valid calls to sgemm or to the builtin f32
 * kernel, and the bf16 calls that ran on AMX. */
enum {
  MIPS_K_F32 = 0,
  MIPS_K_F16 = 1,
  MIPS_K_BF16 = 2,
  MIPS_K_OPENBLAS_F32 = 3,
  MIPS_K_OPENBLAS_F32_SGEMM = 4,    /* "mips_matmul_openblas_f32:sgemm" */
  MIPS_K_OPENBLAS_F32_FALLBACK = 5, /* "mips_matmul_openblas_f32:fallback" */
  MIPS_K_BF16_AMX = 6,              /* "mips_matmul_bf16:amx": bf16 calls run on AMX */
  MIPS_K_BF16_DP = 7, /* "mips_matmul_bf16:avx512bf16": bf16 calls run on VDPBF16PS */
  MIPS_K_EPILOGUE_F32 = 8, /* the epilogue kernels (epilogue.c) */
  MIPS_K_EPILOGUE_F16 = 9,
  MIPS_K_EPILOGUE_BF16 = 10,
  MIPS_K_PACKED_F32 = 11,   /* mips_matmul_packed_f32 */
  MIPS_K_PACKED_BF16 = 12,  /* mips_matmul_packed_bf16 */
  MIPS_K_PACK_B_F32 = 13,   /* mips_pack_b_f32 */
  MIPS_K_PACK_B_BF16 = 14,  /* mips_pack_b_bf16 */
  MIPS_K_ATTENTION_F32 = 15, /* mips_attention_<type> (attention.c) */
  MIPS_K_ATTENTION_F16 = 16,
  MIPS_K_ATTENTION_BF16 = 17,
  MIPS_K_PACKED_EPILOGUE_F32 = 18, /* mips_matmul_packed_epilogue_<type> */
  MIPS_K_PACKED_EPILOGUE_BF16 = 19,
  MIPS_K_PACKED_EPILOGUE_F32_STEPS = 20, /* "...:steps": fused calls made as the three steps */
  MIPS_K_PACKED_EPILOGUE_BF16_STEPS = 21,
  MIPS_K_COUNT = 22
};

/* Index of a counter name ("mips_matmul_f32", ...) or -1. */
MIPS_HIDDEN int mips_kernel_index(const char* symbol);

/* 1 if the NUL-terminated strings are equal (strcmp is libc's). */
MIPS_INLINE int mips_streq(const char* x, const char* y) {
  while (*x != '\0' && *x == *y) ++x, ++y;
  return *x == *y;
}

#ifndef MIPS_FREESTANDING
MIPS_HIDDEN extern uint64_t mips_call_counts[MIPS_K_COUNT];

/* Distinct threads that entered a kernel (mips_debug_thread_count). The
 * generation starts at 1 and is bumped by each reset; a thread records, in
 * its own mips_thread_generation, the generation it last registered in, so
 * only its first call after a reset pays for the table (common.c). */
MIPS_HIDDEN extern uint64_t mips_thread_generation_now;
MIPS_HIDDEN extern _Thread_local uint64_t mips_thread_generation;
MIPS_HIDDEN void mips_register_thread(uint64_t generation);

/* Bumps a counter only (no thread registration): for the sub-counters. */
MIPS_INLINE void mips_count(int counter) {
  __atomic_fetch_add(&mips_call_counts[counter], 1, __ATOMIC_RELAXED);
}

MIPS_INLINE void mips_count_call(int kernel) {
  __atomic_fetch_add(&mips_call_counts[kernel], 1, __ATOMIC_RELAXED);
  uint64_t now =
      __atomic_load_n(&mips_thread_generation_now, __ATOMIC_ACQUIRE);
  if (__builtin_expect(mips_thread_generation != now, 0)) {
    mips_register_thread(now);
  }
}
#else /* the freestanding object has no counters (they need globals and TLS) */
MIPS_INLINE void mips_count(int counter) { (void)counter; }
MIPS_INLINE void mips_count_call(int kernel) { (void)kernel; }
#endif

/* ---- scratch memory for packing -----------------------------------------
 * Where a call's packed panels and f32 partial sums live.  base == NULL: the
 * heap (plugin build only: one aligned_alloc per call, freed before it
 * returns; no budget).  Otherwise `bytes` at `base` (64-byte aligned), lent
 * for the call: the embedded entry points get it from the dispatch
 * (workgroup-local memory), and each GEMM fits its blocks into it
 * (mips_scratch_budget). */
typedef struct mips_scratch {
  void* base;
  size_t bytes;
} mips_scratch;

#define MIPS_SCRATCH_HEAP ((mips_scratch){NULL, 0})

/* The scratch of `bytes` at `base`, its start rounded up to 64 bytes; with no
 * usable memory (NULL, or fewer bytes than the rounding takes) a scratch that
 * holds nothing (never the heap: take() then always fails). */
MIPS_INLINE mips_scratch mips_scratch_lend(void* base, int64_t bytes) {
  const uintptr_t start = ((uintptr_t)base + 63) / 64 * 64;
  const uintptr_t skip = start - (uintptr_t)base;
  if (base == NULL || bytes <= 0 || (uint64_t)bytes < skip) return (mips_scratch){(void*)64, 0};
  return (mips_scratch){(void*)start, (size_t)bytes - skip};
}

/* The most bytes mips_scratch_take can give (SIZE_MAX: the heap). */
MIPS_INLINE size_t mips_scratch_budget(const mips_scratch* s) {
  return s->base == NULL ? SIZE_MAX : s->bytes;
}

/* `bytes` of 64-byte aligned memory, or NULL (then the caller falls back to a
 * path that needs none). */
MIPS_INLINE void* mips_scratch_take(const mips_scratch* s, size_t bytes) {
  if (s->base != NULL) return bytes <= s->bytes ? s->base : NULL;
#ifdef MIPS_FREESTANDING
  return NULL;
#else
  return aligned_alloc(64, (bytes + 63) / 64 * 64);
#endif
}

MIPS_INLINE void mips_scratch_give(const mips_scratch* s, void* p) {
#ifdef MIPS_FREESTANDING
  (void)s;
  (void)p;
#else
  if (s->base == NULL) free(p);
#endif
}

/* ---- profiling build (-DMIPS_PROFILE; tools/profile_kernel.py) ----------
 * Time stamp counter cycles and calls per part of the GEMM, summed over all
 * calls since the last read.  Plain globals: single-threaded use only.  The
 * normal build compiles the hooks to nothing. */
enum {
  MIPS_PROF_UKR = 0,       /* microkernel on packed A and B */
  MIPS_PROF_UKR_PACK_B,    /* ... that also reads B and packs it */
  MIPS_PROF_UKR_PACK_A,    /* ... that also reads A and packs it */
  MIPS_PROF_UKR_PACK_AB,   /* ... both */
  MIPS_PROF_UKR_THIN,      /* edge microkernels with fewer than MR rows */
  MIPS_PROF_PACK_A,        /* A slivers packed in a pass of their own */
  MIPS_PROF_PACK_B,        /* B slivers packed in a pass of their own */
  MIPS_PROF_CALL,          /* whole calls */
  MIPS_PROF_COUNT
};
#if defined(MIPS_PROFILE) && defined(__x86_64__)
MIPS_HIDDEN extern uint64_t mips_prof_cycles[MIPS_PROF_COUNT];
MIPS_HIDDEN extern uint64_t mips_prof_calls[MIPS_PROF_COUNT];
#define MIPS_PROF_BEGIN(var) const uint64_t var = __builtin_ia32_rdtsc()
#define MIPS_PROF_END(var, slot, calls)                              \
  (mips_prof_cycles[(slot)] += __builtin_ia32_rdtsc() - (var),       \
   mips_prof_calls[(slot)] += (uint64_t)(calls))
#else
#define MIPS_PROF_BEGIN(var) ((void)0)
#define MIPS_PROF_END(var, slot, calls) ((void)0)
#endif

/* Element kinds, for the #if's of matmul_contig.inc. */
#define MM_KIND_F32 0
#define MM_KIND_F16 1
#define MM_KIND_BF16 2

/* ---- instruction-set paths --------------------------------------------- */

/* AMX (matmul_bf16_amx.c) is a path of the bf16 kernel only; the f32 and f16
 * kernels run their AVX-512 path when given it. */
enum {
  MIPS_ISA_GENERIC = 0,
  MIPS_ISA_AVX2 = 1,
  MIPS_ISA_AVX512 = 2,
  MIPS_ISA_AMX = 3,        /* bf16 on AMX tiles (f32/f16: AVX-512) */
  MIPS_ISA_AVX512BF16 = 4, /* bf16 on VDPBF16PS (f32/f16: AVX-512) */
  MIPS_ISA_COUNT = 5
};

/* 1 if this CPU (and OS, and for AMX this process) can run the path. */
MIPS_HIDDEN int mips_isa_supported(int isa);
/* The MIPS_ISA_* named "generic", "avx2", "avx512", "amx", "avx512bf16";
 * -1 for another name. */
MIPS_HIDDEN int mips_isa_from_name(const char* name);

/* The configured path for f32/f16 (mips_config()->isa); never AMX. */
MIPS_HIDDEN int mips_best_isa(void);

/* ---- per-microarchitecture configuration (mips_config.c) ----------------
 * One entry per CPU family: which per-ISA kernel runs each type, and its
 * cache blocks (in elements: KC over k, MC rows of A, NC columns of B). */
typedef struct mips_kernel_config {
  const char* name;  /* MIPSC_KERNEL_CONFIG value: "zen4", "zen5", ... */
  const char* about; /* the CPUs it is for, where its numbers come from */
  int isa;           /* f32 and f16 path (MIPS_ISA_*) */
  int bf16_isa;      /* bf16 path: AMX, AVX512BF16, or the f32 path (widen) */
  int kc, mc, nc;    /* blocks of the f32-packed GEMM (matmul_gemm.inc) */
  int packed_kc;     /* its KC when B is pre-packed and read in place (no B panel buffer
                      * bounds it); 0 in an entry: kc */
  int bf16_kc, bf16_mc, bf16_nc; /* blocks of the VDPBF16PS GEMM */
  int bf16_packed_kc; /* its KC when B is pre-packed (read in place: no B panel buffer bounds
                       * it); 0 in an entry: bf16_kc */
  int b_prefetch_rows; /* rows of B prefetched ahead while a microkernel packs B */
  int pack_a_t16;      /* AVX-512, row-major A: 1 packs A slivers in a pass of their own
                        * with 16 x 16 register transposes, 0 in the first microkernel
                        * that uses them (as the other paths do) */
  int b_next_prefetch; /* 1: while the microkernels of one B sliver run, they prefetch the
                        * next sliver (each its share, a step per k), so that the first
                        * microkernel of that sliver finds it in cache; 0 not */
  int c_prefetch_ahead; /* steps of k before the end of its k block at which a microkernel
                         * prefetches its tile of C (for the stores), 0 at its start */
  int thin_streams;    /* few-row products (M <= 4): columns / panels of B read at once
                        * from that many stripes far apart (1, 2 or 4; see
                        * matmul_gemm.inc's small_dots, matmul_bf16_dp.c's dp_thin) */
  int pack_huge_pages; /* plugin build: 1 advises huge pages (MADV_HUGEPAGE) on the
                        * pre-packed B a pack writes (mips_advise_huge_pages), 0 not; set
                        * for every CPU (an OS matter), MIPSC_KERNEL_PACK_HUGE_PAGES */
  /* The lowering's tile cost model (src/mipsc/tiling.py reads these through
   * mips_kernel_config_value; the kernels never do): mips_kernels.h, "Tile cost model". */
  int tile_max_rows, tile_max_cols; /* the largest tile of C a workgroup computes */
  int tile_packed_max_cols;         /* ... of a prefill product with a B packed at load */
  int tile_pack_flops;              /* packing one element of A or B, in microkernel flops */
  int tile_narrow_cols;             /* a tile of C columns runs at C / (C + this) speed */
  int tile_workgroup_flops;         /* what a workgroup costs besides its work, in flops */
  int tile_wake_flops;              /* waking the other workers, once per shared dispatch */
  int tile_one_worker_pct;          /* weight (%) of the one-worker time beside the shared */
  int tile_thin_bytes;              /* the fewest bytes of B a thin product's tile reads */
  int prepack_f32_min_rows;         /* the fewest rows of C for which pack-weights packs an
                                     * f32 weight at load (bf16 always) */
} mips_kernel_config;

/* The configuration of this process (of this loaded module, in the
 * freestanding object), chosen on the first call (thread-safe, then
 * constant; mips_config.c says how). */
MIPS_HIDDEN const mips_kernel_config* mips_config(void);

/* Advises huge pages (MADV_HUGEPAGE) for the 2 MiB-aligned regions of memory that meet
 * [begin, begin + bytes) and start at or after `floor` (the buffer's first byte: nothing
 * before the buffer is advised; the last region may reach up to 2 MiB - 1 bytes past its
 * end, into whatever the allocator put there).  Called before the range is first written,
 * so that its page faults take 2 MiB pages where the OS allows them (Linux THP in
 * "madvise" or "always" mode): a B streamed from memory then costs no 4 KiB page walks.
 * Advice only: the contents never change, and a failure (no THP, not Linux, a range
 * outside any mapping) changes nothing.  Returns the madvise result (0 applied, -1 not),
 * 1 when no region qualifies; the freestanding object never advises (no syscalls) and
 * returns -1. */
MIPS_HIDDEN int mips_advise_huge_pages(const void* floor, const void* begin, size_t bytes);

typedef struct {
  int kc, mc, nc, packed_kc, b_prefetch_rows, pack_a_t16, b_next_prefetch, c_prefetch_ahead;
} mips_blocks;
/* The blocks of the f32-packed GEMM compiled for `isa`: the configuration's
 * when it runs f32 on that path, else the given defaults (a path forced by
 * the test hook on a CPU configured for another). */
MIPS_INLINE void mips_get_blocks(int isa, int kc, int mc, int nc, int ahead, mips_blocks* b) {
  const mips_kernel_config* c = mips_config();
  if (c->isa == isa) {
    b->kc = c->kc;
    b->mc = c->mc;
    b->nc = c->nc;
    b->packed_kc = c->packed_kc;
    b->b_prefetch_rows = c->b_prefetch_rows;
    b->pack_a_t16 = c->pack_a_t16;
    b->b_next_prefetch = c->b_next_prefetch;
    b->c_prefetch_ahead = c->c_prefetch_ahead;
  } else {
    b->kc = kc;
    b->mc = mc;
    b->nc = nc;
    b->packed_kc = kc;
    b->b_prefetch_rows = ahead;
    b->pack_a_t16 = 1;
    b->b_next_prefetch = 0;
    b->c_prefetch_ahead = 0;
  }
}

/* The VDPBF16PS GEMM (matmul_bf16_dp.c) for a validated, normalized call
 * with m, n, k > 0; 0, or -1 (nothing written) without memory (the
 * buffers do not fit in `ws`).  With `packed`, B is pre-packed (mips_kernels.h,
 * "Pre-packed B"); -1 as well when the compiled register tile is not one
 * panel wide, or with `fused` on a thin product (m <= 4: the caller makes
 * the fused epilogue's steps in turn there). */
struct mips_fused; /* below: the fused epilogue, NULL for none */
MIPS_HIDDEN int mips_bf16_dp_gemm(const mips_matmul_bf16_params* p, const mips_scratch* ws,
                                  int packed, const struct mips_fused* fused);

/* Drivers of the pre-packed entries: validate, then run with the given isa
 * path; packing memory from the heap (_run) or from `ws` (_run_ws). */
MIPS_HIDDEN int mips_matmul_packed_f32_run(void* params, int isa);
MIPS_HIDDEN int mips_matmul_packed_bf16_run(void* params, int isa);
MIPS_HIDDEN int mips_matmul_packed_f32_run_ws(void* params, int isa, const mips_scratch* ws);
MIPS_HIDDEN int mips_matmul_packed_bf16_run_ws(void* params, int isa, const mips_scratch* ws);

/* Per-type drivers: validate, then run with the given isa path; packing
 * memory from the heap (_run) or from `ws` (_run_ws). */
MIPS_HIDDEN int mips_matmul_f32_run(void* params, int isa);
MIPS_HIDDEN int mips_matmul_f16_run(void* params, int isa);
MIPS_HIDDEN int mips_matmul_bf16_run(void* params, int isa);
MIPS_HIDDEN int mips_matmul_f32_run_ws(void* params, int isa, const mips_scratch* ws);
MIPS_HIDDEN int mips_matmul_f16_run_ws(void* params, int isa, const mips_scratch* ws);
MIPS_HIDDEN int mips_matmul_bf16_run_ws(void* params, int isa, const mips_scratch* ws);
/* The epilogues (epilogue.c): validate, then run with the given isa path. */
MIPS_HIDDEN int mips_epilogue_f32_run(void* params, int isa);
MIPS_HIDDEN int mips_epilogue_f16_run(void* params, int isa);
MIPS_HIDDEN int mips_epilogue_bf16_run(void* params, int isa);
/* 0 when the epilogue params (of any type, elements of elem_size bytes) are a valid call. */
MIPS_HIDDEN int mips_epilogue_check(const void* params, int64_t elem_size);

/* ---- the fused epilogue (mips_kernels.h, "Fused epilogue") ---------------
 * What a GEMM with a pre-packed B does in its store phase for
 * mips_matmul_packed_epilogue_<type>: `bias` (BIAS_SET) is added to the
 * accumulators where the old C would be (so the GEMM's own accumulate is 0),
 * and the chain (BIAS_ADD, activation, binary) runs on each tile of C as soon
 * as the last k block has stored it.  The GEMMs take NULL for none. */
typedef struct mips_fused {
  const void* bias;    /* BIAS_SET: element j at C's column j is bias[j * bias_stride];
                        * NULL: no bias in the accumulators */
  int64_t bias_stride;
  int has_chain;       /* whether `chain` runs (any of its kinds not NONE) */
  int epi_isa;         /* the MIPS_ISA_* path of the chain (the epilogue's) */
  mips_epilogue_f32_params chain; /* the chain over the whole C (pointers of any type) */
} mips_fused;

/* Runs f->chain on rows [i0, i0 + rows) x columns [j0, j0 + cols) of its C: the epilogue's
 * own code on a tile of the validated call (epilogue.c), element kind MM_KIND_*. */
MIPS_HIDDEN void mips_fused_chain(const mips_fused* f, int64_t i0, int64_t j0, int64_t rows,
                                  int64_t cols, int kind);

/* Drivers of the fused entries: validate, then run with the matmul's isa path and the
 * chain's; packing memory from `ws`, or the heap (_run). */
MIPS_HIDDEN int mips_matmul_packed_epilogue_f32_run_ws(void* params, int isa, int epi_isa,
                                                       const mips_scratch* ws);
MIPS_HIDDEN int mips_matmul_packed_epilogue_bf16_run_ws(void* params, int isa, int epi_isa,
                                                        const mips_scratch* ws);
MIPS_HIDDEN int mips_matmul_packed_epilogue_f32_run(void* params, int isa, int epi_isa);
MIPS_HIDDEN int mips_matmul_packed_epilogue_bf16_run(void* params, int isa, int epi_isa);

/* ---- argument validation ------------------------------------------------ */

/* 0 if an operand of rows x cols elements of elem_size bytes at ptr (offset,
 * strides in elements) is valid per the contract: non-negative offset and
 * strides; when non-empty, ptr non-NULL and aligned, and the last element's
 * byte index fits int64. */
MIPS_HIDDEN int mips_check_operand(const void* ptr, int64_t offset, int64_t stride0,
                                   int64_t stride1, int64_t rows, int64_t cols,
                                   int64_t elem_size);

/* Returns 0 if the call is valid per the contract in mips_kernels.h. */
MIPS_HIDDEN int mips_check_matmul(const void* a, int64_t a_offset,
                                  int64_t a_stride0, int64_t a_stride1,
                                  const void* b, int64_t b_offset,
                                  int64_t b_stride0, int64_t b_stride1,
                                  const void* c, int64_t c_offset,
                                  int64_t c_stride0, int64_t c_stride1,
                                  int64_t m, int64_t n, int64_t k,
                                  int64_t accumulate, int64_t elem_size);

/* Returns 0 if a pack call is valid (mips_kernels.h, "Pre-packed B"); np, kp:
 * the packed columns and rows. */
MIPS_HIDDEN int mips_check_pack_b(const mips_pack_b_params* p, int64_t np, int64_t kp,
                                  int64_t elem_size);

/* Returns 0 if a call of a pre-packed entry is valid (mips_kernels.h). */
MIPS_HIDDEN int mips_check_packed_matmul(const void* a, int64_t a_offset,
                                         int64_t a_stride0, int64_t a_stride1,
                                         const void* b, int64_t b_offset,
                                         int64_t b_stride0, int64_t b_stride1,
                                         const void* c, int64_t c_offset,
                                         int64_t c_stride0, int64_t c_stride1,
                                         int64_t m, int64_t n, int64_t k,
                                         int64_t accumulate, int64_t elem_size);

/* ---- number formats ------------------------------------------------------
 * Written with integer/float operations only (no _Float16, no F16C), so the
 * widening conversions vectorize on any x86-64 path. */

MIPS_INLINE uint32_t mips_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

MIPS_INLINE float mips_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* bfloat16 -> f32: exact (bf16 is the top half of an f32). */
MIPS_INLINE float mips_bf16_to_f32(uint16_t h) {
  return mips_bits_f32((uint32_t)h << 16);
}

/* f32 -> bfloat16, round to nearest even; NaN stays (quiet) NaN. */
MIPS_INLINE uint16_t mips_f32_to_bf16(float f) {
  uint32_t u = mips_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/* IEEE binary16 -> f32: exact, branch-free (selects), handles subnormals
 * without relying on f32 denormal arithmetic (safe under FTZ/DAZ). */
MIPS_INLINE float mips_f16_to_f32(uint16_t h) {
  uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
  uint32_t exp = ((uint32_t)h >> 10) & 0x1fu;
  uint32_t mant = (uint32_t)h & 0x3ffu;
  uint32_t normal = ((exp + 112u) << 23) | (mant << 13);
  uint32_t special = 0x7f800000u | (mant << 13); /* inf / NaN */
  uint32_t sub = mips_f32_bits((float)(int32_t)mant * 0x1p-24f);
  uint32_t mag = exp == 0 ? sub : (exp == 31 ? special : normal);
  return mips_bits_f32(sign | mag);
}

#if defined(__x86_64__)
/* The same with the F16C instruction (only for functions targeting f16c). */
MIPS_INLINE __attribute__((target("f16c"))) float mips_f16_to_f32_f16c(
    uint16_t h) {
  _Float16 x;
  memcpy(&x, &h, sizeof x);
  return (float)x;
}
#endif

/* f32 -> IEEE binary16, round to nearest even; overflow -> inf; NaN stays
 * (quiet) NaN. */
MIPS_INLINE uint16_t mips_f32_to_f16(float f) {
  uint32_t u = mips_f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t ax = u & 0x7fffffffu;
  if (ax > 0x7f800000u) /* NaN: quiet it, keep the top payload bits */
    return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x477ff000u) /* >= 65520 (incl. inf) rounds to inf */
    return (uint16_t)(sign | 0x7c00u);
  if (ax >= 0x38800000u) { /* result is a normal half */
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
    return (uint16_t)(sign | r);
  }
  if (ax <= 0x33000000u) /* <= 2^-25: rounds to (signed) zero */
    return sign;
  { /* subnormal half: units of 2^-24 */
    uint32_t e = ax >> 23; /* 102 .. 112 */
    uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14 .. 24 */
    uint32_t r = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) r += 1u;
    return (uint16_t)(sign | r);
  }
}

/* Element `index` of a buffer of kind MM_KIND_*, as f32 (exactly), and the
 * store back, rounded to nearest even: the scalar loops of the epilogues
 * and of attention, where the kind is a constant of each instance. */
MIPS_INLINE float mips_load_f32(const void* base, int64_t index, int kind) {
  if (kind == MM_KIND_F32) return ((const float*)base)[index];
  const uint16_t h = ((const uint16_t*)base)[index];
  return kind == MM_KIND_BF16 ? mips_bf16_to_f32(h) : mips_f16_to_f32(h);
}

MIPS_INLINE void mips_store_f32(void* base, int64_t index, float v, int kind) {
  if (kind == MM_KIND_F32) {
    ((float*)base)[index] = v;
  } else {
    ((uint16_t*)base)[index] = kind == MM_KIND_BF16 ? mips_f32_to_bf16(v) : mips_f32_to_f16(v);
  }
}

#endif /* MIPS_INTERNAL_H_ */
