"""tools/bench_models.py's streaming table (no export, compile or run here)."""

from __future__ import annotations

from repo_tools import load_tool


def test_streaming_table_shows_the_cpus_the_read_got():
    """176 MB in 6.4 ms is 27.5 GB/s: 50% of a 55 GB/s fastest pass and 100% of a 27.5 GB/s
    median pass, the read's 2 threads given 0.49 CPUs (the other cells: what was measured)."""
    tool = load_tool("bench_models")
    row = {
        "model": "llama_decode",
        "threads": 2,
        "weight_bytes": 176_000_000,
        "ms": {"mipsc": 6.4, "iree-best": None, "torch": None},
    }
    table = tool.streaming_table([row], {2: (55.0, 27.5, 0.49)}, {2: (30.0, 15.0, 0.5)})
    header, _, line = table.splitlines()[:3]
    assert "| CPUs given |" in header
    assert line == (
        "| llama_decode | 2 | 176 | 55.0 / 27.5 (30.0 / 15.0) | 0.49 | 27.5 (50% / 100%) | - | - |"
    )
