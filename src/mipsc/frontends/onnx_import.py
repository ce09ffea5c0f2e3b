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
    module.verify()
    sys.stdout.write(module.get_asm(enable_debug_info=True, assume_verified=True))
    if args.externalize_params:
        importer.save_params()


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
