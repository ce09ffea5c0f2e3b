"""Thin products (few rows of C, a decode step's M = 1): the kernels' streaming paths.

f32 with a transposed B (a linear weight, b_stride0 == 1) runs matmul_gemm.inc's small_dots,
f32 on a pre-packed B its packed_thin (M <= 4; on every instruction-set path of this CPU,
whose register budgets differ), bf16 on a pre-packed B matmul_bf16_dp.c's dp_thin (M <= 4; the
blocked GEMM above). They read B from `thin_streams` stripes at once (the kernel
configuration's field, set here with mips_debug_set_config): every stream count, every M from 1 to 16 (dp_thin's 1-, 2- and 4-row
instances, and the paths above them), N not a multiple of the vector width or of the 32-column
panel (uneven stripes, a stripe shorter than the others, fewer panels than streams), K odd and
even, strided A and C, accumulate. Small integers make every sum exact: bit-for-bit checks.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from kernel_plugin import open_plugin

from mipsc.kernel_abi import PACKED_B_PANEL, MatmulParams, PackParams, packed_rows, packed_size

STORAGE = {"f32": np.float32, "bf16": np.uint16}
KINDS = {  # kind: (dtype, matmul symbol, pack symbol or None)
    "f32": ("f32", "mips_matmul_f32", None),
    "f32-packed": ("f32", "mips_matmul_packed_f32", "mips_pack_b_f32"),
    "bf16": ("bf16", "mips_matmul_packed_bf16", "mips_pack_b_bf16"),
}
ISAS = (b"generic", b"avx2", b"avx512")
SHAPES_N_K = [(1, 2), (31, 17), (33, 64), (100, 33), (200, 130)]
"""N and K: one column; under a panel and a vector; a panel and one; 4 panels, uneven stripes
(the last short); 7 panels (stripes of 2, 2, 2, 1) with K odd."""


@pytest.fixture(scope="module")
def lib():
    lib = open_plugin([symbol for _, *symbols in KINDS.values() for symbol in symbols if symbol])
    lib.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    lib.mips_debug_matmul_isa.restype = ctypes.c_int
    lib.mips_debug_set_config.argtypes = [ctypes.c_char_p, ctypes.c_int64]
    lib.mips_debug_set_config.restype = ctypes.c_int
    lib.mips_kernel_info.argtypes = []
    lib.mips_kernel_info.restype = ctypes.c_char_p
    return lib


@contextmanager
def thin_streams(lib, streams: int) -> Iterator[None]:
    """The live configuration's thin_streams set to `streams`, restored afterwards."""
    info = dict(re.findall(r"(\w+)=(\S+)", lib.mips_kernel_info().decode()))
    before = int(info["thin_streams"])
    assert lib.mips_debug_set_config(b"thin_streams", streams) == 0
    try:
        yield
    finally:
        assert lib.mips_debug_set_config(b"thin_streams", before) == 0


def to_float(x: np.ndarray, dtype: str) -> np.ndarray:
    return (x.astype(np.uint32) << 16).view(np.float32) if dtype == "bf16" else x


def small_ints(rng, shape, dtype: str) -> np.ndarray:
    x = rng.integers(-3, 4, shape).astype(np.float32)
    return (x.view(np.uint32) >> 16).astype(np.uint16) if dtype == "bf16" else x


def strided(base: np.ndarray, rows: int, cols: int, row_stride: int, col_stride: int):
    """(view, offset, stride0, stride1) of a rows x cols view of `base` at element 3."""
    view = np.lib.stride_tricks.as_strided(
        base[3:], (rows, cols), (row_stride * base.itemsize, col_stride * base.itemsize)
    )
    return view, 3, row_stride, col_stride


def thin_call(lib, kind: str, m: int, n: int, k: int, layout: str, accumulate: int, rng, isa=None):
    """C (m x n) from the kernel (on path `isa` when given) and from numpy: A and C
    contiguous, or A with padded rows and C with padded rows (`padded`) or written by columns
    (`columns`)."""
    dtype, symbol, pack_symbol = KINDS[kind]
    st = STORAGE[dtype]
    weight = small_ints(rng, (n, k), dtype)  # a linear weight: B = weight.T
    a_base = small_ints(rng, (m * (k + 5) + 8,), dtype)
    a, a_off, as0, _ = strided(a_base, m, k, k if layout == "contig" else k + 5, 1)
    c_base = small_ints(rng, (m * (n + 3) + n * (m + 2) + 8,), dtype)
    cs0, cs1 = {"contig": (n, 1), "padded": (n + 3, 1), "columns": (1, m + 2)}[layout]
    c, c_off, _, _ = strided(c_base, m, n, cs0, cs1)
    old = to_float(c.copy(), dtype)
    if pack_symbol is not None:
        b = np.zeros(packed_size(k, n), st)
        pack = PackParams(weight.ctypes.data, 0, 1, k, b.ctypes.data, 0, k, n)
        assert getattr(lib, pack_symbol)(ctypes.addressof(pack), None, None) == 0
        b_args = (b.ctypes.data, 0, packed_rows(k), PACKED_B_PANEL)
    else:
        b_args = (weight.ctypes.data, 0, 1, k)
    params = MatmulParams(a_base.ctypes.data, a_off, as0, 1, *b_args,
                          c_base.ctypes.data, c_off, cs0, cs1, m, n, k, accumulate)  # fmt: skip
    if isa is None:
        assert getattr(lib, symbol)(ctypes.addressof(params), None, None) == 0
    else:
        assert lib.mips_debug_matmul_isa(symbol.encode(), isa, ctypes.addressof(params)) == 0
    want = to_float(a, dtype) @ to_float(weight, dtype).T + (old if accumulate else 0)
    return to_float(c, dtype), want  # every sum exact: no rounding in either


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("streams", [1, 2, 4])
def test_thin_products_every_row_count(lib, kind, streams):
    rng = np.random.default_rng(streams)
    with thin_streams(lib, streams):
        for m in range(1, 17):
            for n, k in SHAPES_N_K:
                layout = ("contig", "padded", "columns")[(m + n) % 3]
                got, want = thin_call(lib, kind, m, n, k, layout, m % 2, rng)
                np.testing.assert_array_equal(got, want, err_msg=f"{m}x{n}x{k} {layout}")


@pytest.mark.parametrize("streams", [1, 4])
def test_packed_f32_thin_on_every_path(lib, streams):
    """packed_thin's rows and streams per call follow each path's register budget (AVX-512:
    16 accumulators of 16 floats; AVX2 and SSE2: 8): every row count up to 4 on each path."""
    rng = np.random.default_rng(10 + streams)
    symbol = KINDS["f32-packed"][1].encode()
    with thin_streams(lib, streams):
        for isa in ISAS:
            if lib.mips_debug_matmul_isa(symbol, isa, None) != 1:
                continue
            for m in range(1, 5):
                for n, k in SHAPES_N_K:
                    got, want = thin_call(lib, "f32-packed", m, n, k, "padded", m % 2, rng, isa)
                    np.testing.assert_array_equal(got, want, err_msg=f"{isa} {m}x{n}x{k}")


def test_thin_streams_out_of_range_is_refused(lib):
    """0 is refused by the debug setter (as for every block); the kernels clamp others to 4."""
    assert lib.mips_debug_set_config(b"thin_streams", 0) == -1
    with thin_streams(lib, 9):
        got, want = thin_call(lib, "f32", 1, 70, 40, "contig", 0, np.random.default_rng(0))
        np.testing.assert_array_equal(got, want)
