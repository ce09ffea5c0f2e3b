"""`fuse-epilogues`: the elementwise chain after a matmul runs in the matmul's own dispatch.

After `convert-torch-to-mips`, a product reaches torch again through
`mips.matmul` → (`tensor.expand_shape`) → `torch_c.from_builtin_tensor`. This pass follows
that value through the torch ops real models put after a linear layer and moves them onto the
`mips.matmul` as its epilogue (mips.MatmulLikeOp: `activation`, then `binary` with a second
tensor), which lower-mips-to-call turns into one epilogue call per tile, right after the
matmul call, instead of IREE dispatches of their own over C:

- `aten.clone` (an identity on value tensors), anywhere in the chain;
- one activation: `aten.relu`, `aten.gelu` (approximate 'none' or 'tanh'), `aten.silu`;
- then at most one binary op with a tensor of the chain's own type (no broadcast):
  `aten.add.Tensor` with alpha 1 (a residual), `aten.mul.Tensor` (e.g. the SiLU-gated product
  of two projections, `silu(x·W1ᵀ) * (x·W2ᵀ)`: the gate's product takes the other
  projection as its second tensor).

Each value of the chain must have one use (the next op): a value used elsewhere (the
pre-activation output, say) is never fused away, and the chain stops before it. Anything else
stays as it is. The fused op takes the place of the chain's last op (its second tensor is
defined by then), so the numbers are torch's: each step rounds to the element type, as torch's
eager ops do (kernels/mips_kernels.h, "Epilogues"). Only 2-D `mips.matmul` products are fused
(a linear over any leading dims is one; batched products feed attention's softmax).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.builder import Builder, ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import tensor
from xdsl.dialects.builtin import DYNAMIC_INDEX, ModuleOp, StringAttr, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from mipsc.dialects import mips, torch
from mipsc.dialects.mips import Activation, BinaryOp
from mipsc.remarks import share_origin
from mipsc.transforms.building import index_constant
from mipsc.transforms.convert_torch_to_mips import TensorIRBuilder
from mipsc.transforms.torch_values import constant_number

PASS_NAME = "fuse-epilogues"

ACTIVATION_OPS: dict[str, Activation] = {
    "torch.aten.relu": Activation.RELU,
    "torch.aten.gelu": Activation.GELU,  # or GELU_TANH: see _activation_of
    "torch.aten.silu": Activation.SILU,
}
BINARY_OPS: dict[str, BinaryOp] = {
    "torch.aten.add.Tensor": BinaryOp.ADD,
    "torch.aten.mul.Tensor": BinaryOp.MUL,
}
IDENTITY_OPS = ("torch.aten.clone",)


@dataclass
class Chain:
    """The torch ops after a product that become its epilogue."""

    expand: tensor.ExpandShapeOp | None
    """The product's unfolding to torch's shape ([M', N] -> [..., M, N]), if any."""
    to_torch: torch.FromBuiltinTensorOp
    ops: list[Operation] = field(default_factory=list)
    """The fused torch ops, in order; the last one's result is replaced."""
    activation: Activation | None = None
    binary: BinaryOp | None = None
    other: SSAValue | None = None
    """The binary op's second tensor (a torch value of the chain's type)."""

    @property
    def last(self) -> Operation:
        return self.ops[-1]


def _only_user(value: SSAValue) -> Operation | None:
    """The op that uses `value`, when exactly one does, once."""
    if value.uses.get_length() != 1:
        return None
    return next(iter(value.uses)).operation


def _activation_of(op: Operation) -> Activation | None:
    """The activation `op` computes, or None (e.g. a GELU whose approximation is not known)."""
    kind = ACTIVATION_OPS.get(op.name)
    if kind is not Activation.GELU:
        return kind if kind is not None and len(op.operands) == 1 else None
    if len(op.operands) != 2 or not isinstance(op.operands[1].owner, torch.ConstantStrOp):
        return None
    approximate = op.operands[1].owner.value
    assert isinstance(approximate, StringAttr)
    return {"none": Activation.GELU, "tanh": Activation.GELU_TANH}.get(approximate.data)


def _binary_of(op: Operation, value: SSAValue) -> tuple[BinaryOp, SSAValue] | None:
    """(kind, other tensor) when `op` combines `value` with a tensor of its own type
    elementwise (add with alpha 1, mul), else None."""
    kind = BINARY_OPS.get(op.name)
    if kind is None or len(op.operands) != (3 if kind is BinaryOp.ADD else 2):
        return None
    if kind is BinaryOp.ADD and constant_number(op.operands[2]) != 1.0:
        return None
    first, second = op.operands[0], op.operands[1]
    other = second if first == value else first
    if other == value or other.type != value.type:
        return None
    return kind, other


def _step(chain: Chain, op: Operation, value: SSAValue) -> bool:
    """Adds `op` (the only user of the chain's `value`) to the chain if it can follow what
    the chain has; False to stop there."""
    if op.name in IDENTITY_OPS:
        pass
    elif (activation := _activation_of(op)) is not None:
        if chain.activation is not None or chain.binary is not None:
            return False
        chain.activation = activation
    elif (binary := _binary_of(op, value)) is not None:
        chain.binary, chain.other = binary
    else:
        return False
    if len(op.results) != 1 or op.results[0].type != value.type:
        return False
    chain.ops.append(op)
    return True


def find_chain(op: mips.MatmulOp) -> Chain | None:
    """The chain of torch ops after `op` that its epilogue can take, or None."""
    value = op.result
    user = _only_user(value)
    expand = None
    if isinstance(user, tensor.ExpandShapeOp):
        expand, value = user, user.result
        user = _only_user(value)
    if not isinstance(user, torch.FromBuiltinTensorOp):
        return None
    chain = Chain(expand, user)
    value = user.result
    while chain.binary is None and (user := _only_user(value)) is not None:
        if user.parent is not op.parent or not _step(chain, user, value):
            break
        value = user.results[0]
    while chain.ops and chain.ops[-1].name in IDENTITY_OPS:
        chain.ops.pop()  # a trailing clone needs no fusing
    if chain.activation is None and chain.binary is None:
        return None
    return chain


def _computes_nothing(op: mips.MatmulOp) -> bool:
    """An empty product or K = 0, known statically: lower-mips-to-call calls no kernel then."""
    shapes = [v.type.get_shape() for v in (op.lhs, op.rhs) if isinstance(v.type, TensorType)]
    return any(0 in shape for shape in shapes)


def _as_product(other: SSAValue, op: mips.MatmulOp, chain: Chain) -> SSAValue:
    """The torch tensor `other` as a builtin tensor of the product's type (folded like the
    product when it was unfolded), built at the implicit builder, with run-time checks that
    its dynamic dims are the product's."""
    builder = TensorIRBuilder()
    value = builder.to_builtin(other)
    if chain.expand is not None:
        value = tensor.CollapseShapeOp.create(
            operands=[value],
            result_types=[op.result.type],
            properties={"reassociation": chain.expand.reassociation},
        ).results[0]
    assert isinstance(value.type, TensorType)
    if DYNAMIC_INDEX in value.type.get_shape():
        _, dims = op.reify_result_shapes()  # its ops are built at the implicit builder
        sizes = [d if isinstance(d, SSAValue) else index_constant(d) for d in dims]
        builder.check_same_sizes(value, sizes)
    return value


def _unfold(value: SSAValue, expand: tensor.ExpandShapeOp) -> SSAValue:
    """`value` unfolded as `expand` unfolded the product (same groups, shape and sizes)."""
    return tensor.ExpandShapeOp.create(
        operands=[value, *expand.dynamic_output_shape],
        result_types=[expand.result.type],
        properties=dict(expand.properties),
    ).results[0]


@dataclass
class FuseEpilogue(RewritePattern):
    """`mips.matmul` followed by a chain of torch elementwise ops → one `mips.matmul` with
    the chain as its epilogue, at the place of the chain's last op."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: mips.MatmulOp, rewriter: PatternRewriter) -> None:
        if op.has_epilogue or _computes_nothing(op) or (chain := find_chain(op)) is None:
            return
        with ImplicitBuilder(Builder(InsertPoint.before(chain.last))):
            binary = None
            if chain.binary is not None:
                assert chain.other is not None
                binary = (chain.binary, _as_product(chain.other, op, chain))
            fused = mips.MatmulOp(
                op.lhs,
                op.rhs,
                op.init,
                transpose_lhs=op.is_lhs_transposed,
                transpose_rhs=op.is_rhs_transposed,
                packed_rhs=op.is_rhs_packed,
                activation=chain.activation,
                binary=binary,
            )
            fused.location = op.location
            result = fused.result
            if chain.expand is not None:
                result = _unfold(result, chain.expand)
            back = torch.FromBuiltinTensorOp(result, chain.last.results[0].type)
        share_origin(op, fused)
        rewriter.replace_all_uses_with(chain.last.results[0], back.result)
        for dead in [*reversed(chain.ops), chain.to_torch, chain.expand, op]:
            if dead is not None:
                rewriter.erase(dead)


@dataclass(frozen=True)
class FuseEpiloguesPass(ModulePass):
    """Fuse the elementwise chain after each matmul (activation, residual add, gate) into it."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FuseEpilogue(), apply_recursively=False).rewrite_module(op)
