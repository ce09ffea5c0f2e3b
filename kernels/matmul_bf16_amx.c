/* bf16 matmul on Intel AMX (AMX-TILE + AMX-BF16).
 *
 * One TDPBF16PS multiplies a 16 x 32 bf16 tile of A by a 32 x 16 bf16 tile of
 * B (stored as 16 rows of 16 (k, k+1) pairs, "VNNI" order) into a 16 x 16 f32
 * tile of C: 16K flops per instruction, ~15x the f32 FMA rate of AVX-512 on a
 * core that has it.  The blocking is the GotoBLAS one of matmul_gemm.inc with
 * AMX's register tile:
 *
 *   for i0 in m, step MW             (row chunks, so that W stays bounded)
 *    for jc in n, step NC            (B panel)
 *     for pc in k, step KC           (k blocks of nearly equal size <= KC)
 *       pack B[pc:+kc, jc:+nc] -> Bp (16-column slivers, VNNI pairs)
 *       for ic in m, step MC         (A block)
 *         pack A[ic:+mc, pc:+kc] -> Ap (16-row slivers, 32-k chunks)
 *         for jr in nc, step 32; for ir in mc, step 32:
 *           4 C tiles (32 x 32 of C) += A tiles x B tiles over the k block
 *
 * Tiles: 0-3 hold C, 4-5 A (two 16-row slivers), 6-7 B (two 16-column
 * slivers); every tile is 16 rows x 64 bytes.  Packed chunks are 16 rows x 64
 * bytes (1 KiB), contiguous, so each tile load reads one chunk.  Edges are
 * zero-padded (rows, columns to multiples of 32, k to a multiple of 32):
 * padding adds zero products and is never stored.
 *
 * C tiles stay in tile registers for a whole k block; with several k blocks
 * the f32 partial sums go to a workspace W between blocks, and only the last
 * block adds the old C (accumulate) and rounds to bf16 once, as the contract
 * says.  AMX reads bf16 subnormals as zero and flushes subnormal f32 sums.
 */
#define _GNU_SOURCE /* syscall() */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mips_amx.h"
#include "mips_internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

enum {
  AMX_KC = 512, /* k per block: a pair of B slivers is 32 KiB (L1) */
  AMX_MC = 128, /* rows of the packed A block: 128 KiB (L2) */
  AMX_NC = 256, /* columns of the packed B panel: 256 KiB (L2) */
  AMX_MW = 1024 /* rows of C per chunk when k needs several blocks (W: 1 MiB) */
};

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
  const char* off = getenv("MIPSC_DISABLE_AMX");
  if (off != NULL && off[0] != '\0' && strcmp(off, "0") != 0) return;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return; /* OSXSAVE */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
  const int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
  const int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1;
  if (!amx_bf16 || !amx_tile || !avx512f || !avx512bw) return;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const unsigned tile_state = (1u << 17) | (1u << 18); /* XTILECFG, XTILEDATA */
  const unsigned avx512_state = 0xe0u | 0x6u;          /* opmask, ZMM, YMM, SSE */
  if ((lo & tile_state) != tile_state || (lo & avx512_state) != avx512_state) return;
  /* Linux hands out the tile state only to processes that ask for it. */
  if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return;
  amx_ok = 1;
}

int mips_bf16_amx_usable(void) {
  pthread_once(&amx_once, amx_probe);
  return amx_ok;
}

typedef struct {
  uint8_t palette_id, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_config;

#define AMX_TARGET \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))

static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* A[0:mc, 0:kc] (strides as0, as1) -> ap: sliver s (16 rows), chunk c (32 k)
 * at ap + (s * kcp / 32 + c) * 512, row-major 16 x 32 within; zero-padded to
 * mcp rows and kcp columns. */
AMX_TARGET static void amx_pack_a(uint16_t* restrict ap,
                                  const uint16_t* restrict a, int64_t as0,
                                  int64_t as1, int64_t mc, int64_t kc,
                                  int64_t mcp, int64_t kcp) {
  const int64_t chunks = kcp / 32;
  for (int64_t s = 0; s < mcp / 16; ++s) {
    for (int64_t c = 0; c < chunks; ++c) {
      uint16_t* d = ap + (s * chunks + c) * 512;
      const int64_t k0 = c * 32, kn = kc - k0 < 32 ? kc - k0 : 32;
      const __mmask32 mask = kn >= 32 ? 0xffffffffu : (1u << kn) - 1u;
      for (int r = 0; r < 16; ++r) {
        const int64_t i = s * 16 + r;
        uint16_t* dr = d + r * 32;
        if (i >= mc) {
          _mm512_storeu_si512(dr, _mm512_setzero_si512());
        } else if (as1 == 1) {
          _mm512_storeu_si512(dr, _mm512_maskz_loadu_epi16(mask, a + i * as0 + k0));
        } else {
          const uint16_t* src = a + i * as0 + k0 * as1;
          int64_t q = 0;
          for (; q < kn; ++q) dr[q] = src[q * as1];
          for (; q < 32; ++q) dr[q] = 0;
        }
      }
    }
  }
}

/* B[0:kc, 0:nc] (strides bs0, bs1) -> bp: sliver t (16 columns), chunk c (32
 * k) at bp + (t * kcp / 32 + c) * 512, as 16 rows (k pairs) x 16 columns x 2
 * (k, k+1); zero-padded to kcp rows and ncp columns. */
AMX_TARGET static void amx_pack_b(uint16_t* restrict bp,
                                  const uint16_t* restrict b, int64_t bs0,
                                  int64_t bs1, int64_t kc, int64_t nc,
                                  int64_t kcp, int64_t ncp) {
  const int64_t chunks = kcp / 32;
  /* interleave two rows of 16: out[2j] = lo[j], out[2j + 1] = hi[j] */
  __m512i pairs;
  {
    uint16_t idx[32];
    for (int j = 0; j < 16; ++j) {
      idx[2 * j] = (uint16_t)j;
      idx[2 * j + 1] = (uint16_t)(32 + j);
    }
    pairs = _mm512_loadu_si512(idx);
  }
  for (int64_t t = 0; t < ncp / 16; ++t) {
    const int64_t j0 = t * 16;
    const int64_t jn = nc - j0 <= 0 ? 0 : (nc - j0 < 16 ? nc - j0 : 16);
    const __mmask16 cols = jn >= 16 ? 0xffffu : (__mmask16)((1u << jn) - 1u);
    for (int64_t c = 0; c < chunks; ++c) {
      uint16_t* d = bp + (t * chunks + c) * 512;
      for (int p = 0; p < 16; ++p) {
        const int64_t q = c * 32 + 2 * p; /* rows q and q + 1 of B */
        uint16_t* dp = d + p * 32;
        if (jn == 0 || q >= kc) {
          _mm512_storeu_si512(dp, _mm512_setzero_si512());
        } else if (bs1 == 1) {
          const __m256i r0 = _mm256_maskz_loadu_epi16(cols, b + q * bs0 + j0);
          const __m256i r1 = q + 1 < kc
                                 ? _mm256_maskz_loadu_epi16(cols, b + (q + 1) * bs0 + j0)
                                 : _mm256_setzero_si256();
          _mm512_storeu_si512(dp, _mm512_permutex2var_epi16(_mm512_castsi256_si512(r0), pairs,
                                                            _mm512_castsi256_si512(r1)));
        } else {
          for (int j = 0; j < 16; ++j) {
            const int ok = j < jn;
            const uint16_t* src = b + q * bs0 + (j0 + j) * bs1;
            dp[2 * j] = ok ? src[0] : 0;
            dp[2 * j + 1] = ok && q + 1 < kc ? src[bs0] : 0;
          }
        }
      }
    }
  }
}

/* Rounds 16 f32 to bf16 (nearest even, NaN stays quiet NaN), as
 * mips_f32_to_bf16 does one at a time. */
AMX_TARGET static __m256i amx_round_bf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

/* Row r of a finished 16 x 16 f32 tile (x) -> C's row (cols valid), adding
 * the old C first when accumulating. */
AMX_TARGET static void amx_store_row(uint16_t* crow, int64_t cs1, const float* x,
                                     int cols, int accumulate) {
  if (cs1 == 1) {
    const __mmask16 mask = cols >= 16 ? 0xffffu : (__mmask16)((1u << cols) - 1u);
    __m512 v = _mm512_loadu_ps(x);
    if (accumulate) {
      const __m256i old = _mm256_maskz_loadu_epi16(mask, crow);
      v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(old), 16)));
    }
    _mm256_mask_storeu_epi16(crow, mask, amx_round_bf16(v));
    return;
  }
  for (int j = 0; j < cols; ++j) {
    float v = x[j];
    if (accumulate) v += mips_bf16_to_f32(crow[j * cs1]);
    crow[j * cs1] = mips_f32_to_bf16(v);
  }
}

typedef struct {
  uint16_t* c; /* C at the block's (0, 0) */
  int64_t cs0, cs1;
  int64_t mc, nc; /* valid rows and columns of the block */
  float* w;       /* W at the block's (0, 0), row stride ldw */
  int64_t ldw;
  int first, last, accumulate;
} amx_out;

/* The 32 x 32 blocks of an mcp x ncp block of C over one k block. */
AMX_TARGET static void amx_compute(const uint16_t* ap, const uint16_t* bp, int64_t kcp,
                                   int64_t mcp, int64_t ncp, const amx_out* o) {
  const int64_t chunks = kcp / 32;
  float tile[16 * 16] __attribute__((aligned(64)));
  for (int64_t jr = 0; jr < ncp; jr += 32) {
    const uint16_t* b0 = bp + (jr / 16) * chunks * 512;
    const uint16_t* b1 = b0 + chunks * 512;
    for (int64_t ir = 0; ir < mcp; ir += 32) {
      const uint16_t* a0 = ap + (ir / 16) * chunks * 512;
      const uint16_t* a1 = a0 + chunks * 512;
      float* w = o->w + ir * o->ldw + jr;
      const size_t ldw = (size_t)o->ldw * sizeof(float);
      if (o->first) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      } else {
        _tile_loadd(0, w, ldw);
        _tile_loadd(1, w + 16, ldw);
        _tile_loadd(2, w + 16 * o->ldw, ldw);
        _tile_loadd(3, w + 16 * o->ldw + 16, ldw);
      }
      for (int64_t c = 0; c < chunks; ++c) {
        _tile_loadd(4, a0 + c * 512, 64);
        _tile_loadd(6, b0 + c * 512, 64);
        _tile_loadd(7, b1 + c * 512, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a1 + c * 512, 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      if (!o->last) {
        _tile_stored(0, w, ldw);
        _tile_stored(1, w + 16, ldw);
        _tile_stored(2, w + 16 * o->ldw, ldw);
        _tile_stored(3, w + 16 * o->ldw + 16, ldw);
        continue;
      }
      for (int q = 0; q < 4; ++q) {
        const int64_t i0 = ir + (q / 2) * 16, j0 = jr + (q % 2) * 16;
        if (i0 >= o->mc || j0 >= o->nc) continue;
        switch (q) { /* tile numbers must be constants */
          case 0: _tile_stored(0, tile, 64); break;
          case 1: _tile_stored(1, tile, 64); break;
          case 2: _tile_stored(2, tile, 64); break;
          default: _tile_stored(3, tile, 64); break;
        }
        const int rows = o->mc - i0 < 16 ? (int)(o->mc - i0) : 16;
        const int cols = o->nc - j0 < 16 ? (int)(o->nc - j0) : 16;
        for (int r = 0; r < rows; ++r) {
          amx_store_row(o->c + (i0 + r) * o->cs0 + j0 * o->cs1, o->cs1, tile + r * 16, cols,
                        o->accumulate);
        }
      }
    }
  }
}

AMX_TARGET int mips_bf16_amx_gemm(const mips_matmul_bf16_params* p) {
  const int64_t m = p->m, n = p->n, k = p->k;
  const uint16_t* a = p->a + p->a_offset;
  const uint16_t* b = p->b + p->b_offset;
  uint16_t* c = p->c + p->c_offset;
  /* k in nkb blocks of nearly equal size, multiples of 32 but the last */
  const int64_t nkb = (k + AMX_KC - 1) / AMX_KC;
  const int64_t kcb = round_up((k + nkb - 1) / nkb, 32);
  const int use_w = nkb > 1;
  const int64_t mw = use_w && m > AMX_MW ? AMX_MW : m;
  const int64_t nc_max = round_up(n < AMX_NC ? n : AMX_NC, 32);
  const int64_t mc_max = round_up(m < AMX_MC ? m : AMX_MC, 32);
  const size_t nb = (size_t)(kcb * nc_max), na = (size_t)(mc_max * kcb);
  const size_t nw = use_w ? (size_t)(round_up(mw, 32) * nc_max) : 0;
  const size_t bytes = ((nb + na) * sizeof(uint16_t) + nw * sizeof(float) + 63) / 64 * 64;
  uint16_t* buf = (uint16_t*)aligned_alloc(64, bytes + 64);
  if (buf == NULL) return -1;
  uint16_t* bpk = buf;
  uint16_t* apk = bpk + nb;
  float* w = (float*)(((uintptr_t)(apk + na) + 63) / 64 * 64);

  amx_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);

  amx_out o;
  o.cs0 = p->c_stride0;
  o.cs1 = p->c_stride1;
  o.ldw = nc_max;
  o.accumulate = p->accumulate != 0;
  o.w = w;
  for (int64_t i0 = 0; i0 < m; i0 += mw) {
    const int64_t i1 = m - i0 < mw ? m : i0 + mw;
    for (int64_t jc = 0; jc < n; jc += nc_max) {
      const int64_t nc = n - jc < nc_max ? n - jc : nc_max;
      const int64_t ncp = round_up(nc, 32);
      for (int64_t pc = 0; pc < k; pc += kcb) {
        const int64_t kc = k - pc < kcb ? k - pc : kcb;
        const int64_t kcp = round_up(kc, 32);
        o.first = pc == 0;
        o.last = pc + kc == k;
        amx_pack_b(bpk, b + pc * p->b_stride0 + jc * p->b_stride1, p->b_stride0,
                   p->b_stride1, kc, nc, kcp, ncp);
        for (int64_t ic = i0; ic < i1; ic += mc_max) {
          const int64_t mc = i1 - ic < mc_max ? i1 - ic : mc_max;
          const int64_t mcp = round_up(mc, 32);
          amx_pack_a(apk, a + ic * p->a_stride0 + pc * p->a_stride1, p->a_stride0,
                     p->a_stride1, mc, kc, mcp, kcp);
          o.c = c + ic * o.cs0 + jc * o.cs1;
          o.mc = mc;
          o.nc = nc;
          o.w = w + (ic - i0) * o.ldw;
          amx_compute(apk, bpk, kcp, mcp, ncp, &o);
        }
      }
    }
  }
  _tile_release();
  free(buf);
  return 0;
}

#else /* not x86-64: no AMX */

int mips_bf16_amx_usable(void) { return 0; }
int mips_bf16_amx_gemm(const mips_matmul_bf16_params* p) {
  (void)p;
  return -1;
}

#endif
