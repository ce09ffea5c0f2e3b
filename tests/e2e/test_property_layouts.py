"""Property test: every matmul-family op, with each operand stored plainly or transposed, each
dim static or dynamic, in f32, f16 and bf16, computes what numpy computes.

A bug of this kind once sized `linear`'s bias from the stored (transposed) operand's dim: with
M > K the module failed, with M <= K the numbers only happened to be right. Hypothesis draws
op x (each matrix operand fed through `t` / `transpose.int` / `permute` or not) x (each dim of
every argument and of the result `?` or static) x dtype x (addmm's beta and alpha, 0 included:
then the input holds NaN and inf, which torch ignores). Several cases share one module, so one
iree-compile covers them. CI runs a few derandomized modules; MIPSC_PROPERTY_EXAMPLES=N runs N
random ones (a longer campaign).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np
import pytest
from harness import MATMUL_FAMILY
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import mipsc
from mipsc.pipeline import compile_module, lower_module

pytestmark = pytest.mark.e2e

CAMPAIGN = int(os.environ.get("MIPSC_PROPERTY_EXAMPLES", "0"))
CI_MODULES = 3
CASES_PER_MODULE = (6, 10)

NP_DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}
EPS = {"f32": 2.0**-23, "f16": 2.0**-10, "bf16": 2.0**-7}
"""Machine epsilon: the result is rounded once (twice where torch's own ops combine it with
beta·input or scale it by alpha), after an f32 accumulation."""

# The first choices are what hypothesis shrinks towards: plain 2-D products of odd sizes.
_DIM = st.sampled_from([7, 1, 5, 13, 2, 17, 3, 33, 0])
_OPS = ["mm", "linear", "bmm", "matmul", "addmm", "mv", "baddbmm", "addbmm", "linear"]


@dataclass
class Case:
    """One function: its arguments (logical shape, stored transposed?), MLIR body, reference."""

    dtype: str
    args: list[tuple[tuple[int, ...], bool]] = field(default_factory=list)
    dynamic: list[list[bool]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    reference: Callable[..., np.ndarray] | None = None
    result: tuple[int, ...] = ()
    result_dynamic: list[bool] = field(default_factory=list)
    nan_input: int | None = None
    """The argument torch ignores (beta = 0): filled with NaN and inf."""

    def vt(self, shape: tuple[int, ...], dynamic: list[bool] | None = None) -> str:
        dims = [("?" if dynamic and dynamic[i] else str(d)) for i, d in enumerate(shape)]
        return f"!torch.vtensor<[{','.join(dims)}],{self.dtype}>"

    def function(self, name: str) -> str:
        params = []
        for i, (shape, transposed) in enumerate(self.args):
            stored = _swap(shape) if transposed else shape
            params.append(f"%a{i}: {self.vt(stored, self.dynamic[i])}")
        result = self.vt(self.result, self.result_dynamic)
        body = "\n".join(f"    {line}" for line in self.lines)
        return (
            f"  func.func @{name}({', '.join(params)}) -> {result} {{\n"
            "    %int0 = torch.constant.int 0\n    %int1 = torch.constant.int 1\n"
            "    %int2 = torch.constant.int 2\n    %int-1 = torch.constant.int -1\n"
            "    %int-2 = torch.constant.int -2\n    %none = torch.constant.none\n"
            f"{body}\n    return %r : {result}\n  }}\n"
        )


def _swap(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:-2], shape[-1], shape[-2])


def _operand(draw: st.DrawFn, case: Case, shape: tuple[int, ...], matrix: bool = True) -> str:
    """A new argument of logical `shape`: stored as is, or (a matrix operand) transposed and
    swapped back by a torch transpose op, which the conversion turns into strides."""
    index = len(case.args)
    transposed = matrix and len(shape) >= 2 and draw(st.booleans())
    stored = _swap(shape) if transposed else shape
    dynamic = [draw(st.booleans()) for _ in stored]
    case.args.append((shape, transposed))
    case.dynamic.append(dynamic)
    if not transposed:
        return f"%a{index}"
    # The transpose's result: the stored dims swapped, each `?` where the argument's is.
    swapped_dynamic = [*dynamic[:-2], dynamic[-1], dynamic[-2]]
    src, dst = case.vt(stored, dynamic), case.vt(shape, swapped_dynamic)
    rank = len(shape)
    how = draw(
        st.sampled_from(["t", "transpose", "permute"] if rank == 2 else ["transpose", "permute"])
    )
    if how == "t":
        case.lines.append(f"%x{index} = torch.aten.t %a{index} : {src} -> {dst}")
    elif how == "transpose":
        case.lines.append(
            f"%x{index} = torch.aten.transpose.int %a{index}, %int-2, %int-1 : {src}, !torch.int, !torch.int -> {dst}"
        )
    else:
        perm = ", ".join(f"%int{p}" for p in [*range(rank - 2), rank - 1, rank - 2])
        ints = ", ".join(["!torch.int"] * rank)
        case.lines.append(
            f"%p{index} = torch.prim.ListConstruct {perm} : ({ints}) -> !torch.list<int>"
        )
        case.lines.append(
            f"%x{index} = torch.aten.permute %a{index}, %p{index} : {src}, !torch.list<int> -> {dst}"
        )
    return f"%x{index}"


def _types(case: Case, values: list[str]) -> str:
    """The types of operand values: an argument's stored type, or its transpose's result."""
    out = []
    for v in values:
        i = int(v[2:])
        shape, transposed = case.args[i]
        dynamic = case.dynamic[i]
        if transposed and v.startswith("%x"):
            dynamic = [*dynamic[:-2], dynamic[-1], dynamic[-2]]
        out.append(case.vt(shape, dynamic))
    return ", ".join(out)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    case = Case(draw(st.sampled_from(["f32", "f16", "bf16"])))
    op = draw(st.sampled_from(_OPS))
    b, m, k, n = draw(_DIM), draw(_DIM), draw(_DIM), draw(_DIM)
    if op == "mm":
        x, y = _operand(draw, case, (m, k)), _operand(draw, case, (k, n))
        case.result, case.reference = (m, n), np.matmul
        call = f"torch.aten.mm {x}, {y} : {_types(case, [x, y])}"
    elif op == "bmm":
        x, y = _operand(draw, case, (b, m, k)), _operand(draw, case, (b, k, n))
        case.result, case.reference = (b, m, n), np.matmul
        call = f"torch.aten.bmm {x}, {y} : {_types(case, [x, y])}"
    elif op == "mv":
        x, y = _operand(draw, case, (m, k)), _operand(draw, case, (k,))
        case.result, case.reference = (m,), np.matmul
        call = f"torch.aten.mv {x}, {y} : {_types(case, [x, y])}"
    elif op == "matmul":
        lhs, rhs = draw(
            st.sampled_from([((b, m, k), (k, n)), ((m, k), (b, k, n)), ((b, m, k), (b, k, n))])
        )
        x, y = _operand(draw, case, lhs), _operand(draw, case, rhs)
        case.result, case.reference = np.matmul(np.zeros(lhs), np.zeros(rhs)).shape, np.matmul
        call = f"torch.aten.matmul {x}, {y} : {_types(case, [x, y])}"
    elif op == "linear":
        lead = draw(st.sampled_from([(m,), (b, m), ()]))
        x, w = _operand(draw, case, (*lead, k)), _operand(draw, case, (n, k))
        bias = draw(st.booleans())
        values = [x, w] + ([_operand(draw, case, (n,))] if bias else [])
        case.result = (*lead, n)
        case.reference = lambda x, w, *bias: np.matmul(x, w.T) + (bias[0] if bias else 0)
        bias_text = values[2] if bias else "%none"
        bias_type = "" if bias else ", !torch.none"
        call = f"torch.aten.linear {x}, {w}, {bias_text} : {_types(case, values)}{bias_type}"
    else:  # addmm, baddbmm, addbmm: beta·input + alpha·product
        beta = draw(st.sampled_from([1.0, 0.5, 0.0]))
        alpha = draw(st.sampled_from([1.0, 2.0]))
        batched = op != "addmm"
        out = (b, m, n) if op == "baddbmm" else (m, n)
        input_shape = draw(st.sampled_from([out, out[-1:]]))
        inp = _operand(draw, case, input_shape, matrix=False)
        if beta == 0.0:
            case.nan_input = 0
        lhs, rhs = ((b, m, k), (b, k, n)) if batched else ((m, k), (k, n))
        x, y = _operand(draw, case, lhs), _operand(draw, case, rhs)
        reduce = op == "addbmm"

        def reference(i, x, y, beta=beta, alpha=alpha, reduce=reduce):
            product = np.matmul(x, y)
            product = product.sum(0) if reduce else product
            return alpha * product + (beta * i if beta else 0)

        case.result, case.reference = out, reference
        case.lines += [
            f"%beta = torch.constant.float {beta}",
            f"%alpha = torch.constant.float {alpha}",
        ]
        call = (f"torch.aten.{op} {inp}, {x}, {y}, %beta, %alpha : {_types(case, [inp, x, y])}, "
                "!torch.float, !torch.float")  # fmt: skip
    case.result_dynamic = [draw(st.booleans()) for _ in case.result]
    case.lines.append(f"%r = {call} -> {case.vt(case.result, case.result_dynamic)}")
    return case


def _inputs(case: Case, rng: np.random.Generator) -> list[np.ndarray]:
    dtype = NP_DTYPES[case.dtype]
    arrays = []
    for i, (shape, transposed) in enumerate(case.args):
        stored = _swap(shape) if transposed else shape
        x = rng.standard_normal(stored).astype(dtype)
        if i == case.nan_input and x.size:
            x.reshape(-1)[::2] = np.nan
            x.reshape(-1)[1::2] = np.inf
        arrays.append(x)
    return arrays


def _check(case: Case, name: str, got: np.ndarray, inputs: list[np.ndarray]) -> None:
    logical = [
        (np.swapaxes(x, -1, -2) if t else x).astype(np.float64)
        for x, (_, t) in zip(inputs, case.args, strict=True)
    ]
    magnitudes = [np.abs(x) for x in logical]
    if case.nan_input is not None:
        logical[case.nan_input] = np.zeros_like(logical[case.nan_input])
        magnitudes[case.nan_input] = logical[case.nan_input]
    want = case.reference(*logical)
    bound = case.reference(*magnitudes)
    assert got.shape == want.shape, f"@{name}: shape {got.shape}, numpy {want.shape}"
    assert got.dtype == NP_DTYPES[case.dtype]
    tolerance = 2 * EPS[case.dtype] * bound + 1e-6 * max(1.0, float(np.max(bound, initial=0)))
    error = np.abs(got.astype(np.float64) - want)
    assert np.isfinite(got).all() and (error <= tolerance).all(), (
        f"@{name} differs from numpy by up to {error.max():.3g}\n{case.function(name)}"
    )


@settings(
    max_examples=CAMPAIGN or CI_MODULES,
    derandomize=not CAMPAIGN,
    # Each example is an iree-compile: shrinking in CI would take minutes; the failure message
    # prints the whole function anyway. A campaign shrinks.
    phases=list(Phase) if CAMPAIGN else [Phase.explicit, Phase.generate],
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(cases(), min_size=CASES_PER_MODULE[0], max_size=CASES_PER_MODULE[1]),
    st.integers(0, 2**32 - 1),
)
def test_every_layout_and_dynamic_dim_matches_numpy(tmp_path_factory, drawn, seed):
    text = "module {\n" + "".join(c.function(f"f{i}") for i, c in enumerate(drawn)) + "}\n"
    lowered = lower_module(text, "layouts.mlir")
    for op in (*MATMUL_FAMILY, "aten.t ", "aten.transpose.int ", "aten.permute "):
        assert op not in lowered, f"{op.strip()} left on IREE's path:\n{text}"
    vmfb = tmp_path_factory.mktemp("layouts") / "layouts.vmfb"
    compile_module(text, "layouts.mlir", vmfb)
    module = mipsc.load(vmfb)
    rng = np.random.default_rng(seed)
    for i, case in enumerate(drawn):
        inputs = _inputs(case, rng)
        _check(case, f"f{i}", np.asarray(module.function(f"f{i}")(*inputs)), inputs)
