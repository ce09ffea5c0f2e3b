"""Building IR in a rewrite: new ops go before the matched op and carry its location."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from xdsl.builder import ImplicitBuilder
from xdsl.ir import Operation
from xdsl.pattern_rewriter import PatternRewriter


@contextmanager
def building_before(rewriter: PatternRewriter, op: Operation) -> Iterator[list[Operation]]:
    """Ops created in this block are inserted before `op` (the matched op, where the rewriter
    points) through the rewriter, and get `op`'s location, so errors and reports that point
    at them point into the user's file. Yields the list of the ops inserted, filled as they
    are."""
    inserted: list[Operation] = []

    def stamp(new_op: Operation) -> None:
        new_op.location = op.location
        inserted.append(new_op)

    rewriter.operation_insertion_handler.append(stamp)
    try:
        with ImplicitBuilder(rewriter):
            yield inserted
    finally:
        rewriter.operation_insertion_handler.remove(stamp)
