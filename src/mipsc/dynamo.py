"""`torch.compile(model, backend="mipsc")`: each graph TorchDynamo captures runs through mipsc.

Registered through the `torch_dynamo_backends` entry point (pyproject.toml), as iree-turbine
registers its own. How it behaves:

- `torch.compile(..., options={...})` gives CompileOptions fields (`workers`,
  `kernel_backend`, `iree_flags`, ...) for every graph; an unknown one is a MipscError.
- Graph breaks are TorchDynamo's: code it cannot capture runs in Python/torch between the graphs
  it hands to this backend.
- Each graph is compiled on its first call with real inputs (non-strict `torch.export` of the
  graph, then `mipsc.compile`'s road) and cached by its input shapes, dtypes and int values: a
  new shape compiles once, and an identical export anywhere in the process reuses the compiled
  module (no second iree-compile). Module parameters arrive as graph inputs, so the compiled
  graph reads the current weights on every call.
- A graph TorchDynamo made dynamic (after a second shape, its automatic dynamic shapes) is
  compiled once with those dims dynamic, and serves every size of them from 2 up (TorchDynamo
  itself sends sizes 0 and 1 to a graph of their own). Its int inputs that are such sizes are
  read from the tensors' shapes. A graph whose symbolic sizes are not plain symbols (e.g. a
  dim of `2*s0`) is compiled per shape as above, and so is a graph whose dynamic compile
  fails (a reshape to a derived size such as `x.view(b, t // 2, 2 * c)`, which torch.export
  cannot prove for every t): the `mipsc.dynamo` logger says why, once per graph.
- A graph that changes its inputs in place (`x.add_(1)`, a KV-cache buffer written with
  `cache[:, :, pos] = k`: TorchDynamo passes buffers as inputs) compiles too: IREE writes the
  new contents into the input's memory (or into a copy that is copied back).
- A graph mipsc cannot export or compile (an op IREE's torch frontend lacks, outputs that are
  not tensors) runs in torch, as torch's eager backend would, with one warning saying why. So
  does a graph called with autograd recording (inputs that require grad while grad mode is on):
  mipsc compiles inference; use `torch.no_grad()` or `torch.inference_mode()`.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mipsc.diagnostics import MipscError
from mipsc.frontends.dim_constraints import DimWords, DynamicDimError
from mipsc.options import DEFAULT_OPTIONS, CompileOptions

LOG = logging.getLogger("mipsc.dynamo")
"""Where the backend says how it compiles a graph when that is not the plan (per shape after
a failed dynamic compile)."""


_TOLD_PER_SHAPE: set[str] = set()
"""The code of the graphs LOG said compile per shape (the message is given once for each)."""


_COMPILE_LOCK = threading.RLock()
"""Held while a graph is exported and compiled when torch has no TorchDynamo compile lock."""


def compile_lock() -> Any:
    """The lock held while a graph is exported and compiled: TorchDynamo's own compile lock
    (`torch._dynamo.convert_frame.compile_lock`, an RLock), else _COMPILE_LOCK.

    Non-strict torch.export patches `torch.nn.Module.__call__` and installs its tracing modes
    for the whole process, so an export must run neither beside another (a compiled model
    first called from several threads at once: "Detected that you are using FX to
    symbolically trace a dynamo-optimized function", "ProxyTorchDispatchMode slot already
    occupied") nor beside TorchDynamo tracing the model in another thread. Re-entrant: a
    failed dynamic compile retries per shape while holding it."""
    from torch._dynamo import convert_frame

    return getattr(convert_frame, "compile_lock", _COMPILE_LOCK)


class MipscFallbackWarning(UserWarning):
    """A captured graph runs in torch instead of mipsc; the message says why."""


def backend(
    gm: Any,
    example_inputs: Sequence[Any],
    options: Mapping[str, Any] | None = None,
    **_settings: Any,
) -> Callable[..., Any]:
    """The torch.compile backend: takes TorchDynamo's FX graph, returns its callable.

    `options` are torch.compile's `options=`: fields of mipsc.options.CompileOptions
    (`{"workers": 1, "kernel_backend": "openblas", "iree_flags": [...]}`), which were ignored;
    an unknown one is a MipscError naming the known ones. Weights are always inline (each
    graph reads them as inputs)."""
    return CompiledGraph(gm, compile_options(options))


def compile_options(given: Mapping[str, Any] | None) -> CompileOptions:
    """torch.compile's `options=` as CompileOptions; MipscError for an unknown field."""
    try:
        return DEFAULT_OPTIONS.replace(**dict(given or {}))
    except TypeError as err:
        raise MipscError(f"torch.compile(..., backend='mipsc', options=...): {err}") from None


_UNCOMPILED = object()


class CompiledGraph:
    """One captured graph: compiled per input signature on first use, or run in torch."""

    def __init__(self, gm: Any, options: CompileOptions = DEFAULT_OPTIONS) -> None:
        self.gm = gm
        self.options = options
        self.compiled: dict[tuple[Any, ...], Any] = {}
        """By input signature: (CompiledModel, positions of its tensor inputs), or None when
        this signature runs in torch."""
        self._warned = False
        self.plan = DynamicPlan.of(gm)
        """How to compile the graph once for all sizes of its symbolic dims, or None."""
        self.input_names = [_input_name(n, p) for p, n in enumerate(_placeholders(gm))]
        """How the user's code names each graph input (read now: TorchDynamo drops its
        record of the sources after the backend returns)."""

    def __call__(self, *args: Any) -> Any:
        import torch

        if torch.is_grad_enabled() and any(
            isinstance(a, torch.Tensor) and a.requires_grad for a in args
        ):
            self._fall_back(
                "autograd is recording (inputs require grad): mipsc compiles inference; call "
                "the model under torch.no_grad() or torch.inference_mode()"
            )
            return self.gm(*args)
        entry = self._entry(args)
        if entry is None:
            return self.gm(*args)
        model, positions, as_list = entry
        results = model(*[args[i] for i in positions])
        results = tuple(results) if isinstance(results, tuple | list) else (results,)
        return list(results) if as_list else results

    def _entry(self, args: Sequence[Any]) -> Any:
        """The compiled entry of these arguments' signature (None: run in torch), compiled on
        first use: once for all sizes when the plan serves them, else for this shape. A graph
        whose dynamic compile fails (a reshape to a derived size, `x.view(b, t // 2, 2 * c)`,
        which torch.export cannot prove for every t) is compiled per shape from then on."""
        dynamic = self.plan is not None and self.plan.serves(args)
        key = self.plan.signature(args) if dynamic else tuple(_signature(a) for a in args)
        entry = self.compiled.get(key, _UNCOMPILED)
        if entry is not _UNCOMPILED:
            return entry
        with compile_lock():
            # Another thread may have compiled this signature while this one waited.
            entry = self.compiled.get(key, _UNCOMPILED)
            if entry is not _UNCOMPILED:
                return entry
            try:
                entry = self._compile(args, self.plan if dynamic else None)
            except _DynamicCompileFailed as failed:
                return self._per_shape_entry(args, failed.reason)
            self.compiled[key] = entry
            return entry

    def _per_shape_entry(self, args: Sequence[Any], reason: str) -> Any:
        """After the compile for all sizes failed: the entry of this shape, from now on
        compiled per shape, said once per graph (TorchDynamo may capture the same code again,
        a recompile); when this shape does not compile either, the fallback warning says so."""
        self.plan = None
        entry = self._entry(args)
        if entry is not None and self.gm.code not in _TOLD_PER_SHAPE:
            _TOLD_PER_SHAPE.add(self.gm.code)
            LOG.warning(
                "mipsc: a graph with dynamic sizes compiles once per shape instead: %s", reason
            )
        return entry

    def _compile(self, args: Sequence[Any], plan: DynamicPlan | None) -> Any:
        import torch

        from mipsc.compiled import compile as compile_model

        outputs = next(n for n in self.gm.graph.nodes if n.op == "output").args[0]
        if not isinstance(outputs, tuple | list) or not all(
            isinstance(getattr(o, "meta", {}).get("example_value"), torch.Tensor) for o in outputs
        ):
            self._fall_back("the graph returns values that are not tensors")
            return None
        positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        gm, dynamic_shapes = self.gm, None
        if plan is not None:
            # forward(*tensors): torch.export takes the specs under the varargs' name.
            gm = _sizes_from_shapes(self.gm, args, plan)
            dynamic_shapes = {"tensors": plan.dynamic_shapes()}
        elif len(positions) != len(args):
            # ints (sizes TorchDynamo made symbolic) are fixed per signature: bind them.
            gm = _bound_ints(self.gm, args)
        tensors = [args[i] for i in positions]
        try:
            model = compile_model(
                gm,
                *tensors,
                dynamic_shapes=dynamic_shapes,
                options=self.options,
                external_weights=False,
                strict_export=False,
            )
        except MipscError as err:
            if plan is not None:
                reason = _dynamic_failure(err, plan.places(self.input_names))
                raise _DynamicCompileFailed(reason) from None
            self._fall_back(err.render())
            return None
        return model, positions, isinstance(outputs, list)

    def _fall_back(self, reason: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"mipsc: a captured graph runs in torch instead: {reason}",
                MipscFallbackWarning,
                stacklevel=3,
            )


class _DynamicCompileFailed(Exception):
    """A graph's compile for all sizes of its dynamic dims failed; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _dynamic_failure(err: MipscError, places: dict[str, list[str]]) -> str:
    """Why the compile for all sizes failed, in one line: the dims torch.export refused, named
    as the graph's inputs (`dim 1 of x`), with what they need; else torch.export's own reason
    (the error's first note) when it could not trace, iree-turbine's when it could not import
    what torch.export traced (a symbolic float, `x.shape[-1] ** 0.5`), else the error. The
    module it traced is mipsc's wrapper of the graph (_sizes_from_shapes), whose name means
    nothing to the user."""
    if isinstance(err, DynamicDimError):
        return err.said_with(GraphWords(places), "the graph").message
    for stage, said in _EXPORT_STAGES.items():
        if stage in err.message and err.notes:
            return f"{said} it for every size: {_first(err.notes[0]).split(_NODE_META)[0]}"
    where = f"{err.location}: " if err.location else ""
    return f"{where}{_first(err.message)}"


_EXPORT_STAGES = {
    "could not trace": "torch.export could not trace",
    "could not import": "iree-turbine could not import",
}
"""The stages of from_torch's export whose error names mipsc's wrapper module (which means
nothing to the user) and gives the reason as its first note, by what the message says."""

_NODE_META = ", {'stack_trace'"
"""Where an FX node's metadata starts in iree-turbine's `Unimplemented call_function: target=
<function sym_float ...>, {'stack_trace': ...}` (a page of it, on one line)."""


class GraphWords(DimWords):
    """A dim TorchDynamo made dynamic, named by the graph's input (`dim 1 of x`); one fix for
    every need: none is needed, the graph compiles per shape (as the log line says)."""

    def _per_shape(self, *_: str) -> str:
        return "no action needed (torch.compile(..., dynamic=False) skips this try)"

    unmark = one_name = derived = bounds = multiple = bigger_example = _per_shape  # type: ignore[assignment]


def _first(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _signature(value: Any) -> Any:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return ("tensor", tuple(shape), str(value.dtype), str(getattr(value, "device", "cpu")))
    return ("value", type(value).__name__, value)


def _bound_ints(gm: Any, args: Sequence[Any]) -> Any:
    """`gm` as a module of its tensor inputs only, the other inputs fixed to their values."""
    import torch

    class CapturedGraph(torch.nn.Module):  # (the name torch.export errors show)
        def __init__(self) -> None:
            super().__init__()
            self.gm = gm

        def forward(self, *tensors: Any) -> Any:
            it = iter(tensors)
            full = [next(it) if isinstance(a, torch.Tensor) else a for a in args]
            return self.gm(*full)

    return CapturedGraph()


@dataclass(frozen=True)
class DynamicPlan:
    """How a graph with symbolic sizes compiles once: its tensor inputs' symbolic dims by
    symbol name, and where each int input (a symbolic size) is read from."""

    dims: dict[int, dict[int, str]]
    """Input position -> {dim: symbol name} of a tensor input with symbolic dims."""
    int_sources: dict[int, tuple[int, int]]
    """Input position of an int (a size) -> (position of a tensor input, its dim)."""
    tensor_positions: tuple[int, ...]

    @staticmethod
    def of(gm: Any) -> DynamicPlan | None:
        """The plan of `gm`'s placeholders, or None when it has no symbolic dims or one that
        is not a plain symbol."""
        import torch

        values = [n.meta.get("example_value") for n in gm.graph.nodes if n.op == "placeholder"]
        dims: dict[int, dict[int, str]] = {}
        for position, value in enumerate(values):
            if isinstance(value, torch.Tensor):
                symbolic = {d: _symbol(s) for d, s in enumerate(value.shape) if _is_sym(s)}
                if symbolic:
                    dims[position] = symbolic  # type: ignore[assignment]
        where = {name: (p, d) for p, found in dims.items() for d, name in found.items()}
        int_sources = {p: where.get(_symbol(v)) for p, v in enumerate(values) if _is_sym(v)}
        names = [n for found in dims.values() for n in found.values()]
        if not dims or None in names or None in int_sources.values():
            return None
        tensors = tuple(p for p, v in enumerate(values) if isinstance(v, torch.Tensor))
        return DynamicPlan(dims, int_sources, tensors)  # type: ignore[arg-type]

    def serves(self, args: Sequence[Any]) -> bool:
        """Whether these call arguments fit the plan: every symbolic dim at least 2."""
        return all(
            len(getattr(args[p], "shape", ())) > max(found)
            and all(args[p].shape[d] >= 2 for d in found)
            for p, found in self.dims.items()
        )

    def signature(self, args: Sequence[Any]) -> tuple[Any, ...]:
        """The cache key of a call: the symbolic dims and the int sizes left out."""
        key: list[Any] = ["dynamic"]
        for position, arg in enumerate(args):
            if position in self.int_sources:
                continue
            kind, shape, *rest = _signature(arg)
            found = self.dims.get(position, {})
            if kind == "tensor":
                shape = tuple(None if d in found else s for d, s in enumerate(shape))
            key.append((kind, shape, *rest))
        return tuple(key)

    def places(self, names: Sequence[str]) -> dict[str, list[str]]:
        """Where each symbolic dim is, by its name: `dim 1 of x`, `names` naming the graph's
        inputs."""
        places: dict[str, list[str]] = {}
        for position, found in self.dims.items():
            for dim, name in found.items():
                places.setdefault(name, []).append(f"dim {dim} of {names[position]}")
        return places

    def dynamic_shapes(self) -> tuple[dict[int, str] | None, ...]:
        """torch.export's dynamic_shapes for the tensor inputs, in order, dims by name."""
        return tuple(self.dims.get(p) for p in self.tensor_positions)


def _placeholders(gm: Any) -> list[Any]:
    return [n for n in gm.graph.nodes if n.op == "placeholder"]


def _input_name(node: Any, position: int) -> str:
    """How the user's code names a graph input: `x` for TorchDynamo's source `L['x']`, else its
    source as TorchDynamo writes it, else its position."""
    source = getattr(node.meta.get("grapharg"), "source", None)
    written = getattr(source, "name", None)
    if not isinstance(written, str):
        return f"graph input {position + 1}"
    return re.sub(r"^L\['(\w+)'\]", r"\1", written)


def _is_sym(value: Any) -> bool:
    """Whether `value` is a symbolic size; a SymInt that TorchDynamo fixed to a number (as
    `dynamic=True` makes every size) is not."""
    import torch

    return isinstance(value, torch.SymInt) and not value.node.expr.is_number


def _symbol(value: Any) -> str | None:
    """The name of a SymInt that is a plain symbol (`s0`), else None."""
    expr = value.node.expr
    return str(expr) if getattr(expr, "is_Symbol", False) else None


def _sizes_from_shapes(gm: Any, args: Sequence[Any], plan: DynamicPlan) -> Any:
    """`gm` as a module of its tensor inputs only, each int input read from the dim of the
    tensor input the plan names (so torch.export traces it as that symbolic size)."""
    import torch

    positions = plan.tensor_positions

    class CapturedGraph(torch.nn.Module):  # (the name torch.export errors show)
        def __init__(self) -> None:
            super().__init__()
            self.gm = gm

        def forward(self, *tensors: Any) -> Any:
            full: list[Any] = list(args)
            for position, tensor in zip(positions, tensors, strict=True):
                full[position] = tensor
            for position, (source, dim) in plan.int_sources.items():
                full[position] = full[source].shape[dim]
            return self.gm(*full)

    return CapturedGraph()
