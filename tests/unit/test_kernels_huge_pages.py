"""Huge pages for a pre-packed B (kernels/mips_internal.h, mips_advise_huge_pages).

The plugin's mips_pack_b_<t> advises huge pages (MADV_HUGEPAGE) on the 2 MiB regions of the
packed buffer before it writes them, so that a B streamed from memory by thin products costs
no 4 KiB page walks (BENCHMARKS.md, the decode step). Checked here: the pages a pack writes
are huge where the OS allows (transparent huge pages in "madvise" mode), and 4 KiB with the
configuration's pack_huge_pages = 0; the layout is the same either way; and the advice is
harmless where it fails or cannot apply (a buffer smaller than a huge page, a buffer whose
last region reaches past its mapping).
"""

from __future__ import annotations

import ctypes
import mmap
import pathlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from kernel_plugin import open_plugin

from mipsc.kernel_abi import PACK_SYMBOLS, PackParams, packed_size

HUGE = 2 << 20
THP = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled")
STORAGE = {"mips_pack_b_f32": np.float32, "mips_pack_b_bf16": np.uint16}


def thp_mode() -> str | None:
    """The bracketed mode of transparent huge pages ("madvise", "always", "never"), or None."""
    try:
        found = re.search(r"\[(\w+)\]", THP.read_text())
    except OSError:
        return None
    return found[1] if found else None


@pytest.fixture(scope="module")
def lib():
    lib = open_plugin(list(PACK_SYMBOLS.values()))
    lib.mips_debug_set_config.argtypes = [ctypes.c_char_p, ctypes.c_int64]
    lib.mips_kernel_info.restype = ctypes.c_char_p
    return lib


@contextmanager
def huge_pages_setting(lib, value: int) -> Iterator[None]:
    info = dict(re.findall(r"(\w+)=(\S+)", lib.mips_kernel_info().decode()))
    before = int(info["pack_huge_pages"])
    assert lib.mips_debug_set_config(b"pack_huge_pages", value) == 0
    try:
        yield
    finally:
        assert lib.mips_debug_set_config(b"pack_huge_pages", before) == 0


def anonymous(nbytes: int) -> tuple[mmap.mmap, int]:
    """A private anonymous mapping of `nbytes` and its address (no advice of its own)."""
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return m, ctypes.addressof(ctypes.c_char.from_buffer(m))


def huge_kib(address: int, nbytes: int) -> int:
    """AnonHugePages (KiB) of the mapping(s) of this process that overlap the range."""
    total, overlaps = 0, False
    for line in pathlib.Path("/proc/self/smaps").read_text().splitlines():
        head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if head:
            lo, hi = int(head[1], 16), int(head[2], 16)
            overlaps = lo < address + nbytes and address < hi
        elif overlaps and line.startswith("AnonHugePages:"):
            total += int(line.split()[1])
    return total


def pack_into(lib, symbol: str, address: int, k: int, n: int) -> np.ndarray:
    """Pack a k x n B (a linear weight, n x k stored) into the buffer at `address`; returns
    the packed elements read back."""
    dtype = STORAGE[symbol]
    base = (np.arange(n * k) % 251).astype(dtype).reshape(n, k)
    params = PackParams(base.ctypes.data, 0, 1, k, address, 0, k, n)
    assert getattr(lib, symbol)(ctypes.addressof(params), None, None) == 0
    size = packed_size(k, n)
    return (
        np.ctypeslib.as_array((ctypes.c_byte * (size * dtype().itemsize)).from_address(address))
        .view(dtype)
        .copy()
    )


def test_the_configuration_says_it_advises(lib):
    info = dict(re.findall(r"(\w+)=(\S+)", lib.mips_kernel_info().decode()))
    assert info["pack_huge_pages"] == "1"
    assert lib.mips_debug_set_config(b"pack_huge_pages", 2) == -1


@pytest.mark.skipif(thp_mode() != "madvise", reason="needs transparent huge pages on madvise")
@pytest.mark.parametrize("symbol", sorted(STORAGE))
def test_packed_b_lands_on_huge_pages_and_keeps_its_layout(lib, symbol):
    k, n = 1024, 2048  # 8 MiB (f32) / 4 MiB (bf16) packed
    nbytes = packed_size(k, n) * STORAGE[symbol]().itemsize
    layouts, huge = {}, {}
    for advise in (0, 1):
        m, address = anonymous(nbytes + HUGE)
        start = -(-address // HUGE) * HUGE  # a 2 MiB-aligned buffer: whole regions inside
        with huge_pages_setting(lib, advise):
            layouts[advise] = pack_into(lib, symbol, start, k, n)
        huge[advise] = huge_kib(start, nbytes)
        m.close()
    np.testing.assert_array_equal(layouts[0], layouts[1])
    assert huge[0] == 0
    assert huge[1] >= (nbytes // HUGE) * (HUGE >> 10)  # every whole region of the buffer


@pytest.mark.parametrize("symbol", sorted(STORAGE))
@pytest.mark.parametrize("where", ["small", "past-the-mapping"])
def test_advice_is_harmless_where_it_cannot_apply(lib, symbol, where):
    """A buffer smaller than a huge page (no region to advise), and one that ends 4 KiB
    into a region its mapping does not cover (the advice reaches past it): the pack
    writes the same layout as without the advice."""
    k, n = (64, 96) if where == "small" else (512, 1024)
    nbytes = packed_size(k, n) * STORAGE[symbol]().itemsize
    m, address = anonymous(-(-nbytes // 4096) * 4096)
    packed = pack_into(lib, symbol, address, k, n)
    m.close()
    m, address = anonymous(-(-nbytes // 4096) * 4096)
    with huge_pages_setting(lib, 0):
        plain = pack_into(lib, symbol, address, k, n)
    m.close()
    np.testing.assert_array_equal(packed, plain)


# ---- mips_collapse_huge_pages: huge pages for memory already written (mipsc's runtime) ----


@pytest.fixture(scope="module")
def collapse(lib):
    function = lib.mips_collapse_huge_pages
    function.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    function.restype = ctypes.c_int64
    return function


@pytest.mark.skipif(thp_mode() not in ("madvise", "always"), reason="needs transparent huge pages")
def test_collapse_puts_written_memory_on_huge_pages(lib, collapse):
    """Memory written on 4 KiB pages (an embedded module's packs) is collapsed into huge pages,
    each whole 2 MiB region inside the range, with its contents unchanged."""
    nbytes = 3 * HUGE
    m, address = anonymous(nbytes + HUGE)
    if thp_mode() == "always":
        m.madvise(mmap.MADV_NOHUGEPAGE)  # written on 4 KiB pages, as with THP in madvise mode
    view = np.frombuffer(m, np.uint32)
    view[:] = np.arange(view.size, dtype=np.uint32)
    assert huge_kib(address, nbytes + HUGE) == 0
    begin, end = address + 4096, address + nbytes + HUGE
    done = collapse(begin, end - begin)  # the regions wholly inside only
    if done == 0:
        pytest.skip("this kernel cannot collapse on request (MADV_COLLAPSE: Linux 6.1+)")
    assert done == end // HUGE * HUGE - -(-begin // HUGE) * HUGE
    assert huge_kib(address, nbytes + HUGE) == done >> 10
    np.testing.assert_array_equal(view, np.arange(view.size, dtype=np.uint32))
    del view
    m.close()


def test_collapse_refuses_without_the_setting_or_a_range(lib, collapse):
    m, address = anonymous(2 * HUGE)
    np.frombuffer(m, np.uint8)[:] = 1
    with huge_pages_setting(lib, 0):
        assert collapse(address, 2 * HUGE) == -1
    assert huge_kib(address, 2 * HUGE) == 0
    assert collapse(None, HUGE) == -1
    assert collapse(address, 2**64 - 4096) == -1  # wraps around
    assert collapse(address + 4096, HUGE) == 0  # no whole region inside
    m.close()
