"""mipsc.peak: the measured streaming-read bandwidth (the ceiling of the decode benchmarks)."""

from __future__ import annotations

import platform
import shutil

import pytest

from mipsc.peak import measure_bandwidth

pytestmark = pytest.mark.skipif(
    (shutil.which("cc") is None and shutil.which("gcc") is None)
    or platform.machine() not in ("x86_64", "AMD64"),
    reason="the bandwidth program needs a C compiler and x86-64",
)

PLAUSIBLE_GBYTES = 2000.0
"""More than any CPU's cache bandwidth per core pair: a pass timed by a clock that missed
the reading (a timer thread descheduled while the readers ran) gave 21,760 GB/s."""


@pytest.mark.parametrize("threads", [1, 2])
def test_bandwidth_is_measured_per_thread_count(threads: int) -> None:
    found = measure_bandwidth(threads, buffer_mib=16, passes=4)
    assert found is not None
    assert found.threads == threads
    assert 0.1 < found.gbytes_per_s < PLAUSIBLE_GBYTES
    assert f"{threads} thread(s)" in found.how and "16 MiB" in found.how


@pytest.mark.parametrize(("threads", "mib"), [(1, 0), (65, 64)])
def test_what_cannot_be_measured_is_none(threads: int, mib: int) -> None:
    # No byte to read, or more threads than the program takes (64): it refuses.
    assert measure_bandwidth(threads, buffer_mib=mib, passes=1) is None


@pytest.mark.parametrize("huge_pages", [True, False])
def test_bandwidth_says_which_pages_it_read(huge_pages: bool) -> None:
    found = measure_bandwidth(1, buffer_mib=16, passes=2, huge_pages=huge_pages)
    assert found is not None
    assert 0.1 < found.gbytes_per_s < PLAUSIBLE_GBYTES
    assert ("(huge pages)" if huge_pages else "(4 KiB pages)") in found.how
    # the median pass is no faster than the fastest
    assert 0.1 < found.median_gbytes_per_s <= found.gbytes_per_s


@pytest.mark.parametrize("threads", [1, 2])
def test_bandwidth_says_how_many_cpus_its_threads_got(threads: int) -> None:
    # its CPU time over its wall time: some CPU, and no more than one per thread (a little
    # slack for the clocks' granularity)
    found = measure_bandwidth(threads, buffer_mib=16, passes=4)
    assert found is not None
    assert 0.0 < found.cpus <= threads * 1.05
