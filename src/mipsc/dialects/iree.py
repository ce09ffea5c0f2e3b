"""The few IREE `flow`/`stream`/`hal` ops that the lowering to kernel calls emits."""

from __future__ import annotations

from xdsl.ir import Dialect

IREE_DIALECTS: tuple[Dialect, ...] = ()
