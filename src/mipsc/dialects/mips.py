"""The `mips` dialect: the ops that our kernel library executes.

`mips.matmul` is tensor-only and in destination-passing style, like `linalg.matmul`: the result
is `init + lhs · rhs` and has the type of `init`. Keeping the init explicit lets a later lowering
choose between writing the product (zero init) and accumulating into an existing tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects import tensor
from xdsl.dialects.arith import ConstantOp
from xdsl.dialects.builtin import DYNAMIC_INDEX, IndexType, IntegerAttr, TensorType
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from mipsc.dialects.shapes import matmul_shape_error

Dim = int | SSAValue
"""A reified dimension: a static size, or the SSA value of a dynamic one."""


def reify_matmul_dims(lhs: SSAValue, rhs: SSAValue) -> tuple[list[Operation], list[Dim]]:
    """The result dims [M, N] of `lhs · rhs`, with the ops that compute the dynamic ones.

    Static dims come back as ints; a dynamic one as a `tensor.dim` of the operand that carries it,
    so callers can build the init tensor before the matmul exists.
    """
    ops: list[Operation] = []
    dims: list[Dim] = []
    for value, axis in ((lhs, 0), (rhs, 1)):
        ty = value.type
        assert isinstance(ty, TensorType)
        size = ty.get_shape()[axis]
        if size != DYNAMIC_INDEX:
            dims.append(size)
            continue
        index = ConstantOp(IntegerAttr(axis, IndexType()))
        dim = tensor.DimOp(value, index)
        ops += [index, dim]
        dims.append(dim.result)
    return ops, dims


@irdl_op_definition
class MatmulOp(IRDLOperation):
    """`mips.matmul`: `result = init + lhs · rhs` on 2-D tensors, executed by the kernel."""

    name = "mips.matmul"

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    init = operand_def(TensorType)
    result = result_def(TensorType)

    # Tensors only: no memory is touched, so a dead matmul may be removed.
    traits = traits_def(Pure())

    assembly_format = (
        "`ins` `(` $lhs `,` $rhs `:` type($lhs) `,` type($rhs) `)` "
        "`outs` `(` $init `:` type($init) `)` attr-dict `->` type($result)"
    )

    def __init__(
        self, lhs: SSAValue, rhs: SSAValue, init: SSAValue, attributes: dict | None = None
    ) -> None:
        super().__init__(
            operands=[lhs, rhs, init], result_types=[init.type], attributes=attributes or {}
        )

    def reify_result_shapes(self) -> tuple[list[Operation], list[Dim]]:
        """The result dims, derived from the operands (see `reify_matmul_dims`)."""
        return reify_matmul_dims(self.lhs, self.rhs)

    def verify_(self) -> None:
        types: dict[str, Attribute] = {
            "lhs": self.lhs.type,
            "rhs": self.rhs.type,
            "init": self.init.type,
            "result": self.result.type,
        }
        shapes: dict[str, Sequence[int]] = {}
        for role, ty in types.items():
            assert isinstance(ty, TensorType)
            if ty.get_num_dims() != 2:
                raise VerifyException(f"{role} must be a 2-D tensor, got {ty}")
            shapes[role] = ty.get_shape()
        elements = {role: ty.get_element_type() for role, ty in types.items()}  # type: ignore[union-attr]
        if len(set(elements.values())) != 1:
            listing = ", ".join(f"{role} {el}" for role, el in elements.items())
            raise VerifyException(f"operands and result must share one element type, got {listing}")
        if self.result.type != self.init.type:
            raise VerifyException(
                f"result type {self.result.type} must equal the init type {self.init.type}"
            )
        error = matmul_shape_error(shapes["lhs"], shapes["rhs"], shapes["init"])
        if error is not None:
            raise VerifyException(error)


Mips = Dialect("mips", [MatmulOp], [])
