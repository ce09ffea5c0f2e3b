"""Huge pages for the memory a module's load made: its constants and the weights packed at load.

The weights a decode step streams are read at memory bandwidth only from 2 MiB pages (4 KiB
pages cost a page walk per 4 KiB: 0.8x the rate on the project's Zen 4, BENCHMARKS.md). Linux
gives anonymous memory huge pages only where they are advised (transparent huge pages in
`madvise` mode, the common default). The plugin's pack (`mips_pack_b_<t>`) advises its output
before writing it; the embedded object's pack cannot (no system calls, and IREE 3.13's
dispatch code cannot call an optional plugin import: kernels/mips_kernels.h, "Huge pages after
the fact"). So `mipsc.load` notes this process's anonymous memory before a module loads, and
after its initializers ran (the packs included) has the plugin collapse each new range into
huge pages (`mips_collapse_huge_pages`: MADV_HUGEPAGE, then MADV_COLLAPSE, Linux 6.1+). The
.vmfb is unchanged: run elsewhere, its packed weights stay on 4 KiB pages.

New memory is whatever was mapped meanwhile (IREE's buffers for the module, and anything
another thread of the process mapped in that time, which the advice does not change but for
its pages). A buffer the allocator placed in memory the process had already mapped (glibc
reuses freed heap memory for requests below its mmap threshold, which grows up to 32 MiB) is
not seen and keeps its pages: a large model's packed weights are fresh mappings, a small one's
may not be. Linux only; elsewhere, or without the plugin, nothing happens
(`Module.huge_page_bytes` says how much was collapsed).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from mipsc.kernel_abi import COLLAPSE_HUGE_PAGES_SYMBOL

HUGE_PAGE = 2 << 20
"""x86-64's PMD page: ranges smaller than this hold no huge page."""

Range = tuple[int, int]


def anonymous_memory() -> list[Range]:
    """The process's private writable anonymous mappings (and the heap), as [start, end)
    addresses from /proc/self/maps; [] where there is no such file."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    ranges = []
    for line in lines:
        fields = line.split()
        if len(fields) < 5 or not fields[1].startswith("rw") or fields[1][3] != "p":
            continue
        name = fields[5] if len(fields) > 5 else ""
        if fields[4] == "0" and name in ("", "[heap]"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((start, end))
    return ranges


def new_ranges(before: list[Range], after: list[Range]) -> list[Range]:
    """The parts of `after` that no range of `before` covers (both sorted, as the maps are)."""
    found = []
    for start, end in after:
        pieces = [(start, end)]
        for old_start, old_end in before:
            if old_end <= start or old_start >= end:
                continue
            pieces = [
                piece
                for lo, hi in pieces
                for piece in ((lo, min(hi, old_start)), (max(lo, old_end), hi))
                if piece[0] < piece[1]
            ]
        found.extend(pieces)
    return found


def collapse(plugin: Path, ranges: list[Range]) -> int:
    """Have the plugin collapse each range of at least HUGE_PAGE into huge pages; the bytes
    it collapsed (0 where it could not: no THP, a kernel before 6.1, pack_huge_pages = 0)."""
    function = getattr(ctypes.CDLL(str(plugin)), COLLAPSE_HUGE_PAGES_SYMBOL)
    function.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    function.restype = ctypes.c_int64
    done = 0
    for start, end in ranges:
        if end - start >= HUGE_PAGE:
            done += max(0, int(function(start, end - start)))
    return done
