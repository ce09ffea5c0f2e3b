"""`check-input-dims`: the relations an export recorded between the inputs' dynamic dims become
run-time checks at the function's entry.

torch.export names each dynamic dim by a symbol: inputs given one name in `dynamic_shapes`
share it, and a derived dim is an expression of it (`2 * s0`). The export writes these as
`torch.symbolic_int` and `torch.bind_symbolic_shape` (iree-turbine's aot.export with
`import_symbolic_shape_expressions`); the module is then compiled as if they held (the
function's `torch.assume_strict_symbolic_shapes`): an elementwise op of two `[?, 8]` inputs
given 5 and 3 rows read past the end of the second (wrong numbers, no error). This pass makes
each relation a check (`cf.assert`, kept by --iree-opt-strip-assertions=false) before anything
runs, and erases the bindings, which no later pass reads.

Each dynamic input dim whose expression is not the symbol it defines (the first input dim
that is exactly that symbol) gets one check. The message names the dims as `dim D of %argI`,
which the runtime (Function._explain_dims, mipsc.runtime.module) turns into the user's input
names and the sizes given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.builder import Builder, ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import arith, cf, func
from xdsl.dialects.builtin import DYNAMIC_INDEX, ModuleOp
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineExpr,
    AffineSymExpr,
)
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint

from mipsc.diagnostics import DIM_CHECK_MESSAGE
from mipsc.dialects import torch
from mipsc.transforms.building import dim_size, index_constant

PASS_NAME = "check-input-dims"



@dataclass(frozen=True)
class _InputDim:
    """Dim `dim` of the function's argument `arg`."""

    arg: BlockArgument
    dim: int

    def __str__(self) -> str:
        return f"dim {self.dim} of %arg{self.arg.index}"

    @property
    def dynamic(self) -> bool:
        ty = self.arg.type
        assert isinstance(ty, torch.ValueTensorType)
        return ty.get_shape()[self.dim] == DYNAMIC_INDEX


@dataclass(frozen=True)
class _Bound:
    """An input dim and the expression the export gave it, over `symbols` (torch.symbolic_int
    values, by the expression's symbol positions)."""

    at: _InputDim
    expr: AffineExpr
    symbols: tuple[SSAValue, ...]

    def symbol(self) -> SSAValue | None:
        """The symbol this dim is exactly, or None for a constant or a derived expression."""
        return self.symbols[self.expr.position] if isinstance(self.expr, AffineSymExpr) else None


def _bound_input_dims(block: Block) -> list[_Bound]:
    """Every input dim of `block` (a function's entry) that a torch.bind_symbolic_shape gives
    an expression, in the order of the bindings."""
    bound: list[_Bound] = []
    for op in block.ops:
        if not isinstance(op, torch.BindSymbolicShapeOp):
            continue
        arg = op.operand
        if not isinstance(arg, BlockArgument) or arg.block is not block:
            continue
        symbols = tuple(op.shape_symbols)
        for dim, expr in enumerate(op.shape_expressions.data.results):
            bound.append(_Bound(_InputDim(arg, dim), expr, symbols))
    return bound


def _describe(expr: AffineExpr, names: dict[int, str]) -> str:
    """`expr` written with each symbol as the input dim that defines it."""
    if isinstance(expr, AffineSymExpr):
        return names[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return str(expr.value)
    assert isinstance(expr, AffineBinaryOpExpr)
    left, right = _describe(expr.lhs, names), _describe(expr.rhs, names)
    return f"({left} {expr.kind.get_token()} {right})"


_ARITH = {
    AffineBinaryOpKind.Add: arith.AddiOp,
    AffineBinaryOpKind.Mul: arith.MuliOp,
    AffineBinaryOpKind.Mod: arith.RemSIOp,
    AffineBinaryOpKind.FloorDiv: arith.FloorDivSIOp,
    AffineBinaryOpKind.CeilDiv: arith.CeilDivSIOp,
}


def _evaluate(expr: AffineExpr, values: dict[int, SSAValue]) -> SSAValue:
    """Builds `expr` as index arithmetic, its symbols at `values` (by position)."""
    if isinstance(expr, AffineSymExpr):
        return values[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return index_constant(expr.value)
    assert isinstance(expr, AffineBinaryOpExpr)
    lhs, rhs = _evaluate(expr.lhs, values), _evaluate(expr.rhs, values)
    return _ARITH[expr.kind](lhs, rhs).result


def _size(at: _InputDim) -> SSAValue:
    builtin = torch.ToBuiltinTensorOp(at.arg).result
    return dim_size(builtin, at.dim)


def _check(bound: _Bound, defined: dict[SSAValue, _InputDim]) -> None:
    """Builds the check that `bound`'s dim equals its expression, when every symbol of the
    expression has a defining input dim (else nothing: the relation cannot be evaluated)."""
    positions = {e.position for e in bound.expr.dfs() if isinstance(e, AffineSymExpr)}
    if any(bound.symbols[p] not in defined for p in positions):
        return
    sites = {p: defined[bound.symbols[p]] for p in positions}
    expected = _evaluate(bound.expr, {p: _size(site) for p, site in sites.items()})
    same = arith.CmpiOp(_size(bound.at), expected, "eq").result
    names = {p: str(site) for p, site in sites.items()}
    cf.AssertOp(same, f"{DIM_CHECK_MESSAGE}: {bound.at} must equal {_describe(bound.expr, names)}")


def check_entry(function: func.FuncOp) -> None:
    """Builds, at the start of `function`, one check per dynamic input dim whose bound
    expression is not the symbol it defines."""
    block = function.body.block
    bounds = _bound_input_dims(block)
    defined: dict[SSAValue, _InputDim] = {}
    checked: list[_Bound] = []
    for bound in bounds:
        symbol = bound.symbol()
        if symbol is not None and symbol not in defined:
            defined[symbol] = bound.at
        elif bound.at.dynamic:
            checked.append(bound)
    if not checked:
        return
    first = block.first_op
    assert first is not None  # (a function with bindings has ops)
    builder = Builder(InsertPoint.before(first))

    def stamp(new_op: Operation) -> None:
        new_op.location = function.location  # (the checks are the function's own)

    builder.operation_insertion_handler.append(stamp)
    with ImplicitBuilder(builder):
        for bound in checked:
            _check(bound, defined)


def erase_bindings(ops: Sequence[Operation]) -> None:
    """Erases the torch.bind_symbolic_shape ops, then the torch.symbolic_int ops left unused."""
    for op in ops:
        if isinstance(op, torch.BindSymbolicShapeOp):
            op.detach()
            op.erase()
    for op in ops:
        if isinstance(op, torch.SymbolicIntOp) and not op.result.uses:
            op.detach()
            op.erase()


@dataclass(frozen=True)
class CheckInputDimsPass(ModulePass):
    """Check at run time the relations an export gives the inputs' dynamic dims."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        functions = [f for f in op.walk() if isinstance(f, func.FuncOp) and f.body.blocks]
        for function in functions:
            check_entry(function)
        erase_bindings(list(op.walk()))
