/* mips_matmul_openblas_f32: C (+)= A . B on f32 through OpenBLAS's sgemm
 * (contract: mips_kernels.h, "OpenBLAS backend").
 *
 * OpenBLAS is not linked: it is opened at run time, once, from the path in
 * $MIPSC_OPENBLAS_LIB (mipsc points it at the scipy-openblas32 wheel's
 * library), so the plugin builds and loads without it and the builtin
 * kernels never need it.  OpenBLAS runs single-threaded: IREE's task system
 * already calls one kernel per output tile from each of its workers.
 *
 * Each call is validated as the builtin kernel validates it; layouts sgemm
 * cannot take (a stride-0 broadcast, non-unit strides in both dimensions,
 * overlapping rows), k == 0, empty products and sizes beyond int go to the
 * builtin f32 kernel. */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "mips_internal.h"

/* The cblas enums' values (cblas.h is not needed to build: OpenBLAS is
 * optional).  Enums are passed as int. */
enum { BLAS_ROW_MAJOR = 101, BLAS_NO_TRANS = 111, BLAS_TRANS = 112 };

/* cblas_sgemm with a 32-bit blasint (scipy-openblas32, or a plain LP64
 * OpenBLAS build). */
typedef void (*sgemm_fn)(int order, int trans_a, int trans_b, int m, int n,
                         int k, float alpha, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c,
                         int ldc);
typedef void (*set_num_threads_fn)(int threads);
typedef char* (*corename_fn)(void);

/* Written once, inside pthread_once (which orders these writes before every
 * read after it returns), then only read. */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static sgemm_fn g_sgemm;           /* NULL: not usable, see g_error */
static corename_fn g_corename;     /* may be NULL */
static int g_opened;               /* 1 once open_openblas has run */
static char g_error[768];

#define OPENBLAS_ENV "MIPSC_OPENBLAS_LIB"

static void open_openblas(void) {
  const char* path = getenv(OPENBLAS_ENV);
  if (path == NULL || path[0] == '\0') {
    snprintf(g_error, sizeof g_error,
             "%s is not set (it names the OpenBLAS library to load)",
             OPENBLAS_ENV);
    goto done;
  }
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char* why = dlerror(); /* names the path */
    if (why != NULL) {
      snprintf(g_error, sizeof g_error, "%s", why);
    } else {
      snprintf(g_error, sizeof g_error, "cannot open %s", path);
    }
    goto done;
  }
  /* scipy-openblas32's prefixed names first, then a plain OpenBLAS's; each
   * with its own set_num_threads. */
  static const char* const kNames[][3] = {
      {"scipy_cblas_sgemm", "scipy_openblas_set_num_threads",
       "scipy_openblas_get_corename"},
      {"cblas_sgemm", "openblas_set_num_threads", "openblas_get_corename"},
  };
  for (size_t i = 0; i < sizeof kNames / sizeof kNames[0]; ++i) {
    void* sgemm = dlsym(handle, kNames[i][0]);
    if (sgemm == NULL) continue;
    void* set_threads = dlsym(handle, kNames[i][1]);
    if (set_threads == NULL) {
      snprintf(g_error, sizeof g_error,
               "%s exports %s but not %s (needed to run it single-threaded)",
               path, kNames[i][0], kNames[i][1]);
      goto done;
    }
    ((set_num_threads_fn)set_threads)(1);
    g_corename = (corename_fn)dlsym(handle, kNames[i][2]);
    g_sgemm = (sgemm_fn)sgemm; /* the handle stays open for good */
    goto done;
  }
  snprintf(g_error, sizeof g_error,
           "%s exports neither scipy_cblas_sgemm nor cblas_sgemm (not an "
           "OpenBLAS library)",
           path);
  /* A library that did not fit stays loaded: once per process, and unloading
   * one whose constructors may have started threads is not worth the risk. */
done:
  __atomic_store_n(&g_opened, 1, __ATOMIC_RELEASE);
}

static sgemm_fn openblas_sgemm(void) {
  pthread_once(&g_once, open_openblas);
  return g_sgemm;
}

MIPS_EXPORT const char* mips_openblas_error(void) {
  return openblas_sgemm() != NULL ? NULL : g_error;
}

MIPS_EXPORT const char* mips_openblas_corename(void) {
  /* Never opens the library: g_opened is stored (release) after every other
   * write of open_openblas, so seeing 1 makes them visible here. */
  if (!__atomic_load_n(&g_opened, __ATOMIC_ACQUIRE)) return NULL;
  if (g_sgemm == NULL || g_corename == NULL) return NULL;
  return g_corename();
}

/* How sgemm (row-major) reads a rows x cols operand with element strides s0,
 * s1: as stored (NoTrans, rows ld apart) or as the transpose of a row-major
 * cols x rows matrix (Trans, columns ld apart).  The stride of a dimension of
 * size 1 is never used, so it does not matter.  Returns 0 if neither fits. */
static int blas_view(int64_t rows, int64_t cols, int64_t s0, int64_t s1,
                     int* trans, int* ld) {
  if (s1 == 1 || cols == 1) {
    int64_t need = cols > 1 ? cols : 1;
    int64_t l = rows == 1 ? need : s0;
    if (l >= need && l <= INT_MAX) {
      *trans = BLAS_NO_TRANS;
      *ld = (int)l;
      return 1;
    }
  }
  if (s0 == 1 || rows == 1) {
    int64_t need = rows > 1 ? rows : 1;
    int64_t l = cols == 1 ? need : s1;
    if (l >= need && l <= INT_MAX) {
      *trans = BLAS_TRANS;
      *ld = (int)l;
      return 1;
    }
  }
  return 0;
}

/* One sgemm call: C (m x n, row-major, ldc) = op(A) . op(B) (+ C). */
typedef struct blas_call {
  const float* a;
  const float* b;
  float* c;
  int m, n, k;
  int trans_a, trans_b;
  int lda, ldb, ldc;
} blas_call;

/* The sgemm call for a valid, non-empty product, or 0 if sgemm cannot take
 * it. */
static int plan_sgemm(const mips_matmul_f32_params* p, blas_call* out) {
  if (p->m <= 0 || p->n <= 0 || p->k <= 0) return 0;
  if (p->m > INT_MAX || p->n > INT_MAX || p->k > INT_MAX) return 0;
  const float* a = p->a + p->a_offset;
  const float* b = p->b + p->b_offset;
  int64_t m = p->m, n = p->n, k = p->k;
  int64_t as0 = p->a_stride0, as1 = p->a_stride1;
  int64_t bs0 = p->b_stride0, bs1 = p->b_stride1;
  int c_trans, ldc;
  if (!blas_view(m, n, p->c_stride0, p->c_stride1, &c_trans, &ldc)) return 0;
  if (c_trans == BLAS_TRANS) {
    /* C is column-major: C^T (n x m, row-major) = B^T . A^T. */
    const float* t = a;
    a = b;
    b = t;
    int64_t t0 = as0, t1 = as1;
    as0 = bs1;
    as1 = bs0;
    bs0 = t1;
    bs1 = t0;
    int64_t tm = m;
    m = n;
    n = tm;
  }
  if (!blas_view(m, k, as0, as1, &out->trans_a, &out->lda)) return 0;
  if (!blas_view(k, n, bs0, bs1, &out->trans_b, &out->ldb)) return 0;
  out->a = a;
  out->b = b;
  out->c = p->c + p->c_offset;
  out->m = (int)m;
  out->n = (int)n;
  out->k = (int)k;
  out->ldc = ldc;
  return 1;
}

MIPS_EXPORT int mips_matmul_openblas_f32(void* params, void* context,
                                         void* reserved) {
  (void)context;
  (void)reserved;
  mips_count_call(MIPS_K_OPENBLAS_F32);
  const mips_matmul_f32_params* p = (const mips_matmul_f32_params*)params;
  if (p == NULL) return 1;
  if (mips_check_matmul(p->a, p->a_offset, p->a_stride0, p->a_stride1, p->b,
                        p->b_offset, p->b_stride0, p->b_stride1, p->c,
                        p->c_offset, p->c_stride0, p->c_stride1, p->m, p->n,
                        p->k, p->accumulate, (int64_t)sizeof(float))) {
    return 1;
  }
  sgemm_fn sgemm = openblas_sgemm();
  if (sgemm == NULL) return 1; /* no OpenBLAS: mips_openblas_error() */
  blas_call call;
  if (!plan_sgemm(p, &call)) {
    mips_count(MIPS_K_OPENBLAS_F32_FALLBACK);
    return mips_matmul_f32_run(params, mips_best_isa());
  }
  mips_count(MIPS_K_OPENBLAS_F32_SGEMM);
  sgemm(BLAS_ROW_MAJOR, call.trans_a, call.trans_b, call.m, call.n, call.k,
        1.0f, call.a, call.lda, call.b, call.ldb, p->accumulate ? 1.0f : 0.0f,
        call.c, call.ldc);
  return 0;
}
