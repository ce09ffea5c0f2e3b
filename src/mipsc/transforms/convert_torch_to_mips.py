"""`convert-torch-to-mips`: hand the matmuls of a torch-dialect module to the mips dialect.

Each rewritten op becomes `mips.matmul` on builtin tensors between `torch_c` casts, with a
zero-filled init, so the surrounding torch ops are untouched and IREE's torch frontend still
sees valid torch IR around our op.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    FloatAttr,
    IndexType,
    IntegerAttr,
    ModuleOp,
    TensorType,
)
from xdsl.dialects.linalg.ops import FillOp
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from mipsc.dialects import mips, torch
from mipsc.kernel_abi import matmul_symbol
from mipsc.remarks import emit_remark

PASS_NAME = "convert-torch-to-mips"


def unsupported_reason(*types: Attribute) -> str | None:
    """Why the kernel cannot take tensors of these torch types, or None if it can."""
    for ty in types:
        if not isinstance(ty, torch.ValueTensorType) or not ty.has_sizes:
            return f"operand type {ty} has no known rank"
        if not ty.has_dtype:
            return f"operand type {ty} has no known element type"
        if matmul_symbol(ty.dtype) is None:
            return f"element type {ty.dtype} is not supported by the kernel (f32, f16, bf16 are)"
    return None


def build_zero_init(
    result_type: TensorType[Attribute], reified: list[mips.Dim]
) -> tuple[list[Operation], SSAValue]:
    """`linalg.fill(0, tensor.empty(...))` of `result_type`, sized by the reified dims."""
    ops: list[Operation] = []
    dynamic_sizes: list[SSAValue] = []
    for size, dim in zip(result_type.get_shape(), reified, strict=True):
        if size != DYNAMIC_INDEX:
            continue
        if isinstance(dim, int):
            constant = arith.ConstantOp(IntegerAttr(dim, IndexType()))
            ops.append(constant)
            dim = constant.result
        dynamic_sizes.append(dim)
    empty = tensor.EmptyOp(dynamic_sizes, result_type)
    zero = arith.ConstantOp(FloatAttr(0.0, result_type.get_element_type()))  # type: ignore[arg-type]
    fill = FillOp([zero.result], [empty.tensor], [result_type])
    return [*ops, empty, zero, fill], fill.res[0]


class ConvertAtenMm(RewritePattern):
    """`torch.aten.mm` → casts, zero init, `mips.matmul`, cast back."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: torch.AtenMmOp, rewriter: PatternRewriter) -> None:
        result_type = op.result.type
        if reason := unsupported_reason(op.self_.type, op.mat2.type, result_type):
            emit_remark(op, PASS_NAME, f"torch.aten.mm left on IREE's path: {reason}")
            return
        assert isinstance(result_type, torch.ValueTensorType)
        lhs = torch.ToBuiltinTensorOp(op.self_)
        rhs = torch.ToBuiltinTensorOp(op.mat2)
        dim_ops, dims = mips.reify_matmul_dims(lhs.result, rhs.result)
        init_ops, init = build_zero_init(result_type.to_builtin(), dims)
        matmul = mips.MatmulOp(lhs.result, rhs.result, init)
        back = torch.FromBuiltinTensorOp(matmul.result, result_type)
        new_ops = [lhs, rhs, *dim_ops, *init_ops, matmul, back]
        for new_op in new_ops:
            new_op.location = op.location
        rewriter.replace(op, new_ops, [back.result])


@dataclass(frozen=True)
class ConvertTorchToMipsPass(ModulePass):
    """Rewrite the torch matmuls the kernel library supports into `mips.matmul`."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(ConvertAtenMm(), apply_recursively=False).rewrite_module(op)
