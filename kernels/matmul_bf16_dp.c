/* bf16 matmul on AVX512-BF16 (VDPBF16PS): the "avx512bf16" path.
 *
 * One VDPBF16PS zmm takes 16 f32 lanes and, per lane, two bf16 pairs:
 *   acc += a[k+1] * b[k+1];  acc += a[k] * b[k]
 * (two FMAs, odd element first; see "Numerics" in mips_kernels.h), i.e. 32
 * multiply-adds, twice the lanes of an f32 FMA.  On Zen 4 it issues one per
 * cycle like a 512-bit FMA, so bf16 peaks at twice the f32 rate (AMD's Zen 4
 * software optimization guide; measured here: BENCHMARKS.md).
 *
 * The blocking is the GotoBLAS one of matmul_gemm.inc (and matmul_bf16_amx.c)
 * with operands packed in k pairs, and block sizes from the per-CPU
 * configuration (mips_config.c):
 *
 *   for i0 in m, step MW             (row chunks, so that W stays bounded)
 *    for jc in n, step NC            (B panel)
 *     for pc in k, step KC           (k blocks of nearly equal even size <= KC)
 *       pack B[pc:+kc, jc:+nc] -> Bp (NR-column slivers of (k, k+1) pairs)
 *       for ic in m, step MC         (A block)
 *         pack A[ic:+mc, pc:+kc] -> Ap (MR-row slivers of (k, k+1) pairs)
 *         for jr in nc, step NR; for ir in mc, step MR:
 *           microkernel: MR x NR of C += Ap sliver . Bp sliver
 *
 * Packed layouts (32-bit words, each a (k, k+1) bf16 pair, k even; an odd kc
 * gets a zero k + 1):  A sliver: word p * MR + i = row i, pair p;  B sliver:
 * word p * NR + j = column j, pair p.  Edge slivers are zero-padded to MR rows
 * / NR columns and never stored.  The microkernel keeps MR x NR f32 sums in
 * MR * NR / 16 zmm registers; per pair it loads NR / 16 vectors of B,
 * broadcasts MR words of A and issues MR * NR / 16 VDPBF16PS.
 *
 * With several k blocks the f32 partial sums go to a workspace W between
 * blocks; the last block adds the old C (accumulate) in f32 and rounds to
 * bf16 once (round to nearest even, in integer arithmetic: exact, no
 * flush), as the contract says.
 */
#include "mips_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#ifndef MIPS_BF16DP_MR /* -D overrides, for tuning experiments */
#define MIPS_BF16DP_MR 12
#endif
#ifndef MIPS_BF16DP_NV
#define MIPS_BF16DP_NV 2
#endif
#define DP_MR MIPS_BF16DP_MR /* rows of the register tile */
#define DP_NV MIPS_BF16DP_NV /* zmm vectors per row of the tile */
#define DP_NR (DP_NV * 16)     /* columns of the register tile */
_Static_assert(DP_MR >= 1 && DP_MR <= 16 && DP_MR * DP_NV <= 28, "register tile");

#define DP_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

static int64_t dp_round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* The (k, k+1) pair of row i of a row-contiguous operand, as one word. */
static inline uint32_t dp_pair(const uint16_t* s, int64_t cs, int64_t q, int64_t kc) {
  const uint32_t lo = s[q * cs];
  const uint32_t hi = q + 1 < kc ? s[(q + 1) * cs] : 0u;
  return lo | (hi << 16);
}

/* In-register transpose of 16 x 16 32-bit words: r[i] lane j -> r[j] lane i. */
DP_TARGET static inline void dp_transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512 a0 = t[4 * i], a1 = t[4 * i + 1], a2 = t[4 * i + 2], a3 = t[4 * i + 3];
    r[4 * i] = _mm512_shuffle_ps(a0, a2, 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(a0, a2, 0xee);
    r[4 * i + 2] = _mm512_shuffle_ps(a1, a3, 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(a1, a3, 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
    t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
  }
}

/* Packs R "rows" x kc into pairs: dst[p * R + r] = (src[r, 2p], src[r, 2p+1])
 * where element (r, q) is src[r * rs + q * cs]; rows valid..R-1 and the pair
 * of an odd kc's last k are zero.  An A sliver is MR rows of A (rs, cs =
 * a_stride0, a_stride1); a B sliver is NR columns of B (rs, cs = b_stride1,
 * b_stride0). */
/* The vpermt2w indices that interleave two rows of 32 bf16 (r0, r1) into k pairs: `lo` makes
 * pairs 0-15 (r0[j], r1[j]), `hi` pairs 16-31. */
DP_TARGET static void dp_pair_interleave(__m512i* lo_idx, __m512i* hi_idx) {
  uint16_t lo[32], hi[32];
  for (int j = 0; j < 16; ++j) {
    lo[2 * j] = (uint16_t)j;
    lo[2 * j + 1] = (uint16_t)(32 + j);
    hi[2 * j] = (uint16_t)(16 + j);
    hi[2 * j + 1] = (uint16_t)(48 + j);
  }
  *lo_idx = _mm512_loadu_si512(lo);
  *hi_idx = _mm512_loadu_si512(hi);
}

DP_TARGET static void dp_pack(uint32_t* restrict dst, const uint16_t* restrict src,
                              int64_t rs, int64_t cs, const int R, int valid, int64_t kc) {
  const int64_t kp = (kc + 1) / 2;
  int64_t p = 0;
  if (cs == 1) {
    /* each row's pairs are contiguous words: 16 x 16 word transposes */
    for (; p + 16 <= kc / 2; p += 16) {
      for (int g = 0; g < R; g += 16) {
        const int rows = valid - g < 16 ? (valid - g > 0 ? valid - g : 0) : 16;
        const int outs = R - g < 16 ? R - g : 16;
        __m512 r[16];
        for (int i = 0; i < 16; ++i)
          r[i] = i < rows ? _mm512_loadu_ps(src + (g + i) * rs + 2 * p) : _mm512_setzero_ps();
        dp_transpose16(r);
        const __mmask16 keep = (__mmask16)((1u << outs) - 1u);
        for (int j = 0; j < 16; ++j)
          _mm512_mask_storeu_ps((float*)(dst + (p + j) * R + g), keep, r[j]);
      }
    }
  } else if (rs == 1 && valid == R && R % 16 == 0) {
    /* each k's R values are contiguous: interleave rows 2p and 2p+1 */
    __m512i lo_idx, hi_idx;
    dp_pair_interleave(&lo_idx, &hi_idx);
    for (; p < kc / 2; ++p) {
      const uint16_t* s0 = src + 2 * p * cs;
      const uint16_t* s1 = s0 + cs;
      for (int g = 0; g < R; g += 32) {
        const int left = R - g;
        const __mmask32 m = left >= 32 ? 0xffffffffu : (1u << left) - 1u;
        const __m512i r0 = _mm512_maskz_loadu_epi16(m, s0 + g);
        const __m512i r1 = _mm512_maskz_loadu_epi16(m, s1 + g);
        _mm512_storeu_si512(dst + p * R + g, _mm512_permutex2var_epi16(r0, lo_idx, r1));
        if (left > 16)
          _mm512_storeu_si512(dst + p * R + g + 16, _mm512_permutex2var_epi16(r0, hi_idx, r1));
      }
    }
  }
  for (; p < kp; ++p) {
    for (int r = 0; r < R; ++r)
      dst[p * R + r] = r < valid ? dp_pair(src + r * rs, cs, 2 * p, kc) : 0u;
  }
}

/* Packs the full NR-column slivers of a B panel with contiguous rows
 * (b_stride1 == 1): slivers jr / NR < nfull, kc rows (bs0 apart).  Row pair
 * by row pair across the whole panel, so that B is read in two sequential
 * streams (reading a sliver at a time, 64 bytes per row, was ~1 cycle per
 * element on Zen 4: 20% of a 132x256x512 call). */
DP_TARGET static void dp_pack_b_rows(uint32_t* restrict bpk, const uint16_t* restrict b,
                                     int64_t bs0, int64_t nfull, int64_t kc, int64_t sb,
                                     int64_t ahead) {
  const int64_t kp = (kc + 1) / 2;
  __m512i lo_idx, hi_idx;
  dp_pair_interleave(&lo_idx, &hi_idx);
  for (int64_t p = 0; p < kp; ++p) {
    const uint16_t* s0 = b + 2 * p * bs0;
    const uint16_t* s1 = s0 + bs0;
    const int odd = 2 * p + 1 == kc; /* the last pair of an odd kc: k + 1 is zero */
    if (2 * p + ahead + 1 < kc) {
      /* (each row is a new page for a wide B: the hardware prefetchers
       * do not cross pages) */
      const uint16_t* f0 = s0 + ahead * bs0;
      for (int64_t t = 0; t < nfull; ++t) {
        __builtin_prefetch(f0 + t * DP_NR);
        __builtin_prefetch(f0 + bs0 + t * DP_NR);
      }
    }
    for (int64_t t = 0; t < nfull; ++t) {
      const __m512i r0 = _mm512_loadu_si512(s0 + t * DP_NR);
      const __m512i r1 = odd ? _mm512_setzero_si512() : _mm512_loadu_si512(s1 + t * DP_NR);
      uint32_t* d = bpk + t * sb + p * DP_NR;
      _mm512_storeu_si512(d, _mm512_permutex2var_epi16(r0, lo_idx, r1));
      _mm512_storeu_si512(d + 16, _mm512_permutex2var_epi16(r0, hi_idx, r1));
    }
  }
}

/* Rounds 16 f32 to bf16 (nearest even, NaN stays quiet NaN), as
 * mips_f32_to_bf16 does one at a time (integer arithmetic: no flush). */
DP_TARGET static __m256i dp_round_bf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

typedef struct {
  uint16_t* c; /* C at the tile's (0, 0) */
  int64_t cs0, cs1;
  float* w; /* W at the tile's (0, 0), row stride ldw (full MR x NR tiles) */
  int64_t ldw;
  int first, last, accumulate;
  const uint16_t* bias; /* the fused epilogue's bias at the tile's column 0, added in C's
                         * place (accumulate is 0 then), or NULL */
  int64_t bias_s1;
} dp_out;

/* One row's 32 columns of f32 sums (nr of them valid) into C: rounded to bf16, added to
 * C's bf16 first with `accumulate`, or to the bias's (bias[j * bs1]) when `bias` is not NULL;
 * the GEMM's and the thin tiles' last store. */
DP_TARGET __attribute__((always_inline)) static inline void dp_store_row(
    const __m512 acc[DP_NV], uint16_t* crow, int64_t cs1, int nr, int accumulate,
    const uint16_t* bias, int64_t bs1) {
  for (int v = 0; v < DP_NV; ++v) {
    const int cols = nr - 16 * v;
    if (cols <= 0) break;
    uint16_t* cp = crow + 16 * v * cs1;
    const uint16_t* bp = bias != NULL ? bias + 16 * v * bs1 : NULL;
    __m512 x = acc[v];
    if (cs1 == 1 && (bias == NULL || bs1 == 1)) {
      const __mmask16 mask = cols >= 16 ? 0xffffu : (__mmask16)((1u << cols) - 1u);
      if (accumulate || bias != NULL) {
        const __m256i old = _mm256_maskz_loadu_epi16(mask, bias != NULL ? bp : cp);
        x = _mm512_add_ps(x,
                          _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(old), 16)));
      }
      _mm256_mask_storeu_epi16(cp, mask, dp_round_bf16(x));
    } else {
      float t[16];
      _mm512_storeu_ps(t, x);
      const int n = cols < 16 ? cols : 16;
      for (int j = 0; j < n; ++j) {
        float y = t[j];
        if (accumulate) y += mips_bf16_to_f32(cp[j * cs1]);
        if (bias != NULL) y += mips_bf16_to_f32(bp[j * bs1]);
        cp[j * cs1] = mips_f32_to_bf16(y);
      }
    }
  }
}

/* The MR x NR tile (mr x nr of it valid) over kp pairs, computing its first `rows` >= mr rows
 * only (a constant in each instance below: thin products, e.g. M = 1 in a decode step, issue
 * no VDPBF16PS for the padding rows of the A sliver). */
DP_TARGET __attribute__((always_inline)) static inline void dp_ukr_body(
    int64_t kp, const uint32_t* restrict ap, const uint32_t* restrict bp, const dp_out* o,
    int mr, int nr, const int rows) {
  __m512 acc[DP_MR][DP_NV];
  if (o->first) {
    for (int i = 0; i < rows; ++i)
      for (int v = 0; v < DP_NV; ++v) acc[i][v] = _mm512_setzero_ps();
  } else {
    for (int i = 0; i < rows; ++i)
      for (int v = 0; v < DP_NV; ++v) acc[i][v] = _mm512_loadu_ps(o->w + i * o->ldw + 16 * v);
  }
  if (o->last) {
    for (int i = 0; i < mr; ++i) { /* a row of the tile: 64 bytes of bf16 */
      __builtin_prefetch(o->c + i * o->cs0, 1);
    }
  }
  for (int64_t p = 0; p < kp; ++p) {
    __m512bh bv[DP_NV];
    for (int v = 0; v < DP_NV; ++v)
      bv[v] = (__m512bh)_mm512_loadu_si512(bp + p * DP_NR + 16 * v);
    for (int i = 0; i < rows; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32((int)ap[p * DP_MR + i]);
      for (int v = 0; v < DP_NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
    }
  }
  if (!o->last) {
    for (int i = 0; i < rows; ++i)
      for (int v = 0; v < DP_NV; ++v) _mm512_storeu_ps(o->w + i * o->ldw + 16 * v, acc[i][v]);
    return;
  }
  for (int i = 0; i < mr; ++i)
    dp_store_row(acc[i], o->c + i * o->cs0, o->cs1, nr, o->accumulate, o->bias, o->bias_s1);
}

#define DP_UKR(rows)                                                                       \
  DP_TARGET __attribute__((noinline)) static void dp_ukr_##rows(                           \
      int64_t kp, const uint32_t* restrict ap, const uint32_t* restrict bp, const dp_out* o, \
      int mr, int nr) {                                                                    \
    dp_ukr_body(kp, ap, bp, o, mr, nr, rows < DP_MR ? rows : DP_MR);                       \
  }
DP_UKR(1)
DP_UKR(2)
DP_UKR(4)
DP_UKR(8)
DP_UKR(DP_MR)
#undef DP_UKR

/* The tile with the fewest rows computed that covers mr. */
DP_TARGET static inline void dp_ukr(int64_t kp, const uint32_t* restrict ap,
                                    const uint32_t* restrict bp, const dp_out* o, int mr,
                                    int nr) {
  if (mr <= 1) {
    dp_ukr_1(kp, ap, bp, o, mr, nr);
  } else if (mr <= 2) {
    dp_ukr_2(kp, ap, bp, o, mr, nr);
  } else if (mr <= 4) {
    dp_ukr_4(kp, ap, bp, o, mr, nr);
  } else if (mr <= 8 && DP_MR > 8) {
    dp_ukr_8(kp, ap, bp, o, mr, nr);
  } else {
    dp_ukr_DP_MR(kp, ap, bp, o, mr, nr);
  }
}

/* ---- thin products on pre-packed B: few rows of C (M <= 4, a decode step's M = 1) ----
 * Every packed word of B serves at most 4 rows, so the call streams B from memory: dp_thin
 * reads whole panels (all of k at once: no partial sums in W, A packed once per call) from S
 * stripes of the tile's panels at a time (S = the configuration's thin_streams, fewer for 4
 * rows to keep R x S x 2 accumulators in registers), so that S sequential streams far apart
 * keep more page walks and prefetches in flight than one panel after another does (Zen 4,
 * weights on 4 KiB pages, M = 1: BENCHMARKS.md / the thin-products notes). */

/* The C tile of one thin call and the packed A of its rows (R words per pair). */
typedef struct {
  const uint32_t* ap;
  int64_t kp, cs0, cs1;
  int mr, accumulate;
} dp_thin_args;

/* R rows (mr of them stored) x S panels (bp[s], 32 columns of C at cp[s], nr[s] valid) over
 * all kp pairs: R x S x 2 accumulators, S x 2 loads of B per pair. */
DP_TARGET __attribute__((always_inline)) static inline void dp_thin_body(
    const dp_thin_args* t, const uint32_t* const bp[4], uint16_t* const cp[4], const int nr[4],
    const int R, const int S) {
  __m512 acc[4][4][DP_NV];
  for (int i = 0; i < R; ++i)
    for (int s = 0; s < S; ++s)
      for (int v = 0; v < DP_NV; ++v) acc[i][s][v] = _mm512_setzero_ps();
  const uint32_t* restrict ap = t->ap;
  for (int64_t p = 0; p < t->kp; ++p) {
    __m512bh bv[4][DP_NV];
    for (int s = 0; s < S; ++s)
      for (int v = 0; v < DP_NV; ++v)
        bv[s][v] = (__m512bh)_mm512_loadu_si512(bp[s] + p * DP_NR + 16 * v);
    for (int i = 0; i < R; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32((int)ap[p * R + i]);
      for (int s = 0; s < S; ++s)
        for (int v = 0; v < DP_NV; ++v) acc[i][s][v] = _mm512_dpbf16_ps(acc[i][s][v], av, bv[s][v]);
    }
  }
  for (int i = 0; i < t->mr; ++i)
    for (int s = 0; s < S; ++s)
      dp_store_row(acc[i][s], cp[s] + i * t->cs0, t->cs1, nr[s], t->accumulate, NULL, 0);
}

#define DP_THIN(R, S)                                                                        \
  DP_TARGET __attribute__((noinline)) static void dp_thin_##R##_##S(                         \
      const dp_thin_args* t, const uint32_t* const bp[4], uint16_t* const cp[4],             \
      const int nr[4]) {                                                                     \
    dp_thin_body(t, bp, cp, nr, R, S);                                                       \
  }
DP_THIN(1, 1)
DP_THIN(1, 2)
DP_THIN(1, 4)
DP_THIN(2, 1)
DP_THIN(2, 2)
DP_THIN(2, 4)
DP_THIN(4, 1)
DP_THIN(4, 2)
#undef DP_THIN
_Static_assert(DP_NV == 2, "dp_thin's register budget assumes 32-column panels of 2 vectors");

typedef void (*dp_thin_fn)(const dp_thin_args*, const uint32_t* const[4], uint16_t* const[4],
                           const int[4]);

/* The instance for R rows and S streams (S in 1, 2, 4; 4 rows take at most 2). */
static dp_thin_fn dp_thin_kernel(int R, int S) {
  static const dp_thin_fn kFns[3][3] = {
      {dp_thin_1_1, dp_thin_1_2, dp_thin_1_4},
      {dp_thin_2_1, dp_thin_2_2, dp_thin_2_4},
      {dp_thin_4_1, dp_thin_4_2, dp_thin_4_2},
  };
  return kFns[R == 1 ? 0 : R == 2 ? 1 : 2][S == 1 ? 0 : S == 2 ? 1 : 2];
}

/* C (+)= A . B for m <= DP_THIN_M rows on a pre-packed B (see above): 0, or -1 when A's packed
 * copy does not fit the scratch. */
#define DP_THIN_M 4
DP_TARGET static int dp_thin(const mips_matmul_bf16_params* p, const mips_scratch* ws,
                             int streams) {
  const int64_t m = p->m, n = p->n, k = p->k, kp = (k + 1) / 2;
  const int R = m == 1 ? 1 : m == 2 ? 2 : 4;
  int S = streams >= 4 ? 4 : streams >= 2 ? 2 : 1;
  if (R == 4 && S > 2) S = 2;
  uint32_t* apk = (uint32_t*)mips_scratch_take(ws, (size_t)(R * kp) * sizeof(uint32_t));
  if (apk == NULL) return -1;
  dp_pack(apk, p->a + p->a_offset, p->a_stride0, p->a_stride1, R, (int)m, k);
  const dp_thin_args t = {apk, kp, p->c_stride0, p->c_stride1, (int)m, p->accumulate != 0};
  const uint32_t* b = (const uint32_t*)(const void*)(p->b + p->b_offset);
  const int64_t panel_words = p->b_stride0 / 2 * DP_NR, panels = (n + DP_NR - 1) / DP_NR;
  if (S > panels) S = (int)(panels >= 2 ? 2 : 1);
  int64_t first[4], count[4], longest = 0; /* stripe s: panels [first, first + count) */
  for (int s = 0; s < S; ++s) {
    first[s] = s * panels / S;
    count[s] = (s + 1) * panels / S - first[s];
    if (count[s] > longest) longest = count[s];
  }
  for (int64_t g = 0; g < longest; ++g) {
    const uint32_t* bp[4];
    uint16_t* cp[4];
    int nr[4], live = 0;
    for (int s = 0; s < S; ++s) {
      if (g >= count[s]) continue;
      const int64_t j = (first[s] + g) * DP_NR;
      bp[live] = b + (first[s] + g) * panel_words;
      cp[live] = p->c + p->c_offset + j * p->c_stride1;
      nr[live++] = n - j < DP_NR ? (int)(n - j) : DP_NR;
    }
    /* the last round of uneven stripes: the live ones in pairs, then one alone */
    int s = 0;
    for (; live - s >= S || (live - s >= 2 && S >= 2); s += live - s >= S ? S : 2)
      dp_thin_kernel(R, live - s >= S ? S : 2)(&t, &bp[s], &cp[s], &nr[s]);
    if (s < live) dp_thin_kernel(R, 1)(&t, &bp[s], &cp[s], &nr[s]);
  }
  mips_scratch_give(ws, apk);
  return 0;
}

/* The blocks of one call (as matmul_gemm.inc's plan): k in blocks of kcb
 * (even), C in nc_max-column panels, mc_max-row blocks and W chunks of mw
 * rows; the words of packed B and A, the floats of W. */
typedef struct {
  int64_t kcb, nc_max, mc_max, mw;
  size_t nb, na, nw;
} dp_plan;

static size_t dp_plan_bytes(const dp_plan* pl) {
  return (pl->nb + pl->na) * sizeof(uint32_t) + pl->nw * sizeof(float);
}

/* The plan for blocks KC, MC, NC that fits `budget` bytes: fewer W rows
 * first, then KC, NC, MC halved; 0, or -1 when nothing fits.  `packed`: no B
 * buffer (a pre-packed B). */
static int dp_plan_blocks(int64_t m, int64_t n, int64_t k, int64_t KC, int64_t MC, int64_t NC,
                          size_t budget, int packed, dp_plan* pl) {
  for (;;) {
    const int64_t nkb = (k + KC - 1) / KC; /* nkb blocks of nearly equal even size <= KC */
    pl->kcb = dp_round_up((k + nkb - 1) / nkb, 2);
    const int64_t kpb = pl->kcb / 2;
    pl->nc_max = dp_round_up(n < NC ? n : NC, DP_NR);
    pl->mc_max = dp_round_up(m < MC ? m : MC, DP_MR);
    /* (a pre-packed B is read where it lies) */
    pl->nb = packed ? 0 : (size_t)((kpb * DP_NR + 16) * (pl->nc_max / DP_NR));
    pl->na = (size_t)(pl->mc_max * kpb);
    pl->mw = m; /* rows of C per chunk (W's rows) */
    pl->nw = 0;
    if (nkb > 1) {
      int64_t wfloats = 1 << 20; /* W: at most 4 MiB */
      const size_t fixed = (pl->nb + pl->na) * sizeof(uint32_t);
      if (budget != SIZE_MAX) {
        const int64_t left = budget > fixed ? (int64_t)((budget - fixed) / sizeof(float)) : 0;
        if (left < wfloats) wfloats = left;
      }
      pl->mw = wfloats / pl->nc_max / pl->mc_max * pl->mc_max;
      if (pl->mw < pl->mc_max) pl->mw = pl->mc_max;
      if (pl->mw > m) pl->mw = m;
      pl->nw = (size_t)(dp_round_up(pl->mw, pl->mc_max) * pl->nc_max);
    }
    if (budget == SIZE_MAX || dp_plan_bytes(pl) <= budget) return 0;
    if (KC > 64) {
      KC = KC / 2 / 32 * 32;
    } else if (NC > DP_NR) {
      NC = dp_round_up(NC / 2, DP_NR);
    } else if (MC > DP_MR) {
      MC = dp_round_up(MC / 2, DP_MR);
    } else {
      return -1;
    }
  }
}

DP_TARGET int mips_bf16_dp_gemm(const mips_matmul_bf16_params* p, const mips_scratch* ws,
                                int packed, const mips_fused* fused) {
  /* a pre-packed B's panels are the slivers (mips_kernels.h, "Pre-packed B") */
  if (packed && DP_NR != MIPS_PACKED_B_PANEL) return -1;
  const mips_kernel_config* cfg = mips_config();
  if (packed && p->m <= DP_THIN_M) {
    if (fused != NULL) return -1; /* (the fused driver makes the steps in turn) */
    return dp_thin(p, ws, cfg->thin_streams);
  }
  const int64_t m = p->m, n = p->n, k = p->k;
  const uint16_t* a = p->a + p->a_offset;
  const uint16_t* b = p->b + p->b_offset;
  uint16_t* c = p->c + p->c_offset;
  const int64_t as0 = p->a_stride0, as1 = p->a_stride1;
  const int64_t bs0 = p->b_stride0, bs1 = p->b_stride1;
  dp_plan pl;
  /* (a pre-packed B bounds no buffer: its own KC, bf16_packed_kc) */
  const int kc_cfg = packed ? cfg->bf16_packed_kc : cfg->bf16_kc;
  if (dp_plan_blocks(m, n, k, dp_round_up(kc_cfg, 32), dp_round_up(cfg->bf16_mc, DP_MR),
                     dp_round_up(cfg->bf16_nc, DP_NR), mips_scratch_budget(ws), packed, &pl) != 0)
    return -1;
  const int64_t kcb = pl.kcb, nc_max = pl.nc_max, mc_max = pl.mc_max, mw = pl.mw;
  const size_t nb = pl.nb, na = pl.na;
  uint32_t* buf = (uint32_t*)mips_scratch_take(ws, dp_plan_bytes(&pl));
  if (buf == NULL) return -1;
  uint32_t* bpk = buf;
  uint32_t* apk = bpk + nb;
  float* w = (float*)(apk + na);

  dp_out o;
  o.cs0 = p->c_stride0;
  o.cs1 = p->c_stride1;
  o.ldw = nc_max;
  o.accumulate = p->accumulate != 0;
  o.w = w;
  const int chain = fused != NULL && fused->has_chain;
  const uint16_t* bias = fused != NULL ? (const uint16_t*)fused->bias : NULL;
  o.bias_s1 = bias != NULL ? fused->bias_stride : 0;
  for (int64_t i0 = 0; i0 < m; i0 += mw) {
    const int64_t i1 = m - i0 < mw ? m : i0 + mw;
    for (int64_t jc = 0; jc < n; jc += nc_max) {
      const int64_t nc = n - jc < nc_max ? n - jc : nc_max;
      for (int64_t pc = 0; pc < k; pc += kcb) {
        const int64_t kc = k - pc < kcb ? k - pc : kcb;
        const int64_t kp = (kc + 1) / 2;
        /* words from one packed B sliver to the next: one cache line more
         * than the sliver, so that the slivers' rows, packed side by side,
         * do not all fall into the same L1 sets (kp * 128 bytes is a
         * multiple of 4 KiB for most k) */
        const int64_t sb = kp * DP_NR + 16;
        o.first = pc == 0;
        o.last = pc + kc == k;
        MIPS_PROF_BEGIN(tb_);
        int64_t jr0 = 0;
        /* pre-packed: sliver jr at panel (jc + jr) / 32, pair pc / 2 */
        const uint32_t* bsl = (const uint32_t*)(const void*)(b + jc * bs0 + pc * DP_NR);
        const int64_t sl = packed ? bs0 / 2 * DP_NR : sb; /* words between slivers */
        if (packed) {
          jr0 = nc;
        } else if (bs1 == 1 && DP_NR == 32) {
          jr0 = nc / DP_NR * DP_NR;
          dp_pack_b_rows(bpk, b + pc * bs0 + jc, bs0, nc / DP_NR, kc, sb,
                         cfg->b_prefetch_rows);
        }
        if (!packed) bsl = bpk;
        for (int64_t jr = jr0; jr < nc; jr += DP_NR) {
          const int valid = nc - jr < DP_NR ? (int)(nc - jr) : DP_NR;
          dp_pack(bpk + jr / DP_NR * sb, b + pc * bs0 + (jc + jr) * bs1, bs1, bs0, DP_NR, valid, kc);
        }
        MIPS_PROF_END(tb_, MIPS_PROF_PACK_B, 1);
        for (int64_t ic = i0; ic < i1; ic += mc_max) {
          const int64_t mc = i1 - ic < mc_max ? i1 - ic : mc_max;
          MIPS_PROF_BEGIN(ta_);
          for (int64_t ir = 0; ir < mc; ir += DP_MR) {
            const int valid = mc - ir < DP_MR ? (int)(mc - ir) : DP_MR;
            dp_pack(apk + ir * kp, a + (ic + ir) * as0 + pc * as1, as0, as1, DP_MR, valid, kc);
          }
          MIPS_PROF_END(ta_, MIPS_PROF_PACK_A, 1);
          for (int64_t jr = 0; jr < nc; jr += DP_NR) {
            const int nr = nc - jr < DP_NR ? (int)(nc - jr) : DP_NR;
            for (int64_t ir = 0; ir < mc; ir += DP_MR) {
              const int mr = mc - ir < DP_MR ? (int)(mc - ir) : DP_MR;
              o.c = c + (ic + ir) * o.cs0 + (jc + jr) * o.cs1;
              o.w = w + (ic + ir - i0) * o.ldw + jr;
              o.bias = bias != NULL ? bias + (jc + jr) * o.bias_s1 : NULL;
              MIPS_PROF_BEGIN(tu_);
              dp_ukr(kp, apk + ir * kp, bsl + jr / DP_NR * sl, &o, mr, nr);
              MIPS_PROF_END(tu_, MIPS_PROF_UKR, 1);
            }
            /* the fused chain on the strip of tiles just stored (mc x 32), while it is in L1 */
            if (chain && o.last) mips_fused_chain(fused, ic, jc + jr, mc, nr, MM_KIND_BF16);
          }
        }
      }
    }
  }
  mips_scratch_give(ws, buf);
  return 0;
}

#else /* not x86-64 */

int mips_bf16_dp_gemm(const mips_matmul_bf16_params* p, const mips_scratch* ws, int packed,
                      const mips_fused* fused) {
  (void)p;
  (void)ws;
  (void)packed;
  (void)fused;
  return -1;
}

#endif
