"""The `mips` dialect: the ops that our kernel library executes.

The ops are tensor-only and in destination-passing style, like `linalg.matmul`: the result is
`init + lhs · rhs` and has the type of `init`. Keeping the init explicit lets the lowering
choose between writing the product (zero init) and accumulating into an existing tensor (a
bias, `beta·C`).

`transpose_lhs` / `transpose_rhs` say that an operand is stored with its last two dims
swapped (e.g. the `[N, K]` weight of `nn.Linear`): the kernel reads it through swapped strides,
so no transposed copy is ever made.

An op may carry a fused epilogue (`fuse-epilogues` puts it there): an `activation` of the
product, then a `binary` op with a second tensor `other` of the result's type, so that
`result = binary(activation(init + lhs · rhs), other)`. In f16/bf16 each step rounds to the
element type, as torch's eager ops do (kernels/mips_kernels.h, "Epilogues").

`packed_rhs` says that `rhs` is a constant B already in the kernel's packed layout
(`mips.pack_rhs`, kernels/mips_kernels.h "Pre-packed B"): a 1-D tensor of packed_size(K, N)
elements, K and N then read from `lhs` and `init`.

`mips.attention` is torch's `scaled_dot_product_attention` fused into one kernel per tile of
query rows (kernels/mips_kernels.h, "Attention").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects import tensor
from xdsl.dialects.arith import ConstantOp
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    TensorType,
    UnitAttr,
)
from xdsl.dialects.linalg.ops import FillOp
from xdsl.dialects.utils.enum_attribute import EnumAttribute
from xdsl.ir import Attribute, Dialect, Operation, SpacedOpaqueSyntaxAttribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

from mipsc.dialects.shapes import dims_agree, format_dim, matmul_shape_error
from mipsc.kernel_abi import packed_size

Dim = int | SSAValue
"""A reified dimension: a static size, or the SSA value of a dynamic one."""


def logical_shape(shape: Sequence[int], transposed: bool) -> tuple[int, ...]:
    """The shape an operand has in the product: its stored shape, last two dims swapped if
    it is transposed."""
    shape = tuple(shape)
    return (*shape[:-2], shape[-1], shape[-2]) if transposed else shape


def reify_matmul_dims(
    lhs: SSAValue,
    rhs: SSAValue,
    *,
    transpose_lhs: bool = False,
    transpose_rhs: bool = False,
) -> tuple[list[Operation], list[Dim]]:
    """The result dims ([B,] M, N) of `lhs · rhs`, with the ops that compute the dynamic ones.

    Static dims come back as ints; a dynamic one as a `tensor.dim` of the operand that carries it,
    so callers can build the init tensor before the matmul exists.
    """
    assert isinstance(lhs.type, TensorType) and isinstance(rhs.type, TensorType)
    rank = lhs.type.get_num_dims()
    m_axis = rank - 1 if transpose_lhs else rank - 2
    n_axis = rank - 2 if transpose_rhs else rank - 1
    wanted = [(lhs, axis) for axis in range(rank - 2)] + [(lhs, m_axis), (rhs, n_axis)]
    ops: list[Operation] = []
    dims: list[Dim] = []
    for value, axis in wanted:
        assert isinstance(value.type, TensorType)
        size = value.type.get_shape()[axis]
        if size != DYNAMIC_INDEX:
            dims.append(size)
            continue
        index = ConstantOp(IntegerAttr(axis, IndexType()))
        dim = tensor.DimOp(value, index)
        ops += [index, dim]
        dims.append(dim.result)
    return ops, dims


def is_zero_init(value: SSAValue) -> bool:
    """True when `value` is `linalg.fill(0, tensor.empty)`: its old contents are never read, so
    the kernel may write the product instead of accumulating into it."""
    fill = value.owner
    if not isinstance(fill, FillOp) or not isinstance(fill.outputs[0].owner, tensor.EmptyOp):
        return False
    constant = fill.inputs[0].owner
    return (
        isinstance(constant, ConstantOp)
        and isinstance(constant.value, FloatAttr | IntegerAttr)
        and constant.value.value.data == 0
    )


class Activation(StrEnum):
    """The activations an epilogue applies to the product, as torch defines them: `relu`,
    `gelu` (approximate='none', with erf), `gelu_tanh` (approximate='tanh'), `silu`."""

    RELU = "relu"
    GELU = "gelu"
    GELU_TANH = "gelu_tanh"
    SILU = "silu"


class BinaryOp(StrEnum):
    """The elementwise op of an epilogue with its second tensor: `add` (a residual), `mul`
    (a gate)."""

    ADD = "add"
    MUL = "mul"


@irdl_attr_definition
class ActivationAttr(EnumAttribute[Activation], SpacedOpaqueSyntaxAttribute):
    """`#mips.activation<gelu>`; inside a mips op, `activation(gelu)`."""

    name = "mips.activation"


@irdl_attr_definition
class BinaryOpAttr(EnumAttribute[BinaryOp], SpacedOpaqueSyntaxAttribute):
    """`#mips.binary<add>`; inside a mips op, `binary(add, %other : type)`."""

    name = "mips.binary"


class MatmulLikeOp(IRDLOperation):
    """What `mips.matmul` and `mips.batch_matmul` share: operands, flags, epilogue, verifier,
    reify."""

    RANK: ClassVar[int]

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    init = operand_def(TensorType)
    other = opt_operand_def(TensorType)
    """The epilogue's second tensor (with `binary`), of the result's type."""
    result = result_def(TensorType)

    transpose_lhs = opt_prop_def(UnitAttr)
    transpose_rhs = opt_prop_def(UnitAttr)
    activation = opt_prop_def(ActivationAttr)
    binary = opt_prop_def(BinaryOpAttr)
    packed_rhs = opt_prop_def(UnitAttr)

    # Tensors only: no memory is touched, so a dead matmul may be removed.
    traits = traits_def(Pure())

    assembly_format = (
        "(`transpose_lhs` $transpose_lhs^)? (`transpose_rhs` $transpose_rhs^)? "
        "(`packed_rhs` $packed_rhs^)? "
        "`ins` `(` $lhs `,` $rhs `:` type($lhs) `,` type($rhs) `)` "
        "`outs` `(` $init `:` type($init) `)` "
        "(`activation` `(` $activation^ `)`)? "
        "(`binary` `(` $binary^ `,` $other `:` type($other) `)`)? "
        "attr-dict `->` type($result)"
    )

    def __init__(
        self,
        lhs: SSAValue,
        rhs: SSAValue,
        init: SSAValue,
        *,
        transpose_lhs: bool = False,
        transpose_rhs: bool = False,
        activation: Activation | None = None,
        binary: tuple[BinaryOp, SSAValue] | None = None,
        packed_rhs: bool = False,
    ) -> None:
        properties: dict[str, Attribute] = {}
        if transpose_lhs:
            properties["transpose_lhs"] = UnitAttr()
        if transpose_rhs:
            properties["transpose_rhs"] = UnitAttr()
        if packed_rhs:
            properties["packed_rhs"] = UnitAttr()
        if activation is not None:
            properties["activation"] = ActivationAttr(activation)
        other: list[SSAValue] = []
        if binary is not None:
            properties["binary"] = BinaryOpAttr(binary[0])
            other.append(binary[1])
        super().__init__(
            operands=[lhs, rhs, init, other], result_types=[init.type], properties=properties
        )

    @property
    def activation_kind(self) -> Activation | None:
        return self.activation.data if self.activation is not None else None

    @property
    def binary_kind(self) -> BinaryOp | None:
        return self.binary.data if self.binary is not None else None

    @property
    def has_epilogue(self) -> bool:
        return self.activation is not None or self.binary is not None

    def describe_epilogue(self) -> str:
        """`gelu`, `silu, mul`, `add`: the fused steps in order, for reports."""
        return ", ".join(
            step.value for step in (self.activation_kind, self.binary_kind) if step is not None
        )

    @property
    def is_lhs_transposed(self) -> bool:
        return self.transpose_lhs is not None

    @property
    def is_rhs_transposed(self) -> bool:
        return self.transpose_rhs is not None

    @property
    def is_rhs_packed(self) -> bool:
        return self.packed_rhs is not None

    def reify_result_shapes(self) -> tuple[list[Operation], list[Dim]]:
        """The result dims, derived from the operands (see `reify_matmul_dims`); a packed B's
        N is the init's (static)."""
        if self.is_rhs_packed:
            ops, dims = reify_matmul_dims(self.lhs, self.lhs, transpose_lhs=self.is_lhs_transposed)
            assert isinstance(self.init.type, TensorType)
            return ops, [*dims[:-1], self.init.type.get_shape()[-1]]
        return reify_matmul_dims(
            self.lhs,
            self.rhs,
            transpose_lhs=self.is_lhs_transposed,
            transpose_rhs=self.is_rhs_transposed,
        )

    def verify_(self) -> None:
        types: dict[str, Attribute] = {
            "lhs": self.lhs.type,
            "rhs": self.rhs.type,
            "init": self.init.type,
            "result": self.result.type,
        }
        shapes: dict[str, tuple[int, ...]] = {}
        for role, ty in types.items():
            assert isinstance(ty, TensorType)
            if role == "rhs" and self.is_rhs_packed:
                shapes[role] = tuple(ty.get_shape())
                continue
            if ty.get_num_dims() != self.RANK:
                raise VerifyException(f"{role} must be a {self.RANK}-D tensor, got {ty}")
            shapes[role] = tuple(ty.get_shape())
        elements = {role: ty.get_element_type() for role, ty in types.items()}  # type: ignore[union-attr]
        if len(set(elements.values())) != 1:
            listing = ", ".join(f"{role} {el}" for role, el in elements.items())
            raise VerifyException(f"operands and result must share one element type, got {listing}")
        if self.result.type != self.init.type:
            raise VerifyException(
                f"result type {self.result.type} must equal the init type {self.init.type}"
            )
        lhs = logical_shape(shapes["lhs"], self.is_lhs_transposed)
        init = shapes["init"]
        if self.is_rhs_packed:
            self._verify_packed_rhs(lhs[-1], init[-1], shapes["rhs"])
            self._verify_epilogue()
            return
        rhs = logical_shape(shapes["rhs"], self.is_rhs_transposed)
        for axis in range(self.RANK - 2):
            for role, shape in (("rhs", rhs), ("init", init)):
                if not dims_agree(lhs[axis], shape[axis]):
                    raise VerifyException(
                        f"batch mismatch: lhs dim {axis} is {format_dim(lhs[axis])} but {role} "
                        f"dim {axis} is {format_dim(shape[axis])}"
                    )
        error = matmul_shape_error(lhs[-2:], rhs[-2:], init[-2:])
        if error is not None:
            raise VerifyException(error)
        self._verify_epilogue()

    def _verify_epilogue(self) -> None:
        if (self.binary is None) != (self.other is None):
            raise VerifyException("a binary epilogue op and its other tensor go together")
        if self.other is not None and self.other.type != self.result.type:
            raise VerifyException(
                f"the epilogue's other tensor {self.other.type} must have the result type "
                f"{self.result.type}"
            )

    def _verify_packed_rhs(self, k: int, n: int, rhs: tuple[int, ...]) -> None:
        """A packed B: 2-D products only, static K and N, packed_size(K, N) elements."""
        if self.RANK != 2 or self.is_rhs_transposed:
            raise VerifyException("packed_rhs: only a 2-D product, without transpose_rhs")
        if DYNAMIC_INDEX in (k, n):
            raise VerifyException("packed_rhs needs static K and N")
        if rhs != (packed_size(k, n),):
            raise VerifyException(
                f"packed_rhs: rhs must be tensor<{packed_size(k, n)}x..> (K = {k}, N = {n}), "
                f"got shape {list(rhs)}"
            )


@irdl_op_definition
class PackRhsOp(IRDLOperation):
    """`mips.pack_rhs [transpose] %b : tensor<KxNxT> -> tensor<SxT>`: B (stored [N, K] with
    `transpose`, e.g. a linear weight) in the kernel's packed layout, S = packed_size(K, N)
    (kernels/mips_kernels.h, "Pre-packed B"). Run once, at load time, for a constant B."""

    name = "mips.pack_rhs"

    source = operand_def(TensorType)
    result = result_def(TensorType)
    transpose = opt_prop_def(UnitAttr)

    traits = traits_def(Pure())

    assembly_format = (
        "(`transpose` $transpose^)? $source attr-dict `:` type($source) `->` type($result)"
    )

    def __init__(self, source: SSAValue, *, transpose: bool = False) -> None:
        assert isinstance(source.type, TensorType)
        k, n = logical_shape(source.type.get_shape(), transpose)
        result = TensorType(source.type.get_element_type(), [packed_size(k, n)])
        properties: dict[str, Attribute] = {"transpose": UnitAttr()} if transpose else {}
        super().__init__(operands=[source], result_types=[result], properties=properties)

    @property
    def logical_shape(self) -> tuple[int, int]:
        """(K, N) of the B it packs."""
        assert isinstance(self.source.type, TensorType)
        k, n = logical_shape(self.source.type.get_shape(), self.transpose is not None)
        return k, n

    def verify_(self) -> None:
        src, res = self.source.type, self.result.type
        assert isinstance(src, TensorType) and isinstance(res, TensorType)
        if src.get_num_dims() != 2 or DYNAMIC_INDEX in src.get_shape():
            raise VerifyException(f"mips.pack_rhs packs a static 2-D tensor, got {src}")
        if src.get_element_type() != res.get_element_type():
            raise VerifyException("mips.pack_rhs keeps the element type")
        if res.get_shape() != (packed_size(*self.logical_shape),):
            raise VerifyException(
                f"mips.pack_rhs result must be tensor<{packed_size(*self.logical_shape)}x..>"
            )


@irdl_op_definition
class MatmulOp(MatmulLikeOp):
    """`mips.matmul`: `result = init + lhs · rhs` on 2-D tensors, executed by the kernel."""

    name = "mips.matmul"
    RANK: ClassVar[int] = 2


@irdl_op_definition
class BatchMatmulOp(MatmulLikeOp):
    """`mips.batch_matmul`: one `mips.matmul` per index of the leading batch dim, one dispatch."""

    name = "mips.batch_matmul"
    RANK: ClassVar[int] = 3


@irdl_op_definition
class AttentionOp(IRDLOperation):
    """`mips.attention`: torch's `scaled_dot_product_attention` without dropout,
    `softmax(query · keyᵀ · scale + mask [+ causal]) · value`, executed by one kernel per tile
    of query rows (kernels/mips_kernels.h, "Attention").

    Shapes (static): query [*B, H, L, E], key [*B, Hkv, S, E], value [*B, Hkv, S, Ev], result
    [*B, H, L, Ev] (rank 2: no B and H; rank 3: H only); H a multiple of Hkv (query head h
    uses key/value head h / (H / Hkv)). `mask`: an additive mask of the element type,
    broadcastable to [*B, H, L, S], whose batch dims are all 1 or all B's. `causal`: torch's
    is_causal (query i sees keys j <= i). A row that sees no finite score is 0 (torch's
    _safe_softmax)."""

    name = "mips.attention"

    query = operand_def(TensorType)
    key = operand_def(TensorType)
    value = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    result = result_def(TensorType)

    scale = prop_def(FloatAttr)
    causal = opt_prop_def(UnitAttr)

    traits = traits_def(Pure())

    assembly_format = (
        "$query `,` $key `,` $value (`mask` `(` $mask^ `:` type($mask) `)`)? "
        "(`causal` $causal^)? `scale` `(` $scale `)` attr-dict "
        "`:` type($query) `,` type($key) `,` type($value) `->` type($result)"
    )

    def __init__(
        self,
        query: SSAValue,
        key: SSAValue,
        value: SSAValue,
        result_type: Attribute,
        *,
        scale: float,
        mask: SSAValue | None = None,
        causal: bool = False,
    ) -> None:
        properties: dict[str, Attribute] = {"scale": FloatAttr(scale, Float64Type())}
        if causal:
            properties["causal"] = UnitAttr()
        super().__init__(
            operands=[query, key, value, [mask] if mask is not None else []],
            result_types=[result_type],
            properties=properties,
        )

    @property
    def is_causal(self) -> bool:
        return self.causal is not None

    @property
    def scale_value(self) -> float:
        return self.scale.value.data

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The static shapes of the operands and the result, by role."""
        values = {"query": self.query, "key": self.key, "value": self.value,
                  "result": self.result}  # fmt: skip
        if self.mask is not None:
            values["mask"] = self.mask
        shapes = {}
        for role, value in values.items():
            assert isinstance(value.type, TensorType)
            shapes[role] = tuple(value.type.get_shape())
        return shapes

    def verify_(self) -> None:
        shapes = self.shapes()
        for role, shape in shapes.items():
            if DYNAMIC_INDEX in shape:
                dims = "x".join(format_dim(d) for d in shape)
                raise VerifyException(f"mips.attention takes static shapes, {role} is {dims}")
        types = {role: v.type for role, v in (("query", self.query), ("key", self.key),
                 ("value", self.value), ("result", self.result))}  # fmt: skip
        if self.mask is not None:
            types["mask"] = self.mask.type
        elements = {ty.get_element_type() for ty in types.values()}  # type: ignore[union-attr]
        if len(elements) != 1:
            raise VerifyException("query, key, value, mask and result must share one element type")
        _verify_attention_shapes(shapes)


def _verify_attention_shapes(shapes: dict[str, tuple[int, ...]]) -> None:
    q, k, v, out = shapes["query"], shapes["key"], shapes["value"], shapes["result"]
    if len({len(q), len(k), len(v), len(out)}) != 1 or len(q) < 2:
        raise VerifyException("query, key, value and result must have one rank, at least 2")
    *lead, length, depth = q
    if k[-1] != depth or k[:-3] != tuple(lead[:-1]) or v[:-1] != k[:-1]:
        raise VerifyException(
            f"key {list(k)} and value {list(v)} do not fit query {list(q)} ([*B, Hkv, S, E] "
            "and [*B, Hkv, S, Ev] for a query [*B, H, L, E])"
        )
    if out != (*lead, length, v[-1]):
        raise VerifyException(f"result must be {[*lead, length, v[-1]]}, got {list(out)}")
    if len(q) >= 3 and (k[-3] == 0 or q[-3] % k[-3]):
        raise VerifyException(f"{q[-3]} query heads do not group over {k[-3]} key/value heads")
    if "mask" in shapes:
        _verify_mask(shapes["mask"], (*lead, length, k[-2]))


def _verify_mask(mask: tuple[int, ...], scores: tuple[int, ...]) -> None:
    """The mask broadcasts to the scores [*B, H, L, S], its batch dims all 1 or all B's."""
    if len(mask) > len(scores):
        raise VerifyException(f"mask {list(mask)} has more dims than the scores {list(scores)}")
    padded = (1,) * (len(scores) - len(mask)) + mask
    if any(m not in (1, s) for m, s in zip(padded, scores, strict=True)):
        raise VerifyException(f"mask {list(mask)} does not broadcast to {list(scores)}")
    batch = padded[:-3]
    if len(set(batch)) > 1 and batch != scores[:-3]:
        raise VerifyException(
            f"mask {list(mask)}: batch dims must be all 1 or all {list(scores[:-3])}"
        )


Mips = Dialect(
    "mips", [MatmulOp, BatchMatmulOp, PackRhsOp, AttentionOp], [ActivationAttr, BinaryOpAttr]
)
