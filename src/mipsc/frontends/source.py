"""Any input of `mipsc compile` and `mipsc opt` as torch MLIR text, picked by its name: MLIR
text (a file or `-` for stdin), an `.onnx` file (from_onnx) or a module named in a Python file
(`model.py:NAME`, from_torch).

The front doors are imported only for their inputs: an MLIR file costs no torch, onnx or numpy
import.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from mipsc.diagnostics import MipscError
from mipsc.mlir_text import MlirText, read_mlir_file
from mipsc.options import DEFAULT_OPTIONS, CompileOptions

PYTHON_SPEC = re.compile(r"^(?P<file>.+\.py)(?::(?P<name>[A-Za-z_][A-Za-z0-9_.]*))?$")
"""`model.py` or `model.py:NAME`: a module named in a Python file."""


def with_default_mode(path: Path) -> Path:
    """`path` (a file just written by IREE's C code, which creates .irpa files with mode 0640)
    given the mode any other output file gets: 0666 less this process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    try:
        path.chmod(0o666 & ~umask)
    except OSError:
        pass  # (not ours to change: it stays as IREE wrote it)
    return path


def is_python_spec(spec: str) -> bool:
    """Whether a command-line input names a Python file (`model.py` or `model.py:NAME`)."""
    return PYTHON_SPEC.match(spec) is not None


def model_path(input_file: str) -> Path:
    """The file part of FILE (`model.py:make_model` → model.py)."""
    if input_file == "-":
        return Path("stdin")
    return Path(input_file.split(":", 1)[0] if ".py:" in input_file else input_file)


def read_input(path: str, *, resources_on_disk: bool = False) -> tuple[str | MlirText, str]:
    """(text, display name) of a file, or of stdin for `-`. With `resources_on_disk`, a large
    resource section (inline weights) stays in the file (see mipsc.mlir_text.read_mlir_file)."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        if resources_on_disk:
            return read_mlir_file(Path(path)), path
        return Path(path).read_text(encoding="utf-8"), path
    except FileNotFoundError:
        raise MipscError(f"cannot read '{path}': no such file") from None
    except IsADirectoryError:
        raise MipscError(f"cannot read '{path}': it is a directory") from None
    except UnicodeDecodeError as err:
        raise MipscError(f"cannot read '{path}': not UTF-8 text ({err.reason})") from None
    except OSError as err:
        raise MipscError(f"cannot read '{path}': {err.strerror}") from None


def read_model(
    input_file: str,
    *,
    example_inputs: tuple[str, ...] = (),
    dynamic_dims: tuple[str, ...] = (),
    options: CompileOptions = DEFAULT_OPTIONS,
    parameters_file: Path | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
    resources_on_disk: bool = False,
) -> tuple[str | MlirText, str, Path | None]:
    """(torch MLIR text, name for diagnostics, the .irpa written or None) of any input kind:
    MLIR text, an .onnx file, or a module named in a Python file. With `resources_on_disk`, an
    MLIR file's large resource section stays in the file (see read_input)."""
    if input_file.endswith(".onnx"):
        from mipsc.frontends.from_onnx import import_onnx

        if example_inputs or dynamic_dims:
            raise MipscError(
                "--example-input and --dynamic-dim are for model.py:NAME inputs; an ONNX file "
                "carries its input shapes"
            )
        text, written = import_onnx(
            Path(input_file), options, parameters_file=parameters_file, progress=progress
        )
        return text, f"<{input_file} as torch MLIR>", written
    if is_python_spec(input_file):
        return _export_python(
            input_file, example_inputs, dynamic_dims, options, parameters_file, progress
        )
    if example_inputs or dynamic_dims:
        raise MipscError(
            "--example-input and --dynamic-dim are for model.py:NAME inputs; an MLIR file "
            "carries its input shapes"
        )
    text, name = read_input(input_file, resources_on_disk=resources_on_disk)
    return text, name, None


def _export_python(
    spec: str,
    example_inputs: tuple[str, ...],
    dynamic_dims: tuple[str, ...],
    options: CompileOptions,
    parameters_file: Path | None,
    progress: Callable[[str], None],
) -> tuple[str, str, Path | None]:
    from mipsc.frontends.dim_constraints import CliWords, DynamicDimError
    from mipsc.frontends.from_torch import (
        dynamic_dim_flags,
        dynamic_dims_spec,
        export_module,
        load_python_model,
    )
    from mipsc.runtime.specs import parse_example_input

    arrays = [parse_example_input(s, seed=i) for i, s in enumerate(example_inputs)]
    progress(f"loading {spec}")
    module, examples = load_python_model(spec)
    args: tuple[object, ...] = tuple(arrays) if arrays else (examples or ())
    if not args:
        raise MipscError(
            f"{spec} needs example inputs to be exported: give one --example-input per "
            "argument of its forward, e.g. --example-input 4x8xf32"
        )
    progress(f"exporting {spec} with iree-turbine (aot.export)")
    try:
        exported = export_module(
            module,
            args,
            dynamic_shapes=dynamic_dims_spec(dynamic_dims, args),
            options=options,
            parameters_file=parameters_file,
        )
    except DynamicDimError as err:  # (said for the Python API's dynamic_shapes)
        raise err.said_with(CliWords(dynamic_dim_flags(dynamic_dims))) from None
    return exported.mlir, f"<{spec} export>", exported.parameters
