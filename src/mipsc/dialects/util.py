"""The ops of IREE's `util` dialect that PyTorch exports contain: globals holding the weights."""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr, SymbolRefAttr, TypedAttribute, UnitAttr
from xdsl.ir import Attribute, Dialect, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import SymbolOpInterface

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


Util = Dialect("util", [GlobalOp, GlobalLoadOp, GlobalStoreOp], [])
