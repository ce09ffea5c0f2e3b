"""`mipsc.compile`: a PyTorch module in, a loaded model whose matmuls run in the kernels out.

The road is the command line's: iree-turbine's `aot.export` → torch MLIR → mipsc's pipeline
(parse, convert-torch-to-mips, lower-mips-to-call) → iree-compile → `.vmfb`, loaded with the
kernel plugin. Nothing is written beside the caller's files unless `save` is called.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mipsc.diagnostics import MipscError
from mipsc.kernel_abi import resolve_kernel_link
from mipsc.options import DEFAULT_OPTIONS, CompileOptions
from mipsc.pipeline import compile_module, silent
from mipsc.remarks import Remark, collect_remarks, format_report


class CompiledModel:
    """A compiled module, called like the original: `model(x)` or `model.forward(x)`.

    Inputs are numpy arrays (bf16: `ml_dtypes.bfloat16`) or torch tensors, in the order of the
    module's `forward` (or by its parameters' names, `model(x, mask=m)`); the outputs are of
    the same kind (torch tensors when any input was one), in the structure forward returns (a
    tensor, a tuple, a list, a dict, nested). Shapes must be
    the example inputs' except in the dims made dynamic. A mismatch is a `MipscError` naming the
    input. An input forward changes in place (`x.add_(1)`) is changed for the caller too, and
    buffers forward changes keep their state in the compiled model between calls. Inference
    only: outputs never require grad.
    """

    def __init__(
        self,
        *,
        vmfb: bytes,
        mlir: str,
        parameters: Path | None,
        remarks: list[Remark],
        workdir: tempfile.TemporaryDirectory[str],
        plugin: str | Path | None = None,
        out_spec: Any = None,
        signature: inspect.Signature | None = None,
    ) -> None:
        from mipsc.frontends.from_torch import PARAMETER_SCOPE
        from mipsc.runtime import Module

        self.vmfb = vmfb
        """The compiled module's bytes (what `mipsc compile` writes as a .vmfb)."""
        self.mlir = mlir
        """The torch MLIR that iree-turbine exported (what mipsc compiled)."""
        self.parameters = parameters
        """The .irpa holding the weights (scope `model`), or None when they are inline."""
        self.remarks = remarks
        """What mipsc decided about each matmul-family op (see `report`)."""
        self._workdir = workdir  # holds the .irpa for as long as the model lives
        # Removed when the model is collected (or at exit), quietly: left to the
        # TemporaryDirectory's own finalizer, its removal warns (ResourceWarning).
        self._remove_workdir = weakref.finalize(self, workdir.cleanup)
        scoped = {PARAMETER_SCOPE: parameters} if parameters is not None else None
        self.module = Module(vmfb, plugin=plugin, parameters=scoped)
        self.module.name = "<compiled model>"
        self.module.written_inputs["main"] = written_inputs(mlir)
        self._out_spec = out_spec  # forward's output structure (torch's pytree spec)
        self._signature = signature  # forward's, to place inputs given by keyword

    def close(self) -> None:
        """Remove the model's folder (the .irpa of external weights) now rather than when the
        model is collected; `save` cannot copy the .irpa after this."""
        self._remove_workdir()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            args = self._in_order(args, kwargs)
        results = self.module.function("main")(*args)
        return _structured(results, self._out_spec)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The same as calling the model."""
        return self(*args, **kwargs)

    def _in_order(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """The inputs in forward's order, those given by keyword placed by forward's parameter
        names; a MipscError when forward's signature is unknown or does not take them so."""
        if self._signature is None:
            raise MipscError(
                f"this compiled model takes its inputs by position, and {', '.join(kwargs)} "
                "was given by keyword: pass every input by position, in forward's order"
            )
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as err:
            raise MipscError(f"the inputs do not fit forward{self._signature}: {err}") from None
        return bound.args

    @property
    def report(self) -> str:
        """Per function, each matmul-family op, its shapes and dtype, and the kernel it calls
        (or why it stays on IREE's path): `mipsc compile --report`'s text."""
        return format_report(self.remarks)

    @property
    def routed(self) -> tuple[int, int]:
        """(matmul-family ops that run in the kernels, all matmul-family ops)."""
        rows = [r for r in self.remarks if r.routed is not None]
        return sum(1 for r in rows if r.routed), len(rows)

    def save(self, path: str | Path) -> list[Path]:
        """Write the .vmfb to `path` and, for external weights, the .irpa beside it (same stem).

        Returns the files written; run them with `mipsc run PATH --parameters=PATH.irpa`.
        """
        out = Path(path)
        try:
            out.write_bytes(self.vmfb)
            written = [out]
            if self.parameters is not None:
                irpa = out.with_suffix(".irpa")
                shutil.copyfile(self.parameters, irpa)
                written.append(irpa)
        except OSError as err:
            from mipsc.diagnostics import MipscError

            raise MipscError(f"cannot write '{err.filename}': {err.strerror}") from None
        return written


def _forward_signature(module: Any) -> inspect.Signature | None:
    """forward's signature (a function's own), or None when Python cannot describe it."""
    try:
        return inspect.signature(getattr(module, "forward", module))
    except (TypeError, ValueError):
        return None


def _structured(results: Any, out_spec: Any) -> Any:
    """The module's flat results in the structure forward returned (a dict, a list, nested
    tuples), as torch's pytree spec `out_spec` records it; as they are without one."""
    if out_spec is None:
        return results
    leaves = list(results) if isinstance(results, tuple) else [results]
    if out_spec.num_leaves != len(leaves):
        return results
    from torch.utils import _pytree as pytree

    return pytree.tree_unflatten(leaves, out_spec)


_MAIN_SIGNATURE = re.compile(r"func\.func @main\((?P<args>[^\n]*?)\)\s*(?:->|attributes|\{)")
_MUTABLE_ARG = re.compile(r"%arg(?P<index>\d+): !torch\.tensor<")


def written_inputs(mlir: str) -> tuple[int, ...]:
    """The positions of `main`'s inputs that it changes in place: iree-turbine exports an input
    that forward mutates (`x.add_(1)`, `cache[:, pos] = k` on an input, or a buffer TorchDynamo
    passes as one) as a mutable `!torch.tensor` argument, which IREE overwrites in place."""
    found = _MAIN_SIGNATURE.search(mlir)
    if found is None:
        return ()
    return tuple(int(m["index"]) for m in _MUTABLE_ARG.finditer(found["args"]))


def compile(
    module: Any,
    *example_args: Any,
    dynamic_shapes: Any = None,
    options: CompileOptions = DEFAULT_OPTIONS,
    plugin: str | Path | None = None,
    progress: Callable[[str], None] = silent,
    strict_export: bool = True,
    **option_values: Any,
) -> CompiledModel:
    """Compile a PyTorch module for the CPU with every float matmul in mipsc's kernels.

    `module` is a `torch.nn.Module` (or a function of tensors); `example_args` are tensors or
    numpy arrays of the shapes and dtypes it will be called with, in forward's order (or one
    tuple of them, as torch.export takes them: `mipsc.compile(model, (a, b))`).
    `dynamic_shapes` marks dims that may change, as torch.export takes it: one `{dim: Dim}` (or
    `{dim: "name"}`; one name is one size) per input, e.g. `({0: "batch"},)`. `options` are
    `mipsc compile`'s (mipsc.options.CompileOptions); any of its fields may also be given as a
    keyword (`kernel_backend="openblas"`, `kernel_link="plugin"`, `workers=4`, `iree_flags=[...]`,
    `external_weights=True`: weights are inlined up to 16 MiB and put in a parameter file
    (.irpa) above, unless forced).

    Needs the `mipsc[torch]` extra. Every failure (an untraceable module, an op IREE cannot
    compile) is a `MipscError`; an unknown option is a TypeError.
    """
    from mipsc.frontends.from_torch import export_module

    example_args = _positional(example_args, option_values)
    options = _with_kernel_link(options.replace(**option_values))
    workdir = tempfile.TemporaryDirectory(prefix="mipsc-")
    work = Path(workdir.name)
    progress("exporting with iree-turbine (aot.export)")
    try:
        exported = export_module(
            module,
            example_args,
            dynamic_shapes=dynamic_shapes,
            options=options,
            parameters_file=work / "model.irpa",
            strict=strict_export,
        )
        vmfb, remarks = _compiled(exported.mlir, exported.name, options, work, progress)
    except BaseException:
        # Else the directory (and any .irpa in it) lives as long as the error's traceback,
        # and a torch.compile fallback leaves one per failed graph, with a ResourceWarning.
        workdir.cleanup()
        raise
    return CompiledModel(
        vmfb=vmfb,
        mlir=exported.mlir,
        parameters=exported.parameters,
        remarks=remarks,
        workdir=workdir,
        plugin=plugin,
        out_spec=exported.out_spec,
        signature=_forward_signature(module),
    )


def _positional(example_args: tuple[Any, ...], option_values: dict[str, Any]) -> tuple[Any, ...]:
    """The example inputs, also when given as torch.export takes them: one tuple or list of
    them (`mipsc.compile(model, (a, b))`). Keyword inputs are refused, saying what to write."""
    if "kwargs" in option_values or "args" in option_values:
        raise MipscError(
            "mipsc.compile takes the example inputs by position, in the order of forward's "
            "parameters: mipsc.compile(model, a, b) or mipsc.compile(model, (a, b)); an input "
            "forward takes by keyword goes in its place in that order"
        )
    if len(example_args) == 1 and isinstance(example_args[0], tuple | list):
        inner = tuple(example_args[0])
        if inner and all(_is_array_like(a) for a in inner):
            return inner
    return example_args


def _is_array_like(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _with_kernel_link(options: CompileOptions) -> CompileOptions:
    """`options` with its kernel link resolved (kernel_abi.resolve_kernel_link): the
    $MIPSC_KERNEL_LINK of this call is then part of what the cache keys on."""
    try:
        link = resolve_kernel_link(options.kernel_link, options.kernel_backend)
    except ValueError as err:
        raise MipscError(str(err)) from None
    return options.replace(kernel_link=link)


def _compiled(
    mlir: str, name: str, options: CompileOptions, work: Path, progress: Callable[[str], None]
) -> tuple[bytes, list[Remark]]:
    """The .vmfb and the remarks of `mlir` compiled with `options`: from this process's cache
    when the same module was compiled with the same options before."""
    # Keyed without source locations: the same graph traced from two call sites is one module.
    unlocated = _LOCATION.sub("", mlir)
    key = hashlib.sha256(repr(options).encode() + unlocated.encode()).hexdigest()
    if key in _CACHE:
        progress("the same module was compiled before in this process: reusing it")
    else:
        with collect_remarks() as remarks:
            compile_module(mlir, name, work / "model.vmfb", options, progress=progress)
        _CACHE[key] = ((work / "model.vmfb").read_bytes(), list(remarks))
    vmfb, found = _CACHE[key]
    return vmfb, list(found)


_LOCATION = re.compile(r' ?loc\("[^"\n]*":\d+:\d+\)')
_CACHE: dict[str, tuple[bytes, list[Remark]]] = {}
"""Compiled modules of this process by (options, exported MLIR): an identical export (e.g. a
torch.compile recompile of the same graph) skips iree-compile."""
