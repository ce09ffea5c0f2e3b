/* mips_matmul_f32: C (+)= A . B on f32 (contract: mips_kernels.h). */
#include "mips_internal.h"

#define MM_T float
#define MM_KIND MM_KIND_F32
#define MM_PARAMS mips_matmul_f32_params
#define MM_LOAD(x) (x)
#define MM_STORE(f) (f)
#define MM_PREFIX mm_f32
#define MM_KERNEL MIPS_K_F32
#define MM_EXPORT_NAME mips_matmul_f32
#define MM_RUN_NAME mips_matmul_f32_run
#define MM_PACKED_EXPORT_NAME mips_matmul_packed_f32
#define MM_PACKED_RUN_NAME mips_matmul_packed_f32_run
#define MM_PACKED_KERNEL MIPS_K_PACKED_F32
#define MM_PACK_EXPORT_NAME mips_pack_b_f32
#define MM_PACK_KERNEL MIPS_K_PACK_B_F32
#define MM_FUSED_EXPORT_NAME mips_matmul_packed_epilogue_f32
#define MM_FUSED_RUN_NAME mips_matmul_packed_epilogue_f32_run
#define MM_FUSED_PARAMS mips_matmul_packed_epilogue_f32_params
#define MM_FUSED_KERNEL MIPS_K_PACKED_EPILOGUE_F32
#define MM_FUSED_STEPS MIPS_K_PACKED_EPILOGUE_F32_STEPS
#define MM_EPI_PARAMS mips_epilogue_f32_params
#define MM_EPI_RUN_NAME mips_epilogue_f32_run
#include "matmul_template.inc"
