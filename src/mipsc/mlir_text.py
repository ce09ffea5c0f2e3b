"""MLIR text in pieces: a module mipsc printed, then the resource section of its source as it was
written, never joined, sliced or (for a file) read into Python.

An export with inline weights is almost all `{-# dialect_resources: ... #-}` section (hex blobs
after the module). mipsc's passes never read it, so it is handed on as written: from a string,
by offset; from a file, copied file to file by the kernel (`os.copy_file_range`), so that the
weights are neither decoded nor re-encoded nor held in Python's memory.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

STREAM_BYTES = 1 << 20
"""A file's resource section of at least this many bytes is left on disk and copied file to file
(`read_mlir_file`); a smaller one is read with the module (copying it costs less than a file
round trip)."""


def resources_start(text: str | bytes | mmap.mmap) -> int:
    """Where the trailing `{-# dialect_resources: ... #-}` section starts; len(text) if none.

    Searched forward for a line starting with `{-#` (the section follows the module, so the
    search reads the module alone), then checked at both ends; index arithmetic and small
    windows only: a slice of the section is a copy of the weights.
    """
    marks = ("\n{-#", "#-}", "}", "dialect_resources")
    if not isinstance(text, str):
        marks = tuple(mark.encode() for mark in marks)  # type: ignore[assignment]
    newline_open, close, module_end, section = marks
    start = text.find(newline_open) + 1  # type: ignore[arg-type]
    if start <= 0 or not text[-64:].rstrip().endswith(close):  # type: ignore[arg-type]
        return len(text)
    if not text[max(0, start - 64) : start].rstrip().endswith(module_end):  # type: ignore[arg-type]
        return len(text)
    if text.find(section, start, start + 256) < 0:  # type: ignore[arg-type]
        return len(text)
    return start


LOC_ALIAS = re.compile(r"^(#loc\d*) = (loc\(.*\))[ \t]*\n?", re.M)
"""A location alias's definition as MLIR prints it after the module (`#loc3 = loc(...)`)."""


def map_locations(
    text: str,
    use: re.Pattern[str],
    place: Callable[[re.Match[str], Mapping[str, str]], str],
) -> str:
    """`text` with the definitions of its location aliases removed and each match of `use`
    (an op's or argument's ` loc(...)`) replaced by `place(match, aliases)`, `aliases` mapping
    each `#locN` to the `loc(...)` it stands for (xDSL reads no aliases). Only the module is
    read: the resource section after it (the weights) is kept as it is. (Not resources_start:
    MLIR prints the alias definitions between the module's `}` and the section.)"""
    cut = text.find("\n{-#") + 1 or len(text)
    body, rest = text[:cut], text[cut:]
    aliases = dict(LOC_ALIAS.findall(body))
    body = LOC_ALIAS.sub("", body)
    return use.sub(lambda match: place(match, aliases), body) + rest


@dataclass(frozen=True)
class FileSpan:
    """Bytes [start, end) of a file, copied to other files by the kernel without passing
    through Python (a file's resource section, see read_mlir_file)."""

    path: Path
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def copy_to(self, out: int) -> None:
        """Append the bytes to the open file descriptor `out` (at its position)."""
        with open(self.path, "rb") as source:
            offset = self.start
            try:
                while offset < self.end:
                    copied = os.copy_file_range(source.fileno(), out, self.end - offset, offset)
                    if copied == 0:  # the file shrank under us
                        raise OSError(f"{self.path} changed while it was read")
                    offset += copied
            except OSError as err:
                if offset != self.start or not _no_kernel_copy(err):
                    raise
                for chunk in self.chunks():  # e.g. `out` is a pipe or a terminal
                    os.write(out, chunk)

    def chunks(self, size: int = 8 * 2**20) -> Iterator[bytes]:
        """The bytes, read in pieces of at most `size`."""
        with open(self.path, "rb") as source:
            source.seek(self.start)
            left = len(self)
            while left > 0:
                chunk = source.read(min(size, left))
                if not chunk:
                    raise OSError(f"{self.path} changed while it was read")
                left -= len(chunk)
                yield chunk


def _no_kernel_copy(err: OSError) -> bool:
    """Whether copy_file_range failed only because the kernel cannot copy between these two
    (another file system on an old kernel, a pipe, no such system call)."""
    import errno

    return err.errno in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF)


@dataclass(frozen=True)
class MlirText:
    """MLIR text in two pieces, written out without joining them: `head` (a printed module),
    then `tail`: the resource section of the module's source, either in a string (from the
    offset `tail_from`) or in a file (a FileSpan). Joining or slicing them would copy the weights
    of an export with inline weights, which costs as much time and memory as reading them."""

    head: str
    tail: str | FileSpan = ""
    tail_from: int = 0

    def __len__(self) -> int:
        if isinstance(self.tail, FileSpan):
            return len(self.head) + len(self.tail)
        return len(self.head) + len(self.tail) - self.tail_from

    def chunks(self, size: int = 8 * 2**20) -> Iterator[str]:
        """The text in pieces of at most `size` characters of the tail (the head whole)."""
        yield self.head
        if isinstance(self.tail, FileSpan):
            for chunk in self.tail.chunks(size):
                yield chunk.decode("utf-8")  # (hex blobs: never split inside a character)
            return
        for at in range(self.tail_from, len(self.tail), size):
            yield self.tail[at : at + size]

    def __str__(self) -> str:
        return "".join(self.chunks()) if len(self) > len(self.head) else self.head

    def write_binary(self, file: BinaryIO) -> None:
        """Write the text as UTF-8 to a file opened in binary mode; a file's section is copied
        by the kernel."""
        file.write(self.head.encode("utf-8"))
        if isinstance(self.tail, FileSpan):
            file.flush()
            self.tail.copy_to(file.fileno())
            return
        for at in range(self.tail_from, len(self.tail), 8 * 2**20):
            file.write(self.tail[at : at + 8 * 2**20].encode("utf-8"))

    def write_file(self, path: Path) -> None:
        """Write the text to the file `path`, which may be the file the section is in (`-o` on
        the input: then the section is read before the file is truncated)."""
        text = self
        if isinstance(self.tail, FileSpan) and path.exists() and path.samefile(self.tail.path):
            text = MlirText(str(self))
        with path.open("wb") as file:
            text.write_binary(file)


def read_mlir_file(path: Path) -> str | MlirText:
    """The text of an MLIR file (newlines as Python's text mode reads them); one whose resource
    section has at least STREAM_BYTES comes back as an MlirText: the module, decoded, and the
    section left in the file.

    Raises what reading the file raises (OSError, UnicodeDecodeError of the module part).
    """
    head: bytes | None = None
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size >= STREAM_BYTES:  # (not a pipe or a terminal: those have no size)
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                start = resources_start(data)
                if size - start >= STREAM_BYTES:
                    head = data[:start]
    if head is None:
        return Path(path).read_text(encoding="utf-8")
    text = head.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    return MlirText(text, FileSpan(Path(path), len(head), size))
