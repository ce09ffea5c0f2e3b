"""ctypes tests of libmips_kernels.so: the matmul kernels and the IREE plugin entry points.

The library is $MIPSC_PLUGIN if set, else src/mipsc/_lib/libmips_kernels.so (`make kernels`).
The contract under test is documented in kernels/mips_kernels.h.

Tolerances. The kernels sum in f32 in an unspecified order (FMA or not), so each random result is
checked against an f64 reference with the rigorous bound
    delta = (k + 2) * 2**-23 * (|A| @ |B| + |C|)      (twice the classic k * 2**-24 bound)
f32: |got - ref| <= delta.  f16/bf16: the f32 sum s lies in [ref - delta, ref + delta], and the
kernel returns round_T(s) (one round-to-nearest-even), so got must lie between round_T of the f32
values just outside that interval.  Tests with small-integer data (exact f32 sums) and the
identity-matrix tests require bit-exact results.
"""

import ctypes
import os
import pathlib
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as hs
from kernel_plugin import open_plugin, plugin_path
from numpy.lib.stride_tricks import as_strided

from mipsc.kernel_abi import (
    ABI_VERSION_SYMBOL,
    KERNEL_ABI_VERSION,
    KERNEL_SYMBOLS,
    MATMUL_PARAMS,
    MATMUL_SYMBOLS,
    MatmulParams,
)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

DTYPES = ("f32", "f16", "bf16")
STORAGE = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}
ISAS = (b"generic", b"avx2", b"avx512", b"amx", b"avx512bf16")
"""Forced paths; "amx" runs the bf16 kernel on AMX and "avx512bf16" on VDPBF16PS (f32 and f16
take their AVX-512 path with either)."""
FLUSHING_BF16_PATHS = (b"amx", b"avx512bf16")
"""The bf16 paths that read subnormal inputs as zero and flush subnormal sums (mips_kernels.h)."""
I64 = ctypes.c_int64
VP = ctypes.c_void_p


@pytest.fixture(scope="module")
def lib():
    lib = open_plugin(f"mips_matmul_{t}" for t in DTYPES)
    lib.mips_debug_call_count.argtypes = [ctypes.c_char_p]
    lib.mips_debug_call_count.restype = ctypes.c_uint64
    lib.mips_debug_thread_count.argtypes = []
    lib.mips_debug_thread_count.restype = ctypes.c_uint64
    lib.mips_debug_reset_counts.argtypes = []
    lib.mips_debug_reset_counts.restype = None
    lib.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, VP]
    lib.mips_debug_matmul_isa.restype = ctypes.c_int
    lib.mips_kernel_info.argtypes = []
    lib.mips_kernel_info.restype = ctypes.c_char_p
    lib.iree_hal_executable_plugin_query.argtypes = [ctypes.c_uint32, VP]
    lib.iree_hal_executable_plugin_query.restype = VP
    return lib


@pytest.fixture(scope="module")
def isas(lib):
    """The forced instruction-set paths this CPU supports (a NULL params call returns 1 then)."""
    return [isa for isa in ISAS if lib.mips_debug_matmul_isa(b"mips_matmul_f32", isa, None) == 1]


def kernel_info(lib) -> dict[str, str]:
    """mips_kernel_info()'s key=value fields (config, cpu, paths, blocks)."""
    text = lib.mips_kernel_info().decode()
    return dict(re.findall(r"(\w+)=(\S+)", text))


def default_bf16_path(lib) -> bytes:
    """The path the plain bf16 entry point takes on this machine (for >= 16 x 16 outputs)."""
    return kernel_info(lib)["bf16_path"].encode()


# --------------------------------------------------------------------------------------------
# Params struct and operands


assert ctypes.sizeof(MatmulParams) == 128


def _describe(base: np.ndarray, view: np.ndarray):
    """(pointer, offset, stride0, stride1) of a 2-D view of base, in elements."""
    item = base.itemsize
    off = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    assert off >= 0 and off % item == 0
    s0, s1 = view.strides
    assert s0 >= 0 and s1 >= 0 and s0 % item == 0 and s1 % item == 0
    return base.ctypes.data, off // item, s0 // item, s1 // item


def make_params(a_base, a, b_base, b, c_base, c, accumulate) -> MatmulParams:
    m, k = a.shape
    k2, n = b.shape
    assert k == k2 and c.shape == (m, n)
    return MatmulParams(
        *_describe(a_base, a), *_describe(b_base, b), *_describe(c_base, c), m, n, k, accumulate
    )


def call(lib, dtype, params, isa=None) -> int:
    if isa is None:
        return getattr(lib, f"mips_matmul_{dtype}")(ctypes.addressof(params), None, None)
    return lib.mips_debug_matmul_isa(f"mips_matmul_{dtype}".encode(), isa, ctypes.addressof(params))


# Layouts: name -> (base shape for a rows x cols view, function base -> view).
LAYOUTS = {
    "contig": (lambda r, c: (r, c), lambda x, r, c: x),
    "transposed": (lambda r, c: (c, r), lambda x, r, c: x.T),
    "sliced": (lambda r, c: (2 * r + 3, c + 5), lambda x, r, c: x[1 : 1 + 2 * r : 2, 2 : 2 + c]),
    "colstride": (lambda r, c: (r + 1, 2 * c + 1), lambda x, r, c: x[1:, 1::2]),
    "bcast_row": (lambda r, c: (1, c), lambda x, r, c: np.broadcast_to(x, (r, c))),
    "bcast_col": (lambda r, c: (r, 1), lambda x, r, c: np.broadcast_to(x, (r, c))),
}
# (A, B, C) layout combinations; C is never broadcast.
COMBOS = [
    ("contig", "contig", "contig"),
    ("transposed", "contig", "contig"),
    ("contig", "transposed", "sliced"),
    ("sliced", "sliced", "sliced"),
    ("bcast_row", "contig", "contig"),
    ("bcast_col", "bcast_row", "sliced"),
    ("colstride", "colstride", "transposed"),
    ("transposed", "transposed", "colstride"),
    ("contig", "bcast_col", "transposed"),
]
SHAPES = [  # (m, n, k)
    (0, 5, 3), (4, 0, 3), (3, 5, 0), (0, 0, 0), (1, 1, 1), (1, 17, 1), (7, 1, 13),
    (2, 16, 3), (9, 33, 17), (13, 50, 31), (17, 65, 64), (33, 31, 5), (6, 48, 100),
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Number formats (numpy reference implementations)


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """Round f32 -> bf16 bits, nearest-even, by comparing the two candidates in f64."""
    x = np.ascontiguousarray(x, np.float32)
    u = x.view(np.uint32)
    lo = u & np.uint32(0xFFFF0000)  # truncation (towards zero)
    hi = lo + np.uint32(0x10000)  # next bf16 away from zero
    with np.errstate(over="ignore", invalid="ignore"):
        xd = x.astype(np.float64)
        flo = lo.view(np.float32).astype(np.float64)
        fhi = hi.view(np.float32).astype(np.float64)
        fhi = np.where(np.isinf(fhi), np.copysign(2.0**128, xd), fhi)  # rounding past the max
        dlo, dhi = np.abs(xd - flo), np.abs(fhi - xd)
    pick_hi = (dhi < dlo) | ((dhi == dlo) & ((lo >> 16) & 1).astype(bool))
    out = np.where(pick_hi, hi >> 16, lo >> 16)
    out = np.where(np.isnan(x), (u >> 16) | 0x40, out)  # NaN stays a (quiet) NaN
    return out.astype(np.uint16)


def to_f64(x: np.ndarray, dtype: str) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # signaling NaN bit patterns
        if dtype == "bf16":
            return bf16_to_f32(x).astype(np.float64)
        return np.asarray(x).astype(np.float64)


def round_to(x32: np.ndarray, dtype: str) -> np.ndarray:
    """f32 values -> storage values of dtype, one round-to-nearest-even."""
    x32 = np.asarray(x32, np.float32)
    if dtype == "f32":
        return x32
    if dtype == "f16":
        with np.errstate(over="ignore"):
            return x32.astype(np.float16)
    return f32_to_bf16(x32)


def bits(x: np.ndarray) -> np.ndarray:
    """The raw bit patterns of x (C order), for bit-exact comparisons."""
    x = np.ascontiguousarray(x)
    return x.view(np.uint32 if x.itemsize == 4 else np.uint16)


def random_values(rng, shape, dtype):
    x = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    return round_to(x, dtype)


def check_result(got, a64, b64, c64, accumulate, dtype):
    absum = np.abs(a64) @ np.abs(b64)
    ref = a64 @ b64
    if accumulate:
        ref = ref + c64
        absum = absum + np.abs(c64)
    k = a64.shape[1]
    delta = (k + 2) * 2.0**-23 * absum + 1e-30
    g = to_f64(got, dtype)
    if dtype == "f32":
        np.testing.assert_array_less(np.abs(g - ref), delta + 1e-300)
        return
    lo32 = (ref - delta).astype(np.float32)  # f32 just below / above the interval
    lo32 = np.where(lo32 > ref - delta, np.nextafter(lo32, np.float32(-np.inf)), lo32)
    hi32 = (ref + delta).astype(np.float32)
    hi32 = np.where(hi32 < ref + delta, np.nextafter(hi32, np.float32(np.inf)), hi32)
    lo = to_f64(round_to(lo32, dtype), dtype)
    hi = to_f64(round_to(hi32, dtype), dtype)
    bad = ~((lo <= g) & (g <= hi))
    assert not bad.any(), f"{bad.sum()} elements out of bounds, e.g. {g[bad][:4]} vs {ref[bad][:4]}"


def run_case(lib, rng, dtype, m, n, k, combo, accumulate, isa=None):
    st = STORAGE[dtype]
    views, bases = [], []
    for (rows, cols), name in zip(((m, k), (k, n), (m, n)), combo, strict=True):
        shape_fn, view_fn = LAYOUTS[name]
        base = random_values(rng, shape_fn(rows, cols), dtype).astype(st)
        bases.append(base)
        views.append(view_fn(base, rows, cols))
    a, b, c = views
    c_before = bases[2].copy()
    a64, b64, c64 = (to_f64(np.array(v), dtype) for v in views)
    params = make_params(bases[0], a, bases[1], b, bases[2], c, accumulate)
    assert call(lib, dtype, params, isa) == 0
    # Nothing outside C's view changed.
    mask = np.zeros(bases[2].shape, bool)
    LAYOUTS[combo[2]][1](mask, m, n)[...] = True
    assert np.array_equal(bits(bases[2][~mask]), bits(c_before[~mask]))
    if k == 0:
        expect = c_before if accumulate else np.zeros_like(c_before)
        assert np.array_equal(to_f64(bases[2][mask], dtype), to_f64(expect[mask], dtype))
        return
    check_result(np.array(c), a64, b64, c64, accumulate, dtype)


# --------------------------------------------------------------------------------------------
# Correctness


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("accumulate", [0, 1])
def test_random_shapes_and_layouts(lib, dtype, accumulate):
    rng = np.random.default_rng(1234 + accumulate)
    for m, n, k in SHAPES:
        for combo in COMBOS:
            run_case(lib, rng, dtype, m, n, k, combo, accumulate)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_path(lib, isas, dtype):
    """The same checks through each code path this CPU can run (baseline, AVX2, AVX-512)."""
    assert b"generic" in isas
    rng = np.random.default_rng(99)
    shapes = [
        (0, 5, 3), (4, 0, 3), (3, 5, 0), (1, 1, 1), (1, 17, 1), (7, 1, 13),
        (5, 7, 3), (8, 32, 9), (13, 50, 31), (17, 65, 64), (6, 100, 40),
    ]  # fmt: skip
    for isa in isas:
        for m, n, k in shapes:
            for combo in COMBOS:
                for accumulate in (0, 1):
                    run_case(lib, rng, dtype, m, n, k, combo, accumulate, isa)


def test_report_isa_paths(isas):
    print("forced ISA paths available on this CPU:", [i.decode() for i in isas])


# --------------------------------------------------------------------------------------------
# Cache blocking and register tiles (kernels/matmul_gemm.inc)

# Per forced ISA path: (MR, NR, KC, MC, NC) of kernels/matmul_template.inc (keep in sync: the
# shapes below are built around these values; other values still give valid tests, only less
# pointed ones).  W_FLOATS is MM_WBUDGET, the f32 workspace of f16/bf16 results when k > KC.
BLOCKING = {
    b"generic": (4, 8, 256, 96, 2048),
    b"avx2": (6, 16, 256, 144, 2048),
    b"avx512": (12, 32, 256, 192, 2048),
    b"amx": (32, 32, 512, 128, 256),  # bf16's AMX blocks (matmul_bf16_amx.c)
    b"avx512bf16": (12, 32, 2048, 96, 2048),  # bf16's VDPBF16PS blocks (zen4 entry)
}


def _configured_blocking() -> None:
    """The configured paths run with this machine's configuration blocks (kernels/mips_config.c,
    mips_kernel_info): build the edge cases around those."""
    if not plugin_path().is_file():
        return
    lib = ctypes.CDLL(str(plugin_path()))
    lib.mips_kernel_info.restype = ctypes.c_char_p
    info = dict(re.findall(r"(\w+)=(\S+)", lib.mips_kernel_info().decode()))
    for path, prefix in ((info["f32_path"], ""), (info["bf16_path"], "bf16_")):
        isa = path.encode()
        if isa in BLOCKING and isa != b"amx":
            mr, nr, *_ = BLOCKING[isa]
            kc, mc, nc = (int(info[prefix + b]) for b in ("kc", "mc", "nc"))
            BLOCKING[isa] = (mr, nr, kc, mc // mr * mr, nc // nr * nr)


_configured_blocking()
W_FLOATS = 1 << 20
# A, B, C layouts for the blocking tests: packing from rows, from columns (transposed, i.e.
# stride0 == 1, as torch.nn.Linear's weight arrives) and from any strides; C row-major,
# column-major (computed as C^T = B^T . A^T) and strided.
BLOCK_COMBOS = [
    ("contig", "contig", "contig"),
    ("contig", "transposed", "contig"),
    ("transposed", "contig", "transposed"),
    ("sliced", "colstride", "sliced"),
]


def blocking_shapes(mr, nr, kc, mc, nc):
    """(m, n, k) around the register tile (MR, NR +-1), k blocks (k > KC, K blocks of unequal
    size), m blocks (m > MC) and n blocks (n > NC)."""
    return [
        (mr - 1, nr - 1, 7), (mr, nr, 7), (mr + 1, nr + 1, 7), (2 * mr + 1, 2 * nr - 1, 3),
        (2 * mr - 1, 3 * nr + 1, 5), (1, nr + 1, 9), (mr + 1, 1, 9),
        (mr + 1, nr + 1, kc - 1), (mr, nr, kc), (mr - 1, nr + 1, kc + 1), (mr + 1, nr - 1, 2 * kc + 3),
        (mc - 1, nr + 1, 5), (mc + 1, nr, 5), (2 * mc + mr + 1, 2 * nr + 1, kc + 1),
        (mr + 1, nc + 1, 4), (3, nc + nr + 1, kc + 5),
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_blocking_edges(lib, isas, dtype):
    """Every forced ISA path on shapes at the edges of its register tile and cache blocks, with
    operands packed from every layout, accumulating or not."""
    rng = np.random.default_rng(2024)
    for isa in isas:
        for idx, (m, n, k) in enumerate(blocking_shapes(*BLOCKING[isa])):
            big = m * n * k > 200_000
            combos = BLOCK_COMBOS[idx % 2 :: 2] if big else BLOCK_COMBOS
            for combo in combos:
                for accumulate in (0, 1):
                    run_case(lib, rng, dtype, m, n, k, combo, accumulate, isa)


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_workspace_chunks(lib, isas, dtype):
    """f16/bf16 with k > KC keep f32 partial sums in a workspace of at most W_FLOATS floats:
    a C of more rows than fit is done in row chunks (here m * NC > W_FLOATS)."""
    rng = np.random.default_rng(77)
    for isa in isas:
        _, _, kc, _, nc = BLOCKING[isa]
        m, n, k = W_FLOATS // nc + 90, nc, kc + 44
        for combo, accumulate in ((BLOCK_COMBOS[0], 1), (BLOCK_COMBOS[1], 0)):
            run_case(lib, rng, dtype, m, n, k, combo, accumulate, isa)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_integers_bit_exact_blocked(lib, isas, dtype):
    """Integer data with k > KC (several k blocks) and m > MC: the f32 sums are exact, so the
    result must be round_T(exact + old C) bit for bit: f16/bf16 are rounded once, after the last
    k block, not once per block."""
    rng = np.random.default_rng(11)
    st = STORAGE[dtype]
    for isa in [None, *isas]:
        mr, nr, kc, mc, _ = BLOCKING[isa or isas[-1]]
        for m, n, k in ((mc + mr + 1, 2 * nr + 3, 2 * kc + 17), (mr + 1, nr - 1, kc + 1)):
            a32 = rng.integers(-8, 9, size=(m, k)).astype(np.float32)
            b32 = rng.integers(-8, 9, size=(k, n)).astype(np.float32)
            c32 = rng.integers(-300, 301, size=(m, n)).astype(np.float32)
            a, b = round_to(a32, dtype).astype(st), round_to(b32, dtype).astype(st)
            b_t = np.ascontiguousarray(b.T)  # the same B in the transposed layout: b_t.T
            for b_base, b_view in ((b, b), (b_t, b_t.T)):
                for accumulate in (0, 1):
                    c_init = round_to(c32, dtype).astype(st)
                    c = c_init.copy()
                    exact = a32.astype(np.float64) @ b32.astype(np.float64)
                    if accumulate:
                        exact += to_f64(c_init, dtype)
                    params = make_params(a, a, b_base, b_view, c, c, accumulate)
                    assert call(lib, dtype, params, isa) == 0
                    want = round_to(exact.astype(np.float32), dtype).astype(st)
                    assert np.array_equal(bits(c), bits(want)), (isa, m, n, k, accumulate)


def test_matrix_vector_shapes(lib, isas):
    """m == 1 and n == 1 (a contiguous column C is computed as a row), any k."""
    rng = np.random.default_rng(3)
    for dtype in DTYPES:
        for isa in [None, *isas]:
            for m, n, k in ((1, 300, 520), (300, 1, 520), (1, 1, 700), (97, 1, 3), (1, 97, 1)):
                for combo in (BLOCK_COMBOS[0], BLOCK_COMBOS[1], BLOCK_COMBOS[2]):
                    run_case(lib, rng, dtype, m, n, k, combo, 1, isa)


# Few rows of C (kernels/matmul_gemm.inc, MM_SMALL_M_ROWS / MM_SMALL_M_DOTS): no packing; B is
# streamed a row at a time (B rows contiguous, m <= 4, C in chunks of 4096 columns) or read as
# dot products along k (B transposed and A rows contiguous, m <= 32); just above: blocked.
FEW_ROWS_SHAPES = [
    (1, 1, 1), (1, 7, 3), (2, 8, 4), (3, 9, 5), (4, 33, 17), (4, 4100, 6), (5, 20, 9),
    (1, 300, 1030), (1, 5, 15), (3, 4, 16), (4, 6, 17), (32, 9, 33), (33, 9, 33), (2, 3, 1000),
    (11, 13, 70),  # two 4-row blocks of dots_4x4 and three rows alone; k with a tail
]  # fmt: skip
FEW_ROWS_COMBOS = [
    ("contig", "contig", "contig"),
    ("sliced", "sliced", "transposed"),
    ("transposed", "contig", "colstride"),
    ("contig", "transposed", "contig"),
    ("sliced", "transposed", "sliced"),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_few_rows(lib, isas, dtype):
    rng = np.random.default_rng(21)
    for isa in [None, *isas]:
        for m, n, k in FEW_ROWS_SHAPES:
            for combo in FEW_ROWS_COMBOS:
                for accumulate in (0, 1):
                    run_case(lib, rng, dtype, m, n, k, combo, accumulate, isa)


def test_concurrent_blocked_calls(lib):
    """Threads running k-blocked f16 calls (packing buffers and workspace) at once give the
    same bits as one thread alone: no shared scratch."""
    rng = np.random.default_rng(8)
    m, n, k = 70, 90, 600
    a = rng.uniform(-1, 1, (m, k)).astype(np.float16)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float16)
    want = np.zeros((m, n), np.float16)
    assert call(lib, "f16", make_params(a, a, b, b, want, want, 0)) == 0
    outs = [np.zeros((m, n), np.float16) for _ in range(4)]
    errors = []

    def work(c):
        params = make_params(a, a, b, b, c, c, 0)
        for _ in range(20):
            if call(lib, "f16", params) != 0 or not np.array_equal(bits(c), bits(want)):
                errors.append("mismatch")

    threads = [threading.Thread(target=work, args=(c,)) for c in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c_layout", ["contig", "transposed"])
def test_small_integers_bit_exact(lib, isas, dtype, c_layout):
    """Integer data: the f32 sums are exact, so the result must be round_T(exact) bit for bit
    (sums up to ~8000 exercise f16/bf16 round-to-nearest-even, ties included)."""
    rng = np.random.default_rng(7)
    st = STORAGE[dtype]
    m, n, k = 19, 37, 130
    a32 = rng.integers(-8, 9, size=(m, k)).astype(np.float32)
    b32 = rng.integers(-8, 9, size=(k, n)).astype(np.float32)
    c32 = rng.integers(-300, 301, size=(m, n)).astype(np.float32)
    a, b = round_to(a32, dtype).astype(st), round_to(b32, dtype).astype(st)
    for isa in [None, *isas]:
        for accumulate in (0, 1):
            c_init = round_to(c32, dtype).astype(st)
            c_base = np.ascontiguousarray(c_init.T) if c_layout == "transposed" else c_init.copy()
            c = c_base.T if c_layout == "transposed" else c_base
            exact = a32.astype(np.float64) @ b32.astype(np.float64)
            if accumulate:
                exact += to_f64(c_init, dtype)
            params = make_params(a, a, b, b, c_base, c, accumulate)
            assert call(lib, dtype, params, isa) == 0
            want = round_to(exact.astype(np.float32), dtype).astype(st)
            assert np.array_equal(bits(c), bits(want)), (isa, accumulate)


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_round_once_ties_and_overflow(lib, dtype):
    st = STORAGE[dtype]
    big = 2048.0 if dtype == "f16" else 256.0  # 1 ulp of dtype is 2 here
    # (a row, b column, old C, accumulate) -> expected value
    cases = [
        ([big, 1.0], [1.0, 1.0], 0.0, 0, big),  # tie -> even
        ([big, 3.0], [1.0, 1.0], 0.0, 0, big + 4),  # tie -> even (up)
        ([1.0, 0.0], [1.0, 1.0], big, 1, big),  # C + A.B is a tie
        ([1.0, 2.0**-6], [1.0, 1.0], big, 1, big + 2),  # just above the tie
        ([3.0, 0.0], [1.0, 1.0], big, 1, big + 4),
    ]
    if dtype == "f16":
        cases += [
            ([255.0, 1.0], [256.0, 240.0], 0.0, 0, np.inf),  # 65520 rounds to inf
            ([255.0, 1.0], [256.0, 239.0], 0.0, 0, 65504.0),
            ([-255.0, -1.0], [256.0, 240.0], 0.0, 0, -np.inf),
            ([3 * 2.0**-24, 0.0], [0.5, 0.0], 0.0, 0, 2 * 2.0**-24),  # subnormal tie -> even
            ([5 * 2.0**-24, 0.0], [0.5, 0.0], 0.0, 0, 2 * 2.0**-24),
            ([5 * 2.0**-24, 2.0**-24], [0.5, 2.0**-6], 0.0, 0, 3 * 2.0**-24),  # above the tie
            ([2.0**-24, 0.0], [0.5, 0.0], 0.0, 0, 0.0),  # 2**-25 -> 0
            ([2.0**-24, 0.0], [0.75, 0.0], 0.0, 0, 2.0**-24),
            ([1023 * 2.0**-24, 0.0], [1.0, 0.0], 2.0**-24, 1, 2.0**-14),  # to the min normal
        ]
    for arow, bcol, cval, accumulate, want in cases:
        a = round_to(np.array([arow], np.float32), dtype).astype(st)
        b = round_to(np.array([bcol], np.float32).T, dtype).astype(st)
        c = round_to(np.array([[cval]], np.float32), dtype).astype(st)
        assert call(lib, dtype, make_params(a, a, b, b, c, c, accumulate)) == 0
        assert to_f64(c, dtype)[0, 0] == want, (arow, bcol, cval, accumulate)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inf_nan_propagate(lib, dtype):
    st = STORAGE[dtype]
    a = round_to(np.array([[np.inf, 1.0], [np.nan, 1.0], [1.0, 2.0]], np.float32), dtype)
    a = a.astype(st)
    b = round_to(np.array([[1.0] * 20, [1.0] * 20], np.float32), dtype).astype(st)
    c = np.zeros((3, 20), st)
    assert call(lib, dtype, make_params(a, a, b, b, c, c, 0)) == 0
    got = to_f64(c, dtype)
    assert np.all(got[0] == np.inf) and np.all(np.isnan(got[1])) and np.all(got[2] == 3.0)


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_identity_all_finite_values(lib, isas, dtype):
    """C = A @ I with A holding every finite bit pattern (subnormals included): each value must
    survive the widening and the final rounding unchanged (-0 may become +0)."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    vals = to_f64(bits.view(np.float16) if dtype == "f16" else bits, dtype)
    bits = bits[np.isfinite(vals)]
    n = 32
    bits = np.concatenate([bits, np.zeros((-len(bits)) % n, np.uint16)])
    a = bits.reshape(-1, n).view(STORAGE[dtype])
    one = 0x3C00 if dtype == "f16" else 0x3F80
    eye = (np.eye(n, dtype=np.uint16) * one).view(STORAGE[dtype])
    want = to_f64(a, dtype)
    # AMX and VDPBF16PS read bf16 subnormals as zero (the contract's exception): so they come out
    flushed = np.where(np.abs(want) < 2.0**-126, 0.0, want)
    for isa in [None, *isas]:
        on_amx = dtype == "bf16" and (isa or default_bf16_path(lib)) in FLUSHING_BF16_PATHS
        for c_layout in ("contig", "transposed"):
            c_base = np.zeros((n, a.shape[0]) if c_layout == "transposed" else a.shape, a.dtype)
            c = c_base.T if c_layout == "transposed" else c_base
            assert call(lib, dtype, make_params(a, a, eye, eye, c_base, c, 0), isa) == 0
            got = to_f64(np.array(c), dtype)
            assert np.array_equal(got, flushed if on_amx else want), (isa, c_layout)


# --------------------------------------------------------------------------------------------
# Property test (hypothesis): any shape and layout, every ISA path, every dtype

KERNEL_EXAMPLES = int(os.environ.get("MIPSC_KERNEL_EXAMPLES", "0"))
"""Examples for a local random campaign; 0 means CI's derandomized run of 500."""


def _draw_dims(data, blocking):
    """(m, n, k): mostly small (0 and 1 included) or at the edges of the register tile; now
    and then one of them at a cache-block edge (MC rows, KC depth, NC columns)."""
    mr, nr, kc, mc, nc = blocking

    def dim(tile):
        return data.draw(
            hs.one_of(
                hs.integers(0, 3),
                hs.sampled_from([tile - 1, tile, tile + 1, 2 * tile - 1, 2 * tile + 1]),
                hs.integers(0, 3 * tile),
            )
        )

    m, n, k = dim(mr), dim(nr), dim(8)
    big = data.draw(hs.sampled_from(["", "", "", "", "m", "n", "k"]))
    if big == "m":  # MC rows; 4/5 and 32/33 are the few-rows limits of matmul_gemm.inc
        m = data.draw(hs.sampled_from([4, 5, 32, 33, mc - 1, mc, mc + 1]))
    elif big == "n":
        n = data.draw(hs.sampled_from([nc - 1, nc + 1]))
        m = min(m, 2 * mr + 1)
    elif big == "k":
        k = data.draw(hs.sampled_from([kc - 1, kc, kc + 1, 2 * kc + 1]))
    return m, n, k


def _draw_layout(data, rows, cols, is_c):
    """(offset, stride0, stride1) of a rows x cols operand: row- or column-major, every
    element or every 2nd/3rd, rows or columns padded, at an offset; an input may be broadcast
    (stride 0) along rows, columns or both. C's elements never share memory."""
    step = data.draw(hs.sampled_from([1, 1, 1, 2, 3]))
    pad = data.draw(hs.sampled_from([0, 0, 1, 7]))
    offset = data.draw(hs.sampled_from([0, 0, 1, 5]))
    if data.draw(hs.booleans()):  # row-major
        s0, s1 = cols * step + pad, step
    else:  # column-major (transposed)
        s0, s1 = step, rows * step + pad
    if not is_c:
        bcast = data.draw(hs.sampled_from(["", "", "", "", "rows", "cols", "both"]))
        s0 = 0 if bcast in ("rows", "both") else s0
        s1 = 0 if bcast in ("cols", "both") else s1
    return offset, s0, s1


def _strided_operand(rng, dtype, rows, cols, layout):
    """A buffer exactly as long as the layout needs (so that ASan sees any read past the last
    element) and the rows x cols view of it."""
    offset, s0, s1 = layout
    size = offset + (rows - 1) * s0 + (cols - 1) * s1 + 1 if rows and cols else offset
    buf = random_values(rng, (size,), dtype).astype(STORAGE[dtype])
    item = buf.itemsize
    if rows and cols:
        view = as_strided(buf[offset:], (rows, cols), (s0 * item, s1 * item), writeable=False)
    else:
        view = np.zeros((rows, cols), buf.dtype)
    return buf, view


@settings(
    max_examples=KERNEL_EXAMPLES or 500,
    derandomize=not KERNEL_EXAMPLES,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=hs.data())
def test_property_any_shape_layout_isa(lib, isas, data):
    """Random shapes (0 and 1 sized dims, tile and block edges), strides (transposed, padded
    rows, strided, offsets, stride-0 broadcast), dtypes, ISA paths and accumulate: the result
    is within the module docstring's bound of numpy's, and nothing outside C's view changes.
    `MIPSC_KERNEL_EXAMPLES=5000 pytest tests/unit/test_kernels.py -k property` runs longer."""
    dtype = data.draw(hs.sampled_from(DTYPES), label="dtype")
    isa = data.draw(hs.sampled_from([None, *isas]), label="isa")
    m, n, k = _draw_dims(data, BLOCKING[isa or isas[-1]])
    accumulate = data.draw(hs.sampled_from([0, 1]))
    layouts = [
        _draw_layout(data, rows, cols, is_c)
        for rows, cols, is_c in ((m, k, False), (k, n, False), (m, n, True))
    ]
    note = f"{dtype} isa={isa} m={m} n={n} k={k} accumulate={accumulate} layouts={layouts}"
    for label, seen in (  # --hypothesis-show-statistics tells how often each case came up
        (f"{dtype}, isa {isa.decode() if isa else 'best'}", True),
        ("a 0-sized dim", 0 in (m, n, k)),
        ("a 1-sized dim", 1 in (m, n, k)),
        ("an input broadcast (stride 0)", 0 in (*layouts[0][1:], *layouts[1][1:])),
        ("C column-major", layouts[2][1] < layouts[2][2]),
    ):
        if seen:
            event(label)
    rng = np.random.default_rng(data.draw(hs.integers(0, 2**32 - 1), label="seed"))
    (a_buf, a), (b_buf, b), (c_buf, c) = (
        _strided_operand(rng, dtype, rows, cols, layout)
        for (rows, cols), layout in zip(((m, k), (k, n), (m, n)), layouts, strict=True)
    )
    c_before = c_buf.copy()
    a64, b64, c64 = (to_f64(np.array(v), dtype) for v in (a, b, c))
    params = MatmulParams(
        a_buf.ctypes.data, *layouts[0], b_buf.ctypes.data, *layouts[1],
        c_buf.ctypes.data, *layouts[2], m, n, k, accumulate,
    )  # fmt: skip
    assert call(lib, dtype, params, isa) == 0, note
    in_c = np.zeros(c_buf.shape, bool)
    if m and n:
        offset, s0, s1 = layouts[2]
        as_strided(in_c[offset:], (m, n), (s0, s1))[...] = True
    assert np.array_equal(bits(c_buf[~in_c]), bits(c_before[~in_c])), note
    if not (m and n):
        return
    got = np.array(c)
    if k == 0:
        want = c64 if accumulate else np.zeros_like(c64)
        assert np.array_equal(to_f64(got, dtype), want), note
        return
    check_result(got, a64, b64, c64, accumulate, dtype)


# --------------------------------------------------------------------------------------------
# Sanitizers: `make test-asan` runs this file against build/asan/libmips_kernels.so


def _sanitized(path: pathlib.Path) -> bool:
    """This process has the ASan runtime (LD_PRELOAD) and the library is instrumented."""
    return hasattr(ctypes.CDLL(None), "__asan_init") and b"__asan_report_load" in path.read_bytes()


_OOB_SCRIPT = """
import ctypes, os, sys
import numpy as np
from mipsc.kernel_abi import (
    ABI_VERSION_SYMBOL,
    KERNEL_ABI_VERSION,
    MATMUL_PARAMS,
    MATMUL_SYMBOLS,
    MatmulParams,
)
lib = ctypes.CDLL(os.environ["MIPSC_PLUGIN"])
lib.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
m = n = k = 64
dtype = sys.argv[2]
st = np.float32 if dtype == "f32" else np.uint16
b = np.ones((k, n), st)
c = np.zeros((m, n), st)
for a in (np.ones(m * k, st), np.ones(m * k - 1, st)):  # fits; 1 short
    p = MatmulParams(a.ctypes.data, 0, k, 1, b.ctypes.data, 0, n, 1, c.ctypes.data, 0, n, 1,
                     m, n, k, 0)
    rc = lib.mips_debug_matmul_isa(f"mips_matmul_{dtype}".encode(), sys.argv[1].encode(),
                                   ctypes.byref(p))
    print(f"returned {rc}, a.size={a.size}", flush=True)
"""


@pytest.mark.parametrize("isa", ISAS)
def test_sanitizer_catches_out_of_bounds_read(lib, isas, isa, tmp_path):
    """Proof that the sanitized build is armed: an A one element shorter than its params say
    (the kernels cannot know) makes ASan stop the process at the first read past its end, on
    every ISA path (bf16 on the VDPBF16PS one, f32 on the others). Runs only under
    `make test-asan`."""
    path = plugin_path()
    if not _sanitized(path):
        pytest.skip("needs the sanitized plugin and libasan preloaded (`make test-asan`)")
    if isa not in isas:
        pytest.skip(f"this CPU has no {isa.decode()}")
    dtype = "bf16" if isa == b"avx512bf16" else "f32"
    script = tmp_path / "oob.py"
    script.write_text(_OOB_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), isa.decode(), dtype],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "MIPSC_PLUGIN": str(path)},
    )  # fmt: skip
    assert result.stdout == "returned 0, a.size=4096\n", result.stdout + result.stderr
    assert result.returncode != 0
    # A 64-byte load that straddles the end is reported as "unknown-crash" (ASan names only
    # accesses that start in the redzone), the narrower ones as "heap-buffer-overflow".
    assert re.search(
        r"ERROR: AddressSanitizer: (heap-buffer-overflow|unknown-crash)", result.stderr
    ), result.stderr
    assert "READ of size" in result.stderr and f"mips_matmul_{dtype}_run" in result.stderr


# --------------------------------------------------------------------------------------------
# Errors


def invalid_calls(st):
    """(A, B, C, a valid call as a field dict, edits that each make it invalid): 4x3 . 3x5."""
    a = np.ones((4, 3), st)
    b = np.ones((3, 5), st)
    c = np.full((4, 5), 7, st)
    good = {
        name: getattr(make_params(a, a, b, b, c, c, 0), name) for name, _ in MatmulParams._fields_
    }
    big = 2**62
    bad_edits = [
        {"m": -1}, {"n": -1}, {"k": -1},
        {"a_offset": -1}, {"a_stride0": -1}, {"a_stride1": -3},
        {"b_offset": -2}, {"b_stride0": -1}, {"b_stride1": -1},
        {"c_offset": -1}, {"c_stride0": -5}, {"c_stride1": -1},
        {"accumulate": 2}, {"accumulate": -1},
        {"a": None}, {"b": None}, {"c": None},
        {"a": good["a"] + 1}, {"b": good["b"] + 1}, {"c": good["c"] + 1},  # misaligned T*
        {"a_stride0": big},  # (m-1) * stride overflows int64
        {"b_stride1": 2**61, "n": 5},  # 4 * 2**61 overflows
        {"c_offset": 2**63 - 1},  # offset + index overflows
        {"a_offset": 2**62 - 1},  # index fits, bytes do not
        {"m": 2**40, "a_stride0": 2**30},  # 2**70
        # A's last element index (a_offset + 3*3 + 2) times itemsize fits; one past it does not.
        {"a_offset": (2**63 - 1) // a.itemsize - 11},
    ]  # fmt: skip
    return a, b, c, good, bad_edits


@pytest.mark.parametrize("dtype", DTYPES)
def test_invalid_arguments_touch_nothing(lib, dtype):
    _a, _b, c, good, bad_edits = invalid_calls(STORAGE[dtype])
    for edit in bad_edits:
        params = MatmulParams(**{**good, **edit})
        before = c.copy()
        assert call(lib, dtype, params) != 0, edit
        assert np.array_equal(bits(c), bits(before)), edit
    assert getattr(lib, f"mips_matmul_{dtype}")(None, None, None) != 0
    # The unmodified call is fine.
    assert call(lib, dtype, MatmulParams(**good)) == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_null_pointers_with_empty_shapes(lib, dtype):
    st = STORAGE[dtype]
    none = dict.fromkeys(("a", "b", "c"))
    strides = dict(a_stride0=1, a_stride1=1, b_stride0=1, b_stride1=1, c_stride0=1, c_stride1=1)
    for m, n, k in [(0, 0, 0), (0, 0, 7), (0, 4, 0), (5, 0, 0)]:  # every operand empty
        p = MatmulParams(**none, **strides, m=m, n=n, k=k, accumulate=0)
        assert call(lib, dtype, p) == 0, (m, n, k)
    for m, n, k in [(0, 4, 3), (3, 0, 5)]:  # C is empty, but B resp. A is not
        p = MatmulParams(**none, **strides, m=m, n=n, k=k, accumulate=0)
        assert call(lib, dtype, p) != 0, (m, n, k)
    # Empty operands are never read: their pointers may be misaligned as well.
    odd = dict.fromkeys(("a", "b", "c"), 0x1001)
    for m, n, k in [(0, 0, 0), (0, 0, 7), (0, 4, 0), (5, 0, 0)]:
        assert call(lib, dtype, MatmulParams(**odd, **strides, m=m, n=n, k=k)) == 0, (m, n, k)
    # k == 0: A and B are empty (may be NULL), C = 0 or stays.
    c = round_to(np.full((3, 4), 5.0, np.float32), dtype).astype(st)
    c_ptr, c_off, c_s0, c_s1 = _describe(c, c)
    for accumulate, want in ((1, 5.0), (0, 0.0)):
        p = MatmulParams(c=c_ptr, c_offset=c_off, c_stride0=c_s0, c_stride1=c_s1, m=3, n=4, k=0,
                         accumulate=accumulate)  # fmt: skip
        assert call(lib, dtype, p) == 0
        assert np.all(to_f64(c, dtype) == want)


# --------------------------------------------------------------------------------------------
# Debug counters and threads


def _small_problem(dtype):
    st = STORAGE[dtype]
    a = np.ones((3, 2), st)
    b = np.ones((2, 4), st)
    c = np.zeros((3, 4), st)
    return c, make_params(a, a, b, b, c, c, 0)


def test_debug_counters(lib):
    lib.mips_debug_reset_counts()
    for dtype, times in (("f32", 3), ("f16", 1), ("bf16", 0)):
        _, params = _small_problem(dtype)
        for _ in range(times):
            assert call(lib, dtype, params) == 0
    assert lib.mips_debug_call_count(b"mips_matmul_f32") == 3
    assert lib.mips_debug_call_count(b"mips_matmul_f16") == 1
    assert lib.mips_debug_call_count(b"mips_matmul_bf16") == 0
    assert lib.mips_debug_call_count(b"no_such_kernel") == 0
    assert lib.mips_debug_call_count(None) == 0
    # Rejected calls count too; the forced-ISA test hook does not.
    assert lib.mips_matmul_bf16(None, None, None) != 0
    assert lib.mips_debug_call_count(b"mips_matmul_bf16") == 1
    _, params = _small_problem("f32")
    assert call(lib, "f32", params, b"generic") == 0
    assert lib.mips_debug_call_count(b"mips_matmul_f32") == 3
    lib.mips_debug_reset_counts()
    assert all(lib.mips_debug_call_count(f"mips_matmul_{t}".encode()) == 0 for t in DTYPES)


def _bf16(x: np.ndarray) -> np.ndarray:
    """bf16 bit patterns of x (round to nearest even), as uint16."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def test_bf16_runs_on_amx_where_the_cpu_has_it(lib, isas):
    """By default a bf16 product of >= 16 x 16 outputs runs on AMX (counted), a thinner one on
    the vector path; both give the f32-accumulated result rounded once."""
    if b"amx" not in isas:
        pytest.skip("this CPU (or OS) offers no AMX-BF16")
    rng = np.random.default_rng(11)
    for m, n, k, on_amx in ((64, 48, 700, True), (3, 40, 64, False), (40, 5, 64, False)):
        a = _bf16(rng.uniform(-1, 1, (m, k)))
        b = _bf16(rng.uniform(-1, 1, (k, n)))
        c = np.zeros((m, n), np.uint16)
        lib.mips_debug_reset_counts()
        assert call(lib, "bf16", make_params(a, a, b, b, c, c, 0)) == 0
        assert lib.mips_debug_call_count(b"mips_matmul_bf16:amx") == int(on_amx), (m, n, k)
        want = to_f64(a, "bf16") @ to_f64(b, "bf16")
        np.testing.assert_allclose(to_f64(c, "bf16"), want, rtol=2**-7, atol=1e-6)


def test_amx_can_be_switched_off():
    """MIPSC_DISABLE_AMX=1 (read once, before the first call) keeps bf16 on the vector paths."""
    script = (
        "import ctypes, sys\n"
        "lib = ctypes.CDLL(sys.argv[1])\n"
        "lib.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]\n"
        "print(lib.mips_debug_matmul_isa(b'mips_matmul_bf16', b'amx', None))\n"
    )
    env = {**os.environ, "MIPSC_DISABLE_AMX": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(plugin_path())],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "-1"  # "this CPU lacks that path"


def run_concurrently(kernel_call, m, k, n, threads_n, calls, seed):
    """Each of threads_n threads (ctypes drops the GIL) makes `calls` calls of
    kernel_call(params) on its own C of one m x k . k x n f32 product; checks every C."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    outs = [np.zeros((m, n), np.float32) for _ in range(threads_n)]
    errors = []

    def work(c):
        params = make_params(a, a, b, b, c, c, 0)
        for _ in range(calls):
            if kernel_call(params) != 0:
                errors.append("non-zero")

    threads = [threading.Thread(target=work, args=(c,)) for c in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for c in outs:
        np.testing.assert_allclose(c, want, rtol=0, atol=1e-4)


def test_concurrent_calls(lib):
    """Several threads at once: right results and an exact call count."""
    lib.mips_debug_reset_counts()
    run_concurrently(lambda p: call(lib, "f32", p), 40, 50, 70, threads_n=4, calls=50, seed=5)
    assert lib.mips_debug_call_count(b"mips_matmul_f32") == 4 * 50


def test_debug_thread_count(lib):
    """Each thread alive at once counts once per reset; the forced-ISA hook does not count."""
    lib.mips_debug_reset_counts()
    assert lib.mips_debug_thread_count() == 0
    _, params = _small_problem("f32")
    assert call(lib, "f32", params, b"generic") == 0
    assert lib.mips_debug_thread_count() == 0
    assert call(lib, "f32", params) == 0
    assert call(lib, "f16", _small_problem("f16")[1]) == 0
    assert lib.mips_debug_thread_count() == 1  # same thread, two kernels

    threads_n = 3
    # All workers stay alive until every one has called, so their identities are distinct.
    barrier = threading.Barrier(threads_n)
    errors = []

    def work():
        _, own = _small_problem("bf16")
        for _ in range(5):
            if call(lib, "bf16", own) != 0:
                errors.append("non-zero")
        barrier.wait(timeout=30)

    threads = [threading.Thread(target=work) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert lib.mips_debug_thread_count() == threads_n + 1  # the workers and this thread

    lib.mips_debug_reset_counts()
    assert lib.mips_debug_thread_count() == 0
    assert call(lib, "f32", params) == 0
    assert lib.mips_debug_thread_count() == 1  # registers again after a reset


# --------------------------------------------------------------------------------------------
# IREE executable plugin entry points


class PluginHeader(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint32),
        ("name", ctypes.c_char_p),
        ("description", ctypes.c_char_p),
        ("features", ctypes.c_uint32),
        ("sanitizer", ctypes.c_int32),
        ("reserved", ctypes.c_uint64 * 8),
    ]


class ResolveParams(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_size_t),
        ("symbol_names", ctypes.POINTER(ctypes.c_char_p)),
        ("out_fn_ptrs", ctypes.POINTER(VP)),
        ("out_fn_contexts", ctypes.POINTER(VP)),
    ]


class Environment(ctypes.Structure):
    _fields_ = [("allocator_self", VP), ("allocator_ctl", VP)]


STATUS = ctypes.c_size_t  # pointer-sized status; 0 = OK
LOAD_FN = ctypes.CFUNCTYPE(
    STATUS, ctypes.POINTER(Environment), ctypes.c_size_t, VP, ctypes.POINTER(VP)
)
UNLOAD_FN = ctypes.CFUNCTYPE(None, VP)
RESOLVE_FN = ctypes.CFUNCTYPE(
    STATUS, VP, ctypes.POINTER(ResolveParams), ctypes.POINTER(ctypes.c_uint32)
)


class PluginV0(ctypes.Structure):
    _fields_ = [
        ("header", ctypes.POINTER(PluginHeader)),
        ("load", LOAD_FN),
        ("unload", UNLOAD_FN),
        ("resolve", RESOLVE_FN),
    ]


assert ctypes.sizeof(PluginHeader) == 96


@pytest.fixture(scope="module")
def plugin(lib):
    addr = lib.iree_hal_executable_plugin_query(1, None)
    assert addr
    return PluginV0.from_address(addr)


def test_query(lib, plugin):
    assert lib.iree_hal_executable_plugin_query(0, None) is None
    assert lib.iree_hal_executable_plugin_query(7, None) is not None  # newer host: still v1
    header = plugin.header.contents
    assert header.version == 1
    assert header.name == b"mips_kernels"
    assert header.description
    assert header.features == 0 and header.sanitizer == 0
    assert list(header.reserved) == [0] * 8


def _resolve(plugin, self_ptr, names, prefilled=None):
    count = len(names)
    c_names = (ctypes.c_char_p * count)(*names)
    fns = (VP * count)(*(prefilled or [None] * count))
    contexts = (VP * count)(*([0xDEAD] * count))
    params = ResolveParams(count, c_names, fns, contexts)
    resolution = ctypes.c_uint32(0xFFFF)
    status = plugin.resolve(self_ptr, ctypes.byref(params), ctypes.byref(resolution))
    return status, list(fns), list(contexts), resolution.value


def _addr(fn) -> int:
    return ctypes.cast(fn, VP).value


def test_load_resolve_unload(lib, plugin):
    self_ptr = VP(0x1)
    env = Environment(None, None)
    assert plugin.load(ctypes.byref(env), 0, None, ctypes.byref(self_ptr)) == 0
    names = sorted(s.encode() for s in KERNEL_SYMBOLS)  # sorted, as IREE does
    status, fns, ctxs, resolution = _resolve(plugin, self_ptr, names)
    assert status == 0 and resolution == 0
    assert fns == [_addr(getattr(lib, name.decode())) for name in names]
    assert b"mips_matmul_openblas_f32" in names  # resolved without opening OpenBLAS
    assert ctxs == [None] * len(names)

    # An unknown required name: NOT_FOUND (5), but the known ones are still filled in.
    status, fns, _, _ = _resolve(plugin, self_ptr, [b"mips_matmul_f32", b"no_such_fn"])
    assert status == 5
    assert fns == [_addr(lib.mips_matmul_f32), None]

    # Optional names ('?'): unknown stays NULL and sets MISSING_OPTIONAL, known is resolved.
    status, fns, ctxs, resolution = _resolve(plugin, self_ptr, [b"?mips_matmul_f16", b"?nope"])
    assert status == 0 and resolution == 1
    assert fns == [_addr(lib.mips_matmul_f16), None]
    assert ctxs[0] is None and ctxs[1] == 0xDEAD

    # Entries resolved by someone else are left alone (even unknown ones).
    status, fns, ctxs, _ = _resolve(
        plugin, self_ptr, [b"mips_matmul_f32", b"other_plugin_fn"], prefilled=[0x1234, 0x5678]
    )
    assert status == 0 and fns == [0x1234, 0x5678] and ctxs == [0xDEAD, 0xDEAD]

    # The resolved pointer is the counting entry point with the import calling convention.
    lib.mips_debug_reset_counts()
    _, fns, _, _ = _resolve(plugin, self_ptr, [b"mips_matmul_f32"])
    import_fn = ctypes.CFUNCTYPE(ctypes.c_int, VP, VP, VP)(fns[0])
    c, params = _small_problem("f32")
    assert import_fn(ctypes.addressof(params), None, None) == 0
    assert np.all(c == 2.0)
    assert lib.mips_debug_call_count(b"mips_matmul_f32") == 1

    plugin.unload(self_ptr)


def test_python_contract_matches_the_c_header():
    """kernel_abi.py (what the lowering emits) and mips_kernels.h (what the kernels read) agree."""
    header = (
        pathlib.Path(__file__).resolve().parents[2] / "kernels" / "mips_kernels.h"
    ).read_text()
    body = re.search(r"#define MIPS_MATMUL_PARAMS_FIELDS\(T\)(.*?)\n\n", header, re.S).group(1)
    fields = re.findall(r"\b(\w+)\s*[,;]", re.sub(r"const T\*|T\*|int64_t", "", body))
    assert tuple(fields) == MATMUL_PARAMS
    assert set(MATMUL_SYMBOLS.values()) < set(KERNEL_SYMBOLS)
    for symbol in KERNEL_SYMBOLS:
        assert re.search(rf"MIPS_EXPORT int {symbol}\(void\* params,", header), symbol
    assert ctypes.sizeof(MatmulParams) == 128
    # The ABI version: defined once in C (overridable with -D), once in Python.
    versions = re.findall(r"#define MIPS_KERNEL_ABI_VERSION (\d+)", header)
    assert versions == [str(KERNEL_ABI_VERSION)]
    sources = (REPO_ROOT / "kernels").iterdir()
    assert sum(f.read_text().count("#define MIPS_KERNEL_ABI_VERSION") for f in sources) == 1
    assert "#ifndef MIPS_KERNEL_ABI_VERSION" in header
    assert f"MIPS_EXPORT int {ABI_VERSION_SYMBOL}(void);" in header


def test_abi_version(lib):
    lib.mips_kernel_abi_version.argtypes = []
    lib.mips_kernel_abi_version.restype = ctypes.c_int
    assert lib.mips_kernel_abi_version() == KERNEL_ABI_VERSION


# --------------------------------------------------------------------------------------------
# bf16 on VDPBF16PS (kernels/matmul_bf16_dp.c): the numerics the contract states for it


def _bf16_dp_case(lib, arow, bcol, m=16, n=16):
    """C = A @ B with every row of A = arow and every column of B = bcol (bf16 bit patterns),
    through the forced avx512bf16 path; returns C[0, 0] as a float and checks all agree."""
    a = np.tile(np.asarray(arow, np.uint16), (m, 1))
    b = np.tile(np.asarray(bcol, np.uint16)[:, None], (1, n))
    c = np.zeros((m, n), np.uint16)
    assert call(lib, "bf16", make_params(a, a, b, b, c, c, 0), b"avx512bf16") == 0
    assert np.all(c == c[0, 0])
    return float(to_f64(c[:1, :1], "bf16")[0, 0])


def test_bf16_avx512bf16_numerics(lib, isas):
    """The VDPBF16PS path: per k pair (k even) two FMAs in f32, k + 1 first, each rounded to
    nearest even; subnormal bf16 inputs read as zero; subnormal f32 sums flushed to zero; the
    final bf16 rounding as on every path. The first two cases pin the order and rounding of
    the f32 sum (no wider sum of a pair); the last two tell the path apart from the exact
    widening path (forced "avx512"), which keeps subnormals."""
    if b"avx512bf16" not in isas:
        pytest.skip("this CPU has no AVX512-BF16")
    one, neg_one, tiny = _bf16(np.float32(1.0)), _bf16(np.float32(-1.0)), _bf16(np.float32(2**-24))
    # Pairs (1, 0), (2^-24, 2^-24), (-1, 0) times (1, 0), (1, 1), (1, 0): exact sum 2^-23. Each
    # 2^-24 added to 1 alone is a tie and rounds back to 1; the -1 then leaves 0 (a pair summed
    # exactly before one rounding would give 2^-23).
    arow = [one, 0, tiny, tiny, neg_one, 0]
    bcol = [one, 0, one, one, one, 0]
    assert _bf16_dp_case(lib, arow, bcol) == 0.0
    # Within a pair the k + 1 product comes first: (2^-24, -1) . (1, 1) after 1 gives
    # 1 - 1 = 0, then 0 + 2^-24 = 2^-24 (the other order would give 0).
    assert _bf16_dp_case(lib, [one, 0, tiny, neg_one], [one, 0, one, one]) == 2.0**-24
    # A subnormal bf16 input (2^-127) times 2^100 reads as 0 (exactly: 2^-27).
    big = _bf16(np.float32(2.0**100))
    assert _bf16_dp_case(lib, [0x0040, 0], [big, 0]) == 0.0
    # 2^-63 * 2^-64 = 2^-127 is a subnormal f32 sum: flushed (exactly: the bf16 0x0040).
    p63, p64 = _bf16(np.float32(2.0**-63)), _bf16(np.float32(2.0**-64))
    assert _bf16_dp_case(lib, [p63, 0], [p64, 0]) == 0.0
    # The widening path keeps the subnormals.
    for arow_, bcol_, want in (
        ([0x0040, 0], [big, 0], 2.0**-27),
        ([p63, 0], [p64, 0], 2.0**-127),
    ):
        a = np.tile(np.asarray(arow_, np.uint16), (16, 1))
        b = np.tile(np.asarray(bcol_, np.uint16)[:, None], (1, 16))
        c = np.zeros((16, 16), np.uint16)
        assert call(lib, "bf16", make_params(a, a, b, b, c, c, 0), b"avx512") == 0
        assert float(to_f64(c[:1, :1], "bf16")[0, 0]) == want


def test_bf16_avx512bf16_error_bound(lib, isas):
    """Normal-range data: the VDPBF16PS result is round_bf16(s) with s an f32 sum within the
    documented bound of the exact one, (k + 2) * 2^-23 * (|A| @ |B| + |C|) (check_result), and
    it agrees with the exact path to 1 bf16 ulp; with k > KC (f32 partial sums kept between k
    blocks), accumulating, and B transposed."""
    if b"avx512bf16" not in isas:
        pytest.skip("this CPU has no AVX512-BF16")
    rng = np.random.default_rng(5)
    for m, n, k, combo, accumulate in (
        (64, 96, 2048, ("contig", "contig", "contig"), 0),
        (37, 45, 1100, ("contig", "transposed", "contig"), 1),
        (50, 33, 301, ("transposed", "contig", "transposed"), 1),
    ):
        run_case(lib, rng, "bf16", m, n, k, combo, accumulate, b"avx512bf16")
    a = _bf16(rng.uniform(-1, 1, (48, 1500)))
    b = _bf16(rng.uniform(-1, 1, (1500, 40)))
    got, exact = np.zeros((48, 40), np.uint16), np.zeros((48, 40), np.uint16)
    assert call(lib, "bf16", make_params(a, a, b, b, got, got, 0), b"avx512bf16") == 0
    assert call(lib, "bf16", make_params(a, a, b, b, exact, exact, 0), b"avx512") == 0
    g, e = to_f64(got, "bf16"), to_f64(exact, "bf16")
    assert np.all(np.abs(g - e) <= 2.0**-7 * np.abs(e) + 1e-30)


def test_bf16_default_path_is_counted(lib):
    """The plain bf16 entry point takes the configured path (mips_kernel_info's bf16_path) for
    >= 16 x 16 outputs, and counts it."""
    path = default_bf16_path(lib)
    rng = np.random.default_rng(2)
    a, b = _bf16(rng.uniform(-1, 1, (32, 64))), _bf16(rng.uniform(-1, 1, (64, 32)))
    c = np.zeros((32, 32), np.uint16)
    lib.mips_debug_reset_counts()
    assert call(lib, "bf16", make_params(a, a, b, b, c, c, 0)) == 0
    for counter in FLUSHING_BF16_PATHS:
        want = int(path == counter)
        assert lib.mips_debug_call_count(b"mips_matmul_bf16:" + counter) == want, counter


# --------------------------------------------------------------------------------------------
# The per-CPU configuration (kernels/mips_config.c): MIPSC_KERNEL_CONFIG and the plain entries

_CONFIG_SCRIPT = """
import ctypes, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1])
lib.mips_kernel_info.restype = ctypes.c_char_p
print(lib.mips_kernel_info().decode())
from mipsc.kernel_abi import PACKED_B_PANEL, MatmulParams, PackParams, packed_rows, packed_size
rng = np.random.default_rng(0)
bad = 0
for m, n, k in ((40, 70, 600), (100, 33, 1100), (3, 50, 20)):
    a = rng.integers(-4, 5, (m, k)).astype(np.float32)
    b = rng.integers(-4, 5, (k, n)).astype(np.float32)
    want = a @ b
    for dtype in ("f32", "f16", "bf16"):
        if dtype == "f32":
            aa, bb, c = a, b, np.zeros((m, n), np.float32)
        elif dtype == "f16":
            aa, bb, c = a.astype(np.float16), b.astype(np.float16), np.zeros((m, n), np.float16)
        else:
            aa = (a.view(np.uint32) >> 16).astype(np.uint16)
            bb = (b.view(np.uint32) >> 16).astype(np.uint16)
            c = np.zeros((m, n), np.uint16)
        p = MatmulParams(aa.ctypes.data, 0, k, 1, bb.ctypes.data, 0, n, 1, c.ctypes.data, 0, n,
                         1, m, n, k, 0)
        fn = getattr(lib, "mips_matmul_" + dtype)
        fn.argtypes = [ctypes.c_void_p] * 3
        assert fn(ctypes.addressof(p), None, None) == 0
        got = (c.astype(np.uint32) << 16).view(np.float32) if dtype == "bf16" else c
        # integer sums up to 4*4*1100 = 17600: exact in f32; f16/bf16 round them once
        ref = want.astype(np.float16) if dtype == "f16" else want
        if dtype == "bf16":
            u = want.view(np.uint32).astype(np.uint64)
            ref = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
        bad += int(not np.array_equal(np.asarray(got, np.float32), np.asarray(ref, np.float32)))
    # bf16 with B packed once (its own KC, bf16_packed_kc): the same sums, rounded once
    bp = np.zeros(packed_size(k, n), np.uint16)
    pack = lib.mips_pack_b_bf16
    pack.argtypes = [ctypes.c_void_p] * 3
    pp = PackParams(bb.ctypes.data, 0, n, 1, bp.ctypes.data, 0, k, n)
    assert pack(ctypes.addressof(pp), None, None) == 0
    c = np.zeros((m, n), np.uint16)
    p = MatmulParams(aa.ctypes.data, 0, k, 1, bp.ctypes.data, 0, packed_rows(k), PACKED_B_PANEL,
                     c.ctypes.data, 0, n, 1, m, n, k, 0)
    fn = lib.mips_matmul_packed_bf16
    fn.argtypes = [ctypes.c_void_p] * 3
    assert fn(ctypes.addressof(p), None, None) == 0
    got = (c.astype(np.uint32) << 16).view(np.float32)
    bad += int(not np.array_equal(got, ref))
    # f32 with B packed once (its own KC, packed_kc): read in place, panel by panel
    bp = np.zeros(packed_size(k, n), np.float32)
    pack = lib.mips_pack_b_f32
    pack.argtypes = [ctypes.c_void_p] * 3
    pp = PackParams(b.ctypes.data, 0, n, 1, bp.ctypes.data, 0, k, n)
    assert pack(ctypes.addressof(pp), None, None) == 0
    c = np.zeros((m, n), np.float32)
    p = MatmulParams(a.ctypes.data, 0, k, 1, bp.ctypes.data, 0, packed_rows(k), PACKED_B_PANEL,
                     c.ctypes.data, 0, n, 1, m, n, k, 0)
    fn = lib.mips_matmul_packed_f32
    fn.argtypes = [ctypes.c_void_p] * 3
    assert fn(ctypes.addressof(p), None, None) == 0
    bad += int(not np.array_equal(c, want))
print("bad", bad)
"""


@pytest.mark.parametrize("name", ["zen4", "zen5", "intel-avx512", "avx2", "sse2"])
def test_kernel_config_override(name, isas):
    """MIPSC_KERNEL_CONFIG=<entry> (read once per process): the entry and its paths are taken
    when this CPU has the entry's ISA, else ignored (and said so); either way the plain entry
    points give exact integer results for every type, k blocked or not."""
    out = subprocess.run(
        [sys.executable, "-c", _CONFIG_SCRIPT, str(plugin_path())],
        capture_output=True, text=True, check=True,
        env={**os.environ, "MIPSC_KERNEL_CONFIG": name},
    )  # fmt: skip
    first = out.stdout.splitlines()[0]
    needs = {"zen4": b"avx512", "zen5": b"avx512", "intel-avx512": b"avx512", "avx2": b"avx2"}
    if needs.get(name, b"generic") in isas:
        assert first == f"config={name} (MIPSC_KERNEL_CONFIG)", first
        info = dict(re.findall(r"(\w+)=(\S+)", out.stdout))
        f32_path = {"avx2": "avx2", "sse2": "generic"}.get(name, "avx512")
        assert info["f32_path"] == f32_path
        if b"amx" in isas:
            assert info["bf16_path"] == "amx"
        elif name in ("zen4", "zen5") and b"avx512bf16" in isas:
            assert info["bf16_path"] == "avx512bf16"
        else:
            assert info["bf16_path"] == f32_path
    else:
        assert f"MIPSC_KERNEL_CONFIG={name} ignored: this CPU lacks" in first, first
    assert out.stdout.splitlines()[-1] == "bad 0", out.stdout


def test_debug_set_config_changes_the_live_blocks():
    """mips_debug_set_config (tools/tune_kernels.py) sets one block of the live configuration,
    shown by mips_kernel_info; other keys and values are refused. In a subprocess: the change
    lasts for the process."""
    script = (
        "import ctypes, sys\n"
        "lib = ctypes.CDLL(sys.argv[1])\n"
        "lib.mips_kernel_info.restype = ctypes.c_char_p\n"
        "lib.mips_debug_set_config.argtypes = [ctypes.c_char_p, ctypes.c_int64]\n"
        "print(lib.mips_debug_set_config(b'bf16_kc', 96), lib.mips_debug_set_config(b'kc', 64),\n"
        "      lib.mips_debug_set_config(b'nope', 5), lib.mips_debug_set_config(b'mc', 0),\n"
        "      lib.mips_debug_set_config(b'pack_a_t16', 0),\n"
        "      lib.mips_debug_set_config(b'packed_kc', 72),\n"
        "      lib.mips_debug_set_config(b'bf16_packed_kc', 88),\n"
        "      lib.mips_debug_set_config(b'pack_a_t16', 2),\n"
        "      lib.mips_debug_set_config(b'bf16_isa', 0), lib.mips_debug_set_config(b'isa', 3))\n"
        "print(lib.mips_kernel_info().decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(plugin_path())], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[0] == "0 0 -1 -1 0 0 0 -1 0 -1"  # isa 3 (AMX) is bf16's only
    info = dict(re.findall(r"(\w+)=(\S+)", out))
    assert info["bf16_kc"] == "96" and info["kc"] == "64" and info["pack_a_t16"] == "0"
    assert info["packed_kc"] == "72" and info["bf16_packed_kc"] == "88"
    assert info["bf16_path"] == "generic"


def test_small_blocks_from_the_environment():
    """MIPSC_KERNEL_KC / _MC / _NC, PACKED_KC, the BF16_ ones and PACK_A_T16 (read once per process)
    replace the configuration's fields; small blocks (many k, m and n blocks, rounded to the register tile)
    still give exact integer results on every type."""
    env = {
        **os.environ,
        "MIPSC_KERNEL_KC": "40", "MIPSC_KERNEL_MC": "30", "MIPSC_KERNEL_NC": "70",
        "MIPSC_KERNEL_BF16_KC": "40", "MIPSC_KERNEL_BF16_MC": "20", "MIPSC_KERNEL_BF16_NC": "40",
        "MIPSC_KERNEL_PACK_A_T16": "0", "MIPSC_KERNEL_PACKED_KC": "56",
        "MIPSC_KERNEL_BF16_PACKED_KC": "64",
    }  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", _CONFIG_SCRIPT, str(plugin_path())],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip
    assert "kc=40 mc=30 nc=70 bf16_kc=40 bf16_mc=20 bf16_nc=40" in out, out
    assert "pack_a_t16=0 packed_kc=56" in out and "bf16_packed_kc=64" in out, out
    assert out.splitlines()[-1] == "bad 0", out


@pytest.mark.parametrize("value", ["0", "1"])
def test_b_next_prefetch_from_the_environment(value):
    """MIPSC_KERNEL_B_NEXT_PREFETCH (0/1, read once per process) sets whether the microkernels
    prefetch the next B sliver; with small blocks (several k, m and n blocks per call, edge
    slivers, B packed by the microkernels, a pre-packed B read in place) every type still gives
    exact integer results either way; another value is ignored and said so."""
    env = {
        **os.environ, "MIPSC_KERNEL_B_NEXT_PREFETCH": value,
        "MIPSC_KERNEL_KC": "40", "MIPSC_KERNEL_MC": "30", "MIPSC_KERNEL_NC": "70",
        "MIPSC_KERNEL_PACKED_KC": "56",
    }  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", _CONFIG_SCRIPT, str(plugin_path())],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip
    assert dict(re.findall(r"(\w+)=(\S+)", out))["b_next_prefetch"] == value, out
    assert out.splitlines()[-1] == "bad 0", out
    env["MIPSC_KERNEL_B_NEXT_PREFETCH"] = "2"
    out = subprocess.run(
        [sys.executable, "-c", _CONFIG_SCRIPT, str(plugin_path())],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip
    assert "MIPSC_KERNEL_B_NEXT_PREFETCH=2 ignored: not 0 or 1" in out, out


@pytest.mark.parametrize("ahead", ["1", "3", "39", "1000"])
def test_c_prefetch_ahead_from_the_environment(ahead):
    """MIPSC_KERNEL_C_PREFETCH_AHEAD (read once per process) sets how many steps of k before
    the end of its k block a microkernel prefetches its tile of C: from the last step to more
    than a block (KC 40: then at the start); every type still gives exact integer results
    (several k, m and n blocks, edge tiles, W, a pre-packed B)."""
    env = {
        **os.environ, "MIPSC_KERNEL_C_PREFETCH_AHEAD": ahead,
        "MIPSC_KERNEL_KC": "40", "MIPSC_KERNEL_MC": "30", "MIPSC_KERNEL_NC": "70",
        "MIPSC_KERNEL_PACKED_KC": "56",
    }  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", _CONFIG_SCRIPT, str(plugin_path())],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip
    assert dict(re.findall(r"(\w+)=(\S+)", out))["c_prefetch_ahead"] == ahead, out
    assert out.splitlines()[-1] == "bad 0", out


def test_kernel_info_tiles_match_the_kernels(lib):
    """mips_kernel_info's register tiles are those of the kernels the paths run (BLOCKING)."""
    info = kernel_info(lib)
    for path, tile in ((info["f32_path"], info["f32_tile"]), (info["bf16_path"], info["bf16_tile"])):
        mr, nr, *_ = BLOCKING[path.encode()]
        assert tile == f"{mr}x{nr}", (path, tile)
