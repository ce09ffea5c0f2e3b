"""`python -m mipsc.frontends.onnx_import ARGS`: iree-import-onnx (iree-base-compiler's
`iree.compiler.tools.import_onnx`, with its arguments) printing each op's location.

IREE's ONNX importer gives each op the location of its node's name, and each argument of the
function the name of its graph input (`loc("attention_mask")`), but the tool prints no
locations. This prints them, with each node named as `NAME (OpType)` (`#3 (MatMul)` for a
node without a name), so that mipsc's errors and remarks can point into the ONNX model
(from_onnx.onnx_locations) and name its inputs. Run in a process of its own, as the tool is:
the import holds the whole model in memory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def describe_nodes(graph: Any) -> None:
    """Names each node of `graph` (an onnx GraphProto) `NAME (OpType)`, or `#I (OpType)` when
    it has no name (`graph.node[I]`, from 0); the name is only the ops' location."""
    for index, node in enumerate(graph.node):
        node.name = f"{node.name or f'#{index}'} ({node.op_type})"


def main(argv: list[str]) -> None:
    """The import of iree.compiler.tools.import_onnx.__main__.main, printed with locations."""
    from iree.compiler.tools.import_onnx import __main__ as tool

    args = tool.parse_arguments(argv)
    model = tool.load_onnx_model(args)
    describe_nodes(model.graph)
    info = tool.onnx_importer.ModelInfo(model)
    module = info.create_module(context=tool.Context()).operation
    importer = (
        tool.IREENodeImporter.define_function(info.main_graph, module, _parameters(args, tool))
        if args.externalize_params
        else tool.onnx_importer.NodeImporter.define_function(info.main_graph, module)
    )
    importer.import_all()
    bind_dim_params(module, list(info.main_graph.input_map.values()))
    module.verify()
    sys.stdout.write(module.get_asm(enable_debug_info=True, assume_verified=True))
    if args.externalize_params:
        importer.save_params()


def bind_dim_params(module: Any, inputs: Iterable[Any]) -> None:
    """Binds the graph inputs' dims that share a `dim_param` (ONNX: one name, one size) to
    one `torch.symbolic_int` each, with `torch.bind_symbolic_shape` as torch's exports write
    them, at the entry of `module`'s function (IREE's MLIR bindings; `inputs`: the graph's
    ValueInfoProtos, in the order of the function's arguments). mipsc's check-input-dims
    makes them run-time checks: IREE assumes dims without such a check agree, and an
    elementwise op of two inputs given different batch sizes read past the end of one."""
    from iree.compiler import ir

    places = _dim_param_places(inputs)
    shared = {name: where for name, where in places.items() if len(where) > 1}
    if not shared:
        return
    top = module.regions[0].blocks[0].operations
    function = next(o for o in top if o.operation.name == "func.func")
    block = function.regions[0].blocks[0]
    with module.context, ir.Location.unknown(), ir.InsertionPoint.at_block_begin(block):
        int_type = ir.Type.parse("!torch.int")
        i64 = ir.IntegerType.get_signless(64)
        symbols = {}
        for name in shared:
            attributes = {
                "symbol_name": ir.StringAttr.get(name),
                "min_val": ir.IntegerAttr.get(i64, 0),
                "max_val": ir.IntegerAttr.get(i64, 2**63 - 1),
            }
            op = ir.Operation.create("torch.symbolic_int", [int_type], attributes=attributes)
            symbols[name] = op.result
        for index, value_info in enumerate(inputs):
            dims = value_info.type.tensor_type.shape.dim
            names = [d.dim_param if d.dim_param in shared else None for d in dims]
            if not any(names) or index >= len(block.arguments):
                continue
            used = list(dict.fromkeys(n for n in names if n))
            results = [
                ir.AffineSymbolExpr.get(used.index(n)) if n else ir.AffineConstantExpr.get(
                    d.dim_value
                )
                for n, d in zip(names, dims, strict=True)
            ]
            mapping = ir.AffineMap.get(0, len(used), results)
            ir.Operation.create(
                "torch.bind_symbolic_shape",
                operands=[block.arguments[index], *(symbols[n] for n in used)],
                attributes={"shape_expressions": ir.AffineMapAttr.get(mapping)},
            )


def _dim_param_places(inputs: Iterable[Any]) -> dict[str, list[tuple[int, int]]]:
    """(input, dim) of each dim_param the graph inputs use, by name."""
    places: dict[str, list[tuple[int, int]]] = {}
    for index, value_info in enumerate(inputs):
        for dim, size in enumerate(value_info.type.tensor_type.shape.dim):
            if size.dim_param:
                places.setdefault(size.dim_param, []).append((index, dim))
    return places


def _parameters(args: Any, tool: Any) -> Any:
    """The tool's ParamData for `--externalize-params --save-params-to=FILE` (what
    from_onnx gives; the tool's other ways to name the file are not used)."""
    gigabytes = args.param_gb_threshold
    return tool.ParamData(
        param_bit_threshold=None if gigabytes is None else int(gigabytes * 8 * 10**9),
        num_elements_threshold=args.num_elements_threshold,
        params_scope=args.params_scope,
        data_dir=str(args.data_dir or args.input_file.parent),
        param_path=str(args.save_params_to),
        input_index_threshold=args.externalize_inputs_threshold,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
