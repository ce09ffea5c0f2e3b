"""`lower-mips-to-call`: bufferize each `mips.matmul` into an IREE dispatch that calls our kernel.

The host side becomes a `flow.dispatch` of a `stream.executable`. Its entry point receives the
buffers as `!stream.binding`s, views them as memrefs, picks its output tile from the workgroup
id, and calls the external kernel with the memref ABI: base pointer, offset and strides (in
elements) of each operand, then the tile sizes. IREE's task system spreads the workgroups (one
per tile) over the cores; the kernel comes from the executable plugin at run time.

A zero-filled init is not passed: the kernel writes `C = A·B` into a fresh result. Any other
init is tied to the result and the kernel accumulates `C += A·B` in place.

The `backend` option picks the kernel library (kernel_abi.matmul_symbol): `builtin` (our own
kernels) or `openblas` (f32 through OpenBLAS's sgemm, per tile and single-threaded; f16/bf16
keep the builtin kernels). Each lowered op leaves a remark naming the kernel it calls.

A matmul with `packed_rhs` (made by pack-weights) calls mips_matmul_packed_<t> on its tiles,
whose columns then start on a panel of the packed layout (tile widths are multiples of
PACKED_B_PANEL); a `mips.pack_rhs` becomes a dispatch of mips_pack_b_<t> over column tiles of
PACK_TILE_N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.builder import ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    BoolAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    StridedLayoutAttr,
    SymbolRefAttr,
    TensorType,
)
from xdsl.dialects.linalg.ops import FillOp
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.traits import is_side_effect_free

from mipsc.diagnostics import MipscError, location_of
from mipsc.dialects import iree, mips
from mipsc.kernel_abi import (
    DEFAULT_BACKEND,
    KERNEL_BACKENDS,
    PACK_SYMBOLS,
    PACKED_B_PANEL,
    PACKED_SYMBOLS,
    matmul_symbol,
    packed_rows,
    packed_size,
)
from mipsc.remarks import emit_remark
from mipsc.tiling import choose_tiles
from mipsc.transforms.building import building_before, dim_size

PASS_NAME = "lower-mips-to-call"


def _index(value: int) -> arith.ConstantOp:
    return arith.ConstantOp(IntegerAttr(value, IndexType()))


@dataclass(frozen=True)
class MatmulKey:
    """What an executable depends on: identical matmuls share one executable."""

    lhs: Attribute
    rhs: Attribute
    out: Attribute
    transpose_lhs: bool
    transpose_rhs: bool
    accumulate: bool
    tile_m: int
    tile_n: int
    packed_rhs: bool = False

    @property
    def k(self) -> int:
        """The product's K (static when B is packed)."""
        assert isinstance(self.lhs, TensorType)
        return mips.logical_shape(self.lhs.get_shape(), self.transpose_lhs)[-1]

    @property
    def n(self) -> int:
        """The product's N (static when B is packed)."""
        assert isinstance(self.out, TensorType)
        return self.out.get_shape()[-1]

    @property
    def batched(self) -> bool:
        assert isinstance(self.out, TensorType)
        return self.out.get_num_dims() == 3


def _row_major_strides(shape: Sequence[int]) -> list[int | None]:
    """Static strides of a contiguous buffer of `shape`, None where a dynamic dim makes them so."""
    strides: list[int | None] = [1]
    for size in reversed(shape[1:]):
        prev = strides[0]
        strides.insert(0, None if prev is None or size == DYNAMIC_INDEX else prev * size)
    return strides


def _binding_memref(ty: TensorType[Attribute]) -> MemRefType[Attribute]:
    """The memref view of a row-major tensor binding.

    The offset must stay dynamic (`offset: ?`): IREE packs several buffers into one allocation
    and passes the real offset only when the subspan's type leaves room for it.
    """
    shape = ty.get_shape()
    layout = StridedLayoutAttr(_row_major_strides(shape), None)
    return MemRefType(ty.get_element_type(), shape, layout)


def _tile_memref(source: MemRefType[Attribute]) -> MemRefType[Attribute]:
    """The type `memref.subview` infers for a tile with dynamic offsets and sizes: [?, ?], or
    [1, ?, ?] for one batch of a rank-3 source. The unit batch dim is kept, not dropped: with
    it dropped, a tile whose width IREE folds to 1 (N = 1) has two unit dims, and IREE 3.13
    crashes folding the ambiguous rank-reduced view (memref.extract_strided_metadata)."""
    layout = source.layout
    assert isinstance(layout, StridedLayoutAttr)
    shape = [DYNAMIC_INDEX, DYNAMIC_INDEX]
    if source.get_num_dims() == 3:
        shape.insert(0, 1)
    return MemRefType(source.get_element_type(), shape, StridedLayoutAttr(layout.strides, None))


MAX_GRID_X = 65535
"""The most workgroups a dispatch asks for. IREE's CPU executable ABI keeps workgroup ids in
32 bits for x but 16 bits for y and z (iree_hal_executable_workgroup_state_v0_t in
iree/hal/local/executable_library.h): a larger grid wraps without a word. So every dispatch is
a 1-D grid of at most this many workgroups, and each workgroup loops over the tiles
t = id, id + count, ... (once, whenever the tiles fit)."""


@dataclass
class _TileGrid:
    """The output tiles of a product, built at the implicit builder: their sizes (tile_m x
    tile_n), how many per column and per row, and in all (⌈N/tn⌉·⌈M/tm⌉·batch)."""

    tile_m: SSAValue
    tile_n: SSAValue
    tiles_m: SSAValue
    tiles_n: SSAValue
    count: SSAValue

    @staticmethod
    def build(m: SSAValue, n: SSAValue, batch: SSAValue, key: MatmulKey) -> _TileGrid:
        tile_m, tile_n = _index(key.tile_m), _index(key.tile_n)
        tiles_m, tiles_n = arith.CeilDivSIOp(m, tile_m), arith.CeilDivSIOp(n, tile_n)
        count = arith.MuliOp(arith.MuliOp(tiles_n, tiles_m), batch)
        return _TileGrid(tile_m.result, tile_n.result, tiles_m.result, tiles_n.result, count.result)


def build_workgroup_count(key: MatmulKey) -> Region:
    """The host-side grid from the workload (M, N, K, B): x = min(tiles, MAX_GRID_X), y = z = 1."""
    block = Block(arg_types=[IndexType()] * 4)
    m, n, _k, batch = block.args
    with ImplicitBuilder(block):
        grid = _TileGrid.build(m, n, batch, key)
        x = arith.MinUIOp(grid.count, _index(MAX_GRID_X))
        one = _index(1)
        iree.ReturnOp(x.result, one.result, one.result)
    return Region(block)


ENTRY_INDEX_ARGS = ("m", "n", "k", "batch", "k_rhs", "batch_rhs", "m_init", "n_init", "batch_init")
"""The index operands of every entry, after the three bindings: the sizes of the product, the
rows and batch of B as B itself says, and the rows, columns and batch of the init as it says
(the product's when there is none); the entry checks they agree."""


@dataclass
class _EntryArgs:
    """The entry's block arguments by name: bindings A, B, C, then the product's sizes
    (ENTRY_INDEX_ARGS, the same the host passes: see _ProductDims)."""

    a: SSAValue
    b: SSAValue
    c: SSAValue
    dims: _ProductDims


@dataclass
class _Tile:
    """One output tile: batch z, rows [i0, i0 + tm) and columns [j0, j0 + tn) of C."""

    z: SSAValue
    i0: SSAValue
    j0: SSAValue
    tm: SSAValue
    tn: SSAValue


def build_entry(name: str, symbol: str, key: MatmulKey) -> func.FuncOp:
    """The dispatch entry: bindings (A, B, C), then ENTRY_INDEX_ARGS; one kernel call per tile,
    the workgroup's tiles taken in turn."""
    binding = iree.BindingType()
    arg_types = [binding, binding, binding, *[IndexType()] * len(ENTRY_INDEX_ARGS)]
    block = Block(arg_types=arg_types)
    bind_a, bind_b, bind_c, *sizes = block.args
    args = _EntryArgs(bind_a, bind_b, bind_c, _ProductDims(*sizes))
    with ImplicitBuilder(block):
        a, b, c = _bind_operands(key, args)
        checked_k = _checked_k(args.dims)
        grid = _TileGrid.build(args.dims.m, args.dims.n, args.dims.batch, key)
        first = iree.DispatchWorkgroupIdOp(0)
        stride = iree.DispatchWorkgroupCountOp(0)
        loop = scf.ForOp(first, grid.count, stride, [], Block(arg_types=[IndexType()]))
        func.ReturnOp()
    with ImplicitBuilder(loop.body.block) as (t,):
        tile = _tile_of(t, grid, args.dims)
        call_args = [
            *_operand_tile(a, key, tile, [tile.i0, 0], [tile.tm, args.dims.k], key.transpose_lhs),
            *(
                _packed_operand_tile(b, key, tile)
                if key.packed_rhs
                else _operand_tile(
                    b, key, tile, [0, tile.j0], [args.dims.k, tile.tn], key.transpose_rhs
                )
            ),
            *_operand_tile(c, key, tile, [tile.i0, tile.j0], [tile.tm, tile.tn], False),
        ]
        accumulate = _index(int(key.accumulate))
        func.CallOp(symbol, [*call_args, tile.tm, tile.tn, checked_k, accumulate.result], [])
        scf.YieldOp()
    return func.FuncOp(name, (arg_types, []), Region(block))


def _bind_operands(key: MatmulKey, args: _EntryArgs) -> tuple[SSAValue, SSAValue, SSAValue]:
    """The bindings viewed as memrefs of their stored shapes ([B,] rows, cols)."""
    assert isinstance(key.lhs, TensorType) and isinstance(key.rhs, TensorType)
    assert isinstance(key.out, TensorType)
    zero = _index(0)

    def subspan(bind: SSAValue, ty: TensorType[Attribute], dims: list[SSAValue]) -> SSAValue:
        view = _binding_memref(ty)
        return iree.BindingSubspanOp(bind, zero.result, view, _dynamic(ty, dims)).result

    a = subspan(args.a, key.lhs, args.dims.stored("lhs", key))
    b = subspan(args.b, key.rhs, args.dims.stored("rhs", key))
    c = subspan(args.c, key.out, args.dims.stored("init", key))
    return a, b, c


def _packed_operand_tile(view: SSAValue, key: MatmulKey, tile: _Tile) -> list[SSAValue]:
    """Base, offset and (Kp, PACKED_B_PANEL) of the tile's columns of a packed B: the panel of
    column j0 starts at j0 * Kp (kernels/mips_kernels.h, "Pre-packed B")."""
    kp = _index(packed_rows(key.k))
    meta = memref.ExtractStridedMetaDataOp(view)
    offset = arith.AddiOp(meta.offset, arith.MuliOp(tile.j0, kp))
    return [meta.base_buffer, offset.result, kp.result, _index(PACKED_B_PANEL).result]


def _checked_k(dims: _ProductDims) -> SSAValue:
    """K, or -1 when the operands do not fit (dynamic shapes only: static ones were verified),
    which the kernel rejects instead of reading out of bounds."""
    agree = arith.CmpiOp(dims.k, dims.k_rhs, "eq").result
    for mine, theirs in (
        (dims.batch, dims.batch_rhs),
        (dims.m, dims.m_init),
        (dims.n, dims.n_init),
        (dims.batch, dims.batch_init),
    ):
        agree = arith.AndIOp(agree, arith.CmpiOp(mine, theirs, "eq")).result
    return arith.SelectOp(agree, dims.k, _index(-1)).result


def _tile_of(t: SSAValue, grid: _TileGrid, dims: _ProductDims) -> _Tile:
    """Tile number `t` in IREE's order (columns fastest, then rows, then batch), clipped to C."""
    col = arith.RemUIOp(t, grid.tiles_n)
    row_and_batch = arith.DivUIOp(t, grid.tiles_n)
    row = arith.RemUIOp(row_and_batch, grid.tiles_m)
    z = arith.DivUIOp(row_and_batch, grid.tiles_m)
    i0, j0 = arith.MuliOp(row, grid.tile_m), arith.MuliOp(col, grid.tile_n)
    tm = arith.MinSIOp(grid.tile_m, arith.SubiOp(dims.m, i0))
    tn = arith.MinSIOp(grid.tile_n, arith.SubiOp(dims.n, j0))
    return _Tile(z.result, i0.result, j0.result, tm.result, tn.result)


def _operand_tile(
    view: SSAValue,
    key: MatmulKey,
    tile: _Tile,
    offsets: list[SSAValue | int],
    sizes: list[SSAValue | int],
    transposed: bool,
) -> list[SSAValue]:
    """Base, offset and (row, col) strides of the 2-D tile of `view` at logical `offsets` and
    `sizes`, as the kernel wants them: a transposed operand is sliced in its stored order and
    its strides are swapped."""
    assert isinstance(view.type, MemRefType)
    if transposed:
        offsets, sizes = offsets[::-1], sizes[::-1]
    if key.batched:  # one batch: a [1, rows, cols] slice
        offsets, sizes = [tile.z, *offsets], [1, *sizes]
    strides = [1] * len(offsets)
    sub = memref.SubviewOp.get(view, offsets, sizes, strides, _tile_memref(view.type))
    meta = memref.ExtractStridedMetaDataOp(sub)
    row, col = meta.strides[-2:]
    return [meta.base_buffer, meta.offset, *((col, row) if transposed else (row, col))]


def build_kernel_declaration(symbol: str, element_type: Attribute) -> func.FuncOp:
    """`func.func private @mips_matmul_<t>(memref<t>, index, ...) attributes {llvm.bareptr}`.

    With `llvm.bareptr` each rank-0 base memref is passed as one pointer, matching the C
    params struct of kernels/mips_kernels.h.
    """
    base = MemRefType(element_type, [])
    index = IndexType()
    operand = [base, index, index, index]
    decl = func.FuncOp.external(
        symbol, [*operand, *operand, *operand, index, index, index, index], []
    )
    decl.attributes["llvm.bareptr"] = BoolAttr.from_bool(True)
    return decl


PACK_TILE_N = 256
"""Columns of B each workgroup of a pack dispatch writes (a multiple of PACKED_B_PANEL): the
pack runs once, at load, spread over the workers."""


@dataclass(frozen=True)
class PackKey:
    """What a pack executable depends on: B's stored type and orientation."""

    source: TensorType[Attribute]
    transpose: bool

    @property
    def logical(self) -> tuple[int, int]:
        """(K, N) of B."""
        k, n = mips.logical_shape(self.source.get_shape(), self.transpose)
        return k, n


def build_pack_declaration(symbol: str, element_type: Attribute) -> func.FuncOp:
    """`func.func private @mips_pack_b_<t>(memref<t>, index x3, memref<t>, index x3)`, with
    `llvm.bareptr` (the pack params of kernels/mips_kernels.h)."""
    base, index = MemRefType(element_type, []), IndexType()
    decl = func.FuncOp.external(symbol, [base, index, index, index, base, index, index, index], [])
    decl.attributes["llvm.bareptr"] = BoolAttr.from_bool(True)
    return decl


def build_pack_workgroup_count() -> Region:
    """The pack grid from the workload (N): x = ⌈N / PACK_TILE_N⌉."""
    block = Block(arg_types=[IndexType()])
    with ImplicitBuilder(block):
        tiles = arith.CeilDivSIOp(block.args[0], _index(PACK_TILE_N))
        one = _index(1)
        iree.ReturnOp(tiles.result, one.result, one.result)
    return Region(block)


def build_pack_entry(name: str, symbol: str, key: PackKey) -> func.FuncOp:
    """The pack entry: bindings (B, packed B); one kernel call per PACK_TILE_N columns of B,
    which it writes at their panel's offset j0 * Kp of the packed buffer."""
    binding = iree.BindingType()
    block = Block(arg_types=[binding, binding])
    k, n = key.logical
    packed_type = TensorType(key.source.get_element_type(), [packed_size(k, n)])
    with ImplicitBuilder(block):
        zero = _index(0)
        b = iree.BindingSubspanOp(block.args[0], zero.result, _binding_memref(key.source), [])
        out = iree.BindingSubspanOp(block.args[1], zero.result, _binding_memref(packed_type), [])
        first = iree.DispatchWorkgroupIdOp(0)
        stride = iree.DispatchWorkgroupCountOp(0)
        tiles = _index(-(-n // PACK_TILE_N))
        loop = scf.ForOp(first, tiles, stride, [], Block(arg_types=[IndexType()]))
        func.ReturnOp()
    with ImplicitBuilder(loop.body.block) as (t,):
        j0 = arith.MuliOp(t, _index(PACK_TILE_N)).result
        tn = arith.MinSIOp(_index(PACK_TILE_N), arith.SubiOp(_index(n), j0)).result
        rows = _index(k).result  # an SSA size, as the tile's type has both sizes dynamic
        offsets, sizes = ([j0, 0], [tn, rows]) if key.transpose else ([0, j0], [rows, tn])
        sub = memref.SubviewOp.get(b.result, offsets, sizes, [1, 1], _tile_memref(b.result.type))
        meta = memref.ExtractStridedMetaDataOp(sub)
        row, col = meta.strides
        strides = (col, row) if key.transpose else (row, col)
        out_meta = memref.ExtractStridedMetaDataOp(out.result)
        out_offset = arith.AddiOp(out_meta.offset, arith.MuliOp(j0, _index(packed_rows(k))))
        func.CallOp(
            symbol,
            [meta.base_buffer, meta.offset, *strides, out_meta.base_buffer, out_offset, rows, tn],
            [],
        )  # fmt: skip
        scf.YieldOp()
    return func.FuncOp(name, ([binding, binding], []), Region(block))


@dataclass
class ExecutableCache:
    """Builds one `stream.executable` per distinct matmul and puts it at the module's top."""

    module: ModuleOp
    backend: str = DEFAULT_BACKEND
    entries: dict[MatmulKey | PackKey, SymbolRefAttr] = field(default_factory=dict)

    def symbol_for(self, key: MatmulKey) -> str:
        """The kernel this matmul's tiles call, with this module's backend."""
        assert isinstance(key.out, TensorType)
        if key.packed_rhs:
            return PACKED_SYMBOLS[type(key.out.get_element_type())]
        symbol = matmul_symbol(key.out.get_element_type(), self.backend)
        assert symbol is not None
        return symbol

    def entry_for(self, key: MatmulKey) -> SymbolRefAttr:
        if (ref := self.entries.get(key)) is not None:
            return ref
        assert isinstance(key.out, TensorType)
        element_type = key.out.get_element_type()
        symbol = self.symbol_for(key)
        index = len(self.entries)
        # Entry names must be unique module-wide: IREE links all executables into one.
        exe_name, entry_name = f"mips_exe_{index}", f"mips_matmul_{index}"
        inner = ModuleOp(
            [build_kernel_declaration(symbol, element_type), build_entry(entry_name, symbol, key)]
        )
        export = iree.ExecutableExportOp(entry_name, build_workgroup_count(key))
        return self._add(key, exe_name, entry_name, export, inner)

    def _add(
        self,
        key: MatmulKey | PackKey,
        exe_name: str,
        entry_name: str,
        export: iree.ExecutableExportOp,
        inner: ModuleOp,
    ) -> SymbolRefAttr:
        executable = iree.ExecutableOp(exe_name, [export, inner])
        self.module.body.block.insert_op_before(executable, self.module.body.block.first_op)  # type: ignore[arg-type]
        ref = SymbolRefAttr(exe_name, [entry_name])
        self.entries[key] = ref
        return ref

    def pack_entry_for(self, key: PackKey) -> SymbolRefAttr:
        """The pack executable of a B of this type and orientation (made on first use)."""
        if (ref := self.entries.get(key)) is not None:
            return ref
        element_type = key.source.get_element_type()
        symbol = PACK_SYMBOLS[type(element_type)]
        index = len(self.entries)
        exe_name, entry_name = f"mips_exe_{index}", f"mips_pack_{index}"
        declaration = build_pack_declaration(symbol, element_type)
        inner = ModuleOp([declaration, build_pack_entry(entry_name, symbol, key)])
        export = iree.ExecutableExportOp(entry_name, build_pack_workgroup_count())
        return self._add(key, exe_name, entry_name, export, inner)


def _k_of(op: mips.MatmulLikeOp) -> int:
    lhs = op.lhs.type
    assert isinstance(lhs, TensorType)
    shape = mips.logical_shape(lhs.get_shape(), op.is_lhs_transposed)
    return shape[-1]


@dataclass
class LowerMatmul(RewritePattern):
    """`mips.matmul` / `mips.batch_matmul` → their dims, then one `flow.dispatch`."""

    executables: ExecutableCache
    tile_m: int
    tile_n: int
    workers: int

    def tiles_for(self, op: mips.MatmulLikeOp) -> tuple[int, int]:
        """The pass options when given, else a choice for this op's shape."""
        out = op.result.type
        assert isinstance(out, TensorType)
        *batch, m, n = out.get_shape()
        tm, tn = self.tile_m, self.tile_n
        if not (tm and tn):
            chosen = choose_tiles(
                m, n, batch[0] if batch else 1, _k_of(op), self.workers, op.is_rhs_packed
            )
            tm, tn = tm or chosen[0], tn or chosen[1]
        if op.is_rhs_packed:  # tiles start on a panel of the packed B
            tn = -(-tn // PACKED_B_PANEL) * PACKED_B_PANEL
        return tm, tn

    def key_for(self, op: mips.MatmulLikeOp) -> MatmulKey:
        """What the op's executable depends on; a dtype without a kernel is an error."""
        out_type = op.result.type
        assert isinstance(out_type, TensorType)
        if matmul_symbol(out_type.get_element_type(), self.executables.backend) is None:
            raise MipscError(
                f"{op.name} on {out_type.get_element_type()} has no kernel", location_of(op)
            )
        return MatmulKey(
            op.lhs.type,
            op.rhs.type,
            out_type,
            op.is_lhs_transposed,
            op.is_rhs_transposed,
            not mips.is_zero_init(op.init),
            *self.tiles_for(op),
            op.is_rhs_packed,
        )

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: mips.MatmulLikeOp, rewriter: PatternRewriter) -> None:
        key = self.key_for(op)
        if (why := _nothing_to_compute(op)) is not None:
            emit_remark(op, PASS_NAME, f"no kernel call: {why}", kernel=f"none ({why})")
            rewriter.replace(op, [], [op.init])
            return
        entry = self.executables.entry_for(key)
        _report_tiles(op, key, self.executables.symbol_for(key))
        with building_before(rewriter, op):
            dims = _ProductDims.build(op, key)
            dispatch = _build_dispatch(op, key, entry, dims)
        init = op.init
        rewriter.replace(op, [], [dispatch.results[0]])
        if not key.accumulate:
            _erase_dead_zero_fill(init, rewriter)


@dataclass
class LowerPackRhs(RewritePattern):
    """`mips.pack_rhs` → a `flow.dispatch` of the pack executable over B's columns."""

    executables: ExecutableCache

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: mips.PackRhsOp, rewriter: PatternRewriter) -> None:
        source = op.source.type
        assert isinstance(source, TensorType)
        key = PackKey(source, op.transpose is not None)
        entry = self.executables.pack_entry_for(key)
        with building_before(rewriter, op):
            n = _index(key.logical[1])
            dispatch = iree.DispatchOp(
                entry,
                workload=[n.result],
                arguments=[op.source],
                argument_dims=[],
                result_types=[op.result.type],
                result_dims=[],
            )
        symbol = PACK_SYMBOLS[type(source.get_element_type())]
        emit_remark(op, PASS_NAME, f"packs B once, at load, with {symbol}")
        rewriter.replace(op, [], [dispatch.results[0]])


def _nothing_to_compute(op: mips.MatmulLikeOp) -> str | None:
    """Why the product is its init alone, when some type says so statically: an empty result
    (M, N or batch 0: no tile to compute), or K = 0 (every sum is empty). Else None."""
    lhs, rhs, out = (_logical_shape(v, t) for v, t in (
        (op.lhs, op.is_lhs_transposed), (op.rhs, op.is_rhs_transposed), (op.result, False)
    ))  # fmt: skip
    if op.is_rhs_packed:  # B is K x N
        rhs = [lhs[-1], out[-1]]
    if 0 in (*out, *lhs[:-1], *rhs[:-2], rhs[-1]):
        return "the result is empty"
    if 0 in (lhs[-1], rhs[-2]):
        return "K = 0, the result is its init"
    return None


def _logical_shape(value: SSAValue, transposed: bool) -> list[int]:
    assert isinstance(value.type, TensorType)
    return list(mips.logical_shape(value.type.get_shape(), transposed))


def _report_tiles(op: mips.MatmulLikeOp, key: MatmulKey, symbol: str) -> None:
    """The remark `--report` shows: the kernel and the tiles (how many, when static)."""
    assert isinstance(key.out, TensorType)
    tiles = f"{key.tile_m}x{key.tile_n}"
    *batch, rows, cols = key.out.get_shape()
    if DYNAMIC_INDEX in (rows, cols, *batch):
        grid = f"{tiles} tiles"
    else:
        count = -(-rows // key.tile_m) * -(-cols // key.tile_n) * (batch[0] if batch else 1)
        grid = f"{count} {tiles} tile{'s' if count > 1 else ''}"
    packed = "; B pre-packed at load" if key.packed_rhs else ""
    emit_remark(
        op, PASS_NAME, f"calls {symbol} per {tiles} tile", kernel=f"{symbol} ({grid}{packed})"
    )


@dataclass
class _ProductDims:
    """The logical sizes of a product, each read from the operand that stores it. B's rows and
    batch are read from B itself: IREE resolves a tensor's dims from the dispatch that uses
    it, so describing B by A's K would hide a mismatch (the entry checks they agree)."""

    m: SSAValue
    n: SSAValue
    k: SSAValue
    batch: SSAValue
    k_rhs: SSAValue
    batch_rhs: SSAValue
    m_init: SSAValue
    n_init: SSAValue
    batch_init: SSAValue
    """The init's own sizes: a kernel never writes more of it than it has."""

    @staticmethod
    def build(op: mips.MatmulLikeOp, key: MatmulKey) -> _ProductDims:
        lead = 1 if key.batched else 0
        lhs_m, lhs_k = (lead + 1, lead) if key.transpose_lhs else (lead, lead + 1)
        rhs_k, rhs_n = (lead + 1, lead) if key.transpose_rhs else (lead, lead + 1)
        m, k = dim_size(op.lhs, lhs_m), dim_size(op.lhs, lhs_k)
        if key.packed_rhs:  # a packed B has the product's K and N (static, verified)
            k_rhs, n = k, _index(key.n).result
        else:
            k_rhs, n = dim_size(op.rhs, rhs_k), dim_size(op.rhs, rhs_n)
        if key.batched:
            batch, batch_rhs = dim_size(op.lhs, 0), dim_size(op.rhs, 0)
        else:
            batch = batch_rhs = _index(1).result
        init = [m, n, batch]
        if key.accumulate:
            init = [dim_size(op.init, lead), dim_size(op.init, lead + 1)]
            init.append(dim_size(op.init, 0) if key.batched else batch)
        return _ProductDims(m, n, k, batch, k_rhs, batch_rhs, *init)

    def stored(self, operand: str, key: MatmulKey) -> list[SSAValue]:
        """The sizes of `lhs`, `rhs`, `out` or `init` in their stored order ([B,] rows, cols)."""
        rows, cols, transposed, batch = {
            "lhs": (self.m, self.k, key.transpose_lhs, self.batch),
            "rhs": (self.k_rhs, self.n, key.transpose_rhs, self.batch_rhs),
            "out": (self.m, self.n, False, self.batch),
            "init": (self.m_init, self.n_init, False, self.batch_init),
        }[operand]
        matrix = [cols, rows] if transposed else [rows, cols]
        return [batch, *matrix] if key.batched else matrix


def _dynamic(ty: Attribute, dims: list[SSAValue]) -> list[SSAValue]:
    """The values of the dynamic dims of `ty`, among the sizes of all its dims (none for a
    static type, such as a packed B, whatever `dims` says)."""
    assert isinstance(ty, TensorType)
    if DYNAMIC_INDEX not in ty.get_shape():
        return []
    return [v for v, d in zip(dims, ty.get_shape(), strict=True) if d == DYNAMIC_INDEX]


def _build_dispatch(
    op: mips.MatmulLikeOp, key: MatmulKey, entry: SymbolRefAttr, dims: _ProductDims
) -> iree.DispatchOp:
    """Builds the `flow.dispatch` of `entry` over the workload (M, N, K, batch); a non-zero
    init is tied to the result, which the kernel accumulates into."""
    tensors = [op.lhs, op.rhs]
    tensor_dims = _dynamic(op.lhs.type, dims.stored("lhs", key))
    tensor_dims += _dynamic(op.rhs.type, dims.stored("rhs", key))
    if key.accumulate:
        tensors.append(op.init)
        tensor_dims += _dynamic(op.init.type, dims.stored("init", key))
    return iree.DispatchOp(
        entry,
        workload=[dims.m, dims.n, dims.k, dims.batch],
        arguments=[
            *tensors,
            *(dims.m, dims.n, dims.k, dims.batch, dims.k_rhs, dims.batch_rhs),
            *(dims.m_init, dims.n_init, dims.batch_init),
        ],
        argument_dims=tensor_dims,
        result_types=[key.out],
        result_dims=_dynamic(key.out, dims.stored("out", key)),
        tied_operands=[2] if key.accumulate else None,
    )


def _erase_dead_zero_fill(init: SSAValue, rewriter: PatternRewriter) -> None:
    """Remove the fill, and what only fed it, that the kernel call made unnecessary."""
    worklist = [init.owner]
    while worklist:
        op = worklist.pop()
        if not isinstance(op, Operation) or op.parent is None or any(r.uses for r in op.results):
            continue
        # A fill on tensors only makes a value; xDSL's linalg ops do not say so themselves.
        if not (is_side_effect_free(op) or (isinstance(op, FillOp) and op.res)):
            continue
        worklist += [operand.owner for operand in op.operands]
        rewriter.erase(op)


@dataclass(frozen=True)
class LowerMipsToCallPass(ModulePass):
    """Lower each mips.matmul to an IREE dispatch whose tiles call the external kernel."""

    name = PASS_NAME

    tile_m: int = 0
    """Rows of C per workgroup; 0 chooses per shape (see choose_tiles)."""
    tile_n: int = 0
    """Columns of C per workgroup; 0 chooses per shape."""
    workers: int = 0
    """The IREE workers (cores) the tiles are chosen for; 0: this machine's cores (at most 8)."""
    backend: str = DEFAULT_BACKEND
    """The kernel library the tiles call: builtin, or openblas (f32 only; see the module doc)."""

    def __post_init__(self) -> None:
        if self.backend not in KERNEL_BACKENDS:
            raise MipscError(
                f"{PASS_NAME}: unknown backend '{self.backend}' (known: "
                f"{', '.join(KERNEL_BACKENDS)})"
            )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        cache = ExecutableCache(op, self.backend)
        PatternRewriteWalker(
            GreedyRewritePatternApplier(
                [LowerMatmul(cache, self.tile_m, self.tile_n, self.workers), LowerPackRhs(cache)]
            ),
            apply_recursively=False,
        ).rewrite_module(op)
