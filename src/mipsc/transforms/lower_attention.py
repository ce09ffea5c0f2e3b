"""`mips.attention` → one IREE dispatch whose workgroups call mips_attention_<t> per tile.

Part of `lower-mips-to-call` (LowerAttention is one of its patterns). The shapes are static
(the op's verifier), so every offset and stride is a constant of the executable: each binding
(query, key, value, the mask when there is one, the result) is viewed as a flat memref. A
query, key or value that is a view of another tensor (the heads split off a projection,
[B, S, H, D] -> [B, H, S, D]: strided_operands.fold_view) is read by strides from that tensor,
and a result that only becomes one transpose (the heads merged back: fold_output) is written
where the transpose puts it, so attention's heads cost no copy. Tile t of the grid
(batch·H·⌈L / tile⌉ tiles, tiles of query rows fastest) calls the kernel on
rows [i0, i0 + tile) of head h of batch b, with key/value head h / G (grouped-query heads
read their shared K and V, never a copy), the mask read by strides (0 where it broadcasts),
and `causal_row0` = i0 when causal. Embedded kernels get the workgroup-local workspace as the
matmuls do; the plugin's entry allocates its own (kernels/mips_kernels.h, "Attention").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.builder import ImplicitBuilder
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import (
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    StridedLayoutAttr,
    SymbolRefAttr,
    TensorType,
)
from xdsl.ir import Attribute, Block, Region, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from mipsc.dialects import iree, mips
from mipsc.kernel_abi import ATTENTION_SYMBOLS
from mipsc.remarks import emit_remark
from mipsc.transforms.building import building_before
from mipsc.transforms.lower_mips_to_call import (
    MAX_GRID_X,
    ExecutableCache,
    _write_into,
    external_kernel,
    workspace_args,
    workspace_type,
)
from mipsc.transforms.strided_operands import (
    StridedView,
    _batch_offset,
    _row_major,
    erase_dead_views,
    fold_output,
    fold_view,
)

PASS_NAME = "lower-mips-to-call"

ATTENTION_TILE = 64
"""Query rows per tile at most (the kernel's row block, ATT_MB in kernels/attention.c)."""
MIN_TILES = 8
"""Tiles a dispatch should have to keep a few workers busy: the tile shrinks (to 16 rows at
least) until there are this many."""


@dataclass(frozen=True)
class AttentionKey:
    """What an attention executable depends on (identical attentions share one)."""

    query: tuple[int, ...]
    key: tuple[int, ...]
    value: tuple[int, ...]
    mask: tuple[int, ...] | None
    element: Attribute
    causal: bool
    scale: float
    tile: int
    views: tuple[StridedView, StridedView, StridedView, StridedView]
    """Where query, key, value and the result lie in the tensors bound for them (each the
    operand itself, row-major, or the tensor it views)."""

    @property
    def batch(self) -> int:
        return math.prod(self.query[:-3])

    @property
    def heads(self) -> int:
        return self.query[-3] if len(self.query) >= 3 else 1

    @property
    def kv_heads(self) -> int:
        return self.key[-3] if len(self.key) >= 3 else 1

    @property
    def row_tiles(self) -> int:
        return -(-self.query[-2] // self.tile)

    @property
    def count(self) -> int:
        return self.batch * self.heads * self.row_tiles

    @property
    def result(self) -> tuple[int, ...]:
        return (*self.query[:-1], self.value[-1])

    def mask_strides(self) -> tuple[int, int, int, int]:
        """The mask's element strides for (batch, head, query row, key): 0 where it
        broadcasts (the verifier allows batch dims all 1 or all the query's)."""
        assert self.mask is not None
        scores = (*self.query[:-1], self.key[-2])
        padded = (1,) * (len(scores) - len(self.mask)) + self.mask
        padded = (1,) * max(0, 4 - len(padded)) + padded
        *batch, heads, rows, cols = padded
        batch_stride = 0 if set(batch) <= {1} else heads * rows * cols
        return (batch_stride, rows * cols if heads > 1 else 0, cols if rows > 1 else 0,
                1 if cols > 1 else 0)  # fmt: skip


def choose_tile(length: int, batch_heads: int) -> int:
    """Rows per tile: ATTENTION_TILE, halved (to 16 at least) while the grid has fewer than
    MIN_TILES tiles; never more than the query's rows."""
    tile = ATTENTION_TILE
    while tile > 16 and batch_heads * -(-length // tile) < MIN_TILES:
        tile //= 2
    return max(1, min(tile, length))


def _index(value: int) -> SSAValue:
    return arith.ConstantOp(IntegerAttr(value, IndexType())).result


def contiguous(ty: Attribute) -> StridedView:
    """A tensor as itself: row-major, offset 0."""
    assert isinstance(ty, TensorType)
    return StridedView(ty, 0, tuple(_row_major(ty.get_shape())))


def _flat_memref(element: Attribute, shape: tuple[int, ...]) -> MemRefType[Attribute]:
    """A binding viewed flat, with the dynamic offset IREE passes (see _binding_memref)."""
    return MemRefType(element, [math.prod(shape)], StridedLayoutAttr([1], None))


def build_declaration(symbol: str, element: Attribute, workspace_bytes: int | None) -> func.FuncOp:
    """The kernel's declaration: five operands (base pointer, offset, two strides), the six
    sizes and flags, the scale (f32), then the workspace when one is lent (embedded)."""
    base, index = MemRefType(element, []), IndexType()
    operand = [base, index, index, index]
    inputs = [*operand * 5, *[index] * 6, Float32Type()]
    if workspace_bytes is not None:
        inputs += [workspace_type(workspace_bytes), index]
    return external_kernel(symbol, inputs, workspace_bytes is not None)


@dataclass
class _Bound:
    """A binding as the flat memref's base buffer and element offset."""

    base: SSAValue
    offset: SSAValue


def _bind(binding: SSAValue, element: Attribute, shape: tuple[int, ...]) -> _Bound:
    view = iree.BindingSubspanOp(binding, _index(0), _flat_memref(element, shape))
    meta = memref.ExtractStridedMetaDataOp(view.result)
    return _Bound(meta.base_buffer, meta.offset)


def _at(bound: _Bound, terms: list[tuple[SSAValue, int]]) -> SSAValue:
    """bound.offset + Σ value·stride (the strides constants; zero strides left out)."""
    total = bound.offset
    for value, stride in terms:
        if stride:
            total = arith.AddiOp(total, arith.MuliOp(value, _index(stride))).result
    return total


def build_entry(
    name: str, symbol: str, key: AttentionKey, workspace_bytes: int | None
) -> func.FuncOp:
    """The entry: bindings (query, key, value, [mask], result); tile t = id, id + count, ...
    calls the kernel on its rows of its head."""
    roles = ["query", "key", "value", *(["mask"] if key.mask is not None else []), "result"]
    block = Block(arg_types=[iree.BindingType()] * len(roles))
    q, k, v, o = (tuple(view.base.get_shape()) for view in key.views)  # type: ignore[attr-defined]
    shapes = {"query": q, "key": k, "value": v, "mask": key.mask, "result": o}
    with ImplicitBuilder(block):
        bound = {
            role: _bind(arg, key.element, shapes[role])  # type: ignore[arg-type]
            for role, arg in zip(roles, block.args, strict=True)
        }
        workspace = workspace_args(workspace_bytes) if workspace_bytes else []
        first = iree.DispatchWorkgroupIdOp(0)
        stride = iree.DispatchWorkgroupCountOp(0)
        loop = scf.ForOp(first, _index(key.count), stride, [], Block(arg_types=[IndexType()]))
        func.ReturnOp()
    with ImplicitBuilder(loop.body.block) as (t,):
        func.CallOp(symbol, [*_tile_args(key, bound, t), *workspace],
                    [IntegerType(32)] if workspace_bytes else [])  # fmt: skip
        scf.YieldOp()
    return func.FuncOp(name, ([iree.BindingType()] * len(roles), []), Region(block))


def _operand(
    bound: _Bound, view: StridedView, batch: SSAValue, head: SSAValue, row0: SSAValue | None
) -> list[SSAValue]:
    """Base, offset and (row, column) strides of the rows from `row0` (or 0) of head `head`
    of batch `batch` of an operand [*B, H, rows, cols] lying in its binding as `view`."""
    offset = arith.AddiOp(bound.offset, _index(view.offset)).result
    rank = len(view.dims)
    batch_parts = tuple(part for dim in view.dims[: max(rank - 3, 0)] for part in dim)
    if batch_parts:
        offset = _batch_offset(offset, batch, batch_parts)
    if rank >= 3 and view.dims[-3]:
        offset = _batch_offset(offset, head, view.dims[-3])
    if row0 is not None and view.stride(-2):
        offset = arith.AddiOp(offset, arith.MuliOp(row0, _index(view.stride(-2)))).result
    return [bound.base, offset, _index(view.stride(-2)), _index(view.stride(-1))]


def _tile_args(key: AttentionKey, bound: dict[str, _Bound], t: SSAValue) -> list[SSAValue]:
    """The kernel's arguments for tile t (kernels/mips_kernels.h, "Attention")."""
    length, depth = key.query[-2:]
    keys, value_depth = key.value[-2:]
    z = arith.DivUIOp(t, _index(key.row_tiles)).result  # batch · H + head
    i0 = arith.MuliOp(arith.RemUIOp(t, _index(key.row_tiles)), _index(key.tile)).result
    rows = arith.MinSIOp(_index(key.tile), arith.SubiOp(_index(length), i0)).result
    b = arith.DivUIOp(z, _index(key.heads)).result
    h = arith.RemUIOp(z, _index(key.heads)).result
    kv = arith.DivUIOp(h, _index(key.heads // key.kv_heads)).result
    q_view, k_view, v_view, o_view = key.views
    q = _operand(bound["query"], q_view, b, h, i0)
    k = _operand(bound["key"], k_view, b, kv, None)
    v = _operand(bound["value"], v_view, b, kv, None)
    o = _operand(bound["result"], o_view, b, h, i0)
    if key.mask is not None:
        sb, sh, sr, sc = key.mask_strides()
        mask = [bound["mask"].base, _at(bound["mask"], [(b, sb), (h, sh), (i0, sr)]),
                _index(sr), _index(sc)]  # fmt: skip
    else:
        mask = [bound["query"].base, _index(0), _index(0), _index(0)]
    causal_row0 = i0 if key.causal else _index(-1)
    sizes = [rows, _index(keys), _index(depth), _index(value_depth)]
    flags = [_index(int(key.mask is not None)), causal_row0]
    scale = arith.ConstantOp(FloatAttr(key.scale, Float32Type())).result
    return [*q, *k, *v, *mask, *o, *sizes, *flags, scale]


def build_workgroup_count() -> Region:
    """x = min(tiles, MAX_GRID_X) from the workload (the tile count)."""
    block = Block(arg_types=[IndexType()])
    with ImplicitBuilder(block):
        x = arith.MinUIOp(block.args[0], _index(MAX_GRID_X))
        one = _index(1)
        iree.ReturnOp(x.result, one, one)
    return Region(block)


def key_of(
    op: mips.AttentionOp, views: tuple[StridedView, StridedView, StridedView, StridedView]
) -> AttentionKey:
    shapes = op.shapes()
    query = shapes["query"]
    batch_heads = math.prod(query[:-2])
    assert isinstance(op.query.type, TensorType)
    return AttentionKey(
        query,
        shapes["key"],
        shapes["value"],
        shapes.get("mask"),
        op.query.type.get_element_type(),
        op.is_causal,
        op.scale_value,
        choose_tile(query[-2], batch_heads),
        views,
    )


def read_by_strides(op: mips.AttentionOp) -> tuple[list[SSAValue], list[StridedView]]:
    """The tensors to bind for query, key and value, and where each operand lies in its own:
    the tensor it is a view of (by strides) where fold_view can, else itself."""
    tensors, views = [], []
    for value in (op.query, op.key, op.value):
        folded = fold_view(value)
        tensor_value, view = folded if folded is not None else (value, contiguous(value.type))
        tensors.append(tensor_value)
        views.append(view)
    return tensors, views


@dataclass
class LowerAttention(RewritePattern):
    """`mips.attention` → a `flow.dispatch` of its executable over the tiles of query rows."""

    executables: ExecutableCache

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: mips.AttentionOp, rewriter: PatternRewriter) -> None:
        inputs, views = read_by_strides(op)
        output = fold_output(op.result)
        out_view = output.view if output is not None else contiguous(op.result.type)
        key = key_of(op, (*views, out_view))  # type: ignore[arg-type]
        cache = self.executables
        symbol = cache.linked_symbol(ATTENTION_SYMBOLS[type(key.element)])
        entry = self._entry_for(key, symbol, op)
        with building_before(rewriter, op):
            dispatch = iree.DispatchOp(
                entry,
                workload=[_index(key.count)],
                arguments=[*inputs, *([op.mask] if op.mask is not None else [])],
                argument_dims=[],
                result_types=[out_view.base],
                result_dims=[],
            )
        tiles = f"{key.count} tile{'s' if key.count > 1 else ''} of {key.tile} query rows"
        emit_remark(op, PASS_NAME, f"calls {symbol} per tile of {key.tile} query rows",
                    kernel=f"{symbol} ({tiles})")  # fmt: skip
        operands = (op.query, op.key, op.value)
        if output is not None:
            _write_into(op, output, dispatch.results[0], rewriter)  # type: ignore[arg-type]
        else:
            rewriter.replace(op, [], [dispatch.results[0]])
        for operand in operands:
            erase_dead_views(operand, rewriter)

    def _entry_for(self, key: AttentionKey, symbol: str, op: mips.AttentionOp) -> SymbolRefAttr:
        cache = self.executables
        if (ref := cache.entries.get(key)) is not None:
            return ref
        index = len(cache.entries)
        names = (f"mips_exe_{index}", f"mips_attention_{index}")
        workspace = cache.lent_workspace
        inner = [build_declaration(symbol, key.element, workspace),
                 build_entry(names[1], symbol, key, workspace)]  # fmt: skip
        export = iree.ExecutableExportOp(names[1], build_workgroup_count())
        return cache.add_executable(key, op, names, export, ModuleOp(inner))
