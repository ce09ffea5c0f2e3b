/* Our own declarations of the IREE HAL *executable plugin* ABI, version 1
 * ("0_1"), as used by the IREE 3.13 runtime when it is given
 * `--executable_plugin=/abs/path/libmips_kernels.so`.
 *
 * IREE's pip packages ship no C headers, so this file declares only what the
 * plugin needs, with our own names (prefix `mips_iree_`).  The layouts must
 * match the runtime's bit for bit; the static asserts at the bottom pin the
 * sizes and offsets we rely on (x86-64 / LP64).
 *
 * Flow: the runtime dlopen()s the library, calls the exported
 * `iree_hal_executable_plugin_query(max_version, reserved)`, which returns the
 * address of a pointer to the header (in practice the address of a static
 * mips_iree_plugin_v0 whose first member is that header pointer).  It then
 * calls load() once, resolve() whenever an executable needs imports, and
 * unload() before dlclose().
 */
#ifndef MIPS_IREE_PLUGIN_ABI_H_
#define MIPS_IREE_PLUGIN_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIPS_IREE_PLUGIN_VERSION_1 1u
#define MIPS_IREE_PLUGIN_QUERY_NAME "iree_hal_executable_plugin_query"

/* header.features bits. 0 = a "system" plugin (may use libc, malloc, ...). */
#define MIPS_IREE_PLUGIN_FEATURE_STANDALONE (1u << 0)
#define MIPS_IREE_PLUGIN_FEATURE_FULL_STATUS (1u << 1)

/* header.sanitizer: 0 = built without a sanitizer. */
#define MIPS_IREE_PLUGIN_SANITIZER_NONE 0

/* A status is a pointer-sized integer.  Without FEATURE_FULL_STATUS it is just
 * a status code (low 5 bits); 0 is OK. */
typedef uintptr_t mips_iree_status;
#define MIPS_IREE_STATUS_OK ((mips_iree_status)0)
#define MIPS_IREE_STATUS_INVALID_ARGUMENT ((mips_iree_status)3)
#define MIPS_IREE_STATUS_NOT_FOUND ((mips_iree_status)5)
#define MIPS_IREE_STATUS_CODE_MASK ((mips_iree_status)0x1F)

/* Bits of resolve()'s *out_resolution. */
#define MIPS_IREE_RESOLUTION_MISSING_OPTIONAL (1u << 0)

typedef struct mips_iree_plugin_header {
  uint32_t version;        /* MIPS_IREE_PLUGIN_VERSION_1 */
  const char* name;        /* for logs/diagnostics */
  const char* description; /* for logs/diagnostics */
  uint32_t features;       /* MIPS_IREE_PLUGIN_FEATURE_* bits */
  int32_t sanitizer;       /* MIPS_IREE_PLUGIN_SANITIZER_* */
  uint64_t reserved[8];
} mips_iree_plugin_header;

/* The host allocator handed to load() (compatible with iree_allocator_t). */
typedef mips_iree_status (*mips_iree_allocator_ctl_fn)(void* self, int command,
                                                       const void* params,
                                                       void** inout_ptr);
typedef struct mips_iree_allocator {
  void* self;
  mips_iree_allocator_ctl_fn ctl;
} mips_iree_allocator;

typedef struct mips_iree_plugin_environment_v0 {
  mips_iree_allocator host_allocator;
} mips_iree_plugin_environment_v0;

/* A string view: data is NOT necessarily NUL-terminated. */
typedef struct mips_iree_string_view {
  const char* data;
  size_t size;
} mips_iree_string_view;

typedef struct mips_iree_string_pair {
  mips_iree_string_view key;
  mips_iree_string_view value;
} mips_iree_string_pair;

/* resolve() arguments.  symbol_names are NUL-terminated, sorted; a leading '?'
 * marks an optional import.  out_fn_ptrs[i] already non-NULL means an earlier
 * plugin/provider resolved it: leave it (and its context) alone. */
typedef struct mips_iree_resolve_params_v0 {
  size_t count;
  const char* const* symbol_names;
  void** out_fn_ptrs;
  void** out_fn_contexts;
} mips_iree_resolve_params_v0;

typedef struct mips_iree_plugin_v0 {
  const mips_iree_plugin_header* header; /* must be first */
  mips_iree_status (*load)(const mips_iree_plugin_environment_v0* environment,
                           size_t param_count,
                           const mips_iree_string_pair* params,
                           void** out_self);
  void (*unload)(void* self);
  mips_iree_status (*resolve)(void* self,
                              const mips_iree_resolve_params_v0* params,
                              uint32_t* out_resolution);
} mips_iree_plugin_v0;

/* The exported entry point: returns NULL if max_version < 1. */
typedef const mips_iree_plugin_header** (*mips_iree_plugin_query_fn)(
    uint32_t max_version, void* reserved);

/* Every resolved import is called as fn(params, context, reserved): params
 * FIRST, pointing at a packed struct (natural C alignment) holding the call's
 * results, then its arguments, then any hal.import.fields.  context is what
 * resolve() stored in out_fn_contexts (NULL for us).  Non-zero return fails
 * the dispatch ("dispatch kernel returned non-zero"). */
typedef int (*mips_iree_import_fn)(void* params, void* context, void* reserved);

#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(mips_iree_plugin_header) == 96, "header layout");
_Static_assert(offsetof(mips_iree_plugin_header, name) == 8, "header layout");
_Static_assert(offsetof(mips_iree_plugin_header, features) == 24, "layout");
_Static_assert(offsetof(mips_iree_plugin_header, reserved) == 32, "layout");
_Static_assert(sizeof(mips_iree_resolve_params_v0) == 32, "resolve layout");
_Static_assert(sizeof(mips_iree_plugin_v0) == 32, "v0 layout");
_Static_assert(sizeof(mips_iree_status) == sizeof(void*), "status size");
#endif

#ifdef __cplusplus
}
#endif

#endif /* MIPS_IREE_PLUGIN_ABI_H_ */
