"""`lower-mips-to-call`: bufferize each `mips.matmul` into an IREE dispatch that calls our kernel.

The host side becomes a `flow.dispatch` of a `stream.executable`. Its entry point receives the
buffers as `!stream.binding`s, views them as memrefs, picks its output tile from the workgroup
id, and calls the external kernel with the memref ABI: base pointer, offset and strides (in
elements) of each operand, then the tile sizes. IREE's task system spreads the workgroups (one
per tile) over the cores; the kernel comes from the executable plugin at run time.

A zero-filled init is not passed: the kernel writes `C = A·B` into a fresh result. Any other
init is tied to the result and the kernel accumulates `C += A·B` in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import arith, func, memref, tensor
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    BoolAttr,
    FloatAttr,
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
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.traits import is_side_effect_free

from mipsc.diagnostics import MipscError, location_of
from mipsc.dialects import iree, mips
from mipsc.kernel_abi import matmul_symbol

PASS_NAME = "lower-mips-to-call"


def _index(value: int) -> arith.ConstantOp:
    return arith.ConstantOp(IntegerAttr(value, IndexType()))


def is_zero_fill(value: SSAValue) -> bool:
    """True when `value` is `linalg.fill(0, tensor.empty)`: its old contents are never read."""
    fill = value.owner
    if not isinstance(fill, FillOp) or not isinstance(fill.outputs[0].owner, tensor.EmptyOp):
        return False
    constant = fill.inputs[0].owner
    return (
        isinstance(constant, arith.ConstantOp)
        and isinstance(constant.value, FloatAttr | IntegerAttr)
        and constant.value.value.data == 0
    )


@dataclass(frozen=True)
class MatmulKey:
    """What an executable depends on: identical matmuls share one executable."""

    lhs: Attribute
    rhs: Attribute
    out: Attribute
    accumulate: bool
    tile_m: int
    tile_n: int


def _binding_memref(ty: TensorType[Attribute]) -> MemRefType[Attribute]:
    """The memref view of a row-major tensor binding.

    The offset must stay dynamic (`offset: ?`): IREE packs several buffers into one allocation
    and passes the real offset only when the subspan's type leaves room for it.
    """
    rows, cols = ty.get_shape()
    row_stride = None if cols == DYNAMIC_INDEX else cols
    return MemRefType(ty.get_element_type(), [rows, cols], StridedLayoutAttr([row_stride, 1], None))


def _tile_memref(source: MemRefType[Attribute]) -> MemRefType[Attribute]:
    """The type `memref.subview` infers for a tile with dynamic offsets and sizes."""
    layout = source.layout
    assert isinstance(layout, StridedLayoutAttr)
    return MemRefType(
        source.get_element_type(),
        [DYNAMIC_INDEX, DYNAMIC_INDEX],
        StridedLayoutAttr(layout.strides, None),
    )


def build_workgroup_count(tile_m: int, tile_n: int) -> Region:
    """The host-side grid: x over N tiles, y over M tiles, from the workload (M, N, K)."""
    block = Block(arg_types=[IndexType()] * 3)
    m, n, _k = block.args
    tm, tn, one = _index(tile_m), _index(tile_n), _index(1)
    x = arith.CeilDivSIOp(n, tn)
    y = arith.CeilDivSIOp(m, tm)
    block.add_ops([tm, tn, one, x, y, iree.ReturnOp(x.result, y.result, one.result)])
    return Region(block)


def build_entry(name: str, symbol: str, key: MatmulKey) -> func.FuncOp:
    """The dispatch entry: bindings (A, B, C), then M, N, K, K of B; one kernel call per tile."""
    assert isinstance(key.lhs, TensorType) and isinstance(key.rhs, TensorType)
    assert isinstance(key.out, TensorType)
    binding = iree.BindingType()
    block = Block(arg_types=[binding, binding, binding, *[IndexType()] * 4])
    bind_a, bind_b, bind_c, m, n, k, k_rhs = block.args
    ops: list[Operation] = []

    zero = _index(0)
    ops.append(zero)

    def subspan(
        bind: SSAValue, ty: TensorType[Attribute], rows: SSAValue, cols: SSAValue
    ) -> SSAValue:
        dims = [v for v, d in zip((rows, cols), ty.get_shape(), strict=True) if d == DYNAMIC_INDEX]
        op = iree.BindingSubspanOp(bind, zero.result, _binding_memref(ty), dims)
        ops.append(op)
        return op.result

    a = subspan(bind_a, key.lhs, m, k)
    b = subspan(bind_b, key.rhs, k_rhs, n)
    c = subspan(bind_c, key.out, m, n)

    # This workgroup's tile: rows [i0, i0 + tm) and columns [j0, j0 + tn) of C.
    wg_x, wg_y = iree.DispatchWorkgroupIdOp(0), iree.DispatchWorkgroupIdOp(1)
    tile_m, tile_n = _index(key.tile_m), _index(key.tile_n)
    i0 = arith.MuliOp(wg_y, tile_m)
    j0 = arith.MuliOp(wg_x, tile_n)
    rest_m, rest_n = arith.SubiOp(m, i0), arith.SubiOp(n, j0)
    tm, tn = arith.MinSIOp(tile_m, rest_m), arith.MinSIOp(tile_n, rest_n)
    ops += [wg_x, wg_y, tile_m, tile_n, i0, j0, rest_m, rest_n, tm, tn]

    def tile(
        view: SSAValue, offsets: list[SSAValue | int], sizes: list[SSAValue]
    ) -> list[SSAValue]:
        assert isinstance(view.type, MemRefType)
        sub = memref.SubviewOp.get(view, offsets, sizes, [1, 1], _tile_memref(view.type))
        meta = memref.ExtractStridedMetaDataOp(sub)
        ops.extend([sub, meta])
        return [meta.base_buffer, meta.offset, *meta.strides]

    # A K mismatch (dynamic shapes only) becomes k = -1, which the kernel rejects.
    k_agree = arith.CmpiOp(k, k_rhs, "eq")
    invalid = _index(-1)
    checked_k = arith.SelectOp(k_agree, k, invalid)
    ops += [k_agree, invalid, checked_k]
    args = [
        *tile(a, [i0.result, 0], [tm.result, k]),
        *tile(b, [0, j0.result], [k, tn.result]),
        *tile(c, [i0.result, j0.result], [tm.result, tn.result]),
        tm.result,
        tn.result,
        checked_k.result,
    ]
    accumulate = _index(int(key.accumulate))
    ops.append(accumulate)
    ops.append(func.CallOp(symbol, [*args, accumulate.result], []))
    ops.append(func.ReturnOp())
    block.add_ops(ops)
    return func.FuncOp(name, ([binding] * 3 + [IndexType()] * 4, []), Region(block))


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


@dataclass
class ExecutableCache:
    """Builds one `stream.executable` per distinct matmul and puts it at the module's top."""

    module: ModuleOp
    entries: dict[MatmulKey, SymbolRefAttr] = field(default_factory=dict)

    def entry_for(self, key: MatmulKey) -> SymbolRefAttr:
        if (ref := self.entries.get(key)) is not None:
            return ref
        assert isinstance(key.out, TensorType)
        element_type = key.out.get_element_type()
        symbol = matmul_symbol(element_type)
        assert symbol is not None
        index = len(self.entries)
        # Entry names must be unique module-wide: IREE links all executables into one.
        exe_name, entry_name = f"mips_exe_{index}", f"mips_matmul_{index}"
        inner = ModuleOp(
            [build_kernel_declaration(symbol, element_type), build_entry(entry_name, symbol, key)]
        )
        export = iree.ExecutableExportOp(entry_name, build_workgroup_count(key.tile_m, key.tile_n))
        executable = iree.ExecutableOp(exe_name, [export, inner])
        self.module.body.block.insert_op_before(executable, self.module.body.block.first_op)  # type: ignore[arg-type]
        ref = SymbolRefAttr(exe_name, [entry_name])
        self.entries[key] = ref
        return ref


@dataclass
class LowerMatmul(RewritePattern):
    """`mips.matmul` → dims of M, N, K, then one `flow.dispatch` of the matmul's executable."""

    executables: ExecutableCache
    tile_m: int
    tile_n: int

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: mips.MatmulOp, rewriter: PatternRewriter) -> None:
        out_type = op.result.type
        assert isinstance(out_type, TensorType)
        if matmul_symbol(out_type.get_element_type()) is None:
            raise MipscError(
                f"mips.matmul on {out_type.get_element_type()} has no kernel", location_of(op)
            )
        accumulate = not is_zero_fill(op.init)
        key = MatmulKey(op.lhs.type, op.rhs.type, out_type, accumulate, self.tile_m, self.tile_n)
        entry = self.executables.entry_for(key)

        new_ops: list[Operation] = []

        def dim(value: SSAValue, axis: int) -> SSAValue:
            assert isinstance(value.type, TensorType)
            size = value.type.get_shape()[axis]
            index = _index(axis if size == DYNAMIC_INDEX else size)
            new_ops.append(index)
            if size != DYNAMIC_INDEX:
                return index.result
            dim_op = tensor.DimOp(value, index)
            new_ops.append(dim_op)
            return dim_op.result

        m, k, n = dim(op.lhs, 0), dim(op.lhs, 1), dim(op.rhs, 1)
        # K of rhs goes along: the entry passes k = -1 when it differs from K of lhs, so the
        # kernel fails the call instead of reading past B (static shapes were verified).
        k_rhs = dim(op.rhs, 0)

        def dynamic(ty: Attribute, dims: tuple[SSAValue, SSAValue]) -> list[SSAValue]:
            assert isinstance(ty, TensorType)
            return [v for v, d in zip(dims, ty.get_shape(), strict=True) if d == DYNAMIC_INDEX]

        tensors = [op.lhs, op.rhs] + ([op.init] if accumulate else [])
        # B is described by its own rows (k_rhs): IREE resolves a tensor's dims from the
        # dispatch that uses it, so describing it by K of A would hide the mismatch.
        tensor_dims = dynamic(op.lhs.type, (m, k)) + dynamic(op.rhs.type, (k_rhs, n))
        if accumulate:
            tensor_dims += dynamic(op.init.type, (m, n))
        dispatch = iree.DispatchOp(
            entry,
            workload=[m, n, k],
            arguments=[*tensors, m, n, k, k_rhs],
            argument_dims=tensor_dims,
            result_types=[out_type],
            result_dims=dynamic(out_type, (m, n)),
            tied_operands=[2] if accumulate else None,
        )
        new_ops.append(dispatch)
        for new_op in new_ops:
            new_op.location = op.location
        init = op.init
        rewriter.replace(op, new_ops, [dispatch.results[0]])
        if not accumulate:
            _erase_dead_zero_fill(init, rewriter)


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

    tile_m: int = 64
    tile_n: int = 128

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        cache = ExecutableCache(op)
        PatternRewriteWalker(
            LowerMatmul(cache, self.tile_m, self.tile_n), apply_recursively=False
        ).rewrite_module(op)
