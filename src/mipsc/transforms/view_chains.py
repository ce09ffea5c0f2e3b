"""Torch view chains feeding a matmul operand, rebuilt as builtin tensor ops.

Attention reaches its products through views: the heads of a fused QKV projection are split
off with `view`, moved with `transpose.int` / `permute` ([S, B, H, D] -> [B, H, S, D]), picked
with `select.int`, made `clone`s. IREE makes a copy of each move. `convert-torch-to-mips`
rebuilds such a chain from the tensor it starts at as builtin ops (`tensor.collapse_shape` /
`expand_shape`, `linalg.transpose`, `tensor.extract_slice`), where `lower-mips-to-call` can
see through it and have the kernel read the operand by strides from that tensor
(`strided_operands.fold_view`), or, when the chain starts at another product's result, have
that product's kernel write its result where the chain puts it (`fold_output`: the heads
merged back after attention); what it cannot fold, IREE copies as before.

Only static shapes, and only chains that move data (a permute of any dims, or a select):
a chain of reshapes alone is free already.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects import tensor
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    DenseArrayBase,
    IntegerAttr,
    TensorType,
    i64,
)
from xdsl.dialects.linalg.ops import TransposeOp
from xdsl.ir import Attribute, Operation, SSAValue

from mipsc.dialects import torch
from mipsc.transforms.torch_values import constant_int, constant_int_list

RESHAPE_OPS = frozenset(
    {
        "torch.aten.view",
        "torch.aten.reshape",
        "torch.aten._unsafe_view",
        "torch.aten.squeeze.dim",
        "torch.aten.squeeze",
        "torch.aten.unsqueeze",
    }
)
"""Ops whose result is their first operand's elements in the same order, reshaped."""

COPY_OPS = frozenset({"torch.aten.clone", "torch.aten.contiguous"})
"""Ops whose result is their first operand (in value semantics)."""

MOVING_OPS = frozenset({"torch.aten.transpose.int", "torch.aten.permute", "torch.aten.select.int"})
"""Ops that move elements: what makes a chain worth rebuilding."""


def _static_shape(value: SSAValue) -> list[int] | None:
    ty = value.type
    if not isinstance(ty, torch.ValueTensorType) or not ty.has_sizes or not ty.has_dtype:
        return None
    shape = list(ty.get_shape())
    return None if DYNAMIC_INDEX in shape else shape


def _permutation(op: Operation, rank: int) -> list[int] | None:
    """The dims of `op`'s source in the order of its result (transpose.int or permute)."""
    if op.name == "torch.aten.transpose.int" and len(op.operands) == 3:
        dims = [constant_int(v) for v in op.operands[1:]]
        if None in dims or rank == 0:
            return None
        a, b = (d % rank for d in dims)  # type: ignore[operator]
        perm = list(range(rank))
        perm[a], perm[b] = perm[b], perm[a]
        return perm
    if op.name == "torch.aten.permute" and len(op.operands) == 2:
        perm = constant_int_list(op.operands[1])
        if perm is None or sorted(p % rank for p in perm) != list(range(rank)):
            return None
        return [p % rank for p in perm]
    return None


def _selected(op: Operation, shape: Sequence[int]) -> tuple[int, int] | None:
    """(dim, index) of a `select.int` with constant, in-range arguments."""
    if op.name != "torch.aten.select.int" or len(op.operands) != 3 or not shape:
        return None
    dim, index = constant_int(op.operands[1]), constant_int(op.operands[2])
    if dim is None or index is None:
        return None
    dim %= len(shape)
    index = index + shape[dim] if index < 0 else index
    return (dim, index) if 0 <= index < shape[dim] else None


def _is_link(op: Operation) -> bool:
    """Whether `op` is a view this module rebuilds, between tensors of static shapes and one
    element type."""
    if not op.operands or len(op.results) != 1:
        return False
    source, result = op.operands[0], op.results[0]
    shape = _static_shape(source)
    if shape is None or _static_shape(result) is None:
        return False
    if source.type.dtype != result.type.dtype:  # type: ignore[attr-defined]
        return False
    if op.name in RESHAPE_OPS or op.name in COPY_OPS:
        return True
    return _permutation(op, len(shape)) is not None or _selected(op, shape) is not None


def view_chain(value: SSAValue) -> list[Operation] | None:
    """The views from the tensor `value` is viewed from to `value`, in order, when they move
    data (MOVING_OPS); None otherwise."""
    chain: list[Operation] = []
    while isinstance(value.owner, Operation) and _is_link(value.owner):
        chain.append(value.owner)
        value = value.owner.operands[0]
    if not any(op.name in MOVING_OPS for op in chain):
        return None
    return chain[::-1]


# --------------------------------------------------------------------------------------------
# Building (at the implicit builder)
# --------------------------------------------------------------------------------------------


def _groups(groups: Sequence[Sequence[int]]) -> ArrayAttr[ArrayAttr[IntegerAttr]]:
    return ArrayAttr(ArrayAttr(IntegerAttr(i, i64) for i in g) for g in groups)


def _element(value: SSAValue) -> Attribute:
    assert isinstance(value.type, TensorType)
    return value.type.get_element_type()


def _shape(value: SSAValue) -> list[int]:
    assert isinstance(value.type, TensorType)
    return list(value.type.get_shape())


def reshape(value: SSAValue, shape: Sequence[int]) -> SSAValue:
    """`value` (static) with the same elements in the same order as `shape`: collapsed to one
    dim, then expanded (the lowering reads any regrouping of the dims this way)."""
    source = _shape(value)
    if source == list(shape):
        return value
    element = _element(value)
    if isinstance(value.owner, tensor.ExpandShapeOp) and len(_shape(value.owner.src)) == 1:
        value, source = value.owner.src, _shape(value.owner.src)  # reshape the flat tensor
    if len(source) != 1:
        flat = TensorType(element, [math.prod(source)])
        groups = [list(range(len(source)))] if source else []
        value = tensor.CollapseShapeOp.create(
            operands=[value], result_types=[flat], properties={"reassociation": _groups(groups)}
        ).results[0]
    if len(shape) == 1:
        return value
    groups = [list(range(len(shape)))] if shape else []
    return tensor.ExpandShapeOp(
        value, [], _groups(groups), list(shape), TensorType(element, list(shape))
    ).result


def permute(value: SSAValue, perm: Sequence[int]) -> SSAValue:
    shape = _shape(value)
    out = TensorType(_element(value), [shape[p] for p in perm])
    init = tensor.EmptyOp([], out).results[0]
    return TransposeOp(value, init, DenseArrayBase.from_list(i64, list(perm))).results[0]


def select(value: SSAValue, dim: int, index: int, shape: Sequence[int]) -> SSAValue:
    """The slice `index` of `dim` (a unit dim, then reshaped away to `shape`)."""
    source = _shape(value)
    offsets = [index if d == dim else 0 for d in range(len(source))]
    sizes = [1 if d == dim else s for d, s in enumerate(source)]
    sliced = tensor.ExtractSliceOp.from_static_parameters(value, offsets, sizes)
    return reshape(sliced.result, shape)


def build_view_chain(base: SSAValue, chain: Sequence[Operation]) -> SSAValue:
    """The chain's result, computed from `base` (the builtin tensor of the chain's source)."""
    value = base
    for op in chain:
        shape = _static_shape(op.results[0])
        assert shape is not None
        if op.name in COPY_OPS:
            continue
        if op.name in RESHAPE_OPS:
            value = reshape(value, shape)
        elif (perm := _permutation(op, len(_shape(value)))) is not None:
            value = permute(value, perm)
        elif (picked := _selected(op, _shape(value))) is not None:
            value = select(value, *picked, shape)
    return value
