/* mips_attention_{f32,f16,bf16}: softmax(Q K^T * scale + mask) V for one
 * tile of query rows of one head (contract: mips_kernels.h, "Attention").
 *
 * Flash-attention style: the keys are taken in chunks of NB; per chunk the
 * scores S = Q K^T of a block of query rows are computed, then scaled, masked
 * and exponentiated against the rows' running maximum (online softmax: the
 * accumulated O and the running sum are rescaled when the maximum grows),
 * and O += P V.  On AVX-512, blocks of 16 rows or more take the lanes path
 * (both products in register tiles of their own, the query rows in the vector
 * lanes, only Q packed); otherwise each product is a call of the f32 GEMM
 * (the configuration's microkernel, K read by strides).  With causal masking the chunks (and
 * the columns of a chunk) past the block's last visible key are never
 * computed.  f16/bf16 inputs are widened exactly to f32 chunk by chunk; the
 * scores, P and O stay in f32 and O is rounded once to T at the end.  All
 * buffers live in the workspace (the plugin entry allocates one of
 * MIPS_ATTENTION_WORKSPACE bytes); with none usable the rows are computed one
 * by one with no memory at all (att_plain_rows).  No globals, no libm.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* As epilogue.c: selects without trapping comparisons, and FMA contraction. */
#pragma GCC optimize("no-trapping-math")
#pragma GCC optimize("fp-contract=fast")
#endif

#include "mips_internal.h"

#include "epilogue_math.inc"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef mips_attention_f32_params att_params; /* the same layout for every T */

/* Query rows per block and keys per chunk at most (the GEMMs' M and N); -D overrides them
 * for tuning runs. */
#ifndef ATT_MB
#define ATT_MB 64
#endif
#ifndef ATT_NB
#define ATT_NB 512
#endif
/* Columns of O per pass of the plain path (a stack buffer). */
#define ATT_PLAIN_COLS 64

/* The keys row `r` (of the tile) sees among [0, n): all, or those up to its
 * diagonal (torch's is_causal: key j <= query i, the mask's top-left corner). */
MIPS_INLINE int64_t att_visible(const att_params* p, int64_t r) {
  if (p->causal_row0 < 0) return p->n;
  const int64_t last = p->causal_row0 + r + 1;
  return last < p->n ? last : p->n;
}

/* The buffers of one block (in the workspace, f32). */
typedef struct {
  float *s, *acc, *rmax, *rsum, *qf, *kf, *vf;
  int64_t mb, nb;
} att_buffers;

/* Bytes of the buffers for blocks of mb rows and chunks of nb keys. */
static int64_t att_bytes(const att_params* p, int64_t mb, int64_t nb, int kind) {
  int64_t floats = mb * nb + mb * p->ev + 2 * mb + 64;
  if (kind != MM_KIND_F32) floats += mb * p->e + nb * p->e + nb * p->ev;
  return floats * 4 + 7 * 64;
}

MIPS_INLINE float* att_carve(char** at, int64_t floats) {
  float* out = (float*)*at;
  *at += (floats * 4 + 63) / 64 * 64;
  return out;
}

/* Buffers sized to use at most half the workspace (the rest is the GEMMs'),
 * shrinking NB then MB; 1 when even the smallest do not fit. */
static int att_layout(const att_params* p, const mips_scratch* ws, int kind, att_buffers* b,
                      mips_scratch* gemm_ws) {
  int64_t mb = p->m < ATT_MB ? p->m : ATT_MB, nb = p->n < ATT_NB ? p->n : ATT_NB;
  const int64_t budget = (int64_t)(ws->bytes / 2);
  while (att_bytes(p, mb, nb, kind) > budget && nb > 16) nb /= 2;
  while (att_bytes(p, mb, nb, kind) > budget && mb > 1) mb /= 2;
  if (ws->base == NULL || att_bytes(p, mb, nb, kind) > budget) return 1;
  char* at = (char*)ws->base;
  b->s = att_carve(&at, mb * nb);
  b->acc = att_carve(&at, mb * p->ev);
  b->rmax = att_carve(&at, mb);
  b->rsum = att_carve(&at, mb);
  b->qf = kind != MM_KIND_F32 ? att_carve(&at, mb * p->e) : NULL;
  b->kf = kind != MM_KIND_F32 ? att_carve(&at, nb * p->e) : NULL;
  b->vf = kind != MM_KIND_F32 ? att_carve(&at, nb * p->ev) : NULL;
  b->mb = mb;
  b->nb = nb;
  const int64_t used = (int64_t)(at - (char*)ws->base);
  *gemm_ws = mips_scratch_lend(at, (int64_t)ws->bytes - used);
  return 0;
}

/* dst (rows x cols, row-major) = the strided matrix at base, widened. */
MIPS_INLINE void att_widen(float* dst, const void* base, int64_t at, int64_t s0, int64_t s1,
                           int64_t rows, int64_t cols, int kind) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[i * cols + j] = mips_load_f32(base, at + i * s0 + j * s1, kind);
}

/* C (m x n, row stride ldc) (+)= A . B, the f32 GEMM on validated operands. */
MIPS_INLINE void att_gemm(const float* a, int64_t as0, int64_t as1, const float* b, int64_t bs0,
                          int64_t bs1, float* c, int64_t ldc, int64_t m, int64_t n, int64_t k,
                          int accumulate, const mips_scratch* ws) {
  mips_matmul_f32_params g = {a, 0, as0, as1, b, 0, bs0, bs1, c, 0, ldc, 1, m, n, k, accumulate};
  mips_matmul_f32_run_ws(&g, mips_best_isa(), ws);
}

/* The maximum and the sum of x[0, n), in ATT_LANES partial results (a float
 * reduction the compiler vectorizes only when the order is written out). */
#define ATT_LANES 16

MIPS_INLINE float att_row_max(const float* x, int64_t n) {
  float lane[ATT_LANES];
  for (int l = 0; l < ATT_LANES; ++l) lane[l] = -__builtin_inff();
  int64_t j = 0;
  for (; j + ATT_LANES <= n; j += ATT_LANES)
    for (int l = 0; l < ATT_LANES; ++l) lane[l] = EPI_GT(x[j + l], lane[l]) ? x[j + l] : lane[l];
  float top = -__builtin_inff();
  for (int l = 0; l < ATT_LANES; ++l) top = EPI_GT(lane[l], top) ? lane[l] : top;
  for (; j < n; ++j) top = EPI_GT(x[j], top) ? x[j] : top;
  return top;
}

MIPS_INLINE float att_row_sum(const float* x, int64_t n) {
  float lane[ATT_LANES] = {0.0f};
  int64_t j = 0;
  for (; j + ATT_LANES <= n; j += ATT_LANES)
    for (int l = 0; l < ATT_LANES; ++l) lane[l] += x[j + l];
  float sum = 0.0f;
  for (int l = 0; l < ATT_LANES; ++l) sum += lane[l];
  for (; j < n; ++j) sum += x[j];
  return sum;
}

/* Row r of a chunk: scale, mask, causal cut, exponentiate against the new
 * running maximum; returns the factor that rescales the row's old O and sum. */
MIPS_INLINE float att_softmax_row(const att_params* p, float* x, int64_t r, int64_t j0,
                                  int64_t cols, float* rmax, float* rsum, int kind) {
  int64_t seen = att_visible(p, r) - j0;
  seen = seen < 0 ? 0 : (seen > cols ? cols : seen);
  const float scale = p->scale;
  if (p->has_mask) {
    const int64_t at = p->mask_offset + r * p->mask_stride0 + j0 * p->mask_stride1;
    for (int64_t j = 0; j < seen; ++j)
      x[j] = x[j] * scale + mips_load_f32(p->mask, at + j * p->mask_stride1, kind);
  } else {
    for (int64_t j = 0; j < seen; ++j) x[j] = x[j] * scale;
  }
  const float top = att_row_max(x, seen);
  const float old = *rmax, now = EPI_GT(top, old) ? top : old;
  if (now == -__builtin_inff()) { /* nothing visible yet: P = 0 */
    for (int64_t j = 0; j < cols; ++j) x[j] = 0.0f;
    return 1.0f;
  }
  for (int64_t j = 0; j < seen; ++j) x[j] = epi_exp(x[j] - now);
  const float sum = att_row_sum(x, seen);
  for (int64_t j = seen; j < cols; ++j) x[j] = 0.0f;
  const float alpha = epi_exp(old - now); /* old = -inf: 0 */
  *rmax = now;
  *rsum = *rsum * alpha + sum;
  return alpha;
}

/* O rows [i0, i0 + mb) = acc / sum, rounded once to T; a row that saw no
 * key (all masked) is 0, as torch's _safe_softmax gives. */
MIPS_INLINE void att_store_rows(const att_params* p, const att_buffers* b, int64_t i0, int64_t mb,
                                int kind) {
  for (int64_t r = 0; r < mb; ++r) {
    const float sum = b->rsum[r], inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    const int64_t at = p->o_offset + (i0 + r) * p->o_stride0;
    for (int64_t c = 0; c < p->ev; ++c)
      mips_store_f32(p->o, at + c * p->o_stride1, b->acc[r * p->ev + c] * inv, kind);
  }
}

/* One block of query rows [i0, i0 + mb) against every visible chunk of keys. */
MIPS_INLINE void att_block(const att_params* p, const att_buffers* b, int64_t i0, int64_t mb,
                           const mips_scratch* ws, int kind) {
  const float *q = (const float*)p->q, *k = (const float*)p->k, *v = (const float*)p->v;
  int64_t qo = p->q_offset + i0 * p->q_stride0, qs0 = p->q_stride0, qs1 = p->q_stride1;
  if (kind != MM_KIND_F32) {
    att_widen(b->qf, p->q, qo, qs0, qs1, mb, p->e, kind);
    q = b->qf, qo = 0, qs0 = p->e, qs1 = 1;
  }
  for (int64_t r = 0; r < mb; ++r) b->rmax[r] = -__builtin_inff(), b->rsum[r] = 0.0f;
  const int64_t keys = att_visible(p, i0 + mb - 1); /* the block's last row sees the most */
  for (int64_t j0 = 0; j0 < keys; j0 += b->nb) {
    const int64_t cols = keys - j0 < b->nb ? keys - j0 : b->nb;
    const float *kc = k + p->k_offset + j0 * p->k_stride0, *vc = v + p->v_offset + j0 * p->v_stride0;
    int64_t ks0 = p->k_stride0, ks1 = p->k_stride1, vs0 = p->v_stride0, vs1 = p->v_stride1;
    if (kind != MM_KIND_F32) {
      att_widen(b->kf, p->k, p->k_offset + j0 * ks0, ks0, ks1, cols, p->e, kind);
      att_widen(b->vf, p->v, p->v_offset + j0 * vs0, vs0, vs1, cols, p->ev, kind);
      kc = b->kf, vc = b->vf, ks0 = p->e, ks1 = 1, vs0 = p->ev, vs1 = 1;
    }
    /* S = Q . K^T: B(e, j) = K(j, e). */
    att_gemm(q + qo, qs0, qs1, kc, ks1, ks0, b->s, b->nb, mb, cols, p->e, 0, ws);
    for (int64_t r = 0; r < mb; ++r) {
      const float alpha = att_softmax_row(p, b->s + r * b->nb, i0 + r, j0, cols, &b->rmax[r],
                                          &b->rsum[r], kind);
      if (j0 > 0 && alpha != 1.0f)
        for (int64_t c = 0; c < p->ev; ++c) b->acc[r * p->ev + c] *= alpha;
    }
    att_gemm(b->s, b->nb, 1, vc, vs0, vs1, b->acc, p->ev, mb, p->ev, cols, j0 > 0, ws);
  }
  if (keys <= 0)
    for (int64_t x = 0; x < mb * p->ev; ++x) b->acc[x] = 0.0f;
  att_store_rows(p, b, i0, mb, kind);
}

/* ---- The lanes path (AVX-512): query rows in the vector lanes ----------------
 *
 * Both products of a block run in register tiles of their own, so that K and P
 * are never packed: S^T = K . Q^T broadcasts K's elements from where they lie
 * (any strides) against Q^T (packed once per block, e x MBP, MBP = the rows
 * rounded up to 16: the query rows in the vector lanes), and O += P . V
 * broadcasts P's elements from S^T against the rows of V (read in place when
 * they are contiguous f32 rows of a multiple of 16, else widened / copied per
 * chunk to rows of EVP = ev rounded up to 16).  The softmax runs down the keys
 * with a row per lane (no horizontal reductions).  The GEMM path re-packed Q,
 * K, P and V (K = 64) on every call of its two products per block. */
#define ATT_LANE 16 /* f32 lanes of a zmm: query rows per vector */
#define ATT_TA 12   /* rows of X per register tile (keys, or query rows): 24 zmm with 2 vectors */
/* Keys per chunk at most on the lanes path: S^T (ATT_LANES_NB x 64 rows) stays in L2. */
#ifndef ATT_LANES_NB
#define ATT_LANES_NB 256
#endif
/* Fewest rows a block takes the lanes path with (below, most lanes would idle). */
#define ATT_LANES_MIN_ROWS 16

#if defined(__x86_64__)
#define ATT_LANES_TARGET __attribute__((target("avx512f,avx2,fma,f16c")))

/* C[a][0, 16 RV) (+)= sum_t X(a, t) . Y[t][0, 16 RV) for a < TA, X(a, t) =
 * x[a xa + t xt] broadcast, Y rows of ldy floats (the register tile); with
 * `top`, top[0, 16 RV) = max(top, the C rows stored) lane by lane (a NaN of C
 * left out, as att_row_max). */
MIPS_INLINE ATT_LANES_TARGET void att_lanes_tile(const int ta, const int rv, const float* x,
                                                 int64_t xa, int64_t xt, const float* y,
                                                 int64_t ldy, int64_t depth, float* c,
                                                 int64_t ldc, int accumulate, float* top) {
  __m512 acc[ATT_TA][2];
  for (int a = 0; a < ta; ++a)
    for (int v = 0; v < rv; ++v)
      acc[a][v] = accumulate ? _mm512_loadu_ps(c + a * ldc + v * ATT_LANE) : _mm512_setzero_ps();
  for (int64_t t = 0; t < depth; ++t) {
    const __m512 y0 = _mm512_loadu_ps(y + t * ldy);
    const __m512 y1 = rv > 1 ? _mm512_loadu_ps(y + t * ldy + ATT_LANE) : y0;
    const float* xt_row = x + t * xt;
    for (int a = 0; a < ta; ++a) {
      const __m512 b = _mm512_set1_ps(xt_row[a * xa]);
      acc[a][0] = _mm512_fmadd_ps(b, y0, acc[a][0]);
      if (rv > 1) acc[a][1] = _mm512_fmadd_ps(b, y1, acc[a][1]);
    }
  }
  for (int a = 0; a < ta; ++a)
    for (int v = 0; v < rv; ++v) _mm512_storeu_ps(c + a * ldc + v * ATT_LANE, acc[a][v]);
  if (top != NULL)
    for (int v = 0; v < rv; ++v) {
      __m512 most = _mm512_loadu_ps(top + v * ATT_LANE);
      for (int a = 0; a < ta; ++a) most = _mm512_max_ps(acc[a][v], most); /* NaN: most */
      _mm512_storeu_ps(top + v * ATT_LANE, most);
    }
}

/* C (na rows of nv vectors, row stride ldc) (+)= X . Y: the register tiles
 * over it, 12 rows of X at a time, then 4, then 1; with `top` (nv vectors),
 * also the maximum of each lane over C's rows, into top. */
static ATT_LANES_TARGET void att_lanes_product(const float* x, int64_t xa, int64_t xt,
                                               int64_t na, const float* y, int64_t ldy,
                                               int64_t depth, float* c, int64_t ldc, int64_t nv,
                                               int accumulate, float* top) {
  for (int64_t v0 = 0; v0 < nv; v0 += 2) {
    const float* yv = y + v0 * ATT_LANE;
    float* cv = c + v0 * ATT_LANE;
    float* tv = top != NULL ? top + v0 * ATT_LANE : NULL;
    int64_t a = 0;
#define ATT_TILES(TA, RV)            \
  for (; a + (TA) <= na; a += (TA)) \
    att_lanes_tile(TA, RV, x + a * xa, xa, xt, yv, ldy, depth, cv + a * ldc, ldc, accumulate, tv)
    if (nv - v0 >= 2) {
      ATT_TILES(ATT_TA, 2);
      ATT_TILES(4, 2);
      ATT_TILES(1, 2);
    } else {
      ATT_TILES(ATT_TA, 1);
      ATT_TILES(4, 1);
      ATT_TILES(1, 1);
    }
#undef ATT_TILES
  }
}
/* dst[l][0, 16) = src[0, 16)[l] for l < 16 (a 16 x 16 transpose of floats, row
 * strides lds and ldd), times `scale`; with `add`, added to dst instead. */
static ATT_LANES_TARGET void att_transpose16(const float* src, int64_t lds, float* dst,
                                             int64_t ldd, float scale, int add) {
  const __m512 k = _mm512_set1_ps(scale);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_mul_ps(_mm512_loadu_ps(src + i * lds), k);
  for (int i = 0; i < 16; i += 2) { /* pairs of rows interleaved */
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#define ATT_PD(x) _mm512_castps_pd(x)
  for (int i = 0; i < 16; i += 4) { /* then pairs of 64-bit elements */
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(ATT_PD(t[i]), ATT_PD(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(ATT_PD(t[i]), ATT_PD(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(ATT_PD(t[i + 1]), ATT_PD(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(ATT_PD(t[i + 1]), ATT_PD(t[i + 3])));
  }
#undef ATT_PD
  for (int h = 0; h < 16; h += 8) /* then 128-bit lanes, twice */
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  for (int i = 0; i < 16; ++i) {
    if (add) r[i] = _mm512_add_ps(_mm512_loadu_ps(dst + i * ldd), r[i]);
    _mm512_storeu_ps(dst + i * ldd, r[i]);
  }
}

#define ATT_HAS_LANES 1
#else
#define ATT_HAS_LANES 0
#endif

/* The buffers of one block on the lanes path (in the workspace, f32): Q^T and
 * S^T / P^T (rows of MBP), O (rows of EVP), the per-row state, K widened from
 * f16/bf16 and V widened or copied chunk by chunk. */
typedef struct {
  float *qt, *s, *acc, *rmax, *rsum, *top, *sub, *alpha, *kf, *vf;
  int64_t mb, nb;
} att_lanes_buffers;

static int64_t att_lanes_bytes(const att_params* p, int64_t mb, int64_t nb, int kind) {
  const int64_t mbp = (mb + ATT_LANE - 1) / ATT_LANE * ATT_LANE;
  const int64_t evp = (p->ev + ATT_LANE - 1) / ATT_LANE * ATT_LANE;
  int64_t floats = mbp * (p->e + nb + evp + 6) + nb * evp;
  if (kind != MM_KIND_F32) floats += nb * p->e;
  return floats * 4 + 10 * 64;
}

/* Blocks of at most ATT_MB rows by ATT_LANES_NB keys, shrinking NB then MB (not
 * below ATT_LANES_MIN_ROWS) to fit the workspace; 1 when they do not. */
static int att_lanes_layout(const att_params* p, const mips_scratch* ws, int kind,
                            att_lanes_buffers* b) {
  int64_t mb = p->m < ATT_MB ? p->m : ATT_MB, nb = p->n < ATT_LANES_NB ? p->n : ATT_LANES_NB;
  nb = nb < 1 ? 1 : nb;
  const int64_t budget = (int64_t)ws->bytes;
  while (att_lanes_bytes(p, mb, nb, kind) > budget && nb > 16) nb /= 2;
  while (att_lanes_bytes(p, mb, nb, kind) > budget && mb / 2 >= ATT_LANES_MIN_ROWS) mb /= 2;
  if (ws->base == NULL || mb < ATT_LANES_MIN_ROWS || att_lanes_bytes(p, mb, nb, kind) > budget)
    return 1;
  const int64_t mbp = (mb + ATT_LANE - 1) / ATT_LANE * ATT_LANE;
  char* at = (char*)ws->base;
  b->qt = att_carve(&at, p->e * mbp);
  b->s = att_carve(&at, nb * mbp);
  const int64_t evp = (p->ev + ATT_LANE - 1) / ATT_LANE * ATT_LANE;
  b->acc = att_carve(&at, mbp * evp);
  b->rmax = att_carve(&at, mbp);
  b->rsum = att_carve(&at, mbp);
  b->top = att_carve(&at, mbp);
  b->sub = att_carve(&at, mbp);
  b->alpha = att_carve(&at, mbp);
  b->kf = kind != MM_KIND_F32 ? att_carve(&at, nb * p->e) : NULL;
  b->vf = att_carve(&at, nb * evp);
  b->mb = mb;
  b->nb = nb;
  return 0;
}

/* e^x for x <= 0 (a score minus its row's maximum), -inf or NaN (stays NaN):
 * epi_exp's polynomial with one scale factor; x < -87 gives 0 (e^x below
 * FLT_MIN, nothing next to the row's largest term, e^0 = 1). */
MIPS_INLINE float att_exp(float x) {
  const int tiny = EPI_LT(x, -87.0f);
  const float xc = tiny ? -87.0f : (EPI_NAN(x) ? 0.0f : x);
  float n;
  const float y = epi_exp_reduced(epi_exp_split(xc, &n)) * epi_pow2(n);
  return tiny ? 0.0f : (EPI_NAN(x) ? x : y);
}

/* S^T (cols keys x mbp lanes) += the mask's [i0, i0 + mb) x [j0, j0 + cols):
 * a row broadcast to every row key by key, f32 rows of unit stride in 16 x 16
 * transposes, the rest element by element (the mask's rows read in order). */
MIPS_INLINE void att_lanes_add_mask(const att_params* p, float* s, int64_t i0, int64_t mb,
                                    int64_t mbp, int64_t j0, int64_t cols, int kind) {
  const int64_t at = p->mask_offset + i0 * p->mask_stride0 + j0 * p->mask_stride1;
  if (p->mask_stride0 == 0) {
    for (int64_t j = 0; j < cols; ++j) {
      const float add = mips_load_f32(p->mask, at + j * p->mask_stride1, kind);
      for (int64_t r = 0; r < mbp; ++r) s[j * mbp + r] += add;
    }
    return;
  }
  int64_t rows = 0, keys = 0; /* the part done by transposes */
#if ATT_HAS_LANES
  if (kind == MM_KIND_F32 && p->mask_stride1 == 1) {
    rows = mb / ATT_LANE * ATT_LANE, keys = cols / ATT_LANE * ATT_LANE;
    for (int64_t r = 0; r < rows; r += ATT_LANE)
      for (int64_t j = 0; j < keys; j += ATT_LANE)
        att_transpose16((const float*)p->mask + at + r * p->mask_stride0 + j, p->mask_stride0,
                        s + j * mbp + r, mbp, 1.0f, 1);
  }
#endif
  for (int64_t r = 0; r < mb; ++r) {
    const int64_t at_r = at + r * p->mask_stride0;
    for (int64_t j = r < rows ? keys : 0; j < cols; ++j)
      s[j * mbp + r] += mips_load_f32(p->mask, at_r + j * p->mask_stride1, kind);
  }
}

/* S^T (cols keys x mbp lanes; Q was scaled) -> P^T for the block's rows [i0,
 * i0 + mb): mask, causal cut, the running maximum and sum per lane; alpha[r]
 * rescales row r's old O (1 while the row has seen nothing).  top holds the
 * chunk's maximum per lane when `have_top` (the product took it). */
MIPS_INLINE void att_lanes_softmax(const att_params* p, const att_lanes_buffers* b, int64_t i0,
                                   int64_t mb, int64_t mbp, int64_t j0, int64_t cols,
                                   int have_top, int kind) {
  if (p->has_mask) att_lanes_add_mask(p, b->s, i0, mb, mbp, j0, cols, kind);
  float* s = b->s;
  if (!have_top) {
    for (int64_t r = 0; r < mbp; ++r) b->top[r] = -__builtin_inff();
    for (int64_t j = 0; j < cols; ++j) {
      float* x = s + j * mbp;
      if (p->causal_row0 >= 0) { /* lane r sees key j0 + j when r >= hidden */
        const int64_t hidden = j0 + j - p->causal_row0 - i0;
        for (int64_t r = 0; r < mbp; ++r) x[r] = r < hidden ? -__builtin_inff() : x[r];
      }
      for (int64_t r = 0; r < mbp; ++r) b->top[r] = EPI_GT(x[r], b->top[r]) ? x[r] : b->top[r];
    }
  }
  for (int64_t r = 0; r < mbp; ++r) {
    const float old = b->rmax[r], now = EPI_GT(b->top[r], old) ? b->top[r] : old;
    const int dead = now == -__builtin_inff(); /* nothing visible yet: P = e^-inf = 0 */
    b->sub[r] = dead ? 0.0f : now;
    b->alpha[r] = dead ? 1.0f : att_exp(old - now); /* old = -inf: 0 */
    b->rmax[r] = now;
    b->top[r] = 0.0f; /* now the chunk's sum */
  }
  for (int64_t j = 0; j < cols; ++j) {
    float* x = s + j * mbp;
    for (int64_t r = 0; r < mbp; ++r) {
      x[r] = att_exp(x[r] - b->sub[r]);
      b->top[r] += x[r];
    }
  }
  for (int64_t r = 0; r < mbp; ++r) b->rsum[r] = b->rsum[r] * b->alpha[r] + b->top[r];
}

/* Q^T (e x mbp) of the block's rows times the scale, 0 in the lanes past mb:
 * f32 rows in 16 x 16 transposes, the rest element by element. */
MIPS_INLINE void att_lanes_pack_q(const att_params* p, const att_lanes_buffers* b, int64_t i0,
                                  int64_t mb, int64_t mbp, int kind) {
  const int64_t at = p->q_offset + i0 * p->q_stride0;
  int64_t rows = 0, cols = 0; /* the part done by transposes */
#if ATT_HAS_LANES
  if (kind == MM_KIND_F32 && p->q_stride1 == 1) {
    rows = mb / ATT_LANE * ATT_LANE, cols = p->e / ATT_LANE * ATT_LANE;
    for (int64_t r = 0; r < rows; r += ATT_LANE)
      for (int64_t x = 0; x < cols; x += ATT_LANE)
        att_transpose16((const float*)p->q + at + r * p->q_stride0 + x, p->q_stride0,
                        b->qt + x * mbp + r, mbp, p->scale, 0);
  }
#endif
  for (int64_t x = 0; x < p->e; ++x) { /* stores in order, loads by strides */
    float* row = b->qt + x * mbp;
    for (int64_t r = x < cols ? rows : 0; r < mb; ++r)
      row[r] = mips_load_f32(p->q, at + r * p->q_stride0 + x * p->q_stride1, kind) * p->scale;
    for (int64_t r = mb; r < mbp; ++r) row[r] = 0.0f;
  }
}

/* O rows [i0, i0 + mb) = acc / sum, rounded once to T. */
MIPS_INLINE void att_lanes_store(const att_params* p, const att_lanes_buffers* b, int64_t i0,
                                 int64_t mb, int64_t evp, int kind) {
  for (int64_t r = 0; r < mb; ++r) {
    const float sum = b->rsum[r], inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    const int64_t at = p->o_offset + (i0 + r) * p->o_stride0;
    const float* row = b->acc + r * evp;
    if (kind == MM_KIND_F32 && p->o_stride1 == 1) {
      float* o = (float*)p->o + at;
      for (int64_t c = 0; c < p->ev; ++c) o[c] = row[c] * inv;
    } else {
      for (int64_t c = 0; c < p->ev; ++c)
        mips_store_f32(p->o, at + c * p->o_stride1, row[c] * inv, kind);
    }
  }
}

/* dst (rows x ldd, columns past cols 0) = the strided matrix at base, widened. */
MIPS_INLINE void att_widen_padded(float* dst, int64_t ldd, const void* base, int64_t at,
                                  int64_t s0, int64_t s1, int64_t rows, int64_t cols, int kind) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j)
      dst[i * ldd + j] = mips_load_f32(base, at + i * s0 + j * s1, kind);
    for (int64_t j = cols; j < ldd; ++j) dst[i * ldd + j] = 0.0f;
  }
}

#if ATT_HAS_LANES
/* One block of query rows [i0, i0 + mb) against every visible chunk of keys. */
MIPS_INLINE void att_lanes_block(const att_params* p, const att_lanes_buffers* b, int64_t i0,
                                 int64_t mb, int kind) {
  const int64_t mbp = (mb + ATT_LANE - 1) / ATT_LANE * ATT_LANE, nv = mbp / ATT_LANE;
  const int64_t evp = (p->ev + ATT_LANE - 1) / ATT_LANE * ATT_LANE;
  /* V's rows read in place: contiguous f32 rows of whole vectors */
  const int v_in_place = kind == MM_KIND_F32 && p->v_stride1 == 1 && evp == p->ev;
  att_lanes_pack_q(p, b, i0, mb, mbp, kind);
  for (int64_t r = 0; r < mbp; ++r) b->rmax[r] = -__builtin_inff(), b->rsum[r] = 0.0f;
  const int64_t keys = att_visible(p, i0 + mb - 1); /* the block's last row sees the most */
  for (int64_t j0 = 0; j0 < keys; j0 += b->nb) {
    const int64_t cols = keys - j0 < b->nb ? keys - j0 : b->nb;
    const float* kc = (const float*)p->k + p->k_offset + j0 * p->k_stride0;
    const float* vc = (const float*)p->v + p->v_offset + j0 * p->v_stride0;
    int64_t ks0 = p->k_stride0, ks1 = p->k_stride1, ldv = p->v_stride0;
    if (kind != MM_KIND_F32) {
      att_widen(b->kf, p->k, p->k_offset + j0 * ks0, ks0, ks1, cols, p->e, kind);
      kc = b->kf, ks0 = p->e, ks1 = 1;
    }
    if (!v_in_place) {
      att_widen_padded(b->vf, evp, p->v, p->v_offset + j0 * p->v_stride0, p->v_stride0,
                       p->v_stride1, cols, p->ev, kind);
      vc = b->vf, ldv = evp;
    }
    /* S^T = K . Q^T: X(key, d) = K(key, d), the query rows in the lanes. */
    /* no mask, and no causal cut in this chunk: the scores go to the softmax as they are */
    const int have_top =
        !p->has_mask && (p->causal_row0 < 0 || j0 + cols - 1 <= p->causal_row0 + i0);
    for (int64_t r = 0; r < mbp; ++r) b->top[r] = -__builtin_inff();
    att_lanes_product(kc, ks0, ks1, cols, b->qt, mbp, p->e, b->s, mbp, nv, 0,
                      have_top ? b->top : NULL);
    att_lanes_softmax(p, b, i0, mb, mbp, j0, cols, have_top, kind);
    if (j0 > 0)
      for (int64_t r = 0; r < mb; ++r)
        for (int64_t c = 0; c < evp; ++c) b->acc[r * evp + c] *= b->alpha[r];
    /* O += P . V: X(row, key) = P^T(key, row), V's columns in the lanes. */
    att_lanes_product(b->s, 1, mbp, mb, vc, ldv, cols, b->acc, evp, evp / ATT_LANE, j0 > 0,
                      NULL);
  }
  if (keys <= 0)
    for (int64_t x = 0; x < mb * evp; ++x) b->acc[x] = 0.0f;
  att_lanes_store(p, b, i0, mb, evp, kind);
}
#endif

/* Score of query row r with key j, scaled and masked (the plain path). */
MIPS_INLINE float att_score(const att_params* p, int64_t r, int64_t j, int kind) {
  float dot = 0.0f;
  const int64_t qa = p->q_offset + r * p->q_stride0, ka = p->k_offset + j * p->k_stride0;
  for (int64_t e = 0; e < p->e; ++e)
    dot += mips_load_f32(p->q, qa + e * p->q_stride1, kind) * mips_load_f32(p->k, ka + e * p->k_stride1, kind);
  dot *= p->scale;
  if (p->has_mask) dot += mips_load_f32(p->mask, p->mask_offset + r * p->mask_stride0 + j * p->mask_stride1, kind);
  return dot;
}

/* The rows one by one, with no memory but the stack: the maximum, then per
 * ATT_PLAIN_COLS columns of O the weighted sum of V (the scores recomputed). */
static void att_plain_rows(const att_params* p, int kind) {
  for (int64_t r = 0; r < p->m; ++r) {
    const int64_t seen = att_visible(p, r);
    float top = -__builtin_inff();
    for (int64_t j = 0; j < seen; ++j) {
      const float s = att_score(p, r, j, kind);
      top = s > top ? s : top;
    }
    for (int64_t c0 = 0; c0 < p->ev; c0 += ATT_PLAIN_COLS) {
      const int64_t cols = p->ev - c0 < ATT_PLAIN_COLS ? p->ev - c0 : ATT_PLAIN_COLS;
      float acc[ATT_PLAIN_COLS] = {0.0f}, sum = 0.0f;
      for (int64_t j = 0; top != -__builtin_inff() && j < seen; ++j) {
        const float w = epi_exp(att_score(p, r, j, kind) - top);
        sum += w;
        const int64_t va = p->v_offset + j * p->v_stride0;
        for (int64_t c = 0; c < cols; ++c) acc[c] += w * mips_load_f32(p->v, va + (c0 + c) * p->v_stride1, kind);
      }
      const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
      const int64_t oa = p->o_offset + r * p->o_stride0;
      for (int64_t c = 0; c < cols; ++c) mips_store_f32(p->o, oa + (c0 + c) * p->o_stride1, acc[c] * inv, kind);
    }
  }
}

/* The tile's rows in blocks of GEMM calls (or one by one: att_plain_rows). */
MIPS_INLINE void att_gemm_tile(const att_params* p, const mips_scratch* ws, int kind) {
  att_buffers b;
  mips_scratch gemm_ws;
  if (att_layout(p, ws, kind, &b, &gemm_ws)) {
    att_plain_rows(p, kind);
    return;
  }
  for (int64_t i0 = 0; i0 < p->m; i0 += b.mb) {
    const int64_t mb = p->m - i0 < b.mb ? p->m - i0 : b.mb;
    att_block(p, &b, i0, mb, &gemm_ws, kind);
  }
}

/* The tile's rows: on the lanes path (`lanes`: an AVX-512 instance) in blocks
 * of ATT_LANES_MIN_ROWS rows or more, the rows left (and every row when the
 * workspace is too small for it) by att_gemm_tile. */
MIPS_INLINE void att_tile(const att_params* p, const mips_scratch* ws, int kind, int lanes) {
  int64_t i0 = 0;
#if ATT_HAS_LANES
  att_lanes_buffers lb;
  if (lanes && !att_lanes_layout(p, ws, kind, &lb)) {
    for (; p->m - i0 >= ATT_LANES_MIN_ROWS; i0 += lb.mb) {
      const int64_t mb = p->m - i0 < lb.mb ? p->m - i0 : lb.mb;
      att_lanes_block(p, &lb, i0, mb, kind);
    }
    if (i0 == p->m) return;
  }
#else
  (void)lanes;
#endif
  att_params rest = *p; /* rows [i0, m) */
  rest.q_offset += i0 * p->q_stride0;
  rest.o_offset += i0 * p->o_stride0;
  rest.mask_offset += p->has_mask ? i0 * p->mask_stride0 : 0;
  rest.causal_row0 = p->causal_row0 < 0 ? -1 : p->causal_row0 + i0;
  rest.m = p->m - i0;
  att_gemm_tile(&rest, ws, kind);
}

/* One instance per instruction set and element kind (the softmax loops are
 * vectorized at that width; the GEMMs take the configuration's path). */
#define ATT_INSTANCES(ISA, TARGET, LANES)                                                     \
  TARGET static void att_tile_##ISA##_f32(const att_params* p, const mips_scratch* ws) { \
    att_tile(p, ws, MM_KIND_F32, LANES);                                                       \
  }                                                                                     \
  TARGET static void att_tile_##ISA##_f16(const att_params* p, const mips_scratch* ws) { \
    att_tile(p, ws, MM_KIND_F16, LANES);                                                       \
  }                                                                                     \
  TARGET static void att_tile_##ISA##_bf16(const att_params* p, const mips_scratch* ws) { \
    att_tile(p, ws, MM_KIND_BF16, LANES);                                                      \
  }

ATT_INSTANCES(generic, , 0)
#if defined(__x86_64__)
ATT_INSTANCES(avx2, __attribute__((target("avx2,fma,f16c"))), 0)
ATT_INSTANCES(avx512, __attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), 1)
#define ATT_ISA_CALL(ISA, T, p, ws) att_tile_##ISA##_##T(p, ws)
#else
#define ATT_ISA_CALL(ISA, T, p, ws) att_tile_generic_##T(p, ws)
#endif

/* 0 when the call is valid (mips_kernels.h, "Attention": errors). */
static int att_check(const att_params* p, int64_t elem_size) {
  if (p == NULL || p->m < 0 || p->n < 0 || p->e < 0 || p->ev < 0) return 1;
  if (p->has_mask != 0 && p->has_mask != 1) return 1;
  if (p->causal_row0 < -1) return 1;
  if (mips_check_operand(p->q, p->q_offset, p->q_stride0, p->q_stride1, p->m, p->e, elem_size))
    return 1;
  if (mips_check_operand(p->k, p->k_offset, p->k_stride0, p->k_stride1, p->n, p->e, elem_size))
    return 1;
  if (mips_check_operand(p->v, p->v_offset, p->v_stride0, p->v_stride1, p->n, p->ev, elem_size))
    return 1;
  const int64_t mask_rows = p->has_mask ? p->m : 0;
  if (mips_check_operand(p->mask, p->mask_offset, p->mask_stride0, p->mask_stride1, mask_rows,
                         p->n, elem_size))
    return 1;
  return mips_check_operand(p->o, p->o_offset, p->o_stride0, p->o_stride1, p->m, p->ev,
                            elem_size);
}

#define ATT_DRIVER(T, KIND)                                                           \
  static int att_run_##T(const att_params* p, const mips_scratch* ws, int isa) {      \
    if (att_check(p, KIND == MM_KIND_F32 ? 4 : 2)) return 1;                          \
    if (p->m == 0 || p->ev == 0) return 0;                                            \
    if (isa == MIPS_ISA_AVX512 || isa == MIPS_ISA_AMX || isa == MIPS_ISA_AVX512BF16)   \
      ATT_ISA_CALL(avx512, T, p, ws);                                                 \
    else if (isa == MIPS_ISA_AVX2)                                                    \
      ATT_ISA_CALL(avx2, T, p, ws);                                                   \
    else                                                                              \
      att_tile_generic_##T(p, ws);                                                    \
    return 0;                                                                         \
  }

/* The plugin's import-ABI entry point: the workspace from the heap (the plain
 * path when that fails). */
#define ATT_IMPORT(T, KERNEL)                                                         \
  MIPS_EXPORT int mips_attention_##T(void* params, void* context, void* reserved) {  \
    (void)context;                                                                    \
    (void)reserved;                                                                   \
    mips_count_call(KERNEL);                                                          \
    void* buffer = aligned_alloc(64, MIPS_ATTENTION_WORKSPACE);                       \
    const mips_scratch ws = mips_scratch_lend(buffer, buffer ? MIPS_ATTENTION_WORKSPACE : 0); \
    const int rc = att_run_##T((const att_params*)params, &ws, mips_config()->isa);   \
    free(buffer);                                                                     \
    return rc;                                                                        \
  }

/* The direct call of the freestanding object: the params as arguments, then
 * the workspace (mips_kernels.h, "Embedded entry points"). */
#define ATT_EMBEDDED(T, ET, KERNEL)                                                        \
  MIPS_EXPORT int mips_attention_##T##_embedded(                                           \
      const ET* q, int64_t q_offset, int64_t q_stride0, int64_t q_stride1, const ET* k,    \
      int64_t k_offset, int64_t k_stride0, int64_t k_stride1, const ET* v, int64_t v_offset, \
      int64_t v_stride0, int64_t v_stride1, const ET* mask, int64_t mask_offset,            \
      int64_t mask_stride0, int64_t mask_stride1, ET* o, int64_t o_offset, int64_t o_stride0, \
      int64_t o_stride1, int64_t m, int64_t n, int64_t e, int64_t ev, int64_t has_mask,     \
      int64_t causal_row0, float scale, void* workspace, int64_t workspace_bytes) {         \
    mips_attention_##T##_params p = {q,           q_offset,    q_stride0,    q_stride1,    \
                                     k,           k_offset,    k_stride0,    k_stride1,    \
                                     v,           v_offset,    v_stride0,    v_stride1,    \
                                     mask,        mask_offset, mask_stride0, mask_stride1, \
                                     o,           o_offset,    o_stride0,    o_stride1,    \
                                     m,           n,           e,            ev,           \
                                     has_mask,    causal_row0, scale};                     \
    mips_count_call(KERNEL);                                                               \
    const mips_scratch ws = mips_scratch_lend(workspace, workspace_bytes);                 \
    return att_run_##T((const att_params*)&p, &ws, mips_config()->isa);                    \
  }

ATT_DRIVER(f32, MM_KIND_F32)
ATT_DRIVER(f16, MM_KIND_F16)
ATT_DRIVER(bf16, MM_KIND_BF16)
ATT_EMBEDDED(f32, float, MIPS_K_ATTENTION_F32)
ATT_EMBEDDED(f16, uint16_t, MIPS_K_ATTENTION_F16)
ATT_EMBEDDED(bf16, uint16_t, MIPS_K_ATTENTION_BF16)
#ifndef MIPS_FREESTANDING
ATT_IMPORT(f32, MIPS_K_ATTENTION_F32)
ATT_IMPORT(f16, MIPS_K_ATTENTION_F16)
ATT_IMPORT(bf16, MIPS_K_ATTENTION_BF16)
#endif
