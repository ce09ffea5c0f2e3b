"""Compile time: `mipsc compile` against plain iree-compile on the same module (issue 14, part 7).

Two references, both timed: iree-compile on the module mipsc hands it (`--emit=iree-input
--print-debuginfo`, with the flags `mipsc compile -v` prints), so that mipsc/iree is mipsc's own
cost (Python start-up, imports, parse, passes, print, copying the weights on); and plain
iree-compile on the input as given (IREE's own codegen, with only the target flags and the
export's manifest flags): what the user would run instead, the criterion of issue 14 (mipsc
within 1.25x). All commands run interleaved, `--runs` times each; medians, and mipsc's peak
RSS. Ratios of wall time, then of CPU time (user + system, `c`: it moves less when others load
the machine). mipsc runs from bytecode, compiled first for each source tree (see
compile_bytecode).

Cases: the committed exports in tests/data, and synthetic MLPs (torch-free) whose weights are
inline `dense_resource` blobs or `#flow.parameter.named` parameters in an .irpa (the two ways
exports carry weights), `--layers` linear layers of `--width`² f32 each:

    .venv/bin/python tools/bench_compile.py                       # exports + 2x1024² MLPs
    .venv/bin/python tools/bench_compile.py --width 2048 --layers 4 --runs 3 --no-exports
    .venv/bin/python tools/bench_compile.py --baseline /tmp/main   # before/after, one run
    .venv/bin/python tools/bench_compile.py --baseline /tmp/main --own  # mipsc's part alone
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mipsc.backend.iree_compile import target_flags

REPO = Path(__file__).resolve().parents[1]
MIPSC = [sys.executable, "-m", "mipsc"]
"""mipsc as the venv's `mipsc` script runs it; with --baseline, the other sources run the same
way (PYTHONPATH first)."""


def synthetic_mlp(width: int, layers: int, inline: bool, folder: Path) -> Path:
    """`layers` x (linear without bias, relu) on f32 [8, width], as iree-turbine exports it."""
    rng = np.random.default_rng(0)
    weights = {
        f"w{i}": (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        for i in range(layers)
    }
    lines = [
        "module @module {",
        *(_global(name, width, inline) for name in weights),
        *_main(width, layers),
        "}",
    ]
    if inline:
        lines += _resources(weights)
    kind = "inline" if inline else "irpa"
    path = folder / f"mlp_{layers}x{width}_{kind}.mlir"
    path.write_text("\n".join(lines) + "\n")
    if not inline:
        from iree.runtime import save_archive_file

        save_archive_file(weights, path.with_suffix(".irpa"))
    return path


def _global(name: str, width: int, inline: bool) -> str:
    """A weight as a global: an inline `dense_resource` blob or a named parameter."""
    value = f"dense_resource<{name}>" if inline else f'#flow.parameter.named<"model"::"{name}">'
    return f"  util.global private @{name} = {value} : tensor<{width}x{width}xf32>"


def _main(width: int, layers: int) -> list[str]:
    """The function: each layer loads its weight, then linear and relu."""
    t = f"!torch.vtensor<[8,{width}],f32>"
    w_t = f"!torch.vtensor<[{width},{width}],f32>"
    lines = [f"  func.func @main(%x: {t}) -> {t} {{", "    %none = torch.constant.none"]
    value = "%x"
    for i in range(layers):
        lines += [
            f"    %g{i} = util.global.load @w{i} : tensor<{width}x{width}xf32>",
            f"    %w{i} = torch_c.from_builtin_tensor %g{i} : tensor<{width}x{width}xf32> -> {w_t}",
            f"    %l{i} = torch.aten.linear {value}, %w{i}, %none : {t}, {w_t}, !torch.none -> {t}",
            f"    %r{i} = torch.aten.relu %l{i} : {t} -> {t}",
        ]
        value = f"%r{i}"
    return [*lines, f"    return {value} : {t}", "  }"]


def _resources(weights: dict[str, np.ndarray]) -> list[str]:
    """The `dialect_resources` section holding the blobs (alignment 4, then the bytes)."""
    blobs = [
        f'      {name}: "0x04000000{w.tobytes().hex().upper()}"' for name, w in weights.items()
    ]
    return ["{-#", "  dialect_resources: {", "    builtin: {", ",\n".join(blobs), "    }", "  }",
            "#-}"]  # fmt: skip


def manifest_flags(source: Path) -> list[str]:
    """The extra iree-compile flags a committed export needs (tests/data/manifest.json)."""
    manifest = REPO / "tests" / "data" / "manifest.json"
    if source.parent != manifest.parent:
        return []
    entry = json.loads(manifest.read_text())["models"].get(source.stem, {})
    return list(entry.get("compile_flags", []))


def iree_command(source: Path, work: Path) -> tuple[list[str], list[str], list[str]]:
    """(the mipsc command, iree-compile on mipsc's output as `-v` shows it, plain iree-compile
    on the input as given: IREE's own codegen, the user's alternative)."""
    flags = manifest_flags(source)
    out = subprocess.run(
        [*MIPSC, "compile", str(source), "-o", str(work / "probe.vmfb"), "-v", *flags],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stderr.splitlines()
    at = lines.index("mipsc: iree-compile command (the module goes to its stdin):")
    iree = shlex.split(lines[at + 2].strip().removeprefix("| "))
    ir = work / f"{source.stem}.iree-input.mlir"
    subprocess.run(
        [*MIPSC, "compile", str(source), "--emit=iree-input", "--print-debuginfo",
         "-o", str(ir)], check=True,
    )  # fmt: skip
    iree[iree.index("-")] = str(ir)
    iree[iree.index("-o") + 1] = str(work / "iree.vmfb")
    plain = [iree[0], str(source), *target_flags(), *flags, "-o", str(work / "plain.vmfb")]
    mipsc = [*MIPSC, "compile", str(source), "-o", str(work / "mipsc.vmfb"), *flags]
    return mipsc, iree, plain


def compile_bytecode(tree: Path) -> None:
    """Writes the bytecode (.pyc) of `tree`'s mipsc, as pip does when it installs a wheel and
    `make install` does for the editable install. Without it, with PYTHONDONTWRITEBYTECODE
    set, every run compiles mipsc's sources again (~0.1 s of CPU on a Zen 4), which no
    installed mipsc does; and an A/B of two trees compares their code, not their caches."""
    compileall.compile_dir(tree / "src" / "mipsc", quiet=1)


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of the command and its
    children. CPU time moves less than wall time on a machine others load."""
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S %M", *command], capture_output=True, text=True,
        check=True, env=env,
    )  # fmt: skip
    user, system, kib = done.stderr.strip().splitlines()[-1].split()
    return time.perf_counter() - start, float(user) + float(system), int(kib)


COLUMNS = ("mipsc", "base", "iree", "plain")
"""mipsc; the baseline's mipsc (--baseline); iree-compile on mipsc's output (so mipsc/iree is
mipsc's own cost); plain iree-compile on the input (IREE's own codegen: the user's alternative,
issue 14's criterion)."""


def bench(source: Path, runs: int, work: Path, baseline: Path | None, own: bool = False) -> str:
    """One row: the medians of `runs` interleaved runs of mipsc (and the baseline's) and
    iree-compile on mipsc's output and on the input (wall and CPU seconds), the ratios of
    mipsc's to each and peak RSS. With `own`, mipsc stops before iree-compile
    (`--emit=iree-input`): its own cost alone, as a fraction of iree-compile's."""
    mipsc, iree, plain = iree_command(source, work)
    if own:
        at = mipsc.index("-o")
        mipsc = [*mipsc[:at], "--emit=iree-input", "--print-debuginfo", "-o",
                 str(work / "own.mlir"), *mipsc[at + 2 :]]  # fmt: skip
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = {"mipsc": (mipsc, None)}
    if baseline is not None:
        commands["base"] = (mipsc, {**os.environ, "PYTHONPATH": str(baseline / "src")})
    commands["iree"] = (iree, None)
    if subprocess.run(plain, capture_output=True, check=False).returncode == 0:
        commands["plain"] = (plain, None)  # (IREE alone fails on some inputs mipsc compiles)
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, env) in commands.items():
            samples[name].append(timed(command, env))
    return _row(source, samples, mipsc_names=[n for n in ("mipsc", "base") if n in commands])


def _row(
    source: Path, samples: dict[str, list[tuple[float, float, int]]], mipsc_names: list[str]
) -> str:
    """The table row of one case (see header): medians, ratios, peak RSS; `-` where plain
    iree-compile failed."""
    wall = {n: statistics.median(s[0] for s in runs) for n, runs in samples.items()}
    cpu = {n: statistics.median(s[1] for s in runs) for n, runs in samples.items()}
    names = [n for n in COLUMNS if n in mipsc_names or n in ("iree", "plain")]
    row = f"{source.name:<28} {source.stat().st_size / 2**20:7.1f}"
    row += "".join(f" {wall[n]:7.2f}" if n in wall else f" {'-':>7}" for n in names)
    for other in ("iree", "plain"):
        for times in (wall, cpu):
            row += "".join(
                f" {times[n] / times[other]:8.2f}x" if other in times else f" {'-':>9}"
                for n in mipsc_names
            )
    row += "".join(f" {max(s[2] for s in samples[n]) / 1024:10.0f}" for n in mipsc_names)
    return row


def header(mipsc_names: list[str]) -> str:
    """Column names: seconds of each command, mipsc's wall and CPU ratios to iree-compile on
    its output and to plain iree-compile on the input, mipsc's peak RSS (MiB)."""
    names = [n for n in COLUMNS if n in mipsc_names or n in ("iree", "plain")]
    text = f"{'case':<28} {'MiB':>7}" + "".join(f" {n + ' s':>7}" for n in names)
    for other in ("iree", "plain"):
        for kind in ("", " c"):
            text += "".join(f" {n[0] + '/' + other + kind:>9}" for n in mipsc_names)
    return text + "".join(f" {n + ' MiB':>10}" for n in mipsc_names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--no-exports", action="store_true", help="only the synthetic MLPs")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also time the mipsc of another source tree (DIR/src, e.g. `git archive main` "
        "unpacked), interleaved with this one",
    )
    parser.add_argument("--only", default="", help="cases whose name contains this")
    parser.add_argument(
        "--own",
        action="store_true",
        help="time mipsc's own part (--emit=iree-input: start-up, imports, parse, passes, "
        "print) against iree-compile, instead of the whole `mipsc compile`",
    )
    args = parser.parse_args()
    for tree in (REPO, args.baseline):
        if tree is not None:
            compile_bytecode(tree)
    with tempfile.TemporaryDirectory(prefix="mipsc-bench-compile-") as tmp:
        work = Path(tmp)
        sources = [] if args.no_exports else sorted((REPO / "tests" / "data").glob("*.mlir"))
        sources += [
            synthetic_mlp(args.width, args.layers, inline, work) for inline in (True, False)
        ]
        print(header(["mipsc", "base"] if args.baseline else ["mipsc"]), flush=True)
        for source in sources:
            if args.only in source.name:
                print(bench(source, args.runs, work, args.baseline, args.own), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
