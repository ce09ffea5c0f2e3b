/* The bf16 matmul on Intel AMX (matmul_bf16_amx.c): internal, not exported. */
#ifndef MIPS_AMX_H_
#define MIPS_AMX_H_

#include "mips_kernels.h"

#ifdef MIPS_FREESTANDING
/* The freestanding object never runs AMX: Linux grants the tile data only to
 * a process that asks for it (arch_prctl, a syscall the object may not make;
 * IREE's runtime only queries the permission), and a tile instruction without
 * it kills the process.  bf16 takes the configuration's vector path. */
static inline int mips_bf16_amx_usable(void) { return 0; }
static inline int mips_bf16_amx_gemm(const mips_matmul_bf16_params* p) {
  (void)p;
  return -1;
}
#else
/* 1 if this CPU has AMX-TILE and AMX-BF16 (with AVX-512BW for the packing),
 * the OS enables the tile state and granted this process permission to use it
 * (asked once, on the first call), and MIPSC_DISABLE_AMX is unset or "0". */
__attribute__((visibility("hidden"))) int mips_bf16_amx_usable(void);

/* C (+)= A . B for a validated call with m, n, k > 0 (any strides), on AMX.
 * Same numerics as the other bf16 paths (exact products, f32 sums, one
 * rounding), except that AMX treats bf16 subnormal inputs as zero and flushes
 * subnormal f32 partial sums to zero.  0, or -1 (nothing written) if its
 * buffers cannot be allocated or a stride is too large for its fast paths
 * to handle. Only call when mips_bf16_amx_usable(). */
__attribute__((visibility("hidden"))) int mips_bf16_amx_gemm(
    const mips_matmul_bf16_params* p);
#endif /* MIPS_FREESTANDING */

#endif /* MIPS_AMX_H_ */
