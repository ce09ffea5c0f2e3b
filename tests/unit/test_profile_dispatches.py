"""tools/profile_dispatches.py's arithmetic on IREE's dispatch events (no run of IREE here)."""

from __future__ import annotations

from repo_tools import load_tool


def event(key: str, start_us: float, end_us: float, tiles: int, summed_us: float) -> dict:
    """A host_dispatch_event of `iree-profile dispatch --format=jsonl --dispatch_events`."""
    return {
        "key": key,
        "run": 0,
        "submission_id": 1,
        "start_host_time_ns": int(start_us * 1e3),
        "end_host_time_ns": int(end_us * 1e3),
        "duration_ns": int((end_us - start_us) * 1e3),
        "tile_count": tiles,
        "tile_duration_sum_ns": int(summed_us * 1e3),
    }


def test_busy_idle_and_gaps():
    """Two workers, one call of two dispatches: the first keeps 1.5 cores busy (its 3 tiles of
    1000 us in 2000 us: one worker idles 1000 us), the second 2.0; 10 us between them."""
    tool = load_tool("profile_dispatches")
    lines = tool.summarize(
        [event("first", 0, 2000, 3, 3000), event("second", 2010, 3010, 2, 2000)], threads=2
    )
    first, second, call, undisturbed = lines
    assert "wg    3" in first and "busy 1.50 (1.50)" in first
    assert "idle 1000.0 us" in first and "tile   1000.0 us" in first
    assert "busy 2.00" in second and "idle    0.0 us" in second
    assert "span 3010.0 us" in call and "median 10.0 us" in call
    assert undisturbed == "  undisturbed call 3000.0 us"  # the gap is not a dispatch's


def test_fastest_quarter_takes_the_least_disturbed_calls():
    tool = load_tool("profile_dispatches")
    assert tool.fastest_quarter([1.0, 2.0, 3.0, 4.0], [40.0, 30.0, 20.0, 10.0]) == 4.0
    assert tool.fastest_quarter([5.0, 7.0], [2.0, 1.0]) == 7.0


def test_undisturbed_call_sums_each_dispatchs_fastest_quarter():
    """Four calls of dispatches a (twice per call) and b: a's fastest quarter (2 of its 8
    events) lasts 100 us, b's (1 of 4) 50 us; one call of b was preempted (5050 us). The
    undisturbed call is 2 x 100 + 50 us, whatever the slow calls took."""
    tool = load_tool("profile_dispatches")
    a_us = [[100, 100], [300, 400], [300, 400], [300, 400]]
    b_us = [5050, 50, 60, 70]
    events = []
    for call in range(4):
        start = call * 100_000
        for i, us in enumerate(a_us[call]):
            at = start + i * 1000
            events.append(dict(event("a", at, at + us, 4, us), submission_id=call))
        b = event("b", start + 3000, start + 3000 + b_us[call], 4, 50)
        events.append(dict(b, submission_id=call))
    lines = tool.summarize(events, threads=2)
    assert lines[-1] == "  undisturbed call 250.0 us"
