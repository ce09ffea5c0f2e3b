"""A PyTorch module → torch-dialect MLIR, through iree-turbine's `aot.export`.

torch and iree-turbine come with the `mipsc[torch]` extra; they are imported here, on first
use, never by `import mipsc`. Weights are inlined as `dense_resource` blobs for small modules,
and written to a parameter file (.irpa, scope `model`) for large ones, which the exported MLIR
then reads as `#flow.parameter.named<"model"::"name">`.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mipsc.diagnostics import (
    _SOURCES,
    MipscError,
    SourceFile,
    SourceLocation,
    input_name,
    register_source,
)
from mipsc.frontends.dim_constraints import DimWords, dynamic_dim_error, places_of
from mipsc.frontends.source import PYTHON_SPEC, with_default_mode
from mipsc.mlir_text import map_locations
from mipsc.options import DEFAULT_OPTIONS, CompileOptions

PARAMETER_SCOPE = "model"
"""The scope of exported parameters: `mipsc run --parameters=model=FILE.irpa` (or just FILE)."""

EXTERNAL_WEIGHTS_BYTES = 16 * 2**20
"""Above this many bytes of parameters and buffers, weights go to an .irpa instead of inline."""

TORCH_EXTRA = "pip install 'mipsc[torch]' (torch==2.13.0 and iree-turbine)"


def import_torch() -> tuple[Any, Any]:
    """(torch, iree.turbine.aot), or a MipscError saying how to install them."""
    try:
        import torch
        from iree.turbine import aot
    except ImportError as err:
        raise MipscError(
            f"exporting a PyTorch module needs torch and iree-turbine ({err.name} is not "
            f"installed): {TORCH_EXTRA}"
        ) from None
    return torch, aot


@dataclass
class Exported:
    """A module exported to torch MLIR: what `mipsc.pipeline.compile_module` takes."""

    mlir: str
    name: str
    """The name diagnostics use for the MLIR text (no such file exists)."""
    parameters: Path | None
    """The .irpa holding the weights (scope PARAMETER_SCOPE), or None when they are inline."""
    out_spec: Any = None
    """torch's pytree spec of forward's outputs (a dict, nested tuples), or None if unknown:
    the compiled module returns them flat, in this order."""


def weight_bytes(module: Any) -> int:
    """Bytes of a module's parameters and buffers (0 for a plain function)."""
    tensors = [*module.parameters(), *module.buffers()] if hasattr(module, "parameters") else []
    return sum(t.numel() * t.element_size() for t in tensors)


def to_torch(value: Any, index: int) -> Any:
    """A numpy array (bf16 as ml_dtypes.bfloat16) or torch tensor as a torch tensor."""
    torch, _ = import_torch()
    if isinstance(value, torch.Tensor):
        return value
    import numpy as np  # (here, not at the top: `mipsc compile model.mlir` never needs it)

    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype.name == "bfloat16":
            return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(array).copy())
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    raise MipscError(
        f"example input {index + 1} is {article} {kind}: pass a torch tensor or a numpy array "
        "(e.g. np.asarray(x, dtype=np.float32))"
    )


def _dims(dynamic_shapes: Any, torch: Any) -> Any:
    """torch.export's dynamic_shapes, where a string stands for the Dim of that name (so
    `[{0: "batch"}, {0: "batch"}]` makes dim 0 of both inputs one dynamic size)."""
    made: dict[str, Any] = {}

    def walk(spec: Any) -> Any:
        if isinstance(spec, str):
            if not spec.isidentifier():
                raise MipscError(f"dynamic dim name '{spec}' is not a Python identifier")
            return made.setdefault(spec, torch.export.Dim(spec))
        if isinstance(spec, dict):
            return {k: walk(v) for k, v in spec.items()}
        if isinstance(spec, list | tuple):
            return type(spec)(walk(v) for v in spec)
        return spec

    return walk(dynamic_shapes)


class _Function:
    """Wraps a plain function of tensors as a module (torch.export takes modules)."""

    def __new__(cls, fn: Callable[..., Any]) -> Any:
        torch, _ = import_torch()

        class Function(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fn = fn

            def forward(self, *args: Any) -> Any:
                return self.fn(*args)

        return Function()


def _summary(err: BaseException, limit: int = 12) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    cut = lines[:limit] + (["..."] if len(lines) > limit else [])
    return f"{type(err).__name__}: " + "\n".join(cut)


def export_module(
    module: Any,
    example_args: Sequence[Any],
    *,
    dynamic_shapes: Any = None,
    options: CompileOptions = DEFAULT_OPTIONS,
    parameters_file: Path | None = None,
    strict: bool = True,
) -> Exported:
    """Export `module` (an `nn.Module`, or a function of tensors) called on `example_args`.

    `dynamic_shapes` is torch.export's (a tuple with one `{dim: Dim}` per input, or a dict by
    argument name); strings may stand for `Dim`s. `options.external_weights`: True writes the
    weights to `parameters_file` (.irpa, scope `model`), False inlines them, None decides by
    size (EXTERNAL_WEIGHTS_BYTES). `strict=False` traces without dynamo (torch.export's non-strict
    mode), as needed inside a torch.compile backend. A module torch.export cannot trace is a
    MipscError.
    """
    torch, aot = import_torch()
    if not isinstance(module, torch.nn.Module):
        if not callable(module):
            raise MipscError(
                f"cannot export a {type(module).__name__}: expected a torch.nn.Module or a "
                "function of tensors"
            )
        module = _Function(module)
    check_dynamic_shapes(dynamic_shapes, example_args)
    words = DimWords(places_of(dynamic_shapes))  # (one spec per input: before the grouping)
    dynamic_shapes = _varargs_grouped(module, dynamic_shapes)
    name = f"<{type(module).__name__} export>"
    check_input_count(module, len(example_args))
    args = tuple(to_torch(a, i) for i, a in enumerate(example_args))
    external_weights = _weights_external(module, options.external_weights, torch)
    if external_weights and parameters_file is None:
        raise MipscError("external weights need a parameter file to write (.irpa)")
    with _weights_placed(module, aot, external=external_weights):
        text, out_spec = _trace(module, args, dynamic_shapes, strict, torch, aot, words)
        if not external_weights:
            return Exported(text, name, None, out_spec)
        assert parameters_file is not None
        try:
            aot.save_module_parameters(parameters_file, module)
        except OSError as err:
            raise MipscError(f"cannot write '{parameters_file}': {err.strerror}") from None
        except (ValueError, RuntimeError) as err:  # IREE's archive builder: a status text
            reason = "no such directory" if "NOT_FOUND" in str(err) else str(err).strip()
            raise MipscError(f"cannot write '{parameters_file}': {reason}") from None
    return Exported(text, name, with_default_mode(parameters_file), out_spec)


def _varargs_grouped(module: Any, dynamic_shapes: Any) -> Any:
    """`dynamic_shapes` (one spec per input, in order) as torch.export takes it for
    `module.forward`: the specs of the inputs a `*args` parameter collects as that one entry
    (given one per input, torch.export failed: "`inputs` has 1 elements, but
    `dynamic_shapes` has 2"). Unchanged for a forward without `*args` or given no input for
    it, or a dict by name."""
    if not isinstance(dynamic_shapes, list | tuple):
        return dynamic_shapes
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):  # (a forward Python cannot describe: as given)
        return dynamic_shapes
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL not in kinds:
        return tuple(dynamic_shapes)
    fixed = kinds.index(inspect.Parameter.VAR_POSITIONAL)
    if len(dynamic_shapes) <= fixed:
        # No input for `*args`: torch.export leaves it out of the inputs it counts (an empty
        # entry for it failed: "`inputs` has 3 elements, but `dynamic_shapes` has 4").
        return tuple(dynamic_shapes)
    return (*dynamic_shapes[:fixed], tuple(dynamic_shapes[fixed:]))


def check_input_count(module: Any, count: int) -> None:
    """A MipscError when `count` example inputs cannot be `module.forward`'s arguments, naming
    its inputs (torch.export said only "TypeError: too many positional arguments")."""
    try:
        signature = inspect.signature(module.forward)
    except (TypeError, ValueError):  # (a forward Python cannot describe: torch.export says)
        return
    try:
        signature.bind(*range(count))
    except TypeError:
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        names = [p.name for p in signature.parameters.values() if p.kind in positional]
        raise MipscError(
            f"{type(module).__name__}.forward takes {len(names)} input(s) ({', '.join(names)}), "
            f"and {count} example input(s) were given: give one per input, in order"
        ) from None


def _weights_external(module: Any, chosen: bool | None, torch: Any) -> bool:
    """Whether the export writes the weights to an .irpa: as `chosen`, else above
    EXTERNAL_WEIGHTS_BYTES or when any is bf16 (iree-turbine 3.9 inlines a weight through a
    numpy array, and numpy has no bf16: the export failed with "unsupported ScalarType
    BFloat16"); never for a module without weights."""
    size = weight_bytes(module)
    if chosen is None:
        tensors = [*module.parameters(), *module.buffers()] if size else []
        chosen = size > EXTERNAL_WEIGHTS_BYTES or any(t.dtype == torch.bfloat16 for t in tensors)
    return chosen and size > 0


_TRAIT = "_turbine_external_tensor_trait"  # where aot.externalize_module_parameters marks a tensor


@contextmanager
def _weights_placed(module: Any, aot: Any, *, external: bool) -> Iterator[None]:
    """Weights marked external (scope `model`) or not for one export, and as they were after:
    iree-turbine's mark stays on the tensors, so an inline export after an external one would
    otherwise read parameters nobody gives it."""
    tensors = [*module.parameters(), *module.buffers()]
    before = [getattr(t, _TRAIT, None) for t in tensors]
    if external:
        aot.externalize_module_parameters(module, external_scope=PARAMETER_SCOPE)
    else:
        for tensor in tensors:
            if hasattr(tensor, _TRAIT):
                delattr(tensor, _TRAIT)
    try:
        yield
    finally:
        for tensor, trait in zip(tensors, before, strict=True):
            if trait is not None:
                setattr(tensor, _TRAIT, trait)
            elif hasattr(tensor, _TRAIT):
                delattr(tensor, _TRAIT)


def _trace(
    module: Any,
    args: tuple[Any, ...],
    dynamic_shapes: Any,
    strict: bool,
    torch: Any,
    aot: Any,
    words: DimWords,
) -> tuple[str, Any]:
    """aot.export's torch MLIR text and the pytree spec of forward's outputs; torch.export's
    failure as a MipscError, without its logs (a dynamic dim it refused: a DynamicDimError,
    the dims named in `words`).

    torch.export runs here, as aot.export would run it for a module (with iree-turbine's
    decompositions after), so that its program's output spec is kept; aot.export then imports
    that program."""
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    with warnings.catch_warnings():
        # torch.export's pytree code warns on every export, and a failed trace logs tracebacks
        # on stderr before raising: the user gets the error itself, as a MipscError.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="When strict_export == False")
        torch_log.setLevel(logging.CRITICAL)
        stage = "torch.export could not trace"
        try:
            # Gradients on while tracing: under torch.no_grad() torch's modules take fused
            # inference fast paths (nn.TransformerEncoderLayer: aten._transformer_encoder_
            # layer_fwd) that IREE cannot lower; with gradients they trace to plain ops.
            with torch.enable_grad():
                program = torch.export.export(
                    module, args=args, dynamic_shapes=_dims(dynamic_shapes, torch), strict=strict
                )
            stage = "iree-turbine could not import the program torch.export traced of"
            program = program.run_decompositions(export_decompositions())
            name_builtin_frames(program.graph)
            exported = _imported(program, aot)
        except MipscError:
            raise
        except Exception as err:
            if dims := dynamic_dim_error(err, type(module).__name__, words):
                raise dims from None
            raise MipscError(
                f"{stage} {type(module).__name__} on the example inputs",
                notes=[
                    _summary(err),
                    *(_BF16_INLINE_HINT if "unsupported ScalarType BFloat16" in str(err) else []),
                    "mipsc exports with iree-turbine's aot.export (torch.export underneath): "
                    + (
                        "the module's forward must be traceable with those inputs "
                        "(see torch.export's documentation on graph breaks and dynamic shapes)"
                        if stage.startswith("torch.export")
                        else "what torch.export traced must be something aot.export imports"
                    ),
                ],
            ) from None
        finally:
            torch_log.setLevel(level)
    keep_input_bindings(exported.mlir_module)
    # With the source locations torch recorded, turned into the user's Python lines.
    text = python_locations(exported.mlir_module.operation.get_asm(enable_debug_info=True))
    return text, program.call_spec.out_spec


def export_decompositions() -> dict[Any, Callable[..., Any]]:
    """The decompositions run on torch.export's program: iree-turbine's own (what aot.export
    runs), and torch's own decomposition of every op IREE's torch dialect does not define.

    torch.export keeps every CompositeImplicitAutograd op that a decomposition table does not
    name, and iree-turbine's table names few: `torch.linalg.matmul`, `torch.inner`,
    `torch.tensordot`, `torch.vdot`, `torch.kron`, `torch.linalg.multi_dot`, `torch.addmv`,
    `nn.GRU` / `nn.LSTM` and hundreds more were imported as `torch.operator` ops that no IREE
    pass lowers ("failed to legalize operation 'torch.operator'"). Decomposed, they become
    the ops they are made of (matmul, mm, mul, sum...), which IREE lowers and mipsc routes."""
    torch, _ = import_torch()
    from iree.turbine.aot.decompositions import current_aot_decompositions

    table = dict(_undefined_op_decompositions(torch))
    table.update(current_aot_decompositions())
    return table


@functools.cache
def _undefined_op_decompositions(torch: Any) -> dict[Any, Callable[..., Any]]:
    """torch's decompositions of the functional ops that IREE's torch dialect has no op for
    (iree-turbine's importer makes such an op a `torch.operator`, which IREE cannot lower):
    its default ones (the core ATen table and every CompositeImplicitAutograd op's own), else
    the one torch._decomp registers (`addmv`, `squeeze.dims`, ...). Made once per process
    (~0.2 s of CPU)."""
    from iree.compiler import ir
    from torch._decomp import decomposition_table

    context = ir.Context()  # (iree.compiler's context registers the torch dialect)

    def undefined(op: Any) -> bool:
        schema = getattr(op, "_schema", None)  # (higher-order operators have none)
        return (
            schema is not None
            and not schema.is_mutable
            and not any(arg.is_out for arg in schema.arguments)
            and not context.is_registered_operation(_mlir_op_name(schema))
        )

    defaults = torch.export.default_decompositions()
    table = {op: fn for op, fn in decomposition_table.items() if undefined(op)}
    table.update((op, defaults[op]) for op in defaults.keys() if undefined(op))
    return table


def _mlir_op_name(schema: Any) -> str:
    """The torch dialect's name of the op of a torch FunctionSchema (`torch.aten.mm`,
    `torch.aten.add.Tensor`), as iree-turbine's importer names it."""
    namespace, _, name = schema.name.partition("::")
    overload = f".{schema.overload_name}" if schema.overload_name else ""
    return f"torch.{namespace}.{name}{overload}"


def _imported(program: Any, aot: Any) -> Any:
    """aot.export of `program`, with the relations of its dynamic dims (one name, one size) as
    bindings for check-input-dims; without them when iree-turbine cannot translate one (as
    "Translation of sympy.Expr of type FloorDiv not implemented yet", a size torch.export
    derived by a division): the module then runs as before, its inputs' dims unchecked."""
    try:
        return aot.export(program, import_symbolic_shape_expressions=True)
    except NotImplementedError:
        return aot.export(program)


def keep_input_bindings(module: Any) -> None:
    """Of an export's `torch.bind_symbolic_shape` ops (`module`: the builtin.module Operation
    of IREE's MLIR bindings), keeps those of each function's inputs, when they relate two input
    dims (one symbol twice, or a derived dim) and are affine: the relations check-input-dims
    makes run-time checks. Erases the others (those of intermediate values, as `s0 * s1` after
    a reshape, which xDSL's affine maps cannot hold and no pass reads) and the symbols left
    unused, and names the symbols kept s0, s1, ... in order (torch's names count every symbol
    the process made: numbered, one export of a graph is the same text as the next)."""
    from iree.compiler import ir

    top = module.regions[0].blocks[0]  # (aot.export's mlir_module is the module's Operation)
    blocks = [b for function in top.operations for r in function.regions for b in r.blocks]
    for block in blocks:
        ops = list(block.operations)
        bindings = [op for op in ops if op.operation.name == "torch.bind_symbolic_shape"]
        symbols = [op for op in ops if op.operation.name == "torch.symbolic_int"]
        keep = [_an_affine_input_binding(op, ir) for op in bindings]
        related = _relate_dims([op for op, k in zip(bindings, keep, strict=True) if k], ir)
        for op, k in zip(bindings, keep, strict=True):
            if not (k and related):
                op.operation.erase()
        used = [op for op in symbols if list(op.results[0].uses)]
        for op in symbols:
            if op not in used:
                op.operation.erase()
        for number, op in enumerate(used):
            op.attributes["symbol_name"] = ir.StringAttr.get(f"s{number}", module.context)


def _an_affine_input_binding(op: Any, ir: Any) -> bool:
    mapping = ir.AffineMapAttr(op.attributes["shape_expressions"]).value
    is_input = isinstance(op.operands[0].maybe_downcast(), ir.BlockArgument)
    return is_input and all(_affine(e) for e in mapping.results)


def _relate_dims(bindings: Sequence[Any], ir: Any) -> bool:
    """Whether the input `bindings` relate two dims: a symbol bound twice, or a derived dim."""
    seen: set[Any] = set()
    for op in bindings:
        mapping = ir.AffineMapAttr(op.attributes["shape_expressions"]).value
        symbols = list(op.operands)[1:]
        for expr in mapping.results:
            expr = expr.maybe_downcast()
            if isinstance(expr, ir.AffineConstantExpr):
                continue
            if not isinstance(expr, ir.AffineSymbolExpr):
                return True
            symbol = symbols[expr.position]
            if symbol in seen:
                return True
            seen.add(symbol)
    return False


def _affine(expr: Any) -> bool:
    """Whether an MLIR affine expression is affine (no product, quotient or remainder of two
    symbols), as xDSL's parser takes it."""
    from iree.compiler import ir

    expr = expr.maybe_downcast()
    if not isinstance(expr, ir.AffineBinaryExpr):
        return True
    if not (_affine(expr.lhs) and _affine(expr.rhs)):
        return False
    if isinstance(expr, ir.AffineAddExpr):
        return True

    def constant(e: Any) -> bool:
        return isinstance(e.maybe_downcast(), ir.AffineConstantExpr)

    return constant(expr.rhs) or (isinstance(expr, ir.AffineMulExpr) and constant(expr.lhs))


_BF16_INLINE_HINT = [
    "iree-turbine cannot inline bf16 weights (through numpy, which has no bf16): export them "
    "to a parameter file, `external_weights=True` / `--external-weights`"
]

_LOC_USE = re.compile(r" ?loc\((#loc\d*|callsite\([^()]*\)|unknown)\)")
_FILE_LOC = re.compile(r'^"(?P<file>[^"]+)":(?P<line>\d+):(?P<col>\d+)$')


def python_locations(text: str) -> str:
    """An export's debug locations as the user's own Python lines.

    iree-turbine prints each op's location as a call stack, through location aliases
    (`loc(#loc7)`, `#loc7 = loc(callsite(#loc1 at #loc5))`), which xDSL does not read. Each
    becomes the innermost frame outside Python's libraries (`loc("model.py":14:1)`), so that
    `--report` and iree-compile's errors point at the line of `forward` an op came from; a stack
    with no such frame loses its location. The weight blobs after the module are not touched.
    """
    return map_locations(text, _LOC_USE, _user_frame)


def _user_frame(match: re.Match[str], aliases: Mapping[str, str]) -> str:
    """The location of `match` as its innermost frame outside Python's libraries, or none."""
    for frame in _frames(match[1], aliases):
        found = _FILE_LOC.match(frame)
        assert found is not None
        if not _is_library(found["file"]):
            line, column = int(found["line"]), int(found["col"])
            if column == 0 and line > 0:  # torch records lines only: point at the first word
                column = _indent(found["file"], line) + 1
            return f' loc("{found["file"]}":{line}:{column})'
    return ""


def _frames(expr: str, aliases: Mapping[str, str], depth: int = 0) -> list[str]:
    """The `"file":line:col` frames of a location, innermost first."""
    expr = expr.strip()
    if depth > 64:
        return []
    if expr.startswith("#loc"):
        return _frames(aliases.get(expr, "loc(unknown)"), aliases, depth + 1)
    if expr.startswith("loc(") and expr.endswith(")"):
        expr = expr[4:-1].strip()
    if expr.startswith("callsite(") and " at " in expr:
        callee, caller = expr[len("callsite(") : -1].split(" at ", 1)
        return _frames(callee, aliases, depth + 1) + _frames(caller, aliases, depth + 1)
    return [expr] if _FILE_LOC.match(expr) else []


_FRAME_FILE = re.compile(r'File "([^"]+)", line \d+')


def name_builtin_frames(graph: Any) -> None:
    """Gives each node of an exported graph that no line of the user's made (a built-in
    torch.nn module called directly, or from an nn.Sequential) a last stack frame naming the
    module: `File "torch.nn.Linear (built-in), submodule 0", line 0`, from torch's
    nn_module_stack. aot.export makes locations of the frames, and python_locations keeps that
    one as a location of line 0, which mipsc.diagnostics.SourceLocation prints as
    `in torch.nn.Linear (built-in), submodule 0` (the pseudo-file `<Linear export>` before)."""
    for node in graph.nodes:
        modules = node.meta.get("nn_module_stack")
        trace = node.meta.get("stack_trace") or ""
        if not modules or any(not _is_library(f) for f in _FRAME_FILE.findall(trace)):
            continue
        path, kind = list(modules.values())[-1]
        if (place := _builtin_place(path, kind)) is not None:
            node.meta["stack_trace"] = f'{trace.rstrip()}\n  File "{place}", line 0, in forward\n'


def _builtin_place(path: str, kind: Any) -> str | None:
    """`torch.nn.Linear (built-in), submodule seq.0` for a torch.nn module of that class at
    that path (TorchDynamo's `L['self'].seq.0` without its root), None for another class."""
    if not isinstance(kind, str):
        kind = f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', '')}"
    module, _, name = kind.rpartition(".")
    if not module.startswith("torch.nn.modules"):
        return None
    path = re.sub(r"^L\['\w+'\]\.?", "", path).replace('"', "'")  # (a quote ends the loc)
    said = f"torch.nn.{name} (built-in)"
    return f"{said}, submodule {path}" if path else said


# mipsc's own sources: not the user's lines, also when installed editable (outside site-packages),
# e.g. the wrapper the torch.compile backend exports a graph with (mipsc/dynamo.py).
_MIPSC_SOURCES = str(Path(__file__).resolve().parents[1]) + os.sep


def _is_library(file: str) -> bool:
    return (
        "site-packages" in file
        or "/lib/python3" in file
        or file.startswith("<")
        or os.path.abspath(file).startswith(_MIPSC_SOURCES)
    )


def _indent(file: str, line: int) -> int:
    """How far a line of a Python file is indented (0 if unreadable); the file is kept, so that
    an error located in it quotes its line."""
    source = _SOURCES.get(file)
    if source is None:
        try:
            source = SourceFile(file, Path(file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return 0
        register_source(source)
    text = source.line_text(line) or ""
    return len(text) - len(text.lstrip())


# --- A module named in a Python file: `mipsc compile model.py:make_model` ----------------------


def _run_file(path: Path) -> Any:
    """Execute a Python file as a fresh module; its errors point at its own lines."""
    if not path.is_file():
        raise MipscError(f"cannot read '{path}': no such file")
    module_name = f"mipsc_user_model_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:  # so that an error located in the file quotes its line
        register_source(SourceFile(str(path), path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        pass
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    sys.path.insert(0, str(path.resolve().parent))  # its sibling imports work as in `python`
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        location = SourceLocation(str(path), err.lineno or 1, err.offset or 1)
        raise MipscError(f"invalid Python: {err.msg}", location) from None
    except Exception as err:
        raise _user_code_error(err, path, f"running {path} failed") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _user_code_error(err: BaseException, path: Path, what: str) -> MipscError:
    """An exception raised by the user's code, located at its innermost line in `path`."""
    mine = path.resolve()
    frames = [
        f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).resolve() == mine
    ]
    location = None
    if frames:
        location = SourceLocation(str(path), frames[-1].lineno or 1, (frames[-1].colno or 0) + 1)
    return MipscError(f"{what}: {type(err).__name__}: {err}", location)


def load_python_model(spec: str) -> tuple[Any, tuple[Any, ...] | None]:
    """The module named by `model.py:NAME`, and example inputs if NAME provided them.

    NAME is an `nn.Module` instance, or a class or function called with no arguments that
    returns an `nn.Module`, or a `(module, example_inputs)` pair.
    """
    match = PYTHON_SPEC.match(spec)
    if match is None:
        raise MipscError(f"'{spec}' is not a Python file and name (model.py:NAME)")
    path = Path(match["file"])
    torch, _ = import_torch()  # before the file's own `import torch` fails less clearly
    namespace = _run_file(path)
    if not match["name"]:
        candidates = [
            n
            for n, v in vars(namespace).items()
            if not n.startswith("_")
            and getattr(v, "__module__", None) == namespace.__name__
            and (isinstance(v, torch.nn.Module) or inspect.isclass(v) or inspect.isfunction(v))
        ]
        listed = ", ".join(f"{path}:{n}" for n in candidates) or "none found"
        raise MipscError(
            f"name the module to compile: {path}:NAME, where NAME is an nn.Module, or a class or "
            f"function making one with no arguments (candidates: {listed})"
        )
    target: Any = namespace
    for part in match["name"].split("."):
        if not hasattr(target, part):
            raise MipscError(f"{path} has no '{match['name']}'")
        target = getattr(target, part)
    made = target
    if not isinstance(target, torch.nn.Module):
        if not callable(target):
            raise MipscError(
                f"{path}:{match['name']} is a {type(target).__name__}: expected an nn.Module, or "
                "a class or function that makes one"
            )
        try:
            made = target()
        except Exception as err:
            raise _user_code_error(err, path, f"calling {match['name']}() failed") from None
    examples = None
    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], torch.nn.Module):
        made, raw = made
        examples = tuple(raw) if isinstance(raw, list | tuple) else (raw,)
    if not isinstance(made, torch.nn.Module):
        raise MipscError(
            f"{path}:{match['name']}() returned a {type(made).__name__}: expected an nn.Module "
            "(or a (module, example_inputs) pair)"
        )
    return made, examples


_DYNAMIC_DIM = re.compile(r"(\d+):(\d+)(?:=([A-Za-z_]\w*))?")
"""A --dynamic-dim value: INPUT:DIM[=NAME]."""


def dynamic_dims_spec(
    specs: Sequence[str], examples: Sequence[Any]
) -> tuple[dict[int, str], ...] | None:
    """`--dynamic-dim INPUT:DIM[=NAME]` flags (0-based) as dynamic_shapes; one NAME = one size.
    A flag naming an input or dim the example inputs do not have is a MipscError."""
    if not specs:
        return None
    count = len(examples)
    shapes: list[dict[int, str]] = [{} for _ in range(count)]
    named: dict[tuple[int, int], tuple[str, str]] = {}
    for spec in specs:
        found = _DYNAMIC_DIM.fullmatch(spec.strip())
        if found is None:
            raise MipscError(
                f"cannot understand --dynamic-dim '{spec}': expected INPUT:DIM or "
                "INPUT:DIM=NAME (0-based), e.g. 0:0=batch"
            )
        index, dim = int(found[1]), int(found[2])
        if index >= count:
            raise MipscError(
                f"--dynamic-dim '{spec}': there is no {input_name(index)}: {count} example "
                f"input{'s' if count != 1 else ''} (--dynamic-dim counts them from 0, as %argN)"
            )
        if (why := _missing_dim(examples[index], index, dim)) is not None:
            raise MipscError(f"--dynamic-dim '{spec}': {why}")
        _name_dim(shapes[index], index, dim, found[3], spec, named)
    return tuple(shapes)


def dynamic_dim_flags(specs: Sequence[str]) -> dict[str, list[tuple[int, int, str]]]:
    """(input, dim, flag value) of each dim name that `--dynamic-dim` flags (checked by
    dynamic_dims_spec) give, as the export names them."""
    flags: dict[str, list[tuple[int, int, str]]] = {}
    for spec in specs:
        found = _DYNAMIC_DIM.fullmatch(spec.strip())
        if found is not None:
            index, dim = int(found[1]), int(found[2])
            name = found[3] or _unnamed_dim(index, dim)
            flags.setdefault(name, []).append((index, dim, spec.strip()))
    return flags


def _unnamed_dim(index: int, dim: int) -> str:
    """The name of a dim that a --dynamic-dim flag gives no NAME."""
    return f"input{index}_dim{dim}"


def _name_dim(
    dims: dict[int, str],
    index: int,
    dim: int,
    name: str | None,
    spec: str,
    named: dict[tuple[int, int], tuple[str, str]],
) -> None:
    """Records dim `dim` of input `index` as dynamic, named `name` (or a name of its own); a
    MipscError when an earlier flag gave the same dim another name (`named`: the flag that
    named each (input, dim))."""
    earlier = named.get((index, dim))
    if name is not None and earlier is not None and earlier[0] != name:
        raise MipscError(
            f"--dynamic-dim '{spec}': dim {dim} of {input_name(index)} is already named "
            f"'{earlier[0]}' by --dynamic-dim '{earlier[1]}': a dim has one size, give it one "
            "name (the same name on several dims makes them one size)"
        )
    if name is not None:
        named[(index, dim)] = (name, spec)
        dims[dim] = name
    else:
        dims.setdefault(dim, _unnamed_dim(index, dim))


def _missing_dim(example: Any, index: int, dim: Any) -> str | None:
    """Why the input at position `index` (from 0) has no dim `dim`, or None when it has."""
    shape = tuple(getattr(example, "shape", ()))
    if isinstance(dim, int) and not isinstance(dim, bool) and 0 <= dim < len(shape):
        return None
    written = "x".join(map(str, shape)) or "a scalar"
    dims = f"its dims are 0 to {len(shape) - 1}" if shape else "it has no dims"
    return (
        f"{input_name(index)} has rank {len(shape)} (shape {written}), so it has no dim "
        f"{dim!r}: {dims}"
    )


def check_dynamic_shapes(dynamic_shapes: Any, examples: Sequence[Any]) -> None:
    """A MipscError for a `{dim: name}` of dynamic_shapes (one per input, in order) that names a
    dim its example input does not have (torch.export ignores it: no dim made dynamic), or
    that gives one name to dims whose examples differ in size."""
    if not isinstance(dynamic_shapes, list | tuple):
        return  # (a dict by argument name, or torch.export's own forms: torch checks them)
    if len(dynamic_shapes) != len(examples):
        raise MipscError(
            f"dynamic_shapes has {len(dynamic_shapes)} entries for {len(examples)} example "
            "inputs: give one per input, in order (None for an input with no dynamic dims)"
        )
    sizes: dict[str, tuple[int, int, int]] = {}
    for index, (spec, example) in enumerate(zip(dynamic_shapes, examples, strict=True)):
        for dim, name in spec.items() if isinstance(spec, dict) else ():
            if (why := _missing_dim(example, index, dim)) is not None:
                raise MipscError(f"dynamic_shapes[{index}] = {spec!r}: {why}")
            name = name if isinstance(name, str) else getattr(name, "__name__", None)
            size = int(example.shape[dim])
            first = sizes.setdefault(name, (index, dim, size)) if name else None
            if first is not None and first[2] != size:
                raise MipscError(_unequal_examples(name, first, (index, dim, size)))


def _unequal_examples(name: str, first: tuple[int, int, int], other: tuple[int, int, int]) -> str:
    """Why two dims of one name cannot be exported with those examples (torch.export said
    "L['b'].size()[1] = 4 is not equal to L['a'].size()[0] = 2")."""
    (i, d, n), (j, e, m) = first, other
    return (
        f"dim {e} of {input_name(j)} and dim {d} of {input_name(i)} are both named '{name}' "
        f"(one name is one size), but their example inputs give them {m} and {n}: give the "
        "example inputs one size for them, or the dims names of their own"
    )
