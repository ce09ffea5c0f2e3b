/* The per-microarchitecture kernel configuration (mips_kernels.h,
 * "Kernel configuration").
 *
 * Modelled on BLIS's split: the kernels (matmul_gemm.inc, matmul_bf16_dp.c,
 * matmul_bf16_amx.c) are written once per instruction set, with a fixed
 * register tile each; this file holds one entry per CPU family that says
 * which of those kernels to run and with which cache blocks.  The entry is
 * chosen once per process from cpuid (vendor, family, model, features), or
 * named by MIPSC_KERNEL_CONFIG; cache sizes are read from cpuid's cache
 * leaves (4 on Intel, 0x8000001D on AMD) and fill the blocks an entry leaves
 * at 0 (the generic entries).
 *
 * The plugin build chooses once per process (pthread_once), reads the
 * MIPSC_KERNEL_* environment overrides and keeps mips_kernel_info's text.
 * The freestanding object (MIPS_FREESTANDING) has no libc: it chooses by the
 * same rule from cpuid alone (an entry can be forced at build time with
 * -DMIPS_FORCE_CONFIG=name, for tests), once per loaded module, and
 * publishes the result in the one mutable global it has (see mips_config).
 */
#include <stddef.h>
#ifndef MIPS_FREESTANDING
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#endif

#include "mips_amx.h"
#include "mips_internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* Blocks of a generic entry from the caches (BLIS's rule of thumb, Low et
 * al., "Analytical modeling is enough for high-performance BLIS", TOMS 2016):
 * a B sliver (KC x NR) in half of L1d, an A block (MC x KC) in half of L2, a
 * B panel (KC x NC) in half of L3; KC a multiple of 32, MC of the tile.  The
 * bounds only keep an odd cpuid answer (0 or huge sizes) in the range the
 * tests cover. */
static int clamp_block(int64_t v, int lo, int hi, int mult) {
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return (int)(v / mult * mult);
}

/* The tile cost model of the lowering (mips_kernels.h, "Tile cost model"), in
 * the two parts that were measured on different machines.  The GEMM part was
 * fitted on the Intel Xeon of BENCHMARKS.md (2026-11-29), through IREE on 1 and
 * 2 threads: 2048^3 f32 on 516x256 tiles 1.08x the speed of 256x256 and
 * 348x512 0.83x on 2 threads (wide tiles overflow L2); the five costs fitted to
 * nine shapes, the choice the fastest measured (or within noise) for eight. */
#define MIPS_TILE_GEMM_XEON                                                          \
  .tile_max_rows = 516, .tile_max_cols = 256, .tile_pack_flops = 64,                \
  .tile_narrow_cols = 32, .tile_workgroup_flops = 1000000, .tile_wake_flops = 3000000, \
  .tile_one_worker_pct = 50
/* The few-row part, measured on the AMD EPYC Zen 4 of BENCHMARKS.md
 * (2026-11-30, 2 vCPUs, loaded), interleaved: packed-B tiles up to 1024
 * columns (72x1024 1.03-1.04x the speed of 72x256 at 64x{4096x1024,
 * 1024x4096} f32, 1.03-1.10x bf16, kernel alone on IREE's tiles; 0.92-0.97x
 * the time through IREE) and thin tiles of at least 2 MiB of B (the Llama
 * decode step, bf16 tiles of 2-4 MiB 0.90-0.92x the time of 1 MiB ones).
 * prepack_f32_min_rows 1 (2026-12-01): an f32 weight of a one-row product
 * packed at load and streamed by packed_thin took 0.85-0.87x the time of the
 * unpacked loops reading it from the parameter file, on huge pages (the
 * plugin's pack, or mipsc's runtime after an embedded pack), and 0.94-0.96x
 * on 4 KiB pages (Llama decode step through IREE, process CPU time). */
#define MIPS_TILE_FEW_ROWS_ZEN4 \
  .tile_packed_max_cols = 1024, .tile_thin_bytes = 2 << 20, .prepack_f32_min_rows = 1

/* The entries.  mr/nr: the register tile of the path's kernel (fixed per
 * ISA); 0 in a block: derived from the caches as above.  The numbers' source
 * is in each entry's `about`. */
static const mips_kernel_config kEntries[] = {
    {
        .name = "zen4",
        .about = "AMD Zen 4 (family 0x19 with AVX-512): 512-bit ops on 256-bit units, "
                 "32 f32 flops/cycle/core, VDPBF16PS at twice that; blocks measured on "
                 "an EPYC (family 25 model 17, BENCHMARKS.md)",
        .isa = MIPS_ISA_AVX512,
        .bf16_isa = MIPS_ISA_AVX512BF16,
        /* Measured on that EPYC, kernel alone on IREE's tiles (516x256x2048,
         * 516x256x1024, 132x256x512), interleaved against KC 256 / MC 192:
         * f32 KC 512 + MC 96 +3-7%; bf16 KC 2048 + MC 96 +7-10% at k >= 1024
         * (k in one block: no f32 partial sums to reload).  The B sliver then
         * lives in L2, not L1 (64 / 128 KiB; A block + B sliver <= 1/2 of the
         * 1 MiB L2), which Zen 4's L2 bandwidth sustains. */
        .kc = 512, .mc = 96, .nc = 2048,
        /* A pre-packed B (weights packed at load) is read in place: KC is not bounded
         * by a B panel buffer.  Kernel alone on IREE's tiles of thin products, one
         * thread, interleaved (thread CPU time), against KC 512: KC 1024 1.02-1.05x at
         * 64x{4096x1024, 1024x4096}, 128x{768x3072, 2048x5632}, 1024x768x768 (k in one
         * block: C swept once); 256 / 128 0.96-0.99x / 0.87-0.94x.  2048 (2026-12-02,
         * same method, loaded machine): 0.957-0.985x the time of 1024 at 64x1024x4096
         * (the MLP's second linear: 2 k blocks instead of 4), 0.994x at 1024x768x3072
         * (2 of 1536 instead of 3), k <= 1024 unchanged.  A block 96 x 2048 + B sliver
         * 2048 x 32 floats: 1 MiB, L2's size; 72-row tiles (prefill) use 3/4 of it. */
        .packed_kc = 2048,
        .bf16_kc = 2048, .bf16_mc = 96, .bf16_nc = 2048,
        /* bf16 on a pre-packed B (VDPBF16PS GEMM): KC 4096 takes k = 4096 in one block and
         * k = 5632 in two (2048: two and three; fewer f32 partial sums through W).  Kernel
         * alone on IREE's tiles, one thread, 1 MiB of scratch as the embedded kernels are lent,
         * interleaved (thread CPU time) against 2048: 0.96-0.98x at 64x1024x4096 (72x512
         * tiles), 0.94-0.99x at 128x2048x5632 (132x1024); k <= 2048 unchanged.  The plan
         * halves it where the A block would not fit the scratch. */
        .bf16_packed_kc = 4096,
        .b_prefetch_rows = 16,
        .pack_a_t16 = 1,
        /* Kernel alone on IREE's tiles, one thread, interleaved (thread CPU time), against
         * 0, loaded machine (2026-12-02): 0.988x the time at 1024x3072x768 and 0.987x at
         * 1024x2304x768 (the encoder's linears, B re-read from L3 per A block), 0.97-1.00x
         * at 64x{4096x1024, 16384x1024, 1024x4096} (B streamed from memory); mlp and
         * encoder_b8 through IREE 0.99-1.01x (within noise). */
        .b_next_prefetch = 1,
        /* C prefetched 64 steps of k before the end of a microkernel's k block, not at its
         * start (where the lines are evicted by the slivers streaming through L1 before the
         * stores), against 0 (at the start), as b_next_prefetch (2026-12-02, loaded): 64
         * 0.988x the time at 64x4096x1024, 0.945x at 1024x2304x768 (16 / 32: 0.962x /
         * 0.972x there; 32 0.985-0.998x at 64x4096x1024, 64x1024x4096, 1024x3072x768). */
        .c_prefetch_ahead = 64,
        .thin_streams = 4,
        /* the few-row part measured here; the GEMM part carried over from the
         * Xeon, not re-fitted on Zen 4 (the tiles it picks here are the ones the
         * Zen 4 tables of BENCHMARKS.md were measured with) */
        MIPS_TILE_FEW_ROWS_ZEN4,
        MIPS_TILE_GEMM_XEON,
    },
    {
        .name = "zen5",
        .about = "AMD Zen 5 (family 0x1a with AVX-512): full 512-bit FMA units, 64 f32 "
                 "flops/cycle/core, 48 KiB L1d, 1 MiB L2; blocks as zen4 (not measured on "
                 "Zen 5)",
        .isa = MIPS_ISA_AVX512,
        .bf16_isa = MIPS_ISA_AVX512BF16,
        .kc = 512, .mc = 96, .nc = 2048,
        .packed_kc = 2048,
        .bf16_kc = 2048, .bf16_mc = 96, .bf16_nc = 2048,
        .bf16_packed_kc = 4096,
        .b_prefetch_rows = 16,
        .pack_a_t16 = 1,
        .b_next_prefetch = 1,
        .c_prefetch_ahead = 64,
        .thin_streams = 4,
        /* carried over from zen4, not measured on Zen 5 */
        MIPS_TILE_FEW_ROWS_ZEN4,
        MIPS_TILE_GEMM_XEON,
    },
    {
        .name = "intel-avx512",
        .about = "Intel AVX-512 server cores (Skylake-SP .. Sapphire Rapids): two 512-bit "
                 "FMA units; bf16 on AMX where usable, else widened to f32 (VDPBF16PS "
                 "peaked at ~110 GFLOP/s against 222 for f32 FMAs on a Sapphire Rapids VM); "
                 "blocks measured there (BENCHMARKS.md, 2026-11-29)",
        .isa = MIPS_ISA_AVX512,
        .bf16_isa = MIPS_ISA_AVX512,
        .kc = 256, .mc = 192, .nc = 2048,
        .bf16_kc = 512, .bf16_mc = 192, .bf16_nc = 2048,
        .b_prefetch_rows = 16,
        .pack_a_t16 = 1,
        .b_next_prefetch = 0,
        .thin_streams = 4,
        /* the GEMM part measured on that Xeon; the few-row part carried over
         * from zen4, not measured on Intel */
        MIPS_TILE_GEMM_XEON,
        MIPS_TILE_FEW_ROWS_ZEN4,
    },
    {
        .name = "avx2",
        .about = "any x86-64 with AVX2+FMA+F16C (Haswell+, Zen 1-3): blocks measured on an "
                 "AVX2-only AMD EPYC (Zen, 32 KiB L1d, 512 KiB L2)",
        .isa = MIPS_ISA_AVX2,
        .bf16_isa = MIPS_ISA_AVX2,
        .kc = 256, .mc = 144, .nc = 2048,
        .bf16_kc = 256, .bf16_mc = 144, .bf16_nc = 2048,
        .b_prefetch_rows = 16,
        .pack_a_t16 = 1,
        .b_next_prefetch = 0,
        .thin_streams = 4,
        /* carried over (the Xeon's and the Zen 4's), not measured on AVX2 */
        MIPS_TILE_GEMM_XEON,
        MIPS_TILE_FEW_ROWS_ZEN4,
    },
    {
        .name = "sse2",
        .about = "baseline x86-64 (SSE2): blocks from the caches (half of L1d / L2 / L3)",
        .isa = MIPS_ISA_GENERIC,
        .bf16_isa = MIPS_ISA_GENERIC,
        .kc = 0, .mc = 0, .nc = 0,
        .bf16_kc = 0, .bf16_mc = 0, .bf16_nc = 0,
        .b_prefetch_rows = 16,
        .pack_a_t16 = 1,
        .b_next_prefetch = 0,
        .thin_streams = 4,
        /* carried over (the Xeon's and the Zen 4's), not measured on SSE2 */
        MIPS_TILE_GEMM_XEON,
        MIPS_TILE_FEW_ROWS_ZEN4,
    },
};
enum { kNumEntries = (int)(sizeof kEntries / sizeof kEntries[0]) };

typedef struct {
  char vendor[13];
  unsigned family, model;
  int64_t l1d, l2, l3; /* bytes per core (L3: per instance), 0 if unknown */
} cpu_info;

static mips_kernel_config g_config;

#if defined(__x86_64__)
/* Sizes of the data/unified caches from a deterministic cache-parameters
 * leaf (4 on Intel, 0x8000001D on AMD: same layout). */
static void read_caches(unsigned leaf, cpu_info* ci) {
  for (unsigned sub = 0; sub < 16; ++sub) {
    unsigned a, b, c, d;
    __cpuid_count(leaf, sub, a, b, c, d);
    const unsigned type = a & 0x1f; /* 0: no more; 1 data; 2 instruction; 3 unified */
    if (type == 0) break;
    if (type == 2) continue;
    const unsigned level = (a >> 5) & 7;
    const int64_t bytes = (int64_t)(((b >> 22) & 0x3ff) + 1) * (((b >> 12) & 0x3ff) + 1) *
                          ((b & 0xfff) + 1) * ((int64_t)c + 1);
    if (level == 1) ci->l1d = bytes;
    if (level == 2) ci->l2 = bytes;
    if (level == 3) ci->l3 = bytes;
  }
}

static void read_cpu(cpu_info* ci) {
  unsigned a, b, c, d;
  memset(ci, 0, sizeof *ci);
  if (!__get_cpuid(0, &a, &b, &c, &d)) return;
  const unsigned max_leaf = a;
  memcpy(ci->vendor, &b, 4);
  memcpy(ci->vendor + 4, &d, 4);
  memcpy(ci->vendor + 8, &c, 4);
  __get_cpuid(1, &a, &b, &c, &d);
  const unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
  ci->family = base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family;
  ci->model = base_family == 0xf || base_family == 0x6 ? base_model | (((a >> 16) & 0xf) << 4)
                                                        : base_model;
  if (mips_streq(ci->vendor, "AuthenticAMD")) {
    unsigned max_ext = __get_cpuid_max(0x80000000u, NULL);
    __get_cpuid(0x80000001u, &a, &b, &c, &d);
    const int topoext = (c >> 22) & 1;
    if (topoext && max_ext >= 0x8000001Du) {
      read_caches(0x8000001Du, ci);
    } else if (max_ext >= 0x80000006u) { /* older AMD: size fields in KiB */
      __get_cpuid(0x80000005u, &a, &b, &c, &d);
      ci->l1d = (int64_t)(c >> 24) * 1024;
      __get_cpuid(0x80000006u, &a, &b, &c, &d);
      ci->l2 = (int64_t)(c >> 16) * 1024;
      ci->l3 = (int64_t)(d >> 18) * 512 * 1024;
    }
  } else if (max_leaf >= 4) {
    read_caches(4, ci);
  }
}
#else
static void read_cpu(cpu_info* ci) { memset(ci, 0, sizeof *ci); }
#endif

static const mips_kernel_config* find_entry(const char* name) {
  for (int i = 0; i < kNumEntries; ++i)
    if (mips_streq(kEntries[i].name, name)) return &kEntries[i];
  return NULL;
}

/* The entry for this CPU: by vendor and family for the tuned ones, else by
 * the widest vector path it has. */
static const mips_kernel_config* detect_entry(const cpu_info* ci) {
  const int avx512 = mips_isa_supported(MIPS_ISA_AVX512);
  const int amd = mips_streq(ci->vendor, "AuthenticAMD");
  const int intel = mips_streq(ci->vendor, "GenuineIntel");
  if (amd && avx512 && ci->family == 0x19) return find_entry("zen4");
  if (amd && avx512 && ci->family >= 0x1a) return find_entry("zen5");
  if (intel && avx512) return find_entry("intel-avx512");
  if (avx512) return find_entry("zen4"); /* another AVX-512 CPU: the closest tuned entry */
  if (mips_isa_supported(MIPS_ISA_AVX2)) return find_entry("avx2");
  return find_entry("sse2");
}

static const char* isa_name(int isa) {
  switch (isa) {
    case MIPS_ISA_GENERIC: return "generic";
    case MIPS_ISA_AVX2: return "avx2";
    case MIPS_ISA_AVX512: return "avx512";
    case MIPS_ISA_AMX: return "amx";
    case MIPS_ISA_AVX512BF16: return "avx512bf16";
    default: return "?";
  }
}

/* The register tile (rows x columns of C) of each path's kernel: MM_MR x
 * MM_NV * lanes in matmul_template.inc, DP_MR x DP_NR in matmul_bf16_dp.c,
 * 32 x 32 in matmul_bf16_amx.c (the tests check them against their own
 * table, BLOCKING). */
static void isa_tile(int isa, int* mr, int* nr) {
  switch (isa) {
    case MIPS_ISA_AVX2: *mr = 6; *nr = 16; return;
    case MIPS_ISA_AVX512: *mr = 12; *nr = 32; return;
    case MIPS_ISA_AMX: *mr = 32; *nr = 32; return;
    case MIPS_ISA_AVX512BF16: *mr = 12; *nr = 32; return;
    default: *mr = 4; *nr = 8; return;
  }
}

int mips_isa_from_name(const char* name) {
  if (name == NULL) return -1;
  for (int isa = 0; isa < MIPS_ISA_COUNT; ++isa)
    if (mips_streq(name, isa_name(isa))) return isa;
  return -1;
}

static void fill_blocks(mips_kernel_config* c, const cpu_info* ci) {
  const int64_t l1 = ci->l1d > 0 ? ci->l1d : 32 * 1024;
  const int64_t l2 = ci->l2 > 0 ? ci->l2 : 256 * 1024;
  const int64_t l3 = ci->l3 > 0 ? ci->l3 : 4 * 1024 * 1024;
  int mr, nr;
  isa_tile(c->isa, &mr, &nr);
  if (c->kc == 0) c->kc = clamp_block(l1 / 2 / ((int64_t)nr * 4), 64, 512, 32);
  if (c->mc == 0) c->mc = clamp_block(l2 / 2 / (c->kc * 4), 48, 1024, 48);
  if (c->nc == 0) c->nc = clamp_block(l3 / 2 / (c->kc * 4), 256, 8192, 64);
  if (c->packed_kc == 0) c->packed_kc = c->kc;
  if (c->bf16_kc == 0) c->bf16_kc = c->kc;
  if (c->bf16_mc == 0) c->bf16_mc = c->mc;
  if (c->bf16_nc == 0) c->bf16_nc = c->nc;
  if (c->bf16_packed_kc == 0) c->bf16_packed_kc = c->bf16_kc;
}

/* The entry `e` made concrete for this CPU: bf16 on AMX wherever this
 * process may use it (any entry), else the entry's path if the CPU has it,
 * else the f32 path (widening); the blocks it leaves at 0 from the caches. */
static void settle(const mips_kernel_config* e, const cpu_info* ci, mips_kernel_config* out) {
  *out = *e;
  if (mips_isa_supported(out->isa) && out->isa == MIPS_ISA_AVX512 && mips_bf16_amx_usable()) {
    out->bf16_isa = MIPS_ISA_AMX;
  } else if (!mips_isa_supported(out->bf16_isa)) {
    out->bf16_isa = out->isa;
  }
  fill_blocks(out, ci);
}

#ifdef MIPS_FREESTANDING
/* -DMIPS_FORCE_CONFIG=avx2 (a bare name: no quoting through make and the
 * shell) forces that entry. */
#define MIPS_STR_(x) #x
#define MIPS_STR(x) MIPS_STR_(x)
#ifdef MIPS_FORCE_CONFIG
#define MIPS_FORCE_CONFIG_NAME MIPS_STR(MIPS_FORCE_CONFIG)
#else
#define MIPS_FORCE_CONFIG_NAME ""
#endif

/* g_config's state: 0 empty, 1 being written by one thread, 2 published. */
static int g_state;

/* The configuration, chosen on the first call of this loaded module.  It is a
 * pure function of the CPU, so any thread could compute it; cpuid traps to the
 * hypervisor in a VM (about 20 of them here: tens of microseconds, see
 * kernels/README.md), so it is computed once and published: the thread that
 * wins the compare-exchange writes g_config, then releases state 2; a thread
 * that finds state 1 waits (pause) for that store, which follows a bounded
 * computation that takes no lock.  Later calls cost one acquire load.  The
 * object has no pthread_once (libc) and no TLS; this is its only mutable
 * global, written once, so the workers never race on it. */
const mips_kernel_config* mips_config(void) {
  if (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) == 2) return &g_config;
  int empty = 0;
  if (__atomic_compare_exchange_n(&g_state, &empty, 1, 0, __ATOMIC_ACQUIRE,
                                  __ATOMIC_ACQUIRE)) {
    cpu_info ci;
    read_cpu(&ci);
    const mips_kernel_config* e = detect_entry(&ci);
    const mips_kernel_config* forced = find_entry(MIPS_FORCE_CONFIG_NAME);
    if (forced != NULL && mips_isa_supported(forced->isa)) e = forced;
    settle(e, &ci, &g_config);
    __atomic_store_n(&g_state, 2, __ATOMIC_RELEASE);
  } else {
    while (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) != 2) __builtin_ia32_pause();
  }
  return &g_config;
}

#else /* the plugin build */

/* The note mips_kernel_info adds to its config line: each environment setting
 * that was ignored, and why ("; MIPSC_KERNEL_CONFIG=x ignored: no such entry"). */
static char g_note[480];

static void note_ignored(const char* var, const char* value, const char* why) {
  const size_t used = strlen(g_note);
  snprintf(g_note + used, sizeof g_note - used, "; %s=%.40s ignored: %s", var, value, why);
}

/* Replaces a field by the environment variable's value if set (for tuning:
 * MIPSC_KERNEL_KC, ...): a whole number from 1 to 2^20, else ignored and said so. */
static void env_int(const char* var, int* field) {
  const char* s = getenv(var);
  if (s == NULL) return;
  char* end = NULL;
  const long v = strtol(s, &end, 10);
  if (*s != '\0' && end != NULL && *end == '\0' && v > 0 && v <= 1 << 20)
    *field = (int)v;
  else
    note_ignored(var, s, "not a whole number from 1 to 1048576");
}

/* Replaces a 0/1 field by the environment variable's value if set: "0" or "1",
 * else ignored and said so (MIPSC_KERNEL_PACK_A_T16, MIPSC_KERNEL_PACK_HUGE_PAGES). */
static void env_flag(const char* var, int* field) {
  const char* s = getenv(var);
  if (s == NULL) return;
  if (mips_streq(s, "0") || mips_streq(s, "1"))
    *field = s[0] == '1';
  else
    note_ignored(var, s, "not 0 or 1");
}

static cpu_info g_cpu;
static char g_info[2048];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void write_info(const char* why, const char* note) {
  int mr, nr, bmr, bnr;
  isa_tile(g_config.isa, &mr, &nr);
  isa_tile(g_config.bf16_isa, &bmr, &bnr);
  snprintf(g_info, sizeof g_info,
           "config=%s (%s%s)\n"
           "cpu=%s family=0x%x model=0x%x l1d=%lld l2=%lld l3=%lld\n"
           "f32_path=%s f16_path=%s bf16_path=%s f32_tile=%dx%d bf16_tile=%dx%d\n"
           "kc=%d mc=%d nc=%d bf16_kc=%d bf16_mc=%d bf16_nc=%d b_prefetch_rows=%d "
           "pack_a_t16=%d packed_kc=%d thin_streams=%d pack_huge_pages=%d b_next_prefetch=%d "
           "c_prefetch_ahead=%d bf16_packed_kc=%d\n"
           "tile_max=%dx%d tile_packed_max_cols=%d tile_pack_flops=%d tile_narrow_cols=%d "
           "tile_workgroup_flops=%d tile_wake_flops=%d tile_one_worker_pct=%d "
           "tile_thin_bytes=%d prepack_f32_min_rows=%d\n"
           "about=%s\n",
           g_config.name, why, note, g_cpu.vendor[0] ? g_cpu.vendor : "unknown", g_cpu.family,
           g_cpu.model, (long long)g_cpu.l1d, (long long)g_cpu.l2, (long long)g_cpu.l3,
           isa_name(g_config.isa), isa_name(g_config.isa), isa_name(g_config.bf16_isa), mr,
           nr, bmr, bnr, g_config.kc, g_config.mc, g_config.nc, g_config.bf16_kc, g_config.bf16_mc,
           g_config.bf16_nc, g_config.b_prefetch_rows, g_config.pack_a_t16, g_config.packed_kc,
           g_config.thin_streams, g_config.pack_huge_pages, g_config.b_next_prefetch,
           g_config.c_prefetch_ahead, g_config.bf16_packed_kc,
           g_config.tile_max_rows, g_config.tile_max_cols,
           g_config.tile_packed_max_cols, g_config.tile_pack_flops, g_config.tile_narrow_cols,
           g_config.tile_workgroup_flops, g_config.tile_wake_flops, g_config.tile_one_worker_pct,
           g_config.tile_thin_bytes, g_config.prepack_f32_min_rows, g_config.about);
}

static void choose(void) {
  read_cpu(&g_cpu);
  const mips_kernel_config* e = detect_entry(&g_cpu);
  const char* why = "detected from cpuid";
  const char* want = getenv("MIPSC_KERNEL_CONFIG");
  if (want != NULL && *want != '\0') {
    const mips_kernel_config* f = find_entry(want);
    if (f == NULL) {
      note_ignored("MIPSC_KERNEL_CONFIG", want, "no such entry");
    } else if (!mips_isa_supported(f->isa)) {
      char lacks[64];
      snprintf(lacks, sizeof lacks, "this CPU lacks %s", isa_name(f->isa));
      note_ignored("MIPSC_KERNEL_CONFIG", want, lacks);
    } else {
      e = f;
      why = "MIPSC_KERNEL_CONFIG";
    }
  }
  settle(e, &g_cpu, &g_config);
  env_int("MIPSC_KERNEL_KC", &g_config.kc);
  env_int("MIPSC_KERNEL_MC", &g_config.mc);
  env_int("MIPSC_KERNEL_NC", &g_config.nc);
  env_int("MIPSC_KERNEL_PACKED_KC", &g_config.packed_kc);
  env_int("MIPSC_KERNEL_BF16_KC", &g_config.bf16_kc);
  env_int("MIPSC_KERNEL_BF16_MC", &g_config.bf16_mc);
  env_int("MIPSC_KERNEL_BF16_NC", &g_config.bf16_nc);
  env_int("MIPSC_KERNEL_BF16_PACKED_KC", &g_config.bf16_packed_kc);
  env_int("MIPSC_KERNEL_THIN_STREAMS", &g_config.thin_streams);
  g_config.pack_huge_pages = 1; /* every entry: huge pages are the OS's matter, not the CPU's */
  env_flag("MIPSC_KERNEL_PACK_HUGE_PAGES", &g_config.pack_huge_pages);
  env_flag("MIPSC_KERNEL_PACK_A_T16", &g_config.pack_a_t16);
  env_flag("MIPSC_KERNEL_B_NEXT_PREFETCH", &g_config.b_next_prefetch);
  env_int("MIPSC_KERNEL_C_PREFETCH_AHEAD", &g_config.c_prefetch_ahead);
  write_info(why, g_note);
}

const mips_kernel_config* mips_config(void) {
  pthread_once(&g_once, choose);
  return &g_config;
}

MIPS_EXPORT const char* mips_kernel_info(void) {
  mips_config();
  return g_info;
}

/* The int fields of a configuration by name, with the values
 * mips_debug_set_config takes (the blocks 1 to 2^20, pack_a_t16 and pack_huge_pages 0 or 1, the
 * tile cost model's costs from 0). */
static const struct {
  const char* key;
  size_t offset;
  int lo, hi;
} kFields[] = {
    {"kc", offsetof(mips_kernel_config, kc), 1, 1 << 20},
    {"mc", offsetof(mips_kernel_config, mc), 1, 1 << 20},
    {"nc", offsetof(mips_kernel_config, nc), 1, 1 << 20},
    {"packed_kc", offsetof(mips_kernel_config, packed_kc), 1, 1 << 20},
    {"bf16_kc", offsetof(mips_kernel_config, bf16_kc), 1, 1 << 20},
    {"bf16_mc", offsetof(mips_kernel_config, bf16_mc), 1, 1 << 20},
    {"bf16_nc", offsetof(mips_kernel_config, bf16_nc), 1, 1 << 20},
    {"bf16_packed_kc", offsetof(mips_kernel_config, bf16_packed_kc), 1, 1 << 20},
    {"b_prefetch_rows", offsetof(mips_kernel_config, b_prefetch_rows), 1, 1 << 20},
    {"pack_a_t16", offsetof(mips_kernel_config, pack_a_t16), 0, 1},
    {"thin_streams", offsetof(mips_kernel_config, thin_streams), 1, 1 << 20},
    {"pack_huge_pages", offsetof(mips_kernel_config, pack_huge_pages), 0, 1},
    {"b_next_prefetch", offsetof(mips_kernel_config, b_next_prefetch), 0, 1},
    {"c_prefetch_ahead", offsetof(mips_kernel_config, c_prefetch_ahead), 0, 1 << 20},
    {"tile_max_rows", offsetof(mips_kernel_config, tile_max_rows), 1, 1 << 20},
    {"tile_max_cols", offsetof(mips_kernel_config, tile_max_cols), 1, 1 << 20},
    {"tile_packed_max_cols", offsetof(mips_kernel_config, tile_packed_max_cols), 1, 1 << 20},
    {"tile_pack_flops", offsetof(mips_kernel_config, tile_pack_flops), 0, 1 << 30},
    {"tile_narrow_cols", offsetof(mips_kernel_config, tile_narrow_cols), 0, 1 << 30},
    {"tile_workgroup_flops", offsetof(mips_kernel_config, tile_workgroup_flops), 0, 1 << 30},
    {"tile_wake_flops", offsetof(mips_kernel_config, tile_wake_flops), 0, 1 << 30},
    {"tile_one_worker_pct", offsetof(mips_kernel_config, tile_one_worker_pct), 0, 1 << 20},
    {"tile_thin_bytes", offsetof(mips_kernel_config, tile_thin_bytes), 1, 1 << 30},
    {"prepack_f32_min_rows", offsetof(mips_kernel_config, prepack_f32_min_rows), 1, 1 << 20},
};
enum { kNumFields = (int)(sizeof kFields / sizeof kFields[0]) };

/* The index in kFields of the field named key, or -1. */
static int field_index(const char* key) {
  if (key == NULL) return -1;
  for (int i = 0; i < kNumFields; ++i)
    if (mips_streq(key, kFields[i].key)) return i;
  return -1;
}

MIPS_EXPORT int mips_debug_set_config(const char* key, int64_t value) {
  mips_config();
  if (key != NULL && (mips_streq(key, "isa") || mips_streq(key, "bf16_isa"))) {
    /* a path (MIPS_ISA_*) this CPU has; f32/f16 have no AMX or VDPBF16PS path */
    const int bf16 = key[0] == 'b';
    if (value < 0 || value >= MIPS_ISA_COUNT || !mips_isa_supported((int)value)) return -1;
    if (!bf16 && (value == MIPS_ISA_AMX || value == MIPS_ISA_AVX512BF16)) return -1;
    *(bf16 ? &g_config.bf16_isa : &g_config.isa) = (int)value;
    write_info("set by mips_debug_set_config", "");
    return 0;
  }
  const int i = field_index(key);
  if (i < 0 || value < kFields[i].lo || value > kFields[i].hi) return -1;
  *(int*)((char*)&g_config + kFields[i].offset) = (int)value;
  write_info("set by mips_debug_set_config", "");
  return 0;
}

MIPS_EXPORT const char* mips_kernel_config_name(int index) {
  if (index == -1) return mips_config()->name;
  return index >= 0 && index < kNumEntries ? kEntries[index].name : NULL;
}

MIPS_EXPORT int mips_kernel_config_value(const char* config, const char* key, int64_t* value) {
  const mips_kernel_config* c =
      config == NULL || *config == '\0' ? mips_config() : find_entry(config);
  const int i = field_index(key);
  if (c == NULL || i < 0 || value == NULL) return -1;
  *value = *(const int*)((const char*)c + kFields[i].offset);
  return 0;
}

#endif /* MIPS_FREESTANDING */
