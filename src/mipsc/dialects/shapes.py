"""Shape rules shared by the dialects, written once."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest

from xdsl.dialects.builtin import DYNAMIC_INDEX
from xdsl.utils.exceptions import VerifyException


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


# torch's shape rules for the matmul family, op-independent: a mismatch raises VerifyException
# with the message the op's verifier reports as `'<op>' op <message>`.


def merge_dims(a: int, b: int, what: str) -> int:
    """The dim both sides agree on (the static one, if either is)."""
    if not dims_agree(a, b):
        raise VerifyException(f"{what}: {format_dim(a)} and {format_dim(b)} differ")
    return b if a == DYNAMIC_INDEX else a


def broadcast_shapes(*shapes: Sequence[int], what: str = "batch dims") -> list[int]:
    """torch's broadcast of `shapes` (aligned on the right: equal, or 1)."""
    out: list[int] = []
    for dims in zip_longest(*(reversed(s) for s in shapes), fillvalue=1):
        size = 1
        for d in dims:
            if d == 1:
                continue
            size = d if size == 1 else merge_dims(size, d, f"{what} do not broadcast")
        out.append(size)
    return out[::-1]


def matmul_shape(lhs: Sequence[int], rhs: Sequence[int]) -> list[int]:
    """The result shape of torch.matmul(lhs, rhs) for ranks >= 1."""
    a = [1, *lhs] if len(lhs) == 1 else list(lhs)
    b = [*rhs, 1] if len(rhs) == 1 else list(rhs)
    if not dims_agree(a[-1], b[-2]):
        raise VerifyException(
            f"K mismatch: the lhs [{format_shape(lhs)}] has K = {format_dim(a[-1])} but the "
            f"rhs [{format_shape(rhs)}] has K = {format_dim(b[-2])}"
        )
    batch = broadcast_shapes(a[:-2], b[:-2])
    return [*batch, *([a[-2]] if len(lhs) > 1 else []), *([b[-1]] if len(rhs) > 1 else [])]


def check_broadcastable(role: str, shape: Sequence[int], out: Sequence[int]) -> None:
    """`shape` (a bias, addmm's input) must broadcast to the result shape `out`."""
    merged = broadcast_shapes(shape, out, what=f"the {role} and the result")
    if len(shape) > len(out) or not all(dims_agree(m, o) for m, o in zip(merged, out, strict=True)):
        raise VerifyException(
            f"the {role} [{format_shape(shape)}] does not broadcast to [{format_shape(out)}]"
        )


def refine(declared: Sequence[int], expected: Sequence[int], declared_text: str) -> list[int]:
    """A declared result shape checked against what the operands make, with every dim either
    one knows statically."""
    if len(declared) != len(expected) or not all(
        dims_agree(d, e) for d, e in zip(declared, expected, strict=True)
    ):
        raise VerifyException(
            f"result type {declared_text} does not fit the operands, which make "
            f"[{format_shape(expected)}]"
        )
    return [e if d == DYNAMIC_INDEX else d for d, e in zip(declared, expected, strict=True)]
