"""Reading, verifying and writing MLIR text: the two ends of every mipsc pipeline."""

from __future__ import annotations

import math
import re
import struct
from io import StringIO

from xdsl.context import Context
from xdsl.dialect_interfaces.op_asm import OpAsmDialectInterface
from xdsl.dialects import get_all_dialects
from xdsl.dialects.builtin import (
    AnyFloat,
    BFloat16Type,
    Builtin,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    FileLineColLoc,
    Float16Type,
    Float32Type,
    Float64Type,
    IntAttr,
    LocationAttr,
    ModuleOp,
    StringAttr,
    UnknownLoc,
    UnregisteredOp,
)
from xdsl.ir import Attribute, Dialect, Operation
from xdsl.parser import AttrParser, Parser
from xdsl.parser.generic_parser import ParserState
from xdsl.printer import Printer
from xdsl.utils.exceptions import MultipleSpansParseError, ParseError, VerifyException
from xdsl.utils.lexer import Input
from xdsl.utils.mlir_lexer import MLIRLexer, MLIRTokenKind, StringLiteral

from mipsc.diagnostics import (
    MipscError,
    SourceFile,
    SourceLocation,
    file_position,
    location_of,
    record_parse_position,
    register_source,
)
from mipsc.dialects.iree import IREE_DIALECTS
from mipsc.dialects.mips import Mips
from mipsc.dialects.torch import Torch, TorchConversion, default_syntax_op_class
from mipsc.dialects.util import Util


class _LinearStringLexer(MLIRLexer):
    """xDSL's MLIR lexer, for mipsc's own parser only.

    xDSL 0.74 lexes a string literal with `"(?:[^"\\\n\v\f]+|escape)*"`: after a `"` that is
    never closed on its line, the nested repetition backtracks exponentially (one stray quote
    in a model hung mipsc for minutes). The "unrolled" form below matches the same strings,
    linearly. A subclass, so that other users of xDSL in the same process keep xDSL's lexer.
    """

    _unescaped_characters_regex = re.compile(
        r'"[^"\\\n\v\f]*(?:\\(?:["nt\\]|[0-9A-Fa-f]{2})[^"\\\n\v\f]*)*"'
    )


_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)

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


# --------------------------------------------------------------------------------------------
# Float bit patterns
#
# MLIR writes a float it cannot print exactly in decimal (NaN, ±inf, some payloads) as its bit
# pattern, `0xFF800000`, in dense literals too (`dense<0xFF800000> : tensor<f32>`: -inf, as
# exporters write attention masks). xDSL 0.74 reads such an element as the integer 4286578688,
# and writes NaN payloads of some types back changed. mipsc's parser and printer read and
# write them bit for bit.

_FLOAT_BITS_FORMAT: dict[type[AnyFloat], str] = {
    Float16Type: "<e",
    Float32Type: "<f",
    Float64Type: "<d",
}


def _float_width(ty: AnyFloat) -> int | None:
    """Bytes of a float type whose bits mipsc reads and writes exactly, else None."""
    if isinstance(ty, BFloat16Type):
        return 2
    return struct.calcsize(fmt) if (fmt := _FLOAT_BITS_FORMAT.get(type(ty))) else None


def float_from_bits(bits: int, ty: AnyFloat) -> float:
    """The value of the bit pattern `bits` of float type `ty` (bf16, f16, f32, f64)."""
    if isinstance(ty, BFloat16Type):
        return struct.unpack("<f", struct.pack("<I", bits << 16))[0]
    return struct.unpack(_FLOAT_BITS_FORMAT[type(ty)], bits.to_bytes(_float_width(ty), "little"))[0]  # type: ignore[arg-type]


def float_to_bits(value: float, ty: AnyFloat) -> int:
    """The bit pattern of `value` as float type `ty`; exact for a value read from such bits."""
    if isinstance(ty, BFloat16Type):
        return struct.unpack("<I", struct.pack("<f", value))[0] >> 16
    width = _float_width(ty)
    assert width is not None
    return int.from_bytes(struct.pack(_FLOAT_BITS_FORMAT[type(ty)], value), "little")


class _BitPatternElement(AttrParser._TensorLiteralElement):  # pyright: ignore[reportPrivateUsage]
    """A `0x...` element of a dense literal: of a float type, its bit pattern."""

    def to_type(self, parser: AttrParser, type: Attribute) -> object:
        if not isinstance(type, AnyFloat):
            return super().to_type(parser, type)  # type: ignore[arg-type]
        width = _float_width(type)
        if width is None:
            parser.raise_error(f"mipsc reads no bit patterns of {type}", at_position=self.span)
        assert isinstance(self.value, int)
        if self.is_negative or self.value >= 1 << (8 * width):
            parser.raise_error(
                f"hexadecimal float constant {self.span.text} does not fit {type}",
                at_position=self.span,
            )
        return float_from_bits(self.value, type)


def _with_bit_patterns(
    attr: DenseIntOrFPElementsAttr, literal_bits: list[int | None]
) -> DenseIntOrFPElementsAttr:
    """`attr` with each element written as a bit pattern stored as exactly those bits (xDSL
    stores the values, and quiets a bf16 signaling NaN on the way)."""
    element = attr.get_element_type()
    if not isinstance(element, AnyFloat) or all(bits is None for bits in literal_bits):
        return attr
    width = _float_width(element)
    assert width is not None  # _BitPatternElement rejected the others
    data = bytearray(attr.data.data)
    if len(literal_bits) == 1:  # a splat
        data = bytearray(literal_bits[0].to_bytes(width, "little") * len(attr))  # type: ignore[union-attr]
    else:
        for i, bits in enumerate(literal_bits):
            if bits is not None:
                data[i * width : (i + 1) * width] = bits.to_bytes(width, "little")
    return DenseIntOrFPElementsAttr(attr.type, BytesAttr(bytes(data)))


class _FloatBitsPrinter(Printer):
    """xDSL's printer, writing every NaN and inf as its exact bit pattern, as MLIR does."""

    def print_float(self, value: float, type: AnyFloat) -> None:
        width = _float_width(type)
        if math.isfinite(value) or width is None:
            super().print_float(value, type)
            return
        self.print_string(f"0x{float_to_bits(value, type):0{2 * width}X}")

    def print_attribute(self, attribute: Attribute) -> None:
        bits = _float_bits_to_print(attribute)
        if bits is None:
            super().print_attribute(attribute)
            return
        assert isinstance(attribute, DenseIntOrFPElementsAttr)
        element = attribute.get_element_type()
        assert isinstance(element, AnyFloat)
        self.print_string("dense<")
        if len(set(bits)) == 1:
            self._print_float_bits(bits[0], element)
        else:
            self._print_nested_bits(bits, list(attribute.get_shape()), element)
        self.print_string("> : ")
        self.print_attribute(attribute.get_type())

    def _print_float_bits(self, bits: int, element: AnyFloat) -> None:
        value = float_from_bits(bits, element)
        if math.isfinite(value):
            super().print_float(value, element)
        else:
            self.print_string(f"0x{bits:0{2 * _float_width(element)}X}")  # type: ignore[operator]

    def _print_nested_bits(self, bits: list[int], shape: list[int], element: AnyFloat) -> None:
        self.print_string("[")
        if len(shape) > 1:
            step = len(bits) // shape[0]
            chunks = [bits[i : i + step] for i in range(0, len(bits), step)]
            self.print_list(chunks, lambda c: self._print_nested_bits(c, shape[1:], element))
        else:
            self.print_list(bits, lambda b: self._print_float_bits(b, element))
        self.print_string("]")


def _float_bits_to_print(attribute: Attribute) -> list[int] | None:
    """The elements' bits of a dense float attribute that xDSL would not print exactly (one
    with a NaN or inf, of at most 100 elements or a splat: larger ones are printed as their
    raw bytes), else None."""
    if not isinstance(attribute, DenseIntOrFPElementsAttr):
        return None
    element = attribute.get_element_type()
    if not isinstance(element, AnyFloat) or (width := _float_width(element)) is None:
        return None
    data = attribute.data.data
    count = len(data) // width
    if count > 100:
        if data != data[:width] * count:
            return None
        data = data[:width]
    bits = [int.from_bytes(data[i : i + width], "little") for i in range(0, len(data), width)]
    if not bits:
        return None
    if all(math.isfinite(float_from_bits(b, element)) for b in bits):
        return None
    return bits


class _LocatingParser(Parser):
    """A parser that stamps each op without a `loc(...)` with its place in the source file."""

    def __init__(self, ctx: Context, source: SourceFile) -> None:
        super().__init__(ctx, "", source.name)
        # xDSL's Parser builds its own MLIRLexer; this one lexes strings in linear time.
        self._parser_state = ParserState(_LinearStringLexer(Input(source.text, source.name)))
        self._source = source
        self._filename = StringAttr(source.name)
        self._last_loc_written = False
        self._failed_op: int | None = None
        """Where the innermost op whose parsing raised starts."""
        self._literal_bits: list[int | None] = []
        """The bit patterns written in the dense literal being parsed, None for other elements."""
        self._in_location = 0
        """How many `loc(...)` the parser is inside."""

    def parse_optional_location(self) -> LocationAttr | None:
        # An op's own trailing `loc(...)` is the last location parsed before the op is done.
        location = super().parse_optional_location()
        self._last_loc_written = location is not None
        return location

    def _parse_location(self) -> LocationAttr:
        self._in_location += 1
        try:
            return super()._parse_location()
        finally:
            self._in_location -= 1

    def parse_optional_str_literal(self) -> str | None:
        # MLIR prints a name's non-ASCII bytes as escapes (`loc("\C3\A9")` for "é", as
        # iree-opt writes an ONNX input's name); xDSL lexes such a string as bytes and reads
        # no location from it. In a location, the bytes are the name's UTF-8.
        token = self._current_token
        if self._in_location and token.kind == MLIRTokenKind.BYTES_LIT:
            self._consume_token(MLIRTokenKind.BYTES_LIT)
            return StringLiteral.from_span(token.span).bytes_contents.decode(errors="replace")
        return super().parse_optional_str_literal()

    def parse_operation(self) -> Operation:
        start = self._current_token.span.start
        self._failed_op = None
        self._last_loc_written = False
        try:
            op = super().parse_operation()
        except Exception:
            if self._failed_op is None:  # the innermost op is the first to see it
                self._failed_op = start
            raise
        # A written `loc(unknown)` stays unknown, so printed modules read back the same; a
        # written location without a file position (`loc("fc1")`) is kept, and where the op
        # was found is recorded beside it.
        line, col = self._source.line_col(start)
        if isinstance(op.location, UnknownLoc) and not self._last_loc_written:
            op.location = FileLineColLoc(self._filename, IntAttr(line), IntAttr(col))
        elif file_position(op.location) is None:
            record_parse_position(op, SourceLocation(self._source.name, line, col))
        return op

    def _raw_scan_balanced(self, pos: int) -> int:
        # The body of an attribute of a dialect mipsc does not define (`#flow.parameter.named
        # <...>`) is kept as text. xDSL lets a string in it run past the end of its line, so
        # one stray quote swallows the following lines into the attribute (and every print
        # indents them again); MLIR strings end on their line, as here.
        end = super()._raw_scan_balanced(pos)
        body = self.lexer.input.content[pos:end]
        for string in _STRING_LITERAL.finditer(body):
            if "\n" in string[0]:
                self.raise_error("this string is not closed on its line", pos + string.start())
        return end

    def _parse_tensor_literal_element(self) -> AttrParser._TensorLiteralElement:
        element = super()._parse_tensor_literal_element()
        if isinstance(element.value, int) and "0x" in element.span.text.lower():
            element = _BitPatternElement(element.is_negative, element.value, element.span)
            self._literal_bits.append(element.value)
        else:
            self._literal_bits.append(None)
        return element

    def parse_dense_int_or_fp_elements_attr(  # type: ignore[override]
        self,
        type: Attribute | None,
    ) -> DenseIntOrFPElementsAttr:
        self._literal_bits = []
        attr = super().parse_dense_int_or_fp_elements_attr(type)  # type: ignore[arg-type]
        return _with_bit_patterns(attr, self._literal_bits)

    def failure_position(self) -> int:
        """Where to point for a failure that is not a ParseError: the innermost op being
        parsed (an op constructor or a custom parser rejected its parts), else the token."""
        return self._current_token.span.start if self._failed_op is None else self._failed_op


def parse_module(ctx: Context, text: str, filename: str = "<stdin>") -> ModuleOp:
    """Parse MLIR text into a module; every failure becomes a located `MipscError`.

    xDSL reports syntax errors as ParseError, but an op's parser or constructor may also
    reject what it was given with a VerifyException, ValueError, KeyError, ... (not ParseError):
    those are the user's input too, so they are reported at the op that failed.
    """
    if text.startswith("\ufeff"):  # a byte-order mark, as some editors write: a space keeps
        text = " " + text[1:]  # every column where the user sees it
    source = SourceFile(filename, text)
    register_source(source)
    parser: _LocatingParser | None = None

    def located(offset: int | None = None) -> SourceLocation:
        if offset is None:  # the op that was being parsed
            offset = parser.failure_position() if parser is not None else 0
        line, col = source.line_col(offset)
        return SourceLocation(filename, line, col)

    try:
        parser = _LocatingParser(ctx, source)  # lexes the first token: may fail already
        module = parser.parse_module()
    except ParseError as err:
        notes = []
        if isinstance(err, MultipleSpansParseError):
            notes = [f"{located(span.start)}: {msg}" for span, msg in err.refs if msg]
        raise MipscError(_parse_message(err, text), located(err.span.start), notes) from None
    except RecursionError:
        raise MipscError("the input nests too deeply", located()) from None
    except Exception as err:
        where = located()
        offset = parser.failure_position() if parser is not None else 0
        name = _OP_NAME.match(text, offset)
        what = f"this '{name['name']}' op" if name else "this op"
        raise MipscError(f"cannot parse {what}: {_plain_message(err)}", where) from None
    return module


# `%a, %b = "dialect.op"` or `dialect.op`: the name of the op that starts at an offset.
_OP_NAME = re.compile(r'(?:%[^\s,=]+\s*(?:,\s*%[^\s,=]+\s*)*=\s*)?"?(?P<name>[\w$.-]+)')


_COMMENTS = re.compile(r"//[^\n]*")


def _parse_message(err: ParseError, text: str) -> str:
    """xDSL's message, where it would puzzle: an input with nothing (more) in it, a character
    that does not show, a template xDSL forgot to fill in."""
    # Comments blanked out, so that offsets stay true.
    code = _COMMENTS.sub(lambda m: " " * len(m[0]), text)
    if err.msg == "Could not parse entire input!" and not code.strip():
        return "the input is empty: expected an MLIR module"
    at = min(err.span.start, len(text) - 1)
    message = err.msg.strip().replace("{first_char}", f"'{text[at]}'" if text else "")
    if message == "in block definition":  # what xDSL says when a region is never closed
        message = "expected an op or the '}' that closes the region"
    prefix = "Unexpected character: "
    if message.startswith(prefix) and not message[len(prefix) :].isprintable():
        return f"{prefix}U+{ord(message[len(prefix)]):04X}"
    last_line = code.rstrip().rfind("\n") + 1
    if err.span.start >= last_line and code.count("{") > code.count("}"):
        return f"the input ends in the middle of an op (cut short?): {message}"
    return message


def _plain_message(err: Exception) -> str:
    """An exception's own words, first line only (xDSL appends the whole module as notes)."""
    text = str(err).strip().splitlines()
    return text[0] if text and text[0] else type(err).__name__


def verify_module(module: ModuleOp) -> None:
    """Verify `module`; a failure names the op that does not verify and where it came from.

    xDSL's verifiers raise VerifyException, but an op's verifier may also stumble on a shape it
    did not expect (AssertionError, ValueError, ...); either way the op is invalid input.
    """
    try:
        module.verify()
    except Exception as whole_module_error:
        for op in module.walk():
            try:
                op.verify(verify_nested_ops=False)
            except Exception as err:
                message = str(err) if isinstance(err, VerifyException) else _plain_message(err)
                raise MipscError(f"'{op.name}' op {message}", location_of(op)) from None
        message = str(whole_module_error)
        if not isinstance(whole_module_error, VerifyException):
            message = _plain_message(whole_module_error)
        raise MipscError(message) from None


def print_module(
    ctx: Context, module: ModuleOp, *, debuginfo: bool = False, generic: bool = False
) -> str:
    """MLIR text of `module` with its resource blobs; `debuginfo` adds each op's `loc(...)`,
    `generic` prints every op in the generic form (`"dialect.op"(...) : (...) -> ...`)."""
    out = StringIO()
    printer = _FloatBitsPrinter(
        stream=out, print_debuginfo=debuginfo, print_generic_format=generic
    )
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
