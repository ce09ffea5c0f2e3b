"""The fused epilogue (mips_kernels.h, "Fused epilogue"): mips_matmul_packed_epilogue_<t>.

One call must give the same bits as the three calls it replaces (the epilogue with BIAS_SET,
the packed matmul accumulating into it, the epilogue with the chain), for every bias mode,
activation and binary op, f32 and bf16, on every instruction-set path of this CPU (the test
hook), through the import entry points and the embedded ones with a workspace (which changes
the blocks: several k blocks, smaller MC), over random shapes, strides and edges (hypothesis).
Values are random normals, so the activations see both of their ranges and every sum rounds:
equal bits mean equal rounding steps, not just equal sums.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from kernel_plugin import open_plugin

from mipsc.kernel_abi import (
    ACTIVATIONS,
    BIAS_MODES,
    BINARY_OPS,
    EMBEDDED_WORKSPACE_MAX_BYTES,
    PACKED_B_PANEL,
    PACKED_EPILOGUE_SYMBOLS,
    EpilogueParams,
    MatmulParams,
    PackedEpilogueParams,
    PackParams,
    embedded_symbol,
    packed_rows,
    packed_size,
)

VP, I64 = ctypes.c_void_p, ctypes.c_int64
STORAGE = {"f32": np.float32, "bf16": np.uint16}
ISAS = (b"generic", b"avx2", b"avx512", b"amx", b"avx512bf16")
FUSED = {"f32": "mips_matmul_packed_epilogue_f32", "bf16": "mips_matmul_packed_epilogue_bf16"}
EXAMPLES = int(os.environ.get("MIPSC_KERNEL_EXAMPLES", "300"))


@pytest.fixture(scope="module")
def lib():
    kernels = [
        f"mips_{kind}_{t}" for kind in ("pack_b", "matmul_packed", "epilogue") for t in STORAGE
    ]
    lib = open_plugin([*PACKED_EPILOGUE_SYMBOLS.values(), *kernels])
    lib.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, VP]
    lib.mips_debug_matmul_isa.restype = ctypes.c_int
    lib.mips_debug_call_count.argtypes = [ctypes.c_char_p]
    lib.mips_debug_call_count.restype = ctypes.c_uint64
    lib.mips_kernel_info.restype = ctypes.c_char_p
    lib.info = lib.mips_kernel_info()  # the configuration's paths (f32_path=..., bf16_path=...)
    for t in STORAGE:
        fused = getattr(lib, embedded_symbol(FUSED[t]))
        fused.argtypes = [VP, I64, I64, I64] * 3 + [I64] * 4 + [VP, I64, I64]
        fused.argtypes += [VP, I64, I64, I64] + [I64] * 3 + [VP, I64]
        matmul = getattr(lib, embedded_symbol(f"mips_matmul_packed_{t}"))
        matmul.argtypes = [VP, I64, I64, I64] * 3 + [I64] * 4 + [VP, I64]
        epilogue = getattr(lib, embedded_symbol(f"mips_epilogue_{t}"))
        epilogue.argtypes = [VP, I64, I64, I64, VP, I64, I64, VP, I64, I64, I64] + [I64] * 5
    return lib


@pytest.fixture(scope="module")
def isas(lib):
    return [isa for isa in ISAS if lib.mips_debug_matmul_isa(FUSED["f32"].encode(), isa, None) == 1]


def to_bits(x: np.ndarray, dtype: str) -> np.ndarray:
    """Storage of f32 values: f32 itself, or bf16 rounded to nearest even (finite values)."""
    x = np.ascontiguousarray(x, np.float32)
    if dtype == "f32":
        return x
    u = x.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def to_float(x: np.ndarray, dtype: str) -> np.ndarray:
    return (x.astype(np.uint32) << 16).view(np.float32) if dtype == "bf16" else x


def _view(base: np.ndarray, view: np.ndarray) -> list[int]:
    """Base pointer, offset and (row, col) strides in elements of a 2-D view of `base`."""
    item = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return [base.ctypes.data, offset, view.strides[0] // item, view.strides[1] // item]


@dataclass
class Case:
    """One fused call's operands: A (m x k), B packed, C's buffer and view, the bias and
    other's buffers and views, the kinds."""

    dtype: str
    m: int
    n: int
    k: int
    a: np.ndarray
    packed: np.ndarray
    c_base: np.ndarray
    c_view: tuple[int, int, int]  # offset, stride0, stride1
    bias_base: np.ndarray
    bias_view: tuple[int, int]  # offset, stride
    other_base: np.ndarray
    other_view: tuple[int, int, int]
    accumulate: int
    bias_mode: int
    activation: int
    binary: int

    def matmul(self, c: np.ndarray, accumulate: int) -> MatmulParams:
        kp = packed_rows(self.k)
        return MatmulParams(
            *_view(self.a, self.a), self.packed.ctypes.data, 0, kp, PACKED_B_PANEL,
            c.ctypes.data, *self.c_view, self.m, self.n, self.k, accumulate,
        )  # fmt: skip

    def epilogue(self, c: np.ndarray, kinds: tuple[int, int, int]) -> EpilogueParams:
        return EpilogueParams(
            c.ctypes.data, *self.c_view, self.bias_base.ctypes.data, *self.bias_view,
            self.other_base.ctypes.data, *self.other_view, self.m, self.n, *kinds,
        )  # fmt: skip

    def fused(self, c: np.ndarray) -> PackedEpilogueParams:
        mm = self.matmul(c, self.accumulate)
        values = [getattr(mm, name) for name, _ in MatmulParams._fields_]
        values += [self.bias_base.ctypes.data, *self.bias_view]
        values += [self.other_base.ctypes.data, *self.other_view]
        values += [self.bias_mode, self.activation, self.binary]
        return PackedEpilogueParams(*values)

    def three_calls(self, c: np.ndarray) -> list[tuple[str, ctypes.Structure]]:
        """The calls the fused one replaces, as (kernel, params), in order."""
        t, calls = self.dtype, []
        if self.bias_mode == BIAS_MODES["set"]:
            calls.append((f"mips_epilogue_{t}", self.epilogue(c, (BIAS_MODES["set"], 0, 0))))
        accumulate = int(self.accumulate or self.bias_mode == BIAS_MODES["set"])
        calls.append((f"mips_matmul_packed_{t}", self.matmul(c, accumulate)))
        mode = BIAS_MODES["add"] if self.bias_mode == BIAS_MODES["add"] else 0
        if mode or self.activation or self.binary:
            calls.append(
                (f"mips_epilogue_{t}", self.epilogue(c, (mode, self.activation, self.binary)))
            )
        return calls


def make_case(
    rng, dtype, m, n, k, c_layout, bias_stride, other_t, kinds, accumulate
) -> tuple[Case, np.ndarray]:
    """A case of random normals, and B (k x n) to pack."""
    st = STORAGE[dtype]
    scale = 1 / max(1, k) ** 0.5
    a = to_bits(rng.normal(0, 1.5, (m, k)), dtype)
    b = to_bits(rng.normal(0, scale, (k, n)), dtype)
    packed = np.zeros(packed_size(k, n), st)
    case = Case(
        dtype, m, n, k, a, packed, *c_buffers(rng, dtype, m, n, c_layout),
        *bias_buffers(rng, dtype, n, bias_stride), *other_buffers(rng, dtype, m, n, other_t),
        accumulate, *kinds,
    )  # fmt: skip
    return case, b


def c_buffers(rng, dtype, m, n, layout) -> tuple[np.ndarray, tuple[int, int, int]]:
    """C's buffer (random old values) and view: row-major, padded rows, every 2nd column, or
    column-major; with an offset of 3."""
    rows, cols = {"row": (m, n), "padded": (m, n + 5), "strided": (m, 2 * n), "col": (n, m)}[layout]
    base = to_bits(rng.normal(0, 1, rows * cols + 3), dtype)
    stride0, stride1 = {
        "row": (n, 1), "padded": (n + 5, 1), "strided": (2 * n, 2), "col": (1, m),
    }[layout]  # fmt: skip
    return base, (3, stride0, stride1)


def bias_buffers(rng, dtype, n, stride) -> tuple[np.ndarray, tuple[int, int]]:
    base = to_bits(rng.normal(0, 1, max(1, n * max(stride, 1)) + 1), dtype)
    return base, (1, stride)


def other_buffers(rng, dtype, m, n, transposed) -> tuple[np.ndarray, tuple[int, int, int]]:
    base = to_bits(rng.normal(0, 1, m * n), dtype)
    return base, ((0, 1, m) if transposed else (0, n, 1))


def pack_b(lib, case: Case, b: np.ndarray) -> None:
    params = PackParams(*_view(b, b), case.packed.ctypes.data, 0, case.k, case.n)
    assert getattr(lib, f"mips_pack_b_{case.dtype}")(ctypes.addressof(params), None, None) == 0


def run_import(lib, isa, name, params) -> int:
    if isa is None:
        return getattr(lib, name)(ctypes.addressof(params), None, None)
    return lib.mips_debug_matmul_isa(name.encode(), isa, ctypes.addressof(params))


def run_embedded(lib, workspace, name, params) -> int:
    fn = getattr(lib, embedded_symbol(name))
    args = [getattr(params, field) for field, _ in params._fields_]
    if not name.startswith("mips_epilogue"):
        args += [workspace.ctypes.data if workspace is not None else None,
                 workspace.nbytes if workspace is not None else 0]  # fmt: skip
    return fn(*args)


def check_same_bits(lib, case: Case, run, store_phase: bool) -> None:
    """The fused call and the three calls, each on its own copy of C: the same bits, and
    nothing outside C's view written by either. `store_phase`: the fused call must have run
    the chain in the GEMM's store phase, not as the steps in turn (":steps" not counted)."""
    fused_c, calls_c = case.c_base.copy(), case.c_base.copy()
    steps = f"{FUSED[case.dtype]}:steps".encode()
    before = lib.mips_debug_call_count(steps)
    assert run(FUSED[case.dtype], case.fused(fused_c)) == 0
    if store_phase:
        assert lib.mips_debug_call_count(steps) == before
    for name, params in case.three_calls(calls_c):
        assert run(name, params) == 0
    np.testing.assert_array_equal(fused_c.view(np.uint32 if case.dtype == "f32" else np.uint16),
                                  calls_c.view(np.uint32 if case.dtype == "f32" else np.uint16))  # fmt: skip


DIMS = hs.one_of(hs.integers(1, 40), hs.sampled_from([5, 11, 12, 13, 24, 25, 31, 32, 33, 64]))
KS = hs.one_of(hs.integers(0, 80), hs.sampled_from([1, 2, 511, 512, 513, 700, 1100]))
KINDS = hs.tuples(
    hs.sampled_from(sorted(BIAS_MODES.values())),
    hs.sampled_from(sorted(ACTIVATIONS.values())),
    hs.sampled_from(sorted(BINARY_OPS.values())),
)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    dtype=hs.sampled_from(sorted(STORAGE)),
    m=DIMS,
    n=hs.one_of(DIMS, hs.sampled_from([96, 130, 300])),
    k=KS,
    c_layout=hs.sampled_from(["row", "padded", "strided", "col"]),
    bias_stride=hs.sampled_from([1, 1, 2, 0]),
    other_t=hs.booleans(),
    kinds=KINDS,
    accumulate=hs.booleans(),
    path=hs.sampled_from(["config", "isa", "embedded"]),
    which=hs.integers(0, 1 << 16),
)
def test_fused_equals_the_three_calls(
    lib, isas, dtype, m, n, k, c_layout, bias_stride, other_t, kinds, accumulate, path, which
):
    rng = np.random.default_rng(which)
    accumulate = int(accumulate and kinds[0] != BIAS_MODES["set"])
    case, b = make_case(rng, dtype, m, n, k, c_layout, bias_stride, other_t, kinds, accumulate)
    pack_b(lib, case, b)
    # (thin products, k == 0 and the AVX2 and SSE2 paths make the steps in turn)
    wide = {"f32": b"f32_path=avx512", "bf16": b"bf16_path=avx512"}[dtype] in lib.info
    if path == "isa":
        wide = isas[which % len(isas)] in (b"avx512", b"amx", b"avx512bf16")
    fusible = m > 4 and k > 0 and wide
    if path == "embedded":
        sizes = [None, 16 * 1024, 96 * 1024, EMBEDDED_WORKSPACE_MAX_BYTES]
        size = sizes[which % len(sizes)]
        workspace = np.zeros(size, np.uint8) if size else None
        run = lambda name, p: run_embedded(lib, workspace, name, p)  # noqa: E731
        check_same_bits(lib, case, run, fusible and size is not None and size >= 96 * 1024)
    else:
        isa = isas[which % len(isas)] if path == "isa" else None
        check_same_bits(lib, case, lambda name, p: run_import(lib, isa, name, p), fusible)


def gelu(x):
    from math import erf, sqrt

    return x * 0.5 * (1 + np.vectorize(erf)(x / sqrt(2)))


@pytest.mark.parametrize("dtype", sorted(STORAGE))
def test_fused_computes_the_chain(lib, dtype):
    """gelu(A.B + bias) * other against float64 (f32: to 1e-5; bf16: a few bf16 ulps), and,
    on the AVX-512 and VDPBF16PS paths, the call runs in the store phase (no ":steps")."""
    rng = np.random.default_rng(5)
    m, n, k = 40, 96, 300
    case, b = make_case(rng, dtype, m, n, k, "row", 1, False, (2, 2, 2), 0)
    pack_b(lib, case, b)
    c = case.c_base.copy()
    before = lib.mips_debug_call_count(f"{FUSED[dtype]}:steps".encode())
    assert run_import(lib, None, FUSED[dtype], case.fused(c)) == 0
    if {"f32": b"f32_path=avx512", "bf16": b"bf16_path=avx512"}[dtype] in lib.info:
        assert lib.mips_debug_call_count(f"{FUSED[dtype]}:steps".encode()) == before
    f64 = lambda x: to_float(x, dtype).astype(np.float64)  # noqa: E731
    bias = f64(case.bias_base)[1 : 1 + n]
    other = f64(case.other_base).reshape(m, n)
    want = gelu(f64(case.a) @ f64(b) + bias) * other
    got = f64(c)[3 : 3 + m * n].reshape(m, n)
    tol = 1e-5 if dtype == "f32" else 3 * 2.0**-8
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", sorted(STORAGE))
@pytest.mark.parametrize(
    "field,value",
    [("bias_mode", 3), ("activation", 5), ("binary", -1), ("accumulate", 1), ("bias", None),
     ("other_stride0", -1), ("b_stride1", 16)],
)  # fmt: skip
def test_fused_rejects_and_writes_nothing(lib, dtype, field, value):
    """The contract's errors: a bad kind, BIAS_SET while accumulating, a missing bias, a bad
    other, a B not in the packed layout: non-zero, C untouched."""
    rng = np.random.default_rng(2)
    case, b = make_case(rng, dtype, 20, 40, 16, "row", 1, False, (2, 1, 1), 0)
    pack_b(lib, case, b)
    c = case.c_base.copy()
    params = case.fused(c)
    setattr(params, field, value)
    assert run_import(lib, None, FUSED[dtype], params) != 0
    np.testing.assert_array_equal(c, case.c_base)


def test_counted_under_its_symbol(lib):
    lib.mips_debug_reset_counts()
    rng = np.random.default_rng(3)
    case, b = make_case(rng, "f32", 3, 40, 16, "row", 1, False, (2, 1, 0), 0)  # thin: steps
    pack_b(lib, case, b)
    assert run_import(lib, None, FUSED["f32"], case.fused(case.c_base.copy())) == 0
    assert lib.mips_debug_call_count(FUSED["f32"].encode()) == 1
    assert lib.mips_debug_call_count(f"{FUSED['f32']}:steps".encode()) == 1
    assert lib.mips_debug_call_count(b"mips_matmul_packed_f32") == 0
    assert lib.mips_debug_call_count(b"mips_epilogue_f32") == 0
