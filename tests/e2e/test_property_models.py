"""Property tests: random well-formed torch programs compile, run in the kernel and match numpy.

Hypothesis builds chains of mm, matmul (every rank pair, broadcast batch dims), linear (with or
without bias), transpose.int, t, add.Tensor and relu on static f32 shapes with dims 1..17 (many
1s), writes them as torch-dialect MLIR, and checks that
- `mipsc opt` prints them back identically after one round (the printed form is a fixpoint);
- `mipsc compile`'s pipeline compiles them, and through the kernel plugin they compute what
  numpy computes for the same program on the same random inputs, within a tolerance scaled by
  the magnitudes each output element is summed from.

Several programs share one module (one function each), so one iree-compile covers them. CI
runs a few derandomized modules; MIPSC_PROPERTY_EXAMPLES=N runs N random ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mipsc
from mipsc.cli import main
from mipsc.pipeline import compile_module

pytestmark = pytest.mark.e2e

CAMPAIGN = int(os.environ.get("MIPSC_PROPERTY_EXAMPLES", "0"))
CI_MODULES = 3
"""Compiled modules in CI (about 2 s each); each holds several programs."""
PROGRAMS_PER_MODULE = (3, 5)

Shape = tuple[int, ...]


def vt(shape: Shape) -> str:
    return f"!torch.vtensor<[{','.join(map(str, shape))}],f32>"


@dataclass
class Program:
    """A random torch program: its argument shapes, its ops as MLIR lines, and the same ops
    as numpy functions (on values, and on magnitudes for the error bound)."""

    args: list[Shape] = field(default_factory=list)
    shapes: dict[str, Shape] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    steps: list[tuple[str, object, list[str]]] = field(default_factory=list)
    ints: set[int] = field(default_factory=set)
    outputs: list[str] = field(default_factory=list)

    def arg(self, shape: Shape) -> str:
        name = f"%arg{len(self.args)}"
        self.args.append(shape)
        self.shapes[name] = shape
        return name

    def op(self, text: str, operands: list[str], shape: Shape, fn: object) -> str:
        """Add `%vN = text operands : types -> type`; `fn(values, magnitude: bool)` evaluates it."""
        name = f"%v{len(self.steps)}"
        types = ", ".join(
            vt(self.shapes[o]) if o in self.shapes else "!torch.int" for o in operands
        )
        self.lines.append(f"    {name} = {text} {', '.join(operands)} : {types} -> {vt(shape)}")
        self.shapes[name] = shape
        self.steps.append((name, fn, operands))
        return name

    def int_const(self, value: int) -> str:
        self.ints.add(value)
        return f"%int{value}"

    def function(self, name: str) -> str:
        params = ", ".join(f"%arg{i}: {vt(s)}" for i, s in enumerate(self.args))
        results = ", ".join(vt(self.shapes[o]) for o in self.outputs)
        consts = [f"    %int{i} = torch.constant.int {i}" for i in sorted(self.ints)]
        body = "\n".join([*consts, *self.lines])
        ret = ", ".join(self.outputs)
        return (
            f"  func.func @{name}({params}) -> ({results}) {{\n{body}\n"
            f"    return {ret} : {results}\n  }}\n"
        )

    def evaluate(self, inputs: list[np.ndarray], magnitude: bool) -> list[np.ndarray]:
        """The outputs in float64; with `magnitude`, a bound on the size of every term summed
        into each element (|inputs|, and each op on magnitudes), which scales the tolerance."""
        env: dict[str, np.ndarray] = {}
        for i, x in enumerate(inputs):
            x = x.astype(np.float64)
            env[f"%arg{i}"] = np.abs(x) if magnitude else x
        for name, fn, operands in self.steps:
            env[name] = fn(*(env.get(o) for o in operands), magnitude)  # type: ignore[operator]
        return [np.asarray(env[o]) for o in self.outputs]


# Hypothesis tries the simplest example first and shrinks towards it: the first choices of
# these lists, so that even that one computes something (7x7 products, then 1s, odd sizes).
_DIM = st.sampled_from([7, 1, 3, 16, 2, 17, 1, 5, 9, 1, 4, 12, 13, 6, 8, 10, 11, 14, 15])
_KINDS = ["linear", "matmul", "mm", "transpose", "matmul", "t", "add", "linear", "relu", "mm"]


def _shape(draw: st.DrawFn, rank: int) -> Shape:
    return tuple(draw(_DIM) for _ in range(rank))


def _broadcast_partner(draw: st.DrawFn, batch: Shape) -> Shape:
    """Batch dims that broadcast with `batch`: fewer or more of them, each equal or 1."""
    rank = draw(st.integers(0, 2))
    partner = []
    for i in range(rank):
        j = len(batch) - rank + i
        if j >= 0 and batch[j] != 1:
            partner.append(draw(st.sampled_from([batch[j], 1])))
        else:
            partner.append(draw(st.sampled_from([1, draw(_DIM)])))
    return tuple(partner)


def _matmul(a: np.ndarray, b: np.ndarray, _magnitude: bool) -> np.ndarray:
    return np.matmul(a, b)


def _relu(x: np.ndarray, magnitude: bool) -> np.ndarray:
    return x if magnitude else np.maximum(x, 0)


def _linear(x: np.ndarray, w: np.ndarray, *rest: np.ndarray | bool) -> np.ndarray:
    *bias, _magnitude = rest
    y = np.matmul(x, w.T)
    return y + bias[0] if bias else y


def _add(x: np.ndarray, y: np.ndarray, _alpha: object, _magnitude: bool) -> np.ndarray:
    return x + y


@st.composite
def programs(draw: st.DrawFn) -> Program:
    p = Program()
    current = p.arg(_shape(draw, draw(st.sampled_from([2, 3, 1]))))
    for _ in range(draw(st.integers(2, 5))):
        shape = p.shapes[current]
        kind = draw(st.sampled_from(_KINDS)) if shape else "add"
        if kind == "mm" and len(shape) == 2:
            other = p.arg((shape[1], draw(_DIM)))
            current = p.op("torch.aten.mm", [current, other], (shape[0], p.args[-1][1]), _matmul)
        elif kind in ("mm", "matmul"):
            current = _draw_matmul(draw, p, current)
        elif kind == "linear":
            n = draw(_DIM)
            weight = p.arg((n, shape[-1]))
            operands = [current, weight]
            if draw(st.booleans()):
                operands.append(p.arg((n,)))
            current = p.op("torch.aten.linear", operands, (*shape[:-1], n), _linear)
        elif kind == "transpose" and len(shape) >= 2:
            rank = len(shape)
            d0, d1 = draw(st.lists(st.integers(0, rank - 1), min_size=2, max_size=2, unique=True))
            # Negative dims too, as exports write them (-2, -1 for the last two).
            s0 = d0 - rank if draw(st.booleans()) else d0
            s1 = d1 - rank if draw(st.booleans()) else d1
            out = list(shape)
            out[d0], out[d1] = out[d1], out[d0]
            current = p.op(
                "torch.aten.transpose.int",
                [current, p.int_const(s0), p.int_const(s1)],
                tuple(out),
                lambda x, _a, _b, _m, d0=d0, d1=d1: np.swapaxes(x, d0, d1),
            )
        elif kind == "t" and len(shape) == 2:
            current = p.op("torch.aten.t", [current], shape[::-1], lambda x, _m: x.T)
        elif kind == "add":
            # The other operand broadcasts to this one: some leading dims, some dims 1.
            keep = draw(st.integers(0, len(shape)))
            other_shape = tuple(d if draw(st.booleans()) else 1 for d in shape[len(shape) - keep :])
            other = p.arg(other_shape)
            current = p.op("torch.aten.add.Tensor", [current, other, p.int_const(1)], shape, _add)
        else:
            current = p.op("torch.aten.relu", [current], shape, _relu)
    p.outputs = [current]
    if len(p.steps) > 1 and draw(st.booleans()):  # a second result: an intermediate value
        p.outputs.insert(0, p.steps[draw(st.integers(0, len(p.steps) - 2))][0])
    return p


def _draw_matmul(draw: st.DrawFn, p: Program, current: str) -> str:
    """`current` times a new argument (or a new argument times `current`), ranks 1..4, with
    broadcast batch dims: torch.matmul's every rank pair."""
    shape = p.shapes[current]
    if draw(st.booleans()):  # current · other
        k = shape[-1]
        batch = shape[:-2]
        if draw(st.integers(0, 3)) == 0:
            other_shape: Shape = (k,)
        else:
            other_shape = (*_broadcast_partner(draw, batch), k, draw(_DIM))
        other = p.arg(other_shape)
        operands = [current, other]
    else:  # other · current
        k = shape[0] if len(shape) == 1 else shape[-2]
        batch = shape[:-2]
        if draw(st.integers(0, 3)) == 0:
            other_shape = (k,)
        else:
            other_shape = (*_broadcast_partner(draw, batch), draw(_DIM), k)
        other = p.arg(other_shape)
        operands = [other, current]
    a, b = (p.shapes[o] for o in operands)
    out = np.matmul(np.zeros(a, np.float32), np.zeros(b, np.float32)).shape
    return p.op("torch.aten.matmul", operands, tuple(out), _matmul)


def module_text(progs: list[Program]) -> str:
    functions = "".join(p.function(f"f{i}") for i, p in enumerate(progs))
    return f"module {{\n{functions}}}\n"


def opt(text: str) -> str:
    result = CliRunner().invoke(main, ["opt", "-"], input=text)
    assert result.exit_code == 0, result.output
    return result.output


@settings(
    max_examples=CAMPAIGN or CI_MODULES,
    derandomize=not CAMPAIGN,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(programs(), min_size=PROGRAMS_PER_MODULE[0], max_size=PROGRAMS_PER_MODULE[1]),
    st.integers(0, 2**32 - 1),
)
def test_random_programs_match_numpy(tmp_path_factory, progs, seed):
    text = module_text(progs)

    printed = opt(text)
    assert opt(printed) == printed, "mipsc opt's output is not a fixpoint"

    vmfb = tmp_path_factory.mktemp("prop") / "prop.vmfb"
    compile_module(text, "prop.mlir", vmfb)
    module = mipsc.load(vmfb)

    rng = np.random.default_rng(seed)
    for i, p in enumerate(progs):
        inputs = [np.asarray(rng.standard_normal(s), np.float32) for s in p.args]
        got = module.function(f"f{i}")(*inputs)
        got = got if isinstance(got, tuple) else (got,)
        want = p.evaluate(inputs, magnitude=False)
        bound = p.evaluate(inputs, magnitude=True)
        assert len(got) == len(want)
        for g, w, m in zip(got, want, bound, strict=True):
            assert g.shape == w.shape and g.dtype == np.float32
            # f32 sums of up to ~17 terms per op, a few ops deep: 1e-5 of the magnitudes
            # summed is far above rounding and far below any real mistake.
            tolerance = 1e-5 * m + 1e-6 * max(1.0, float(m.max(initial=0.0)))
            excess = np.abs(g.astype(np.float64) - w) - tolerance
            assert (excess <= 0).all(), (
                f"@f{i} differs from numpy by up to {np.abs(g - w).max():.3g}\n"
                f"{p.function(f'f{i}')}"
            )
