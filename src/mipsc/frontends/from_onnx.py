"""An ONNX file → torch-dialect MLIR with aten ops, through IREE's own tools.

`iree-import-onnx` (shipped in iree-base-compiler; it needs the `onnx` package, the
`mipsc[onnx]` extra) writes torch MLIR whose ops are `torch.operator "onnx.MatMul"`, ...;
`iree-opt --torch-onnx-to-torch-backend-pipeline` (torch-mlir's onnx-to-torch patterns and
clean-ups) turns them into aten ops: `MatMul` into `aten.matmul`/`aten.mm`, `Gemm` into
`transpose.int` + `aten.mm` + `mul.Scalar` (alpha) + `add.Tensor` (beta), which mipsc's pipeline
then routes to the kernels. The entry function keeps the ONNX graph's name (`main_graph` for
torch's exporter).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from mipsc.backend.iree_compile import iree_tool_path
from mipsc.diagnostics import MipscError
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

    Weights stay inline up to EXTERNAL_WEIGHTS_BYTES of file, else (or with
    `options.external_weights=True`) they go to `parameters_file`. A file that is not ONNX, or
    an op IREE cannot convert, is a MipscError naming it.
    """
    if not path.is_file():
        raise MipscError(f"cannot read '{path}': no such file")
    try:
        found = importlib.util.find_spec("onnx")
    except (ImportError, ValueError):  # ValueError: hidden in sys.modules
        found = None
    if found is None:
        raise MipscError(f"reading ONNX files needs the onnx package: {ONNX_EXTRA}")
    external = options.external_weights
    if external is None:
        external = path.stat().st_size > EXTERNAL_WEIGHTS_BYTES
    progress(f"importing {path} with iree-import-onnx")
    imported = _run(_import_command(path, parameters_file if external else None, external))
    if imported.returncode != 0:
        reason = _last_error_line(imported.stderr)
        if "DecodeError" in reason or "Error parsing message" in reason:
            reason = f"not an ONNX model ({reason})"
        raise MipscError(f"cannot import '{path}': {reason}")
    progress(f"converting onnx ops to torch ops (iree-opt {ONNX_TO_TORCH_PIPELINE})")
    text = _onnx_to_torch(path, imported.stdout)
    written = parameters_file is not None and parameters_file.is_file()
    return text, parameters_file if external and written else None


def _import_command(path: Path, parameters_file: Path | None, external: bool) -> list[str]:
    """iree-import-onnx, a Python script of iree-base-compiler, run with this Python; with
    `external`, writing the weights to `parameters_file`."""
    command = [sys.executable, "-m", "iree.compiler.tools.import_onnx", str(path), "-o", "-"]
    if not external:
        return command
    if parameters_file is None:
        raise MipscError("external weights need a parameter file to write (.irpa)")
    return [
        *command,
        "--externalize-params",
        f"--params-scope={PARAMETER_SCOPE}",
        f"--save-params-to={parameters_file}",
    ]


def _onnx_to_torch(path: Path, imported: str) -> str:
    """The onnx.* ops of an imported module as torch ops (torch-mlir's conversion in
    iree-opt); an op left over is a MipscError naming it."""
    converted = _run([iree_tool_path("iree-opt"), ONNX_TO_TORCH_PIPELINE, "-"], imported)
    if converted.returncode != 0:
        raise MipscError(
            f"IREE could not convert the ops of '{path}' to torch ops: "
            f"{_last_error_line(converted.stderr)}"
        )
    left = sorted(set(_LEFT_OVER.findall(converted.stdout)))
    if left:
        raise MipscError(
            f"'{path}' uses ONNX ops that IREE's onnx-to-torch conversion does not handle "
            f"here: {', '.join(left)} (check their attributes and input ranks; some need a "
            "newer opset or static shapes)"
        )
    return converted.stdout
