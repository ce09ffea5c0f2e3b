"""How busy IREE keeps the cores during each dispatch of a model: builds compared, interleaved.

For each NAME=FILE.vmfb (mipsc's and IREE's own compiles of one model, e.g. kept by
``tools/bench_models.py --keep``) and each thread count, runs ``iree-benchmark-module`` with
IREE's host-execution profiling (``--device_profiling_mode=host-execution``: every dispatch's
start and end, its workgroup count and the sum of its workgroups' durations), in ``--rounds``
rounds that alternate the builds, and prints per dispatch:

- ``wg``: its workgroups (tiles);
- its duration: the median, and the mean of the fastest quarter (the calls least disturbed by
  other processes: on a shared machine the median mixes in preemptions);
- ``busy``: the cores kept busy, the workgroups' summed durations over the dispatch's (2.00 on
  two threads is every worker computing from the dispatch's start to its end; a worker that
  wakes late, idles at the end waiting for the last tile, or is preempted lowers it);
- ``idle``: threads x duration - the summed durations, the fastest quarter's mean, in us;
- ``tile``: one workgroup's duration (fastest quarter).

and per call the gaps between dispatches and the whole execution, beside the undisturbed
call: the dispatches' fastest-quarter durations summed (on a shared machine the distance
between the two is what other processes took: a worker preempted in some dispatch). Thread counts are IREE's
``--task_topology_group_count``, as ``tools/bench_models.py`` and ``mipsc bench`` set them::

    .venv/bin/python tools/profile_dispatches.py --input 64x1024xf32 --parameters mlp.irpa \\
        mipsc=run/mlp.mipsc.vmfb iree=run/mlp.iree-best.vmfb --threads 1 2

Inputs are filled with 0.5 (timing only; ``tools/bench_vmfb_ab.py`` checks outputs agree).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def profile(vmfb: str, threads: int, opts: argparse.Namespace, out: Path) -> list[dict]:
    """The dispatch events of `opts.iterations` calls of @main."""
    command = [
        str(BIN / "iree-benchmark-module"),
        "--device=local-task",
        f"--task_topology_group_count={threads}",
        f"--module={vmfb}",
        "--function=main",
        f"--benchmark_min_time={opts.iterations}x",
        "--device_profiling_mode=host-execution",
        f"--device_profiling_output={out}",
        *(f"--input={shape}=0.5" for shape in opts.input),
    ]
    if opts.parameters:
        command.append(f"--parameters=model={opts.parameters}")
    subprocess.run(command, check=True, capture_output=True)
    lines = subprocess.run(
        [str(BIN / "iree-profile"), "dispatch", "--format=jsonl", "--dispatch_events", str(out)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    events = (json.loads(line) for line in lines)
    return [e for e in events if e.get("type") == "host_dispatch_event" and e["valid"]]


def fastest_quarter(values: list[float], keys: list[float]) -> float:
    """The mean of `values` over the quarter of samples with the smallest `keys`."""
    order = sorted(range(len(keys)), key=keys.__getitem__)[: max(1, len(keys) // 4)]
    return statistics.mean(values[i] for i in order)


def summarize(events: list[dict], threads: int) -> list[str]:
    """One line per dispatch (in call order), then one for the calls."""
    by_key: dict[str, list[dict]] = collections.defaultdict(list)
    calls: dict[tuple[int, int], list[dict]] = collections.defaultdict(list)
    for event in events:
        by_key[event["key"]].append(event)
        calls[event["run"], event["submission_id"]].append(event)
    lines = []
    for key, group in by_key.items():
        duration = [e["duration_ns"] / 1e3 for e in group]
        summed = [e["tile_duration_sum_ns"] / 1e3 for e in group]
        busy = [s / d for s, d in zip(summed, duration, strict=True)]
        idle = [threads * d - s for s, d in zip(summed, duration, strict=True)]
        tiles = group[0]["tile_count"]
        lines.append(
            f"  {key[:60]:60s} wg {tiles:4d}  duration {statistics.median(duration):8.1f} us"
            f" (fastest {fastest_quarter(duration, duration):8.1f})"
            f"  busy {statistics.median(busy):.2f} ({fastest_quarter(busy, duration):.2f})"
            f"  idle {fastest_quarter(idle, duration):6.1f} us"
            f"  tile {fastest_quarter(summed, duration) / tiles:8.1f} us"
        )
    spans, gaps = [], []
    for call in calls.values():
        call.sort(key=lambda e: e["start_host_time_ns"])
        spans.append((call[-1]["end_host_time_ns"] - call[0]["start_host_time_ns"]) / 1e3)
        gaps.extend(
            (b["start_host_time_ns"] - a["end_host_time_ns"]) / 1e3
            for a, b in itertools.pairwise(call)
        )
    gap = f"gaps between dispatches median {statistics.median(gaps):.1f} us" if gaps else ""
    lines.append(
        f"  per call: dispatches span {statistics.median(spans):.1f} us"
        f" (fastest {fastest_quarter(spans, spans):.1f}); {gap}"
    )
    lines.append(f"  undisturbed call {undisturbed(by_key, len(calls)):.1f} us")
    return lines


def undisturbed(by_key: dict[str, list[dict]], calls: int) -> float:
    """The call's time were no dispatch disturbed, in us: each dispatch's fastest-quarter
    duration times its dispatches per call, summed (dispatches that ran concurrently count
    apiece). Set beside the calls' span, it says how much of a call other processes took (a
    worker preempted, or woken late, in some dispatch of nearly every call)."""
    total = 0.0
    for group in by_key.values():
        duration = [e["duration_ns"] / 1e3 for e in group]
        total += fastest_quarter(duration, duration) * len(group) / calls
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="+", help="NAME=FILE.vmfb")
    parser.add_argument("--input", action="append", required=True, help="e.g. 64x1024xf32")
    parser.add_argument("--parameters", help="the .irpa of scope 'model', if any")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iterations", type=int, default=50, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating the builds")
    opts = parser.parse_args()
    builds = dict(b.split("=", 1) for b in opts.builds)
    with tempfile.TemporaryDirectory() as tmp:
        for threads in opts.threads:
            events: dict[str, list[dict]] = {name: [] for name in builds}
            for run in range(opts.rounds):
                for name, vmfb in builds.items():
                    found = profile(vmfb, threads, opts, Path(tmp) / "p.ireeprof")
                    events[name] += [dict(e, run=run) for e in found]
            for name, found in events.items():
                print(f"{name}, {threads} thread(s), {len(found)} dispatches:")
                print("\n".join(summarize(found, threads)), flush=True)


if __name__ == "__main__":
    main()
