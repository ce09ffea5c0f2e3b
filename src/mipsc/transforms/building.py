"""Building IR in a rewrite: new ops go before the matched op and carry its location."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from xdsl.builder import ImplicitBuilder
from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import DYNAMIC_INDEX, IndexType, IntegerAttr, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter


@contextmanager
def building_before(rewriter: PatternRewriter, op: Operation) -> Iterator[list[Operation]]:
    """Ops created in this block are inserted before `op` (the matched op, where the rewriter
    points) through the rewriter, and get `op`'s location, so errors and reports that point
    at them point into the user's file. Yields the list of the ops inserted, filled as they
    are."""
    inserted: list[Operation] = []

    def stamp(new_op: Operation) -> None:
        new_op.location = op.location
        inserted.append(new_op)

    rewriter.operation_insertion_handler.append(stamp)
    try:
        with ImplicitBuilder(rewriter):
            yield inserted
    finally:
        rewriter.operation_insertion_handler.remove(stamp)


def index_constant(value: int) -> SSAValue:
    """Builds `arith.constant <value> : index` at the implicit builder."""
    return arith.ConstantOp(IntegerAttr(value, IndexType())).result


def dim_size(value: SSAValue, axis: int) -> SSAValue:
    """Builds, at the implicit builder, the size of `axis` of a builtin tensor as an index
    value: a constant when the type knows it, else a `tensor.dim`."""
    assert isinstance(value.type, TensorType)
    size = value.type.get_shape()[axis]
    if size != DYNAMIC_INDEX:
        return index_constant(size)
    return tensor.DimOp(value, index_constant(axis)).result
