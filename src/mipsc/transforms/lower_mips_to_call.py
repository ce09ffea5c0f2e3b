"""`lower-mips-to-call`: bufferize each `mips.matmul` into an IREE dispatch that calls our kernel.

The host side becomes a `flow.dispatch` of a `stream.executable`. Its entry point receives the
buffers as `!stream.binding`s, views them as memrefs, picks its output tile from the workgroup
id, and calls the external kernel with the memref ABI: base pointer, offset and strides (in
elements) of each operand, then the tile sizes. IREE's task system spreads the workgroups (one
per tile) over the cores; the kernel is linked into the module or comes from the executable
plugin at run time (`kernel_link`, below).

A zero-filled init is not passed: the kernel writes `C = A·B` into a fresh result. An init
that is a 1-D bias broadcast over the rows (a linear's bias) is not materialized either: the
bias is bound as it is, and each tile is filled from it (the epilogue kernel, `C = bias`) just
before the kernel accumulates into it, so the product and the bias are still rounded once, as
torch does. Any other init is tied to the result and the kernel accumulates `C += A·B` in place.

A fused epilogue (`activation`, `binary` with its `other` tensor) is a second call per tile,
right after the matmul call, while the tile is still in cache: the epilogue kernel computes
`C = binary(activation(C), other)` on it (kernel_abi.EPILOGUE_SYMBOLS).

The `backend` option picks the kernel library (kernel_abi.matmul_symbol): `builtin` (our own
kernels) or `openblas` (f32 through OpenBLAS's sgemm, per tile and single-threaded; f16/bf16
keep the builtin kernels). Each lowered op leaves a remark naming the kernel it calls.

The `kernel_link` option says where the kernels come from (kernel_abi.KERNEL_LINKS). `plugin`:
the call is an import that the executable plugin resolves at load time. `embedded`: each
executable carries the freestanding kernel object (`hal.executable.objects`, an absolute path
found at compile time), the call is a direct one (`hal.import.static`) to the kernel's
`_embedded` entry point, and the entry lends it workgroup-local memory for packing (a
`memref.alloc` in `#iree_codegen.workgroup_local`, passed straight to the call); the epilogue
calls go to the object's `mips_epilogue_<t>_embedded` the same way (no workspace). OpenBLAS
needs the plugin (it is opened with dlopen).

A matmul with `packed_rhs` and a bias or an epilogue calls the fused kernel instead
(kernel_abi.PACKED_EPILOGUE_SYMBOLS): one call per tile, the bias as the product's start and the
activation and binary op applied in the kernel's store phase, bit for bit the three calls above.

A matmul with `packed_rhs` (made by pack-weights) calls mips_matmul_packed_<t> on its tiles,
whose columns then start on a panel of the packed layout (tile widths are multiples of
PACKED_B_PANEL); a `mips.pack_rhs` becomes a dispatch of mips_pack_b_<t> over column tiles of
PACK_TILE_N. Both have embedded entry points as the others (the packed matmul with the
workspace for its A panels, the pack without one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from xdsl.builder import ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import arith, cf, func, memref, scf, tensor
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AnyFloat,
    ArrayAttr,
    BoolAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    StridedLayoutAttr,
    StringAttr,
    SymbolRefAttr,
    TensorType,
    UnitAttr,
)
from xdsl.dialects.linalg.ops import BroadcastOp, FillOp
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
    ACTIVATIONS,
    BIAS_MODES,
    BINARY_OPS,
    DEFAULT_BACKEND,
    DEFAULT_KERNEL_LINK,
    EMBEDDED_WORKSPACE_MAX_BYTES,
    KERNEL_BACKENDS,
    PACK_SYMBOLS,
    PACKED_B_PANEL,
    PACKED_EPILOGUE_SYMBOLS,
    PACKED_SYMBOLS,
    embedded_object_path,
    embedded_symbol,
    epilogue_symbol,
    matmul_symbol,
    packed_rows,
    packed_size,
    resolve_kernel_link,
)
from mipsc.kernel_config import HOST, embedded_workspace_bytes
from mipsc.remarks import emit_remark
from mipsc.tiling import TileModel, choose_tiles, tile_model
from mipsc.transforms.building import building_before, dim_size
from mipsc.transforms.strided_operands import (
    OutputView,
    StridedView,
    erase_dead_users,
    erase_dead_views,
    fold_output,
    fold_view,
    strided_tile_args,
)

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
    lhs_view: StridedView | None = None
    rhs_view: StridedView | None = None
    """A view read by strides from the tensor bound instead (then `lhs` / `rhs` is its type)."""
    out_view: StridedView | None = None
    """C written by strides into the tensor of this view's `base` type, the dispatch's result."""
    bias: Attribute | None = None
    """The type of the 1-D bias each tile is filled from (the init was its broadcast)."""
    activation: mips.Activation | None = None
    binary: mips.BinaryOp | None = None
    packed_rhs: bool = False
    """B is pre-packed (pack-weights): `rhs` is the packed buffer's type."""
    packed_k: int = 0
    """K of the product when B is pre-packed (static), which gives the panels' rows."""

    @property
    def n(self) -> int:
        """The product's N (static when B is packed)."""
        assert isinstance(self.out, TensorType)
        return self.out.get_shape()[-1]

    @property
    def batched(self) -> bool:
        assert isinstance(self.out, TensorType)
        return self.out.get_num_dims() == 3

    @property
    def has_epilogue(self) -> bool:
        """Whether the tiles call the epilogue kernel after the matmul."""
        return self.activation is not None or self.binary is not None

    @property
    def fuses_epilogue(self) -> bool:
        """Whether the tiles make one fused call (B pre-packed, with a bias or an epilogue:
        kernel_abi.PACKED_EPILOGUE_SYMBOLS) instead of the bias fill, matmul and epilogue
        calls."""
        assert isinstance(self.out, TensorType)
        has_kernel = type(self.out.get_element_type()) in PACKED_EPILOGUE_SYMBOLS
        return self.packed_rhs and has_kernel and (self.bias is not None or self.has_epilogue)

    @property
    def kernel_accumulates(self) -> bool:
        """The kernel's accumulate flag: into a tied init, or into the tile filled from the bias."""
        return self.accumulate or self.bias is not None

    @property
    def binding_roles(self) -> list[str]:
        """The entry's bindings in order: the dispatch's tensor operands (A, B, then the init,
        the bias, the epilogue's other tensor when present), then the result unless it is tied
        to the init."""
        roles = ["lhs", "rhs"]
        roles += ["init"] if self.accumulate else []
        roles += ["bias"] if self.bias is not None else []
        roles += ["other"] if self.binary is not None else []
        roles += [] if self.accumulate else ["out"]
        return roles


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
    """The entry's block arguments: its bindings by role (MatmulKey.binding_roles), then the
    product's sizes (ENTRY_INDEX_ARGS, the same the host passes: see _ProductDims)."""

    bindings: dict[str, SSAValue]
    dims: _ProductDims


@dataclass
class _Views:
    """The bindings viewed as memrefs: A, B, C (the init or the result), and the bias and the
    epilogue's other tensor when the key has them."""

    a: SSAValue
    b: SSAValue
    c: SSAValue
    bias: SSAValue | None
    other: SSAValue | None


@dataclass
class _Tile:
    """One output tile: batch z, rows [i0, i0 + tm) and columns [j0, j0 + tn) of C."""

    z: SSAValue
    i0: SSAValue
    j0: SSAValue
    tm: SSAValue
    tn: SSAValue


def build_entry(name: str, kernels: _Kernels, key: MatmulKey) -> func.FuncOp:
    """The dispatch entry: bindings (MatmulKey.binding_roles), then ENTRY_INDEX_ARGS; per tile,
    the bias fill, the kernel call and the epilogue call (each when the key has it; one call of
    the fused kernel instead when MatmulKey.fuses_epilogue), the workgroup's tiles taken in
    turn. Embedded kernels: the matmul call also gets the workspace
    (see workspace_args), and every call returns an i32 (ignored)."""
    binding = iree.BindingType()
    roles = key.binding_roles
    arg_types = [*[binding] * len(roles), *[IndexType()] * len(ENTRY_INDEX_ARGS)]
    block = Block(arg_types=arg_types)
    args = _EntryArgs(
        dict(zip(roles, block.args[: len(roles)], strict=True)),
        _ProductDims(*block.args[len(roles) :]),
    )
    with ImplicitBuilder(block):
        views = _bind_operands(key, args)
        workspace = workspace_args(kernels.workspace_bytes) if kernels.workspace_bytes else []
        checked_k = _checked_k(args.dims)
        grid = _TileGrid.build(args.dims.m, args.dims.n, args.dims.batch, key)
        first = iree.DispatchWorkgroupIdOp(0)
        stride = iree.DispatchWorkgroupCountOp(0)
        loop = scf.ForOp(first, grid.count, stride, [], Block(arg_types=[IndexType()]))
        func.ReturnOp()
    with ImplicitBuilder(loop.body.block) as (t,):
        tile = _tile_of(t, grid, args.dims)
        _build_tile_calls(key, kernels, views, tile, args.dims, [checked_k, *workspace])
        scf.YieldOp()
    return func.FuncOp(name, (arg_types, []), Region(block))


@dataclass(frozen=True)
class _Kernels:
    """The functions an entry calls: the matmul kernel (the fused one when the key fuses its
    epilogue) and, when its key has a bias or an epilogue it does not fuse, the epilogue kernel
    (their embedded entry points when a workspace is lent)."""

    matmul: str
    epilogue: str | None
    workspace_bytes: int | None
    """The workspace each matmul call is lent (embedded kernels), or None (the plugin's)."""

    @property
    def embedded(self) -> bool:
        return self.workspace_bytes is not None

    @property
    def results(self) -> list[Attribute]:
        """What a call returns: the embedded entry points' i32 (ignored), else nothing."""
        return [IntegerType(32)] if self.embedded else []


def _build_tile_calls(
    key: MatmulKey,
    kernels: _Kernels,
    views: _Views,
    tile: _Tile,
    dims: _ProductDims,
    k_and_workspace: list[SSAValue],
) -> None:
    """The calls of one tile: the bias fill, the kernel, the epilogue (each when the key has
    it), or the fused kernel's one call, all on the same C tile (or where it lies in the
    tensor C is written into). `k_and_workspace`: the checked K, then the embedded kernel's
    workspace arguments."""
    checked_k, *workspace = k_and_workspace
    lhs = _input_tile(views.a, key, key.lhs_view, tile, [tile.i0, 0], [tile.tm, dims.k], False)
    if key.packed_rhs:
        rhs = _packed_operand_tile(views.b, key, tile)
    else:
        rhs = _input_tile(views.b, key, key.rhs_view, tile, [0, tile.j0], [dims.k, tile.tn], True)
    c_tile = _output_tile(views.c, key, tile)
    if key.fuses_epilogue:
        _call_fused(key, kernels, (lhs, rhs, c_tile), views, tile, k_and_workspace)
        return
    if views.bias is not None:
        _call_epilogue(key, kernels, c_tile, tile, bias=_bias_tile(views.bias, tile))
    accumulate = _index(int(key.kernel_accumulates))
    sizes = [tile.tm, tile.tn, checked_k, accumulate.result]
    func.CallOp(kernels.matmul, [*lhs, *rhs, *c_tile, *sizes, *workspace], kernels.results)
    if key.has_epilogue:
        other = None
        if views.other is not None:
            at, extent = [tile.i0, tile.j0], [tile.tm, tile.tn]
            other = _operand_tile(views.other, key, tile, at, extent, False)
        _call_epilogue(key, kernels, c_tile, tile, other=other)


def _call_fused(
    key: MatmulKey,
    kernels: _Kernels,
    operands: tuple[list[SSAValue], list[SSAValue], list[SSAValue]],
    views: _Views,
    tile: _Tile,
    k_and_workspace: list[SSAValue],
) -> None:
    """The tile's one call of the fused kernel: A, packed B and C as the matmul's, the sizes
    and accumulate (1 only into a tied init: a bias is the product's start, bias mode `set`),
    then the bias's and the other tensor's tiles and the kinds (kernel_abi.
    PACKED_EPILOGUE_PARAMS), then the embedded kernel's workspace."""
    checked_k, *workspace = k_and_workspace
    lhs, rhs, c_tile = operands
    zero = _index(0).result
    unused_base = c_tile[0]  # any base of the right type: the kernel ignores it
    bias_args = [unused_base, zero, zero]
    if views.bias is not None:
        bias_args = _bias_tile(views.bias, tile)
    other_args = [unused_base, zero, zero, zero]
    if views.other is not None:
        at, extent = [tile.i0, tile.j0], [tile.tm, tile.tn]
        other_args = _operand_tile(views.other, key, tile, at, extent, False)
    kinds = (
        BIAS_MODES["set" if key.bias is not None else "none"],
        ACTIVATIONS[key.activation.value if key.activation else "none"],
        BINARY_OPS[key.binary.value if key.binary else "none"],
    )
    kind_args = [_index(kind).result if kind else zero for kind in kinds]
    accumulate = _index(int(key.accumulate)).result
    sizes = [tile.tm, tile.tn, checked_k, accumulate]
    call_args = [*lhs, *rhs, *c_tile, *sizes, *bias_args, *other_args, *kind_args, *workspace]
    func.CallOp(kernels.matmul, call_args, kernels.results)


def _bind_operands(key: MatmulKey, args: _EntryArgs) -> _Views:
    """The bindings viewed as memrefs of their stored shapes ([B,] rows, cols; the bias [N])."""
    assert isinstance(key.lhs, TensorType) and isinstance(key.rhs, TensorType)
    assert isinstance(key.out, TensorType)
    zero = _index(0)

    def subspan(role: str, ty: Attribute, dims: list[SSAValue]) -> SSAValue:
        assert isinstance(ty, TensorType)
        bind = args.bindings[role]
        view = _binding_memref(ty)
        return iree.BindingSubspanOp(bind, zero.result, view, _dynamic(ty, dims)).result

    def stored(role: str, ty: Attribute, view: StridedView | None) -> list[SSAValue]:
        return _static_dims(ty) if view is not None else args.dims.stored(role, key)

    a = subspan("lhs", key.lhs, stored("lhs", key.lhs, key.lhs_view))
    b = subspan("rhs", key.rhs, stored("rhs", key.rhs, key.rhs_view))
    c_role = "init" if key.accumulate else "out"
    if key.out_view is not None:
        c = subspan(c_role, key.out_view.base, _static_dims(key.out_view.base))
    else:
        c = subspan(c_role, key.out, args.dims.stored("init", key))
    bias = other = None
    if key.bias is not None:
        bias = subspan("bias", key.bias, [args.dims.n_init])
    if key.binary is not None:
        other = subspan("other", key.out, args.dims.stored("out", key))
    return _Views(a, b, c, bias, other)


def _bias_tile(view: SSAValue, tile: _Tile) -> list[SSAValue]:
    """Base, offset and stride of the bias's columns [j0, j0 + tn)."""
    assert isinstance(view.type, MemRefType)
    layout = view.type.layout
    assert isinstance(layout, StridedLayoutAttr)
    tile_type = MemRefType(
        view.type.get_element_type(), [DYNAMIC_INDEX], StridedLayoutAttr(layout.strides, None)
    )
    sub = memref.SubviewOp.get(view, [tile.j0], [tile.tn], [1], tile_type)
    meta = memref.ExtractStridedMetaDataOp(sub)
    return [meta.base_buffer, meta.offset, meta.strides[0]]


def _call_epilogue(
    key: MatmulKey,
    kernels: _Kernels,
    c_tile: list[SSAValue],
    tile: _Tile,
    *,
    bias: list[SSAValue] | None = None,
    other: list[SSAValue] | None = None,
) -> None:
    """One epilogue call on the C tile: `C = bias` when given the bias tile (before the
    product), else the key's activation and binary op (with the other tensor's tile)."""
    assert kernels.epilogue is not None
    zero = _index(0).result
    unused_base = c_tile[0]  # any base of the right type: the kernel ignores it
    bias_args = bias or [unused_base, zero, zero]
    other_args = other or [unused_base, zero, zero, zero]
    if bias is not None:
        kinds = (BIAS_MODES["set"], ACTIVATIONS["none"], BINARY_OPS["none"])
    else:
        kinds = (
            BIAS_MODES["none"],
            ACTIVATIONS[key.activation.value if key.activation else "none"],
            BINARY_OPS[key.binary.value if key.binary else "none"],
        )
    kind_args = [_index(kind).result if kind else zero for kind in kinds]
    call_args = [*c_tile, *bias_args, *other_args, tile.tm, tile.tn, *kind_args]
    func.CallOp(kernels.epilogue, call_args, kernels.results)


def _static_dims(ty: Attribute) -> list[SSAValue]:
    """The sizes of a static shape (a tensor read by strides), as index constants."""
    assert isinstance(ty, TensorType)
    return [_index(size).result for size in ty.get_shape()]


def _packed_operand_tile(view: SSAValue, key: MatmulKey, tile: _Tile) -> list[SSAValue]:
    """Base, offset and (Kp, PACKED_B_PANEL) of the tile's columns of a packed B: the panel of
    column j0 starts at j0 * Kp (kernels/mips_kernels.h, "Pre-packed B")."""
    kp = _index(packed_rows(key.packed_k))
    meta = memref.ExtractStridedMetaDataOp(view)
    offset = arith.AddiOp(meta.offset, arith.MuliOp(tile.j0, kp))
    return [meta.base_buffer, offset.result, kp.result, _index(PACKED_B_PANEL).result]


def _size_pairs(dims: _ProductDims) -> list[tuple[SSAValue, SSAValue]]:
    """The sizes that must agree: K of A and of B, the batch of A and B, the rows, columns
    and batch of the product and of its init."""
    return [
        (dims.k, dims.k_rhs),
        (dims.batch, dims.batch_rhs),
        (dims.m, dims.m_init),
        (dims.n, dims.n_init),
        (dims.batch, dims.batch_init),
    ]


def _equal_constants(a: SSAValue, b: SSAValue) -> bool:
    """Whether `a` and `b` are the same value or equal index constants (static sizes, which
    the op's verifier checked)."""
    if a is b:
        return True
    ops = (a.owner, b.owner)
    if not all(isinstance(o, arith.ConstantOp) for o in ops):
        return False
    return ops[0].value == ops[1].value  # type: ignore[union-attr]


def _assert_sizes_agree(dims: _ProductDims) -> None:
    """On the host, before the dispatch: a run-time check (`cf.assert`, kept by
    --iree-opt-strip-assertions=false) that dynamic sizes agree. The entry's own check
    (_checked_k) makes the kernel refuse the call, which fails the dispatch on the plugin
    route only: IREE ignores an embedded kernel's result, and C stayed as it was (zeros for
    A 3x4 times B 5x6)."""
    pairs = [(a, b) for a, b in _size_pairs(dims) if not _equal_constants(a, b)]
    if not pairs:
        return
    agree = arith.CmpiOp(*pairs[0], "eq").result
    for mine, theirs in pairs[1:]:
        agree = arith.AndIOp(agree, arith.CmpiOp(mine, theirs, "eq")).result
    cf.AssertOp(
        agree,
        "the sizes of a matmul's operands do not agree at run time (K of the two inputs, "
        "their batch, or the result's and its init's)",
    )


def _checked_k(dims: _ProductDims) -> SSAValue:
    """K, or -1 when the operands do not fit (dynamic shapes only: static ones were verified),
    which the kernel rejects instead of reading out of bounds."""
    (k, k_rhs), *others = _size_pairs(dims)
    agree = arith.CmpiOp(k, k_rhs, "eq").result
    for mine, theirs in others:
        agree = arith.AndIOp(agree, arith.CmpiOp(mine, theirs, "eq")).result
    return arith.SelectOp(agree, dims.k, _index(-1)).result


def _input_tile(
    view_memref: SSAValue,
    key: MatmulKey,
    view: StridedView | None,
    tile: _Tile,
    offsets: list[SSAValue | int],
    sizes: list[SSAValue | int],
    rhs: bool,
) -> list[SSAValue]:
    """The kernel's arguments for A (`rhs` False) or B: the tile of the operand, or of the
    view it is read through (strided_operands)."""
    transposed = key.transpose_rhs if rhs else key.transpose_lhs
    if view is None:
        return _operand_tile(view_memref, key, tile, offsets, sizes, transposed)
    batch = tile.z if key.batched else None
    return strided_tile_args(view_memref, view, batch, offsets[0], offsets[1], transposed)


def _output_tile(view_memref: SSAValue, key: MatmulKey, tile: _Tile) -> list[SSAValue]:
    """The kernel's arguments for C: its tile, or where the tile lies in the tensor C is
    written into by strides (strided_operands.fold_output)."""
    if key.out_view is None:
        return _operand_tile(view_memref, key, tile, [tile.i0, tile.j0], [tile.tm, tile.tn], False)
    batch = tile.z if key.batched else None
    return strided_tile_args(view_memref, key.out_view, batch, tile.i0, tile.j0, False)


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


def workspace_type(nbytes: int) -> MemRefType[Attribute]:
    """`memref<NBYTESxi8, #iree_codegen.workgroup_local>`."""
    return MemRefType(IntegerType(8), [nbytes], NoneAttr(), iree.WorkgroupLocalAttr())


def workspace_args(nbytes: int) -> list[SSAValue]:
    """The embedded kernel's workspace of `nbytes`, built at the implicit builder:
    workgroup-local memory (no heap: IREE hands each worker a block of it) and its size in
    bytes. Passed to the call as the alloc's own result: IREE only places an alloc's result in
    local memory."""
    alloc = memref.AllocOp([], [], workspace_type(nbytes))
    size = _index(nbytes)
    return [alloc.memref, size.result]


def external_kernel(symbol: str, inputs: list[Attribute], embedded: bool) -> func.FuncOp:
    """The declaration of a kernel taking `inputs`: `llvm.bareptr` (each rank-0 base memref is
    one pointer); embedded, also `hal.import.static` (a direct call into the linked object)
    and the entry point's i32 result."""
    decl = func.FuncOp.external(symbol, inputs, [IntegerType(32)] if embedded else [])
    decl.attributes["llvm.bareptr"] = BoolAttr.from_bool(True)
    if embedded:
        decl.attributes["hal.import.static"] = UnitAttr()
    return decl


def build_epilogue_declaration(
    symbol: str, element_type: Attribute, embedded: bool = False
) -> func.FuncOp:
    """`func.func private @mips_epilogue_<t>(...)`: C, bias and other as base pointer, offset
    and strides, then m, n and the three kinds (kernel_abi.EPILOGUE_PARAMS). `embedded`: the
    object's entry point, with the same arguments (no workspace) and an i32 result."""
    base = MemRefType(element_type, [])
    index = IndexType()
    c, bias, other = [base, *[index] * 3], [base, *[index] * 2], [base, *[index] * 3]
    return external_kernel(symbol, [*c, *bias, *other, *[index] * 5], embedded)


def build_fused_declaration(
    symbol: str, element_type: Attribute, workspace_bytes: int | None = None
) -> func.FuncOp:
    """`func.func private @mips_matmul_packed_epilogue_<t>(...)`: the matmul's arguments
    (A, packed B, C, m, n, k, accumulate), then the bias and the other tensor (base pointer,
    offset, strides) and the three kinds (kernel_abi.PACKED_EPILOGUE_PARAMS). Embedded when
    `workspace_bytes` is given: then the workspace and its size, and an i32 result."""
    base = MemRefType(element_type, [])
    index = IndexType()
    operand = [base, index, index, index]
    inputs = [*operand * 3, *[index] * 4, base, index, index, *operand, *[index] * 3]
    if workspace_bytes is not None:
        inputs += [workspace_type(workspace_bytes), index]
    return external_kernel(symbol, inputs, workspace_bytes is not None)


def build_kernel_declaration(
    symbol: str, element_type: Attribute, workspace_bytes: int | None = None
) -> func.FuncOp:
    """`func.func private @mips_matmul_<t>(memref<t>, index, ...) attributes {llvm.bareptr}`.

    With `llvm.bareptr` each rank-0 base memref is passed as one pointer, matching the C
    params struct of kernels/mips_kernels.h. `embedded`: the object's direct entry point
    (`hal.import.static`) when `workspace_bytes` is given: the same arguments, then the
    workspace (a memref of that many bytes) and its size, and an i32 result.
    """
    base = MemRefType(element_type, [])
    index = IndexType()
    operand = [base, index, index, index]
    inputs = [*operand, *operand, *operand, index, index, index, index]
    if workspace_bytes is not None:
        inputs += [workspace_type(workspace_bytes), index]
    return external_kernel(symbol, inputs, workspace_bytes is not None)


def executable_objects(path: str) -> iree.ExecutableObjectsAttr:
    """`hal.executable.objects` linking the object at `path` into the embedded-ELF variant."""
    target = iree.ExecutableTargetAttr(StringAttr("llvm-cpu"), StringAttr("embedded-elf-x86_64"))
    objects = ArrayAttr([iree.ExecutableObjectAttr(StringAttr(path))])
    return iree.ExecutableObjectsAttr(ArrayAttr([target]), ArrayAttr([objects]))


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


def build_pack_declaration(
    symbol: str, element_type: Attribute, embedded: bool = False
) -> func.FuncOp:
    """`func.func private @mips_pack_b_<t>(memref<t>, index x3, memref<t>, index x3)`, with
    `llvm.bareptr` (the pack params of kernels/mips_kernels.h). `embedded`: the object's entry
    point, with the same arguments (no workspace) and an i32 result."""
    base, index = MemRefType(element_type, []), IndexType()
    b, packed = [base, index, index, index], [base, index]
    return external_kernel(symbol, [*b, *packed, index, index], embedded)


def build_pack_workgroup_count() -> Region:
    """The pack grid from the workload (N): x = ⌈N / PACK_TILE_N⌉."""
    block = Block(arg_types=[IndexType()])
    with ImplicitBuilder(block):
        tiles = arith.CeilDivSIOp(block.args[0], _index(PACK_TILE_N))
        one = _index(1)
        iree.ReturnOp(tiles.result, one.result, one.result)
    return Region(block)


def build_pack_entry(name: str, symbol: str, key: PackKey, embedded: bool = False) -> func.FuncOp:
    """The pack entry: bindings (B, packed B); one kernel call per PACK_TILE_N columns of B,
    which it writes at their panel's offset j0 * Kp of the packed buffer. `embedded`: the call
    returns an i32 (ignored)."""
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
            [IntegerType(32)] if embedded else [],
        )  # fmt: skip
        scf.YieldOp()
    return func.FuncOp(name, ([binding, binding], []), Region(block))


@dataclass
class ExecutableCache:
    """Builds one `stream.executable` per distinct matmul and puts it at the module's top."""

    module: ModuleOp
    backend: str = DEFAULT_BACKEND
    kernel_link: str = "plugin"
    entries: dict[MatmulKey | PackKey, SymbolRefAttr] = field(default_factory=dict)
    object_path: str | None = None
    """The embedded kernel object, found on the first executable that needs it."""
    workspace_bytes: int = EMBEDDED_WORKSPACE_MAX_BYTES
    """The workgroup-local memory each embedded kernel call is lent
    (kernel_config.embedded_workspace_bytes of the target CPU)."""

    @property
    def embedded(self) -> bool:
        return self.kernel_link == "embedded"

    @property
    def lent_workspace(self) -> int | None:
        """The workspace an embedded matmul or attention call is lent; None on the plugin."""
        return self.workspace_bytes if self.embedded else None

    def symbol_for(self, key: MatmulKey) -> str:
        """The kernel this matmul's tiles call, with this module's backend."""
        assert isinstance(key.out, TensorType)
        if key.fuses_epilogue:
            return PACKED_EPILOGUE_SYMBOLS[type(key.out.get_element_type())]
        if key.packed_rhs:
            return PACKED_SYMBOLS[type(key.out.get_element_type())]
        symbol = matmul_symbol(key.out.get_element_type(), self.backend)
        assert symbol is not None
        return symbol

    def linked_symbol(self, symbol: str) -> str:
        """The function an entry calls for the kernel `symbol`: itself, or its embedded entry
        point."""
        return embedded_symbol(symbol) if self.embedded else symbol

    def kernels_for(self, key: MatmulKey) -> _Kernels:
        """The functions this matmul's entry calls: the kernel, and the epilogue kernel when
        the key fills tiles from a bias or has an epilogue."""
        assert isinstance(key.out, TensorType)
        epilogue = None
        if (key.bias is not None or key.has_epilogue) and not key.fuses_epilogue:
            epilogue = epilogue_symbol(key.out.get_element_type())
            assert epilogue is not None
            epilogue = self.linked_symbol(epilogue)
        symbol = self.linked_symbol(self.symbol_for(key))
        return _Kernels(symbol, epilogue, self.lent_workspace)

    def kernel_object(self, op: Operation) -> str:
        """The embedded kernel object's absolute path; an error located at `op` when it is
        missing or stale."""
        if self.object_path is None:
            try:
                self.object_path = str(embedded_object_path())
            except ValueError as err:
                raise MipscError(f"{PASS_NAME}: {err}", location_of(op)) from None
        return self.object_path

    def entry_for(self, key: MatmulKey, op: Operation) -> SymbolRefAttr:
        if (ref := self.entries.get(key)) is not None:
            return ref
        assert isinstance(key.out, TensorType)
        element_type = key.out.get_element_type()
        index = len(self.entries)
        # Entry names must be unique module-wide: IREE links all executables into one.
        exe_name, entry_name = f"mips_exe_{index}", f"mips_matmul_{index}"
        kernels = self.kernels_for(key)
        declare = build_fused_declaration if key.fuses_epilogue else build_kernel_declaration
        declarations = [declare(kernels.matmul, element_type, kernels.workspace_bytes)]
        if kernels.epilogue is not None:
            declarations.append(
                build_epilogue_declaration(kernels.epilogue, element_type, self.embedded)
            )
        inner = ModuleOp([*declarations, build_entry(entry_name, kernels, key)])
        export = iree.ExecutableExportOp(entry_name, build_workgroup_count(key))
        return self.add_executable(key, op, (exe_name, entry_name), export, inner)

    def add_executable(
        self,
        key: MatmulKey | PackKey,
        op: Operation,
        names: tuple[str, str],
        export: iree.ExecutableExportOp,
        inner: ModuleOp,
    ) -> SymbolRefAttr:
        """Puts the executable `names[0]` with `export` (entry `names[1]`) and `inner` at the
        module's top, with the kernel object when embedded (an error located at `op` when it
        is missing); its entry's reference, kept for `key`."""
        exe_name, entry_name = names
        executable = iree.ExecutableOp(exe_name, [export, inner])
        if self.embedded:
            executable.attributes["hal.executable.objects"] = executable_objects(
                self.kernel_object(op)
            )
        self.module.body.block.insert_op_before(executable, self.module.body.block.first_op)  # type: ignore[arg-type]
        ref = SymbolRefAttr(exe_name, [entry_name])
        self.entries[key] = ref
        return ref

    def pack_entry_for(self, key: PackKey, op: Operation) -> SymbolRefAttr:
        """The pack executable of a B of this type and orientation (made on first use)."""
        if (ref := self.entries.get(key)) is not None:
            return ref
        element_type = key.source.get_element_type()
        symbol = self.linked_symbol(PACK_SYMBOLS[type(element_type)])
        index = len(self.entries)
        exe_name, entry_name = f"mips_exe_{index}", f"mips_pack_{index}"
        declaration = build_pack_declaration(symbol, element_type, self.embedded)
        entry = build_pack_entry(entry_name, symbol, key, self.embedded)
        export = iree.ExecutableExportOp(entry_name, build_pack_workgroup_count())
        inner = ModuleOp([declaration, entry])
        return self.add_executable(key, op, (exe_name, entry_name), export, inner)


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
    fill_bias: bool = True
    model: TileModel | None = None
    """The tile cost model of the target CPU (None: this machine's)."""

    def tiles_for(self, op: mips.MatmulLikeOp) -> tuple[int, int]:
        """The pass options when given, else a choice for this op's shape."""
        out = op.result.type
        assert isinstance(out, TensorType)
        *batch, m, n = out.get_shape()
        tm, tn = self.tile_m, self.tile_n
        if not (tm and tn):
            element = out.get_element_type()
            element_bytes = element.bitwidth // 8 if isinstance(element, AnyFloat) else 4
            chosen = choose_tiles(
                m, n, batch[0] if batch else 1, _k_of(op), self.workers, op.is_rhs_packed,
                element_bytes, self.model,
            )  # fmt: skip
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
        bias = broadcast_bias(op) if self.fill_bias else None
        return MatmulKey(
            op.lhs.type,
            op.rhs.type,
            out_type,
            op.is_lhs_transposed,
            op.is_rhs_transposed,
            bias is None and not mips.is_zero_init(op.init),
            *self.tiles_for(op),
            bias=bias.type if bias is not None else None,
            activation=op.activation_kind,
            binary=op.binary_kind,
            packed_rhs=op.is_rhs_packed,
            packed_k=_k_of(op) if op.is_rhs_packed else 0,
        )

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: mips.MatmulLikeOp, rewriter: PatternRewriter) -> None:
        key = self.key_for(op)
        if (why := _nothing_to_compute(op)) is not None:
            if op.has_epilogue:
                raise MipscError(
                    f"{op.name} with a fused epilogue computes nothing ({why}): fuse-epilogues "
                    "leaves such products alone",
                    location_of(op),
                )
            emit_remark(op, PASS_NAME, f"no kernel call: {why}", kernel=f"none ({why})")
            rewriter.replace(op, [], [op.init])
            return
        key, inputs = _read_by_strides(op, key)
        output = None if key.accumulate else fold_output(op.result)
        if output is not None:
            key = replace(key, out_view=output.view)
        entry = self.executables.entry_for(key, op)
        _report_tiles(op, key, self.executables.symbol_for(key))
        with building_before(rewriter, op):
            dims = _ProductDims.build(op, key)
            _assert_sizes_agree(dims)
            dispatch = _build_dispatch(op, key, entry, dims, inputs)
        init, operands = op.init, (op.lhs, op.rhs)
        if output is not None:
            _write_into(op, output, dispatch.results[0], rewriter)
        else:
            rewriter.replace(op, [], [dispatch.results[0]])
        if not key.accumulate:
            _erase_dead_zero_fill(init, rewriter)
        for operand in operands:
            erase_dead_views(operand, rewriter)


def _write_into(
    op: mips.MatmulLikeOp, output: OutputView, result: SSAValue, rewriter: PatternRewriter
) -> None:
    """The dispatch's `result` (C written by strides) stands for the transpose the product's
    result became; the product, the reshapes to the transpose and what only viewed them go."""
    init = output.transpose.outputs[0]
    rewriter.replace(output.transpose, [], [result])
    if isinstance(init.owner, Operation) and not init.uses:
        rewriter.erase(init.owner)
    for reshape in reversed(output.reshapes):
        erase_dead_users(reshape.results[0], rewriter)
        rewriter.erase(reshape)
    erase_dead_users(op.result, rewriter)
    rewriter.erase(op)


def _read_by_strides(
    op: mips.MatmulLikeOp, key: MatmulKey
) -> tuple[MatmulKey, tuple[SSAValue, SSAValue]]:
    """The key and the A and B tensors to bind: an operand that is a view the kernel can read
    by strides (strided_operands.fold_view) is replaced by the tensor it views (never a
    pre-packed B: the packed buffer is read as it is)."""
    inputs = [op.lhs, op.rhs]
    views: list[StridedView | None] = [None, None]
    for i, value in enumerate(inputs):
        if i == 1 and op.is_rhs_packed:
            continue
        if (folded := fold_view(value)) is not None:
            inputs[i], views[i] = folded
    if views == [None, None]:
        return key, (op.lhs, op.rhs)
    key = replace(
        key,
        lhs=inputs[0].type,
        rhs=inputs[1].type,
        lhs_view=views[0],
        rhs_view=views[1],
    )
    return key, (inputs[0], inputs[1])


def broadcast_bias(op: mips.MatmulLikeOp) -> SSAValue | None:
    """The 1-D bias [N] whose broadcast over the rows (and batch) is the op's init and has no
    other use (a linear's bias), possibly collapsed to the op's rank ([.., M, N] -> [M', N]);
    None for any other init. The lowering then fills each tile from it instead."""
    value = op.init
    owner = value.owner
    if isinstance(owner, tensor.CollapseShapeOp):
        groups = [[i.value.data for i in group] for group in owner.reassociation]
        if value.uses.get_length() != 1 or len(groups[-1]) != 1:
            return None
        value = owner.src
        owner = value.owner
    if not isinstance(owner, BroadcastOp) or value.uses.get_length() != 1:
        return None
    bias = owner.input
    out = value.type
    if not isinstance(bias.type, TensorType) or bias.type.get_num_dims() != 1:
        return None
    assert isinstance(out, TensorType)
    broadcast_dims = list(owner.dimensions.get_values())
    return bias if broadcast_dims == list(range(out.get_num_dims() - 1)) else None


@dataclass
class LowerPackRhs(RewritePattern):
    """`mips.pack_rhs` → a `flow.dispatch` of the pack executable over B's columns."""

    executables: ExecutableCache

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: mips.PackRhsOp, rewriter: PatternRewriter) -> None:
        source = op.source.type
        assert isinstance(source, TensorType)
        key = PackKey(source, op.transpose is not None)
        entry = self.executables.pack_entry_for(key, op)
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
        symbol = self.executables.linked_symbol(PACK_SYMBOLS[type(source.get_element_type())])
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
    """The remark `--report` shows: the kernel, the tiles (how many, when static) and the
    epilogue fused into them (`epilogue: bias, gelu`)."""
    assert isinstance(key.out, TensorType)
    tiles = f"{key.tile_m}x{key.tile_n}"
    *batch, rows, cols = key.out.get_shape()
    if DYNAMIC_INDEX in (rows, cols, *batch):
        grid = f"{tiles} tiles"
    else:
        count = -(-rows // key.tile_m) * -(-cols // key.tile_n) * (batch[0] if batch else 1)
        grid = f"{count} {tiles} tile{'s' if count > 1 else ''}"
    packed = "; B pre-packed at load" if key.packed_rhs else ""
    steps = ["bias"] if key.bias is not None else []
    steps += [step.value for step in (key.activation, key.binary) if step is not None]
    fused = f"; epilogue: {', '.join(steps)}" if steps else ""
    emit_remark(
        op,
        PASS_NAME,
        f"calls {symbol} per {tiles} tile{fused}",
        kernel=f"{symbol} ({grid}{packed}{fused})",
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
        elif key.bias is not None and (bias := broadcast_bias(op)) is not None:
            init = [m, dim_size(bias, 0), batch]  # the bias's own length: checked against N
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


def _own_sizes(value: SSAValue) -> list[SSAValue]:
    """The sizes of every dim of the tensor `value`, read from `value` itself. A dispatch
    operand must be described by its own sizes: IREE resolves a tensor's dims from the
    dispatch that uses it, so describing the epilogue's other tensor by the result's sizes
    folded away the host's check that they agree (fuse-epilogues), and a smaller tensor was
    read out of bounds (wrong numbers, then a crash)."""
    assert isinstance(value.type, TensorType)
    return [dim_size(value, axis) for axis in range(value.type.get_num_dims())]


def _dynamic(ty: Attribute, dims: list[SSAValue]) -> list[SSAValue]:
    """The values of the dynamic dims of `ty`, among the sizes of all its dims (none for a
    static type, such as a packed B, whatever `dims` says)."""
    assert isinstance(ty, TensorType)
    if DYNAMIC_INDEX not in ty.get_shape():
        return []
    return [v for v, d in zip(dims, ty.get_shape(), strict=True) if d == DYNAMIC_INDEX]


def _build_dispatch(
    op: mips.MatmulLikeOp,
    key: MatmulKey,
    entry: SymbolRefAttr,
    dims: _ProductDims,
    inputs: tuple[SSAValue, SSAValue],
) -> iree.DispatchOp:
    """Builds the `flow.dispatch` of `entry` over the workload (M, N, K, batch) on the tensors
    `inputs` (the operands, or the tensors they are read from by strides); a non-zero init is
    tied to the result, which the kernel accumulates into; the bias and the epilogue's other
    tensor follow it (MatmulKey.binding_roles)."""
    tensors = list(inputs)
    tensor_dims = [] if key.lhs_view else _dynamic(op.lhs.type, dims.stored("lhs", key))
    tensor_dims += [] if key.rhs_view else _dynamic(op.rhs.type, dims.stored("rhs", key))
    if key.accumulate:
        tensors.append(op.init)
        tensor_dims += _dynamic(op.init.type, dims.stored("init", key))
    if key.bias is not None and (bias := broadcast_bias(op)) is not None:
        tensors.append(bias)
        tensor_dims += _dynamic(bias.type, [dims.n_init])
    if op.other is not None:
        tensors.append(op.other)
        tensor_dims += _dynamic(op.other.type, _own_sizes(op.other))
    return iree.DispatchOp(
        entry,
        workload=[dims.m, dims.n, dims.k, dims.batch],
        arguments=[
            *tensors,
            *(dims.m, dims.n, dims.k, dims.batch, dims.k_rhs, dims.batch_rhs),
            *(dims.m_init, dims.n_init, dims.batch_init),
        ],
        argument_dims=tensor_dims,
        result_types=[key.out_view.base if key.out_view else key.out],
        result_dims=[] if key.out_view else _dynamic(key.out, dims.stored("out", key)),
        tied_operands=[2] if key.accumulate else None,
    )


def _erase_dead_zero_fill(init: SSAValue, rewriter: PatternRewriter) -> None:
    """Remove the fill (or the bias's broadcast), and what only fed it, that the kernel call
    made unnecessary."""
    worklist = [init.owner]
    while worklist:
        op = worklist.pop()
        if not isinstance(op, Operation) or op.parent is None or any(r.uses for r in op.results):
            continue
        # A fill or broadcast on tensors only makes a value; xDSL's linalg ops do not say so.
        makes_value = (isinstance(op, FillOp) and op.res) or (
            isinstance(op, BroadcastOp) and op.result
        )
        if not (is_side_effect_free(op) or makes_value):
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
    target_cpu: str = HOST
    """The CPU the tiles are chosen for (`host`, or an LLVM name such as `znver4`): the tile
    cost model of its kernel configuration entry (mipsc.tiling.tile_model)."""
    backend: str = DEFAULT_BACKEND
    """The kernel library the tiles call: builtin, or openblas (f32 only; see the module doc)."""
    kernel_link: str = DEFAULT_KERNEL_LINK
    """Where the kernels come from: embedded (linked into the module) or plugin; empty:
    embedded, or plugin for the openblas backend (kernel_abi.resolve_kernel_link)."""
    fill_bias: bool = True
    """Fill each tile from a broadcast bias in the dispatch (True), or let IREE materialize
    the broadcast init as a dispatch of its own (False)."""

    def __post_init__(self) -> None:
        if self.backend not in KERNEL_BACKENDS:
            raise MipscError(
                f"{PASS_NAME}: unknown backend '{self.backend}' (known: "
                f"{', '.join(KERNEL_BACKENDS)})"
            )
        try:
            resolve_kernel_link(self.kernel_link, self.backend)
        except ValueError as err:
            raise MipscError(f"{PASS_NAME}: {err}") from None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        # lower_attention builds on this module's executables (imported here, not at the top)
        from mipsc.transforms.lower_attention import LowerAttention

        link = resolve_kernel_link(self.kernel_link, self.backend)
        workspace = embedded_workspace_bytes(self.target_cpu)
        cache = ExecutableCache(op, self.backend, link, workspace_bytes=workspace)
        PatternRewriteWalker(
            GreedyRewritePatternApplier(
                [
                    LowerMatmul(
                        cache,
                        self.tile_m,
                        self.tile_n,
                        self.workers,
                        self.fill_bias,
                        tile_model(self.target_cpu),
                    ),
                    LowerPackRhs(cache),
                    LowerAttention(cache),
                ]
            ),
            apply_recursively=False,
        ).rewrite_module(op)
