"""Shape rules shared by the dialects, written once."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import DYNAMIC_INDEX


def dims_agree(a: int, b: int) -> bool:
    """Static dims agree when equal; a dynamic dim (`?`) agrees with anything."""
    return a == DYNAMIC_INDEX or b == DYNAMIC_INDEX or a == b


def format_dim(d: int) -> str:
    return "?" if d == DYNAMIC_INDEX else str(d)


def format_shape(shape: Sequence[int]) -> str:
    return "x".join(format_dim(d) for d in shape)


def matmul_shape_error(
    lhs: Sequence[int],
    rhs: Sequence[int],
    out: Sequence[int] | None,
    names: tuple[str, str, str] = ("lhs", "rhs", "init"),
) -> str | None:
    """Why 2-D shapes MxK · KxN → MxN do not fit, naming the mismatching dims; None if they do."""
    lhs_name, rhs_name, out_name = names
    checks = [("K", (f"{lhs_name} dim 1", lhs[1]), (f"{rhs_name} dim 0", rhs[0]))]
    if out is not None:
        checks += [
            ("M", (f"{lhs_name} dim 0", lhs[0]), (f"{out_name} dim 0", out[0])),
            ("N", (f"{rhs_name} dim 1", rhs[1]), (f"{out_name} dim 1", out[1])),
        ]
    for what, (a_role, a), (b_role, b) in checks:
        if not dims_agree(a, b):
            shapes = f"{lhs_name} {format_shape(lhs)}, {rhs_name} {format_shape(rhs)}"
            if out is not None:
                shapes += f", {out_name} {format_shape(out)}"
            mismatch = f"{a_role} is {format_dim(a)} but {b_role} is {format_dim(b)}"
            return f"{what} mismatch: {mismatch} ({shapes})"
    return None
