"""An ONNX file → torch-dialect MLIR with aten ops, through IREE's own tools.

`iree-import-onnx` (shipped in iree-base-compiler; it needs the `onnx` package, the
`mipsc[onnx]` extra) writes torch MLIR whose ops are `torch.operator "onnx.MatMul"`, ...;
`iree-opt --torch-onnx-to-torch-backend-pipeline` (torch-mlir's onnx-to-torch patterns and
clean-ups) turns them into aten ops: `MatMul` into `aten.matmul`/`aten.mm`, `Gemm` into
`transpose.int` + `aten.mm` + `mul.Scalar` (alpha) + `add.Tensor` (beta), which mipsc's pipeline
then routes to the kernels. The entry function keeps the ONNX graph's name (`main_graph` for
torch's exporter). The import is printed with locations (onnx_import), which onnx_locations
turns into places in the model: each op at its node, each argument named as its graph input.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from mipsc.backend.iree_compile import iree_tool_path
from mipsc.diagnostics import MipscError, SourceLocation
from mipsc.frontends.onnx_functions import default_opset, has_function_body, write_expanded
from mipsc.frontends.source import with_default_mode
from mipsc.mlir_text import map_locations
from mipsc.options import DEFAULT_OPTIONS, CompileOptions

ONNX_EXTRA = "pip install 'mipsc[onnx]' (the onnx package)"
ONNX_TO_TORCH_PIPELINE = "--torch-onnx-to-torch-backend-pipeline"
PARAMETER_SCOPE = "model"
EXTERNAL_WEIGHTS_BYTES = 16 * 2**20
"""Above this file size, the initializers go to an .irpa (scope `model`) instead of inline."""

_LEFT_OVER = re.compile(r'torch\.operator "onnx\.(?P<op>\w+)"')


def _run(command: list[str], input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=input_text, capture_output=True, text=True, check=False)


def _last_error_line(stderr: str) -> str:
    """The line that says what went wrong: a Python tool's exception, or MLIR's `error:`."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    for line in lines:
        if ": error: " in line:
            return line.split(": error: ", 1)[1]
    return lines[-1] if lines else "(no message)"


def import_onnx(
    path: Path,
    options: CompileOptions = DEFAULT_OPTIONS,
    *,
    parameters_file: Path | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> tuple[str, Path | None]:
    """(torch MLIR text with aten ops, the .irpa of its weights or None) for an ONNX file.

    Weights stay inline up to EXTERNAL_WEIGHTS_BYTES of model (the file and its external
    data), else (or with
    `options.external_weights=True`) they go to `parameters_file`. Ops that IREE's conversion leaves
    over but the ONNX standard defines as functions (opset 23's Attention) are expanded into
    their bodies and the file imported again (onnx_functions). A file that is not ONNX, or an
    op IREE cannot convert, is a MipscError naming it.
    """
    if not path.is_file():
        raise MipscError(f"cannot read '{path}': no such file")
    _require_onnx()
    external_weights = options.external_weights
    if external_weights is None:
        external_weights = model_bytes(path) > EXTERNAL_WEIGHTS_BYTES
    if external_weights and parameters_file is None:
        raise MipscError("external weights need a parameter file to write (.irpa)")
    weights = parameters_file if external_weights else None
    text = _convert(_import(path, weights, progress), path, progress)
    if left := _left_over(text):
        text = _import_expanded(path, left, weights, progress)
    _refuse_control_flow(text, path)
    used = weights if weights is not None and weights.is_file() else None
    return onnx_locations(text, str(path)), used if used is None else with_default_mode(used)


def model_bytes(path: Path) -> int:
    """The size of an ONNX model with its external data files (the weights of a large model
    are usually there, beside a small .onnx)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception:  # (protobuf's DecodeError, ...) not ONNX: the import says so, located
        return path.stat().st_size
    files = {ExternalDataInfo(t).location for t in model.graph.initializer if uses_external_data(t)}
    data = [path.parent / name for name in files]
    return path.stat().st_size + sum(f.stat().st_size for f in data if f.is_file())


def _require_onnx() -> None:
    try:
        found = importlib.util.find_spec("onnx")
    except (ImportError, ValueError):  # ValueError: hidden in sys.modules
        found = None
    if found is None:
        raise MipscError(f"reading ONNX files needs the onnx package: {ONNX_EXTRA}")


def _import(path: Path, weights: Path | None, progress: Callable[[str], None]) -> str:
    """iree-import-onnx's torch MLIR (`onnx.*` ops) of `path`; weights to `weights` if given."""
    # iree-import-onnx is a Python script of iree-base-compiler: run it with this Python, as
    # onnx_import does, printing the locations that name each op's node.
    command = [sys.executable, "-m", "mipsc.frontends.onnx_import", str(path), "-o", "-"]
    if weights is not None:
        command += [
            "--externalize-params",
            f"--params-scope={PARAMETER_SCOPE}",
            f"--save-params-to={weights}",
        ]
    progress(f"importing {path} with iree-import-onnx")
    imported = _run(command)
    if imported.returncode != 0:
        reason = _last_error_line(imported.stderr)
        if "DecodeError" in reason or "Error parsing message" in reason:
            reason = f"not an ONNX model ({reason})"
        raise MipscError(f"cannot import '{path}': {reason}")
    return imported.stdout


def _convert(text: str, path: Path, progress: Callable[[str], None]) -> str:
    """The `onnx.*` ops of `text` as aten ops (iree-opt's onnx-to-torch pipeline)."""
    progress(f"converting onnx ops to torch ops (iree-opt {ONNX_TO_TORCH_PIPELINE})")
    command = [iree_tool_path("iree-opt"), ONNX_TO_TORCH_PIPELINE, "--mlir-print-debuginfo", "-"]
    converted = _run(command, text)
    if converted.returncode != 0:
        raise MipscError(
            f"IREE could not convert the ops of '{path}' to torch ops: "
            f"{_last_error_line(converted.stderr)}"
        )
    return converted.stdout


_CONTROL_FLOW = re.compile(r"torch\.prim\.(If|Loop)\b")
"""The control-flow ops IREE's conversion makes of ONNX `If` and `Loop` (with their regions),
which mipsc's parser does not read."""


def _refuse_control_flow(text: str, path: Path) -> None:
    """A MipscError at the first ONNX If or Loop node when the conversion made control flow of
    it: mipsc's parser stopped at `torch.prim.If %3 -> (...)` with `Expected ':'`, placed in
    the converted text, which the user never sees."""
    if (found := _CONTROL_FLOW.search(text)) is None:
        return
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    nodes = [(i, n) for i, n in enumerate(graph.node) if n.op_type in ("If", "Loop")]
    where = None
    if nodes:
        index, node = nodes[0]
        place = path.name.replace('"', "'")
        where = SourceLocation(f"{place}, node {node.name or f'#{index}'} ({node.op_type})", 0, 0)
    raise MipscError(
        f"ONNX control flow (an If or Loop node, which IREE converts to torch.prim."
        f"{found[1]}) is not supported: mipsc compiles graphs without control flow; export "
        "the model with the branch or loop unrolled (torch.onnx.export traces the path taken "
        "by its example inputs)",
        where,
    )


def _left_over(text: str) -> set[str]:
    """The ONNX ops the conversion left as `torch.operator "onnx.<op>"`."""
    return set(_LEFT_OVER.findall(text))


def _left_over_error(path: Path, ops: set[str]) -> MipscError:
    return MipscError(
        f"'{path}' uses ONNX ops that IREE's onnx-to-torch conversion does not handle "
        f"here: {', '.join(sorted(ops))} (check their attributes and input ranks; some need a "
        "newer opset or static shapes)"
    )


def _import_expanded(
    path: Path, left: set[str], weights: Path | None, progress: Callable[[str], None]
) -> str:
    """The import of `path` with the `left` ops expanded into their ONNX function bodies, when
    each has one; else the error naming the ops."""
    import onnx

    opset = default_opset(onnx.load(path, load_external_data=False))
    if missing := {op for op in left if not has_function_body(op, opset)}:
        raise _left_over_error(path, missing)
    names = ", ".join(sorted(left))
    progress(f"expanding {names} into their ONNX function bodies (IREE cannot convert them)")
    with tempfile.TemporaryDirectory(prefix="mipsc-onnx-") as directory:
        try:
            expanded = write_expanded(path, left, Path(directory))
        except ValueError as error:
            raise MipscError(f"cannot expand {names} of '{path}': {error}") from None
        text = _convert(_import(expanded, weights, progress), path, progress)
    if still := _left_over(text):
        raise _left_over_error(path, still)
    return text


_LOC_USE = re.compile(r" ?loc\((#loc\d*|\"[^\"\n]*\"|fused\[[^\]\n]*\]|unknown)\)")
_NAMES = re.compile(r'"([^"\n]*)"')
_NODE = re.compile(r"^.* \(\w+\)$")
"""A node's name as onnx_import writes it: `NAME (OpType)`."""


def onnx_locations(text: str, model: str) -> str:
    """The imported module's locations as places in the ONNX file `model`: an op made from a
    node is at `loc("model.onnx, node /encoder/MatMul (MatMul)":0:0)`, which errors print as
    `in model.onnx, node /encoder/MatMul (MatMul)` (mipsc.diagnostics.SourceLocation); a
    function argument keeps the name of its graph input (`loc("attention_mask")`, which
    messages about it give); every other location goes. Location aliases (`loc(#loc3)`,
    which xDSL does not read) are resolved; the weights after the module are not touched."""
    model = model.replace('"', "'")

    def place(match: re.Match[str], aliases: Mapping[str, str]) -> str:
        written = aliases.get(match[1], match[1]) if match[1].startswith("#") else match[1]
        names = _NAMES.findall(written)
        if node := next((n for n in names if _NODE.match(n)), None):
            return f' loc("{model}, node {node}":0:0)'
        plain = [n for n in names if n and not n.startswith(("graph:", "onnx_importer."))]
        return f' loc("{plain[0]}")' if len(plain) == 1 and "fused" not in written else ""

    return map_locations(text, _LOC_USE, place)
