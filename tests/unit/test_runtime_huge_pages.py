"""mipsc.runtime.huge_pages: which memory a module's load made (kernels/mips_kernels.h, "Huge
pages after the fact"); the collapse itself is tested with the kernels
(test_kernels_huge_pages.py) and end to end (tests/e2e/test_pack_weights.py)."""

from __future__ import annotations

import ctypes
import mmap
import sys

import pytest

from mipsc.runtime.huge_pages import anonymous_memory, new_ranges


def test_new_ranges_are_what_the_old_ones_do_not_cover():
    before = [(100, 200), (300, 400)]
    after = [(0, 50), (100, 250), (280, 420), (500, 600)]
    assert new_ranges(before, after) == [(0, 50), (200, 250), (280, 300), (400, 420), (500, 600)]
    assert new_ranges(after, after) == []
    assert new_ranges([], [(1, 2)]) == [(1, 2)]
    assert new_ranges([(0, 1000)], [(100, 200), (300, 400)]) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_new_anonymous_mapping_is_new_memory():
    before = anonymous_memory()
    m = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    address = ctypes.addressof(ctypes.c_char.from_buffer(m))
    found = new_ranges(before, anonymous_memory())
    assert any(lo <= address and address + (4 << 20) <= hi for lo, hi in found), found
    m.close()
