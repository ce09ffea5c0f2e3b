"""tools/bench_vmfb_ab.py's statistics (no run of IREE here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_vmfb_ab.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("bench_vmfb_ab", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quartile_is_the_time_a_quarter_of_the_calls_beat():
    tool = load_tool()
    # eight calls in any order: two beat 3.0, so the first quartile is the third fastest
    assert tool.quartile([9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0]) == 3.0
    assert tool.quartile([5.0]) == 5.0
