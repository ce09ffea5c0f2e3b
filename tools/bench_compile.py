"""Compile time: `mipsc compile` against plain iree-compile on the same module (issue 14, part 7).

For each case, mipsc's own cost is what `mipsc compile FILE -o X.vmfb` takes beyond
`iree-compile` run on the module mipsc hands it (`--emit=iree-input --print-debuginfo`, with
the flags `mipsc compile -v` prints): Python start-up, imports, parse, passes, print. Both
commands run interleaved, `--runs` times each; medians, and mipsc's peak RSS.

Cases: the committed exports in tests/data, and synthetic MLPs (torch-free) whose weights are
inline `dense_resource` blobs or `#flow.parameter.named` parameters in an .irpa (the two ways
exports carry weights), `--layers` linear layers of `--width`² f32 each:

    .venv/bin/python tools/bench_compile.py                       # exports + 2x1024² MLPs
    .venv/bin/python tools/bench_compile.py --width 2048 --layers 4 --runs 3 --no-exports
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def synthetic_mlp(width: int, layers: int, inline: bool, folder: Path) -> Path:
    """`layers` x (linear without bias, relu) on f32 [8, width], as iree-turbine exports it."""
    rng = np.random.default_rng(0)
    t = f"!torch.vtensor<[8,{width}],f32>"
    w_t = f"!torch.vtensor<[{width},{width}],f32>"
    lines = ["module @module {"]
    blobs = []
    for i in range(layers):
        if inline:
            lines.append(
                f"  util.global private @w{i} = dense_resource<w{i}> : tensor<{width}x{width}xf32>"
            )
        else:
            lines.append(
                f'  util.global private @w{i} = #flow.parameter.named<"model"::"w{i}"> : '
                f"tensor<{width}x{width}xf32>"
            )
    lines.append(f"  func.func @main(%x: {t}) -> {t} {{")
    value = "%x"
    weights = {}
    for i in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        weights[f"w{i}"] = w
        if inline:
            blobs.append(f'      w{i}: "0x04000000{w.tobytes().hex().upper()}"')
        lines += [
            f"    %g{i} = util.global.load @w{i} : tensor<{width}x{width}xf32>",
            f"    %w{i} = torch_c.from_builtin_tensor %g{i} : tensor<{width}x{width}xf32> -> {w_t}",
            f"    %l{i} = torch.aten.linear {value}, %w{i}, %none : {t}, {w_t}, !torch.none -> {t}",
            f"    %r{i} = torch.aten.relu %l{i} : {t} -> {t}",
        ]
        value = f"%r{i}"
    lines.insert(
        lines.index(f"  func.func @main(%x: {t}) -> {t} {{") + 1, "    %none = torch.constant.none"
    )
    lines += [f"    return {value} : {t}", "  }", "}"]
    if inline:
        lines += [
            "{-#",
            "  dialect_resources: {",
            "    builtin: {",
            ",\n".join(blobs),
            "    }",
            "  }",
            "#-}",
        ]
    kind = "inline" if inline else "irpa"
    path = folder / f"mlp_{layers}x{width}_{kind}.mlir"
    path.write_text("\n".join(lines) + "\n")
    if not inline:
        from iree.runtime import save_archive_file

        save_archive_file(weights, path.with_suffix(".irpa"))
    return path


def manifest_flags(source: Path) -> list[str]:
    """The extra iree-compile flags a committed export needs (tests/data/manifest.json)."""
    manifest = REPO / "tests" / "data" / "manifest.json"
    if source.parent != manifest.parent:
        return []
    entry = json.loads(manifest.read_text())["models"].get(source.stem, {})
    return list(entry.get("compile_flags", []))


def iree_command(source: Path, work: Path) -> tuple[list[str], list[str]]:
    """(the mipsc command, the plain iree-compile command on mipsc's output), as `-v` shows."""
    flags = manifest_flags(source)
    out = subprocess.run(
        [str(BIN / "mipsc"), "compile", str(source), "-o", str(work / "probe.vmfb"), "-v", *flags],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stderr.splitlines()
    at = lines.index("mipsc: iree-compile command (the module goes to its stdin):")
    iree = shlex.split(lines[at + 2].strip().removeprefix("| "))
    ir = work / f"{source.stem}.iree-input.mlir"
    subprocess.run(
        [str(BIN / "mipsc"), "compile", str(source), "--emit=iree-input", "--print-debuginfo",
         "-o", str(ir)], check=True,
    )  # fmt: skip
    iree[iree.index("-")] = str(ir)
    iree[iree.index("-o") + 1] = str(work / "iree.vmfb")
    mipsc = [str(BIN / "mipsc"), "compile", str(source), "-o", str(work / "mipsc.vmfb"), *flags]
    return mipsc, iree


def timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of the command and its children."""
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, int(done.stderr.strip().splitlines()[-1])


def bench(source: Path, runs: int, work: Path) -> str:
    mipsc, iree = iree_command(source, work)
    times: dict[str, list[float]] = {"mipsc": [], "iree": []}
    rss: dict[str, list[int]] = {"mipsc": [], "iree": []}
    for _ in range(runs):
        for name, command in (("mipsc", mipsc), ("iree", iree)):
            seconds, kib = timed(command)
            times[name].append(seconds)
            rss[name].append(kib)
    m, i = statistics.median(times["mipsc"]), statistics.median(times["iree"])
    size = source.stat().st_size / 2**20
    return (
        f"{source.name:<32} {size:8.1f} {m:8.2f} {i:8.2f} {m / i:6.2f}x "
        f"{max(rss['mipsc']) / 1024:9.0f} {max(rss['iree']) / 1024:9.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--no-exports", action="store_true", help="only the synthetic MLPs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mipsc-bench-compile-") as tmp:
        work = Path(tmp)
        sources = [] if args.no_exports else sorted((REPO / "tests" / "data").glob("*.mlir"))
        sources += [
            synthetic_mlp(args.width, args.layers, inline, work) for inline in (True, False)
        ]
        print(f"{'case':<32} {'MiB':>8} {'mipsc s':>8} {'iree s':>8} {'ratio':>7} "
              f"{'mipsc MiB':>9} {'iree MiB':>9}", flush=True)  # fmt: skip
        for source in sources:
            print(bench(source, args.runs, work), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
