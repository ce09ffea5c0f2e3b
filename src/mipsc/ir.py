"""Reading, verifying and writing MLIR text: the two ends of every mipsc pipeline."""

from __future__ import annotations

from io import StringIO

from xdsl.context import Context
from xdsl.dialect_interfaces.op_asm import OpAsmDialectInterface
from xdsl.dialects import get_all_dialects
from xdsl.dialects.builtin import (
    Builtin,
    FileLineColLoc,
    IntAttr,
    ModuleOp,
    StringAttr,
    UnknownLoc,
    UnregisteredOp,
)
from xdsl.ir import Dialect, Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError, VerifyException

from mipsc.diagnostics import MipscError, SourceFile, SourceLocation, location_of, register_source
from mipsc.dialects.iree import IREE_DIALECTS
from mipsc.dialects.mips import Mips
from mipsc.dialects.torch import Torch, TorchConversion, default_syntax_op_class
from mipsc.dialects.util import Util

_PROJECT_DIALECTS: tuple[Dialect, ...] = (Torch, TorchConversion, Util, Mips, *IREE_DIALECTS)


class MipsContext(Context):
    """A context that knows every torch op name, defined or not.

    Undefined `torch.*` / `torch_c.*` ops get a class that speaks torch-mlir's default syntax, so
    exports round-trip without a definition per aten op.
    """

    def get_optional_op(self, name: str, *, dialect_stack: tuple[str, ...] | list[str] = ()):  # type: ignore[override]  # noqa: ANN201
        if (op_type := self._get_known_op(name)) is not None:
            return op_type
        if name.startswith(("torch.", "torch_c.")):
            op_type = default_syntax_op_class(name)
            self._loaded_ops[name] = op_type
            return op_type
        op_type = super().get_optional_op(name, dialect_stack=dialect_stack)
        if op_type is not None and issubclass(op_type, UnregisteredOp):
            op_type = _unknown_op_class(name, op_type)
            self._loaded_ops[name] = op_type
        return op_type

    def clone(self) -> MipsContext:
        return MipsContext(
            self.allow_unregistered,
            self._loaded_dialects.copy(),
            self._loaded_ops.copy(),
            self._loaded_attrs.copy(),
            self._loaded_types.copy(),
            self._registered_dialects.copy(),
        )


def _unknown_op_class(name: str, base: type[Operation]) -> type[Operation]:
    """An unregistered op that is kept in generic form, and says so when written otherwise."""

    def parse(cls: type[Operation], parser: Parser) -> Operation:
        parser.raise_error(
            f"unknown operation '{name}': mipsc knows the torch, torch_c, util and mips "
            "dialects and MLIR's upstream ones; ops of any other dialect must be written in "
            'the generic form ("dialect.op"(...) : (...) -> ...)'
        )

    return type(base.__name__, (base,), {"parse": classmethod(parse)})


def make_context() -> MipsContext:
    """A context with xDSL's dialects, the project's, and a builtin dialect of its own.

    xDSL keeps `dense_resource` blobs in the builtin dialect object; the stock one is shared by
    the whole process, so a second parse would rename the blobs and lose their data. A private
    builtin dialect per context gives each module its own blob store.
    """
    ctx = MipsContext(allow_unregistered=True)
    ctx.load_dialect(
        Dialect(
            "builtin", list(Builtin.operations), list(Builtin.attributes), [OpAsmDialectInterface()]
        )
    )
    for dialect in _PROJECT_DIALECTS:
        ctx.load_dialect(dialect)
    for name, factory in get_all_dialects().items():
        if name not in ctx.registered_dialect_names:
            ctx.register_dialect(name, factory)
    return ctx


class _LocatingParser(Parser):
    """A parser that stamps each op without a `loc(...)` with its place in the source file."""

    def __init__(self, ctx: Context, source: SourceFile) -> None:
        super().__init__(ctx, source.text, source.name)
        self._source = source
        self._filename = StringAttr(source.name)

    def parse_operation(self) -> Operation:
        start = self._current_token.span.start
        op = super().parse_operation()
        if isinstance(op.location, UnknownLoc):
            line, col = self._source.line_col(start)
            op.location = FileLineColLoc(self._filename, IntAttr(line), IntAttr(col))
        return op


def parse_module(ctx: Context, text: str, filename: str = "<stdin>") -> ModuleOp:
    """Parse MLIR text into a module; a syntax error becomes a located `MipscError`."""
    source = SourceFile(filename, text)
    register_source(source)
    try:
        module = _LocatingParser(ctx, source).parse_module()
    except ParseError as err:
        line, col = source.line_col(err.span.start)
        raise MipscError(err.msg, SourceLocation(filename, line, col)) from None
    return module


def verify_module(module: ModuleOp) -> None:
    """Verify `module`; a failure names the op that does not verify and where it came from."""
    try:
        module.verify()
    except VerifyException as whole_module_error:
        for op in module.walk():
            try:
                op.verify(verify_nested_ops=False)
            except VerifyException as err:
                raise MipscError(f"'{op.name}' op {err}", location_of(op)) from None
        raise MipscError(str(whole_module_error)) from None


def print_module(ctx: Context, module: ModuleOp, *, debuginfo: bool = False) -> str:
    """MLIR text of `module` with its resource blobs; `debuginfo` adds each op's `loc(...)`."""
    out = StringIO()
    printer = Printer(stream=out, print_debuginfo=debuginfo)
    printer.print_op(module)
    printer.print_metadata(ctx.loaded_dialects)
    out.write("\n")
    return out.getvalue()


SPLIT_MARKER = "// -----"


def split_chunks(text: str) -> list[str]:
    """Split at `// -----` lines, padding each chunk with newlines so line numbers stay true."""
    chunks: list[str] = []
    lines_before = 0
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.strip() == SPLIT_MARKER:
            chunks.append("\n" * lines_before + "".join(current))
            lines_before += len(current) + 1
            current = []
        else:
            current.append(line)
    chunks.append("\n" * lines_before + "".join(current))
    return chunks
