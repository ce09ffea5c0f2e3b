"""What a large call input costs to hand to IREE: mipsc's staging array vs IREE's copy.

Under torch.compile a module's weights are graph inputs, so every call hands them to the
compiled module. This tool compiles `x @ w` (x: 1xK, w: KxN, both inputs, f32) with mipsc and
times one call per round, interleaved (`mipsc.bench.time_interleaved`), three ways:

- `staged`: mipsc's call path, which copies a large input into a staging array of the module's
  (allocated once, so its pages are warm) and gives IREE a view of it;
- `copied`: the same call with IREE's implicit copy of each input into a new device buffer
  (mipsc's path before the staging arrays);
- `torch`: torch eager's `x @ w`, for scale.

    .venv/bin/python tools/bench_call_inputs.py                 # K = N = 4096
    .venv/bin/python tools/bench_call_inputs.py --size 2048 --seconds 3

Prints the median per-call times and the ratio copied / staged.
"""

from __future__ import annotations

import argparse
import statistics
from unittest import mock

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="K and N (default 4096)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per way (default 2)")
    args = parser.parse_args()

    import torch

    import mipsc
    from mipsc.bench import time_interleaved
    from mipsc.runtime import module as runtime_module

    torch.manual_seed(0)
    x, w = torch.randn(1, args.size), torch.randn(args.size, args.size)
    model = mipsc.compile(lambda a, b: a @ b, x, w)
    torch.testing.assert_close(model(x, w), x @ w, rtol=1e-4, atol=1e-3)

    def copied() -> object:
        with mock.patch.object(runtime_module.Function, "_staged", lambda *_args: None):
            return model(x, w)

    times = time_interleaved(
        {"staged": lambda: model(x, w), "copied": copied, "torch": lambda: x @ w},
        min_seconds=args.seconds,
        max_samples=10_000,
    )
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    megabytes = (x.numel() + w.numel()) * 4 / 2**20
    print(f"x @ w, x 1x{args.size}, w {args.size}x{args.size} f32 ({megabytes:.0f} MiB of inputs)")
    for name, median in medians.items():
        print(f"  {name:<9} {median * 1e3:9.3f} ms  ({len(times[name])} calls)")
    print(f"  copied / staged: {medians['copied'] / medians['staged']:.1f}x")
    assert np.isfinite(medians["staged"])


if __name__ == "__main__":
    main()
