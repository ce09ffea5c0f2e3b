"""ONNX ops that IREE cannot convert, expanded into their ONNX function bodies first.

Many ONNX ops are defined by the standard as a *function*: a body of simpler ONNX ops (e.g.
opset 23's `Attention` is Shape/Reshape/Transpose/MatMul/Softmax/... around two MatMuls; its
body depends on the node's attributes and input types: a "context-dependent" function).
IREE 3.13's onnx-to-torch conversion lacks some of them, while it converts their bodies. So an
op that is left over after IREE's conversion, and that has a function definition in the onnx
package's schemas, is replaced by that body: each such node becomes a call of a model-local
function holding the body, and `onnx.inliner.inline_local_functions` (the onnx package's own
inliner) splices it in. Only nodes of the main graph are expanded, not of subgraphs (If, Loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

EXPANDED_DOMAIN = "mipsc.expanded"
"""The domain of the local functions that hold the bodies while they are inlined."""


def has_function_body(op_type: str, opset: int) -> bool:
    """Whether the default-domain op `op_type`, at `opset`, is defined by an ONNX function."""
    import onnx

    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except onnx.defs.SchemaError:
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default ("" / "ai.onnx") domain the model imports."""
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _input_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """The type of every value of the main graph that shape inference can tell."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    infos = [*graph.input, *graph.value_info, *graph.output]
    types = {info.name: info.type for info in infos}
    for init in graph.initializer:
        tensor_type = onnx.helper.make_tensor_type_proto(init.data_type, list(init.dims))
        types.setdefault(init.name, tensor_type)
    return types


def _body_of(
    node: onnx.NodeProto, opset: int, types: dict[str, onnx.TypeProto]
) -> onnx.FunctionProto:
    """The function body the standard defines for `node` (its attributes and input types
    chosen), as a FunctionProto."""
    import onnx

    schema = onnx.defs.get_schema(node.op_type, opset, "")
    body = onnx.FunctionProto()
    if schema.has_context_dependent_function:
        missing = [name for name in node.input if name and name not in types]
        if missing:
            raise ValueError(f"the types of {', '.join(missing)} are unknown")
        input_types = [types[name].SerializeToString() for name in node.input if name]
        serialized = schema.get_context_dependent_function_with_opset_version(
            opset, node.SerializeToString(), input_types
        )
        body.ParseFromString(serialized)
    else:
        body.CopyFrom(schema.get_function_with_opset_version(opset))
    return body


def expand_ops(model: onnx.ModelProto, op_types: set[str]) -> onnx.ModelProto:
    """`model` with every main-graph node of the default domain whose op is in `op_types`
    replaced by its ONNX function body. Raises ValueError when a body cannot be made (e.g. an
    input of unknown type)."""
    import onnx
    import onnx.inliner

    opset = default_opset(model)
    types = _input_types(model)
    for index, node in enumerate(model.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in op_types:
            continue
        body = _body_of(node, opset, types)
        body.name, body.domain = f"{node.op_type}_{index}", EXPANDED_DOMAIN
        node.op_type, node.domain = body.name, EXPANDED_DOMAIN
        model.functions.append(body)
    model.opset_import.append(onnx.helper.make_opsetid(EXPANDED_DOMAIN, 1))
    return onnx.inliner.inline_local_functions(model)


def write_expanded(source: Path, op_types: set[str], directory: Path) -> Path:
    """Writes `source` with `op_types` expanded (expand_ops) into `directory`, its weights in
    one external data file beside it (so a model above protobuf's 2 GiB limit still saves),
    and returns the new model's path."""
    import onnx

    model = onnx.load(source)
    expanded = expand_ops(model, op_types)
    target = directory / f"{source.stem}.expanded.onnx"
    onnx.save_model(
        expanded,
        target,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=f"{target.name}.data",
        size_threshold=1024,
    )
    return target
