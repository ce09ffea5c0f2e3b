"""`decompose-torch`: composite torch ops become the few canonical ones the conversion routes.

torch-to-torch, before `convert-torch-to-mips` (as torch-mlir runs DecomposeComplexOps before
its conversions), so that the conversion handles a handful of canonical matmul patterns:

- `scaled_dot_product_attention`, in every form exporters write (a float or boolean mask,
  `is_causal`, a custom `scale`, grouped-query heads with `enable_gqa`, 3-D or 4-D, L != S,
  Ev != E, dynamic batch and sequence), becomes torch's own definition of it:
  `softmax(q·kᵀ·scale + bias, -1)·v`, where kᵀ is a `transpose.int` the conversion reads by
  strides and the bias is the mask (`where` of -inf for a boolean one, `tril` for causality).
  Grouped heads are not copied per query head: q is viewed as [..., Hkv, G·L, E], so each key
  head meets its G query heads in one product.

With `fuse-attention` (the default) the forms the fused kernel takes — static shapes, no
mask, causal, a float mask of the inputs' type or a boolean one (made additive: 0 / -inf),
grouped-query heads, any scale — become one `mips.attention` instead (kernels/mips_kernels.h,
"Attention": flash-attention style, the scores never stored whole); the others are decomposed
as above, and their remark says why they were not fused.

Each decomposed op leaves one remark (routed: its matmuls all run in the kernel); the products
it becomes carry `mipsc.part_of` so that the conversion's remarks do not count them again.
Forms the kernels cannot take (dropout, dtypes without a kernel, a non-constant flag) stay as
they are, with a remark.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from xdsl.context import Context
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    Float32Type,
    Float64Type,
    IntegerType,
    ModuleOp,
    Signedness,
    StringAttr,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from mipsc.dialects import mips, torch
from mipsc.remarks import emit_remark, share_origin
from mipsc.transforms.building import building_before
from mipsc.transforms.torch_values import (
    constant_bool,
    constant_number,
    torch_shape,
    unsupported_reason,
)
from mipsc.transforms.view_chains import build_view_chain, view_chain

PASS_NAME = "decompose-torch"

PART_OF = "mipsc.part_of"
"""Attribute on the products a decomposition makes: the op they came from."""

TORCH_BOOL_DTYPE = 11
"""torch's ScalarType code of bool (c10/core/ScalarType.h), for `aten.ones(..., dtype=)`."""


# --------------------------------------------------------------------------------------------
# Building torch ops (at the implicit builder)
# --------------------------------------------------------------------------------------------


def vtensor(shape: Sequence[int], dtype: Attribute) -> torch.ValueTensorType:
    return torch.ValueTensorType(list(shape), dtype)


def aten(name: str, operands: Sequence[SSAValue], result_type: Attribute) -> SSAValue:
    """`torch.aten.<name>` in torch-mlir's default syntax."""
    op_class = torch.op_class(f"torch.aten.{name}")
    return op_class.create(operands=list(operands), result_types=[result_type]).results[0]


def const_int(value: int) -> SSAValue:
    return torch.ConstantIntOp(value).result


def const_float(value: float) -> SSAValue:
    return torch.ConstantFloatOp(value).result


def none() -> SSAValue:
    return torch.ConstantNoneOp().results[0]


def size_of(value: SSAValue, axis: int) -> SSAValue:
    """The size of `axis` of a tensor as a `!torch.int` (a constant when static)."""
    size = torch_shape(value)[axis]
    if size != DYNAMIC_INDEX:
        return const_int(size)
    return aten("size.int", [value, const_int(axis)], torch.IntType())


def int_list(items: Sequence[SSAValue]) -> SSAValue:
    op = torch.PrimListConstructOp.create(
        operands=list(items), result_types=[torch.ListType(torch.IntType())]
    )
    return op.results[0]


def view(value: SSAValue, shape: Sequence[int], sizes: Sequence[SSAValue]) -> SSAValue:
    """`aten.view` of `value` as `shape`; `sizes` hold every dim's size as a `!torch.int`."""
    ty = value.type
    assert isinstance(ty, torch.ValueTensorType)
    return aten("view", [value, int_list(sizes)], vtensor(shape, ty.dtype))


def matmul(lhs: SSAValue, rhs: SSAValue, shape: Sequence[int], part_of: str) -> SSAValue:
    """`aten.matmul`, marked as part of the op `part_of` (see PART_OF)."""
    ty = lhs.type
    assert isinstance(ty, torch.ValueTensorType)
    product = aten("matmul", [lhs, rhs], vtensor(shape, ty.dtype))
    product.owner.attributes[PART_OF] = StringAttr(part_of)  # type: ignore[union-attr]
    return product


def _mul_dims(a: int, b: int) -> int:
    return DYNAMIC_INDEX if DYNAMIC_INDEX in (a, b) else a * b


# --------------------------------------------------------------------------------------------
# scaled_dot_product_attention
# --------------------------------------------------------------------------------------------


@dataclass
class Attention:
    """The parts of one `scaled_dot_product_attention` call, checked."""

    q: SSAValue
    k: SSAValue
    v: SSAValue
    mask: SSAValue | None
    causal: bool
    scale: float | None
    """None: 1/sqrt(E) of a head dim E known only at run time."""
    groups: int
    """Query heads per key/value head (1 without grouped-query attention)."""


def read_attention(op: Operation) -> Attention | str:
    """The call's parts, or why it stays as it is."""
    if len(op.operands) not in (7, 8) or len(op.results) != 1:
        return "not torch-mlir's form of the op"
    q, k, v = op.operands[:3]
    if (reason := unsupported_reason(q.type, k.type, v.type, op.results[0].type)) is not None:
        return reason
    return _read_attention_parts(op)


def read_f64_attention(op: Operation) -> Attention | None:
    """The parts of an attention whose q, k, v and result are all f64 (and any other form
    `read_attention` takes), else None: IREE 3.13's own attention op computes f64 in f32
    precision (errors of 1e-7, where torch's are 1e-16), so it gets torch's definition
    instead, whose products and softmax IREE runs in f64."""
    if len(op.operands) not in (7, 8) or len(op.results) != 1:
        return None
    types = [v.type for v in (*op.operands[:3], op.results[0])]
    if not all(
        isinstance(t, torch.ValueTensorType) and t.has_sizes and t.has_dtype
        and t.dtype == Float64Type()
        for t in types
    ):  # fmt: skip
        return None
    att = _read_attention_parts(op)
    return None if isinstance(att, str) else att


def _read_attention_parts(op: Operation) -> Attention | str:
    """The call's parts (operands of a known rank and dtype), or why it stays as it is."""
    q, k, v, mask, dropout, causal, scale, *rest = op.operands
    ranks = {len(torch_shape(x)) for x in (q, k, v)}
    if len(ranks) != 1 or min(ranks) < 2:
        return "q, k and v of different ranks, or of rank < 2"
    if constant_number(dropout) != 0.0:
        return "dropout"
    flags = [constant_bool(causal), *(constant_bool(r) for r in rest)]
    if None in flags:
        return "a flag (is_causal, enable_gqa) that is not a constant"
    if (factor := _scale_of(q, scale)) is None and not isinstance(scale.type, torch.NoneType):
        return "a scale that is neither None nor a constant"
    if (mask_reason := _mask_reason(mask, q)) is not None:
        return mask_reason
    groups = _groups(q, k, v, gqa=any(flags[1:]))
    if isinstance(groups, str):
        return groups
    has_mask = not isinstance(mask.type, torch.NoneType)
    return Attention(q, k, v, mask if has_mask else None, bool(flags[0]), factor, groups)


def _scale_of(q: SSAValue, scale: SSAValue) -> float | None:
    if isinstance(scale.type, torch.NoneType):
        head_dim = torch_shape(q)[-1]
        if head_dim == 0:  # the scores are empty sums (0) whatever the scale
            return 1.0
        return None if head_dim == DYNAMIC_INDEX else 1.0 / math.sqrt(head_dim)
    return constant_number(scale)


def _mask_reason(mask: SSAValue, q: SSAValue) -> str | None:
    if isinstance(mask.type, torch.NoneType):
        return None
    ty, q_type = mask.type, q.type
    assert isinstance(q_type, torch.ValueTensorType)
    if not isinstance(ty, torch.ValueTensorType) or not ty.has_sizes or not ty.has_dtype:
        return "a mask of unknown rank or dtype"
    if ty.dtype != q_type.dtype and ty.dtype != IntegerType(1):
        return f"a mask of element type {ty.dtype} (bool or {q_type.dtype} are routed)"
    return None


def _groups(q: SSAValue, k: SSAValue, v: SSAValue, gqa: bool) -> int | str:
    """Query heads per key/value head: 1 unless grouped-query attention, 0 when the head
    counts are known only at run time (the groups are counted then)."""
    q_shape, k_shape, v_shape = (torch_shape(x) for x in (q, k, v))
    heads, kv_heads = q_shape[-3] if len(q_shape) >= 3 else 1, k_shape[-3] if gqa else 1
    if not gqa or len(q_shape) < 3 or (heads == kv_heads != DYNAMIC_INDEX):
        return 1
    if DYNAMIC_INDEX in (kv_heads, v_shape[-3]):
        # Viewing q as [..., ?, ?, E] leaves IREE 3.13's view lowering two dynamic dims in one
        # group, and its numbers mismatch at run time.
        return "a key/value head count known only at run time"
    if heads == DYNAMIC_INDEX:
        return 0
    if kv_heads != v_shape[-3]:
        return "unequal key and value head counts"
    if kv_heads == 0 or heads % kv_heads:
        return f"{heads} query heads do not group evenly over {kv_heads} key/value heads"
    return heads // kv_heads


def build_attention(att: Attention, result_type: Attribute) -> SSAValue:
    """torch's definition: softmax(q·kᵀ·scale + bias, -1)·v, the products grouped by
    key/value head. f16/bf16 attention runs in f32 (see _in_f32)."""
    dtype = att.q.type.dtype  # type: ignore[union-attr]
    if dtype not in (Float32Type(), Float64Type()):
        return _in_f32(att, result_type)
    q_shape, k_shape = torch_shape(att.q), torch_shape(att.k)
    *batch, length, _ = q_shape
    keys = k_shape[-2]
    dtype = att.q.type.dtype  # type: ignore[union-attr]
    k_t = aten(
        "transpose.int",
        [att.k, const_int(-2), const_int(-1)],
        vtensor([*k_shape[:-2], k_shape[-1], keys], dtype),
    )
    scores = _grouped_product(att, att.q, k_t, [*batch, length, keys])
    scores = _scaled_scores(att, scores)
    scores = _add_bias(att, scores)
    probs = aten("softmax.int", [scores, const_int(-1), none()], scores.type)
    if att.mask is not None:
        probs = _zero_fully_masked_rows(scores, probs)
    out_shape = list(result_type.get_shape())  # type: ignore[attr-defined]
    return _grouped_product(att, probs, att.v, out_shape)


def _in_f32(att: Attention, result_type: Attribute) -> SSAValue:
    """f16/bf16 attention with q, k, v and a float mask widened (exactly) to f32, the result
    rounded once to the type: torch's CPU attention keeps the scores and the softmax in f32,
    and with them rounded to bf16 between the products the error was 10-18x torch's (a
    causal 1x8x1024x64 bf16 attention: 0.58 against 0.032 at most)."""
    f32 = Float32Type()
    mask = att.mask
    if mask is not None and mask.type.dtype != IntegerType(1):  # type: ignore[union-attr]
        mask = to_dtype(mask, f32)
    wide = replace(att, q=to_dtype(att.q, f32), k=to_dtype(att.k, f32), v=to_dtype(att.v, f32),
                   mask=mask)  # fmt: skip
    shape = list(result_type.get_shape())  # type: ignore[attr-defined]
    out = build_attention(wide, vtensor(shape, f32))
    return to_dtype(out, result_type.dtype)  # type: ignore[attr-defined]


def to_dtype(value: SSAValue, dtype: Attribute) -> SSAValue:
    """`aten.to.dtype` of `value` to the float type `dtype` (f32, f16 or bf16)."""
    code = const_int(TORCH_DTYPE_CODES[str(dtype)])
    return aten(
        "to.dtype", [value, code, _false(), _false(), none()], vtensor(torch_shape(value), dtype)
    )


def _grouped_product(
    att: Attention, lhs: SSAValue, rhs: SSAValue, shape: Sequence[int]
) -> SSAValue:
    """`lhs · rhs` of shape [..., H, L, C]; with G query heads per key/value head, lhs is
    viewed as [..., H/G, G·L, K] so that rhs ([..., H/G, K, C]) is never repeated. G = 0:
    counted at run time (H / Hkv)."""
    part_of = "torch.aten.scaled_dot_product_attention"
    if att.groups == 1:
        return matmul(lhs, rhs, shape, part_of)
    *lead, _, length, cols = shape
    kv_heads = torch_shape(rhs)[-3]
    groups = att.groups or DYNAMIC_INDEX
    grouped = [*lead, kv_heads, _mul_dims(groups, length)]
    lead_sizes = [size_of(lhs, i) for i in range(len(lead))]
    kv_size = size_of(rhs, -3)
    if att.groups:
        group_size = const_int(att.groups)
    else:
        group_size = aten("floordiv.int", [size_of(lhs, -3), kv_size], torch.IntType())
    merged = aten("mul.int", [group_size, size_of(lhs, -2)], torch.IntType())
    rows = torch_shape(lhs)[-1]
    flat = view(lhs, [*grouped, rows], [*lead_sizes, kv_size, merged, size_of(lhs, -1)])
    product = matmul(flat, rhs, [*grouped, cols], part_of)
    sizes = [*lead_sizes, size_of(lhs, -3), size_of(lhs, -2), size_of(rhs, -1)]
    return view(product, shape, sizes)


TORCH_DTYPE_CODES = {"f32": 6, "f16": 5, "bf16": 15}
"""torch's ScalarType codes (c10/core/ScalarType.h) of the float types the kernels take."""


def _scaled_scores(att: Attention, scores: SSAValue) -> SSAValue:
    """scores · scale; with no scale given and a head dim E known only at run time, the
    scale 1/sqrt(E) is computed then (as a 0-d tensor of the scores' type)."""
    if att.scale is not None:
        return aten("mul.Scalar", [scores, const_float(att.scale)], scores.type)
    dtype = scores.type.dtype  # type: ignore[union-attr]
    si64 = IntegerType(64, Signedness.SIGNED)
    to_tensor = torch.op_class("torch.prim.NumToTensor.Scalar")
    head_dim = to_tensor.create(operands=[size_of(att.q, -1)], result_types=[vtensor([], si64)])
    as_float = aten(
        "to.dtype",
        [head_dim.results[0], const_int(TORCH_DTYPE_CODES[str(dtype)]), _false(), _false(), none()],
        vtensor([], dtype),
    )
    scale = aten("rsqrt", [as_float], vtensor([], dtype))
    return aten("mul.Tensor", [scores, scale], scores.type)


def _false() -> SSAValue:
    return torch.ConstantBoolOp(False).result


def _zero_fully_masked_rows(scores: SSAValue, probs: SSAValue) -> SSAValue:
    """torch's `_safe_softmax` (torch >= 2.5): a row whose scores are all -inf (a query the
    mask hides from every key) is 0, not the NaN softmax gives."""
    shape = torch_shape(scores)
    bool_type = IntegerType(1)
    hidden = aten("eq.Scalar", [scores, const_float(-math.inf)], vtensor(shape, bool_type))
    true = torch.ConstantBoolOp(True).result
    row_shape = [*shape[:-1], 1]
    all_hidden = aten("all.dim", [hidden, const_int(-1), true], vtensor(row_shape, bool_type))
    return aten("where.ScalarSelf", [all_hidden, const_float(0.0), probs], probs.type)


def _add_bias(att: Attention, scores: SSAValue) -> SSAValue:
    """scores + the causal bias (-inf above the diagonal) + the mask (-inf where a boolean
    mask is false, a float mask added), as torch defines them."""
    shape = torch_shape(scores)
    if att.causal:
        rows, cols = size_of(scores, -2), size_of(scores, -1)
        bool_type = vtensor(shape[-2:], IntegerType(1))
        ones = aten(
            "ones", [int_list([rows, cols]), const_int(TORCH_BOOL_DTYPE), none(), none(), none()],
            bool_type,
        )  # fmt: skip
        keep = aten("tril", [ones, const_int(0)], bool_type)
        scores = aten("where.ScalarOther", [keep, scores, const_float(-math.inf)], scores.type)
    if att.mask is None:
        return scores
    if att.mask.type.dtype == IntegerType(1):  # type: ignore[union-attr]
        return aten("where.ScalarOther", [att.mask, scores, const_float(-math.inf)], scores.type)
    return aten("add.Tensor", [scores, att.mask, const_int(1)], scores.type)


def fusion_reason(att: Attention, result_type: Attribute) -> str | None:
    """Why `mips.attention` cannot take this attention (None when it can): its shapes must be
    static, K and V must have the query's batch dims, the mask must broadcast with batch dims
    all 1 or all the query's (mips.AttentionOp's verifier)."""
    shapes = [torch_shape(x) for x in (att.q, att.k, att.v)]
    if att.mask is not None:
        shapes.append(torch_shape(att.mask))
    if any(DYNAMIC_INDEX in s for s in shapes) or att.scale is None or att.groups == 0:
        return "dynamic shapes"
    q, k, _ = shapes[:3]
    if k[-2] == 0:
        return "no keys"
    if k[:-3] != q[:-3] or (len(q) >= 3 and q[-3] != att.groups * k[-3]):
        return "key/value batch or heads broadcast against the query's"
    if att.mask is not None:
        scores = (*q[:-1], k[-2])
        padded = (1,) * (len(scores) - len(shapes[3])) + tuple(shapes[3])
        batch = padded[:-3]
        if len(shapes[3]) > len(scores) or (len(set(batch)) > 1 and batch != scores[:-3]):
            return "a mask whose batch dims are neither all 1 nor the query's"
    return None


def build_fused_attention(att: Attention, result_type: Attribute) -> tuple[SSAValue, Operation]:
    """`mips.attention` between torch_c casts (a boolean mask made additive first, as torch
    does: `where(mask, 0, -inf)`); the torch result and the op."""
    dtype = att.q.type.dtype  # type: ignore[union-attr]
    mask = att.mask
    if mask is not None and mask.type.dtype == IntegerType(1):  # type: ignore[union-attr]
        mask = aten("where.Scalar", [mask, const_float(0.0), const_float(-math.inf)],
                    vtensor(torch_shape(mask), dtype))  # fmt: skip
    q, k, v = (_builtin(x) for x in (att.q, att.k, att.v))
    builtin_mask = torch.ToBuiltinTensorOp(mask).result if mask is not None else None
    assert isinstance(result_type, torch.ValueTensorType) and att.scale is not None
    fused = mips.AttentionOp(q, k, v, result_type.to_builtin(), scale=att.scale,
                             mask=builtin_mask, causal=att.causal)  # fmt: skip
    return torch.FromBuiltinTensorOp(fused.result, result_type).result, fused


def _builtin(value: SSAValue) -> SSAValue:
    """`value` as a builtin tensor; the views that move heads into it (view_chains) rebuilt as
    builtin ops from the tensor they start at, which lower-mips-to-call reads by strides."""
    chain = view_chain(value)
    if chain is None:
        return torch.ToBuiltinTensorOp(value).result
    return build_view_chain(torch.ToBuiltinTensorOp(chain[0].operands[0]).result, chain)


@dataclass
class DecomposeAttention(RewritePattern):
    """`scaled_dot_product_attention` → `mips.attention` (`fuse`, the forms it takes), else
    its two products and torch's softmax between."""

    fuse: bool = True

    @op_type_rewrite_pattern
    def match_and_rewrite(
        self, op: torch.AtenScaledDotProductAttentionOp, rewriter: PatternRewriter
    ) -> None:
        att = read_attention(op)
        if isinstance(att, str) and (wide := read_f64_attention(op)) is not None:
            self._in_f64(wide, op, rewriter)
            return
        if isinstance(att, str):
            emit_remark(op, PASS_NAME, f"left on IREE's path (its fused attention): {att}",
                        routed=False)  # fmt: skip
            return
        why = fusion_reason(att, op.results[0].type) if self.fuse else "fuse-attention=false"
        if why is None:
            self._fuse(att, op, rewriter)
            return
        gqa = f", {att.groups or 'H/Hkv'} query heads per key/value head" if att.groups != 1 else ""
        forms = [f for f, on in (("causal", att.causal), ("masked", att.mask is not None)) if on]
        if att.q.type.dtype != Float32Type():  # type: ignore[union-attr]
            forms.append(f"{att.q.type.dtype} widened to f32, as torch computes it")  # type: ignore[union-attr]
        remark = (
            f"-> q·kᵀ and ·v in the kernel, torch's softmax between"
            f"{' (' + ', '.join(forms) + ')' if forms else ''}{gqa} (not fused: {why})"
        )
        _decompose(rewriter, op, remark, lambda: build_attention(att, op.results[0].type))

    @staticmethod
    def _in_f64(att: Attention, op: Operation, rewriter: PatternRewriter) -> None:
        """torch's definition in f64, all of it on IREE's path (read_f64_attention)."""
        emit_remark(
            op, PASS_NAME,
            "left on IREE's path: element type f64 is not supported by the kernel; as torch "
            "defines it (q·kᵀ, softmax, ·v in f64: IREE's own attention computes f64 in f32)",
            routed=False,
        )  # fmt: skip
        with building_before(rewriter, op):
            out = build_attention(att, op.results[0].type)
        rewriter.replace(op, [], [out])

    @staticmethod
    def _fuse(att: Attention, op: Operation, rewriter: PatternRewriter) -> None:
        forms = [f for f, on in (("causal", att.causal), ("masked", att.mask is not None)) if on]
        forms += [f"{att.groups} query heads per key/value head"] if att.groups > 1 else []
        remark = f"-> mips.attention (fused){' (' + ', '.join(forms) + ')' if forms else ''}"
        emit_remark(op, PASS_NAME, remark, routed=True)
        with building_before(rewriter, op):
            out, fused = build_fused_attention(att, op.results[0].type)
        share_origin(op, fused)
        rewriter.replace(op, [], [out])


# --------------------------------------------------------------------------------------------
# einsum
# --------------------------------------------------------------------------------------------


@dataclass
class Contraction:
    """A two-operand einsum as one (batch) matmul: each label's role, in operand order."""

    lhs: str
    rhs: str
    out: str
    batch: str
    rows: str
    """Labels only of lhs (and of the output): folded into M."""
    sums: str
    """Labels of both operands but not of the output: folded into K."""
    cols: str
    """Labels only of rhs (and of the output): folded into N."""
    lhs_reduced: tuple[int, ...] = ()
    rhs_reduced: tuple[int, ...] = ()
    """Axes of each operand whose label is in no other term: summed out of it first (`lhs`
    and `rhs` are the terms without them)."""


def parse_einsum(equation: str, ranks: Sequence[int]) -> Contraction | str:
    """The contraction `equation` describes for two operands of `ranks`, or why it is not one
    (a diagonal, a broadcast ellipsis). A label of one operand alone, not in the output, is
    summed out of that operand first."""
    equation = equation.replace(" ", "")
    inputs, arrow, out = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != 2 or len(ranks) != 2:
        return "not an equation of two operands"
    if "..." in equation:
        expanded = _expand_ellipsis(terms, out if arrow else None, ranks)
        if isinstance(expanded, str):
            return expanded
        terms, out = expanded
    elif not arrow:  # implicit output: the labels seen once, sorted
        out = "".join(sorted(c for c in set(inputs) - {","} if inputs.count(c) == 1))
    lhs, rhs = terms
    if any(len(t) != r for t, r in zip(terms, ranks, strict=True)):
        return "labels that do not match the operands' ranks"
    if any(len(set(t)) != len(t) for t in (lhs, rhs, out)):
        return "a label repeated in one term (a diagonal)"
    if any(c not in lhs + rhs for c in out):
        return "an output label of no operand"
    lhs_reduced = tuple(i for i, c in enumerate(lhs) if c not in out and c not in rhs)
    rhs_reduced = tuple(i for i, c in enumerate(rhs) if c not in out and c not in lhs)
    lhs = "".join(c for i, c in enumerate(lhs) if i not in lhs_reduced)
    rhs = "".join(c for i, c in enumerate(rhs) if i not in rhs_reduced)
    batch = "".join(c for c in out if c in lhs and c in rhs)
    rows = "".join(c for c in lhs if c in out and c not in rhs)
    sums = "".join(c for c in lhs if c not in out)
    cols = "".join(c for c in rhs if c in out and c not in lhs)
    return Contraction(lhs, rhs, out, batch, rows, sums, cols, lhs_reduced, rhs_reduced)


_ELLIPSIS_LABELS = "0123456789"
"""Labels that stand for the dims of an ellipsis (no einsum label is a digit)."""


def _expand_ellipsis(
    terms: list[str], out: str | None, ranks: Sequence[int]
) -> tuple[list[str], str] | str:
    """Terms (and output) with `...` written as labels; both operands' ellipses must cover the
    same number of dims (broadcasting them against each other is left to IREE)."""
    counts = [r - (len(t) - 3) for t, r in zip(terms, ranks, strict=True) if "..." in t]
    if len(set(counts)) > 1 or not counts or counts[0] < 0 or counts[0] > 10:
        return "an ellipsis that broadcasts"
    dims = _ELLIPSIS_LABELS[: counts[0]]
    terms = [t.replace("...", dims) for t in terms]
    if out is None:
        joined = "".join(terms)
        out = dims + "".join(sorted(c for c in set(joined) - set(dims) if joined.count(c) == 1))
    return terms, out.replace("...", dims)


def build_einsum(
    c: Contraction, lhs: SSAValue, rhs: SSAValue, result_type: Attribute | None
) -> SSAValue:
    """(sum out private labels →) permute → view → one matmul over the batch labels → view →
    permute."""
    lhs, rhs = _sum_out(lhs, c.lhs_reduced), _sum_out(rhs, c.rhs_reduced)
    sizes: dict[str, SSAValue] = {}
    shapes: dict[str, int] = {}
    for term, value in ((c.lhs, lhs), (c.rhs, rhs)):
        for axis, label in enumerate(term):
            shape = torch_shape(value)[axis]
            # A batch label may be 1 on one side (broadcast by the matmul): take the other.
            if label not in shapes or shapes[label] in (DYNAMIC_INDEX, 1):
                shapes[label], sizes[label] = shape, size_of(value, axis)
    a = _as_matrix(lhs, c.lhs, c.batch, c.rows, c.sums, shapes, sizes)
    b = _as_matrix(rhs, c.rhs, c.batch, c.sums, c.cols, shapes, sizes)
    product_shape = [
        *(shapes[x] for x in c.batch),
        _fold_dims([shapes[x] for x in c.rows]),
        _fold_dims([shapes[x] for x in c.cols]),
    ]
    product = matmul(a, b, product_shape, "torch.aten.einsum")
    done = c.batch + c.rows + c.cols
    unfolded = _view_labels(product, c, shapes, sizes)
    return _permute(unfolded, done, c.out, result_type)


def _sum_out(value: SSAValue, axes: tuple[int, ...], dtype: Attribute | None = None) -> SSAValue:
    """`value` summed over `axes` (torch's sum.dim_IntList), or itself when there are none;
    its result of element type `dtype` (torch's sum of integers is int64), else value's."""
    if not axes:
        return value
    ty = value.type
    assert isinstance(ty, torch.ValueTensorType)
    shape = [d for i, d in enumerate(ty.get_shape()) if i not in axes]
    dims = int_list([const_int(a) for a in axes])
    out_type = vtensor(shape, dtype or ty.dtype)
    return aten("sum.dim_IntList", [value, dims, _false(), none()], out_type)


def _as_matrix(
    value: SSAValue,
    term: str,
    batch: str,
    rows: str,
    cols: str,
    shapes: dict[str, int],
    sizes: dict[str, SSAValue],
) -> SSAValue:
    """`value` with its labels permuted to batch, rows, cols, viewed as [batch..., R, C]."""
    value = _permute(value, term, batch + rows + cols)
    if len(rows) == 1 and len(cols) == 1:
        return value
    shape = [
        *(shapes[x] for x in batch),
        _fold_dims([shapes[x] for x in rows]),
        _fold_dims([shapes[x] for x in cols]),
    ]
    folded = [
        *(sizes[x] for x in batch),
        _fold_size_values([sizes[x] for x in rows]),
        _fold_size_values([sizes[x] for x in cols]),
    ]
    return view(value, shape, folded)


def _view_labels(
    value: SSAValue, c: Contraction, shapes: dict[str, int], sizes: dict[str, SSAValue]
) -> SSAValue:
    """`value` ([batch..., R, C]) viewed with one dim per label of batch, rows, cols (itself
    when R and C are one label each)."""
    if len(c.rows) == 1 and len(c.cols) == 1:
        return value
    labels = c.batch + c.rows + c.cols
    return view(value, [shapes[x] for x in labels], [sizes[x] for x in labels])


def _permute(
    value: SSAValue, labels: str, order: str, result_type: Attribute | None = None
) -> SSAValue:
    """`value`, whose dims are `labels`, with its dims in `order` (itself if they are)."""
    if labels == order:
        return value
    perm = [labels.index(x) for x in order]
    shape = torch_shape(value)
    ty = value.type
    assert isinstance(ty, torch.ValueTensorType)
    out_type = result_type or vtensor([shape[p] for p in perm], ty.dtype)
    return aten("permute", [value, int_list([const_int(p) for p in perm])], out_type)


_Chain = tuple[list[Contraction], list[SSAValue]]
"""The pairwise contractions of an einsum, and its operands."""


class DecomposeEinsum(RewritePattern):
    """`einsum` whose equation is a contraction → one (batch) matmul per pair of operands;
    three or more operands are contracted left to right, as torch does without opt_einsum."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: torch.AtenEinsumOp, rewriter: PatternRewriter) -> None:
        if (single := _read_single_einsum(op)) is not None:
            _rewrite_single_einsum(op, *single, rewriter)
            return
        found = _read_einsum(op)
        if isinstance(found, str):
            emit_remark(op, PASS_NAME, f"left on IREE's path: {found}", routed=False)
            return
        steps, values = found

        def build() -> SSAValue:
            value = values[0]
            for i, step in enumerate(steps):
                last = i == len(steps) - 1
                value = build_einsum(
                    step, value, values[i + 1], op.results[0].type if last else None
                )
            return value

        count = "one matmul" if len(steps) == 1 else f"{len(steps)} matmuls"
        if _byte_dtype(op.results[0]) is None:
            _decompose(rewriter, op, f"-> {count} in the kernel", build)
        else:  # WidenBytes computes the products in int32 on IREE's path
            where = "computed in int32 on IREE's path (8-bit integers)"
            _decompose(rewriter, op, f"-> {count}, {where}", build, routed=False)


def _read_single_einsum(op: Operation) -> tuple[SSAValue, str, str] | None:
    """(operand, its labels, the output's) of a one-operand einsum (`ij->i`, `ii`, `bii->b`,
    `...ij->...ji`) with a constant equation; None otherwise. IREE 3.13's own einsum lowering
    fails on every one that sums ("failed to legalize operation 'torch.aten.sum.dim_IntList'",
    a result of unknown rank), even `ij` (the identity)."""
    equation, operands = (op.operands[0].owner, op.operands[1].owner) if op.operands else (0, 0)
    if not isinstance(equation, torch.ConstantStrOp):
        return None
    if not isinstance(operands, torch.PrimListConstructOp) or len(operands.elements) != 1:
        return None
    value = operands.elements[0]
    ty = value.type
    if not isinstance(ty, torch.ValueTensorType) or not ty.has_sizes:
        return None
    term, arrow, out = equation.value.data.replace(" ", "").partition("->")
    if "," in term:
        return None
    if "..." in term:
        dims = _ELLIPSIS_LABELS[: ty.get_rank() - (len(term) - 3)]
        term = term.replace("...", dims)
        out = out.replace("...", dims) if arrow else dims + out
    if not arrow:  # implicit output: the labels seen once, sorted (after the ellipsis)
        out += "".join(sorted(c for c in set(term) - set(out) if term.count(c) == 1))
    if len(term) != ty.get_rank() or len(set(out)) != len(out) or not set(out) <= set(term):
        return None
    return value, term, out


def _rewrite_single_einsum(
    op: Operation, value: SSAValue, term: str, out: str, rewriter: PatternRewriter
) -> None:
    """A one-operand einsum as torch defines it: each repeated label's `diagonal`, then a
    sum over the labels the output lacks, then a permute to the output's order."""
    equation = op.operands[0].owner
    assert isinstance(equation, torch.ConstantStrOp)
    emit_remark(
        op,
        PASS_NAME,
        f"'{equation.value.data}' has one operand, no product: as diagonal, sum "
        "and permute, on IREE's path",
    )  # fmt: skip  (not a product: not counted among the matmul family's ops)
    with building_before(rewriter, op):
        for label in dict.fromkeys(c for c in term if term.count(c) > 1):
            while term.count(label) > 1:
                first = term.index(label)
                second = term.index(label, first + 1)
                value = _diagonal(value, first, second)
                term = term[:first] + term[first + 1 : second] + term[second + 1 :] + label
        result_type = op.results[0].type
        dtype = result_type.dtype if isinstance(result_type, torch.ValueTensorType) else None
        value = _sum_out(value, tuple(i for i, c in enumerate(term) if c not in out), dtype)
        term = "".join(c for c in term if c in out)
        value = _permute(value, term, out)
    rewriter.replace(op, [], [value])


def _diagonal(value: SSAValue, first: int, second: int) -> SSAValue:
    """torch's `diagonal(value, 0, first, second)`: both dims dropped, the diagonal last."""
    ty = value.type
    assert isinstance(ty, torch.ValueTensorType)
    shape = torch_shape(value)
    a, b = shape[first], shape[second]
    size = b if a == DYNAMIC_INDEX else a if b == DYNAMIC_INDEX else min(a, b)
    kept = [d for i, d in enumerate(shape) if i not in (first, second)]
    return aten(
        "diagonal", [value, const_int(0), const_int(first), const_int(second)],
        vtensor([*kept, size], ty.dtype),
    )  # fmt: skip


def _read_einsum(op: Operation) -> _Chain | str:
    equation, operands = (op.operands[0].owner, op.operands[1].owner) if op.operands else (0, 0)
    if not isinstance(equation, torch.ConstantStrOp):
        return "an equation that is not a constant"
    if not isinstance(operands, torch.PrimListConstructOp) or len(operands.elements) < 2:
        return "fewer than two operands"
    values = list(operands.elements)
    text = equation.value.data
    if (reason := _einsum_dtype_reason([*values, op.results[0]])) is not None:
        return reason
    if len(values) > 2:
        return _read_chain(text, values)
    found = parse_einsum(text, [len(torch_shape(v)) for v in values])
    if isinstance(found, str):
        return f"'{text}' is {found}, not a contraction of two operands"
    kept = (
        [d for i, d in enumerate(torch_shape(values[0])) if i not in found.lhs_reduced],
        [d for i, d in enumerate(torch_shape(values[1])) if i not in found.rhs_reduced],
    )
    if (label := _mismatched_label(found, *kept)) is not None:
        return f"label '{label}' of '{text}' has sizes that do not broadcast"
    if (found.lhs_reduced or found.rhs_reduced) and _byte_dtype(values[0]) is not None:
        return f"'{text}' sums a label of one 8-bit integer operand alone (torch widens that sum)"
    return [found], values


def _einsum_dtype_reason(values: Sequence[SSAValue]) -> str | None:
    """Why an einsum of these values (operands and result) is not decomposed, or None: float
    types the kernel takes, or one 8-bit integer type throughout (its products are then
    widened to int32 by WidenBytes: IREE's own lowering of an 8-bit einsum aborts)."""
    byte_types = {_byte_dtype(v) for v in values}
    if len(byte_types) == 1 and None not in byte_types:
        return None
    return unsupported_reason(*(v.type for v in values))


def _read_chain(text: str, values: list[SSAValue]) -> _Chain | str:
    """Three or more operands: the pairwise contractions, left to right, each keeping the
    labels a later term or the output needs. Every label must have one size throughout."""
    inputs, arrow, out = text.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if "..." in text or len(terms) != len(values):
        return f"'{text}' has an ellipsis or a term count unlike its operands'"
    if not arrow:
        out = "".join(sorted(c for c in set(inputs) - {","} if inputs.count(c) == 1))
    sizes: dict[str, int] = {}
    for term, value in zip(terms, values, strict=True):
        for label, size in zip(term, torch_shape(value), strict=False):
            if sizes.setdefault(label, size) != size and DYNAMIC_INDEX not in (sizes[label], size):
                return f"label '{label}' of '{text}' has sizes that differ"
    steps, acc = [], terms[0]
    for i, term in enumerate(terms[1:], start=1):
        later = "".join(terms[i + 1 :]) + out
        step_out = (
            out
            if i == len(terms) - 1
            else "".join(dict.fromkeys(c for c in acc + term if c in later))
        )
        found = parse_einsum(f"{acc},{term}->{step_out}", [len(acc), len(term)])
        if isinstance(found, str):
            return f"'{text}' is {found}, not a chain of contractions"
        steps.append(found)
        acc = step_out
    return steps, values


def _mismatched_label(c: Contraction, lhs: Sequence[int], rhs: Sequence[int]) -> str | None:
    """A label whose static sizes differ between the operands, unless it is a batch label
    that one side has as 1 (which the matmul broadcasts)."""
    for label in set(c.lhs) & set(c.rhs):
        a, b = lhs[c.lhs.index(label)], rhs[c.rhs.index(label)]
        if DYNAMIC_INDEX in (a, b) or a == b or (label in c.batch and 1 in (a, b)):
            continue
        return label
    return None


# --------------------------------------------------------------------------------------------
# dot, linear with a 1-D weight, bilinear
# --------------------------------------------------------------------------------------------


class DecomposeDotAndVectorLinear(RewritePattern):
    """`dot(a, b)` and `linear(x, w)` with a 1-D weight → `matmul` (+ the bias)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(
        self, op: torch.AtenDotOp | torch.AtenLinearOp, rewriter: PatternRewriter
    ) -> None:
        if isinstance(op, torch.AtenLinearOp) and not _is_vector(op.weight):
            return  # a matrix weight: convert-torch-to-mips takes it as it is
        x, w = op.operands[:2]
        bias = op.operands[2] if len(op.operands) == 3 else None
        result = op.results[0].type
        if (reason := unsupported_reason(x.type, w.type, result)) is not None:
            emit_remark(op, PASS_NAME, f"left on IREE's path: {reason}", routed=False)
            return

        def build() -> SSAValue:
            return _plus(matmul(x, w, torch_shape(op.results[0]), op.name), bias, result)

        _decompose(rewriter, op, "-> matmul in the kernel", build)


def _is_vector(value: SSAValue) -> bool:
    ty = value.type
    return isinstance(ty, torch.ValueTensorType) and ty.has_sizes and ty.get_rank() == 1


class DecomposeBilinear(RewritePattern):
    """`bilinear(x1, x2, W, b)`: y[..., o] = Σ_ij x1[..., i]·W[o, i, j]·x2[..., j] + b[o], as
    two products and no copy of W: t = x2 · (W viewed [O·I, J])ᵀ, read by strides, viewed
    [N, O, I]; then y = t · x1 as a batch of matrix-vector products."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: torch.AtenBilinearOp, rewriter: PatternRewriter) -> None:
        x1, x2, w, bias = op.operands
        result = op.results[0].type
        reason = unsupported_reason(x1.type, x2.type, w.type, result)
        if reason is None and (len(torch_shape(w)) != 3 or len(torch_shape(x1)) < 1):
            reason = "operand ranks"
        if reason is not None:
            emit_remark(op, PASS_NAME, f"left on IREE's path: {reason}", routed=False)
            return
        _decompose(
            rewriter, op, "-> two matmuls in the kernel",
            lambda: _plus(build_bilinear(x1, x2, w, result), bias, result),
        )  # fmt: skip


def build_bilinear(x1: SSAValue, x2: SSAValue, w: SSAValue, result: Attribute) -> SSAValue:
    """Σ_ij x1_i W_oij x2_j for x1 [..., I], x2 [..., J], W [O, I, J] (see DecomposeBilinear)."""
    o, i, j = torch_shape(w)
    lead = torch_shape(x1)[:-1]
    if 0 in (o, i, j, *lead):  # empty sums or an empty result: zeros (views of 0 crash IREE)
        sizes = [*(size_of(x1, axis) for axis in range(len(lead))), size_of(w, 0)]
        dtype_code = const_int(TORCH_DTYPE_CODES[str(w.type.dtype)])  # type: ignore[union-attr]
        return aten("zeros", [int_list(sizes), dtype_code, none(), none(), none()], result)
    rows = _fold_dims(lead)
    dtype = w.type.dtype  # type: ignore[union-attr]
    o_s, i_s, j_s = (size_of(w, axis) for axis in range(3))
    rows_s = _fold_size_values([size_of(x1, axis) for axis in range(len(lead))])
    oi, oi_s = _mul_dims(o, i), aten("mul.int", [o_s, i_s], torch.IntType())
    w_flat = view(w, [oi, j], [oi_s, j_s])
    w_t = aten("transpose.int", [w_flat, const_int(0), const_int(1)], vtensor([j, oi], dtype))
    x2_flat = view(x2, [rows, j], [rows_s, j_s])
    t = matmul(x2_flat, w_t, [rows, oi], "torch.aten.bilinear")
    t3 = view(t, [rows, o, i], [rows_s, o_s, i_s])
    x1_col = view(x1, [rows, i, 1], [rows_s, i_s, const_int(1)])
    y = matmul(t3, x1_col, [rows, o, 1], "torch.aten.bilinear")
    out_sizes = [*(size_of(x1, axis) for axis in range(len(lead))), o_s]
    return view(y, list(result.get_shape()), out_sizes)  # type: ignore[attr-defined]


def _fold_dims(dims: Sequence[int]) -> int:
    size = 1
    for d in dims:
        size = _mul_dims(size, d)
    return size


def _fold_size_values(sizes: Sequence[SSAValue]) -> SSAValue:
    if not sizes:
        return const_int(1)
    size = sizes[0]
    for other in sizes[1:]:
        size = aten("mul.int", [size, other], torch.IntType())
    return size


def _decompose(
    rewriter: PatternRewriter,
    op: Operation,
    remark: str,
    build: Callable[[], SSAValue],
    routed: bool = True,
) -> None:
    """Replace `op` by what `build` builds before it, with a remark that counts it as routed
    (or not); the products built for it stand for it in the report."""
    emit_remark(op, PASS_NAME, remark, routed=routed)
    with building_before(rewriter, op) as built:
        out = build()
    share_origin(op, *(new_op for new_op in built if PART_OF in new_op.attributes))
    rewriter.replace(op, [], [out])


def _plus(value: SSAValue, bias: SSAValue | None, result_type: Attribute) -> SSAValue:
    """`value + bias` by torch's `add.Tensor`, or `value` when there is no bias."""
    if bias is None or isinstance(bias.type, torch.NoneType):
        return value
    return aten("add.Tensor", [value, bias, const_int(1)], result_type)


# --------------------------------------------------------------------------------------------
# 8-bit integer products: computed in int32
# --------------------------------------------------------------------------------------------

TORCH_INT_DTYPES = {
    (8, Signedness.UNSIGNED): 0,
    (8, Signedness.SIGNED): 1,
    (32, Signedness.SIGNED): 3,
}
"""torch's ScalarType codes (c10/core/ScalarType.h) of uint8, int8 and int32, for
`prims.convert_element_type`."""

SI32 = IntegerType(32, Signedness.SIGNED)


def _byte_dtype(value: SSAValue) -> IntegerType | None:
    """The element type of an 8-bit integer torch tensor (`si8`, `ui8`), else None."""
    ty = value.type
    if isinstance(ty, torch.ValueTensorType) and ty.has_dtype:
        dtype = ty.dtype
        if isinstance(dtype, IntegerType) and dtype.width.data == 8:
            return dtype
    return None


def _converted(value: SSAValue, dtype: IntegerType) -> SSAValue:
    """`prims.convert_element_type` of a torch tensor to `dtype` (sign- or zero-extended
    from its own sign, or wrapped to 8 bits)."""
    ty = value.type
    assert isinstance(ty, torch.ValueTensorType)
    code = const_int(TORCH_INT_DTYPES[(dtype.width.data, dtype.signedness.data)])
    op_class = torch.op_class("torch.prims.convert_element_type")
    result_type = vtensor(ty.get_shape(), dtype)
    return op_class.create(operands=[value, code], result_types=[result_type]).results[0]


class WidenBytes(RewritePattern):
    """A matmul-family op of 8-bit integers (int8, uint8) computed in int32, its result
    wrapped back to 8 bits, as torch wraps it: IREE 3.13's torch lowering aborts on an 8-bit
    product ("for conversion to byte or char type dstOriginalDtype has to be passed to
    convertScalarToDtype"). The sum of products modulo 2^8 is the same whatever width it is
    accumulated in, so the result is torch's bit for bit. It stays on IREE's path (integer)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: torch.MatmulFamilyOp, rewriter: PatternRewriter) -> None:
        if len(op.results) != 1 or (narrow := _byte_dtype(op.results[0])) is None:
            return
        with building_before(rewriter, op):
            operands = [_converted(v, SI32) if _byte_dtype(v) else v for v in op.operands]
            ty = op.results[0].type
            assert isinstance(ty, torch.ValueTensorType)
            wide = type(op).create(
                operands=operands,
                result_types=[vtensor(ty.get_shape(), SI32)],
                attributes=dict(op.attributes),
                properties=dict(op.properties),
            )
            out = _converted(wide.results[0], narrow)
        rewriter.replace_op(op, [], [out])


ALIASES = {"torch.aten.linalg_matmul": "matmul"}
"""torch ops that are another op under another name (torch.linalg.matmul is torch.matmul),
which IREE's torch dialect does not define: an export by iree-turbine's aot.export itself keeps
them as `torch.operator`, which iree-compile failed to legalize (mipsc's own export decomposes
them: frontends.from_torch.export_decompositions)."""


class RenameAliases(RewritePattern):
    """`torch.operator "torch.aten.linalg_matmul"(a, b)` → `torch.aten.matmul a, b` (ALIASES)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: torch.OperatorOp, rewriter: PatternRewriter) -> None:
        if (name := ALIASES.get(op.op_name.data)) is None or len(op.results) != 1:
            return
        with building_before(rewriter, op):
            renamed = aten(name, list(op.operands), op.results[0].type)
        share_origin(op, renamed.owner)  # type: ignore[arg-type]
        rewriter.replace(op, [], [renamed])


PATTERNS: tuple[type[RewritePattern], ...] = (
    DecomposeAttention,
    RenameAliases,
    DecomposeEinsum,
    DecomposeDotAndVectorLinear,
    DecomposeBilinear,
)


@dataclass(frozen=True)
class DecomposeTorchPass(ModulePass):
    """Rewrite attention, einsum, bilinear and dot into the matmuls the conversion routes."""

    name = PASS_NAME

    fuse_attention: bool = True
    """`scaled_dot_product_attention` as one `mips.attention` where it can (else decomposed)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = [DecomposeAttention(self.fuse_attention), *(p() for p in PATTERNS[1:])]
        PatternRewriteWalker(
            GreedyRewritePatternApplier(patterns), apply_recursively=False
        ).rewrite_module(op)
        # After them: the products they make of 8-bit integers (an int8 einsum) are widened too.
        PatternRewriteWalker(WidenBytes(), apply_recursively=False).rewrite_module(op)
