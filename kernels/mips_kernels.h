/* mips_kernels.h -- THE call contract of libmips_kernels.so and of the
 * embedded kernel object mips_kernels_embedded.o.
 *
 * The compiler (mipsc) emits calls to these symbols either as IREE executable
 * imports, which the IREE runtime resolves through our executable plugin
 * (plugin.c; --kernel-link=plugin), or as direct calls into the freestanding
 * object that iree-compile links into the module (--kernel-link=embedded, the
 * default; "Embedded entry points" and "Builds" below).  The IREE workers
 * call them from several threads.  The tests in tests/unit/test_kernels.py
 * call the same exported functions through ctypes.
 *
 * ---------------------------------------------------------------------------
 * Symbols (import names == exported C names)
 *   mips_matmul_f32    T = float
 *   mips_matmul_f16    T = uint16_t holding IEEE-754 binary16 bit patterns
 *   mips_matmul_bf16   T = uint16_t holding bfloat16 bit patterns
 *   mips_matmul_openblas_f32
 *                      T = float, computed by OpenBLAS's sgemm where it can
 *                      (see "OpenBLAS backend" below)
 *   mips_epilogue_f32, mips_epilogue_f16, mips_epilogue_bf16
 *                      the elementwise chain after a matmul, on a tile of C,
 *                      T as for the matmul of that type (see "Epilogues")
 *   mips_matmul_packed_f32, mips_matmul_packed_bf16, mips_pack_b_f32,
 *   mips_pack_b_bf16   B packed once (see "Pre-packed B" below)
 *   mips_matmul_packed_epilogue_f32, mips_matmul_packed_epilogue_bf16
 *                      the packed matmul with the epilogue fused into its
 *                      store phase (see "Fused epilogue" below)
 *   mips_attention_f32, mips_attention_f16, mips_attention_bf16
 *                      fused scaled dot-product attention on a tile of query
 *                      rows of one head (see "Attention" below)
 *
 * Calling convention (IREE import ABI):
 *   int fn(void* params, void* context, void* reserved);
 * params points at the struct below; context and reserved are ignored (the
 * plugin resolves every context to NULL).  Returns 0 on success.
 *
 * Params struct (one per call; 16 fields of 8 bytes, natural C alignment, no
 * padding, 128 bytes):
 *
 *   struct { const T* a; int64_t a_offset, a_stride0, a_stride1;   A is m x k
 *            const T* b; int64_t b_offset, b_stride0, b_stride1;   B is k x n
 *            T* c;       int64_t c_offset, c_stride0, c_stride1;   C is m x n
 *            int64_t m, n, k;
 *            int64_t accumulate; }
 *
 *   Element (i, j) of X lives at x[x_offset + i * x_stride0 + j * x_stride1].
 *   Offsets and strides are in ELEMENTS, not bytes.  Strides may be any
 *   non-negative value: transposed views (stride0 == 1), slices/padded rows,
 *   and stride 0 to broadcast an input.  C must not overlap A or B, and
 *   distinct (i, j) of C must address distinct elements; otherwise the result
 *   is unspecified (this is not checked).
 *
 *   accumulate == 0:  C  = A . B      (C is only written)
 *   accumulate == 1:  C  = C + A . B  (C is read, then written)
 *
 * Numerics
 *   f32:      products summed in f32 (the order of the sum and the use of FMA
 *             are unspecified and may differ between CPUs).
 *   f16/bf16: inputs widened exactly to f32, products summed in f32, and the
 *             result rounded ONCE to the output type, round-to-nearest-even
 *             (overflow -> +-inf, NaN stays NaN).  With accumulate == 1 the
 *             old C is widened to f32 and added to the f32 sum of A . B, and
 *             that value is rounded once.
 *   bf16 on AMX (CPUs with AMX-BF16, when C has >= 16 rows and columns):
 *             the same, except that subnormal bf16 inputs are read as zero
 *             and subnormal f32 partial sums flush to zero (the hardware's
 *             rule; torch's own AMX kernels do the same).  Set the
 *             environment variable MIPSC_DISABLE_AMX=1 before the first
 *             call for the exact vector path.
 *   bf16 on AVX512-BF16 (VDPBF16PS; the configuration's bf16 path on AMD
 *             Zen 4 / Zen 5, when C has >= 16 rows and columns): products
 *             exact, summed in f32, one rounding to bf16 at the end as
 *             above, with the instruction's rules (Intel SDM, VDPBF16PS;
 *             checked on Zen 4): k is taken in pairs (k, k+1), k even, and
 *             each pair is two FMAs into the f32 sum, the k+1 product first,
 *             each rounded to nearest even (so the sum order is fixed: pairs
 *             in k order within a k block); bf16 inputs and the running sum
 *             are read with subnormals as zero, and a subnormal f32 sum is
 *             flushed to zero (MXCSR is ignored).  The old C (accumulate)
 *             and the final rounding are exact as on the other paths.  So
 *             the error bound is that of any f32 sum of the k products
 *             ((k + 2) * 2^-23 * sum |a||b| before the final rounding, the
 *             tests' bound), plus at most 2^-126 per flushed subnormal.
 *             MIPSC_KERNEL_CONFIG=avx2 (or the test hook's "avx512") gives
 *             the exact widening path.
 *   k == 0:   A . B is the zero matrix (C = 0, or C unchanged when
 *             accumulating); A and B may then be NULL.
 *
 * Errors: the call returns non-zero (an IREE dispatch then fails with
 * "dispatch kernel returned non-zero") and touches no memory when
 *   - params is NULL;
 *   - m, n, k, any offset or any stride is negative;
 *   - accumulate is neither 0 nor 1;
 *   - a, b or c is NULL, or not aligned to sizeof(T), while its matrix is
 *     non-empty (A: m*k > 0, B: k*n > 0, C: m*n > 0);
 *   - the largest element index (offset + (rows-1)*stride0 + (cols-1)*stride1)
 *     of a non-empty operand, or that index times sizeof(T), overflows int64.
 *
 * Threading: thread-safe and reentrant; IREE calls one kernel per output
 * tile from several worker threads at once.  No global mutable state except
 * the debug counters below and the configuration (chosen once, then only
 * read; mips_debug_set_config, for tuning, is the exception).
 *
 * OpenBLAS backend: mips_matmul_openblas_f32 takes the same params, checks
 * them the same way (the same errors) and has the f32 numerics above, but
 * runs the product in OpenBLAS's cblas_sgemm, single-threaded (IREE's task
 * system owns the threads and calls one kernel per tile from each worker).
 *   Library: opened once per process, on the first call (or the first
 *   mips_openblas_error()), with dlopen(RTLD_NOW | RTLD_LOCAL) of the path in
 *   the environment variable MIPSC_OPENBLAS_LIB (mipsc sets it to the library
 *   of the scipy-openblas32 package when the variable is unset).  Accepted:
 *   scipy-openblas32's prefixed scipy_cblas_sgemm with
 *   scipy_openblas_set_num_threads (tried first), or a plain OpenBLAS with
 *   cblas_sgemm and openblas_set_num_threads; its thread count is set to 1
 *   once, when it is opened.  The outcome, success or failure, holds for the
 *   life of the process.  If it cannot be opened, every valid call returns
 *   non-zero and touches no memory; mips_openblas_error() says why.
 *   Layouts: sgemm runs when every operand has a unit stride in one dimension
 *   and a leading dimension (the other stride) of at least that dimension's
 *   length (row-major, column-major or a transposed view; a stride of a
 *   size-1 dimension is ignored), m, n, k and the leading dimensions fit in
 *   int (INT_MAX), and m, n, k > 0; a column-major C is computed as
 *   C^T = B^T . A^T; beta = accumulate ? 1 : 0 (with 0, C is only written).
 *   Any other call (stride-0 broadcasts, non-unit strides in both
 *   dimensions, overlapping rows, k == 0, an empty C, sizes beyond int)
 *   is computed by the builtin f32 kernel instead, exactly as mips_matmul_f32
 *   would (but counted as below, not as a mips_matmul_f32 call).
 *   mips_openblas_error() opens the library if that was not tried yet and
 *   returns NULL when it is usable, else a message saying why not (a static
 *   string, valid for the life of the process).  mips_openblas_corename()
 *   returns OpenBLAS's name for the core its kernels were picked for (e.g.
 *   "Haswell"; OPENBLAS_CORETYPE overrides it), or NULL when the library is
 *   not open or cannot tell; it never opens the library itself.
 *
 * Epilogues: mips_epilogue_<type>(params, context, reserved), the same
 * calling convention; params points at (16 fields of 8 bytes, 128 bytes):
 *
 *   struct { T* c;          int64_t c_offset, c_stride0, c_stride1;       C is m x n
 *            const T* bias; int64_t bias_offset, bias_stride;             bias is 1 x n
 *            const T* other; int64_t other_offset, other_stride0, other_stride1;
 *                                                                          other is m x n
 *            int64_t m, n;
 *            int64_t bias_mode, activation, binary; }
 *
 *   Element j of bias lives at bias[bias_offset + j * bias_stride]; C and
 *   other are addressed as the matmul's operands.  For each (i, j), with x
 *   the element of C widened to f32 and R(v) v rounded to T (nearest even;
 *   R is the identity for f32):
 *     bias_mode  MIPS_EPILOGUE_BIAS_SET (2): C = bias[j], nothing else (the
 *                  init of a product that then accumulates into C: a bias
 *                  added before the product is rounded, as torch's linear
 *                  and addmm do); activation and binary must be NONE;
 *                MIPS_EPILOGUE_BIAS_ADD (1): x = R(x + bias[j]);
 *                MIPS_EPILOGUE_NONE (0): no bias (bias may be NULL).
 *     activation MIPS_EPILOGUE_RELU (1) x = R(x < 0 ? 0 : x) (NaN stays);
 *                MIPS_EPILOGUE_GELU (2) x = R(x * 0.5 * (1 + erf(x / sqrt 2)));
 *                MIPS_EPILOGUE_GELU_TANH (3)
 *                  x = R(0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))));
 *                MIPS_EPILOGUE_SILU (4) x = R(x / (1 + exp(-x)));
 *                MIPS_EPILOGUE_NONE (0) x unchanged.
 *     binary     MIPS_EPILOGUE_ADD (1) x = R(x + other[i, j]);
 *                MIPS_EPILOGUE_MUL (2) x = R(x * other[i, j]);
 *                MIPS_EPILOGUE_NONE (0) (other may be NULL).
 *   then C = x.  Each step rounds to T as torch's eager ops do in f16/bf16
 *   (each op widens to f32, computes, rounds its result), so a fused chain
 *   gives torch's numbers for the same chain of ops.  The activations follow
 *   torch's order of operations (ATen's vectorized CPU kernels) in f32, with
 *   the kernels' own exp, erf and tanh (kernels/epilogue_math.inc): at most
 *   2 ulp from the exact functions for normal results (measured: exp 0.97,
 *   erf 1.26, tanh 1.50 ulp); NaN gives NaN, +-inf the functions' limits.
 *   GELU from the exact function: at most 1e-7 * |x| (the rounding of
 *   1 + erf near -1, torch's formula); torch 2.13's own f32 GELU on AVX-512
 *   (ATen's erf is a short approximation, Abramowitz and Stegun 7.1.26) is
 *   up to 2.8e-7 * |x| off (both measured on [-10, 10]), so the two differ
 *   by up to about 3.5e-7 * |x|.  Unlike torch's, gelu(+inf) is +inf.
 *   Errors (non-zero return, no memory touched): params NULL; m or n
 *   negative; an unknown bias_mode, activation or binary; BIAS_SET with an
 *   activation or a binary op; an operand that is used (C when m*n > 0; bias
 *   when bias_mode != NONE and n > 0; other when binary != NONE and m*n > 0)
 *   failing the matmul's operand checks (negative offset or stride, NULL or
 *   misaligned pointer, largest index overflowing).  other must not overlap
 *   C (unless other is C itself); bias may.  Paths: SSE2, AVX2+FMA,
 *   AVX-512F, chosen as the configuration's f32 path (the bf16 epilogue
 *   runs AVX-512 where bf16 runs on AMX or VDPBF16PS); the results of the
 *   paths may differ by the FMA contraction, within the bounds above.
 * Pre-packed B (weights packed once, when the model loads):
 *   mips_pack_b_f32 / mips_pack_b_bf16 (T = float / uint16_t bf16 bits) copy a
 *   B of k x n, any strides, into the PACKED LAYOUT below, padding included;
 *   mips_matmul_packed_f32 / mips_matmul_packed_bf16 compute C (+)= A . B
 *   from it, with the numerics of mips_matmul_f32 / mips_matmul_bf16 on this
 *   CPU (the same path: the configuration's f32 path; bf16 on VDPBF16PS when
 *   the CPU has it, AMX CPUs included, whatever the size of C, else widened
 *   to f32 as in mips_matmul_bf16's vector paths), except that f32 with at
 *   most 4 rows of C sums each element's k products in order, one FMA after
 *   another (matmul_gemm.inc's packed_thin: the products that stream B), where
 *   mips_matmul_f32's few-rows loops sum them in vector lanes: equal up to
 *   f32 rounding.  The layout does not
 *   depend on the CPU, so its size is known when the model is compiled:
 *     PANEL = MIPS_PACKED_B_PANEL = 32 columns (every path's register tile
 *       width, 8, 16 or 32, divides it);
 *     Kp = MIPS_PACKED_B_ROWS(k) = k rounded up to even (bf16 k pairs);
 *     Np = MIPS_PACKED_B_COLS(n) = n rounded up to a multiple of PANEL;
 *     Kp * Np elements of T (MIPS_PACKED_B_SIZE(k, n)); padding is zero.
 *   Panel t holds columns [32t, 32t + 32) in elements [32t * Kp, 32(t+1) * Kp):
 *     f32:  element (q, j) at 32 * Kp * (j / 32) + 32 * q + j % 32
 *           (row q of the panel is 32 contiguous floats);
 *     bf16: element (q, j) at 32 * Kp * (j / 32) + 64 * (q / 2) + 2 * (j % 32)
 *           + q % 2 (rows q, q + 1 interleaved: each 32-bit word is the k pair
 *           of one column, as VDPBF16PS reads it).
 *   Both give element (q, j) of a tile starting at row q0 (even) and column
 *   j0 (a multiple of 32) at the tile's offset j0 * Kp + 32 * q0 plus the
 *   index of (q - q0, j - j0) in a layout of the same Kp.
 *
 *   Pack params (8 fields of 8 bytes, 64 bytes):
 *     struct { const T* b; int64_t b_offset, b_stride0, b_stride1;  B: k x n
 *              T* packed; int64_t packed_offset;                   output
 *              int64_t k, n; }
 *   writes the MIPS_PACKED_B_SIZE(k, n) elements from packed + packed_offset
 *   (B's columns [j0, j0 + n) of a larger B go to packed_offset j0 * Kp with
 *   Kp of the whole B, when j0 is a multiple of 32 and k is the whole k: the
 *   layout of the larger B, so that a pack can be split over column tiles).
 *   Errors (non-zero, nothing written): params NULL; k, n, an offset or a
 *   stride negative; packed_offset odd; B checked as a matmul operand; packed
 *   NULL or not 4-byte aligned, or its last index (or in bytes) overflowing
 *   int64, while k * n > 0.  k == 0 or n == 0 writes nothing.
 *
 *   Matmul params: the matmul struct above, with B described as
 *     b = the packed buffer, b_offset = the tile's offset (j0 * Kp + 32 * q0,
 *     even), b_stride0 = Kp (even, >= k), b_stride1 = MIPS_PACKED_B_PANEL;
 *   the call reads whole panels (padding included) of B's k rows from there.
 *   Errors: those of the matmul on A, C, m, n, k and accumulate, plus
 *   b_stride1 != 32, b_stride0 odd or < k, b_offset negative or odd, and, with
 *   k * n > 0, b NULL or not 4-byte aligned or its last index overflowing.
 *   Counters "mips_matmul_packed_f32", "mips_matmul_packed_bf16",
 *   "mips_pack_b_f32" and "mips_pack_b_bf16" count the calls; the bf16
 *   calls that ran on VDPBF16PS also count as "mips_matmul_bf16:avx512bf16".
 *   The test hook below takes the two packed matmul symbols too.
 *   No allocation besides the GEMM's usual buffers (the A panels, and the
 *   B slivers of a bf16 B widened to f32), no globals, no thread-local
 *   state, no libm.  Embedded entry points: see below.
 *
 * Fused epilogue (ABI 10): mips_matmul_packed_epilogue_f32 / _bf16 (T =
 * float / uint16_t bf16 bits) are the packed matmul above with the
 * epilogue's chain applied in its store phase: one call instead of the three
 * a linear with a bias and an activation made (the epilogue with BIAS_SET,
 * the packed matmul accumulating, the epilogue with the activation).  params
 * points at (26 fields of 8 bytes, 208 bytes): the packed matmul's 16
 * fields, then the epilogue's bias, other and kinds:
 *
 *   struct { const T* a;  int64_t a_offset, a_stride0, a_stride1;
 *            const T* b;  int64_t b_offset, b_stride0, b_stride1;   B pre-packed
 *            T* c;        int64_t c_offset, c_stride0, c_stride1;
 *            int64_t m, n, k, accumulate;
 *            const T* bias;  int64_t bias_offset, bias_stride;
 *            const T* other; int64_t other_offset, other_stride0, other_stride1;
 *            int64_t bias_mode, activation, binary; }
 *
 *   Result: bit for bit that of these calls on the same operands (the
 *   epilogue's and the packed matmul's entry points, this CPU's paths):
 *     1. bias_mode == BIAS_SET: the epilogue with BIAS_SET (C = bias[j]);
 *     2. the packed matmul with accumulate = accumulate || bias_mode == BIAS_SET
 *        (so the product starts from the bias and is rounded once with it,
 *        as torch's linear and addmm round);
 *     3. when bias_mode == BIAS_ADD, activation or binary is not NONE: the
 *        epilogue with bias_mode (BIAS_ADD or NONE), activation and binary:
 *        C = R(binary(R(activation(R(C + bias))), other)), each step rounded.
 *   How: with more than 4 rows of C and k > 0, on the AVX-512 GEMM (f32,
 *   or bf16 widened) and on VDPBF16PS, the kernel adds the bias to the sums
 *   where it would add the old C (f32: the first k block; bf16: the last,
 *   before the one rounding), and right after the microkernels of the last
 *   k block store a strip of C (the block's rows x 32 columns) it runs the
 *   epilogue's own code (epilogue.c, the configuration's f32 path) on it,
 *   still in L1.  Thin products (at most 4 rows), k == 0, the AVX2 and SSE2
 *   paths (measured slower fused) and a call whose buffers do not fit make
 *   the three calls' steps in turn, with the same result.
 *   Errors: those of the packed matmul, those of the epilogue on bias, other
 *   and the kinds (BIAS_SET may come with an activation and a binary here),
 *   and BIAS_SET with accumulate == 1; nothing is written then.  Counted as
 *   "mips_matmul_packed_epilogue_<type>" (not as the packed matmul or the
 *   epilogue; a bf16 call on VDPBF16PS also as "mips_matmul_bf16:avx512bf16");
 *   "mips_matmul_packed_epilogue_<type>:steps" counts the valid calls that made
 *   the three steps in turn (through the test hook too).
 *   Embedded entry points mips_matmul_packed_epilogue_<type>_embedded: the 26
 *   params as arguments in the struct's order, then void* workspace, int64_t
 *   workspace_bytes (the packed matmul's workspace); the test hook takes the
 *   two symbols too (the epilogue then runs the forced path as well).
 *
 * Attention (ABI 6): mips_attention_<type>(params, context, reserved), the
 * same calling convention; T as for the matmul of that type; params points
 * at (26 fields of 8 bytes and a float, 216 bytes with the padding):
 *
 *   struct { const T* q;    int64_t q_offset, q_stride0, q_stride1;        Q is m x e
 *            const T* k;    int64_t k_offset, k_stride0, k_stride1;        K is n x e
 *            const T* v;    int64_t v_offset, v_stride0, v_stride1;        V is n x ev
 *            const T* mask; int64_t mask_offset, mask_stride0, mask_stride1;
 *                                                           mask is m x n (additive)
 *            T* o;          int64_t o_offset, o_stride0, o_stride1;        O is m x ev
 *            int64_t m, n, e, ev;
 *            int64_t has_mask, causal_row0;
 *            float scale; }      (4 bytes of padding follow)
 *
 *   Operands are addressed as the matmul's (element strides, stride 0
 *   broadcasts).  For each query row i < m, with s_j = (Q_i . K_j) * scale
 *   (+ mask[i, j] when has_mask == 1) over the keys j the row sees (all n, or
 *   with causal_row0 >= 0 those with j <= causal_row0 + i: torch's is_causal,
 *   the top-left corner of tril(ones(L, S)), for a tile whose first row is
 *   query causal_row0), O_i = sum_j softmax(s)_j V_j; a row whose visible
 *   scores are all -inf (or that sees no key) is 0, as torch's _safe_softmax
 *   gives (torch >= 2.5).  causal_row0 == -1: no causal masking.
 *   Numerics: f16/bf16 inputs (and mask) widened exactly to f32; scores, the
 *   softmax and the sums in f32 (blocks of at most 64 query rows by 512 keys,
 *   256 on AVX-512, where blocks of 16 rows or more compute both products in
 *   the attention's own register tiles, with Q multiplied by the scale before
 *   the product, and exp(x) below FLT_MIN taken as 0; else by the f32 GEMM of
 *   this CPU's configuration); online
 *   softmax (the running maximum and sum per row, the partial O rescaled by
 *   exp(old max - new max) when it grows) with the epilogues' exp (at most 2
 *   ulp); O rounded ONCE to T at the end (nearest even).  So the result
 *   differs from torch's math path by f32 rounding only (sum order, exp).
 *   Errors (non-zero return, no memory touched): params NULL; m, n, e or ev
 *   negative; has_mask not 0 or 1; causal_row0 < -1; an operand (q, k, v, o,
 *   and mask when has_mask) failing the matmul's operand checks.  m == 0 or
 *   ev == 0 writes nothing; n == 0 (no key) gives O = 0.
 *   Memory: the import entry allocates MIPS_ATTENTION_WORKSPACE bytes per
 *   call (64-byte aligned) for its blocks and the GEMMs' panels; the
 *   embedded entries use the workspace lent.  With none (or one too small)
 *   the rows are computed one at a time with no buffer (slow, same
 *   numerics up to the sum order).  Counted as "mips_attention_<type>".
 *   Embedded entry points mips_attention_<type>_embedded: the 27 params as
 *   arguments in the struct's order (scale a float), then void* workspace,
 *   int64_t workspace_bytes.
 *
 * Debug counters (for tests that must prove a kernel really ran):
 *   mips_debug_call_count(symbol) returns how many times the named kernel was
 *   entered (every call counts, including rejected ones) since load or the
 *   last reset; 0 for an unknown or NULL name.  Two more names count where
 *   the valid calls of mips_matmul_openblas_f32 went (after the library was
 *   opened): "mips_matmul_openblas_f32:sgemm" (OpenBLAS computed it) and
 *   "mips_matmul_openblas_f32:fallback" (the builtin f32 kernel did; these
 *   calls do not count as mips_matmul_f32).  "mips_matmul_bf16:amx" counts
 *   the bf16 calls that ran on AMX (through the test hook too).  Relaxed
 *   atomics, so a count
 *   read while other threads call is only a snapshot.
 *   mips_debug_thread_count() returns how many distinct threads entered any
 *   kernel since load or the last reset (proof that IREE spread the tiles
 *   over its workers).  Threads alive at the same time are always told apart;
 *   a thread that exited may share its identity (the address of its
 *   thread-local storage) with a later one, so such a pair counts once.  The
 *   count saturates at 64.  Each thread pays for registering once per reset
 *   (a thread-local check on every later call); a reset while kernels run
 *   may leave the count off by the threads that were registering.
 *   mips_debug_reset_counts() zeroes both the call and the thread counts.
 *
 * ABI version: mips_kernel_abi_version() returns MIPS_KERNEL_ABI_VERSION, the
 * version of this contract the library was built for (defined below, the
 * only place in C; -DMIPS_KERNEL_ABI_VERSION=<n> overrides it, which the tests
 * use to build stale plugins).  mipsc's copy is KERNEL_ABI_VERSION in
 * src/mipsc/kernel_abi.py (a test checks they agree): before handing a plugin
 * to IREE, mipsc refuses one whose version differs, or that lacks this
 * function (a build older than the versioning).  Bump both with every change
 * a compiled module or mipsc could notice: a symbol, the params struct's
 * layout or meaning, the numerics, the errors.  Versions: 1 the three
 * builtin kernels; 2 adds mips_matmul_openblas_f32, mips_openblas_error,
 * mips_openblas_corename and the ":sgemm" / ":fallback" counters; 3 bf16 on
 * VDPBF16PS and the per-CPU configuration; 4 the embedded entry points and
 * mips_kernel_abi_tag; 5 the epilogues (mips_epilogue_<type>, counted under
 * their symbols) and pre-packed B (mips_pack_b_f32, mips_pack_b_bf16,
 * mips_matmul_packed_f32, mips_matmul_packed_bf16), each with its embedded
 * entry points (neither was released under a version of its own: on their
 * branches both were numbered 4, which main's embedded entry points took);
 * 6 fused attention (mips_attention_<type> and their embedded entry points);
 * 7 the tile cost model in the configuration (mips_kernel_config_name,
 * mips_kernel_config_value, the tile_* fields and mips_kernel_info's line).
 * 8 mips_matmul_packed_f32 with at most 4 rows of C sums each column's k
 * products in order, one FMA after another (packed_thin), no longer as the
 * packed GEMM does (results may differ from 7's, and from mips_matmul_f32's
 * few-rows loops, in the last bits).
 * 9 mips_collapse_huge_pages (huge pages for memory already written, by
 * mipsc's runtime) and the prepack_f32_min_rows field of the configuration.
 * 10 the fused epilogue: mips_matmul_packed_epilogue_f32, _bf16 and their
 * embedded entry points.
 *
 * Embedded entry points (ABI 4): mips_matmul_f32_embedded, _f16_embedded,
 * _bf16_embedded take the 16 params above as arguments, in the struct's
 * order (pointers, then int64_t), then
 *     void* workspace, int64_t workspace_bytes
 * and return the kernel's result (0, or non-zero for the errors above, with
 * no memory touched).  The workspace is scratch memory lent for the call (the
 * module passes IREE workgroup-local memory: the target CPU's L2 size, up to
 * 1 MiB, kernel_config.py embedded_workspace_bytes, since IREE's workers have
 * their L2's size of it); the kernel packs its panels there and never
 * allocates.  It fits its cache blocks into the workspace: fewer rows of the
 * f16/bf16 partial sums first, then KC, NC and MC halved (so a small
 * workspace is slower, never wrong); with none usable (NULL, or too small for
 * the smallest blocks) the call still succeeds through a plain loop.
 * Numerics and errors are those of the plain entry points, except that a
 * different KC (a workspace too small for the configuration's) changes the
 * f32 summation order.  IREE ignores the returned value: a rejected call
 * fails no dispatch (the plugin route does), it leaves C as it was.  Both
 * builds export these entry points (the plugin's for ctypes tests); only the
 * plugin has the import-ABI entry points mips_matmul_<t>.
 *   The epilogues' (ABI 5): mips_epilogue_f32_embedded, _f16_embedded,
 *   _bf16_embedded take the 16 epilogue params as arguments, in the struct's
 *   order, and no workspace (an epilogue needs none); numerics and errors are
 *   those of mips_epilogue_<type>.  The plugin counts a call of either entry
 *   under the kernel's symbol; the object has no counters, and only the
 *   plugin has the import-ABI entry points mips_epilogue_<type>.
 *   Pre-packed B's (ABI 5): mips_matmul_packed_f32_embedded, _bf16_embedded
 *   take the matmul params as arguments (B described as in "Pre-packed B"),
 *   then the workspace, which holds the A panels (and the widened B slivers
 *   of the bf16 paths other than VDPBF16PS), fitted as above;
 *   mips_pack_b_f32_embedded, mips_pack_b_bf16_embedded take the 8 pack
 *   params as arguments and no workspace.  Numerics, errors and counting as
 *   for the epilogues' entries above.
 *
 * Builds (`make kernels` makes both, from the same sources):
 *   libmips_kernels.so          the plugin: libc, everything in this header.
 *   mips_kernels_embedded.o     -DMIPS_FREESTANDING, one relocatable object
 *       (ld -r) that IREE links -nostdlib -static --no-undefined into each
 *       executable.  It has the embedded entry points,
 *       mips_kernel_abi_version and mips_kernel_abi_tag (the bytes
 *       "mips_kernel_abi_version=<n>;", which mipsc reads from the file to
 *       refuse a stale object and to tell an embedded module from a plugin
 *       one), and nothing else of this header: no counters, no test hook, no
 *       mips_kernel_info, no OpenBLAS, no AMX.
 *   Freestanding rules, for every source compiled into the object: no libc
 *   call (compiler headers only: stdint, stddef, immintrin, cpuid; memcpy /
 *   memset are allowed as __builtin_ ones and the object defines hidden
 *   fallbacks, freestanding.c); no malloc (packing memory is the workspace,
 *   mips_scratch in mips_internal.h); no syscalls; no thread-locals; no
 *   getenv; no __builtin_cpu_supports (cpuid / xgetbv by inline asm,
 *   common.c); no mutable globals except the configuration, which is written
 *   once and published atomically (mips_config.c says why); plugin-only code
 *   goes under #ifndef MIPS_FREESTANDING or in a file the Makefile leaves out
 *   of the object (plugin.c, openblas.c, matmul_bf16_amx.c).  The Makefile
 *   rule fails if `nm -u` of the object lists anything.
 *   Configuration in the object: chosen once per loaded module from cpuid by
 *   the plugin's rule (the same entries, blocks and ISA paths); it cannot read
 *   the environment, so MIPSC_KERNEL_CONFIG and the MIPSC_KERNEL_* overrides
 *   do not apply; an entry is forced at build time with
 *   -DMIPS_FORCE_CONFIG=avx2 (make EMBEDDED_DEFS=..., for tests), ignored
 *   if the CPU lacks its ISA.  AMX: never (Linux grants the tile data only to
 *   a process that asks with arch_prctl, a syscall; IREE's runtime only
 *   queries it): on AMX machines bf16 takes the entry's vector path.
 *
 * Profiling build only (-DMIPS_PROFILE, `make kernels-profile`):
 *   int mips_debug_profile(uint64_t* cycles, uint64_t* calls) copies out and
 *   zeroes the time-stamp-counter cycles and calls summed per part of the
 *   GEMM (MIPS_PROF_* in mips_internal.h); single-threaded use only.
 *
 * Kernel configuration: the kernels are written once per instruction set
 * (a fixed register tile each: SSE2 4x8, AVX2 6x16, AVX-512 12x32 f32
 * tiles, AVX512-BF16 12x32, AMX 32x32); a configuration per CPU family
 * (kernels/mips_config.c: "zen4", "zen5", "intel-avx512", "avx2", "sse2")
 * says which of them each type runs and with which cache blocks (KC, MC, NC
 * in elements; a KC of its own for a pre-packed f32 B, which is read in place
 * and so bounds no buffer), B prefetch distance (rows), A pack routine, and
 * thin_streams: how many stripes of B's columns (f32, a transposed B) or panels
 * (a pre-packed B) a product with at most 4 rows of C reads at once, as that
 * many sequential streams far apart (1, 2 or 4; other values clamp).  It is chosen
 * once per process, on the first call, from cpuid: vendor, family and model,
 * the ISA features
 * (with the OS's register state), and the L1d / L2 / L3 sizes from cpuid's
 * cache leaves (4 on Intel, 0x8000001D on AMD), which give the blocks of the
 * generic entries.  The environment variable MIPSC_KERNEL_CONFIG=<name>
 * forces an entry (ignored, and said so, if this CPU lacks its ISA);
 * MIPSC_KERNEL_KC / _MC / _NC, MIPSC_KERNEL_PACKED_KC, MIPSC_KERNEL_BF16_KC /
 * _MC / _NC, MIPSC_KERNEL_THIN_STREAMS, MIPSC_KERNEL_PACK_A_T16 (0 or 1) and
 * MIPSC_KERNEL_PACK_HUGE_PAGES (0 or 1) override single fields (for tuning runs).
 * pack_huge_pages (plugin only, 1 on every CPU): mips_pack_b_<t> advises huge pages
 * (madvise MADV_HUGEPAGE) on the 2 MiB regions of the packed buffer that its call writes,
 * from the buffer's start (params.packed) on, before writing them, so that the thin
 * products that stream it pay no 4 KiB page walks; advice only (the layout and contents
 * are the same; a failure changes nothing; the last region may reach less than 2 MiB past
 * the buffer).  The freestanding object never advises: it makes no syscalls, and its
 * module may run on any OS (mipsc's runtime collapses its packs into huge pages after the
 * load: "Huge pages after the fact"; pack_huge_pages = 0 stops that too).  AMX, where this
 * process may use it, is the bf16 path whatever the entry says.
 * mips_kernel_info() returns the choice as text, "key=value" fields on
 * lines: config (and why), cpu (vendor, family, model, l1d/l2/l3 bytes),
 * f32_path / f16_path / bf16_path (the ISA names of the test hook below),
 * f32_tile / bf16_tile (the register tile of that path's kernel, rows x
 * columns of C; f16 has f32's), the blocks, and about (the entry's CPUs and the source of its numbers);
 * a static string, valid for the life of the process.  `mipsc kernel-info`
 * prints it.  For tuning runs only (tools/tune_kernels.py),
 * mips_debug_set_config(key, value) sets one block of the live configuration
 * ("kc", "mc", "nc", "packed_kc", "bf16_kc", "bf16_mc", "bf16_nc", "bf16_packed_kc",
 * "b_prefetch_rows", "thin_streams"; 1 to
 * 2^20; "pack_a_t16", 0 or 1: how AVX-512 packs a row-major A; "pack_huge_pages", 0 or 1;
 * "b_next_prefetch", 0 or 1: whether the microkernels prefetch the next B sliver;
 * "c_prefetch_ahead", 0 to 2^20: steps of k before the end of its k block at which a
 * microkernel prefetches its tile of C, 0 at its start; "isa" and
 * "bf16_isa": the path, as the index of the name in the test hook's list
 * below, "generic" = 0 .. "avx512bf16" = 4, one this CPU has, AMX and
 * AVX512-BF16 for bf16 only) and returns 0, or -1 for another key or value; it must not run while
 * any kernel runs (not synchronized), and a later mips_kernel_info() shows
 * the change.  "mips_matmul_bf16:avx512bf16" counts the bf16 calls that ran
 * on VDPBF16PS.
 *
 * Huge pages after the fact (ABI 9; plugin only):
 *   int64_t mips_collapse_huge_pages(void* begin, uint64_t bytes)
 *   advises huge pages (madvise MADV_HUGEPAGE) on the 2 MiB-aligned regions
 *   that lie wholly inside [begin, begin + bytes) and collapses the pages
 *   already there into huge pages, region by region (MADV_COLLAPSE, Linux 6.1+:
 *   synchronous, a copy; a region never written stays empty, and takes huge
 *   pages when first written); returns the bytes so collapsed, 0 when none were (no
 *   whole region, or a kernel without MADV_COLLAPSE, where khugepaged may
 *   collapse them later), -1 when nothing was advised (begin NULL, the range
 *   wrapping, not Linux, the madvise refused, or pack_huge_pages = 0).
 *   Contents never change.  Why: the embedded object's mips_pack_b_<t>_embedded
 *   cannot advise (no syscalls) and IREE 3.13's dispatch code cannot call an
 *   optional import either (an import named "?..." makes stock iree-run-module
 *   refuse the executable without a plugin, and a plugin that lacks the symbol
 *   leaves a NULL that the generated code calls); so mipsc's runtime
 *   (mipsc.load) calls this on the anonymous memory a module's load mapped (its
 *   constants and the weights packed at load), and the same .vmfb run
 *   elsewhere keeps 4 KiB pages.
 *
 * Tile cost model (ABI 7): each configuration entry also holds the constants
 * of the lowering's tile cost model (src/mipsc/tiling.py, choose_tiles and
 * choose_thin_tiles), so that one entry per CPU kind says both how the kernels
 * block and which output tile each IREE workgroup gets; mipsc reads the entry
 * of the compile's target CPU from this plugin at compile time (the kernels
 * never read these fields).  int fields, by key:
 *   tile_max_rows, tile_max_cols  the largest tile of C (rows, columns);
 *   tile_packed_max_cols  the widest tile of a 17-132-row product whose B is
 *       packed at load (no B panel per tile: width costs no L2 room);
 *   tile_pack_flops       packing one element of A or B, in microkernel flops;
 *   tile_narrow_cols      a tile of C columns runs at C / (C + this) of the
 *       kernel's speed (fewer B slivers per A sliver);
 *   tile_workgroup_flops  a workgroup's cost besides its work (dispatch, the
 *       kernel's allocation), in flops;
 *   tile_wake_flops       sharing a dispatch with other workers, once;
 *   tile_one_worker_pct   the weight, in percent, of the time on one worker
 *       beside the time on all of them;
 *   tile_thin_bytes       the fewest bytes of B a tile of a product with at
 *       most 4 rows reads (each tile starts its streams cold).
 *   prepack_f32_min_rows (ABI 9)  the fewest rows of C (static M) for which
 *       pack-weights packs a constant f32 B at load (bf16 B always; a dynamic M
 *       always): not a tile, but the same kind of per-CPU lowering choice.
 * Their sources (mips_config.c, MIPS_TILE_*): the GEMM part (all but
 * tile_packed_max_cols, tile_thin_bytes and prepack_f32_min_rows) was fitted through IREE
 * on the Intel Xeon of BENCHMARKS.md (2026-11-29), tile_packed_max_cols and tile_thin_bytes
 * measured on the AMD EPYC Zen 4 (2026-11-30), prepack_f32_min_rows there
 * (2026-12-01); every other entry carries them over,
 * not measured, and says so.  A new CPU kind gets measured values from
 * tools/tune_kernels.py --param tile_<field>=... (the module compiled once
 * per value, all run interleaved).  mips_kernel_config_name(i) is the name of
 * table entry i (0 .. count-1; NULL past the end), or with -1 this process's
 * configuration's (mips_kernel_info's config=, MIPSC_KERNEL_CONFIG applied).
 * mips_kernel_config_value(config, key, &value) stores the int field `key`
 * (any key mips_debug_set_config takes but isa and bf16_isa, or a tile_ one)
 * of the table entry named `config` as written (a block an entry leaves at 0
 * reads 0: the CPU that runs it fills it from its caches), or with NULL or ""
 * of this process's live configuration (after the MIPSC_KERNEL_*
 * overrides and mips_debug_set_config, which sets the tile_ fields too:
 * tile sizes and prepack_f32_min_rows 1 to 2^20, tile_thin_bytes 1 to 2^30, the flops 0 to 2^30,
 * tile_one_worker_pct 0 to 2^20), and returns 0; -1 for an unknown
 * entry or key.  mips_kernel_info has a line of the tile_ fields.  Plugin
 * only (the object has neither function).
 *
 * Test hook: mips_debug_matmul_isa(symbol, isa, params) runs one kernel with
 * the code path for instruction set `isa` forced ("generic" = baseline
 * x86-64, "avx2" = AVX2+FMA, "avx512" = AVX-512F, "amx" = AMX-BF16 for
 * bf16, "avx512bf16" = VDPBF16PS for bf16; f32 and f16 run AVX-512F with
 * the last two).  It returns the kernel's
 * result, or -1 without running anything when the symbol or isa is unknown
 * or this CPU lacks that isa (mips_matmul_openblas_f32 is not a symbol it
 * knows).  It runs the epilogues too (symbol mips_epilogue_<type>, params
 * as above; "amx" and "avx512bf16" run their AVX-512 path), and the fused
 * epilogues (mips_matmul_packed_epilogue_<type>: the matmul on the forced
 * path, the chain on the epilogue's path for it).  It does not
 * touch the debug counters.  The
 * normal entry points take the configuration's paths (above).
 * ---------------------------------------------------------------------------
 */
#ifndef MIPS_KERNELS_H_
#define MIPS_KERNELS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIPS_EXPORT __attribute__((visibility("default")))

#ifndef MIPS_KERNEL_ABI_VERSION
#define MIPS_KERNEL_ABI_VERSION 10
#endif

/* The matmul's params, in order (also the start of the fused epilogue's). */
#define MIPS_MATMUL_PARAMS_FIELDS(T)      \
  const T* a;                             \
  int64_t a_offset, a_stride0, a_stride1; \
  const T* b;                             \
  int64_t b_offset, b_stride0, b_stride1; \
  T* c;                                   \
  int64_t c_offset, c_stride0, c_stride1; \
  int64_t m, n, k;                        \
  int64_t accumulate;

#define MIPS_DECLARE_MATMUL_PARAMS(NAME, T) \
  typedef struct NAME {                     \
    MIPS_MATMUL_PARAMS_FIELDS(T)            \
  } NAME

MIPS_DECLARE_MATMUL_PARAMS(mips_matmul_f32_params, float);
MIPS_DECLARE_MATMUL_PARAMS(mips_matmul_f16_params, uint16_t);
MIPS_DECLARE_MATMUL_PARAMS(mips_matmul_bf16_params, uint16_t);

_Static_assert(sizeof(mips_matmul_f32_params) == 128, "params layout");
_Static_assert(offsetof(mips_matmul_f32_params, b) == 32, "params layout");
_Static_assert(offsetof(mips_matmul_f32_params, c) == 64, "params layout");
_Static_assert(offsetof(mips_matmul_f32_params, m) == 96, "params layout");
_Static_assert(offsetof(mips_matmul_f32_params, accumulate) == 120,
               "params layout");

/* The epilogues' kinds (see "Epilogues"). */
#define MIPS_EPILOGUE_NONE 0
#define MIPS_EPILOGUE_BIAS_ADD 1 /* bias_mode */
#define MIPS_EPILOGUE_BIAS_SET 2
#define MIPS_EPILOGUE_RELU 1 /* activation */
#define MIPS_EPILOGUE_GELU 2
#define MIPS_EPILOGUE_GELU_TANH 3
#define MIPS_EPILOGUE_SILU 4
#define MIPS_EPILOGUE_ADD 1 /* binary */
#define MIPS_EPILOGUE_MUL 2

#define MIPS_DECLARE_EPILOGUE_PARAMS(NAME, T)           \
  typedef struct NAME {                                 \
    T* c;                                               \
    int64_t c_offset, c_stride0, c_stride1;             \
    const T* bias;                                      \
    int64_t bias_offset, bias_stride;                   \
    const T* other;                                     \
    int64_t other_offset, other_stride0, other_stride1; \
    int64_t m, n;                                       \
    int64_t bias_mode, activation, binary;              \
  } NAME

MIPS_DECLARE_EPILOGUE_PARAMS(mips_epilogue_f32_params, float);
MIPS_DECLARE_EPILOGUE_PARAMS(mips_epilogue_f16_params, uint16_t);
MIPS_DECLARE_EPILOGUE_PARAMS(mips_epilogue_bf16_params, uint16_t);

_Static_assert(sizeof(mips_epilogue_f32_params) == 128, "params layout");
_Static_assert(offsetof(mips_epilogue_f32_params, bias) == 32, "params layout");
_Static_assert(offsetof(mips_epilogue_f32_params, other) == 56, "params layout");
_Static_assert(offsetof(mips_epilogue_f32_params, m) == 88, "params layout");
_Static_assert(offsetof(mips_epilogue_f32_params, binary) == 120, "params layout");

/* Pre-packed B: see "Pre-packed B" above. */
#define MIPS_PACKED_B_PANEL 32
#define MIPS_PACKED_B_ROWS(k) (((k) + 1) / 2 * 2)
#define MIPS_PACKED_B_COLS(n) \
  (((n) + MIPS_PACKED_B_PANEL - 1) / MIPS_PACKED_B_PANEL * MIPS_PACKED_B_PANEL)
#define MIPS_PACKED_B_SIZE(k, n) (MIPS_PACKED_B_ROWS(k) * MIPS_PACKED_B_COLS(n))

typedef struct mips_pack_b_params {
  const void* b; /* const T* */
  int64_t b_offset, b_stride0, b_stride1;
  void* packed; /* T* */
  int64_t packed_offset;
  int64_t k, n;
} mips_pack_b_params;
_Static_assert(sizeof(mips_pack_b_params) == 64, "pack params layout");

/* params: mips_matmul_<type>_params*; context, reserved: ignored. */
MIPS_EXPORT int mips_matmul_f32(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_matmul_f16(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_matmul_bf16(void* params, void* context, void* reserved);
/* params: mips_pack_b_params* (T = float / bf16 bits). */
MIPS_EXPORT int mips_pack_b_f32(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_pack_b_bf16(void* params, void* context, void* reserved);
/* params: mips_matmul_<type>_params* with B pre-packed (see above). */
MIPS_EXPORT int mips_matmul_packed_f32(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_matmul_packed_bf16(void* params, void* context, void* reserved);
/* The fused epilogue: see "Fused epilogue" above. */
#define MIPS_DECLARE_PACKED_EPILOGUE_PARAMS(NAME, T)    \
  typedef struct NAME {                                 \
    MIPS_MATMUL_PARAMS_FIELDS(T)                        \
    const T* bias;                                      \
    int64_t bias_offset, bias_stride;                   \
    const T* other;                                     \
    int64_t other_offset, other_stride0, other_stride1; \
    int64_t bias_mode, activation, binary;              \
  } NAME
MIPS_DECLARE_PACKED_EPILOGUE_PARAMS(mips_matmul_packed_epilogue_f32_params, float);
MIPS_DECLARE_PACKED_EPILOGUE_PARAMS(mips_matmul_packed_epilogue_bf16_params, uint16_t);
_Static_assert(sizeof(mips_matmul_packed_epilogue_f32_params) == 208, "params layout");
_Static_assert(offsetof(mips_matmul_packed_epilogue_f32_params, bias) == 128, "params layout");
_Static_assert(offsetof(mips_matmul_packed_epilogue_f32_params, bias_mode) == 184,
               "params layout");
MIPS_EXPORT int mips_matmul_packed_epilogue_f32(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_matmul_packed_epilogue_bf16(void* params, void* context, void* reserved);
/* params: mips_matmul_f32_params*; OpenBLAS's sgemm (see above). */
MIPS_EXPORT int mips_matmul_openblas_f32(void* params, void* context,
                                         void* reserved);

/* params: mips_epilogue_<type>_params*; context, reserved: ignored. */
MIPS_EXPORT int mips_epilogue_f32(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_epilogue_f16(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_epilogue_bf16(void* params, void* context, void* reserved);

/* NULL when OpenBLAS is open and usable, else why not (opens it if needed). */
MIPS_EXPORT const char* mips_openblas_error(void);
/* OpenBLAS's core name, or NULL (never opens the library). */
MIPS_EXPORT const char* mips_openblas_corename(void);

/* This process's kernel configuration and paths, as text (see "Kernel
 * configuration" above). */
MIPS_EXPORT const char* mips_kernel_info(void);
/* Tuning only: sets one block of the live configuration (see above). */
MIPS_EXPORT int mips_debug_set_config(const char* key, int64_t value);
/* The configuration table, for the lowering's tile cost model (see "Tile cost
 * model" above). */
MIPS_EXPORT const char* mips_kernel_config_name(int index);
MIPS_EXPORT int mips_kernel_config_value(const char* config, const char* key, int64_t* value);
/* Huge pages for memory already written (see "Huge pages after the fact"). */
MIPS_EXPORT int64_t mips_collapse_huge_pages(void* begin, uint64_t bytes);

/* Returns MIPS_KERNEL_ABI_VERSION (see "ABI version" above). */
MIPS_EXPORT int mips_kernel_abi_version(void);
/* "mips_kernel_abi_version=<n>;" (see "Builds" above). */
MIPS_EXPORT extern const char mips_kernel_abi_tag[];

/* The embedded entry points (see above): params as arguments, then the
 * workspace. */
#define MIPS_DECLARE_EMBEDDED(NAME, T)                                              \
  MIPS_EXPORT int NAME(const T* a, int64_t a_offset, int64_t a_stride0,             \
                       int64_t a_stride1, const T* b, int64_t b_offset,             \
                       int64_t b_stride0, int64_t b_stride1, T* c, int64_t c_offset, \
                       int64_t c_stride0, int64_t c_stride1, int64_t m, int64_t n,   \
                       int64_t k, int64_t accumulate, void* workspace,              \
                       int64_t workspace_bytes)
MIPS_DECLARE_EMBEDDED(mips_matmul_f32_embedded, float);
MIPS_DECLARE_EMBEDDED(mips_matmul_f16_embedded, uint16_t);
MIPS_DECLARE_EMBEDDED(mips_matmul_bf16_embedded, uint16_t);

/* The epilogues' embedded entry points: the params as arguments (no
 * workspace). */
#define MIPS_DECLARE_EPILOGUE_EMBEDDED(NAME, T)                                        \
  MIPS_EXPORT int NAME(T* c, int64_t c_offset, int64_t c_stride0, int64_t c_stride1, \
                       const T* bias, int64_t bias_offset, int64_t bias_stride,      \
                       const T* other, int64_t other_offset, int64_t other_stride0,  \
                       int64_t other_stride1, int64_t m, int64_t n, int64_t bias_mode, \
                       int64_t activation, int64_t binary)
MIPS_DECLARE_EPILOGUE_EMBEDDED(mips_epilogue_f32_embedded, float);
MIPS_DECLARE_EPILOGUE_EMBEDDED(mips_epilogue_f16_embedded, uint16_t);
MIPS_DECLARE_EPILOGUE_EMBEDDED(mips_epilogue_bf16_embedded, uint16_t);

/* Pre-packed B's embedded entry points: the packed matmuls as the matmuls'
 * (B the packed buffer), the packs with their params as arguments. */
MIPS_DECLARE_EMBEDDED(mips_matmul_packed_f32_embedded, float);
MIPS_DECLARE_EMBEDDED(mips_matmul_packed_bf16_embedded, uint16_t);
/* The fused epilogue's embedded entry points: its 26 params as arguments, then the
 * workspace. */
#define MIPS_DECLARE_PACKED_EPILOGUE_EMBEDDED(NAME, T)                                        \
  MIPS_EXPORT int NAME(const T* a, int64_t a_offset, int64_t a_stride0, int64_t a_stride1,    \
                       const T* b, int64_t b_offset, int64_t b_stride0, int64_t b_stride1,    \
                       T* c, int64_t c_offset, int64_t c_stride0, int64_t c_stride1,          \
                       int64_t m, int64_t n, int64_t k, int64_t accumulate, const T* bias,    \
                       int64_t bias_offset, int64_t bias_stride, const T* other,              \
                       int64_t other_offset, int64_t other_stride0, int64_t other_stride1,    \
                       int64_t bias_mode, int64_t activation, int64_t binary, void* workspace, \
                       int64_t workspace_bytes)
MIPS_DECLARE_PACKED_EPILOGUE_EMBEDDED(mips_matmul_packed_epilogue_f32_embedded, float);
MIPS_DECLARE_PACKED_EPILOGUE_EMBEDDED(mips_matmul_packed_epilogue_bf16_embedded, uint16_t);
#define MIPS_DECLARE_PACK_EMBEDDED(NAME, T)                                                  \
  MIPS_EXPORT int NAME(const T* b, int64_t b_offset, int64_t b_stride0, int64_t b_stride1, \
                       T* packed, int64_t packed_offset, int64_t k, int64_t n)
MIPS_DECLARE_PACK_EMBEDDED(mips_pack_b_f32_embedded, float);
MIPS_DECLARE_PACK_EMBEDDED(mips_pack_b_bf16_embedded, uint16_t);

/* Attention: see "Attention" above. */
#define MIPS_ATTENTION_WORKSPACE (1 << 20)
#define MIPS_DECLARE_ATTENTION_PARAMS(NAME, T)                \
  typedef struct NAME {                                       \
    const T* q;                                               \
    int64_t q_offset, q_stride0, q_stride1;                   \
    const T* k;                                               \
    int64_t k_offset, k_stride0, k_stride1;                   \
    const T* v;                                               \
    int64_t v_offset, v_stride0, v_stride1;                   \
    const T* mask;                                            \
    int64_t mask_offset, mask_stride0, mask_stride1;          \
    T* o;                                                     \
    int64_t o_offset, o_stride0, o_stride1;                   \
    int64_t m, n, e, ev;                                      \
    int64_t has_mask, causal_row0;                            \
    float scale;                                              \
  } NAME
MIPS_DECLARE_ATTENTION_PARAMS(mips_attention_f32_params, float);
MIPS_DECLARE_ATTENTION_PARAMS(mips_attention_f16_params, uint16_t);
MIPS_DECLARE_ATTENTION_PARAMS(mips_attention_bf16_params, uint16_t);
_Static_assert(sizeof(mips_attention_f32_params) == 216, "params layout");
_Static_assert(offsetof(mips_attention_f32_params, m) == 160, "params layout");
_Static_assert(offsetof(mips_attention_f32_params, scale) == 208, "params layout");

MIPS_EXPORT int mips_attention_f32(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_attention_f16(void* params, void* context, void* reserved);
MIPS_EXPORT int mips_attention_bf16(void* params, void* context, void* reserved);
#define MIPS_DECLARE_ATTENTION_EMBEDDED(NAME, T)                                              \
  MIPS_EXPORT int NAME(const T* q, int64_t q_offset, int64_t q_stride0, int64_t q_stride1,    \
                       const T* k, int64_t k_offset, int64_t k_stride0, int64_t k_stride1,    \
                       const T* v, int64_t v_offset, int64_t v_stride0, int64_t v_stride1,    \
                       const T* mask, int64_t mask_offset, int64_t mask_stride0,             \
                       int64_t mask_stride1, T* o, int64_t o_offset, int64_t o_stride0,      \
                       int64_t o_stride1, int64_t m, int64_t n, int64_t e, int64_t ev,       \
                       int64_t has_mask, int64_t causal_row0, float scale, void* workspace,  \
                       int64_t workspace_bytes)
MIPS_DECLARE_ATTENTION_EMBEDDED(mips_attention_f32_embedded, float);
MIPS_DECLARE_ATTENTION_EMBEDDED(mips_attention_f16_embedded, uint16_t);
MIPS_DECLARE_ATTENTION_EMBEDDED(mips_attention_bf16_embedded, uint16_t);

MIPS_EXPORT uint64_t mips_debug_call_count(const char* symbol);
MIPS_EXPORT uint64_t mips_debug_thread_count(void);
MIPS_EXPORT void mips_debug_reset_counts(void);
MIPS_EXPORT int mips_debug_matmul_isa(const char* symbol, const char* isa,
                                      void* params);

#ifdef __cplusplus
}
#endif

#endif /* MIPS_KERNELS_H_ */
