"""One error type for every failure a user can cause, carrying where in their file it happened."""

from __future__ import annotations

import bisect
import json
import weakref
from dataclasses import dataclass, field

from xdsl.dialects.builtin import (
    ArrayAttr,
    CallSiteLoc,
    FileLineColLoc,
    FusedLoc,
    NameLoc,
    StringAttr,
)
from xdsl.ir import Attribute, BlockArgument, Operation


@dataclass
class SourceFile:
    """The text of an input file, kept to turn offsets into lines and to quote them."""

    name: str
    text: str
    _line_starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # str.find scans in C: a per-character Python loop took seconds on exports with
        # inline weights (90 MB in a few thousand lines).
        starts = [0]
        find = self.text.find
        at = find("\n")
        while at != -1:
            starts.append(at + 1)
            at = find("\n", at + 1)
        self._line_starts = starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def line_text(self, line: int) -> str | None:
        if not 1 <= line <= len(self._line_starts):
            return None
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end != -1 else len(self.text)]


@dataclass(frozen=True)
class SourceLocation:
    """A line and column of a file; line 0 is a place with no line of the user's, named by
    `file` (an op of a built-in torch.nn module: `in torch.nn.Linear (built-in)`)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        if self.line == 0:
            return f"in {self.file}"
        return f"{self.file}:{self.line}:{self.column}"


# Sources read in this process, by name, so a location on an op can quote its line.
_SOURCES: dict[str, SourceFile] = {}


def register_source(source: SourceFile) -> None:
    _SOURCES[source.name] = source


_PARSED_AT: weakref.WeakKeyDictionary[Operation, SourceLocation] = weakref.WeakKeyDictionary()
"""Where the parser found each op whose written `loc(...)` names no file position (a
`loc("fc1")`), so that its errors and remarks still point into the file."""


def record_parse_position(op: Operation, where: SourceLocation) -> None:
    _PARSED_AT[op] = where


def location_of(op: Operation) -> SourceLocation | None:
    """The source location of `op`: the file position inside its location (seeing through
    name, call-site and fused locations), else where it was parsed, else its closest
    ancestor's."""
    current: Operation | None = op
    while current is not None:
        if (found := file_position(current.location)) is not None:
            return found
        if (parsed := _PARSED_AT.get(current)) is not None:
            return parsed
        current = current.parent_op()
    return None


def file_position(loc: Attribute) -> SourceLocation | None:
    """The file position a location holds: `loc("f":1:2)`, inside `loc("name"(...))`, the
    callee of `loc(callsite(callee at caller))`, the first of `loc(fused[...])`."""
    if isinstance(loc, FileLineColLoc) and isinstance(loc.filename, StringAttr):
        return SourceLocation(loc.filename.data, loc.line.data, loc.column.data)
    if isinstance(loc, NameLoc):
        return file_position(loc.location)
    if isinstance(loc, CallSiteLoc):
        return file_position(loc.callee) or file_position(loc.caller)
    if isinstance(loc, FusedLoc) and isinstance(loc.locations, ArrayAttr):
        return next(filter(None, map(file_position, loc.locations.data)), None)
    return None


class MipscError(Exception):
    """A failure the user can act on: printed as `file:line:col: error: message`, no traceback."""

    def __init__(
        self, message: str, location: SourceLocation | None = None, notes: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.notes = notes or []

    def __str__(self) -> str:
        """The message and its notes (what caused it: in Python, `str(err)` is what a
        traceback shows)."""
        return "\n".join([self.message, *(f"note: {note}" for note in self.notes)])

    def render(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        lines = [f"{prefix}error: {self.message}"]
        if self.location and (source := _SOURCES.get(self.location.file)) is not None:
            if (text := source.line_text(self.location.line)) is not None:
                lines += _quoted_line(text, self.location.column)
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def input_name(index: int, name: str | None = None) -> str:
    """How messages name the input at position `index` (from 0): `input 2 (%arg1)`, counted
    from 1 as a user counts, with the argument's name in the MLIR (issue 14 part 4); with the
    model's own `name` for it (an ONNX graph input), `input 2 ("attention_mask", %arg1)`."""
    if name:
        return f'input {index + 1} ("{name}", %arg{index})'
    return f"input {index + 1} (%arg{index})"


DIM_CHECK_MESSAGE = "dynamic dims exported as one size differ at run time"
"""How the message of each entry check of check-input-dims starts (`...: dim 0 of %arg1 must
equal dim 0 of %arg0`); the runtime recognizes it and names the inputs and their sizes."""


INPUT_NAMES_KEY = "mipsc.input_names"
"""The `iree.reflection` entry of a compiled function that holds its inputs' own names (a JSON
list, null for an input without one: ONNX graph inputs), which IREE keeps in the .vmfb
(`VmFunction.reflection` at run time; mipsc.pipeline.record_input_names writes it)."""


UNSIGNED_OUTPUTS_KEY = "mipsc.unsigned_outputs"
"""The `iree.reflection` entry of a compiled function that lists its unsigned results (a JSON
list of numpy dtype names, null for the others: `["uint8", null]`): IREE's torch lowering makes
`ui8` a signless `i8`, which its runtime returns as int8 (200 read as -56)."""


def _reflection_strings(reflection: dict[str, str], key: str) -> list[str | None]:
    """The JSON list of strings (null where there is none) that `key` of a function's
    reflection holds; [] when it is absent or not such a list (a .vmfb of an older mipsc)."""
    try:
        items = json.loads(reflection.get(key, "[]"))
    except ValueError:
        return []
    return [i if isinstance(i, str) else None for i in items] if isinstance(items, list) else []


def unsigned_outputs(reflection: dict[str, str]) -> list[str | None]:
    """The numpy dtype UNSIGNED_OUTPUTS_KEY gives each result ([] if none)."""
    return _reflection_strings(reflection, UNSIGNED_OUTPUTS_KEY)


def input_names(reflection: dict[str, str]) -> list[str | None]:
    """The names INPUT_NAMES_KEY of a function's reflection gives its inputs ([] if none), for
    input_name: `input_name(i, names[i] if i < len(names) else None)`."""
    return _reflection_strings(reflection, INPUT_NAMES_KEY)


INPUT_SHAPES_KEY = "mipsc.input_shapes"
"""The `iree.reflection` entry of a compiled function that holds its tensor inputs' declared
shapes as IREE's messages write them (a JSON list: `"?x6"` for a dynamic dim 0, `""` for a
0-d tensor, null for an input that is not a tensor); mipsc.pipeline.record_input_names writes
it. IREE's own message for a wrong shape gives dynamic dims as read from the wrong input."""


def input_shapes(reflection: dict[str, str]) -> list[str | None]:
    """The shapes INPUT_SHAPES_KEY of a function's reflection gives its inputs ([] if none)."""
    return _reflection_strings(reflection, INPUT_SHAPES_KEY)


def argument_location_name(argument: BlockArgument) -> str | None:
    """The name a function argument's location gives it (`%arg1: ... loc("attention_mask")`,
    as ONNX imports are written), or None."""
    loc = getattr(argument, "location", None)
    return loc.desc.data if isinstance(loc, NameLoc) else None


def argument_name(argument: BlockArgument) -> str:
    """input_name of a function argument, with the name its location gives it
    (`%arg1: ... loc("attention_mask")`, as ONNX imports are written), if any."""
    return input_name(argument.index, argument_location_name(argument))


QUOTE_WIDTH = 400
"""The most characters of a source line an error quotes (a line of inline weights is
megabytes long): a window around the column, cut ends marked with `...`. An op's line in an
export is rarely longer than ~300 characters, and is quoted whole."""


def _quoted_line(text: str, column: int) -> list[str]:
    """The source line (or the window of it around `column`) and the caret under the column."""
    if len(text) <= QUOTE_WIDTH:
        return [text, " " * (column - 1) + "^"]
    start = max(0, min(column - 1 - QUOTE_WIDTH // 2, len(text) - QUOTE_WIDTH))
    window = text[start : start + QUOTE_WIDTH]
    head = "..." if start > 0 else ""
    tail = "..." if start + QUOTE_WIDTH < len(text) else ""
    return [head + window + tail, " " * (len(head) + column - 1 - start) + "^"]
