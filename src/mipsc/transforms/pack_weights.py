"""`pack-weights`: a constant B is packed once, when the module loads, not by every call.

A `mips.matmul` whose B is a constant — a `util.global` that nothing stores to (a weight from
`dense<>`, `dense_resource<>` or `#flow.parameter.named<>`), or an inline literal — gets it in the
kernel's packed layout instead (kernels/mips_kernels.h, "Pre-packed B"): the pass adds

    util.global private @<weight>.packed : tensor<S x T>
    util.initializer {
      %w = util.global.load @<weight> : tensor<N x K x T>
      %b = util.optimization_barrier %w : tensor<N x K x T>
      %p = mips.pack_rhs transpose %b : tensor<N x K x T> -> tensor<S x T>
      util.global.store %p, @<weight>.packed : tensor<S x T>
      ... (the same four ops for every other weight)
      util.return
    }

and the matmul reads `util.global.load @<weight>.packed` with `packed_rhs`; lower-mips-to-call
then lowers the pack to a dispatch of mips_pack_b_<t> and the matmul to calls of
mips_matmul_packed_<t>. The barrier keeps IREE's const-eval (when it is on) from running the
pack at compile time, where no kernel plugin is loaded (shared notes: "Weights packed once, at
load time"). A literal first becomes a global of its own. One packed global per weight and
orientation, whatever the number of matmuls that use it.

When it pays is tiling.prepack_pays (f32 and bf16, static K and N; measured there): bf16
always, f32 from the target CPU's `prepack_f32_min_rows` rows of C (1 on every entry: a decode
step's weights too, which packed_thin streams fastest from huge pages; the plugin's pack
advises them, and mipsc's runtime collapses an embedded module's packed copies into them after
the load: mipsc.runtime.huge_pages). Memory:
the packed copy is an extra buffer of packed_size(K, N) elements, allocated when the module
loads; the original stays (it is the module's or the parameter file's mapped, read-only data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    DenseResourceAttr,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    TensorType,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from mipsc.dialects import mips, torch, util
from mipsc.kernel_abi import DEFAULT_BACKEND, PACK_SYMBOLS, packed_size
from mipsc.kernel_config import HOST
from mipsc.remarks import emit_remark, share_origin
from mipsc.tiling import TileModel, prepack_pays, tile_model

PASS_NAME = "pack-weights"


@dataclass(frozen=True)
class Weight:
    """Where a constant B comes from: a global (by name) or an inline value, and how it is
    stored ([N, K] when transposed)."""

    symbol: str | None
    value: Attribute | None
    transposed: bool


def constant_source(value: SSAValue) -> tuple[str | None, Attribute | None]:
    """(global name, None) or (None, literal value) when `value` is a constant, seen through
    the torch_c casts; (None, None) otherwise. Mutability is checked by the caller."""
    while isinstance(value.owner, torch.ToBuiltinTensorOp | torch.FromBuiltinTensorOp):
        value = value.owner.operand
    owner = value.owner
    if isinstance(owner, util.GlobalLoadOp):
        return owner.global_.root_reference.data, None
    if isinstance(owner, torch.ValueTensorLiteralOp):
        return None, owner.value
    if isinstance(owner, arith.ConstantOp) and isinstance(
        owner.value, DenseIntOrFPElementsAttr | DenseResourceAttr
    ):
        return None, owner.value
    return None, None


@dataclass
class PackedGlobals:
    """The packed globals and their initializers, made once per weight, put before the first
    function of the module."""

    module: ModuleOp
    made: dict[Weight, str] = field(default_factory=dict)
    initializer: util.InitializerOp | None = None
    """The one initializer that packs every weight (IREE compiles one per initializer:
    one per weight took iree-compile 1.9x the time on a 32-layer MLP)."""

    def _global(self, name: str) -> util.GlobalOp | None:
        for op in self.module.body.block.ops:
            if isinstance(op, util.GlobalOp) and op.sym_name.data == name:
                return op
        return None

    def is_constant(self, name: str) -> bool:
        """A global that nothing can change: immutable, and never stored to."""
        found = self._global(name)
        return found is not None and found.is_mutable is None

    def _unique(self, base: str) -> str:
        name, count = base, 0
        while self._global(name) is not None:
            count += 1
            name = f"{base}_{count}"
        return name

    def _insert(self, op: Operation) -> None:
        """A global before every initializer and function (an initializer runs in module
        order, so what it loads must be declared before it); the initializer after the
        module's own ones."""
        after = (
            util.GlobalOp if isinstance(op, util.GlobalOp) else util.GlobalOp | util.InitializerOp
        )
        block = self.module.body.block
        first = next((o for o in block.ops if not isinstance(o, after)), None)
        if first is None:
            block.add_op(op)
        else:
            block.insert_op_before(op, first)

    def packed_for(self, weight: Weight, source_type: TensorType[Attribute]) -> str:
        """The packed global of `weight` (made, with its initializer, on first use)."""
        if (name := self.made.get(weight)) is not None:
            return name
        source = weight.symbol
        if source is None:  # an inline literal: a global of its own first
            source = self._unique("__mipsc_weight")
            self._insert(_global_op(source, source_type, weight.value))
        suffix = ".packedT" if weight.transposed else ".packed"
        name = self._unique(source + suffix)
        k, n = mips.logical_shape(source_type.get_shape(), weight.transposed)
        packed_type = TensorType(source_type.get_element_type(), [packed_size(k, n)])
        self._insert(_global_op(name, packed_type, None))
        self._add_pack(source, source_type, name, weight.transposed)
        self.made[weight] = name
        return name

    def _add_pack(
        self, source: str, source_type: TensorType[Attribute], packed: str, transposed: bool
    ) -> None:
        """Append the pack of `source` into `packed` to the one initializer (made first)."""
        if self.initializer is None:
            block = Block([util.ReturnOp.create()])
            self.initializer = util.InitializerOp(block)
            self._insert(self.initializer)
        block = self.initializer.body.block
        assert block.last_op is not None
        block.insert_ops_before(_pack_ops(source, source_type, packed, transposed), block.last_op)


def _global_op(name: str, ty: TensorType[Attribute], value: Attribute | None) -> util.GlobalOp:
    properties: dict[str, Attribute] = {
        "sym_name": StringAttr(name),
        "sym_visibility": StringAttr("private"),
        "type": ty,
    }
    if value is not None:
        properties["initial_value"] = value
    return util.GlobalOp.create(properties=properties)


def _pack_ops(
    source: str, source_type: TensorType[Attribute], packed: str, transposed: bool
) -> list[Operation]:
    """load the weight, barrier, pack, store the packed global."""
    loaded = util.GlobalLoadOp.create(
        properties={"global": SymbolRefAttr(source)}, result_types=[source_type]
    )
    barrier = util.OptimizationBarrierOp(loaded.results[0])
    pack = mips.PackRhsOp(barrier.result, transpose=transposed)
    store = util.GlobalStoreOp.create(
        operands=[pack.result], properties={"global": SymbolRefAttr(packed)}
    )
    return [loaded, barrier, pack, store]


@dataclass
class PackConstantRhs(RewritePattern):
    """`mips.matmul` with a constant B → the same product on B's packed global."""

    globals: PackedGlobals
    model: TileModel
    """The target CPU's constants (its prepack_f32_min_rows)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: mips.MatmulOp, rewriter: PatternRewriter) -> None:
        if op.is_rhs_packed or (weight := self._weight_of(op)) is None:
            return
        rhs_type = op.rhs.type
        assert isinstance(rhs_type, TensorType)
        k, n = mips.logical_shape(rhs_type.get_shape(), weight.transposed)
        m = mips.logical_shape(_shape(op.lhs), op.is_lhs_transposed)[0]
        if k == 0 or n == 0:  # an empty B: the product is its init, or empty (no kernel call)
            emit_remark(op, PASS_NAME, f"B ({k}x{n}) not pre-packed: it is empty")
            return
        bf16 = isinstance(rhs_type.get_element_type(), BFloat16Type)
        if not prepack_pays(m, n, k, bf16, self.model):
            emit_remark(op, PASS_NAME, f"B ({k}x{n}) not pre-packed: {m} rows do not pay")
            return
        name = self.globals.packed_for(weight, rhs_type)
        packed_type = TensorType(rhs_type.get_element_type(), [packed_size(k, n)])
        load = util.GlobalLoadOp.create(
            properties={"global": SymbolRefAttr(name)}, result_types=[packed_type]
        )
        binary = None
        if op.binary_kind is not None:
            assert op.other is not None
            binary = (op.binary_kind, op.other)
        new = mips.MatmulOp(
            op.lhs,
            load.results[0],
            op.init,
            transpose_lhs=op.is_lhs_transposed,
            packed_rhs=True,
            activation=op.activation_kind,
            binary=binary,
        )
        rewriter.insert(load, InsertPoint.before(op))
        share_origin(op, new)
        old_rhs = op.rhs
        rewriter.replace(op, new)
        _erase_dead_source(old_rhs, rewriter)
        emit_remark(new, PASS_NAME, f"B ({k}x{n}) packed once at load into @{name}")

    def _weight_of(self, op: mips.MatmulOp) -> Weight | None:
        """The constant B of a product the packed kernels take, or None."""
        rhs_type = op.rhs.type
        assert isinstance(rhs_type, TensorType)
        if type(rhs_type.get_element_type()) not in PACK_SYMBOLS:
            return None
        if DYNAMIC_INDEX in rhs_type.get_shape():
            return None
        symbol, value = constant_source(op.rhs)
        if symbol is not None and not self.globals.is_constant(symbol):
            return None
        if symbol is None and value is None:
            return None
        return Weight(symbol, value, op.is_rhs_transposed)


_SOURCE_OPS = (
    torch.ToBuiltinTensorOp,
    torch.FromBuiltinTensorOp,
    torch.ValueTensorLiteralOp,
    util.GlobalLoadOp,
    arith.ConstantOp,
)


def _erase_dead_source(value: SSAValue, rewriter: PatternRewriter) -> None:
    """Erase the ops that only fed the unpacked B (loads, casts, the literal)."""
    owner = value.owner
    while isinstance(owner, _SOURCE_OPS) and not owner.results[0].uses:
        operand = owner.operands[0] if owner.operands else None
        rewriter.erase(owner)
        owner = operand.owner if operand is not None else None


def _shape(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


@dataclass(frozen=True)
class PackWeightsPass(ModulePass):
    """Pack each constant matmul B once, at load time, and call the kernels that take it
    packed."""

    name = PASS_NAME

    backend: str = DEFAULT_BACKEND
    """The kernel library the matmuls will call (lower-mips-to-call's): only the builtin
    kernels take a packed B, so with another one nothing is packed."""

    target_cpu: str = HOST
    """The CPU the module is compiled for (lower-mips-to-call's): its configuration entry says
    from how many rows an f32 weight is packed (tiling.prepack_pays)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.backend != DEFAULT_BACKEND:
            return
        PatternRewriteWalker(
            PackConstantRhs(PackedGlobals(op), tile_model(self.target_cpu)),
            apply_recursively=False,
        ).rewrite_module(op)
