"""Remarks: what a pass decided about an op and why, for users who ask (`--remarks`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from xdsl.ir import Operation

from mipsc.diagnostics import SourceLocation, location_of


@dataclass(frozen=True)
class Remark:
    location: SourceLocation | None
    pass_name: str
    message: str

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        return f"{prefix}remark: [{self.pass_name}] {self.message}"


_SINK: ContextVar[list[Remark] | None] = ContextVar("mipsc_remarks", default=None)


@contextmanager
def collect_remarks() -> Iterator[list[Remark]]:
    """Collect the remarks emitted inside the block into the yielded list."""
    remarks: list[Remark] = []
    token = _SINK.set(remarks)
    try:
        yield remarks
    finally:
        _SINK.reset(token)


def emit_remark(op: Operation, pass_name: str, message: str) -> None:
    if (sink := _SINK.get()) is not None:
        sink.append(Remark(location_of(op), pass_name, message))
