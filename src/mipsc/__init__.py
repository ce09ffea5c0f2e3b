"""mipsc: route the matmuls of PyTorch models to a hand-picked kernel library through IREE.

import mipsc
model = mipsc.compile(torch_module, example_input)   # needs `pip install 'mipsc[torch]'`
out = model(x)                     # numpy arrays or torch tensors in, the same kind out
model = mipsc.load("model.vmfb")   # a .vmfb from `mipsc compile`; the kernel plugin is loaded
out = model.main(a, b)             # numpy arrays in, numpy arrays out (bf16: ml_dtypes.bfloat16)
mipsc.set_threads(1)               # before the first load: calls run in the calling thread
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:
    from pathlib import Path

    from mipsc.compiled import CompiledModel
    from mipsc.runtime import Module, Parameters

__version__ = "0.1.0"


def load(
    vmfb: str | Path | bytes,
    *,
    plugin: str | Path | None = None,
    parameters: Parameters | None = None,
) -> Module:
    """Load a `.vmfb` made by `mipsc compile`; see `mipsc.runtime.Module`.

    `parameters={"model": "weights.irpa"}` supplies external weights, per scope; a single file,
    `parameters="weights.irpa"`, serves a module that reads one scope. Errors are `MipscError`.
    """
    from mipsc.runtime import load as load_module

    return load_module(vmfb, plugin=plugin, parameters=parameters)


def set_threads(count: int) -> None:
    """Run this process's modules on `count` threads; call it before the first `load`.

    1 runs every call in the calling thread (IREE's local-sync device); more is IREE's
    local-task device with `count` worker threads. Without it, IREE picks one worker per
    physical core. `count` is an int from 1 to 256 (`mipsc.options.MAX_THREADS`); the count
    the device already runs is no change. Errors are `MipscError`; see `mipsc.runtime.set_threads`.
    """
    from mipsc.runtime import set_threads as set_runtime_threads

    set_runtime_threads(count)


def compile(module: _Any, *example_args: _Any, **options: _Any) -> CompiledModel:
    """Compile a torch `nn.Module` called on `example_args` (tensors or numpy arrays) into a
    model called like it, whose float matmuls run in mipsc's kernels.

    Options: `dynamic_shapes` (torch.export's, or `({0: "batch"},)`), `plugin`, `options` (a
    `mipsc.options.CompileOptions`) or any of its fields as a keyword (`external_weights`,
    `target_cpu`, `kernel_backend`, `kernel_link`, `workers`, `iree_flags`); see
    `mipsc.compiled.compile`.
    Needs `pip install 'mipsc[torch]'`.
    """
    from mipsc.compiled import compile as compile_model

    return compile_model(module, *example_args, **options)


__all__ = ["MipscError", "__version__", "compile", "load", "set_threads"]


def __getattr__(name: str) -> _Any:
    if name == "MipscError":  # every user-facing failure; imported on first use (it needs xDSL)
        from mipsc.diagnostics import MipscError

        return MipscError
    raise AttributeError(f"module 'mipsc' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
