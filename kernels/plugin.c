/* The IREE executable plugin "mips_kernels": lets the IREE runtime resolve
 * the imports mips_matmul_{f32,f16,bf16} and mips_matmul_openblas_f32 of
 * compiled executables to the functions in this library.  ABI: iree_plugin_abi.h; kernel contract:
 * mips_kernels.h.
 *
 * Use: iree-run-module --device=local-task \
 *        --executable_plugin=/abs/path/libmips_kernels.so ...
 * The plugin has no state: load() allocates nothing and sets self = NULL. */
#include <string.h>

#include "iree_plugin_abi.h"
#include "mips_internal.h"

typedef struct plugin_symbol {
  const char* name;
  mips_iree_import_fn fn;
} plugin_symbol;

static const plugin_symbol kSymbols[] = {
    {"mips_matmul_f32", mips_matmul_f32},
    {"mips_matmul_f16", mips_matmul_f16},
    {"mips_matmul_bf16", mips_matmul_bf16},
    {"mips_matmul_packed_f32", mips_matmul_packed_f32},
    {"mips_matmul_packed_bf16", mips_matmul_packed_bf16},
    {"mips_matmul_packed_epilogue_f32", mips_matmul_packed_epilogue_f32},
    {"mips_matmul_packed_epilogue_bf16", mips_matmul_packed_epilogue_bf16},
    {"mips_pack_b_f32", mips_pack_b_f32},
    {"mips_pack_b_bf16", mips_pack_b_bf16},
    /* OpenBLAS is opened on its first call, not when resolving: a module
     * that imports it fails its dispatch if it cannot be opened (mipsc checks
     * that before it runs one, with mips_openblas_error). */
    {"mips_matmul_openblas_f32", mips_matmul_openblas_f32},
    {"mips_epilogue_f32", mips_epilogue_f32},
    {"mips_epilogue_f16", mips_epilogue_f16},
    {"mips_epilogue_bf16", mips_epilogue_bf16},
    {"mips_attention_f32", mips_attention_f32},
    {"mips_attention_f16", mips_attention_f16},
    {"mips_attention_bf16", mips_attention_bf16},
};

static mips_iree_import_fn lookup_symbol(const char* name) {
  for (size_t i = 0; i < sizeof(kSymbols) / sizeof(kSymbols[0]); ++i) {
    if (strcmp(name, kSymbols[i].name) == 0) return kSymbols[i].fn;
  }
  return NULL;
}

static mips_iree_status plugin_load(
    const mips_iree_plugin_environment_v0* environment, size_t param_count,
    const mips_iree_string_pair* params, void** out_self) {
  (void)environment;
  (void)param_count;
  (void)params;
  if (out_self != NULL) *out_self = NULL;
  return MIPS_IREE_STATUS_OK;
}

static void plugin_unload(void* self) { (void)self; }

/* Fills every still-empty slot we know.  An unknown optional ("?name") stays
 * NULL and sets MISSING_OPTIONAL; an unknown required name makes the call
 * return NOT_FOUND, after filling whatever else it could (so that another
 * plugin may supply the rest). */
static mips_iree_status plugin_resolve(
    void* self, const mips_iree_resolve_params_v0* params,
    uint32_t* out_resolution) {
  (void)self;
  uint32_t resolution = 0;
  int missing_required = 0;
  if (out_resolution != NULL) *out_resolution = 0;
  if (params == NULL) return MIPS_IREE_STATUS_INVALID_ARGUMENT;
  for (size_t i = 0; i < params->count; ++i) {
    if (params->out_fn_ptrs[i] != NULL) continue; /* resolved elsewhere */
    const char* name = params->symbol_names[i];
    int optional = 0;
    if (name != NULL && name[0] == '?') {
      optional = 1;
      ++name;
    }
    mips_iree_import_fn fn = name != NULL ? lookup_symbol(name) : NULL;
    if (fn != NULL) {
      params->out_fn_ptrs[i] = (void*)fn;
      if (params->out_fn_contexts != NULL) params->out_fn_contexts[i] = NULL;
    } else if (optional) {
      resolution |= MIPS_IREE_RESOLUTION_MISSING_OPTIONAL;
    } else {
      missing_required = 1;
    }
  }
  if (out_resolution != NULL) *out_resolution = resolution;
  return missing_required ? MIPS_IREE_STATUS_NOT_FOUND : MIPS_IREE_STATUS_OK;
}

static const mips_iree_plugin_header kHeader = {
    .version = MIPS_IREE_PLUGIN_VERSION_1,
    .name = "mips_kernels",
    .description = "mipsc matmul kernels: mips_matmul_f32, mips_matmul_f16, "
                   "mips_matmul_bf16, mips_matmul_openblas_f32 (OpenBLAS)",
    .features = 0, /* system plugin (uses libc) */
    .sanitizer = MIPS_IREE_PLUGIN_SANITIZER_NONE,
    .reserved = {0},
};

static const mips_iree_plugin_v0 kPlugin = {
    .header = &kHeader,
    .load = plugin_load,
    .unload = plugin_unload,
    .resolve = plugin_resolve,
};

MIPS_EXPORT const mips_iree_plugin_header** iree_hal_executable_plugin_query(
    uint32_t max_version, void* reserved) {
  (void)reserved;
  if (max_version < MIPS_IREE_PLUGIN_VERSION_1) return NULL;
  /* The header pointer is kPlugin's first member. */
  return (const mips_iree_plugin_header**)&kPlugin;
}
