"""The few IREE `flow` and `stream` ops (and `hal` / `iree_codegen` attributes) that the lowering
to kernel calls emits.

Only what `lower-mips-to-call` builds is defined, printed in IREE's own custom syntax so that the
module handed to iree-compile reads like hand-written IREE input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    IndexType,
    IntegerAttr,
    ShapedType,
    StringAttr,
    SymbolRefAttr,
)
from xdsl.ir import (
    Attribute,
    Block,
    Dialect,
    ParametrizedAttribute,
    Region,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    param_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    NoTerminator,
    Pure,
    SymbolOpInterface,
    SymbolTable,
)
from xdsl.utils.exceptions import VerifyException


def _dynamic_dim_count(ty: Attribute) -> int:
    if not isinstance(ty, ShapedType):
        return 0
    return sum(1 for d in ty.get_shape() if d == DYNAMIC_INDEX)


def _index_operand(parser: Parser) -> Callable[[], SSAValue]:
    """Parses one `%value` of type index (sizes, workloads)."""
    return lambda: parser.parse_operand(IndexType())


def _print_typed_with_dims(printer: Printer, ty: Attribute, dims: Sequence[SSAValue]) -> None:
    """`tensor<?x4xf32>{%m}`: a shaped type followed by the values of its dynamic dims."""
    printer.print_attribute(ty)
    if dims:
        printer.print_string("{")
        printer.print_list(dims, printer.print_operand)
        printer.print_string("}")


# --------------------------------------------------------------------------------------------
# stream
# --------------------------------------------------------------------------------------------


@irdl_attr_definition
class BindingType(ParametrizedAttribute, TypeAttribute):
    """`!stream.binding`: a buffer handed to a dispatch entry point."""

    name = "stream.binding"


@irdl_op_definition
class ExecutableOp(IRDLOperation):
    """`stream.executable private @name { export...; builtin.module {...} }`."""

    name = "stream.executable"

    sym_name = prop_def(StringAttr)
    sym_visibility = opt_prop_def(StringAttr)
    body = region_def("single_block")

    traits = traits_def(SymbolOpInterface(), SymbolTable(), IsolatedFromAbove(), NoTerminator())

    def __init__(self, sym_name: str, ops: Sequence[IRDLOperation | object]) -> None:
        super().__init__(
            properties={"sym_name": StringAttr(sym_name), "sym_visibility": StringAttr("private")},
            regions=[Region(Block(ops))],  # type: ignore[arg-type]
        )

    def print(self, printer: Printer) -> None:
        if self.sym_visibility is not None:
            printer.print_string(f" {self.sym_visibility.data}")
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        # With the keyword, as IREE writes it: a bare `{` would be read as the body.
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    @classmethod
    def parse(cls, parser: Parser) -> ExecutableOp:
        visibility = parser.parse_optional_keyword_in(("public", "private", "nested"))
        sym_name = parser.parse_symbol_name()
        attributes = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region()
        properties: dict[str, Attribute] = {"sym_name": sym_name}
        if visibility is not None:
            properties["sym_visibility"] = StringAttr(visibility)
        return cls.create(
            properties=properties,
            attributes=attributes.data if attributes is not None else {},
            regions=[body],
        )


@irdl_op_definition
class ExecutableExportOp(IRDLOperation):
    """`stream.executable.export public @f workgroups(%w: index, ...) -> (index, index, index)`.

    The region runs on the host: from the workload it computes the workgroup grid.
    """

    name = "stream.executable.export"

    sym_name = prop_def(StringAttr)
    sym_visibility = opt_prop_def(StringAttr)
    function_ref = prop_def(SymbolRefAttr)
    workgroup_count = region_def("single_block")

    traits = traits_def(SymbolOpInterface(), HasParent(ExecutableOp), IsolatedFromAbove())

    def __init__(self, sym_name: str, workgroup_count: Region) -> None:
        super().__init__(
            properties={
                "sym_name": StringAttr(sym_name),
                "sym_visibility": StringAttr("public"),
                "function_ref": SymbolRefAttr(sym_name),
            },
            regions=[workgroup_count],
        )

    def verify_(self) -> None:
        if self.function_ref.root_reference != self.sym_name:
            raise VerifyException("mipsc only emits exports named like their function")

    def print(self, printer: Printer) -> None:
        if self.sym_visibility is not None:
            printer.print_string(f" {self.sym_visibility.data}")
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string(" workgroups(")
        block = self.workgroup_count.block
        printer.print_list(block.args, printer.print_block_argument)
        printer.print_string(") -> (index, index, index) ")
        printer.print_region(self.workgroup_count, print_entry_block_args=False)
        printer.print_op_attributes(self.attributes, print_keyword=True)

    @classmethod
    def parse(cls, parser: Parser) -> ExecutableExportOp:
        visibility = parser.parse_optional_keyword_in(("public", "private", "nested"))
        sym_name = parser.parse_symbol_name()
        parser.parse_keyword("workgroups")

        def argument() -> Parser.Argument:
            arg = parser.parse_argument()
            arg.location = parser.parse_optional_location()  # printed with --print-debuginfo
            return arg

        args = parser.parse_comma_separated_list(parser.Delimiter.PAREN, argument)
        parser.parse_punctuation("->")
        parser.parse_comma_separated_list(parser.Delimiter.PAREN, parser.parse_type)
        region = parser.parse_region(args)
        op = cls(sym_name.data, region)
        if (attributes := parser.parse_optional_attr_dict_with_keyword()) is not None:
            op.attributes.update(attributes.data)
        if visibility is not None:
            op.sym_visibility = StringAttr(visibility)
        return op


@irdl_op_definition
class ReturnOp(IRDLOperation):
    """`stream.return %x, %y, %z : index, index, index`: the grid of a workgroup count region."""

    name = "stream.return"

    operands_ = var_operand_def()

    traits = traits_def(IsTerminator(), HasParent(ExecutableExportOp))

    assembly_format = "attr-dict ($operands_^ `:` type($operands_))?"

    def __init__(self, *values: SSAValue) -> None:
        super().__init__(operands=[values])


@irdl_op_definition
class ExecutableEndOp(IRDLOperation):
    name = "stream.executable.end"

    traits = traits_def(IsTerminator(), HasParent(ExecutableOp))

    assembly_format = "attr-dict"


@irdl_op_definition
class BindingSubspanOp(IRDLOperation):
    """`%m = stream.binding.subspan %b[%off] : !stream.binding -> memref<?x4xf32, ...>{%d}`."""

    name = "stream.binding.subspan"

    binding = operand_def(BindingType)
    byte_offset = operand_def(IndexType)
    dynamic_dims = var_operand_def(IndexType)
    result = result_def()

    def __init__(
        self,
        binding: SSAValue,
        byte_offset: SSAValue,
        result_type: Attribute,
        dynamic_dims: Sequence[SSAValue] = (),
    ) -> None:
        super().__init__(operands=[binding, byte_offset, dynamic_dims], result_types=[result_type])

    def verify_(self) -> None:
        if len(self.dynamic_dims) != _dynamic_dim_count(self.result.type):
            raise VerifyException(
                f"{self.result.type} needs {_dynamic_dim_count(self.result.type)} dynamic dims, "
                f"got {len(self.dynamic_dims)}"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.binding)
        printer.print_string("[")
        printer.print_operand(self.byte_offset)
        printer.print_string("]")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : !stream.binding -> ")
        _print_typed_with_dims(printer, self.result.type, self.dynamic_dims)

    @classmethod
    def parse(cls, parser: Parser) -> BindingSubspanOp:
        binding = parser.parse_operand(BindingType())
        parser.parse_punctuation("[")
        offset = parser.parse_operand(IndexType())
        parser.parse_punctuation("]")
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        parser.parse_type()
        parser.parse_punctuation("->")
        result_type = parser.parse_type()
        dims: list[SSAValue] = []
        if parser.parse_optional_punctuation("{") is not None:
            dims = parser.parse_comma_separated_list(parser.Delimiter.NONE, _index_operand(parser))
            parser.parse_punctuation("}")
        op = cls(binding, offset, result_type, dims)
        op.attributes.update(attributes)
        return op


class _WorkgroupGridQuery(IRDLOperation):
    """`%x = stream.dispatch.workgroup.<what>[d] : index`: one dimension of the grid."""

    dimension = prop_def(IntegerAttr)
    result = result_def(IndexType)

    traits = traits_def(Pure())

    def __init__(self, dimension: int) -> None:
        super().__init__(
            properties={"dimension": IntegerAttr(dimension, IndexType())},
            result_types=[IndexType()],
        )

    def print(self, printer: Printer) -> None:
        printer.print_string(f"[{self.dimension.value.data}]")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : index")

    @classmethod
    def parse(cls, parser: Parser) -> _WorkgroupGridQuery:
        parser.parse_punctuation("[")
        dimension = parser.parse_integer(allow_boolean=False)
        parser.parse_punctuation("]")
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        parser.parse_type()
        op = cls(dimension)
        op.attributes.update(attributes)
        return op


@irdl_op_definition
class DispatchWorkgroupIdOp(_WorkgroupGridQuery):
    """`%x = stream.dispatch.workgroup.id[0] : index`: this workgroup's place in the grid."""

    name = "stream.dispatch.workgroup.id"


@irdl_op_definition
class DispatchWorkgroupCountOp(_WorkgroupGridQuery):
    """`%x = stream.dispatch.workgroup.count[0] : index`: the grid's size in one dimension."""

    name = "stream.dispatch.workgroup.count"


# --------------------------------------------------------------------------------------------
# flow
# --------------------------------------------------------------------------------------------


@irdl_op_definition
class DispatchOp(IRDLOperation):
    """`flow.dispatch @exe::@entry[workload](args) : (arg types{dims}) -> result{dims}`.

    A result may be tied to an argument (DPS: it reuses that argument's buffer), printed as
    `-> %arg{dims}`.
    """

    name = "flow.dispatch"

    workload = var_operand_def(IndexType)
    arguments = var_operand_def()
    argument_dims = var_operand_def(IndexType)
    result_dims = var_operand_def(IndexType)
    results_ = var_result_def()

    entry_points = prop_def(ArrayAttr[SymbolRefAttr])
    tied_operands = opt_prop_def(ArrayAttr[IntegerAttr])

    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(
        self,
        entry_point: SymbolRefAttr,
        workload: Sequence[SSAValue],
        arguments: Sequence[SSAValue],
        argument_dims: Sequence[SSAValue],
        result_types: Sequence[Attribute],
        result_dims: Sequence[SSAValue],
        tied_operands: Sequence[int | None] | None = None,
    ) -> None:
        properties: dict[str, Attribute] = {"entry_points": ArrayAttr([entry_point])}
        if tied_operands is not None:
            properties["tied_operands"] = ArrayAttr(
                IntegerAttr(-1 if t is None else t, IndexType()) for t in tied_operands
            )
        super().__init__(
            operands=[workload, arguments, argument_dims, result_dims],
            result_types=[result_types],
            properties=properties,
        )

    def tied_argument(self, result_index: int) -> int | None:
        if self.tied_operands is None:
            return None
        index = self.tied_operands.data[result_index].value.data
        return None if index < 0 else index

    def verify_(self) -> None:
        expected = sum(_dynamic_dim_count(a.type) for a in self.arguments)
        if len(self.argument_dims) != expected:
            raise VerifyException(
                f"expected {expected} argument dims, got {len(self.argument_dims)}"
            )
        expected = sum(_dynamic_dim_count(r.type) for r in self.results)
        if len(self.result_dims) != expected:
            raise VerifyException(f"expected {expected} result dims, got {len(self.result_dims)}")
        if self.tied_operands is not None and len(self.tied_operands) != len(self.results):
            raise VerifyException("tied_operands needs one entry per result")
        for i, result in enumerate(self.results):
            if (tied := self.tied_argument(i)) is not None and (
                tied >= len(self.arguments) or self.arguments[tied].type != result.type
            ):
                raise VerifyException(f"result {i} is tied to argument {tied} of another type")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.entry_points.data[0])
        printer.print_string("[")
        printer.print_list(self.workload, printer.print_operand)
        printer.print_string("](")
        printer.print_list(self.arguments, printer.print_operand)
        printer.print_string(")")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : (")
        dims = list(self.argument_dims)
        for i, arg in enumerate(self.arguments):
            if i:
                printer.print_string(", ")
            count = _dynamic_dim_count(arg.type)
            _print_typed_with_dims(printer, arg.type, dims[:count])
            dims = dims[count:]
        printer.print_string(") -> ")
        dims = list(self.result_dims)
        parts: list[tuple[Attribute | SSAValue, list[SSAValue]]] = []
        for i, result in enumerate(self.results):
            count = _dynamic_dim_count(result.type)
            tied = self.tied_argument(i)
            parts.append((result.type if tied is None else self.arguments[tied], dims[:count]))
            dims = dims[count:]
        if len(parts) != 1:
            printer.print_string("(")
        for i, (what, what_dims) in enumerate(parts):
            if i:
                printer.print_string(", ")
            if isinstance(what, SSAValue):
                printer.print_operand(what)
                if what_dims:
                    printer.print_string("{")
                    printer.print_list(what_dims, printer.print_operand)
                    printer.print_string("}")
            else:
                _print_typed_with_dims(printer, what, what_dims)
        if len(parts) != 1:
            printer.print_string(")")

    @classmethod
    def parse(cls, parser: Parser) -> DispatchOp:
        """The syntax `print` writes, so that `--emit=iree-input` output reads back."""
        pos = parser.pos
        entry = parser.parse_attribute()
        if not isinstance(entry, SymbolRefAttr):
            parser.raise_error("flow.dispatch expects an entry point like @executable::@entry")
        workload = parser.parse_comma_separated_list(
            parser.Delimiter.SQUARE, _index_operand(parser)
        )
        unresolved = parser.parse_comma_separated_list(
            parser.Delimiter.PAREN, parser.parse_unresolved_operand
        )
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        typed_args = parser.parse_comma_separated_list(
            parser.Delimiter.PAREN, lambda: _parse_typed_with_dims(parser)
        )
        if len(typed_args) != len(unresolved):
            parser.raise_error(
                f"flow.dispatch has {len(unresolved)} arguments and {len(typed_args)} types"
            )
        arguments = parser.resolve_operands(unresolved, [t for t, _ in typed_args], pos)
        parser.parse_punctuation("->")
        results = _parse_dispatch_results(parser, unresolved, [t for t, _ in typed_args])
        tied = [t for _, _, t in results]
        op = cls(
            entry,
            workload,
            arguments,
            [d for _, dims in typed_args for d in dims],
            [ty for ty, _, _ in results],
            [d for _, dims, _ in results for d in dims],
            tied if any(t is not None for t in tied) else None,
        )
        op.attributes.update(attributes)
        return op


def _parse_dims_of(parser: Parser, ty: Attribute) -> list[SSAValue]:
    """`{%d0, ...}`: the values of the dynamic dims of `ty` (none: nothing written)."""
    dims: list[SSAValue] = []
    if parser.parse_optional_punctuation("{") is not None:
        dims = parser.parse_comma_separated_list(parser.Delimiter.NONE, _index_operand(parser))
        parser.parse_punctuation("}")
    if len(dims) != _dynamic_dim_count(ty):
        parser.raise_error(f"{ty} needs {_dynamic_dim_count(ty)} dynamic dims")
    return dims


def _parse_typed_with_dims(parser: Parser) -> tuple[Attribute, list[SSAValue]]:
    """`tensor<?x4xf32>{%m}`."""
    ty = parser.parse_type()
    return ty, _parse_dims_of(parser, ty)


_DispatchResult = tuple[Attribute, list[SSAValue], int | None]


def _parse_dispatch_results(
    parser: Parser, arguments: Sequence[Parser.UnresolvedOperand], types: Sequence[Attribute]
) -> list[_DispatchResult]:
    """`T{dims}` or `%arg{dims}` (a result tied to, reusing, that argument), one or several
    in parentheses: (type, dims, tied argument index or None) each."""
    names = [(u.operand_name, u.index) for u in arguments]

    def result() -> _DispatchResult:
        if (tied := parser.parse_optional_unresolved_operand()) is None:
            return (*_parse_typed_with_dims(parser), None)
        key = (tied.operand_name, tied.index)
        if key not in names:
            parser.raise_error("a tied result must name one of the dispatch arguments")
        index = names.index(key)
        return types[index], _parse_dims_of(parser, types[index]), index

    if parser.parse_optional_punctuation("(") is None:
        return [result()]
    results: list[_DispatchResult] = []
    if parser.parse_optional_punctuation(")") is None:
        results = parser.parse_comma_separated_list(parser.Delimiter.NONE, result)
        parser.parse_punctuation(")")
    return results


# --------------------------------------------------------------------------------------------
# hal / iree_codegen attributes: objects linked into an executable, workgroup-local memory
# --------------------------------------------------------------------------------------------


@irdl_attr_definition
class ExecutableTargetAttr(ParametrizedAttribute):
    """`#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64">`: a backend and format, no
    configuration (it then matches every variant of that format, whatever its target CPU)."""

    name = "hal.executable.target"

    backend: StringAttr = param_def()
    format: StringAttr = param_def()

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string("<")
        printer.print_string_literal(self.backend.data)
        printer.print_string(", ")
        printer.print_string_literal(self.format.data)
        printer.print_string(">")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[StringAttr, StringAttr]:
        parser.parse_punctuation("<")
        backend = parser.parse_str_literal()
        parser.parse_punctuation(",")
        fmt = parser.parse_str_literal()
        parser.parse_punctuation(">")
        return StringAttr(backend), StringAttr(fmt)


@irdl_attr_definition
class ExecutableObjectAttr(ParametrizedAttribute):
    """`#hal.executable.object<{path = "/abs/k.o"}>`: a file the executable's linker takes in.
    Only `path`: IREE 3.13 does not write inline `data` of a `.o` out for its linker."""

    name = "hal.executable.object"

    path: StringAttr = param_def()

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string("<{path = ")
        printer.print_string_literal(self.path.data)
        printer.print_string("}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[StringAttr]:
        parser.parse_punctuation("<")
        parser.parse_punctuation("{")
        parser.parse_keyword("path")
        parser.parse_punctuation("=")
        path = parser.parse_str_literal()
        parser.parse_punctuation("}")
        parser.parse_punctuation(">")
        return (StringAttr(path),)


@irdl_attr_definition
class ExecutableObjectsAttr(ParametrizedAttribute):
    """`#hal.executable.objects<{#hal.executable.target<...> = [#hal.executable.object<...>]}>`:
    per target, the objects linked into that variant (on `stream.executable`, under the key
    `hal.executable.objects`)."""

    name = "hal.executable.objects"

    targets: ArrayAttr[ExecutableTargetAttr] = param_def()
    objects: ArrayAttr[ArrayAttr[ExecutableObjectAttr]] = param_def()

    def print_parameters(self, printer: Printer) -> None:
        def entry(pair: tuple[ExecutableTargetAttr, ArrayAttr[ExecutableObjectAttr]]) -> None:
            printer.print_attribute(pair[0])
            printer.print_string(" = ")
            printer.print_attribute(pair[1])

        printer.print_string("<{")
        printer.print_list(zip(self.targets.data, self.objects.data, strict=True), entry)
        printer.print_string("}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[ArrayAttr, ArrayAttr]:
        def entry() -> tuple[Attribute, Attribute]:
            target = parser.parse_attribute()
            parser.parse_punctuation("=")
            return target, parser.parse_attribute()

        parser.parse_punctuation("<")
        pairs = parser.parse_comma_separated_list(parser.Delimiter.BRACES, entry)
        parser.parse_punctuation(">")
        return ArrayAttr(t for t, _ in pairs), ArrayAttr(o for _, o in pairs)


@irdl_attr_definition
class WorkgroupLocalAttr(ParametrizedAttribute):
    """`#iree_codegen.workgroup_local`: the memory space of a `memref.alloc` that IREE places in
    the worker's local memory (no heap call)."""

    name = "iree_codegen.workgroup_local"


Hal = Dialect("hal", [], [ExecutableTargetAttr, ExecutableObjectAttr, ExecutableObjectsAttr])
IreeCodegen = Dialect("iree_codegen", [], [WorkgroupLocalAttr])

Flow = Dialect("flow", [DispatchOp], [])
Stream = Dialect(
    "stream",
    [
        ExecutableOp,
        ExecutableExportOp,
        ExecutableEndOp,
        ReturnOp,
        BindingSubspanOp,
        DispatchWorkgroupIdOp,
        DispatchWorkgroupCountOp,
    ],
    [BindingType],
)

IREE_DIALECTS: tuple[Dialect, ...] = (Flow, Stream, Hal, IreeCodegen)
