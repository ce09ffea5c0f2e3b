/* What the freestanding object (-DMIPS_FREESTANDING, mips_kernels_embedded.o)
 * needs from a C library, defined here, hidden: memcpy and memset.  gcc and
 * clang emit calls to them on their own (struct copies, zeroing loops), and
 * IREE links the object with -nostdlib --no-undefined.  Byte loops: the
 * kernels' own copies are fixed-size and inlined (__builtin_memcpy), so these
 * only serve the few the compiler leaves as calls.  The build passes
 * -fno-tree-loop-distribute-patterns so that gcc does not turn these loops
 * back into calls to themselves.  The plugin build uses libc's (this file
 * then compiles to nothing). */
#include <stddef.h>

#ifdef MIPS_FREESTANDING
__attribute__((visibility("hidden"))) void* memcpy(void* restrict dst, const void* restrict src,
                                                   size_t n) {
  unsigned char* d = (unsigned char*)dst;
  const unsigned char* s = (const unsigned char*)src;
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
  return dst;
}

__attribute__((visibility("hidden"))) void* memset(void* dst, int c, size_t n) {
  unsigned char* d = (unsigned char*)dst;
  for (size_t i = 0; i < n; ++i) d[i] = (unsigned char)c;
  return dst;
}
#else
typedef int mips_freestanding_unused; /* ISO C: a translation unit declares something */
#endif
