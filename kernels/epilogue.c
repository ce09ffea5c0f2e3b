/* mips_epilogue_{f32,f16,bf16}: the elementwise chain after a matmul, on
 * one tile of C (contract: mips_kernels.h, "Epilogues").
 *
 * A dispatch calls it on the tile the matmul kernel has just written, while
 * the tile is still in cache: C = binary(activation(C + bias), other), each
 * step rounded to the element type as torch's eager ops round, or C = bias
 * (the init of a product that accumulates into it).  The rows are processed
 * in chunks of EPI_CHUNK columns widened to f32 in a stack buffer; the loops
 * over a chunk are written once (epi_tile, always inlined) and compiled per
 * instruction set (SSE2, AVX2+FMA, AVX-512F) by the wrappers below, which the
 * compiler vectorizes at that width.  No allocation, no globals, no libm.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* Lets GCC compute both sides of the selects in epilogue_math.inc and blend
 * them (it will not speculate a comparison that may raise an FP exception).
 * Only the exception flags could differ, which nothing here reads. */
#pragma GCC optimize("no-trapping-math")
/* a * b + c as one FMA where the ISA has it (-std=c11 turns contraction off): half the
 * instructions of the polynomials, and the error bounds of epilogue_math.inc were measured
 * with it (the SSE2 build has no FMA and its own, measured, bounds). */
#pragma GCC optimize("fp-contract=fast")
#endif

#include "mips_internal.h"

#include "epilogue_math.inc"

/* Columns per chunk: 2 x 1 KiB of f32 on the stack. */
#define EPI_CHUNK 256
/* The block of C a fused epilogue widens at once (rows of a strip of a GEMM's tiles, 32
 * columns wide on the paths that fuse, AVX-512 and VDPBF16PS), 2 x 2 KiB of f32 on the
 * stack; one width and no f16 (no packed f16 matmul) keep the object small. */
#define EPI_TILE_COLS 32
#define EPI_TILE_ROWS 16

/* Element kinds (MM_KIND_* of mips_internal.h), as constants the compiler
 * propagates into each instance. */
typedef mips_epilogue_f32_params epi_params; /* the same layout for every T */

/* v rounded to the element type (torch rounds after each op in f16/bf16). */
MIPS_INLINE float epi_round(float v, int kind) {
  if (kind == MM_KIND_F32) return v;
  if (kind == MM_KIND_BF16) return mips_bf16_to_f32(mips_f32_to_bf16(v));
  return mips_f16_to_f32(mips_f32_to_f16(v));
}

/* x[0, len) = elements (i, j0 + j) of a strided matrix, widened. */
MIPS_INLINE void epi_read(float* x, const void* base, int64_t at, int64_t s1, int64_t len,
                          int kind) {
  if (s1 == 1) {
    for (int64_t j = 0; j < len; ++j) x[j] = mips_load_f32(base, at + j, kind);
  } else {
    for (int64_t j = 0; j < len; ++j) x[j] = mips_load_f32(base, at + j * s1, kind);
  }
}

MIPS_INLINE void epi_write(void* base, int64_t at, int64_t s1, const float* x, int64_t len,
                           int kind) {
  if (s1 == 1) {
    for (int64_t j = 0; j < len; ++j) mips_store_f32(base, at + j, x[j], kind);
  } else {
    for (int64_t j = 0; j < len; ++j) mips_store_f32(base, at + j * s1, x[j], kind);
  }
}

/* x = R(activation(x)), one loop per activation so that each vectorizes. */
MIPS_INLINE void epi_activate(float* x, int64_t len, int64_t activation, int kind) {
  switch (activation) {
    case MIPS_EPILOGUE_RELU:
      for (int64_t j = 0; j < len; ++j) x[j] = epi_round(epi_relu(x[j]), kind);
      break;
    case MIPS_EPILOGUE_GELU:
      for (int64_t j = 0; j < len; ++j) x[j] = epi_round(epi_gelu(x[j]), kind);
      break;
    case MIPS_EPILOGUE_GELU_TANH:
      for (int64_t j = 0; j < len; ++j) x[j] = epi_round(epi_gelu_tanh(x[j]), kind);
      break;
    case MIPS_EPILOGUE_SILU:
      for (int64_t j = 0; j < len; ++j) x[j] = epi_round(epi_silu(x[j]), kind);
      break;
    default:
      break;
  }
}

/* One chunk of row i: columns [j0, j0 + len). */
MIPS_INLINE void epi_chunk(const epi_params* p, int64_t i, int64_t j0, int64_t len, int kind) {
  float x[EPI_CHUNK], y[EPI_CHUNK];
  const int64_t at_c = p->c_offset + i * p->c_stride0 + j0 * p->c_stride1;
  if (p->bias_mode == MIPS_EPILOGUE_BIAS_SET) {
    epi_read(x, p->bias, p->bias_offset + j0 * p->bias_stride, p->bias_stride, len, kind);
    epi_write(p->c, at_c, p->c_stride1, x, len, kind);
    return;
  }
  epi_read(x, p->c, at_c, p->c_stride1, len, kind);
  if (p->bias_mode == MIPS_EPILOGUE_BIAS_ADD) {
    epi_read(y, p->bias, p->bias_offset + j0 * p->bias_stride, p->bias_stride, len, kind);
    for (int64_t j = 0; j < len; ++j) x[j] = epi_round(x[j] + y[j], kind);
  }
  epi_activate(x, len, p->activation, kind);
  if (p->binary != MIPS_EPILOGUE_NONE) {
    const int64_t at_o = p->other_offset + i * p->other_stride0 + j0 * p->other_stride1;
    epi_read(y, p->other, at_o, p->other_stride1, len, kind);
    if (p->binary == MIPS_EPILOGUE_ADD) {
      for (int64_t j = 0; j < len; ++j) x[j] = epi_round(x[j] + y[j], kind);
    } else {
      for (int64_t j = 0; j < len; ++j) x[j] = epi_round(x[j] * y[j], kind);
    }
  }
  epi_write(p->c, at_c, p->c_stride1, x, len, kind);
}

/* C = bias (BIAS_SET) on rows of contiguous C from a contiguous bias, f32 or bf16: each row
 * of C a copy of the bias row, element type to element type, in one loop the compiler
 * vectorizes (epi_chunk widens each element to f32 and rounds it back, a detour that took
 * 2-3x the time on Zen 4: BENCHMARKS.md, 2026-12-01 05:00).  Bit for bit what epi_chunk
 * writes: the identity, except that a bf16 NaN comes out quiet, as mips_f32_to_bf16 makes
 * it.  No call: the freestanding object's memcpy is a byte loop. */
MIPS_INLINE void epi_bias_set_rows(const epi_params* p, int kind) {
  for (int64_t i = 0; i < p->m; ++i) {
    const int64_t at = p->c_offset + i * p->c_stride0;
    if (kind == MM_KIND_F32) {
      float* restrict c = (float*)p->c + at;
      const float* restrict b = (const float*)p->bias + p->bias_offset;
      for (int64_t j = 0; j < p->n; ++j) c[j] = b[j];
    } else {
      uint16_t* restrict c = (uint16_t*)p->c + at;
      const uint16_t* restrict b = (const uint16_t*)p->bias + p->bias_offset;
      for (int64_t j = 0; j < p->n; ++j)
        c[j] = (uint16_t)((b[j] & 0x7fffu) > 0x7f80u ? b[j] | 0x40u : b[j]);
    }
  }
}

/* A fused epilogue's tile of at most EPI_TILE_ROWS x W elements (W = EPI_TILE_COLS, the
 * register tile width of the paths that fuse: AVX-512 and VDPBF16PS; f32 and bf16): its rows
 * widened into one buffer, so that each step is one loop over the whole tile (a multiple of
 * W long: no remainders), not one per row.  The same steps, in the same order, as
 * epi_chunk's: the same bits. */
MIPS_INLINE void epi_small_tile(const epi_params* p, int kind, const int W) {
  float x[EPI_TILE_ROWS * EPI_TILE_COLS], y[EPI_TILE_ROWS * EPI_TILE_COLS];
  const int64_t m = p->m;
  for (int64_t i = 0; i < m; ++i)
    epi_read(x + i * W, p->c, p->c_offset + i * p->c_stride0, p->c_stride1, W, kind);
  if (p->bias_mode == MIPS_EPILOGUE_BIAS_ADD) {
    epi_read(y, p->bias, p->bias_offset, p->bias_stride, W, kind);
    for (int64_t i = 0; i < m; ++i)
      for (int j = 0; j < W; ++j) x[i * W + j] = epi_round(x[i * W + j] + y[j], kind);
  }
  epi_activate(x, m * W, p->activation, kind);
  if (p->binary != MIPS_EPILOGUE_NONE) {
    for (int64_t i = 0; i < m; ++i)
      epi_read(y + i * W, p->other, p->other_offset + i * p->other_stride0, p->other_stride1, W,
               kind);
    if (p->binary == MIPS_EPILOGUE_ADD) {
      for (int64_t j = 0; j < m * W; ++j) x[j] = epi_round(x[j] + y[j], kind);
    } else {
      for (int64_t j = 0; j < m * W; ++j) x[j] = epi_round(x[j] * y[j], kind);
    }
  }
  for (int64_t i = 0; i < m; ++i)
    epi_write(p->c, p->c_offset + i * p->c_stride0, p->c_stride1, x + i * W, W, kind);
}

MIPS_INLINE void epi_tile(const epi_params* p, int kind) {
  if (p->bias_mode == MIPS_EPILOGUE_BIAS_SET && p->c_stride1 == 1 && p->bias_stride == 1 &&
      (kind == MM_KIND_F32 || kind == MM_KIND_BF16)) {
    epi_bias_set_rows(p, kind);
    return;
  }
  if (p->n == EPI_TILE_COLS && kind != MM_KIND_F16 && p->bias_mode != MIPS_EPILOGUE_BIAS_SET) {
    /* a fused epilogue's strip of tiles (mips_fused_chain), EPI_TILE_ROWS rows at a time */
    for (int64_t i = 0; i < p->m; i += EPI_TILE_ROWS) {
      epi_params q = *p;
      q.c_offset += i * p->c_stride0;
      q.other_offset += i * p->other_stride0;
      q.m = p->m - i < EPI_TILE_ROWS ? p->m - i : EPI_TILE_ROWS;
      epi_small_tile(&q, kind, EPI_TILE_COLS);
    }
    return;
  }
  for (int64_t i = 0; i < p->m; ++i) {
    for (int64_t j0 = 0; j0 < p->n; j0 += EPI_CHUNK) {
      const int64_t len = p->n - j0 < EPI_CHUNK ? p->n - j0 : EPI_CHUNK;
      epi_chunk(p, i, j0, len, kind);
    }
  }
}

/* One instance per instruction set and element kind. */
#define EPI_INSTANCES(ISA, TARGET)                                                       \
  TARGET static void epi_tile_##ISA##_f32(const epi_params* p) { epi_tile(p, MM_KIND_F32); } \
  TARGET static void epi_tile_##ISA##_f16(const epi_params* p) { epi_tile(p, MM_KIND_F16); } \
  TARGET static void epi_tile_##ISA##_bf16(const epi_params* p) { epi_tile(p, MM_KIND_BF16); }

EPI_INSTANCES(generic, )
#if defined(__x86_64__)
EPI_INSTANCES(avx2, __attribute__((target("avx2,fma,f16c"))))
EPI_INSTANCES(avx512, __attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))))
#endif

/* 0 when the call is valid (mips_kernels.h, "Epilogues": errors). */
static int epi_check(const epi_params* p, int64_t elem_size) {
  if (p == NULL || p->m < 0 || p->n < 0) return 1;
  if (p->bias_mode < MIPS_EPILOGUE_NONE || p->bias_mode > MIPS_EPILOGUE_BIAS_SET) return 1;
  if (p->activation < MIPS_EPILOGUE_NONE || p->activation > MIPS_EPILOGUE_SILU) return 1;
  if (p->binary < MIPS_EPILOGUE_NONE || p->binary > MIPS_EPILOGUE_MUL) return 1;
  if (p->bias_mode == MIPS_EPILOGUE_BIAS_SET &&
      (p->activation != MIPS_EPILOGUE_NONE || p->binary != MIPS_EPILOGUE_NONE))
    return 1;
  if (mips_check_operand(p->c, p->c_offset, p->c_stride0, p->c_stride1, p->m, p->n, elem_size))
    return 1;
  const int64_t bias_rows = p->bias_mode != MIPS_EPILOGUE_NONE ? 1 : 0;
  if (mips_check_operand(p->bias, p->bias_offset, 0, p->bias_stride, bias_rows, p->n, elem_size))
    return 1;
  const int64_t other_rows = p->binary != MIPS_EPILOGUE_NONE ? p->m : 0;
  return mips_check_operand(p->other, p->other_offset, p->other_stride0, p->other_stride1,
                            other_rows, p->n, elem_size);
}

/* The tile of a validated call on the path for `isa`. */
#define EPI_DISPATCH(T)                                                             \
  static void epi_dispatch_##T(const epi_params* p, int isa) {                       \
    if (isa == MIPS_ISA_AVX512 || isa == MIPS_ISA_AMX || isa == MIPS_ISA_AVX512BF16) \
      EPI_ISA_CALL(avx512, T, p);                                                    \
    else if (isa == MIPS_ISA_AVX2)                                                   \
      EPI_ISA_CALL(avx2, T, p);                                                      \
    else                                                                             \
      epi_tile_generic_##T(p);                                                       \
  }

int mips_epilogue_check(const void* params, int64_t elem_size) {
  return epi_check((const epi_params*)params, elem_size);
}

#define EPI_DRIVER(T, KIND)                                         \
  int mips_epilogue_##T##_run(void* params, int isa) {               \
    const epi_params* p = (const epi_params*)params;                 \
    if (epi_check(p, KIND == MM_KIND_F32 ? 4 : 2)) return 1;         \
    if (p->m == 0 || p->n == 0) return 0;                            \
    epi_dispatch_##T(p, isa);                                        \
    return 0;                                                        \
  }

/* The plugin's import-ABI entry point (a module calling it needs the plugin;
 * the counters are the plugin's). */
#define EPI_IMPORT(T, KERNEL)                                                      \
  MIPS_EXPORT int mips_epilogue_##T(void* params, void* context, void* reserved) { \
    (void)context;                                                                 \
    (void)reserved;                                                                \
    mips_count_call(KERNEL);                                                       \
    return mips_epilogue_##T##_run(params, mips_config()->isa);                    \
  }

/* The direct call of the freestanding object (mips_kernels.h, "Embedded
 * entry points"): the params as arguments; no workspace (the chunks live on
 * the stack).  The plugin exports it too and counts it under the kernel's
 * symbol; the object has no counters. */
#define EPI_EMBEDDED(T, ET, KERNEL)                                                     \
  MIPS_EXPORT int mips_epilogue_##T##_embedded(                                         \
      ET* c, int64_t c_offset, int64_t c_stride0, int64_t c_stride1, const ET* bias,   \
      int64_t bias_offset, int64_t bias_stride, const ET* other, int64_t other_offset,  \
      int64_t other_stride0, int64_t other_stride1, int64_t m, int64_t n,               \
      int64_t bias_mode, int64_t activation, int64_t binary) {                          \
    mips_epilogue_##T##_params p = {c,     c_offset,      c_stride0,     c_stride1,     \
                                    bias,  bias_offset,   bias_stride,   other,         \
                                    other_offset, other_stride0, other_stride1, m,      \
                                    n,     bias_mode,     activation,    binary};       \
    mips_count_call(KERNEL);                                                            \
    return mips_epilogue_##T##_run(&p, mips_config()->isa);                             \
  }

#if defined(__x86_64__)
#define EPI_ISA_CALL(ISA, T, p) epi_tile_##ISA##_##T(p)
#else
#define EPI_ISA_CALL(ISA, T, p) epi_tile_generic_##T(p)
#endif

EPI_DISPATCH(f32)
EPI_DISPATCH(f16)
EPI_DISPATCH(bf16)
EPI_DRIVER(f32, MM_KIND_F32)
EPI_DRIVER(f16, MM_KIND_F16)
EPI_DRIVER(bf16, MM_KIND_BF16)
EPI_EMBEDDED(f32, float, MIPS_K_EPILOGUE_F32)
EPI_EMBEDDED(f16, uint16_t, MIPS_K_EPILOGUE_F16)
EPI_EMBEDDED(bf16, uint16_t, MIPS_K_EPILOGUE_BF16)
#ifndef MIPS_FREESTANDING
EPI_IMPORT(f32, MIPS_K_EPILOGUE_F32)
EPI_IMPORT(f16, MIPS_K_EPILOGUE_F16)
EPI_IMPORT(bf16, MIPS_K_EPILOGUE_BF16)
#endif

/* The fused epilogue's chain on one tile of C that a GEMM has just stored (mips_internal.h):
 * the same code as the epilogue's call on the whole C, so the same bits. */
void mips_fused_chain(const mips_fused* f, int64_t i0, int64_t j0, int64_t rows, int64_t cols,
                      int kind) {
  epi_params q = f->chain;
  q.c_offset += i0 * q.c_stride0 + j0 * q.c_stride1;
  q.bias_offset += j0 * q.bias_stride;
  q.other_offset += i0 * q.other_stride0 + j0 * q.other_stride1;
  q.m = rows;
  q.n = cols;
  if (kind == MM_KIND_F32) {
    epi_dispatch_f32(&q, f->epi_isa);
  } else if (kind == MM_KIND_BF16) {
    epi_dispatch_bf16(&q, f->epi_isa);
  } else {
    epi_dispatch_f16(&q, f->epi_isa);
  }
}
