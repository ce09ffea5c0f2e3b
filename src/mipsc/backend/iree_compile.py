"""Run the iree-compile of the installed iree-base-compiler on mipsc's printed module."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from mipsc.diagnostics import MipscError, SourceLocation

DEFAULT_TARGET_CPU = "host"

# iree-compile's diagnostics: `file:line:col: error: message`, where the location is the
# user's file because mipsc prints every op's loc(...) (see print_module(debuginfo=True)).
_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$", re.M
)


@cache
def iree_compile_path() -> str:
    """The iree-compile binary shipped by the iree-base-compiler package."""
    try:
        from iree.compiler.tools.binaries import find_tool
    except ImportError as err:  # pragma: no cover - a broken install
        raise MipscError(
            "iree-base-compiler is not installed (pip install iree-base-compiler)"
        ) from err
    return str(find_tool("iree-compile"))


def target_flags(target_cpu: str = DEFAULT_TARGET_CPU) -> list[str]:
    """Flags for the local llvm-cpu target that the kernel plugin runs on."""
    return [
        "--iree-hal-target-device=local",
        "--iree-hal-local-target-device-backends=llvm-cpu",
        f"--iree-llvmcpu-target-cpu={target_cpu}",
    ]


def compile_mlir(
    mlir_text: str,
    output: Path,
    *,
    target_cpu: str = DEFAULT_TARGET_CPU,
    extra_flags: Sequence[str] = (),
) -> None:
    """Compile MLIR text to a .vmfb; a failure becomes a `MipscError` at the user's location."""
    command = [iree_compile_path(), "-", *target_flags(target_cpu), *extra_flags, "-o", str(output)]
    proc = subprocess.run(command, input=mlir_text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise iree_compile_error(proc.stderr, proc.returncode)


def iree_compile_error(stderr: str, returncode: int) -> MipscError:
    """The first error of iree-compile's output as a located error, the rest as notes."""
    match = _DIAGNOSTIC.search(stderr)
    rest = stderr.strip()
    if match is None:
        return MipscError(f"iree-compile failed (exit {returncode}):\n{rest}")
    location = None
    if match["file"] not in ("-", "<stdin>"):
        location = SourceLocation(match["file"], int(match["line"]), int(match["col"]))
    details = rest[match.end() :].strip()
    notes = [f"iree-compile said:\n{details}"] if details else []
    return MipscError(f"iree-compile: {match['msg']}", location, notes)
