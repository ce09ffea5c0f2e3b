"""The ops of IREE's `util` dialect that mipsc reads and writes: globals holding the weights (as
PyTorch exports them), and the initializers that pack them once, when the module loads."""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr, SymbolRefAttr, TypedAttribute, UnitAttr
from xdsl.ir import Attribute, Block, Dialect, Region, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import HasParent, IsTerminator, SymbolOpInterface
from xdsl.utils.exceptions import VerifyException

_VISIBILITIES = ("public", "private", "nested")


@irdl_op_definition
class GlobalOp(IRDLOperation):
    """`util.global private [mutable] @name [{attrs}] (: type | = initial_value [: type])`."""

    name = "util.global"

    sym_name = prop_def(StringAttr)
    sym_visibility = opt_prop_def(StringAttr)
    type = prop_def(TypeAttribute)
    is_mutable = opt_prop_def(UnitAttr)
    initial_value = opt_prop_def(Attribute)

    traits = traits_def(SymbolOpInterface())

    @classmethod
    def parse(cls, parser: Parser) -> GlobalOp:
        properties: dict[str, Attribute] = {}
        if (visibility := parser.parse_optional_keyword_in(_VISIBILITIES)) is not None:
            properties["sym_visibility"] = StringAttr(visibility)
        if parser.parse_optional_keyword("mutable") is not None:
            properties["is_mutable"] = UnitAttr()
        properties["sym_name"] = parser.parse_symbol_name()
        attributes = parser.parse_optional_attr_dict()
        if parser.parse_optional_punctuation("=") is not None:
            initial_value = parser.parse_attribute()
            properties["initial_value"] = initial_value
            if parser.parse_optional_punctuation(":") is not None:
                properties["type"] = parser.parse_type()
            elif isinstance(initial_value, TypedAttribute):
                properties["type"] = initial_value.get_type()
            else:
                parser.raise_error("util.global initial value needs a type")
        else:
            parser.parse_punctuation(":")
            properties["type"] = parser.parse_type()
        return cls.create(properties=properties, attributes=attributes)

    def print(self, printer: Printer) -> None:
        if self.sym_visibility is not None:
            printer.print_string(f" {self.sym_visibility.data}")
        if self.is_mutable is not None:
            printer.print_string(" mutable")
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_op_attributes(self.attributes)
        value = self.initial_value
        if value is None:
            printer.print_string(" : ")
            printer.print_attribute(self.type)
            return
        printer.print_string(" = ")
        printer.print_attribute(value)
        if not (isinstance(value, TypedAttribute) and value.get_type() == self.type):
            printer.print_string(" : ")
            printer.print_attribute(self.type)


@irdl_op_definition
class GlobalLoadOp(IRDLOperation):
    """`%v = util.global.load [immutable] @name : type`."""

    name = "util.global.load"

    global_ = prop_def(SymbolRefAttr, prop_name="global")
    is_immutable = opt_prop_def(UnitAttr)
    result = result_def()

    assembly_format = "(`immutable` $is_immutable^)? $global attr-dict `:` type($result)"


@irdl_op_definition
class GlobalStoreOp(IRDLOperation):
    """`util.global.store %v, @name : type`."""

    name = "util.global.store"

    value = operand_def()
    global_ = prop_def(SymbolRefAttr, prop_name="global")

    assembly_format = "$value `,` $global attr-dict `:` type($value)"


@irdl_op_definition
class InitializerOp(IRDLOperation):
    """`util.initializer { ... util.return }`: runs once, when the module is loaded (in module
    order with the globals' initial values), e.g. to store a global computed from others."""

    name = "util.initializer"

    body = region_def("single_block")

    def __init__(self, body: Block) -> None:
        super().__init__(regions=[Region(body)])

    def print(self, printer: Printer) -> None:
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    @classmethod
    def parse(cls, parser: Parser) -> InitializerOp:
        attributes = parser.parse_optional_attr_dict_with_keyword()
        op = cls.create(regions=[parser.parse_region()])
        if attributes is not None:
            op.attributes.update(attributes.data)
        return op


@irdl_op_definition
class ReturnOp(IRDLOperation):
    """`util.return`: the end of an initializer."""

    name = "util.return"

    operands_ = var_operand_def()

    traits = traits_def(IsTerminator(), HasParent(InitializerOp))

    assembly_format = "attr-dict ($operands_^ `:` type($operands_))?"


@irdl_op_definition
class OptimizationBarrierOp(IRDLOperation):
    """`%y = util.optimization_barrier %x : type`: %y is %x, but no transformation may look
    through it. Keeps IREE's const-eval from running a kernel call on a constant at compile time
    (no kernel plugin is loaded there)."""

    name = "util.optimization_barrier"

    operand = operand_def()
    result = result_def()

    def __init__(self, value: SSAValue) -> None:
        super().__init__(operands=[value], result_types=[value.type])

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.operand)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.operand.type)

    @classmethod
    def parse(cls, parser: Parser) -> OptimizationBarrierOp:
        unresolved = parser.parse_unresolved_operand()
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        op = cls(parser.resolve_operand(unresolved, parser.parse_type()))
        op.attributes.update(attributes)
        return op

    def verify_(self) -> None:
        if self.operand.type != self.result.type:
            raise VerifyException("util.optimization_barrier: result type must be the operand's")


Util = Dialect(
    "util",
    [GlobalOp, GlobalLoadOp, GlobalStoreOp, InitializerOp, ReturnOp, OptimizationBarrierOp],
    [],
)
