"""mipsc.bench.cpu_times: per-call CPU time of this process, builds in alternation."""

from __future__ import annotations

import time

from mipsc.bench import cpu_times


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def _sleep_then_spin() -> None:
    time.sleep(0.004)  # waiting (what other processes take of the cores) is not counted
    _spin(0.001)


def test_cpu_times_counts_cpu_not_waiting() -> None:
    samples = cpu_times({"spin": lambda: _spin(0.002), "wait": _sleep_then_spin}, 0.02, burst=2)
    assert set(samples) == {"spin", "wait"}
    assert len(samples["spin"]) == len(samples["wait"]) >= 1  # rounds alternate the builds
    assert min(samples["spin"]) >= 0.0019
    assert 0.0009 <= min(samples["wait"]) and max(samples["wait"]) < 0.004
