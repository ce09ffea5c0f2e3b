"""ctypes tests of mips_matmul_openblas_f32: OpenBLAS's sgemm behind the kernel contract.

The library is the plugin of test_kernels.py ($MIPSC_PLUGIN or `make kernels`); OpenBLAS is
$MIPSC_OPENBLAS_LIB, or the scipy-openblas32 wheel's (the `test` extra installs it), as
mipsc.runtime finds it. The plugin opens OpenBLAS once per process and keeps the outcome, so
every test in this process needs it to open; the failures run in subprocesses.

Every call checks which path ran, with the counters "mips_matmul_openblas_f32:sgemm" and
"...:fallback", against the layouts the contract gives to sgemm (mips_kernels.h, "OpenBLAS
backend"). Tolerances are test_kernels.py's f32 bound.
"""

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest
from kernel_plugin import plugin_path
from numpy.lib.stride_tricks import as_strided
from test_kernels import (
    _describe,
    _sanitized,
    bits,
    check_result,
    invalid_calls,
    make_params,
    run_concurrently,
)

from mipsc.kernel_abi import OPENBLAS_ENV, OPENBLAS_SYMBOL, MatmulParams
from mipsc.runtime import openblas_library

VP = ctypes.c_void_p
INT_MAX = 2**31 - 1
SGEMM = (OPENBLAS_SYMBOL + ":sgemm").encode()
FALLBACK = (OPENBLAS_SYMBOL + ":fallback").encode()


@pytest.fixture(scope="module")
def lib():
    path = plugin_path()
    if not path.is_file():
        pytest.fail(f"kernel library {path} not found: run `make kernels` first")
    if openblas_library() is None:  # sets $MIPSC_OPENBLAS_LIB from the wheel if unset
        pytest.fail(
            "no OpenBLAS: `pip install scipy-openblas32` (part of the test extra), or set "
            f"{OPENBLAS_ENV}"
        )
    lib = ctypes.CDLL(str(path))
    for name in (OPENBLAS_SYMBOL, "mips_matmul_f32"):
        getattr(lib, name).argtypes = [VP, VP, VP]
        getattr(lib, name).restype = ctypes.c_int
    lib.mips_openblas_error.argtypes = []
    lib.mips_openblas_error.restype = ctypes.c_char_p
    lib.mips_openblas_corename.argtypes = []
    lib.mips_openblas_corename.restype = ctypes.c_char_p
    lib.mips_debug_call_count.argtypes = [ctypes.c_char_p]
    lib.mips_debug_call_count.restype = ctypes.c_uint64
    lib.mips_debug_reset_counts.argtypes = []
    lib.mips_debug_reset_counts.restype = None
    lib.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, VP]
    lib.mips_debug_matmul_isa.restype = ctypes.c_int
    assert lib.mips_openblas_error() is None, lib.mips_openblas_error()
    return lib


def counts(lib) -> dict[str, int]:
    names = {
        "calls": OPENBLAS_SYMBOL.encode(),
        "sgemm": SGEMM,
        "fallback": FALLBACK,
        "f32": b"mips_matmul_f32",
    }
    return {key: int(lib.mips_debug_call_count(name)) for key, name in names.items()}


def call(lib, params) -> int:
    return lib.mips_matmul_openblas_f32(ctypes.addressof(params), None, None)


# Layouts of a rows x cols operand: name -> (base shape, base -> view).
LAYOUTS = {
    "row": (lambda r, c: (r, c), lambda x, r, c: x),
    "col": (lambda r, c: (c, r), lambda x, r, c: x.T),  # column-major: a transposed view
    "row_padded": (lambda r, c: (r, c + 5), lambda x, r, c: x[:, :c]),
    "col_padded": (lambda r, c: (c, r + 4), lambda x, r, c: x[:, :r].T),
    "offset": (lambda r, c: (r + 2, c + 3), lambda x, r, c: x[2:, 3:]),
    "rows_apart": (
        lambda r, c: (2 * r + 3, c + 5),
        lambda x, r, c: x[1 : 1 + 2 * r : 2, 2 : 2 + c],
    ),
    # sgemm cannot read these: the builtin kernel computes them
    "both_strided": (lambda r, c: (r + 1, 2 * c + 1), lambda x, r, c: x[1:, 1::2]),
    "bcast_row": (lambda r, c: (1, c), lambda x, r, c: np.broadcast_to(x, (r, c))),
    "bcast_col": (lambda r, c: (r, 1), lambda x, r, c: np.broadcast_to(x, (r, c))),
    # a Hankel matrix: rows overlap (fine for an input, not for a BLAS leading dimension)
    "overlapping": (
        lambda r, c: (r + c,),
        lambda x, r, c: as_strided(x, (r, c), (x.itemsize, x.itemsize), writeable=False),
    ),
}
SGEMM_LAYOUTS = ("row", "col", "row_padded", "col_padded", "offset", "rows_apart")
FALLBACK_LAYOUTS = ("both_strided", "bcast_row", "bcast_col", "overlapping")


def sgemm_reads(rows: int, cols: int, s0: int, s1: int) -> bool:
    """The contract's rule for one operand: a unit stride in one dim, the other one a valid
    leading dim; the stride of a size-1 dim does not count."""
    row_major = (s1 == 1 or cols == 1) and (rows == 1 or s0 >= max(1, cols))
    col_major = (s0 == 1 or rows == 1) and (cols == 1 or s1 >= max(1, rows))
    return row_major or col_major


def expect_sgemm(params: MatmulParams) -> bool:
    p = params
    if min(p.m, p.n, p.k) <= 0 or max(p.m, p.n, p.k) > INT_MAX:
        return False
    return (
        sgemm_reads(p.m, p.k, p.a_stride0, p.a_stride1)
        and sgemm_reads(p.k, p.n, p.b_stride0, p.b_stride1)
        and sgemm_reads(p.m, p.n, p.c_stride0, p.c_stride1)
    )


def run_case(lib, rng, m, n, k, layouts, accumulate):
    """One call; checks the result, that nothing outside C's view changed, and the path taken.
    Returns "sgemm" or "fallback"."""
    views, bases = [], []
    for (rows, cols), name in zip(((m, k), (k, n), (m, n)), layouts, strict=True):
        shape_fn, view_fn = LAYOUTS[name]
        base = rng.uniform(-1, 1, shape_fn(rows, cols)).astype(np.float32)
        bases.append(base)
        views.append(view_fn(base, rows, cols))
    a, b, c = views
    c_before = bases[2].copy()
    a64, b64, c64 = (np.array(v, np.float64) for v in views)
    params = make_params(bases[0], a, bases[1], b, bases[2], c, accumulate)
    before = counts(lib)
    assert call(lib, params) == 0
    after = counts(lib)
    mask = np.zeros(bases[2].shape, bool)
    LAYOUTS[layouts[2]][1](mask, m, n)[...] = True
    assert np.array_equal(bits(bases[2][~mask]), bits(c_before[~mask]))
    if k == 0:
        want = c_before[mask] if accumulate else np.zeros_like(c_before[mask])
        assert np.array_equal(bases[2][mask], want)
    else:
        check_result(np.array(c), a64, b64, c64, accumulate, "f32")
    path = "sgemm" if after["sgemm"] > before["sgemm"] else "fallback"
    assert after == {
        **before,
        "calls": before["calls"] + 1,
        path: before[path] + 1,
    }, (before, after)  # exactly one path, and never counted as mips_matmul_f32
    assert (path == "sgemm") == expect_sgemm(params), (layouts, (m, n, k), path)
    return path


# --------------------------------------------------------------------------------------------
# The library


def test_openblas_is_open(lib):
    assert lib.mips_openblas_error() is None
    core = lib.mips_openblas_corename()
    assert core and core.decode().isprintable(), core


# --------------------------------------------------------------------------------------------
# Layouts, sizes, accumulate: against numpy, and which path ran


SHAPES = [  # (m, n, k)
    (1, 1, 1), (1, 7, 5), (6, 1, 5), (5, 7, 1), (2, 3, 4), (13, 17, 19), (64, 48, 33),
    (100, 37, 300),
]  # fmt: skip


@pytest.mark.parametrize("accumulate", [0, 1])
@pytest.mark.parametrize("c_layout", ["row", "col", "row_padded", "col_padded", "offset"])
def test_sgemm_layouts(lib, accumulate, c_layout):
    """Every operand row- or column-major (transposed), padded, offset: sgemm computes it."""
    rng = np.random.default_rng(11 + accumulate)
    for m, n, k in SHAPES:
        for a_layout in SGEMM_LAYOUTS:
            for b_layout in SGEMM_LAYOUTS:
                layouts = (a_layout, b_layout, c_layout)
                assert run_case(lib, rng, m, n, k, layouts, accumulate) == "sgemm", layouts


@pytest.mark.parametrize("accumulate", [0, 1])
@pytest.mark.parametrize("odd", FALLBACK_LAYOUTS)
def test_layouts_sgemm_cannot_read_fall_back(lib, accumulate, odd):
    """A stride-0 broadcast, non-unit strides in both dims, overlapping rows: the builtin
    kernel computes the call (unless the odd stride belongs to a dim of size 1)."""
    rng = np.random.default_rng(23 + accumulate)
    cases = [(odd, "row", "row"), ("col", odd, "col")]
    if odd == "both_strided":  # the only one of these a C may have
        cases.append(("row", "col", odd))
    paths = set()
    for m, n, k in SHAPES:
        for layouts in cases:
            paths.add(run_case(lib, rng, m, n, k, layouts, accumulate))
    assert paths == {"sgemm", "fallback"}  # size-1 dims make some of them readable


@pytest.mark.parametrize("accumulate", [0, 1])
def test_empty_products_fall_back(lib, accumulate):
    """k == 0 (C = 0, or C unchanged), and an empty C: the builtin kernel's rules."""
    rng = np.random.default_rng(5)
    for m, n, k in [(3, 4, 0), (1, 1, 0), (0, 5, 3), (4, 0, 3), (0, 0, 0)]:
        for layouts in (("row", "row", "row"), ("col", "col", "col")):
            assert run_case(lib, rng, m, n, k, layouts, accumulate) == "fallback"
    # k == 0 with NULL A and B, as the contract allows.
    c = np.full((3, 4), 5.0, np.float32)
    p = MatmulParams(c=c.ctypes.data, c_stride0=4, c_stride1=1, m=3, n=4, k=0, accumulate=0)
    assert call(lib, p) == 0 and np.all(c == 0.0)


def test_unused_strides_of_size_one_dims(lib):
    """The stride of a dim of size 1 is never read: a 1-row A broadcast down stride 0, a column
    C with any row stride, still go to sgemm."""
    rng = np.random.default_rng(3)
    k, n = 9, 6
    a = rng.uniform(-1, 1, (1, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    c = np.zeros((1, n), np.float32)
    p = MatmulParams(a.ctypes.data, 0, 0, 1, b.ctypes.data, 0, n, 1, c.ctypes.data, 0, 0, 1,
                     1, n, k, 0)  # fmt: skip
    before = counts(lib)["sgemm"]
    assert call(lib, p) == 0
    assert counts(lib)["sgemm"] == before + 1
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    # C = A . b as a column: C's column stride is 0 (unused), its rows 3 apart.
    m = 5
    a2 = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b2 = rng.uniform(-1, 1, (k, 1)).astype(np.float32)
    c2 = np.zeros((m, 3), np.float32)
    p = MatmulParams(a2.ctypes.data, 0, k, 1, b2.ctypes.data, 0, 1, 0, c2.ctypes.data, 1, 3, 0,
                     m, 1, k, 0)  # fmt: skip
    assert call(lib, p) == 0
    assert counts(lib)["sgemm"] == before + 2
    np.testing.assert_allclose(c2[:, 1:2], a2 @ b2, rtol=1e-5, atol=1e-5)
    assert np.all(c2[:, [0, 2]] == 0)


def test_inf_nan_and_write_only_c(lib):
    """accumulate = 0: C is only written (a NaN in it does not leak: beta = 0); inf and NaN in
    A or B propagate as in the builtin kernel."""
    a = np.array([[1.0, np.inf], [2.0, 3.0]], np.float32)
    b = np.array([[1.0, 0.0], [np.nan, 1.0]], np.float32)
    c = np.full((2, 2), np.nan, np.float32)
    assert call(lib, make_params(a, a, b, b, c, c, 0)) == 0
    assert np.isnan(c[0, 0]) and c[0, 1] == np.inf
    assert np.isnan(c[1, 0]) and c[1, 1] == 3.0
    c2 = np.full((2, 2), np.nan, np.float32)
    ok = np.ones((2, 2), np.float32)
    assert call(lib, make_params(ok, ok, ok, ok, c2, c2, 0)) == 0
    assert np.all(c2 == 2.0)


def test_sizes_beyond_int_fall_back(lib):
    """A leading dimension beyond INT_MAX (cblas takes int): the builtin kernel runs. The
    buffer is 8 GiB of address space, of which only the touched pages are ever made."""
    if _sanitized(plugin_path()):
        pytest.skip("an 8 GiB calloc under ASan")
    m, n, k = 2, 3, 4
    lda = INT_MAX + 1
    big = np.zeros(lda + k, np.float32)  # calloc: untouched pages cost nothing
    big[:k] = [1, 2, 3, 4]
    big[lda : lda + k] = [5, 6, 7, 8]
    b = np.arange(k * n, dtype=np.float32).reshape(k, n)
    c = np.zeros((m, n), np.float32)
    p = MatmulParams(big.ctypes.data, 0, lda, 1, *_describe(b, b), *_describe(c, c), m, n, k, 0)
    before = counts(lib)
    assert call(lib, p) == 0
    assert counts(lib)["fallback"] == before["fallback"] + 1
    assert counts(lib)["sgemm"] == before["sgemm"]
    want = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32) @ b
    np.testing.assert_array_equal(c, want)
    del big


def test_small_integers_bit_exact(lib):
    """Exact sums (small integers): sgemm and the builtin kernel agree bit for bit."""
    rng = np.random.default_rng(9)
    for m, n, k in [(7, 9, 11), (64, 64, 64), (33, 65, 130)]:
        a = rng.integers(-8, 9, (m, k)).astype(np.float32)
        b = rng.integers(-8, 9, (k, n)).astype(np.float32)
        init = rng.integers(-8, 9, (m, n)).astype(np.float32)
        for accumulate in (0, 1):
            c_blas, c_builtin = init.copy(), init.copy()
            assert call(lib, make_params(a, a, b, b, c_blas, c_blas, accumulate)) == 0
            p = make_params(a, a, b, b, c_builtin, c_builtin, accumulate)
            assert lib.mips_matmul_f32(ctypes.addressof(p), None, None) == 0
            assert np.array_equal(bits(c_blas), bits(c_builtin))
            assert np.array_equal(c_blas, a @ b + (init if accumulate else 0))


# --------------------------------------------------------------------------------------------
# Errors, counters, threads


def test_invalid_arguments_touch_nothing(lib):
    """The builtin kernel's checks, before OpenBLAS is asked for anything."""
    _a, _b, c, good, bad_edits = invalid_calls(np.float32)
    before = counts(lib)
    for edit in bad_edits:
        snapshot = c.copy()
        assert call(lib, MatmulParams(**{**good, **edit})) != 0, edit
        assert np.array_equal(bits(c), bits(snapshot)), edit
    assert lib.mips_matmul_openblas_f32(None, None, None) != 0
    after = counts(lib)
    # Rejected calls count as calls, and went to neither path.
    assert after["calls"] == before["calls"] + len(bad_edits) + 1
    assert (after["sgemm"], after["fallback"]) == (before["sgemm"], before["fallback"])
    assert call(lib, MatmulParams(**good)) == 0
    assert np.all(c == 3.0)


def test_counters_reset_and_unknown_to_the_isa_hook(lib):
    a = np.ones((3, 2), np.float32)
    b = np.ones((2, 4), np.float32)
    c = np.zeros((3, 4), np.float32)
    params = make_params(a, a, b, b, c, c, 0)
    lib.mips_debug_reset_counts()
    assert counts(lib) == {"calls": 0, "sgemm": 0, "fallback": 0, "f32": 0}
    assert call(lib, params) == 0
    assert counts(lib) == {"calls": 1, "sgemm": 1, "fallback": 0, "f32": 0}
    # The forced-ISA hook knows only the builtin kernels.
    assert lib.mips_debug_matmul_isa(OPENBLAS_SYMBOL.encode(), b"generic", None) == -1
    lib.mips_debug_reset_counts()
    assert counts(lib)["sgemm"] == 0


def test_concurrent_calls(lib):
    """Several threads in sgemm at once (as IREE's workers call it): right results, exact
    counts. OpenBLAS runs single-threaded in each caller."""
    lib.mips_debug_reset_counts()
    run_concurrently(lambda p: call(lib, p), 120, 90, 110, threads_n=4, calls=40, seed=17)
    assert counts(lib)["sgemm"] == 4 * 40


# --------------------------------------------------------------------------------------------
# Without OpenBLAS (each in its own process: the outcome of opening it is kept)


_NO_OPENBLAS = """
import ctypes, os, sys
import numpy as np
from mipsc.kernel_abi import MatmulParams
lib = ctypes.CDLL(os.environ["MIPSC_PLUGIN"])
lib.mips_openblas_error.restype = ctypes.c_char_p
lib.mips_openblas_corename.restype = ctypes.c_char_p
lib.mips_debug_call_count.restype = ctypes.c_uint64
assert lib.mips_openblas_corename() is None  # never opens the library itself
a = np.ones((3, 2), np.float32)
b = np.ones((2, 4), np.float32)
c = np.full((3, 4), 7.0, np.float32)
rcs = []
for a_s0, k in ((2, 2), (0, 2), (2, 0)):  # sgemm layout, broadcast A, k == 0: all refused
    p = MatmulParams(a.ctypes.data, 0, a_s0, 1, b.ctypes.data, 0, 4, 1, c.ctypes.data, 0, 4, 1,
                     3, 4, k, 0)
    rcs.append(lib.mips_matmul_openblas_f32(ctypes.byref(p), None, None))
assert np.all(c == 7.0), c
sgemm = lib.mips_debug_call_count(b"mips_matmul_openblas_f32:sgemm")
fallback = lib.mips_debug_call_count(b"mips_matmul_openblas_f32:fallback")
print(rcs, sgemm, fallback, lib.mips_openblas_corename())
print(lib.mips_openblas_error().decode())
"""


@pytest.mark.parametrize(
    ("library", "message"),
    [
        (None, "MIPSC_OPENBLAS_LIB is not set"),
        ("/nonexistent/libopenblas.so", "/nonexistent/libopenblas.so: cannot open shared object"),
        ("libm.so.6", "libm.so.6 exports neither scipy_cblas_sgemm nor cblas_sgemm"),
    ],
)
def test_without_openblas_every_call_fails(library, message):
    """No library, a missing file, a library without sgemm: valid calls of any layout return
    non-zero and touch nothing, and mips_openblas_error() says why."""
    env = {k: v for k, v in os.environ.items() if k != OPENBLAS_ENV}
    env["MIPSC_PLUGIN"] = str(plugin_path())
    if library is not None:
        env[OPENBLAS_ENV] = library
    result = subprocess.run(
        [sys.executable, "-c", _NO_OPENBLAS],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rcs, error = result.stdout.splitlines()
    assert rcs == "[1, 1, 1] 0 0 None"
    assert message in error, error
