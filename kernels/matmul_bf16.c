/* mips_matmul_bf16: C (+)= A . B on bfloat16 (uint16_t bit patterns), summed
 * in f32 and rounded once (contract: mips_kernels.h). */
#include "mips_internal.h"

#define MM_T uint16_t
#define MM_KIND MM_KIND_BF16
#define MM_PARAMS mips_matmul_bf16_params
#define MM_LOAD(x) mips_bf16_to_f32(x)
#define MM_STORE(f) mips_f32_to_bf16(f)
#define MM_PREFIX mm_bf16
#define MM_KERNEL MIPS_K_BF16
#define MM_EXPORT_NAME mips_matmul_bf16
#define MM_RUN_NAME mips_matmul_bf16_run
#define MM_PACKED_EXPORT_NAME mips_matmul_packed_bf16
#define MM_PACKED_RUN_NAME mips_matmul_packed_bf16_run
#define MM_PACKED_KERNEL MIPS_K_PACKED_BF16
#define MM_PACK_EXPORT_NAME mips_pack_b_bf16
#define MM_PACK_KERNEL MIPS_K_PACK_B_BF16
#define MM_FUSED_EXPORT_NAME mips_matmul_packed_epilogue_bf16
#define MM_FUSED_RUN_NAME mips_matmul_packed_epilogue_bf16_run
#define MM_FUSED_PARAMS mips_matmul_packed_epilogue_bf16_params
#define MM_FUSED_KERNEL MIPS_K_PACKED_EPILOGUE_BF16
#define MM_FUSED_STEPS MIPS_K_PACKED_EPILOGUE_BF16_STEPS
#define MM_EPI_PARAMS mips_epilogue_bf16_params
#define MM_EPI_RUN_NAME mips_epilogue_bf16_run
#include "matmul_template.inc"
