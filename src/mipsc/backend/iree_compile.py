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
    # Bytes, not text: with `-o -` the .vmfb itself would come back through this pipe.
    proc = subprocess.run(command, input=mlir_text.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise iree_compile_error(proc.stderr.decode(errors="replace"), proc.returncode)


# MLIR quotes the source line under a diagnostic when it can open the file; mipsc quotes it
# itself, so iree-compile's copy (a line, then a line with only a caret) is dropped.
_SOURCE_ECHO = re.compile(r"^.*\n[ \t]*\^[ \t]*$", re.M)
_LEGALIZE = re.compile(r"^(failed to legalize operation '[^']+'[^:]*): .*$")
_OUTPUT_FILE = re.compile(r"cannot open output file '(?P<path>[^']*)': (?P<reason>.*)")
_BAD_CPU = re.compile(r"'(?P<cpu>[^']*)' is not a recognized processor")
_ACCEPTED_CPUS = re.compile(r"^List of accepted CPUs: .*$", re.M)
_BAD_FLAG = re.compile(r"Unknown command line argument '(?P<flag>[^']*)'")
_DID_YOU_MEAN = re.compile(r"Did you mean '(?P<flag>[^']*)'")


def _tidy(stderr: str) -> str:
    """iree-compile's output without its source echoes and repeated lines."""
    lines = _SOURCE_ECHO.sub("", stderr).splitlines()
    return "\n".join(dict.fromkeys(line for line in lines if line.strip()))


def iree_compile_error(stderr: str, returncode: int) -> MipscError:
    """iree-compile's failure as the user should read it.

    Known command-line and output-file failures get a plain message; otherwise the first
    diagnostic becomes a located error (the user's file:line:col) and the rest its notes.
    """
    rest = _tidy(stderr)
    if (bad_output := _OUTPUT_FILE.search(rest)) is not None:
        return MipscError(f"cannot write '{bad_output['path']}': {bad_output['reason']}")
    if (bad_cpu := _BAD_CPU.search(rest)) is not None:
        accepted = _ACCEPTED_CPUS.search(rest)
        return MipscError(
            f"iree-compile does not know the CPU '{bad_cpu['cpu']}' "
            "(from --target-cpu or --iree-llvmcpu-target-cpu)",
            notes=[accepted[0]] if accepted else [],
        )
    if (bad_flag := _BAD_FLAG.search(rest)) is not None:
        hint = _DID_YOU_MEAN.search(rest)
        return MipscError(
            f"iree-compile does not know the option '{bad_flag['flag']}'",
            notes=[f"did you mean '{hint['flag']}'?"] if hint else [],
        )
    match = _DIAGNOSTIC.search(rest)
    if match is None:
        return MipscError(f"iree-compile failed (exit {returncode}):\n{rest}")
    location = None
    if match["file"] not in ("-", "<stdin>"):
        location = SourceLocation(match["file"], int(match["line"]), int(match["col"]))
    message = match["msg"]
    notes = []
    if (legalize := _LEGALIZE.match(message)) is not None:
        # The op is printed again by the "see current operation" note; keep the headline short.
        message = legalize[1]
        if "'torch." in message:
            notes.append(
                "IREE's torch frontend cannot lower this op (mipsc rewrites torch.aten.mm and "
                "hands every other torch op to iree-compile as written)"
            )
    details = rest[match.end() :].strip()
    if details:
        notes.append(f"iree-compile said:\n{details}")
    return MipscError(f"iree-compile: {message}", location, notes)
