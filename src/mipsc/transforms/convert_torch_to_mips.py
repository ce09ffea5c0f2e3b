"""`convert-torch-to-mips`: hand the matmul family of a torch-dialect module to the mips dialect.

Each rewritten op becomes `mips.matmul` / `mips.batch_matmul` on builtin tensors between
`torch_c` casts, so the surrounding torch ops are untouched and IREE's torch frontend still sees
valid torch IR around our ops. On the way:
- a transpose of the last two dims feeding an operand (`aten.t`, `transpose.int`, `permute`,
  the weight inside `linear`) becomes a `transpose_*` flag: the kernel reads it by strides;
- leading dims are folded into M (`linear`, N-D · 2-D `matmul`) or into one batch dim, with
  `tensor.collapse_shape` / `expand_shape`, which cost nothing;
- a bias or `beta·input` becomes the init the kernel accumulates into, when that is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from xdsl.context import Context
from xdsl.dialects import arith, cf, func, tensor
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AnyFloat,
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    i64,
)
from xdsl.dialects.linalg.ops import BroadcastOp, FillOp, TransposeOp
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.traits import is_side_effect_free
from xdsl.utils.exceptions import VerifyException

from mipsc.diagnostics import MipscError, argument_name, location_of
from mipsc.dialects import mips, torch, util
from mipsc.dialects.shapes import dims_agree, format_dim
from mipsc.remarks import emit_remark, share_origin
from mipsc.transforms.building import building_before, dim_size, index_constant
from mipsc.transforms.decompose_torch import PART_OF
from mipsc.transforms.torch_values import (
    constant_int,
    constant_int_list,
    constant_number,
    rank_of,
    unsupported_reason,
)
from mipsc.transforms.view_chains import build_view_chain, view_chain

PASS_NAME = "convert-torch-to-mips"

Shape = list[int]
OpT = TypeVar("OpT", bound=Operation)

# --------------------------------------------------------------------------------------------
# Reading torch values
# --------------------------------------------------------------------------------------------


def peel_transpose(value: SSAValue) -> tuple[SSAValue, bool]:
    """(source, True) when `value` is its source with the last two dims swapped, else
    (value, False): `aten.t`, `transpose.int` of the last two dims, or such a `permute`."""
    op = value.owner
    if not isinstance(op, Operation) or not op.operands:
        return value, False
    source = op.operands[0]
    if not isinstance(source.type, torch.ValueTensorType) or not source.type.has_sizes:
        return value, False
    rank = source.type.get_rank()
    if rank < 2 or not _is_swap_of(value.type, source.type):
        return value, False
    last_two = {rank - 2, rank - 1}
    if op.name == "torch.aten.t" and rank == 2:
        return source, True
    if op.name == "torch.aten.transpose.int" and len(op.operands) == 3:
        dims = [constant_int(v) for v in op.operands[1:]]
        if None not in dims and {d % rank for d in dims} == last_two:  # type: ignore[operator]
            return source, True
    if op.name == "torch.aten.permute" and len(op.operands) == 2:
        perm = constant_int_list(op.operands[1])
        swap = [*range(rank - 2), rank - 1, rank - 2]
        if perm is not None and [p % rank for p in perm] == swap:
            return source, True
    return value, False


def _is_swap_of(result: Attribute, source: torch.ValueTensorType) -> bool:
    """Whether `result` is `source` with its last two dims swapped: only then may a transpose
    be read by strides (an ill-typed one would make the kernel read the wrong shape)."""
    if not isinstance(result, torch.ValueTensorType) or not result.has_sizes:
        return False
    shape = list(source.get_shape())
    swapped = [*shape[:-2], shape[-1], shape[-2]]
    got = result.get_shape()
    return (
        result.dtype == source.dtype
        and len(got) == len(swapped)
        and all(dims_agree(a, b) for a, b in zip(got, swapped, strict=True))
    )


# --------------------------------------------------------------------------------------------
# Building builtin-tensor IR
# --------------------------------------------------------------------------------------------


def _reassociation(groups: Sequence[Sequence[int]]) -> ArrayAttr[ArrayAttr[IntegerAttr]]:
    return ArrayAttr(ArrayAttr(IntegerAttr(i, i64) for i in group) for group in groups)


def _product(sizes: Sequence[int]) -> int:
    return DYNAMIC_INDEX if DYNAMIC_INDEX in sizes else math.prod(sizes)


class TensorIRBuilder:
    """Builds builtin-tensor IR at xDSL's implicit builder (ops are inserted as they are
    created): the steps a conversion is made of, each one op or a few."""

    def add(self, op: OpT) -> OpT:
        """`op`, already inserted by the implicit builder (kept for readable call sites)."""
        return op

    def to_builtin(self, value: SSAValue) -> SSAValue:
        return self.add(torch.ToBuiltinTensorOp(value)).results[0]

    def index(self, value: int) -> SSAValue:
        return index_constant(value)

    def dim(self, value: SSAValue, axis: int) -> SSAValue:
        """The size of `axis` as an index value (a constant when static)."""
        return dim_size(value, axis)

    def collapse(self, value: SSAValue, groups: Sequence[Sequence[int]]) -> SSAValue:
        shape = _shape(value)
        out_shape = [_product([shape[i] for i in g]) for g in groups]
        out_type = TensorType(_element(value), out_shape)
        op = tensor.CollapseShapeOp.create(
            operands=[value],
            result_types=[out_type],
            properties={"reassociation": _reassociation(groups)},
        )
        return self.add(op).results[0]

    def expand(
        self,
        value: SSAValue,
        groups: Sequence[Sequence[int]],
        out_shape: Shape,
        sizes: Sequence[SSAValue],
    ) -> SSAValue:
        """Expand to `out_shape`; `sizes` hold the value of every out dim (used when dynamic)."""
        dynamic = [s for s, d in zip(sizes, out_shape, strict=True) if d == DYNAMIC_INDEX]
        out_type = TensorType(_element(value), out_shape)
        op = tensor.ExpandShapeOp(value, dynamic, _reassociation(groups), out_shape, out_type)
        return self.add(op).results[0]

    def empty(self, shape: Shape, element: Attribute, sizes: Sequence[SSAValue]) -> SSAValue:
        dynamic = [s for s, d in zip(sizes, shape, strict=True) if d == DYNAMIC_INDEX]
        return self.add(tensor.EmptyOp(dynamic, TensorType(element, shape))).results[0]

    def zeros(self, shape: Shape, element: Attribute, sizes: Sequence[SSAValue]) -> SSAValue:
        empty = self.empty(shape, element, sizes)
        zero = self.add(arith.ConstantOp(FloatAttr(0.0, element)))  # type: ignore[arg-type]
        return self.add(FillOp([zero.results[0]], [empty], [empty.type])).results[0]

    def broadcast(
        self, value: SSAValue, shape: Shape, sizes: Sequence[SSAValue], added: Sequence[int]
    ) -> SSAValue:
        """`value` repeated along the dims `added` of `shape` (a copy, made by IREE). Its own
        dynamic dims must equal the result's at run time: a `?` that is 1 there would need a
        broadcast decided at run time, which mipsc (like torch.export, which assumes dynamic
        dims are not 0 or 1) does not make; a check stops it instead of reading out of bounds."""
        kept = [d for i, d in enumerate(shape) if i not in added]
        kept_sizes = [size for i, size in enumerate(sizes) if i not in added]
        self.check_same_sizes(value, kept_sizes)
        if _shape(value) != kept:
            # linalg.broadcast wants the kept dims typed alike: a `?` that the other side
            # knows (the shapes were checked to agree) is cast to it, and the reverse.
            cast = tensor.CastOp.create(
                operands=[value], result_types=[TensorType(_element(value), kept)]
            )
            value = self.add(cast).results[0]
        if not added:
            # Nothing to repeat: the value itself (a copy would let IREE fold the sizes the
            # checks compare, and size the kernel's view of it from the result's).
            return value
        init = self.empty(shape, _element(value), sizes)
        dims = DenseArrayBase.from_list(i64, list(added))
        return self.add(BroadcastOp(value, init, dims)).results[0]

    def check_same_sizes(self, value: SSAValue, sizes: Sequence[SSAValue]) -> None:
        """A run-time check (`cf.assert`, kept by --iree-opt-strip-assertions=false) that
        each dynamic dim of `value` equals the size it is meant to have."""
        for axis, size in enumerate(_shape(value)):
            if size == DYNAMIC_INDEX:
                same = arith.CmpiOp(self.dim(value, axis), sizes[axis], "eq")
                cf.AssertOp(
                    same,
                    f"a tensor combined with a matmul's result differs from it in dynamic dim "
                    f"{axis}: inputs whose dims were exported as one size must be given one "
                    "size (mipsc, like torch.export, assumes dynamic dims do not broadcast)",
                )

    def transpose(self, value: SSAValue, perm: Sequence[int]) -> SSAValue:
        """`value` with its dims permuted (a copy, made by IREE)."""
        shape = _shape(value)
        sizes = [self.dim(value, p) for p in perm]
        init = self.empty([shape[p] for p in perm], _element(value), sizes)
        op = TransposeOp(value, init, DenseArrayBase.from_list(i64, list(perm)))
        return self.add(op).results[0]

    def product(
        self,
        lhs: SSAValue,
        rhs: SSAValue,
        init: SSAValue,
        transpose_lhs: bool,
        transpose_rhs: bool,
    ) -> SSAValue:
        cls = mips.BatchMatmulOp if _rank(init) == 3 else mips.MatmulOp
        op = cls(lhs, rhs, init, transpose_lhs=transpose_lhs, transpose_rhs=transpose_rhs)
        return self.add(op).results[0]


def _shape(value: SSAValue) -> Shape:
    assert isinstance(value.type, TensorType)
    return list(value.type.get_shape())


def _rank(value: SSAValue) -> int:
    return len(_shape(value))


def _element(value: SSAValue) -> Attribute:
    assert isinstance(value.type, TensorType)
    return value.type.get_element_type()


@dataclass
class Operand:
    """A matmul operand as stored (builtin tensor), and whether it is stored transposed."""

    value: SSAValue
    transposed: bool

    @property
    def rank(self) -> int:
        return _rank(self.value)

    def rows_cols(self) -> tuple[int, int]:
        """The stored sizes of the logical (rows, cols) of the matrix part."""
        r, c = _shape(self.value)[-2:]
        return (c, r) if self.transposed else (r, c)

    def stored_axis(self, axis: int) -> int:
        """The stored axis that holds logical `axis` (negative counts from the end)."""
        axis %= self.rank
        if self.transposed and axis >= self.rank - 2:
            return 2 * self.rank - 3 - axis  # rank - 2 <-> rank - 1
        return axis

    def size(self, tb: TensorIRBuilder, axis: int) -> SSAValue:
        """The size of logical `axis` as an index value: every size of an operand is read
        through here, since a transposed one stores its last two dims swapped."""
        return tb.dim(self.value, self.stored_axis(axis))


def _batch_sizes(tb: TensorIRBuilder, operands: Sequence[Operand], batch: Shape) -> list[SSAValue]:
    """An index value per dim of the result's batch shape, read from an operand that has it."""
    sizes: list[SSAValue] = []
    for j, size in enumerate(batch):
        if size != DYNAMIC_INDEX:
            sizes.append(tb.index(size))
            continue
        for operand in operands:
            nb = operand.rank - 2
            i = j - (len(batch) - nb)
            if i >= 0 and _shape(operand.value)[i] != 1:
                sizes.append(tb.dim(operand.value, i))
                break
        else:  # pragma: no cover - torch's result type comes from the operands
            raise AssertionError("a dynamic batch dim that no operand has")
    return sizes


def _to_batch(
    tb: TensorIRBuilder, operand: Operand, batch: Shape, batch_sizes: Sequence[SSAValue]
) -> Operand:
    """The operand as a rank-3 [P, r, c] tensor over the flattened result batch `batch`,
    broadcasting (copying) the batch dims it lacks or has as 1."""
    value = operand.value
    shape = _shape(value)
    nb, pad = len(shape) - 2, len(batch) - (len(shape) - 2)
    repeated = [pad + i for i in range(nb) if shape[i] == 1 and batch[pad + i] != 1]
    if pad or repeated:
        # Drop the repeated unit dims (merged into the next kept dim), then broadcast.
        kept = [i for i in range(len(shape)) if pad + i not in repeated]
        groups = _merge_into_kept(len(shape), kept)
        if len(groups) != len(shape):
            value = tb.collapse(value, groups)
        full = [*batch, *shape[-2:]]
        sizes = [*batch_sizes, tb.dim(value, _rank(value) - 2), tb.dim(value, _rank(value) - 1)]
        value = tb.broadcast(value, full, sizes, [*range(pad), *repeated])
    if len(batch) != 1:
        value = tb.collapse(value, [list(range(len(batch))), [len(batch)], [len(batch) + 1]])
    return Operand(value, operand.transposed)


def emit_matmul(
    tb: TensorIRBuilder,
    lhs: Operand,
    rhs: Operand,
    out_type: TensorType[Attribute],
    init: SSAValue | None = None,
) -> SSAValue:
    """`lhs · rhs` with torch.matmul's semantics for ranks ≥ 1 (1-D operands are vectors,
    batch dims broadcast), as one mips op; the result has `out_type`. `init`, when given, has
    the shape of the result and is accumulated into."""
    lhs_vector, rhs_vector = lhs.rank == 1, rhs.rank == 1
    lhs, rhs = _vector_as_matrix(tb, lhs, 0), _vector_as_matrix(tb, rhs, 1)
    if init is not None and (lhs_vector or rhs_vector):
        init = _unit_dims_for_vectors(tb, init, lhs_vector, rhs_vector)
    if rhs.rank == 2 and lhs.rank > 2 and not lhs.transposed:
        full = [*out_type.get_shape(), 1] if rhs_vector else list(out_type.get_shape())
        result = _product_folded_into_rows(tb, lhs, rhs, full, init)
    elif lhs.rank == 2 and rhs.rank == 2:
        element = out_type.get_element_type()
        m, n = lhs.rows_cols()[0], rhs.rows_cols()[1]
        m_size, n_size = lhs.size(tb, -2), rhs.size(tb, -1)
        result = _emit_2d(tb, lhs, rhs, element, m, n, n_size, init, m_size)
    else:
        result = _batched_product(tb, lhs, rhs, out_type, init)
    result = _drop_vector_dims(tb, result, lhs_vector, rhs_vector)
    if result.type != out_type:
        # The operands may leave `?` a dim that the result type knows (or the reverse).
        result = tb.add(tensor.CastOp.create(operands=[result], result_types=[out_type])).results[0]
    return result


def _vector_as_matrix(tb: TensorIRBuilder, operand: Operand, unit_axis: int) -> Operand:
    """A 1-D operand [K] as a matrix: [1, K] as lhs (unit_axis 0), [K, 1] as rhs (1)."""
    if operand.rank != 1:
        return operand
    k = _shape(operand.value)[0]
    shape = [1, k] if unit_axis == 0 else [k, 1]
    sizes = [tb.index(1), tb.dim(operand.value, 0)]
    sizes = sizes if unit_axis == 0 else sizes[::-1]
    return Operand(tb.expand(operand.value, [[0, 1]], shape, sizes), False)


def _product_folded_into_rows(
    tb: TensorIRBuilder, lhs: Operand, rhs: Operand, full: Shape, init: SSAValue | None
) -> SSAValue:
    """[..., M, K] · [K, N]: the leading dims folded into M, one 2-D product, unfolded. The
    product is typed from the result's dims `full` (which know every dim either operand
    knows), so that folding and unfolding agree on which dims are static."""
    lead = full[:-2]
    lead_sizes = [lhs.size(tb, i) for i in range(len(lead))]
    flat = Operand(tb.collapse(lhs.value, [list(range(lhs.rank - 1)), [lhs.rank - 1]]), False)
    flat_init = None
    if init is not None:
        flat_init = tb.collapse(init, [list(range(_rank(init) - 1)), [_rank(init) - 1]])
    element = _element(lhs.value)
    n_size = rhs.size(tb, -1)
    product = _emit_2d(tb, flat, rhs, element, _product(full[:-1]), full[-1], n_size, flat_init)
    sizes = [*lead_sizes, lhs.size(tb, -2), n_size]
    groups = [list(range(len(lead) + 1)), [len(lead) + 1]]
    return tb.expand(product, groups, full, sizes)


def _batched_product(
    tb: TensorIRBuilder,
    lhs: Operand,
    rhs: Operand,
    out_type: TensorType[Attribute],
    init: SSAValue | None,
) -> SSAValue:
    """Operands with batch dims (broadcast between them): one batch_matmul over the batch
    flattened into one dim. Vector dims are trailing, so the result's leading dims are the
    batch dims."""
    batch = list(out_type.get_shape())[: max(lhs.rank, rhs.rank) - 2]
    batch_sizes = _batch_sizes(tb, [lhs, rhs], batch)
    lhs3 = _to_batch(tb, lhs, batch, batch_sizes)
    rhs3 = _to_batch(tb, rhs, batch, batch_sizes)
    m, n = lhs.rows_cols()[0], rhs.rows_cols()[1]
    m_size, n_size = lhs.size(tb, -2), rhs.size(tb, -1)
    flat_groups = [list(range(len(batch))), [len(batch)], [len(batch) + 1]]
    if init is None:
        flat_size = batch_sizes[0] if len(batch) == 1 else tb.dim(lhs3.value, 0)
        element = out_type.get_element_type()
        init = tb.zeros([_product(batch), m, n], element, [flat_size, m_size, n_size])
    elif len(batch) != 1:
        init = tb.collapse(init, flat_groups)
    product = tb.product(lhs3.value, rhs3.value, init, lhs3.transposed, rhs3.transposed)
    if len(batch) == 1:
        return product
    return tb.expand(product, flat_groups, [*batch, m, n], [*batch_sizes, m_size, n_size])


def _drop_vector_dims(
    tb: TensorIRBuilder, result: SSAValue, lhs_vector: bool, rhs_vector: bool
) -> SSAValue:
    """The result without the unit dims that stood for vectors: [..., 1, N] -> [..., N],
    [..., M, 1] -> [..., M], [1, 1] -> []."""
    if not (lhs_vector or rhs_vector):
        return result
    rank = _rank(result)
    if lhs_vector and rhs_vector:
        return tb.collapse(result, [])
    return tb.collapse(result, [[i] for i in range(rank - 2)] + [[rank - 2, rank - 1]])


def _unit_dims_for_vectors(
    tb: TensorIRBuilder, init: SSAValue, lhs_vector: bool, rhs_vector: bool
) -> SSAValue:
    """Give an init shaped like torch's result the unit dims that the vectors became."""
    shape = _shape(init)
    rank = len(shape)
    sizes = [tb.dim(init, i) for i in range(rank)]
    one = tb.index(1)
    if lhs_vector and rhs_vector:
        return tb.expand(init, [], [1, 1], [one, one])
    groups = [[i] for i in range(rank - 1)] + [[rank - 1, rank]]
    if lhs_vector:  # [..., N] -> [..., 1, N]
        return tb.expand(init, groups, [*shape[:-1], 1, shape[-1]], [*sizes[:-1], one, sizes[-1]])
    return tb.expand(init, groups, [*shape, 1], [*sizes, one])  # [..., M] -> [..., M, 1]


def _emit_2d(
    tb: TensorIRBuilder,
    lhs: Operand,
    rhs: Operand,
    element: Attribute,
    m: int,
    n: int,
    n_size: SSAValue,
    init: SSAValue | None,
    m_size: SSAValue | None = None,
) -> SSAValue:
    if init is None:
        if m_size is None:
            m_size = lhs.size(tb, -2)
        init = tb.zeros([m, n], element, [m_size, n_size])
    return tb.product(lhs.value, rhs.value, init, lhs.transposed, rhs.transposed)


# --------------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------------


class TorchMatmulPattern(RewritePattern):
    """Shared flow of every pattern: check the types, build, replace, clean up transposes."""

    OP_TYPE: type[torch.MatmulFamilyOp]
    MATRIX_OPERANDS: tuple[int, ...] = (0, 1)
    OPERAND_COUNTS: tuple[int, ...] = (2,)
    """How many operands torch-mlir gives the op; any other form is left alone."""

    def operand_ranks_ok(self, ranks: list[int]) -> bool:
        return all(r >= 1 for r in ranks)

    def unsupported(self, op: Operation) -> str | None:
        """Why the kernel cannot take `op`, or None; checked before anything is built."""
        if len(op.operands) not in self.OPERAND_COUNTS or len(op.results) != 1:
            return (
                f"{len(op.operands)} operand(s) and {len(op.results)} result(s) are not "
                "torch-mlir's form of this op"
            )
        tensors = [op.operands[i] for i in self.MATRIX_OPERANDS]
        reason = unsupported_reason(*(v.type for v in tensors), op.results[0].type)
        if reason is None and not self.operand_ranks_ok([rank_of(v) for v in tensors]):
            ranks = ", ".join(str(rank_of(v)) for v in tensors)
            reason = f"operand ranks ({ranks}) are not supported"
        return reason

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: torch.MatmulFamilyOp, rewriter: PatternRewriter) -> None:
        if not isinstance(op, self.OP_TYPE):  # the family shares this flow; one class per op
            return
        check_one_dtype(op, [op.operands[i] for i in self.MATRIX_OPERANDS])
        if (reason := self.unsupported(op)) is not None:
            emit_remark(op, PASS_NAME, f"left on IREE's path: {reason}", routed=_counted(op, False))
            return
        result_type = op.results[0].type
        assert isinstance(result_type, torch.ValueTensorType)
        # Built for the shape the operands make: it may know dims the result type leaves `?`.
        out_type = TensorType(result_type.dtype, _refined_result(op))
        with building_before(rewriter, op) as built:
            value = self.build(TensorIRBuilder(), op, out_type)
            if value is not None:
                value = _cast_to(value, result_type.to_builtin())
                back = torch.FromBuiltinTensorOp(value, result_type)
        if value is None:
            _erase_all(rewriter, built)
            return
        new_ops = _drop_unused(rewriter, built, back)
        emit_remark(op, PASS_NAME, describe_routing(op, new_ops), routed=_counted(op, True))
        peeled = [v.owner for v in op.operands if isinstance(v.owner, Operation)]
        share_origin(op, *(new_op for new_op in new_ops if isinstance(new_op, mips.MatmulLikeOp)))
        rewriter.replace(op, [], [back.results[0]])
        for maybe_transpose in peeled:
            if (
                maybe_transpose.parent is not None
                and all(not r.uses for r in maybe_transpose.results)
                and maybe_transpose.name in TRANSPOSE_OPS
            ):
                rewriter.erase(maybe_transpose)

    def operand(self, tb: TensorIRBuilder, value: SSAValue, flip: bool = False) -> Operand:
        source, transposed = peel_transpose(value)
        builtin = builtin_operand(tb, source)
        return Operand(builtin, transposed ^ flip)

    def build(
        self, tb: TensorIRBuilder, op: Operation, out_type: TensorType[Attribute]
    ) -> SSAValue | None:
        raise NotImplementedError


def check_one_dtype(op: Operation, operands: Sequence[SSAValue]) -> None:
    """A product of two float dtypes is a MipscError located at `op`, naming the function
    input that brought the odd one (`input 1 (%arg0) is bf16; the other operand is f32`).

    torch multiplies tensors of one dtype (eager torch refuses `bf16 @ f32`), but torch.export
    traces a bf16 input to an f32 model's Linear into such an op, and iree-compile then fails
    on it deep in its lowering ("failed to legalize operation 'torch.aten.mm'")."""
    dtypes = [_element_dtype(v) for v in operands]
    if None in dtypes or len(set(dtypes)) < 2 or not any(isinstance(t, AnyFloat) for t in dtypes):
        return  # (integer products of two widths stay on IREE's path, with a remark)
    inputs = [_function_input(v) for v in operands]
    named = [(i, argument) for i, argument in enumerate(inputs) if argument is not None]
    kinds = " and ".join(map(str, dtypes))
    if len(named) == 1:
        at, argument = named[0]
        have, want = dtypes[at], next(t for t in dtypes if t != dtypes[at])
        said = f"{argument_name(argument)} is {have}, where the other operand is {want}"
        fix = f"give that input as {want} (x.to(torch.{_TORCH_DTYPES.get(str(want), want)}))"
        if isinstance(have, AnyFloat):
            fix += (
                f", or export the model in {have} (model.to(torch."
                f"{_TORCH_DTYPES.get(str(have), have)}))"
            )
    else:
        said = ", ".join(
            f"{argument_name(a) if a else _operand_name(i, v)} is {t}"
            for i, (a, v, t) in enumerate(zip(inputs, operands, dtypes, strict=True))
        )
        which = "input" if named else "operand"
        fix = f"convert one {which} to the other's dtype before the product"
    raise MipscError(
        f"'{op.name}' multiplies {kinds} tensors, which torch does not do (a product takes "
        f"one dtype): {said}",
        location_of(op),
        [fix],
    )


def _operand_name(index: int, value: SSAValue) -> str:
    """`operand 2 (weight '1.weight')` for a parameter the export reads from a global (named
    as the module's state_dict names it), `operand 2 (a weight)` for an inline one, else
    `operand 2`."""
    owner = value.owner
    if isinstance(owner, torch.FromBuiltinTensorOp) and isinstance(
        load := owner.operand.owner, util.GlobalLoadOp
    ):
        name = load.global_.root_reference.data.removeprefix("__auto.")
        return f"operand {index + 1} (weight '{name}')"
    if isinstance(owner, torch.ValueTensorLiteralOp):
        return f"operand {index + 1} (a weight)"
    return f"operand {index + 1}"


_TORCH_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64"}


def _float_dtype(value: SSAValue) -> Attribute | None:
    ty = value.type
    if isinstance(ty, torch.ValueTensorType) and ty.has_dtype and isinstance(ty.dtype, AnyFloat):
        return ty.dtype
    return None


def _element_dtype(value: SSAValue) -> Attribute | None:
    """The float or integer element type of a torch tensor value, or None."""
    ty = value.type
    if isinstance(ty, torch.ValueTensorType) and ty.has_dtype:
        if isinstance(ty.dtype, AnyFloat | IntegerType):
            return ty.dtype
    return None


def _function_input(value: SSAValue) -> BlockArgument | None:
    """The function argument `value` comes from through ops of one tensor operand of its
    dtype (views, transposes, elementwise ops), or None."""
    while isinstance(value.owner, Operation):
        sources = [v for v in value.owner.operands if isinstance(v.type, torch.ValueTensorType)]
        if len(sources) != 1 or _element_dtype(sources[0]) != _element_dtype(value):
            return None
        value = sources[0]
    if isinstance(value, BlockArgument) and isinstance(value.owner.parent_op(), func.FuncOp):
        return value
    return None


def builtin_operand(tb: TensorIRBuilder, value: SSAValue) -> SSAValue:
    """`value` as a builtin tensor. When views that move data lead to it from another tensor
    (the heads of attention), it is rebuilt from that tensor as builtin ops, which the
    lowering can read by strides instead of copying (view_chains); from the builtin tensor
    itself when it is a product's result, whose kernel may then write it by strides."""
    chain = view_chain(value)
    if chain is None:
        return tb.to_builtin(value)
    base = chain[0].operands[0]
    if isinstance(base.owner, torch.FromBuiltinTensorOp):  # a product's result: connect to it
        return build_view_chain(base.owner.operands[0], chain)
    return build_view_chain(tb.to_builtin(base), chain)


def _cast_to(value: SSAValue, ty: Attribute) -> SSAValue:
    """Builds `value` as `ty` (the operands may know a dim that torch's type leaves `?`)."""
    if value.type == ty:
        return value
    return tensor.CastOp.create(operands=[value], result_types=[ty]).results[0]


def _erase_all(rewriter: PatternRewriter, built: list[Operation]) -> None:
    """Undo a build that ended in a remark instead of a rewrite."""
    for new_op in reversed(built):
        rewriter.erase(new_op)


def _drop_unused(
    rewriter: PatternRewriter, built: list[Operation], root: Operation
) -> list[Operation]:
    """The ops built that `root` needs: without the side-effect-free ones whose results
    nothing uses (sizes that turned out static, for instance)."""
    live: list[Operation] = []
    for new_op in reversed(built):
        unused = new_op is not root and all(not r.uses for r in new_op.results)
        if unused and new_op.results and is_side_effect_free(new_op):
            rewriter.erase(new_op)
            continue
        live.append(new_op)
    return live[::-1]


def _refined_result(op: torch.MatmulFamilyOp) -> Shape:
    """The op's result shape with every dim its operands know; a mismatch (which the verifier
    reports before any pass, unless the pass runs on unverified IR) is a located error."""
    try:
        shape = op.refined_result_shape()
    except VerifyException as err:
        raise MipscError(f"'{op.name}' op {err}", location_of(op)) from None
    assert shape is not None  # unsupported() checked the shapes are known
    return shape


def _counted(op: Operation, routed: bool) -> bool | None:
    """`routed` for `--report`, or None for a product a decomposition made (decompose-torch's
    remark on the op it came from counts it; PART_OF)."""
    return None if PART_OF in op.attributes else routed


def describe_routing(op: Operation, new_ops: Sequence[Operation]) -> str:
    """`(8x32, 16x32, 16) f32 -> mips.matmul transpose_rhs accumulate`: the operand shapes,
    the dtype, and what it became."""
    shapes = []
    for value in op.operands:
        if isinstance(value.type, torch.ValueTensorType) and value.type.has_sizes:
            shapes.append("x".join(format_dim(d) for d in value.type.get_shape()) or "scalar")
    dtype = op.results[0].type.dtype  # type: ignore[union-attr]
    products = []
    for new_op in new_ops:
        if isinstance(new_op, mips.MatmulLikeOp):
            flags = [
                flag
                for flag, on in (
                    ("transpose_lhs", new_op.is_lhs_transposed),
                    ("transpose_rhs", new_op.is_rhs_transposed),
                    ("accumulate", not mips.is_zero_init(new_op.init)),
                )
                if on
            ]
            products.append(" ".join([new_op.name, *flags]))
    return f"({', '.join(shapes)}) {dtype} -> {', '.join(products)}"


TRANSPOSE_OPS = ("torch.aten.t", "torch.aten.transpose.int", "torch.aten.permute")


class ConvertMm(TorchMatmulPattern):
    """`aten.mm`: [M, K] · [K, N]."""

    OP_TYPE = torch.AtenMmOp

    def operand_ranks_ok(self, ranks: list[int]) -> bool:
        return ranks == [2, 2]

    def build(
        self, tb: TensorIRBuilder, op: Operation, out_type: TensorType[Attribute]
    ) -> SSAValue:
        return emit_matmul(
            tb, self.operand(tb, op.operands[0]), self.operand(tb, op.operands[1]), out_type
        )


class ConvertBmm(ConvertMm):
    """`aten.bmm`: [B, M, K] · [B, K, N], one dispatch over the batch."""

    OP_TYPE = torch.AtenBmmOp

    def operand_ranks_ok(self, ranks: list[int]) -> bool:
        return ranks == [3, 3]


class ConvertMv(ConvertMm):
    """`aten.mv`: [M, K] · [K]."""

    OP_TYPE = torch.AtenMvOp

    def operand_ranks_ok(self, ranks: list[int]) -> bool:
        return ranks == [2, 1]


class ConvertMatmul(ConvertMm):
    """`aten.matmul`: every rank combination of torch.matmul, broadcast batch dims included."""

    OP_TYPE = torch.AtenMatmulOp

    def operand_ranks_ok(self, ranks: list[int]) -> bool:
        return all(r >= 1 for r in ranks)


class ConvertLinear(TorchMatmulPattern):
    """`aten.linear(x, w, bias)`: x · wᵀ (+ bias). The [N, K] weight is read transposed by
    strides; the bias, broadcast to the output, is the init the kernel accumulates into."""

    OP_TYPE = torch.AtenLinearOp
    OPERAND_COUNTS = (2, 3)

    def operand_ranks_ok(self, ranks: list[int]) -> bool:
        return ranks[0] >= 1 and ranks[1] == 2

    def build(
        self, tb: TensorIRBuilder, op: Operation, out_type: TensorType[Attribute]
    ) -> SSAValue | None:
        x = self.operand(tb, op.operands[0])
        w = self.operand(tb, op.operands[1], flip=True)
        bias = op.operands[2] if len(op.operands) > 2 else None
        if bias is None or isinstance(bias.type, torch.NoneType):
            return emit_matmul(tb, x, w, out_type)
        if unsupported_reason(bias.type, op.results[0].type) is not None or rank_of(bias) > 1:
            emit_remark(
                op, PASS_NAME, "left on IREE's path: unusual bias", routed=_counted(op, False)
            )
            return None
        sizes = [x.size(tb, i) for i in range(x.rank - 1)] + [w.size(tb, -1)]
        init = broadcast_to(tb, tb.to_builtin(bias), out_type, sizes)
        return emit_matmul(tb, x, w, out_type, init)


def _torch_op(name: str, operands: Sequence[SSAValue], result_type: Attribute) -> Operation:
    """A torch op without a definition of its own (default syntax), e.g. `aten.mul.Scalar`."""
    return torch.op_class(name).create(operands=operands, result_types=[result_type])


class ConvertAddmmLike(TorchMatmulPattern):
    """`beta·input + alpha·(a · b)`: `addmm` (2-D) and `baddbmm` (batched).

    With alpha = 1 (the usual case) `beta·input`, broadcast to the output, is the init the kernel
    accumulates into. Otherwise the product gets a zero init and torch's own `add.Tensor(beta·
    input, product, alpha)` combines them, so every alpha and beta keeps torch's semantics.
    """

    OP_TYPE = torch.AtenAddmmOp
    MATRIX_OPERANDS = (1, 2)
    OPERAND_COUNTS = (5,)
    RANK = 2

    def operand_ranks_ok(self, ranks: list[int]) -> bool:
        return ranks == [self.RANK, self.RANK]

    def unsupported(self, op: Operation) -> str | None:
        if (reason := super().unsupported(op)) is not None:
            return reason
        if (reason := unsupported_reason(op.operands[0].type, op.results[0].type)) is not None:
            return f"input {reason}"
        return None

    def build(
        self, tb: TensorIRBuilder, op: Operation, out_type: TensorType[Attribute]
    ) -> SSAValue | None:
        bias, lhs, rhs, beta, alpha = op.operands
        a, b = self.operand(tb, lhs), self.operand(tb, rhs)
        alpha_is_one = constant_number(alpha) == 1.0
        if constant_number(beta) == 0.0:
            # torch ignores the input when beta = 0: its NaN and inf must not reach the result.
            product = self.product(tb, a, b, out_type, None)
            return product if alpha_is_one else _scaled(tb, product, alpha, out_type)
        scaled = bias
        if constant_number(beta) != 1.0:
            scaled = tb.add(_torch_op("torch.aten.mul.Scalar", [bias, beta], bias.type)).results[0]
        if alpha_is_one:
            sizes = [a.size(tb, -2), b.size(tb, -1)]
            if out_type.get_num_dims() == 3:
                sizes.insert(0, a.size(tb, 0))
            init = broadcast_to(tb, tb.to_builtin(scaled), out_type, sizes)
            return self.product(tb, a, b, out_type, init)
        result_type = torch.ValueTensorType.from_builtin(out_type)
        product = self.product(tb, a, b, out_type, None)
        product_t = tb.add(torch.FromBuiltinTensorOp(product, result_type)).results[0]
        add = _torch_op("torch.aten.add.Tensor", [scaled, product_t, alpha], result_type)
        return tb.to_builtin(tb.add(add).results[0])

    def product(
        self,
        tb: TensorIRBuilder,
        a: Operand,
        b: Operand,
        out_type: TensorType[Attribute],
        init: SSAValue | None,
    ) -> SSAValue:
        return emit_matmul(tb, a, b, out_type, init)


def _scaled(
    tb: TensorIRBuilder, value: SSAValue, factor: SSAValue, out_type: TensorType[Attribute]
) -> SSAValue:
    """`factor · value` by torch's own `mul.Scalar` (`value` a builtin tensor of `out_type`)."""
    result_type = torch.ValueTensorType.from_builtin(out_type)
    value_t = tb.add(torch.FromBuiltinTensorOp(value, result_type)).results[0]
    mul = tb.add(_torch_op("torch.aten.mul.Scalar", [value_t, factor], result_type))
    return tb.to_builtin(mul.results[0])


class ConvertBaddbmm(ConvertAddmmLike):
    """`baddbmm`: `beta·input + alpha·bmm(a, b)`."""

    OP_TYPE = torch.AtenBaddbmmOp
    RANK = 3


class ConvertAddbmm(ConvertAddmmLike):
    """`addbmm`: `beta·input + alpha·Σ_b a[b] · b[b]`, one 2-D product over the concatenated
    K: [M, B·K] · [B·K, N], where a's [M, B·K] view needs one transposed copy."""

    OP_TYPE = torch.AtenAddbmmOp
    RANK = 3

    def product(
        self,
        tb: TensorIRBuilder,
        a: Operand,
        b: Operand,
        out_type: TensorType[Attribute],
        init: SSAValue | None,
    ) -> SSAValue:
        # [B, M, K] (or stored [B, K, M]) -> [M, B, K] -> [M, B·K]
        moved = tb.transpose(a.value, [2, 0, 1] if a.transposed else [1, 0, 2])
        lhs = Operand(tb.collapse(moved, [[0], [1, 2]]), False)
        # [B, K, N] (or stored [B, N, K] -> [B, K, N]) -> [B·K, N]
        b_value = tb.transpose(b.value, [0, 2, 1]) if b.transposed else b.value
        rhs = Operand(tb.collapse(b_value, [[0, 1], [2]]), False)
        return emit_matmul(tb, lhs, rhs, out_type, init)


def broadcast_to(
    tb: TensorIRBuilder, value: SSAValue, out_type: TensorType[Attribute], sizes: Sequence[SSAValue]
) -> SSAValue:
    """`value` (broadcastable to `out_type` the torch way) at its full shape; `sizes` hold the
    output's dims."""
    out_shape = list(out_type.get_shape())
    shape = _shape(value)
    pad = len(out_shape) - len(shape)
    repeated = [pad + i for i in range(len(shape)) if shape[i] == 1 and out_shape[pad + i] != 1]
    if repeated:
        kept = [i for i in range(len(shape)) if pad + i not in repeated]
        value = tb.collapse(value, _merge_into_kept(len(shape), kept) if kept else [])
    return tb.broadcast(value, out_shape, sizes, [*range(pad), *repeated])


def _merge_into_kept(rank: int, kept: Sequence[int]) -> list[list[int]]:
    """Reassociation groups that merge every dim not in `kept` into the next kept dim (or the
    last one)."""
    groups: list[list[int]] = []
    pending: list[int] = []
    for i in range(rank):
        pending.append(i)
        if i in kept:
            groups.append(pending)
            pending = []
    if pending:
        groups[-1].extend(pending)
    return groups


TORCH_PATTERNS: tuple[type[TorchMatmulPattern], ...] = (
    ConvertMm,
    ConvertBmm,
    ConvertMv,
    ConvertMatmul,
    ConvertLinear,
    ConvertAddmmLike,
    ConvertBaddbmm,
    ConvertAddbmm,
)

MATMUL_FAMILY_OPS = frozenset(p.OP_TYPE.name for p in TORCH_PATTERNS)
"""The torch ops this pass routes to the kernel when their types allow it."""


@dataclass(frozen=True)
class ConvertTorchToMipsPass(ModulePass):
    """Rewrite the torch matmul family the kernel library supports into mips ops."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier([p() for p in TORCH_PATTERNS]),
            apply_recursively=False,
        ).rewrite_module(op)
