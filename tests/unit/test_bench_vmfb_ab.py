"""tools/bench_vmfb_ab.py's statistics (no run of IREE here)."""

from __future__ import annotations

from repo_tools import load_tool


def test_quartile_is_the_time_a_quarter_of_the_calls_beat():
    tool = load_tool("bench_vmfb_ab")
    # eight calls in any order: two beat 3.0, so the first quartile is the third fastest
    assert tool.quartile([9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0]) == 3.0
    assert tool.quartile([5.0]) == 5.0
