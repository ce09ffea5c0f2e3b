"""mipsc: route the matmuls of PyTorch models to a hand-picked kernel library through IREE.

import mipsc
model = mipsc.load("model.vmfb")   # the kernel plugin is loaded for you
out = model.main(a, b)             # numpy arrays in, numpy arrays out (bf16: ml_dtypes.bfloat16)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mipsc.runtime import Module, Parameters

__version__ = "0.1.0"


def load(
    vmfb: str | Path | bytes,
    *,
    plugin: str | Path | None = None,
    parameters: Parameters | None = None,
) -> Module:
    """Load a `.vmfb` made by `mipsc compile`; see `mipsc.runtime.Module`.

    `parameters={"model": "weights.irpa"}` supplies external weights, per scope.
    """
    from mipsc.runtime import load as load_module

    return load_module(vmfb, plugin=plugin, parameters=parameters)


__all__ = ["__version__", "load"]
