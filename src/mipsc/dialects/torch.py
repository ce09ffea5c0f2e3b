"""The subset of torch-mlir's `torch` and `torch_c` dialects that PyTorch exports use.

Only the types, the constants, the ops the project rewrites and the few ops with a syntax of
their own are defined here. Every other `torch.*` op (hundreds of aten ops) shares torch-mlir's
default syntax `%r = torch.aten.X %a, %b : T, T -> R`; the context gives each such name a class
of `TorchDefaultSyntaxOp` on first sight, so those ops parse and print back unchanged without a
definition each.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AffineMapAttr,
    ArrayAttr,
    BoolAttr,
    DenseIntOrFPElementsAttr,
    DenseResourceAttr,
    Float64Type,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    NoneAttr,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    param_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, Pure
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.mlir_lexer import MLIRTokenKind

from mipsc.dialects.shapes import (
    check_broadcastable,
    dims_agree,
    format_dim,
    format_shape,
    matmul_shape,
    matmul_shape_error,
    merge_dims,
    refine,
)

# --------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------


class TorchType(ParametrizedAttribute, TypeAttribute):
    """Torch types print their contained torch types without the `!torch.` prefix."""

    @property
    def mnemonic(self) -> str:
        return self.name.removeprefix("torch.")


def _parse_contained_type(parser: AttrParser) -> Attribute:
    """Parse a type nested in a torch type: `int`, `vtensor<[2],f32>` or a full `!x.y` type."""
    token = parser._current_token.text
    if token in _CONTAINED_TORCH_TYPES:
        parser.parse_optional_identifier()
        cls = _CONTAINED_TORCH_TYPES[token]
        return cls.new(cls.parse_parameters(parser))
    return parser.parse_type()


def _print_contained_type(printer: Printer, ty: Attribute) -> None:
    if isinstance(ty, TorchType) and type(ty) in _CONTAINED_TORCH_TYPES.values():
        printer.print_string(ty.mnemonic)
        ty.print_parameters(printer)
    else:
        printer.print_attribute(ty)


# The shared parameters of a base class are dataclass fields only if the base is a dataclass
# itself: without this, every `!torch.vtensor` compared equal to every other (and a use typed
# [18,23] of a value defined [19,23] was accepted).
@dataclass(frozen=True, init=False)
class _BaseTensorType(TorchType):
    """`<[d0,?,...],dtype>`; `*` for an unknown rank and `unk` for an unknown dtype."""

    shape: Attribute = param_def()  # noqa: RUF009 (xDSL field specifier) ArrayAttr[IntAttr], or NoneAttr when unranked
    dtype: Attribute = param_def()  # noqa: RUF009 a builtin/torch element type, or NoneAttr if unknown

    def __init__(self, shape: Sequence[int] | None = None, dtype: Attribute | None = None) -> None:
        shape_attr: Attribute = (
            NoneAttr() if shape is None else ArrayAttr(IntAttr(d) for d in shape)
        )
        super().__init__(shape_attr, NoneAttr() if dtype is None else dtype)

    @property
    def has_sizes(self) -> bool:
        return isinstance(self.shape, ArrayAttr)

    @property
    def has_dtype(self) -> bool:
        return not isinstance(self.dtype, NoneAttr)

    def get_shape(self) -> tuple[int, ...]:
        """The dims, with `DYNAMIC_INDEX` for `?`; only for ranked tensors."""
        assert isinstance(self.shape, ArrayAttr), "unranked torch tensor has no shape"
        return tuple(d.data for d in self.shape.data)  # type: ignore[union-attr]

    def get_rank(self) -> int:
        return len(self.get_shape())

    def to_builtin(self) -> TensorType[Attribute]:
        """The builtin tensor type that `torch_c.to_builtin_tensor` yields for this type."""
        if not (self.has_sizes and self.has_dtype):
            raise ValueError(f"{self} has no builtin tensor equivalent")
        return TensorType(self.dtype, self.get_shape())

    @classmethod
    def from_builtin(cls, ty: TensorType[Attribute]) -> _BaseTensorType:
        return cls(ty.get_shape(), ty.get_element_type())

    def print_parameters(self, printer: Printer) -> None:
        if not self.has_sizes and not self.has_dtype:
            return
        printer.print_string("<")
        if isinstance(self.shape, ArrayAttr):
            dims = ("?" if d == DYNAMIC_INDEX else str(d) for d in self.get_shape())
            printer.print_string("[" + ",".join(dims) + "]")
        else:
            printer.print_string("*")
        printer.print_string(",")
        if self.has_dtype:
            printer.print_attribute(self.dtype)
        else:
            printer.print_string("unk")
        printer.print_string(">")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[Attribute, Attribute]:
        if parser.parse_optional_punctuation("<") is None:
            return (NoneAttr(), NoneAttr())
        shape: Attribute
        if parser.parse_optional_punctuation("*") is not None:
            shape = NoneAttr()
        else:

            def parse_dim() -> IntAttr:
                if parser.parse_optional_punctuation("?") is not None:
                    return IntAttr(DYNAMIC_INDEX)
                start = parser.pos
                size = parser.parse_integer(allow_boolean=False)
                if size == -1:  # torch-mlir's kUnknownSize, which it prints as `?`
                    return IntAttr(DYNAMIC_INDEX)
                if not 0 <= size < 2**63:
                    parser.raise_error(
                        f"a dim is a size (0 to 2^63 - 1) or ?, not {size}", start, parser.pos
                    )
                return IntAttr(size)

            shape = ArrayAttr(parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parse_dim))
        parser.parse_punctuation(",")
        dtype: Attribute = (
            NoneAttr() if parser.parse_optional_keyword("unk") else parser.parse_type()
        )
        parser.parse_punctuation(">")
        return (shape, dtype)


@irdl_attr_definition
class ValueTensorType(_BaseTensorType):
    """`!torch.vtensor`: a tensor with value semantics, what every export uses."""

    name = "torch.vtensor"


@irdl_attr_definition
class NonValueTensorType(_BaseTensorType):
    name = "torch.tensor"


class _ScalarType(TorchType):
    def print_parameters(self, printer: Printer) -> None:
        return

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[()]:
        return ()


@irdl_attr_definition
class IntType(_ScalarType):
    name = "torch.int"


@irdl_attr_definition
class FloatType(_ScalarType):
    name = "torch.float"


@irdl_attr_definition
class BoolType(_ScalarType):
    name = "torch.bool"


@irdl_attr_definition
class NoneType(_ScalarType):
    name = "torch.none"


@irdl_attr_definition
class StringType(_ScalarType):
    name = "torch.str"


@irdl_attr_definition
class DeviceType(_ScalarType):
    name = "torch.Device"


@irdl_attr_definition
class GeneratorType(_ScalarType):
    name = "torch.Generator"


@irdl_attr_definition
class NumberType(_ScalarType):
    name = "torch.number"


@irdl_attr_definition
class AnyType(_ScalarType):
    name = "torch.any"


@dataclass(frozen=True, init=False)  # see _BaseTensorType
class _ContainerType(TorchType):
    """`<T, U, ...>` of contained types."""

    contained: ArrayAttr[Attribute] = param_def()  # noqa: RUF009 (xDSL field specifier)

    def __init__(self, *contained: Attribute) -> None:
        super().__init__(ArrayAttr(contained))

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string("<")
        printer.print_list(self.contained.data, lambda t: _print_contained_type(printer, t))
        printer.print_string(">")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[ArrayAttr[Attribute]]:
        types = parser.parse_comma_separated_list(
            parser.Delimiter.ANGLE, lambda: _parse_contained_type(parser)
        )
        return (ArrayAttr(types),)


@irdl_attr_definition
class ListType(_ContainerType):
    name = "torch.list"


@irdl_attr_definition
class OptionalType(_ContainerType):
    name = "torch.optional"


@irdl_attr_definition
class TupleType(_ContainerType):
    name = "torch.tuple"


@irdl_attr_definition
class UnionType(_ContainerType):
    name = "torch.union"


@irdl_attr_definition
class DictType(_ContainerType):
    name = "torch.dict"


_CONTAINED_TORCH_TYPES: dict[str, type[TorchType]] = {
    t.name.removeprefix("torch."): t
    for t in (
        ValueTensorType,
        NonValueTensorType,
        IntType,
        FloatType,
        BoolType,
        NoneType,
        StringType,
        DeviceType,
        GeneratorType,
        NumberType,
        AnyType,
        ListType,
        OptionalType,
        TupleType,
        UnionType,
        DictType,
    )
}

# --------------------------------------------------------------------------------------------
# Ops in torch-mlir's default syntax
# --------------------------------------------------------------------------------------------


def _parse_default_syntax(parser: Parser) -> tuple[list[SSAValue], list[Attribute], dict]:
    """`%a, %b {attrs} : T1, T2 -> R1, R2` (no `->` when there are no operands or results)."""
    pos = parser.pos
    unresolved = (
        parser.parse_optional_undelimited_comma_separated_list(
            parser.parse_optional_unresolved_operand, parser.parse_unresolved_operand
        )
        or []
    )
    attributes = parser.parse_optional_attr_dict()
    parser.parse_punctuation(":")
    operand_types: list[Attribute] = []
    result_types: list[Attribute] = []
    if unresolved:
        operand_types = parser.parse_comma_separated_list(parser.Delimiter.NONE, parser.parse_type)
        if parser.parse_optional_punctuation("->") is not None:
            result_types = parser.parse_comma_separated_list(
                parser.Delimiter.NONE, parser.parse_type
            )
    else:
        result_types = parser.parse_comma_separated_list(parser.Delimiter.NONE, parser.parse_type)
    _expect_end_of_op(parser)
    operands = list(parser.resolve_operands(unresolved, operand_types, pos))
    return operands, result_types, attributes


def _expect_end_of_op(parser: Parser) -> None:
    """Reject trailing words on the op's line: the op uses a syntax of its own we do not know."""
    token = parser._current_token
    before = token.span.input.content[max(0, token.span.start - 256) : token.span.start]
    same_line = not before.rstrip(" \t").endswith("\n")
    if token.kind == MLIRTokenKind.BARE_IDENT and same_line and token.text != "loc":
        parser.raise_error(
            f"unexpected '{token.text}': this torch op has a custom syntax that mipsc does not "
            "know (expected torch-mlir's default form `%r = torch.op %a, %b : T1, T2 -> R`)",
            token.span,
        )


def _print_default_syntax(printer: Printer, op: Operation) -> None:
    if op.operands:
        printer.print_string(" ")
        printer.print_list(op.operands, printer.print_operand)
    printer.print_op_attributes(op.attributes)
    printer.print_string(" :")
    if op.operands:
        printer.print_string(" ")
        printer.print_list(op.operand_types, printer.print_attribute)
    if op.operands and op.results:
        printer.print_string(" ->")
    if op.results:
        printer.print_string(" ")
        printer.print_list(op.result_types, printer.print_attribute)


@irdl_op_definition
class TorchDefaultSyntaxOp(IRDLOperation):
    """Any torch op without a definition of its own, kept as it was written.

    The context makes a subclass per op name (see `default_syntax_op_class`), so the op keeps its
    real name and round-trips through torch-mlir's default syntax.
    """

    name = "torch.default_syntax"

    args = var_operand_def()
    res = var_result_def()

    @classmethod
    def parse(cls, parser: Parser) -> TorchDefaultSyntaxOp:
        operands, result_types, attributes = _parse_default_syntax(parser)
        return cls.create(operands=operands, result_types=result_types, attributes=attributes)

    def print(self, printer: Printer) -> None:
        _print_default_syntax(printer, self)


_DEFAULT_SYNTAX_CLASSES: dict[str, type[TorchDefaultSyntaxOp]] = {}


def default_syntax_op_class(name: str) -> type[TorchDefaultSyntaxOp]:
    """The op class for an undefined torch op `name`; one class per name, made once."""
    if (cls := _DEFAULT_SYNTAX_CLASSES.get(name)) is None:
        cls = type(f"TorchOp[{name}]", (TorchDefaultSyntaxOp,), {"name": name})
        _DEFAULT_SYNTAX_CLASSES[name] = cls
    return cls


class _FixedDefaultSyntaxOp(IRDLOperation):
    """A defined op whose text is torch-mlir's default syntax with fixed operands/results."""

    @classmethod
    def parse(cls, parser: Parser) -> Operation:
        operands, result_types, attributes = _parse_default_syntax(parser)
        return cls.create(operands=operands, result_types=result_types, attributes=attributes)

    def print(self, printer: Printer) -> None:
        _print_default_syntax(printer, self)


def _ranked_shape(value: SSAValue) -> list[int] | None:
    ty = value.type
    if isinstance(ty, ValueTensorType) and ty.has_sizes:
        return list(ty.get_shape())
    return None


class MatmulFamilyOp(_FixedDefaultSyntaxOp):
    """A matmul-family op in torch-mlir's default syntax. Its verifier checks, when the
    shapes are known and of the ranks the op takes, that the operands fit and that the
    declared result is what they make (torch's rules: dialects/shapes.py)."""

    result = result_def()

    traits = traits_def(Pure())

    def shape_operands(self) -> Sequence[SSAValue]:
        """The tensors whose shapes make the result's."""
        raise NotImplementedError

    def ranks_ok(self, ranks: list[int]) -> bool:
        return all(r >= 1 for r in ranks)

    def expected_shape(self, shapes: list[list[int]]) -> list[int]:
        """The result shape the operands' `shapes` make; VerifyException when they do not fit."""
        raise NotImplementedError

    def known_shapes(self) -> list[list[int]] | None:
        shapes = [_ranked_shape(v) for v in self.shape_operands()]
        if any(s is None for s in shapes) or not self.ranks_ok([len(s) for s in shapes]):  # type: ignore[arg-type]
            return None
        return shapes  # type: ignore[return-value]

    def refined_result_shape(self) -> list[int] | None:
        """The declared result shape with every dim the operands know, or None when a shape
        is unknown. Raises VerifyException when they do not fit."""
        shapes, result = self.known_shapes(), self.result.type
        if shapes is None or not isinstance(result, ValueTensorType) or not result.has_sizes:
            return None
        return refine(result.get_shape(), self.expected_shape(shapes), str(result))

    def verify_(self) -> None:
        self.refined_result_shape()


class _TwoOperandMatmulOp(MatmulFamilyOp):
    """`self · other` with torch.matmul's shape rule."""

    self_ = operand_def()
    other = operand_def()

    RANKS: ClassVar[tuple[int, int] | None] = None

    def shape_operands(self) -> Sequence[SSAValue]:
        return (self.self_, self.other)

    def ranks_ok(self, ranks: list[int]) -> bool:
        return ranks == list(self.RANKS) if self.RANKS else super().ranks_ok(ranks)

    def expected_shape(self, shapes: list[list[int]]) -> list[int]:
        return matmul_shape(*shapes)


@irdl_op_definition
class AtenMmOp(MatmulFamilyOp):
    """`torch.aten.mm`: 2-D matrix product."""

    name = "torch.aten.mm"

    self_ = operand_def(ValueTensorType)
    mat2 = operand_def(ValueTensorType)
    result = result_def(ValueTensorType)

    def shape_operands(self) -> Sequence[SSAValue]:
        return (self.self_, self.mat2)

    def ranks_ok(self, ranks: list[int]) -> bool:
        return ranks == [2, 2]

    def expected_shape(self, shapes: list[list[int]]) -> list[int]:
        return matmul_shape(*shapes)

    def verify_(self) -> None:
        """The same rule, with messages that name mm's operands (self, mat2)."""
        types = (self.self_.type, self.mat2.type, self.result.type)
        shapes: list[tuple[int, ...] | None] = []
        for role, ty in zip(("self", "mat2", "result"), types, strict=True):
            assert isinstance(ty, ValueTensorType)
            if ty.has_sizes and ty.get_rank() != 2:
                raise VerifyException(f"{role} must be 2-D, got {ty}")
            shapes.append(ty.get_shape() if ty.has_sizes else None)
        lhs, rhs, out = shapes
        if lhs is not None and rhs is not None:
            error = matmul_shape_error(lhs, rhs, out, ("self", "mat2", "result"))
            if error is not None:
                raise VerifyException(error)


@irdl_op_definition
class AtenBmmOp(_TwoOperandMatmulOp):
    """`torch.aten.bmm`: [B, M, K] · [B, K, N]."""

    name = "torch.aten.bmm"
    RANKS: ClassVar[tuple[int, int] | None] = (3, 3)


@irdl_op_definition
class AtenMvOp(_TwoOperandMatmulOp):
    """`torch.aten.mv`: [M, K] · [K]."""

    name = "torch.aten.mv"
    RANKS: ClassVar[tuple[int, int] | None] = (2, 1)


@irdl_op_definition
class AtenMatmulOp(_TwoOperandMatmulOp):
    """`torch.aten.matmul`: every rank pair of torch.matmul, batch dims broadcast."""

    name = "torch.aten.matmul"


@irdl_op_definition
class AtenDotOp(_TwoOperandMatmulOp):
    """`torch.aten.dot`: [K] · [K] -> []."""

    name = "torch.aten.dot"
    RANKS: ClassVar[tuple[int, int] | None] = (1, 1)


@irdl_op_definition
class AtenLinearOp(MatmulFamilyOp):
    """`torch.aten.linear(input, weight, bias)`: input · weightᵀ (+ bias); a 1-D weight is a
    vector."""

    name = "torch.aten.linear"

    input = operand_def()
    weight = operand_def()
    bias = opt_operand_def()

    def shape_operands(self) -> Sequence[SSAValue]:
        return (self.input, self.weight)

    def ranks_ok(self, ranks: list[int]) -> bool:
        return ranks[0] >= 1 and ranks[1] in (1, 2)

    def expected_shape(self, shapes: list[list[int]]) -> list[int]:
        x, w = shapes
        if not dims_agree(x[-1], w[-1]):
            raise VerifyException(
                f"K mismatch: the input [{format_shape(x)}] has K = {format_dim(x[-1])} but the "
                f"weight [{format_shape(w)}] has K = {format_dim(w[-1])}"
            )
        out = [*x[:-1], *w[:-1]]
        if self.bias is not None and (bias := _ranked_shape(self.bias)) is not None:
            check_broadcastable("bias", bias, out)
        return out


class _AddmmLikeOp(MatmulFamilyOp):
    """`beta·input + alpha·(mat1 · mat2)`."""

    input = operand_def()
    mat1 = operand_def()
    mat2 = operand_def()
    beta = operand_def()
    alpha = operand_def()

    RANK: ClassVar[int] = 2

    def shape_operands(self) -> Sequence[SSAValue]:
        return (self.mat1, self.mat2)

    def ranks_ok(self, ranks: list[int]) -> bool:
        return ranks == [self.RANK, self.RANK]

    def product_shape(self, a: list[int], b: list[int]) -> list[int]:
        return matmul_shape(a, b)

    def expected_shape(self, shapes: list[list[int]]) -> list[int]:
        out = self.product_shape(*shapes)
        if (input_shape := _ranked_shape(self.input)) is not None:
            check_broadcastable("input", input_shape, out)
        return out


@irdl_op_definition
class AtenAddmmOp(_AddmmLikeOp):
    """`torch.aten.addmm`: 2-D."""

    name = "torch.aten.addmm"


@irdl_op_definition
class AtenBaddbmmOp(_AddmmLikeOp):
    """`torch.aten.baddbmm`: batched."""

    name = "torch.aten.baddbmm"
    RANK: ClassVar[int] = 3


@irdl_op_definition
class AtenAddbmmOp(_AddmmLikeOp):
    """`torch.aten.addbmm`: Σ over the batch of the products."""

    name = "torch.aten.addbmm"
    RANK: ClassVar[int] = 3

    def product_shape(self, a: list[int], b: list[int]) -> list[int]:
        merge_dims(a[0], b[0], "batch dims")
        return matmul_shape(a[1:], b[1:])


@irdl_op_definition
class AtenScaledDotProductAttentionOp(MatmulFamilyOp):
    """`torch.aten.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal,
    scale[, enable_gqa])`. The verifier checks the head dims of q and k and the sequence
    lengths of k and v (grouped-query heads may differ in count)."""

    name = "torch.aten.scaled_dot_product_attention"

    query = operand_def()
    key = operand_def()
    value = operand_def()
    attn_mask = operand_def()
    dropout_p = operand_def()
    is_causal = operand_def()
    flags = var_operand_def()
    """`scale`, and `enable_gqa` since torch 2.5."""

    def shape_operands(self) -> Sequence[SSAValue]:
        return (self.query, self.key, self.value)

    def ranks_ok(self, ranks: list[int]) -> bool:
        return len(set(ranks)) == 1 and ranks[0] >= 2

    def expected_shape(self, shapes: list[list[int]]) -> list[int]:
        q, k, v = shapes
        merge_dims(q[-1], k[-1], "the head dims of q and k")
        merge_dims(k[-2], v[-2], "the sequence lengths of k and v")
        return [*q[:-1], v[-1]]

    def refined_result_shape(self) -> list[int] | None:
        shapes = self.known_shapes()
        if shapes is not None:
            self.expected_shape(shapes)
        return None


@irdl_op_definition
class AtenEinsumOp(_FixedDefaultSyntaxOp):
    """`torch.aten.einsum(equation, tensors, path)`."""

    name = "torch.aten.einsum"

    equation = operand_def()
    tensors = operand_def()
    path = operand_def()
    result = result_def()

    traits = traits_def(Pure())


@irdl_op_definition
class AtenBilinearOp(_FixedDefaultSyntaxOp):
    """`torch.aten.bilinear(input1, input2, weight, bias)`."""

    name = "torch.aten.bilinear"

    input1 = operand_def()
    input2 = operand_def()
    weight = operand_def()
    bias = operand_def()
    result = result_def()

    traits = traits_def(Pure())


# --------------------------------------------------------------------------------------------
# Constants and literals
# --------------------------------------------------------------------------------------------


@irdl_op_definition
class ConstantIntOp(IRDLOperation):
    name = "torch.constant.int"

    value = prop_def(IntegerAttr)
    result = result_def(IntType)

    traits = traits_def(ConstantLike(), Pure())

    def __init__(self, value: int) -> None:
        super().__init__(properties={"value": IntegerAttr(value, i64)}, result_types=[IntType()])

    @classmethod
    def parse(cls, parser: Parser) -> ConstantIntOp:
        op = cls(parser.parse_integer(allow_boolean=False))
        op.attributes.update(parser.parse_optional_attr_dict())
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.value.value.data}")
        printer.print_op_attributes(self.attributes)


def _format_f64(value: float) -> str:
    """An MLIR float literal that reads back to the same double."""
    if math.isnan(value) or math.isinf(value):
        return "0x" + struct.pack(">d", value).hex().upper()
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("e" + exponent if exponent else "")


@irdl_op_definition
class ConstantFloatOp(IRDLOperation):
    name = "torch.constant.float"

    value = prop_def(FloatAttr)
    result = result_def(FloatType)

    traits = traits_def(ConstantLike(), Pure())

    def __init__(self, value: float) -> None:
        super().__init__(
            properties={"value": FloatAttr(value, Float64Type())}, result_types=[FloatType()]
        )

    @classmethod
    def parse(cls, parser: Parser) -> ConstantFloatOp:
        token = parser._current_token
        if token.kind == MLIRTokenKind.INTEGER_LIT:
            # torch-mlir prints inf/nan as the hex bit pattern of the double; like MLIR, a
            # decimal integer is refused rather than read as bits (5 would be 2.5e-323).
            bits = parser.parse_integer(allow_boolean=False)
            if not token.text.lower().startswith("0x") or not 0 <= bits < 2**64:
                parser.raise_error(
                    f"expected a float (like 5.0) or the 64 bits of a double in hex, not "
                    f"{token.text}",
                    token.span,
                )
            value = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
        else:
            value = parser.parse_float()
        op = cls(value)
        op.attributes.update(parser.parse_optional_attr_dict())
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" " + _format_f64(self.value.value.data))
        printer.print_op_attributes(self.attributes)


@irdl_op_definition
class ConstantBoolOp(IRDLOperation):
    name = "torch.constant.bool"

    value = prop_def(IntegerAttr)
    result = result_def(BoolType)

    traits = traits_def(ConstantLike(), Pure())

    def __init__(self, value: bool) -> None:
        super().__init__(properties={"value": BoolAttr.from_bool(value)}, result_types=[BoolType()])

    @classmethod
    def parse(cls, parser: Parser) -> ConstantBoolOp:
        op = cls(parser.parse_boolean())
        op.attributes.update(parser.parse_optional_attr_dict())
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" true" if self.value.value.data else " false")
        printer.print_op_attributes(self.attributes)


@irdl_op_definition
class ConstantNoneOp(IRDLOperation):
    name = "torch.constant.none"

    result = result_def(NoneType)

    traits = traits_def(ConstantLike(), Pure())

    assembly_format = "attr-dict"

    def __init__(self) -> None:
        super().__init__(result_types=[NoneType()])


class _ConstantStringLikeOp(IRDLOperation):
    """A constant whose value is a string literal: `torch.constant.str "x"`."""

    value = prop_def(StringAttr)

    RESULT_TYPE: ClassVar[type[TorchType]]

    @classmethod
    def parse(cls, parser: Parser) -> Operation:
        value = parser.parse_str_literal()
        op = cls.create(
            properties={"value": StringAttr(value)},
            result_types=[cls.RESULT_TYPE()],
            attributes=parser.parse_optional_attr_dict(),
        )
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.value.data)
        printer.print_op_attributes(self.attributes)


@irdl_op_definition
class ConstantStrOp(_ConstantStringLikeOp):
    name = "torch.constant.str"

    result = result_def(StringType)
    RESULT_TYPE: ClassVar[type[TorchType]] = StringType
    traits = traits_def(ConstantLike(), Pure())


@irdl_op_definition
class ConstantDeviceOp(_ConstantStringLikeOp):
    name = "torch.constant.device"

    result = result_def(DeviceType)
    RESULT_TYPE: ClassVar[type[TorchType]] = DeviceType
    traits = traits_def(ConstantLike(), Pure())


@irdl_op_definition
class ConstantNumberOp(IRDLOperation):
    """`torch.constant.number 1` or `2.5`: an int or a float, typed `!torch.number`."""

    name = "torch.constant.number"

    value = prop_def(IntegerAttr | FloatAttr)
    result = result_def(NumberType)

    traits = traits_def(ConstantLike(), Pure())

    @classmethod
    def parse(cls, parser: Parser) -> ConstantNumberOp:
        number = parser.parse_number()
        value: Attribute = (
            IntegerAttr(number, i64)
            if isinstance(number, int)
            else FloatAttr(number, Float64Type())
        )
        return cls.create(
            properties={"value": value},
            result_types=[NumberType()],
            attributes=parser.parse_optional_attr_dict(),
        )

    def print(self, printer: Printer) -> None:
        value = self.value.value.data
        text = _format_f64(value) if isinstance(value, float) else str(value)
        printer.print_string(" " + text)
        printer.print_op_attributes(self.attributes)


@irdl_op_definition
class ValueTensorLiteralOp(IRDLOperation):
    """`torch.vtensor.literal(dense<...> : tensor<...>) : !torch.vtensor<...>`: model weights."""

    name = "torch.vtensor.literal"

    value = prop_def(DenseIntOrFPElementsAttr | DenseResourceAttr)
    result = result_def(ValueTensorType)

    traits = traits_def(ConstantLike(), Pure())

    assembly_format = "`(` $value `)` attr-dict `:` type($result)"

    def verify_(self) -> None:
        # As torch-mlir: the result is the literal's own type, so the weights fill it exactly.
        literal, result = self.value.type, self.result.type
        assert isinstance(result, ValueTensorType)
        if isinstance(literal, TensorType) and result.has_sizes:
            got = result.get_shape()
            want = literal.get_shape()
            if len(got) != len(want) or not all(map(dims_agree, got, want)):
                raise VerifyException(f"the literal is a {literal}, but the result is {result}")


# --------------------------------------------------------------------------------------------
# Lists, operators, symbolic shapes
# --------------------------------------------------------------------------------------------


@irdl_op_definition
class PrimListConstructOp(IRDLOperation):
    name = "torch.prim.ListConstruct"

    elements = var_operand_def()
    result = result_def(ListType)

    traits = traits_def(Pure())

    assembly_format = "$elements attr-dict `:` functional-type($elements, $result)"


@irdl_op_definition
class OperatorOp(IRDLOperation):
    """`torch.operator "aten.foo"(%a) : (T) -> R`: an op torch-mlir has no definition for."""

    name = "torch.operator"

    op_name = prop_def(StringAttr, prop_name="name")
    args = var_operand_def()
    res = var_result_def()

    assembly_format = "$name `(` $args `)` attr-dict `:` functional-type($args, $res)"


@irdl_op_definition
class SymbolicIntOp(IRDLOperation):
    """`torch.symbolic_int "s0" {min_val = 2, max_val = 64} : !torch.int`: a dynamic dim."""

    name = "torch.symbolic_int"

    symbol_name = prop_def(StringAttr)
    min_val = prop_def(IntegerAttr)
    max_val = prop_def(IntegerAttr)
    result = result_def(IntType)

    @classmethod
    def parse(cls, parser: Parser) -> SymbolicIntOp:
        symbol_name = parser.parse_str_literal()
        bounds = parser.parse_optional_attr_dict()
        for key in ("min_val", "max_val"):
            if not isinstance(bounds.get(key), IntegerAttr):
                parser.raise_error(f"torch.symbolic_int needs an integer '{key}'")
        parser.parse_punctuation(":")
        result_type = parser.parse_type()
        properties = {"symbol_name": StringAttr(symbol_name)}
        properties.update({key: bounds.pop(key) for key in ("min_val", "max_val")})
        return cls.create(properties=properties, attributes=bounds, result_types=[result_type])

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.symbol_name.data)
        bounds = f"min_val = {self.min_val.value.data}, max_val = {self.max_val.value.data}"
        printer.print_string(" {" + bounds + "}")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)


@irdl_op_definition
class RuntimeAssertOp(IRDLOperation):
    """`torch.runtime.assert %cond, "message"`: fails at run time when `%cond` (!torch.bool)
    is false. torch-mlir's onnx-to-torch conversion emits it (e.g. for an `onnx.Expand` of a
    dim it cannot prove), in this custom syntax."""

    name = "torch.runtime.assert"

    condition = operand_def(BoolType)
    message = prop_def(StringAttr)

    assembly_format = "$condition `,` $message attr-dict"


@irdl_op_definition
class BindSymbolicShapeOp(IRDLOperation):
    """`torch.bind_symbolic_shape %t, [%s0], affine_map<()[s0] -> (s0, 4)> : T`."""

    name = "torch.bind_symbolic_shape"

    operand = operand_def(ValueTensorType)
    shape_symbols = var_operand_def(IntType)
    shape_expressions = prop_def(AffineMapAttr)

    assembly_format = (
        "$operand `,` `[` $shape_symbols `]` `,` $shape_expressions attr-dict `:` type($operand)"
    )


@irdl_op_definition
class TensorStaticInfoCastOp(IRDLOperation):
    """`torch.tensor_static_info_cast %t : T to R`: forgets or adds static shape information."""

    name = "torch.tensor_static_info_cast"

    operand = operand_def(ValueTensorType)
    result = result_def(ValueTensorType)

    traits = traits_def(Pure())

    assembly_format = "$operand attr-dict `:` type($operand) `to` type($result)"


# --------------------------------------------------------------------------------------------
# Mutable tensors: an export's arguments that the function changes in place
# --------------------------------------------------------------------------------------------


def _check_same_tensor_type(op: Operation, value_type: Attribute, other: Attribute) -> None:
    """`value_type` (a !torch.vtensor) and `other` (a !torch.tensor) have one shape and dtype."""
    assert isinstance(value_type, _BaseTensorType) and isinstance(other, _BaseTensorType)
    if (value_type.shape, value_type.dtype) != (other.shape, other.dtype):
        raise VerifyException(f"'{op.name}': {value_type} and {other} differ in shape or dtype")


class _CopyTensorOp(IRDLOperation):
    """`%r = OP %t attr-dict : R`: the operand's type is R's other kind (torch-mlir's syntax)."""

    OPERAND_KIND: ClassVar[type[_BaseTensorType]]

    @classmethod
    def parse(cls, parser: Parser) -> _CopyTensorOp:
        unresolved = parser.parse_unresolved_operand()
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        start = parser.pos
        result_type = parser.parse_type()
        if not isinstance(result_type, _BaseTensorType):
            parser.raise_error(f"'{cls.name}' makes a torch tensor, not {result_type}", start)
        operand_type = cls.OPERAND_KIND.new([result_type.shape, result_type.dtype])
        operand = parser.resolve_operand(unresolved, operand_type)
        op = cls.build(operands=[operand], result_types=[result_type])
        op.attributes.update(attributes)
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.operands[0])
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.results[0].type)

    def verify_(self) -> None:
        _check_same_tensor_type(self, self.operands[0].type, self.results[0].type)


@irdl_op_definition
class CopyToValueTensorOp(_CopyTensorOp):
    """`torch.copy.to_vtensor %arg : !torch.vtensor<...>`: the current value of a mutable
    tensor (an argument the function changes in place: torch.export functionalizes `x.add_`
    on an input into this, an out-of-place op and an overwrite)."""

    name = "torch.copy.to_vtensor"
    OPERAND_KIND: ClassVar[type[_BaseTensorType]] = NonValueTensorType

    operand = operand_def(NonValueTensorType)
    result = result_def(ValueTensorType)


@irdl_op_definition
class CopyToNonValueTensorOp(_CopyTensorOp):
    """`torch.copy.to_tensor %v : !torch.tensor<...>`: a mutable copy of a value tensor."""

    name = "torch.copy.to_tensor"
    OPERAND_KIND: ClassVar[type[_BaseTensorType]] = ValueTensorType

    operand = operand_def(ValueTensorType)
    result = result_def(NonValueTensorType)


@irdl_op_definition
class OverwriteTensorContentsOp(IRDLOperation):
    """`torch.overwrite.tensor.contents %value overwrites %arg : V, T`: the mutable tensor
    `%arg` gets the contents of `%value` (IREE writes them into the argument's buffer)."""

    name = "torch.overwrite.tensor.contents"

    value = operand_def(ValueTensorType)
    overwritten = operand_def(NonValueTensorType)

    assembly_format = (
        "$value `overwrites` $overwritten attr-dict `:` type($value) `,` type($overwritten)"
    )

    def verify_(self) -> None:
        _check_same_tensor_type(self, self.value.type, self.overwritten.type)


# --------------------------------------------------------------------------------------------
# torch_c: casts between torch and builtin types
# --------------------------------------------------------------------------------------------


@irdl_op_definition
class ToBuiltinTensorOp(IRDLOperation):
    name = "torch_c.to_builtin_tensor"

    operand = operand_def(ValueTensorType)
    result = result_def(TensorType)

    traits = traits_def(Pure())

    assembly_format = "$operand attr-dict `:` type($operand) `->` type($result)"

    def __init__(self, operand: SSAValue) -> None:
        assert isinstance(operand.type, ValueTensorType)
        super().__init__(operands=[operand], result_types=[operand.type.to_builtin()])

    def verify_(self) -> None:
        vt = self.operand.type
        assert isinstance(vt, ValueTensorType)
        if not (vt.has_sizes and vt.has_dtype) or vt.to_builtin() != self.result.type:
            raise VerifyException(
                f"'{self.name}': result type {self.result.type} does not match operand type {vt}"
            )


@irdl_op_definition
class FromBuiltinTensorOp(IRDLOperation):
    name = "torch_c.from_builtin_tensor"

    operand = operand_def(TensorType)
    result = result_def(ValueTensorType)

    traits = traits_def(Pure())

    assembly_format = "$operand attr-dict `:` type($operand) `->` type($result)"

    def __init__(self, operand: SSAValue, result_type: ValueTensorType | None = None) -> None:
        assert isinstance(operand.type, TensorType)
        if result_type is None:
            result_type = ValueTensorType.from_builtin(operand.type)  # type: ignore[assignment]
        super().__init__(operands=[operand], result_types=[result_type])

    def verify_(self) -> None:
        vt = self.result.type
        assert isinstance(vt, ValueTensorType)
        if not (vt.has_sizes and vt.has_dtype) or vt.to_builtin() != self.operand.type:
            raise VerifyException(
                f"'{self.name}': operand type {self.operand.type} does not match result type {vt}"
            )


TORCH_DEFINED_OPS: tuple[type[Operation], ...] = (
    AtenMmOp,
    AtenBmmOp,
    AtenMvOp,
    AtenMatmulOp,
    AtenDotOp,
    AtenLinearOp,
    AtenAddmmOp,
    AtenBaddbmmOp,
    AtenAddbmmOp,
    AtenScaledDotProductAttentionOp,
    AtenEinsumOp,
    AtenBilinearOp,
    ConstantIntOp,
    ConstantFloatOp,
    ConstantBoolOp,
    ConstantNoneOp,
    ConstantStrOp,
    ConstantDeviceOp,
    ConstantNumberOp,
    ValueTensorLiteralOp,
    PrimListConstructOp,
    OperatorOp,
    SymbolicIntOp,
    RuntimeAssertOp,
    BindSymbolicShapeOp,
    TensorStaticInfoCastOp,
    CopyToValueTensorOp,
    CopyToNonValueTensorOp,
    OverwriteTensorContentsOp,
)

_DEFINED_BY_NAME: dict[str, type[Operation]] = {op.name: op for op in TORCH_DEFINED_OPS}


def op_class(name: str) -> type[Operation]:
    """The class of the torch op `name`: its definition, or the default-syntax class."""
    return _DEFINED_BY_NAME.get(name) or default_syntax_op_class(name)


Torch = Dialect(
    "torch",
    list(TORCH_DEFINED_OPS),
    list(_CONTAINED_TORCH_TYPES.values()),
)

TorchConversion = Dialect("torch_c", [ToBuiltinTensorOp, FromBuiltinTensorOp], [])
