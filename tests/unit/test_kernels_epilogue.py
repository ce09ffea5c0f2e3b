"""ctypes tests of the epilogue kernels mips_epilogue_{f32,f16,bf16} (kernels/epilogue.c).

The contract is mips_kernels.h, "Epilogues": per element, bias, activation and binary op in
that order, each rounded to the element type. Every forced instruction-set path this CPU has
is checked (mips_debug_matmul_isa runs the epilogues too).

References: the activations in float64 from Python's math.erf / numpy's exp and tanh (their
error is below 2^-52 relative, far under an f32 ulp). The kernel's exp, erf and tanh are at
most 2 ulp from the exact functions (epilogue_math.inc); the bounds below follow from that and
the f32 roundings of torch's order of operations.
"""

import ctypes
import math
import pathlib

import numpy as np
import pytest
from kernel_plugin import open_plugin

from mipsc.kernel_abi import (
    ACTIVATIONS,
    BIAS_MODES,
    BINARY_OPS,
    EPILOGUE_PARAMS,
    EPILOGUE_SYMBOLS,
    EpilogueParams,
)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
STORAGE = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}
ISAS = (b"generic", b"avx2", b"avx512", b"amx", b"avx512bf16")
ULP = 2.0**-23  # f32 ulp of 1.0


@pytest.fixture(scope="module")
def lib():
    lib = open_plugin(EPILOGUE_SYMBOLS.values())
    lib.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    lib.mips_debug_matmul_isa.restype = ctypes.c_int
    lib.mips_debug_call_count.argtypes = [ctypes.c_char_p]
    lib.mips_debug_call_count.restype = ctypes.c_uint64
    return lib


@pytest.fixture(scope="module")
def isas(lib):
    """The forced paths this CPU runs (a NULL params call returns 1 on those, -1 otherwise)."""
    return [i for i in ISAS if lib.mips_debug_matmul_isa(b"mips_epilogue_f32", i, None) == 1]


def _view(base: np.ndarray | None, view: np.ndarray | None) -> tuple[int | None, int, int, int]:
    """(pointer, offset, stride0, stride1) of a 2-D view of base, in elements."""
    if base is None or view is None:
        return None, 0, 0, 0
    item = base.itemsize
    offset = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return base.ctypes.data, offset // item, view.strides[0] // item, view.strides[1] // item


def params(c, bias=None, other=None, *, bias_mode="none", activation="none", binary="none",
           c_base=None, other_base=None) -> EpilogueParams:  # fmt: skip
    c_ptr, c_off, c_s0, c_s1 = _view(c if c_base is None else c_base, c)
    o_ptr, o_off, o_s0, o_s1 = _view(other if other_base is None else other_base, other)
    b_ptr = bias.ctypes.data if bias is not None else None
    b_stride = bias.strides[0] // bias.itemsize if bias is not None else 0
    m, n = c.shape
    values = [c_ptr, c_off, c_s0, c_s1, b_ptr, 0, b_stride, o_ptr, o_off, o_s0, o_s1, m, n,
              BIAS_MODES[bias_mode], ACTIVATIONS[activation], BINARY_OPS[binary]]  # fmt: skip
    return EpilogueParams(*values)


def run(lib, dtype: str, p: EpilogueParams, isa: bytes | None = None) -> int:
    symbol = f"mips_epilogue_{dtype}"
    if isa is None:
        return getattr(lib, symbol)(ctypes.byref(p), None, None)
    return lib.mips_debug_matmul_isa(symbol.encode(), isa, ctypes.byref(p))


def to_f32(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bf16":
        return (x.astype(np.uint32) << 16).view(np.float32)
    return x.astype(np.float32)


def from_f32(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round f32 values to the storage type, nearest even (NaN stays NaN)."""
    x = np.asarray(x, np.float32)
    if dtype == "bf16":
        u = x.view(np.uint32).astype(np.uint64)
        rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        return np.where(np.isnan(x), np.uint16(0x7FC0), rounded)
    return x.astype(STORAGE[dtype])


def exact(activation: str, x: np.ndarray) -> np.ndarray:
    """The activation in float64 (SiLU's e^-x overflowing where f32's does, as in torch)."""
    x = x.astype(np.float64)
    with np.errstate(all="ignore"):
        if activation == "relu":
            return np.where(x < 0, 0.0, x)
        if activation == "gelu":
            return x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
        if activation == "gelu_tanh":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        e = np.exp(-x)
        return x / (1 + np.where(e > np.finfo(np.float32).max, np.inf, e))  # torch's f32 exp


def bound(activation: str, x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """What the f32 result may differ from `ref` by: a few ulp of the result, plus for GELU the
    cancellation in 1 + erf (torch's formula), which the input's size scales."""
    x = np.abs(x.astype(np.float64))
    extra = {"relu": 0.0, "gelu": 1.5, "gelu_tanh": 2.5, "silu": 0.0}[activation]
    return ULP * (4 * np.abs(ref) + extra * x) + 1e-44


SAMPLES = np.concatenate(
    [np.linspace(-12, 12, 20001), np.geomspace(1e-20, 90, 3000), -np.geomspace(1e-20, 90, 3000)]
).astype(np.float32)


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh", "silu"])
def test_f32_activations_within_their_bound(lib, isas, activation):
    for isa in isas:
        c = SAMPLES.reshape(1, -1).copy()
        assert run(lib, "f32", params(c, activation=activation), isa) == 0
        ref = exact(activation, SAMPLES)
        err = np.abs(c[0].astype(np.float64) - ref)
        worst = int(np.argmax(err / bound(activation, SAMPLES, ref)))
        assert np.all(err <= bound(activation, SAMPLES, ref)), (isa, SAMPLES[worst], c[0, worst])


def test_erf_near_one_ulp_through_gelu(lib, isas):
    """For x > 0, gelu(x) / (x/2) - 1 is erf(x/√2) up to two roundings: pins erf to a few ulp
    where it matters most (near 1), which a rough approximation (1e-7 abs) would miss."""
    x = np.linspace(0.5, 5.0, 4001).astype(np.float32)
    for isa in isas:
        c = x.reshape(1, -1).copy()
        assert run(lib, "f32", params(c, activation="gelu"), isa) == 0
        got = c[0].astype(np.float64) / (x.astype(np.float64) * 0.5) - 1
        ref = np.vectorize(math.erf)(x.astype(np.float32) * np.float32(math.sqrt(0.5)))
        assert np.max(np.abs(got - ref)) <= 4 * 2.0**-24, isa


def test_special_values(lib, isas):
    """NaN stays NaN; limits at +-inf; -0 keeps its sign; huge inputs do not overflow early."""
    x = np.array([[np.nan, np.inf, -np.inf, -0.0, 0.0, -100.0, 100.0, -200.0]], np.float32)
    want = {
        "relu": [np.nan, np.inf, 0.0, -0.0, 0.0, 0.0, 100.0, 0.0],
        "gelu": [np.nan, np.inf, np.nan, -0.0, 0.0, -0.0, 100.0, -0.0],
        "gelu_tanh": [np.nan, np.inf, np.nan, -0.0, 0.0, -0.0, 100.0, -0.0],
        "silu": [np.nan, np.inf, np.nan, -0.0, 0.0, -0.0, 100.0, -0.0],  # e^100: inf in f32
    }
    for isa in isas:
        for activation, expected in want.items():
            c = x.copy()
            assert run(lib, "f32", params(c, activation=activation), isa) == 0
            np.testing.assert_array_equal(c[0], np.float32(expected), err_msg=f"{isa} {activation}")
            number = ~np.isnan(c[0])
            assert np.array_equal(np.signbit(c[0][number]), np.signbit(np.float32(expected))[number])


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_each_step_rounds_as_torch(lib, isas, dtype):
    """bias add, ReLU, residual add and product: exact ops, so the kernel's result is bit for
    bit the chain rounded to the type after each step."""
    rng = np.random.default_rng(0)
    m, n = 5, 300  # more columns than one chunk (256)
    c32, b32, o32 = (rng.standard_normal(s).astype(np.float32) * 4 for s in ((m, n), n, (m, n)))
    c0, bias, other = from_f32(c32, dtype), from_f32(b32, dtype), from_f32(o32, dtype)
    for isa in isas:
        for binary, op in (("add", np.add), ("mul", np.multiply)):
            c = c0.copy()
            p = params(c, bias, other, bias_mode="add", activation="relu", binary=binary)
            assert run(lib, dtype, p, isa) == 0
            x = to_f32(from_f32(to_f32(c0, dtype) + to_f32(bias, dtype), dtype), dtype)
            x = to_f32(from_f32(np.where(x < 0, np.float32(0), x), dtype), dtype)
            want = from_f32(op(x, to_f32(other, dtype)), dtype)
            np.testing.assert_array_equal(c, want, err_msg=f"{isa} {binary}")


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "silu"])
def test_half_activations_round_the_f32_value(lib, isas, dtype, activation):
    """f16/bf16: the activation of the widened value in f32 (within its bound of the exact
    value), rounded once: the result lies between the roundings of the bound's two ends."""
    x = from_f32(np.linspace(-8, 8, 4001).astype(np.float32), dtype).reshape(1, -1)
    x32 = to_f32(x, dtype)
    ref = exact(activation, x32)
    slack = bound(activation, x32, ref)
    lo = to_f32(from_f32((ref - slack).astype(np.float32), dtype), dtype)
    hi = to_f32(from_f32((ref + slack).astype(np.float32), dtype), dtype)
    for isa in isas:
        c = x.copy()
        assert run(lib, dtype, params(c, activation=activation), isa) == 0
        got = to_f32(c, dtype)
        assert np.all((lo <= got) & (got <= hi)), isa


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_bias_set_and_strided_tiles(lib, isas, dtype):
    """C = bias[j] (the init before an accumulating product), on a transposed, offset C with a
    strided bias; nothing outside the tile is written."""
    rng = np.random.default_rng(1)
    bias_base = from_f32(rng.standard_normal(40).astype(np.float32), dtype)
    bias = bias_base[3:39:2]  # 18 values, stride 2
    for isa in isas:
        base = np.zeros((30, 40), STORAGE[dtype])
        c = base[2:20, 5:29].T  # 24 x 18, column-major
        p = params(c, bias, bias_mode="set", c_base=base)
        assert run(lib, dtype, p, isa) == 0
        np.testing.assert_array_equal(c, np.broadcast_to(bias, c.shape))
        outside = base.copy()
        outside[2:20, 5:29] = 0
        assert not outside.any()


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_bias_set_contiguous_rows_copy_the_bias(lib, isas, dtype):
    """C = bias[j] on rows of C with unit stride and a contiguous bias (the element copy of
    epilogue.c's epi_bias_set_rows): every value as the bias holds it, bf16 NaNs quiet (as the
    strided path rounds them: a signalling 0x7f81 becomes 0x7fc1), only the tile's columns."""
    rng = np.random.default_rng(3)
    bias = rng.standard_normal(37).astype(np.float32)
    bias[:4] = [np.inf, -np.inf, -0.0, 1e-40]  # subnormal: copied, not flushed
    if dtype == "bf16":
        bias = from_f32(bias, dtype)
        bias[4:8] = [0x7F81, 0xFF81, 0x7FC0, 0x7F80]  # signalling NaNs, a quiet one, +inf
        want = bias.copy()
        want[4:6] = [0x7FC1, 0xFFC1]
    else:
        want = bias
    for isa in isas:
        base = np.zeros((5, 40), STORAGE[dtype])
        c = base[1:4, 2:39]  # 3 x 37, rows 40 apart
        assert run(lib, dtype, params(c, bias, bias_mode="set", c_base=base), isa) == 0
        np.testing.assert_array_equal(
            c.view(np.uint8), np.broadcast_to(want, c.shape).view(np.uint8)
        )
        outside = base.copy()
        outside[1:4, 2:39] = 0
        assert not outside.any(), isa


def test_other_strided_and_transposed(lib, isas):
    rng = np.random.default_rng(2)
    other_base = rng.standard_normal((20, 12)).astype(np.float32)
    other = other_base.T[1:9, 2:18]  # 8 x 16, column-major, offset
    for isa in isas:
        c0 = rng.standard_normal((8, 16)).astype(np.float32)
        c = c0.copy()
        p = params(c, other=other, binary="mul", other_base=other_base)
        assert run(lib, "f32", p, isa) == 0
        np.testing.assert_array_equal(c, c0 * other)


def test_f32_matches_torch_eager(lib):
    """The default path against torch's own CPU kernels: ReLU and SiLU to a few ulp; tanh-GELU
    to 2e-7·|x| (both round 1 + tanh in f32 for negative x); GELU within torch's own error (its erf is a short approximation: measured up to 2.8e-7·|x|
    from the exact GELU on [-10, 10]) plus ours (1e-7·|x|)."""
    torch = pytest.importorskip("torch", reason="needs torch to compare with torch's kernels")
    x = np.linspace(-10, 10, 8001).astype(np.float32).reshape(1, -1)
    functions = {
        "relu": torch.relu,
        "gelu": torch.nn.functional.gelu,
        "gelu_tanh": lambda v: torch.nn.functional.gelu(v, approximate="tanh"),
        "silu": torch.nn.functional.silu,
    }
    for activation, fn in functions.items():
        c = x.copy()
        assert run(lib, "f32", params(c, activation=activation)) == 0
        want = fn(torch.from_numpy(x)).numpy()
        # 1 + erf and 1 + tanh cancel for negative x: both sides round there (1e-7·|x| each)
        slack = {"gelu": 3.5e-7, "gelu_tanh": 2e-7}.get(activation, 0) * np.abs(x)
        tol = 6 * np.spacing(np.abs(want)) + slack + 1e-30
        assert np.all(np.abs(c - want) <= tol), activation


def test_invalid_calls_touch_nothing(lib):
    c = np.ones((4, 4), np.float32)
    bias = np.ones(4, np.float32)
    bad = [
        params(c, bias_mode="none", activation="none", binary="add"),  # other missing
        params(c, bias_mode="add"),  # bias missing
        params(c, bias, bias_mode="set", activation="relu"),  # set with a step
    ]
    for field, value in (("activation", 5), ("binary", 3), ("bias_mode", -1), ("m", -1),
                         ("c_stride0", -4), ("c", 2)):  # fmt: skip
        p = params(c)
        setattr(p, field, value)
        bad.append(p)
    for p in bad:
        assert run(lib, "f32", p) != 0
        assert np.all(c == 1)
    assert lib.mips_epilogue_f32(None, None, None) != 0
    empty = np.zeros((0, 4), np.float32)
    assert run(lib, "f32", params(empty, activation="gelu")) == 0


def test_counted_under_its_symbol(lib):
    before = lib.mips_debug_call_count(b"mips_epilogue_bf16")
    c = np.zeros((2, 2), np.uint16)
    assert run(lib, "bf16", params(c, activation="silu")) == 0
    assert lib.mips_debug_call_count(b"mips_epilogue_bf16") == before + 1


def test_python_contract_matches_the_c_header():
    header = (REPO_ROOT / "kernels" / "mips_kernels.h").read_text()
    body = header.split("#define MIPS_DECLARE_EPILOGUE_PARAMS", 1)[1].split("} NAME", 1)[0]
    body = body.replace("\\", "").split("{", 1)[1]
    fields = [f.strip() for f in body.replace(";", ",").split(",")]
    fields = [f.split()[-1].lstrip("*") for f in fields if f]
    assert tuple(fields) == EPILOGUE_PARAMS
    assert ctypes.sizeof(EpilogueParams) == 128
    for kinds, prefix in ((ACTIVATIONS, ""), (BINARY_OPS, ""), (BIAS_MODES, "BIAS_")):
        for name, value in kinds.items():
            macro = "NONE" if name == "none" else prefix + name.upper()
            assert f"#define MIPS_EPILOGUE_{macro} {value}" in header, macro
