"""Remarks: what a pass decided about an op and why, for users who ask (`--remarks`, `--report`)."""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation

from mipsc.diagnostics import SourceLocation, location_of


@dataclass(frozen=True)
class Remark:
    location: SourceLocation | None
    pass_name: str
    message: str
    function: str | None = None
    op_name: str | None = None
    routed: bool | None = None
    """For a matmul-family op: True when it goes to the kernel, False when it stays on IREE's
    own path; None for other remarks."""
    kernel: str | None = None
    """For a lowered mips op: the kernel symbol its tiles call."""
    origin: int | None = None
    """The source op this remark is about, by identity (see `share_origin`): the report joins
    a matmul-family op with the kernels its products call by it, not by location."""

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        subject = f"{self.op_name} " if self.op_name else ""
        return f"{prefix}remark: [{self.pass_name}] {subject}{self.message}"


_SINK: ContextVar[list[Remark] | None] = ContextVar("mipsc_remarks", default=None)

_ORIGINS: weakref.WeakKeyDictionary[Operation, int] = weakref.WeakKeyDictionary()
_NEXT_ORIGIN = itertools.count(1)


def origin_of(op: Operation) -> int:
    """The identity of the source op `op` stands for (itself, unless `share_origin` made it
    part of another)."""
    if (origin := _ORIGINS.get(op)) is None:
        origin = _ORIGINS[op] = next(_NEXT_ORIGIN)
    return origin


def share_origin(source: Operation, *made: Operation) -> None:
    """`made` (the ops a rewrite built for `source`) stand for `source` in the report."""
    origin = origin_of(source)
    for op in made:
        _ORIGINS[op] = origin


@contextmanager
def collect_remarks() -> Iterator[list[Remark]]:
    """Collect the remarks emitted inside the block into the yielded list."""
    remarks: list[Remark] = []
    token = _SINK.set(remarks)
    try:
        yield remarks
    finally:
        _SINK.reset(token)


def enclosing_function(op: Operation) -> str | None:
    current = op.parent_op()
    while current is not None:
        if isinstance(name := current.properties.get("sym_name"), StringAttr):
            return name.data
        current = current.parent_op()
    return None


def emit_remark(
    op: Operation,
    pass_name: str,
    message: str,
    *,
    routed: bool | None = None,
    kernel: str | None = None,
) -> None:
    if (sink := _SINK.get()) is not None:
        sink.append(
            Remark(
                location_of(op),
                pass_name,
                message,
                enclosing_function(op),
                op.name,
                routed,
                kernel,
                origin_of(op),
            )
        )


def format_report(remarks: Sequence[Remark]) -> str:
    """Per function, each matmul-family op found and where it runs (and why); once lowered, the
    kernels each routed op calls (joined by identity: its mips ops share its origin)."""
    entries = [r for r in remarks if r.routed is not None]
    if not entries:
        return "no matmul-family ops found"
    kernels: dict[int | None, list[str]] = {}
    for r in remarks:
        if r.kernel is not None:
            found = kernels.setdefault(r.origin, [])
            if r.kernel not in found:
                found.append(r.kernel)
    lines: list[str] = []
    functions = dict.fromkeys(r.function or "<module>" for r in entries)
    for function in functions:
        rows = sorted(
            (r for r in entries if (r.function or "<module>") == function), key=_source_order
        )
        routed = sum(1 for r in rows if r.routed)
        lines.append(f"@{function}: {routed} of {len(rows)} matmul-family ops run in the kernel")
        for r in rows:
            where = "kernel" if r.routed else "IREE  "
            loc = f"  ({r.location})" if r.location else ""
            called = kernels.get(r.origin) if r.routed else None
            calls = f" -> calls {', '.join(called)}" if called else ""
            lines.append(f"  [{where}] {r.op_name} {r.message}{calls}{loc}")
    return "\n".join(lines)


def _source_order(remark: Remark) -> tuple[str, int, int]:
    """Rows in the order of the source (the passes report in the order they run)."""
    where = remark.location
    return ("", 0, 0) if where is None else (where.file, where.line, where.column)
