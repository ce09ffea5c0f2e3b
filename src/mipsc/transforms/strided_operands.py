"""Matmul operands read by strides from the tensor they are a view of (for `lower-mips-to-call`).

An operand built from another tensor by `tensor.collapse_shape` / `expand_shape`,
`linalg.transpose` and `tensor.extract_slice` with static shapes (as `convert-torch-to-mips`
rebuilds the views of attention's heads: view_chains) is, element for element, that tensor read
at an offset with some strides. When each of the operand's row and column dims has one stride,
the dispatch binds the tensor itself and the entry hands the kernel the tile's offset and
strides: no copy. The batch dim of a batched operand may be several dims of the tensor (the
batch and head dims of [B, S, H, D] in [B·H, S, D]), each with its own stride: the entry splits
the batch index among them.

A view is described by, per dim of the operand as stored, its parts: (size, stride) pairs,
outermost first, the size-1 parts left out (a dim of size 1 has none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects import arith, memref, tensor
from xdsl.dialects.builtin import DYNAMIC_INDEX, IndexType, IntegerAttr, TensorType
from xdsl.dialects.linalg.ops import TransposeOp
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter

from mipsc.transforms.view_chains import COPY_OPS, MOVING_OPS, RESHAPE_OPS

Part = tuple[int, int]
"""(size, stride) of one dim of the viewed tensor, in elements."""
Dim = tuple[Part, ...]


@dataclass(frozen=True)
class StridedView:
    """An operand as `base` read at `offset` with the `dims` of the operand as stored."""

    base: Attribute
    """The viewed tensor's type (static shape, row-major)."""
    offset: int
    dims: tuple[Dim, ...]

    def stride(self, axis: int) -> int:
        """The stride of a row or column dim (one part; 0 for a dim of size 1)."""
        parts = self.dims[axis]
        return parts[0][1] if parts else 0


VIEW_OPS = (tensor.CollapseShapeOp, tensor.ExpandShapeOp, TransposeOp, tensor.ExtractSliceOp)
"""The ops a view is made of; a transpose or a slice among them is what makes it worth folding."""


def _static(value: SSAValue) -> list[int] | None:
    ty = value.type
    if not isinstance(ty, TensorType):
        return None
    shape = list(ty.get_shape())
    return None if DYNAMIC_INDEX in shape else shape


def _source(op: Operation) -> SSAValue:
    return op.operands[0]


def view_ops(value: SSAValue) -> list[Operation]:
    """The view ops from the tensor `value` is viewed from to `value`, in order."""
    chain: list[Operation] = []
    while isinstance(value.owner, VIEW_OPS) and _static(_source(value.owner)) is not None:
        chain.append(value.owner)
        value = _source(value.owner)
    return chain[::-1]


def fold_view(value: SSAValue) -> tuple[SSAValue, StridedView] | None:
    """The tensor `value` views and how, when the kernel can read it by strides (rows and
    columns of one stride each) and the view moves data (else IREE makes no copy anyway)."""
    chain = view_ops(value)
    if not any(isinstance(op, TransposeOp | tensor.ExtractSliceOp) for op in chain):
        return None
    base = _source(chain[0])
    shape = _static(base)
    assert shape is not None
    dims = _row_major(shape)
    offset = 0
    for op in chain:
        stepped = _step(op, dims, offset)
        if stepped is None:
            return None
        dims, offset = stepped
    if any(len(d) > 1 for d in dims[-2:]):
        return None
    return base, StridedView(base.type, offset, tuple(dims))


def _row_major(shape: Sequence[int]) -> list[Dim]:
    dims: list[Dim] = []
    stride = 1
    for size in reversed(shape):
        dims.insert(0, ((size, stride),) if size != 1 else ())
        stride *= size
    return dims


def _step(op: Operation, dims: list[Dim], offset: int) -> tuple[list[Dim], int] | None:
    """The dims and offset after one view op, or None where it cannot be read by strides."""
    if isinstance(op, tensor.CollapseShapeOp):
        groups = [[i.value.data for i in g] for g in op.reassociation]  # type: ignore[attr-defined]
        return [_merged(tuple(p for i in g for p in dims[i])) for g in groups], offset
    if isinstance(op, tensor.ExpandShapeOp):
        shape = _static(op.result)
        assert shape is not None
        groups = [[i.value.data for i in g] for g in op.reassociation]  # type: ignore[attr-defined]
        out: list[Dim] = []
        for parts, group in zip(dims, groups, strict=True):
            split = _split(parts, [shape[i] for i in group])
            if split is None:
                return None
            out += split
        return out, offset
    if isinstance(op, TransposeOp):
        return [dims[p] for p in op.permutation.get_values()], offset
    return _slice(op, dims, offset)


def _merged(parts: Dim) -> Dim:
    """Adjacent parts that are one run of memory, as one part."""
    out: list[Part] = []
    for size, stride in parts:
        if out and out[-1][1] == stride * size:
            out[-1] = (out[-1][0] * size, stride)
        else:
            out.append((size, stride))
    return tuple(out)


def _split(parts: Dim, sizes: Sequence[int]) -> list[Dim] | None:
    """The parts of one dim shared out among the dims of `sizes` (outermost first), a part
    split where a size divides it; None when the sizes do not line up with the parts."""
    rest = list(parts)
    out: list[Dim] = []
    for size in sizes:
        taken: list[Part] = []
        while size > 1:
            if not rest:
                return None
            part, stride = rest[0]
            if size % part == 0:
                taken.append(rest.pop(0))
                size //= part
            elif part % size == 0:
                taken.append((size, stride * (part // size)))
                rest[0] = (part // size, stride)
                size = 1
            else:
                return None
        out.append(_merged(tuple(taken)))
    return out if not rest else None


def _slice(op: Operation, dims: list[Dim], offset: int) -> tuple[list[Dim], int] | None:
    """A static, unit-stride, rank-keeping `tensor.extract_slice`."""
    assert isinstance(op, tensor.ExtractSliceOp)
    starts, sizes = op.static_offsets.get_values(), op.static_sizes.get_values()
    steps = op.static_strides.get_values()
    if op.offsets or op.sizes or op.strides or any(s != 1 for s in steps):
        return None
    if len(starts) != len(dims) or _static(op.result) != list(sizes):
        return None
    out: list[Dim] = []
    for parts, start, size in zip(dims, starts, sizes, strict=True):
        full = 1
        for part, _ in parts:
            full *= part
        if start == 0 and size == full:
            out.append(parts)
            continue
        if len(parts) != 1:
            return None
        stride = parts[0][1]
        offset += start * stride
        out.append(((size, stride),) if size != 1 else ())
    return out, offset


# --------------------------------------------------------------------------------------------
# The entry's side (at the implicit builder)
# --------------------------------------------------------------------------------------------


def _index(value: int) -> SSAValue:
    return arith.ConstantOp(IntegerAttr(value, IndexType())).result


def strided_tile_args(
    bound: SSAValue,
    view: StridedView,
    batch: SSAValue | None,
    row0: SSAValue | int,
    col0: SSAValue | int,
    transposed: bool,
) -> list[SSAValue]:
    """Base, offset and (row, col) strides of the kernel's tile of a viewed operand: `bound` is
    the base tensor's binding (a memref), `batch` the tile's batch index (None for a 2-D
    product), (row0, col0) its first logical row and column."""
    meta = memref.ExtractStridedMetaDataOp(bound)
    offset = arith.AddiOp(meta.offset, _index(view.offset)).result
    if batch is not None:
        offset = _batch_offset(offset, batch, view.dims[0])
    rows, cols = len(view.dims) - 2, len(view.dims) - 1
    if transposed:
        rows, cols = cols, rows
    for start, axis in ((row0, rows), (col0, cols)):
        if isinstance(start, int) and start == 0:
            continue
        step = start if isinstance(start, SSAValue) else _index(start)
        moved = arith.MuliOp(step, _index(view.stride(axis))).result
        offset = arith.AddiOp(offset, moved).result
    strides = [_index(view.stride(rows)), _index(view.stride(cols))]
    return [meta.base_buffer, offset, *strides]


def _batch_offset(offset: SSAValue, batch: SSAValue, parts: Dim) -> SSAValue:
    """`offset` plus batch `batch`'s place: the index split among the parts, innermost last."""
    rest = batch
    for i, (size, stride) in enumerate(reversed(parts)):
        size_value = _index(size)
        index = arith.RemUIOp(rest, size_value).result
        if i + 1 < len(parts):
            rest = arith.DivUIOp(rest, size_value).result
        offset = arith.AddiOp(offset, arith.MuliOp(index, _index(stride)).result).result
    return offset


def erase_dead_views(value: SSAValue, rewriter: PatternRewriter) -> None:
    """Remove the view ops (and their `tensor.empty` inits) that fed only a folded operand."""
    worklist = [value.owner]
    while worklist:
        op = worklist.pop()
        if not isinstance(op, (*VIEW_OPS, tensor.EmptyOp)) or op.parent is None:
            continue
        if any(r.uses for r in op.results):
            continue
        worklist += [operand.owner for operand in op.operands]
        rewriter.erase(op)


# --------------------------------------------------------------------------------------------
# The result written by strides
# --------------------------------------------------------------------------------------------

PURE_TORCH_VIEWS = RESHAPE_OPS | COPY_OPS | MOVING_OPS | {"torch_c.from_builtin_tensor"}
"""Ops that only view their operand: dead when nothing uses what they make."""


def _is_dead(op: Operation) -> bool:
    """A view whose results nothing alive uses (the torch views a conversion left behind)."""
    if not (isinstance(op, VIEW_OPS) or op.name in PURE_TORCH_VIEWS):
        return False
    return all(_is_dead(use.operation) for r in op.results for use in r.uses)


def _live_users(value: SSAValue) -> list[Operation]:
    return [use.operation for use in value.uses if not _is_dead(use.operation)]


@dataclass(frozen=True)
class OutputView:
    """A product's result written by strides into the transposed tensor it becomes."""

    transpose: TransposeOp
    view: StridedView
    """Where the product's C lies in the transpose's result (its `base`)."""
    reshapes: tuple[Operation, ...]
    """The reshapes from the product's result to the transpose."""


def fold_output(result: SSAValue) -> OutputView | None:
    """When all that uses the product's `result` (through reshapes) is one `linalg.transpose`
    of static shape, and C's rows and columns keep one stride each in its result: how to
    write C there."""
    reshapes: list[Operation] = []
    value = result
    while True:
        users = _live_users(value)
        if len(users) != 1:
            return None
        user = users[0]
        if isinstance(user, TransposeOp) and user.inputs[0] is value:
            break
        if not isinstance(user, tensor.CollapseShapeOp | tensor.ExpandShapeOp):
            return None
        reshapes.append(user)
        value = user.results[0]
    shape = _static(user.results[0])
    if shape is None:
        return None
    perm = user.permutation.get_values()
    dims: list[Dim] | None = [()] * len(perm)
    for j, parts in enumerate(_row_major(shape)):
        dims[perm[j]] = parts  # type: ignore[index]
    for op in reversed(reshapes):
        dims = _unstep(op, dims)  # type: ignore[arg-type]
        if dims is None:
            return None
    if any(len(d) > 1 for d in dims[-2:]):
        return None
    view = StridedView(user.results[0].type, 0, tuple(dims))
    return OutputView(user, view, tuple(reshapes))


def _unstep(op: Operation, dims: list[Dim]) -> list[Dim] | None:
    """The dims of a reshape's source, from those of its result (the reshape undone)."""
    groups = [[i.value.data for i in g] for g in op.reassociation]  # type: ignore[attr-defined]
    if isinstance(op, tensor.ExpandShapeOp):
        return [_merged(tuple(p for i in g for p in dims[i])) for g in groups]
    source = _static(op.operands[0])
    assert source is not None
    out: list[Dim] = []
    for parts, group in zip(dims, groups, strict=True):
        split = _split(parts, [source[i] for i in group])
        if split is None:
            return None
        out += split
    return out


def erase_dead_users(value: SSAValue, rewriter: PatternRewriter) -> None:
    """Erase what uses `value` and is dead (views whose results nothing alive uses)."""
    for use in list(value.uses):
        op = use.operation
        if op.parent is None or not _is_dead(op):
            continue
        for r in op.results:
            erase_dead_users(r, rewriter)
        rewriter.erase(op)
