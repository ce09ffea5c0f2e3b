"""Reading torch values: constants, shapes, and whether the kernels take a tensor type."""

from __future__ import annotations

from xdsl.ir import Attribute, SSAValue

from mipsc.dialects import torch
from mipsc.kernel_abi import matmul_symbol


def unsupported_reason(*types: Attribute) -> str | None:
    """Why the kernel cannot take tensors of these torch types, or None if it can."""
    dtypes = set()
    for ty in types:
        if not isinstance(ty, torch.ValueTensorType) or not ty.has_sizes:
            return f"operand type {ty} has no known rank"
        if not ty.has_dtype:
            return f"operand type {ty} has no known element type"
        if matmul_symbol(ty.dtype) is None:
            return f"element type {ty.dtype} is not supported by the kernel (f32, f16, bf16 are)"
        dtypes.add(ty.dtype)
    if len(dtypes) > 1:
        return f"mixed element types {', '.join(sorted(map(str, dtypes)))}"
    return None


def constant_int(value: SSAValue) -> int | None:
    op = value.owner
    return op.value.value.data if isinstance(op, torch.ConstantIntOp) else None


def constant_number(value: SSAValue) -> float | None:
    op = value.owner
    if isinstance(op, torch.ConstantIntOp | torch.ConstantFloatOp | torch.ConstantNumberOp):
        return float(op.value.value.data)
    return None


def constant_int_list(value: SSAValue) -> list[int] | None:
    op = value.owner
    if not isinstance(op, torch.PrimListConstructOp):
        return None
    items = [constant_int(v) for v in op.elements]
    return None if any(i is None for i in items) else items  # type: ignore[return-value]


def rank_of(value: SSAValue) -> int:
    ty = value.type
    assert isinstance(ty, torch.ValueTensorType)
    return ty.get_rank()


def constant_bool(value: SSAValue) -> bool | None:
    op = value.owner
    return bool(op.value.value.data) if isinstance(op, torch.ConstantBoolOp) else None


def torch_shape(value: SSAValue) -> list[int]:
    """The dims of a ranked `!torch.vtensor` value (DYNAMIC_INDEX for `?`)."""
    assert isinstance(value.type, torch.ValueTensorType)
    return list(value.type.get_shape())
