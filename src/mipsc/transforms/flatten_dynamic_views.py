"""`flatten-dynamic-views`: an `aten.view` with two or more dynamic dims on either side goes
through a 1-D view.

IREE 3.13's lowering of `torch.aten.view` (torch-mlir's, inside iree-compile) gets the result
shape wrong when the view regroups dims and two or more of them are dynamic:
`[?, ?, 4] -> [?, 16]` (sizes `[s, 4·b, 4] -> [s·b, 16]`) comes out `[s, 16]`, and everything
after it computes on the wrong rows with no error (nn.MultiheadAttention with batch and
sequence both dynamic returned wrong numbers; stock iree-compile on the export alike). A view
to 1-D and a view from 1-D are lowered right (checked on that export and on random shapes,
tests/e2e/test_torch_frontdoor.py), so this pass writes each such view as
`view(view(x, [-1]), sizes)`: the same values (a view of a value tensor has no strides), one
collapse and one expand of the whole tensor, which IREE folds into the ops around them.

It runs last, after `lower-mips-to-call`: the conversion's own view patterns (view_chains,
static shapes only) see the views as exported.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DYNAMIC_INDEX, ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)

from mipsc.dialects import torch
from mipsc.transforms.building import building_before
from mipsc.transforms.decompose_torch import aten, const_int, int_list, vtensor

PASS_NAME = "flatten-dynamic-views"

VIEW = "torch.aten.view"


def dynamic_dims(ty: object) -> int:
    """How many dynamic dims a ranked value tensor type has (0 for anything else)."""
    if not isinstance(ty, torch.ValueTensorType) or not ty.has_sizes:
        return 0
    return sum(1 for d in ty.get_shape() if d == DYNAMIC_INDEX)


def regroups_dynamic_dims(op: Operation) -> bool:
    """An `aten.view` between ranked tensors of rank >= 2 with two or more dynamic dims on
    either side: the kind IREE 3.13 may lower wrongly (see the module's docstring)."""
    if op.name != VIEW or len(op.operands) != 2:
        return False
    source, result = op.operands[0].type, op.results[0].type
    ranks = [t.get_rank() for t in (source, result) if isinstance(t, torch.ValueTensorType)]
    if len(ranks) != 2 or min(ranks) < 2:
        return False
    return max(dynamic_dims(source), dynamic_dims(result)) >= 2


class ViewThroughOneDim(RewritePattern):
    """`view(x, sizes)` → `view(view(x, [-1]), sizes)` for the views regroups_dynamic_dims
    picks."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not regroups_dynamic_dims(op):
            return
        source, sizes = op.operands
        source_type = source.type
        assert isinstance(source_type, torch.ValueTensorType)
        with building_before(rewriter, op):
            flat = aten(
                "view",
                [source, int_list([const_int(-1)])],
                vtensor([DYNAMIC_INDEX], source_type.dtype),
            )
            view = aten("view", [flat, sizes], op.results[0].type)
        rewriter.replace_op(op, [], [view])


@dataclass(frozen=True)
class FlattenDynamicViewsPass(ModulePass):
    """Write views that regroup two or more dynamic dims through a 1-D view."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(ViewThroughOneDim(), apply_recursively=False).rewrite_module(op)
