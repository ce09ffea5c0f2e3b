"""mips_attention_<t> (kernels/mips_kernels.h, "Attention") through ctypes, against numpy.

The import entry (heap workspace) and the embedded entry with a workspace too small for any
block (the plain row path) must both give softmax(q·kᵀ·scale + mask)·v with torch's rules:
causal from the top-left corner, a row that sees no key is 0."""

from __future__ import annotations

import ctypes

import ml_dtypes
import numpy as np
import pytest
from kernel_plugin import open_plugin

SYMBOLS = ("mips_attention_f32", "mips_attention_f16", "mips_attention_bf16")
NP_TYPES = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}


class Params(ctypes.Structure):
    _fields_ = [
        *[(f"{x}{f}", t) for x in "qkv" for f, t in (
            ("", ctypes.c_void_p), ("_offset", ctypes.c_int64),
            ("_stride0", ctypes.c_int64), ("_stride1", ctypes.c_int64))],
        ("mask", ctypes.c_void_p), ("mask_offset", ctypes.c_int64),
        ("mask_stride0", ctypes.c_int64), ("mask_stride1", ctypes.c_int64),
        ("o", ctypes.c_void_p), ("o_offset", ctypes.c_int64),
        ("o_stride0", ctypes.c_int64), ("o_stride1", ctypes.c_int64),
        ("m", ctypes.c_int64), ("n", ctypes.c_int64), ("e", ctypes.c_int64),
        ("ev", ctypes.c_int64), ("has_mask", ctypes.c_int64), ("causal_row0", ctypes.c_int64),
        ("scale", ctypes.c_float),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    plugin = open_plugin(SYMBOLS)
    for t in ("f32", "f16", "bf16"):
        fn = getattr(plugin, f"mips_attention_{t}_embedded")
        fn.argtypes = [
            *([ctypes.c_void_p] + [ctypes.c_int64] * 3) * 5,
            *[ctypes.c_int64] * 6, ctypes.c_float, ctypes.c_void_p, ctypes.c_int64,
        ]  # fmt: skip
        fn.restype = ctypes.c_int
    return plugin


def reference(q, k, v, mask, causal_row0: int, scale: float) -> np.ndarray:
    """torch's definition in f64, with _safe_softmax's zero rows."""
    s = q.astype(np.float64) @ k.astype(np.float64).T * scale
    if mask is not None:
        s = s + mask.astype(np.float64)
    if causal_row0 >= 0:
        rows = np.arange(q.shape[0])[:, None] + causal_row0
        s = np.where(np.arange(k.shape[0])[None, :] <= rows, s, -np.inf)
    top = s.max(axis=1, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    p = np.exp(s - safe)
    total = p.sum(axis=1, keepdims=True)
    out = np.where(total > 0, (p / np.where(total > 0, total, 1)) @ v.astype(np.float64), 0.0)
    return out


def call(lib, t: str, q, k, v, mask, causal_row0: int, scale: float, embedded_ws: int = -1):
    o = np.full((q.shape[0], v.shape[1]), np.nan, dtype=q.dtype)
    ptr = lambda a: a.ctypes.data  # noqa: E731
    mask_args = (ptr(mask), 0, *(s // mask.itemsize for s in mask.strides)) if mask is not None \
        else (None, 0, 0, 0)  # fmt: skip
    args = []
    for a in (q, k, v):
        args += [ptr(a), 0, *(s // a.itemsize for s in a.strides)]
    args += [*mask_args, ptr(o), 0, *(s // o.itemsize for s in o.strides)]
    args += [q.shape[0], k.shape[0], q.shape[1], v.shape[1], int(mask is not None), causal_row0]
    if embedded_ws >= 0:
        ws = (ctypes.c_char * max(embedded_ws, 1))()
        rc = getattr(lib, f"mips_attention_{t}_embedded")(*args, scale, ws, embedded_ws)
    else:
        params = Params(*args, scale)
        rc = getattr(lib, f"mips_attention_{t}")(ctypes.byref(params), None, None)
    assert rc == 0
    return o


CASES = [
    # m, n, e, ev, masked, causal_row0
    (64, 64, 64, 64, False, -1),
    (37, 1000, 32, 48, True, -1),  # several key chunks, n not a multiple of a chunk
    (70, 700, 16, 16, False, 5),  # causal: chunks skipped, rows in two blocks
    (1, 1, 8, 8, False, -1),
    (5, 9, 3, 7, True, 0),
    # AVX-512's lanes path (blocks of 16 rows or more): a block of 48 rows (3 vectors), causal
    # over two key chunks, ev not a multiple of 16 (V copied to padded rows)
    (48, 300, 64, 40, False, 17),
    (128, 128, 64, 64, True, -1),  # the encoder's head: two blocks, V read in place
]


@pytest.mark.parametrize("t", ["f32", "bf16", "f16"])
@pytest.mark.parametrize("m,n,e,ev,masked,causal_row0", CASES)
@pytest.mark.parametrize("workspace", [-1, 0], ids=["blocks", "plain"])
def test_attention_matches_the_definition(lib, t, m, n, e, ev, masked, causal_row0, workspace):
    rng = np.random.default_rng(m * 1000 + n)
    dtype = NP_TYPES[t]
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in ((m, e), (n, e), (n, ev)))
    mask = rng.standard_normal((m, n)).astype(dtype) if masked else None
    scale = 1.0 / np.sqrt(e)
    out = call(lib, t, q, k, v, mask, causal_row0, scale, workspace).astype(np.float32)
    want = reference(q, k, v, mask, causal_row0, scale)
    # f32: sum order and exp; f16/bf16: the inputs are exact, one rounding of O at the end.
    tol = {"f32": 2e-5, "bf16": 2 ** -8, "f16": 2 ** -11}[t]
    np.testing.assert_allclose(out, want, atol=tol * 2, rtol=tol)


@pytest.mark.parametrize("t", ["f32", "bf16"])
def test_strided_operands(lib, t):
    """q, k, v and o read and written by strides (columns not contiguous, as a head sliced
    out of a projection's transpose), 40 rows: a lanes block and the GEMM path's 8 rows."""
    rng = np.random.default_rng(7)
    dtype = NP_TYPES[t]
    q, k, v = (rng.standard_normal(s).astype(dtype).T for s in ((32, 40), (32, 90), (32, 90)))
    out = call(lib, t, q, k, v, None, 3, 0.3).astype(np.float32)
    tol = {"f32": 2e-5, "bf16": 2**-8}[t]
    np.testing.assert_allclose(out, reference(q, k, v, None, 3, 0.3), atol=tol * 2, rtol=tol)


@pytest.mark.parametrize("t", ["f32", "f16"])
def test_mask_row_broadcast(lib, t):
    """A mask of one row read for every query row (stride 0: a padding mask [B, 1, 1, S]),
    34 rows: a lanes block of 32 and the GEMM path's 2."""
    rng = np.random.default_rng(3)
    dtype = NP_TYPES[t]
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in ((34, 16), (70, 16), (70, 16)))
    row = rng.standard_normal(70).astype(dtype)
    row[::3] = -np.inf
    mask = np.broadcast_to(row, (34, 70))
    out = call(lib, t, q, k, v, mask, -1, 0.25).astype(np.float32)
    tol = {"f32": 2e-5, "f16": 2**-11}[t]
    np.testing.assert_allclose(out, reference(q, k, v, mask, -1, 0.25), atol=tol * 2, rtol=tol)


@pytest.mark.parametrize("rows", [6, 40], ids=["gemm", "lanes"])
@pytest.mark.parametrize("workspace", [-1, 0], ids=["blocks", "plain"])
def test_fully_masked_rows_are_zero(lib, workspace, rows):
    """A row whose mask is -inf everywhere gives 0 (torch's _safe_softmax), the others their
    softmax; the broadcast (stride 0) mask row is read as every row's."""
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((rows, 8), (600, 8), (600, 4)))
    mask = np.zeros((rows, 600), np.float32)
    mask[2] = -np.inf
    mask[4, 550:] = -np.inf  # the last chunk hidden: the running max keeps its value
    out = call(lib, "f32", q, k, v, mask, -1, 0.5, workspace)
    np.testing.assert_array_equal(out[2], 0.0)
    np.testing.assert_allclose(out, reference(q, k, v, mask, -1, 0.5), atol=1e-5, rtol=1e-5)


def test_bad_params_are_refused(lib):
    """has_mask out of range, a negative size: non-zero, O untouched."""
    q = np.ones((2, 2), np.float32)
    params = Params(q.ctypes.data, 0, 2, 1, q.ctypes.data, 0, 2, 1, q.ctypes.data, 0, 2, 1,
                    None, 0, 0, 0, q.ctypes.data, 0, 2, 1, 2, 2, 2, 2, 2, -1, 1.0)  # fmt: skip
    assert lib.mips_attention_f32(ctypes.byref(params), None, None) != 0
    params.has_mask, params.n = 0, -1
    assert lib.mips_attention_f32(ctypes.byref(params), None, None) != 0
    np.testing.assert_array_equal(q, 1.0)
