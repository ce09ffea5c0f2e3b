"""`torch.compile(model, backend="mipsc")`: each graph TorchDynamo captures runs through mipsc.

Registered through the `torch_dynamo_backends` entry point (pyproject.toml), as iree-turbine
registers its own. How it behaves:

- Graph breaks are TorchDynamo's: code it cannot capture runs in Python/torch between the graphs
  it hands to this backend.
- Each graph is compiled on its first call with real inputs (non-strict `torch.export` of the
  graph, then `mipsc.compile`'s road) and cached by its input shapes, dtypes and int values: a
  new shape compiles once, and an identical export anywhere in the process reuses the compiled
  module (no second iree-compile). Module parameters arrive as graph inputs, so the compiled
  graph reads the current weights on every call.
- A graph mipsc cannot export or compile (an op IREE's torch frontend lacks, outputs that are
  not tensors) runs in torch, as torch's eager backend would, with one warning saying why. So
  does a graph called with autograd recording (inputs that require grad while grad mode is on):
  mipsc compiles inference; use `torch.no_grad()` or `torch.inference_mode()`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from mipsc.diagnostics import MipscError


class MipscFallbackWarning(UserWarning):
    """A captured graph runs in torch instead of mipsc; the message says why."""


def backend(gm: Any, example_inputs: Sequence[Any], **_options: Any) -> Callable[..., Any]:
    """The torch.compile backend: takes TorchDynamo's FX graph, returns its callable."""
    return CompiledGraph(gm)


_UNCOMPILED = object()


class CompiledGraph:
    """One captured graph: compiled per input signature on first use, or run in torch."""

    def __init__(self, gm: Any) -> None:
        self.gm = gm
        self.compiled: dict[tuple[Any, ...], Any] = {}
        """By input signature: (CompiledModel, positions of its tensor inputs), or None when
        this signature runs in torch."""
        self._warned = False

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
        key = tuple(_signature(a) for a in args)
        entry = self.compiled.get(key, _UNCOMPILED)
        if entry is _UNCOMPILED:
            entry = self._compile(args)
            self.compiled[key] = entry
        if entry is None:
            return self.gm(*args)
        model, positions, as_list = entry
        results = model(*[args[i] for i in positions])
        results = results if isinstance(results, tuple) else (results,)
        return list(results) if as_list else results

    def _compile(self, args: Sequence[Any]) -> Any:
        import torch

        from mipsc.compiled import compile as compile_model

        outputs = next(n for n in self.gm.graph.nodes if n.op == "output").args[0]
        if not isinstance(outputs, tuple | list) or not all(
            isinstance(getattr(o, "meta", {}).get("example_value"), torch.Tensor) for o in outputs
        ):
            self._fall_back("the graph returns values that are not tensors")
            return None
        positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        gm = self.gm
        if len(positions) != len(args):
            # ints (sizes TorchDynamo made symbolic) are fixed per signature: bind them.
            gm = _bound_ints(self.gm, args)
        try:
            model = compile_model(
                gm, *[args[i] for i in positions], external_weights=False, strict_export=False
            )
        except MipscError as err:
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


def _signature(value: Any) -> Any:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return ("tensor", tuple(shape), str(value.dtype), str(getattr(value, "device", "cpu")))
    return ("value", type(value).__name__, value)


def _bound_ints(gm: Any, args: Sequence[Any]) -> Any:
    """`gm` as a module of its tensor inputs only, the other inputs fixed to their values."""
    import torch

    class Bound(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gm = gm

        def forward(self, *tensors: Any) -> Any:
            it = iter(tensors)
            full = [next(it) if isinstance(a, torch.Tensor) else a for a in args]
            return self.gm(*full)

    return Bound()
