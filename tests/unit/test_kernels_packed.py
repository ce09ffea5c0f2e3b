"""The pre-packed B entries of the kernel library (mips_kernels.h, "Pre-packed B").

mips_pack_b_<t> writes B into the packed layout (checked element by element against the
layout written in the contract, padding included); mips_matmul_packed_<t> computes from it
what mips_matmul_<t> computes from B itself, on every instruction-set path of this CPU.
Small integers make every sum exact, so results are compared bit for bit.
"""

from __future__ import annotations

import ctypes
import pathlib

import numpy as np
import pytest
from kernel_plugin import open_plugin

from mipsc.kernel_abi import (
    EMBEDDED_WORKSPACE_MAX_BYTES,
    PACK_SYMBOLS,
    PACKED_B_PANEL,
    PACKED_SYMBOLS,
    MatmulParams,
    PackParams,
    embedded_symbol,
    packed_cols,
    packed_rows,
    packed_size,
)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
VP = ctypes.c_void_p
STORAGE = {"f32": np.float32, "bf16": np.uint16}
ISAS = (b"generic", b"avx2", b"avx512", b"amx", b"avx512bf16")


@pytest.fixture(scope="module")
def lib():
    lib = open_plugin([*PACK_SYMBOLS.values(), *PACKED_SYMBOLS.values(), "mips_matmul_f32"])
    lib.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, VP]
    lib.mips_debug_matmul_isa.restype = ctypes.c_int
    lib.mips_debug_call_count.argtypes = [ctypes.c_char_p]
    lib.mips_debug_call_count.restype = ctypes.c_uint64
    return lib


@pytest.fixture(scope="module")
def isas(lib):
    symbol = b"mips_matmul_packed_f32"
    return [isa for isa in ISAS if lib.mips_debug_matmul_isa(symbol, isa, None) == 1]


def to_float(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bf16":
        return (x.astype(np.uint32) << 16).view(np.float32)
    return x


def from_float(x: np.ndarray, dtype: str) -> np.ndarray:
    """f32 -> storage, rounded to nearest even (finite values: all that is used here)."""
    x = np.ascontiguousarray(x, np.float32)
    if dtype != "bf16":
        return x
    u = x.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def reference_pack(b: np.ndarray, dtype: str) -> np.ndarray:
    """The packed layout as the contract writes it, from B (k x n)."""
    k, n = b.shape
    kp, np_ = packed_rows(k), packed_cols(n)
    padded = np.zeros((kp, np_), b.dtype)
    padded[:k, :n] = b
    panels = padded.reshape(kp, np_ // PACKED_B_PANEL, PACKED_B_PANEL).transpose(1, 0, 2)
    if dtype == "bf16":  # rows q, q + 1 interleaved per column
        panels = panels.reshape(-1, kp // 2, 2, PACKED_B_PANEL).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(panels).reshape(-1)


def _view(base: np.ndarray, view: np.ndarray) -> tuple[int, int, int, int]:
    item = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return base.ctypes.data, offset, view.strides[0] // item, view.strides[1] // item


def pack(lib, dtype: str, base: np.ndarray, b: np.ndarray, out: np.ndarray, offset=0) -> int:
    k, n = b.shape
    params = PackParams(*_view(base, b), out.ctypes.data, offset, k, n)
    return getattr(lib, PACK_SYMBOLS_BY_NAME[dtype])(ctypes.addressof(params), None, None)


PACK_SYMBOLS_BY_NAME = {"f32": "mips_pack_b_f32", "bf16": "mips_pack_b_bf16"}


def random_ints(rng, shape, dtype: str) -> np.ndarray:
    return from_float(rng.integers(-3, 4, shape).astype(np.float32), dtype)


@pytest.mark.parametrize("dtype", sorted(STORAGE))
@pytest.mark.parametrize("transposed", [False, True], ids=["kxn", "linear-weight"])
@pytest.mark.parametrize("k,n", [(1, 1), (7, 33), (64, 96), (301, 70)])
def test_pack_writes_the_contract_layout(lib, dtype, transposed, k, n):
    rng = np.random.default_rng(k * 1000 + n)
    base = random_ints(rng, (n, k) if transposed else (k, n), dtype)
    b = base.T if transposed else base
    out = np.full(packed_size(k, n), 77, STORAGE[dtype])  # padding must be overwritten
    assert pack(lib, dtype, base, b, out) == 0
    np.testing.assert_array_equal(out, reference_pack(b, dtype))


@pytest.mark.parametrize("dtype", sorted(STORAGE))
def test_pack_split_over_column_tiles(lib, dtype):
    """Column tiles packed one by one, at offset j0 * Kp, give the layout of the whole B."""
    rng = np.random.default_rng(1)
    k, n = 9, 100
    base = random_ints(rng, (n, k), dtype)
    b = base.T
    out = np.zeros(packed_size(k, n), STORAGE[dtype])
    for j0 in range(0, n, 64):
        assert pack(lib, dtype, base, b[:, j0 : j0 + 64], out, j0 * packed_rows(k)) == 0
    np.testing.assert_array_equal(out, reference_pack(b, dtype))


def packed_params(a, packed, c, k, n, j0=0, q0=0, kp=None, accumulate=0) -> MatmulParams:
    """A tile of C = A . B[q0:q0 + k, j0:j0 + n] with B packed (kp rows per panel)."""
    m = a.shape[0]
    kp = kp if kp is not None else packed_rows(k)
    return MatmulParams(
        a.ctypes.data, 0, a.strides[0] // a.itemsize, a.strides[1] // a.itemsize,
        packed.ctypes.data, j0 * kp + PACKED_B_PANEL * q0, kp, PACKED_B_PANEL,
        c.ctypes.data, 0, n, 1, m, n, k, accumulate,
    )  # fmt: skip


SHAPES = [(1, 1, 1), (1, 100, 64), (5, 33, 7), (12, 64, 300), (13, 96, 31), (64, 70, 1100)]
SHAPES += [(20, 300, 600)]  # a tile wider than a widened packed B panel (MM_PACKED_NC)


@pytest.mark.parametrize("dtype", sorted(STORAGE))
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_packed_matmul_equals_the_product(lib, isas, dtype, m, n, k):
    rng = np.random.default_rng(m * 7 + n * 5 + k)
    st = STORAGE[dtype]
    a = random_ints(rng, (m, k), dtype)
    base = random_ints(rng, (n, k), dtype)  # a linear weight: B = base.T
    packed = np.zeros(packed_size(k, n), st)
    assert pack(lib, dtype, base, base.T, packed) == 0
    old = random_ints(rng, (m, n), dtype)
    want = to_float(a, dtype) @ to_float(base, dtype).T
    symbol = PACKED_SYMBOLS_BY_NAME[dtype].encode()
    for isa in [None, *isas]:
        for accumulate in (0, 1):
            c = old.copy()
            params = packed_params(a, packed, c, k, n, accumulate=accumulate)
            if isa is None:
                rc = getattr(lib, symbol.decode())(ctypes.addressof(params), None, None)
            else:
                rc = lib.mips_debug_matmul_isa(symbol, isa, ctypes.addressof(params))
            assert rc == 0, isa
            expected = want + (to_float(old, dtype) if accumulate else 0)  # exact in f32
            expected = to_float(from_float(expected, dtype), dtype)  # rounded once
            np.testing.assert_array_equal(to_float(c, dtype), expected, err_msg=f"{isa}")


PACKED_SYMBOLS_BY_NAME = {"f32": "mips_matmul_packed_f32", "bf16": "mips_matmul_packed_bf16"}


@pytest.mark.parametrize("dtype", sorted(STORAGE))
def test_packed_tile_at_an_offset(lib, dtype):
    """A tile of columns [32, 96) and rows [4, 40) of the packed B, as a split K uses."""
    rng = np.random.default_rng(3)
    k, n = 50, 130
    b = random_ints(rng, (k, n), dtype)
    packed = np.zeros(packed_size(k, n), STORAGE[dtype])
    assert pack(lib, dtype, b, b, packed) == 0
    a = random_ints(rng, (20, 36), dtype)
    c = np.zeros((20, 64), STORAGE[dtype])
    params = packed_params(a, packed, c, 36, 64, j0=32, q0=4, kp=packed_rows(k))
    symbol = PACKED_SYMBOLS_BY_NAME[dtype]
    assert getattr(lib, symbol)(ctypes.addressof(params), None, None) == 0
    want = to_float(a, dtype) @ to_float(b, dtype)[4:40, 32:96]
    np.testing.assert_array_equal(to_float(c, dtype), to_float(from_float(want, dtype), dtype))


@pytest.mark.parametrize("dtype", sorted(STORAGE))
@pytest.mark.parametrize(
    "field,value",
    [("b_stride1", 16), ("b_stride0", 7), ("b_stride0", 2), ("b_offset", 1), ("b_offset", -2)],
)
def test_packed_matmul_rejects_other_layouts(lib, dtype, field, value):
    k, n, m = 6, 40, 3
    st = STORAGE[dtype]
    a = np.ones((m, k), st)
    packed = np.zeros(packed_size(k, n), st)
    c = np.full((m, n), 5, st)
    params = packed_params(a, packed, c, k, n)
    setattr(params, field, value)
    symbol = PACKED_SYMBOLS_BY_NAME[dtype]
    assert getattr(lib, symbol)(ctypes.addressof(params), None, None) != 0
    assert np.all(c == 5)


@pytest.mark.parametrize("dtype", sorted(STORAGE))
def test_pack_rejects_an_odd_offset_and_null(lib, dtype):
    st = STORAGE[dtype]
    b = np.ones((4, 8), st)
    out = np.zeros(packed_size(4, 8) + 2, st)
    assert pack(lib, dtype, b, b, out, offset=1) != 0
    params = PackParams(b.ctypes.data, 0, 8, 1, None, 0, 4, 8)
    assert getattr(lib, PACK_SYMBOLS_BY_NAME[dtype])(ctypes.addressof(params), None, None) != 0
    assert np.all(out == 0)


def test_counters(lib):
    lib.mips_debug_reset_counts()
    b = np.ones((4, 8), np.float32)
    out = np.zeros(packed_size(4, 8), np.float32)
    assert pack(lib, "f32", b, b, out) == 0
    a, c = np.ones((2, 4), np.float32), np.zeros((2, 8), np.float32)
    params = packed_params(a, out, c, 4, 8)
    assert lib.mips_matmul_packed_f32(ctypes.addressof(params), None, None) == 0
    assert np.all(c == 4)
    assert lib.mips_debug_call_count(b"mips_pack_b_f32") == 1
    assert lib.mips_debug_call_count(b"mips_matmul_packed_f32") == 1
    assert lib.mips_debug_call_count(b"mips_matmul_f32") == 0


# ---- the embedded entry points (mips_kernels.h, "Embedded entry points") ------------------

I64 = ctypes.c_int64


def declare_embedded(library: ctypes.CDLL) -> None:
    """Declares the pack and packed-matmul embedded entry points of `library` (the plugin's
    copy, or the freestanding object linked as IREE links it)."""
    for symbol in PACK_SYMBOLS.values():
        fn = getattr(library, embedded_symbol(symbol))
        fn.argtypes = [VP, I64, I64, I64, VP, I64, I64, I64]
        fn.restype = ctypes.c_int
    for symbol in PACKED_SYMBOLS.values():
        fn = getattr(library, embedded_symbol(symbol))
        fn.argtypes = [VP, I64, I64, I64] * 3 + [I64] * 4 + [VP, I64]
        fn.restype = ctypes.c_int


def check_embedded_entries(library: ctypes.CDLL, dtype: str, workspace: np.ndarray | None) -> None:
    """Packs a linear weight with mips_pack_b_<t>_embedded (the contract's layout), then runs
    mips_matmul_packed_<t>_embedded with `workspace` (None: none lent) on shapes that take
    the small paths, several k blocks and edge tiles: the exact product, rounded once."""
    declare_embedded(library)
    ws, ws_bytes = (None, 0) if workspace is None else (workspace.ctypes.data, workspace.nbytes)
    st = STORAGE[dtype]
    for m, n, k in [(1, 100, 64), (13, 96, 31), (64, 70, 1100), (40, 300, 2100)]:
        rng = np.random.default_rng(m + n + k)
        a = random_ints(rng, (m, k), dtype)
        base = random_ints(rng, (n, k), dtype)
        packed = np.full(packed_size(k, n), 77, st)
        pack_fn = getattr(library, embedded_symbol(PACK_SYMBOLS_BY_NAME[dtype]))
        assert pack_fn(*_view(base, base.T), packed.ctypes.data, 0, k, n) == 0
        np.testing.assert_array_equal(packed, reference_pack(base.T, dtype))
        old = random_ints(rng, (m, n), dtype)
        matmul_fn = getattr(library, embedded_symbol(PACKED_SYMBOLS_BY_NAME[dtype]))
        for accumulate in (0, 1):
            c = old.copy()
            p = packed_params(a, packed, c, k, n, accumulate=accumulate)
            args = [getattr(p, name) for name, _ in MatmulParams._fields_]
            assert matmul_fn(*args, ws, ws_bytes) == 0
            want = to_float(a, dtype) @ to_float(base, dtype).T
            want = want + (to_float(old, dtype) if accumulate else 0)  # exact in f32
            np.testing.assert_array_equal(
                to_float(c, dtype), to_float(from_float(want, dtype), dtype), err_msg=f"{m}x{n}x{k}"
            )


@pytest.mark.parametrize("dtype", sorted(STORAGE))
@pytest.mark.parametrize("workspace_bytes", [0, 4096, 96 * 1024, EMBEDDED_WORKSPACE_MAX_BYTES])
def test_embedded_entries_fit_the_workspace(lib, dtype, workspace_bytes):
    """Through the plugin's copy of the embedded entry points (sanitized in `make test-asan`):
    right with any workspace, from none (the plain loop) to the 1 MiB a module lends."""
    workspace = np.zeros(workspace_bytes, np.uint8) if workspace_bytes else None
    check_embedded_entries(lib, dtype, workspace)
