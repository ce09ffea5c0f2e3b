"""Run the iree-compile of the installed iree-base-compiler on mipsc's printed module."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mipsc.diagnostics import MipscError, SourceLocation
from mipsc.mlir_text import FileSpan, MlirText

DEFAULT_TARGET_CPU = "host"

# iree-compile's diagnostics: `file:line:col: error: message`, where the location is the
# user's file because mipsc prints every op's loc(...) (see print_module(debuginfo=True)).
_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$", re.M
)


@cache
def iree_tool_path(name: str) -> str:
    """A tool binary of the iree-base-compiler package (iree-compile, iree-opt).

    Found where the package keeps it (`iree/compiler/_mlir_libs/`) without importing
    `iree.compiler`, whose import alone costs ~0.17 s of every `mipsc compile`; IREE's own
    `find_tool` (which also honours $IREE_TOOL_PATH) is the fallback.
    """
    if not os.environ.get("IREE_TOOL_PATH"):
        try:
            spec = importlib.util.find_spec("iree.compiler")
        except (ImportError, ValueError):
            spec = None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(folder) / "_mlir_libs" / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    try:
        from iree.compiler.tools.binaries import find_tool
    except ImportError as err:  # pragma: no cover - a broken install
        raise MipscError(
            "iree-base-compiler is not installed (pip install iree-base-compiler)"
        ) from err
    return str(find_tool(name))


def iree_compile_path() -> str:
    """The iree-compile binary shipped by the iree-base-compiler package."""
    return iree_tool_path("iree-compile")


def target_flags(target_cpu: str = DEFAULT_TARGET_CPU) -> list[str]:
    """Flags for the local llvm-cpu target that the kernel plugin runs on."""
    return [
        "--iree-hal-target-device=local",
        "--iree-hal-local-target-device-backends=llvm-cpu",
        f"--iree-llvmcpu-target-cpu={target_cpu}",
    ]


def compile_mlir(
    mlir: str | MlirText,
    output: Path,
    *,
    target_cpu: str = DEFAULT_TARGET_CPU,
    extra_flags: Sequence[str] = (),
    show_command: Callable[[list[str]], None] | None = None,
) -> None:
    """Compile MLIR text to a .vmfb; a failure becomes a `MipscError` at the user's location.

    iree-compile reads the text on stdin, or, above FILE_INPUT_BYTES or with a resource section
    left in the source file (exports with inline weights), from a temporary file written piece
    by piece, the section copied file to file: a pipe fed in 4 KiB writes cost ~1 s per 100 MB.
    `show_command` is handed the command line first.
    """
    text = mlir if isinstance(mlir, MlirText) else MlirText(mlir)
    command = [iree_compile_path(), "-", *target_flags(target_cpu), *extra_flags, "-o", str(output)]
    with tempfile.TemporaryDirectory(prefix="mipsc-") as tmp:
        source = None
        if len(text) > FILE_INPUT_BYTES or isinstance(text.tail, FileSpan):
            source = Path(tmp) / "iree-input.mlir"
            with source.open("wb") as file:
                text.write_binary(file)
            command[1] = str(source)
        if show_command is not None:
            show_command(command)
        # Bytes, not text: with `-o -` the .vmfb itself would come back through this pipe.
        data = None if source is not None else str(text).encode()
        proc = subprocess.run(command, input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        if source is not None:  # mipsc's own file is no place to point the user at
            stderr = stderr.replace(str(source), "-")
        raise iree_compile_error(stderr, proc.returncode)


FILE_INPUT_BYTES = 8 * 2**20


_TARGET_CPU = re.compile(rb'cpu = "(?P<cpu>[\w.+-]+)"')


def compiled_cpu(vmfb: Path) -> str | None:
    """The CPU name IREE compiled a .vmfb's code for (what `host` resolved to): the module
    keeps its executable target, `cpu = "znver4"`, as text. None if not found."""
    try:
        found = _TARGET_CPU.search(vmfb.read_bytes())
    except OSError:
        return None
    return found["cpu"].decode() if found else None


# MLIR quotes the source line under a diagnostic when it can open the file; mipsc quotes it
# itself, so iree-compile's copy (a line, then a line with only a caret) is dropped.
_SOURCE_ECHO = re.compile(r"^.*\n[ \t]*\^[ \t]*$", re.M)
_LEGALIZE = re.compile(r"^(failed to legalize operation '[^']+')")
_OUTPUT_FILE = re.compile(r"cannot open output file '(?P<path>[^']*)': (?P<reason>.*)")
_BAD_CPU = re.compile(r"'(?P<cpu>[^']*)' is not a recognized processor")
_ACCEPTED_CPUS = re.compile(r"^List of accepted CPUs: .*$", re.M)
_BAD_FLAG = re.compile(r"Unknown command line argument '(?P<flag>[^']*)'")
_DID_YOU_MEAN = re.compile(r"Did you mean '(?P<flag>[^']*)'")
_UNDEFINED = re.compile(r"iree-lld: error: undefined symbol: (?P<symbol>\S+)")
_LINK_FAILED = "failed to link executable"
_F64_MATH = re.compile(r"^failed to legalize operation 'math\.\w+'")

F64_MATH_NOTE = (
    "IREE's CPU code has no f64 form of some math functions (tanh, erf, sin, cos, ...), and "
    "mipsc keeps f64 as f64: compute that op in f32 (e.g. `torch.tanh(x.float()).double()`)"
)
"""What to do about f64 math IREE 3.13 cannot compile: `math.erf` on f64 is not legalized, and
f64 `tanh`, `sin`, `cos` become calls of the C functions, which an embedded dispatch cannot
link ("iree-lld: error: undefined symbol: tanh"). Demoting f64 is no way out: an f64 input or
result then gets a buffer of half its size ("buffer view byte length 256 exceeds backing buffer
byte length 128"; pipeline.KEEP_F64)."""


def _tidy(stderr: str) -> str:
    """iree-compile's output without its source echoes and repeated lines."""
    lines = _SOURCE_ECHO.sub("", stderr).splitlines()
    return "\n".join(dict.fromkeys(line for line in lines if line.strip()))


def _command_line_error(output: str) -> MipscError | None:
    """A plain message for iree-compile's known command-line and output-file failures."""
    if (bad_output := _OUTPUT_FILE.search(output)) is not None:
        return MipscError(f"cannot write '{bad_output['path']}': {bad_output['reason']}")
    if (bad_cpu := _BAD_CPU.search(output)) is not None:
        accepted = _ACCEPTED_CPUS.search(output)
        return MipscError(
            f"iree-compile does not know the CPU '{bad_cpu['cpu']}' "
            "(from --target-cpu or --iree-llvmcpu-target-cpu)",
            notes=[accepted[0]] if accepted else [],
        )
    if (bad_flag := _BAD_FLAG.search(output)) is not None:
        hint = _DID_YOU_MEAN.search(output)
        return MipscError(
            f"iree-compile does not know the option '{bad_flag['flag']}'",
            notes=[f"did you mean '{hint['flag']}'?"] if hint else [],
        )
    return None


_BYTE_SCALAR = "for conversion to byte or char type dstOriginalDtype has to be passed"
"""IREE 3.13's torch lowering aborts with this on an op that converts a scalar to an 8-bit
integer type: arithmetic between an int8/uint8 tensor and a number (`x * 3`)."""


def _headline(message: str, rest_of: list[_Diagnostic]) -> tuple[str, list[str]]:
    """The first error's message, short for a failure to legalize (the op is dumped again by
    a note), and the note saying what stays on IREE's path for a torch op (or what to do
    about a known IREE limit)."""
    if _BYTE_SCALAR in message:
        return message, [
            "IREE cannot compile this op on 8-bit integers (arithmetic between an int8 or uint8 "
            "tensor and a number, e.g. `x * 3`): compute it in int32 and convert back, e.g. "
            "`(x.to(torch.int32) * 3).to(torch.int8)`, which wraps as torch does"
        ]
    legalize = _LEGALIZE.match(message)
    if legalize is None:
        return message, []
    message = legalize[1]
    if message.endswith("'torch.operator'"):
        # A torch op mipsc keeps in the generic form: name the aten op it holds.
        dumped = "\n".join(d.message for d in rest_of)
        if (held := _OPERATOR_NAME.search(dumped)) is not None:
            message += f" ({held[1]})"
    if "'torch." not in message:
        return message, []
    return message, [
        "IREE's torch frontend cannot lower this op (mipsc routes the float matmul family to "
        "its kernels and hands every other torch op to iree-compile as written; --report says "
        "which ops it routed)"
    ]


def iree_compile_error(stderr: str, returncode: int) -> MipscError:
    """iree-compile's failure as the user should read it.

    Known command-line and output-file failures get a plain message; otherwise the first
    diagnostic becomes a located error (the user's file:line:col) and the rest its notes.
    """
    rest = _tidy(stderr)
    if (known := _command_line_error(rest)) is not None:
        return known
    diagnostics = _diagnostics(rest)
    errors = [d for d in diagnostics if d.kind == "error"]
    if not errors:
        lines = [_shorten(line) for line in rest.splitlines()]
        return MipscError(
            f"iree-compile failed (exit {returncode})", notes=[_said(lines)] if lines else []
        )
    # The first error is the cause; the errors after it ("failed to serialize executables")
    # are its consequences, and the op dumps of the notes are IR nobody asked for.
    first = errors[0]
    rest_of = diagnostics[diagnostics.index(first) + 1 :]
    message, notes = _headline(_shorten(first.message), rest_of)
    notes += _math_notes(message, rest, rest_of)
    if message.startswith(_LINK_FAILED) and (undefined := _UNDEFINED.search(rest)) is not None:
        message = (
            f"failed to link a dispatch: it calls '{undefined['symbol']}', which IREE's "
            "embedded CPU code does not provide"
        )
    lines = [_shorten(line) for line in first.body[:1]]
    for diagnostic in rest_of:
        where = f"{diagnostic.location}: " if diagnostic.location else ""
        lines.append(_shorten(f"{where}{diagnostic.kind}: {diagnostic.message}"))
        lines += [_shorten(line) for line in diagnostic.body[:1]]
    if lines:
        notes.append(_said(lines))
    return MipscError(f"iree-compile: {message}", first.location, notes)


def _math_notes(message: str, output: str, rest_of: list[_Diagnostic]) -> list[str]:
    """F64_MATH_NOTE, for an f64 math op IREE could not legalize or a C math function (the f64
    one: no `f` suffix) a dispatch could not link."""
    undefined = _UNDEFINED.search(output) if message.startswith(_LINK_FAILED) else None
    if undefined is not None and undefined["symbol"] in _C_MATH:
        return [F64_MATH_NOTE]
    dumped = "\n".join(d.message for d in rest_of)
    if _F64_MATH.match(message) and "f64>" in dumped:
        return [F64_MATH_NOTE]
    return []


_C_MATH = frozenset(
    "acos acosh asin asinh atan atan2 atanh cbrt cos cosh erf erfc exp exp2 expm1 fmod "
    "log log10 log1p log2 pow sin sinh tan tanh".split()
)
"""libm's f64 functions, which llvm-cpu code calls where it has no f64 expansion."""


_OPERATOR_NAME = re.compile(r'"torch\.operator"\(.*?<\{name = "([\w.]+)"')


def _said(lines: list[str]) -> str:
    """iree-compile's other lines as one note, at most MAX_NOTE_LINES of them."""
    shown = lines[:MAX_NOTE_LINES]
    if len(lines) > MAX_NOTE_LINES:
        shown.append(
            f"... ({len(lines) - MAX_NOTE_LINES} more; rerun the iree-compile command that "
            "`mipsc compile -v` prints to see everything)"
        )
    return "iree-compile said:\n" + "\n".join(shown)


# iree-compile's stderr as diagnostics: a header line `LOC: error|note|warning: msg`, then the
# lines that belong to it (a source echo, an op dump after "see current operation:").
_HEADER = re.compile(
    r"^(?:(?P<file>[^\s:][^:\n]*):(?P<line>\d+):(?P<col>\d+): |(?P<unknown><unknown>:0: )?)"
    r"(?P<kind>error|note|warning|remark): (?P<msg>.*)$"
)
_LONG_ATTR = re.compile(r"#hal\.(?:executable|device)\.target<")
MAX_NOTE_LINES = 12
MAX_LINE = 200


@dataclass
class _Diagnostic:
    kind: str
    message: str
    location: SourceLocation | None
    body: list[str]


def _diagnostics(stderr: str) -> list[_Diagnostic]:
    found: list[_Diagnostic] = []
    for line in stderr.splitlines():
        header = _HEADER.match(line)
        if header is not None:
            location = None
            if header["file"] and header["file"] not in ("-", "<stdin>"):
                location = SourceLocation(header["file"], int(header["line"]), int(header["col"]))
            found.append(_Diagnostic(header["kind"], header["msg"].strip(), location, []))
        elif found and line.strip():
            found[-1].body.append(line)
    return found


def _shorten(text: str) -> str:
    """A line without IREE's target attributes (2,000 characters of CPU features) and cut to
    MAX_LINE characters."""
    start = _LONG_ATTR.search(text)
    while start is not None:
        end = _matching_angle(text, start.end() - 1)
        text = text[: start.end()] + "..." + text[end:]
        start = _LONG_ATTR.search(text, start.end() + 3)
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


def _matching_angle(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "<":
            depth += 1
        elif text[i] == ">" and text[i - 1] != "-":
            depth -= 1
            if depth == 0:
                return i
    return len(text)
