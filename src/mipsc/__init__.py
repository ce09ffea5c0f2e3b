"""mipsc: route the matmuls of PyTorch models to a hand-picked kernel library through IREE.

import mipsc
model = mipsc.load("model.vmfb")   # the kernel plugin is loaded for you
out = model.main(a, b)             # numpy arrays in, numpy arrays out
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mipsc.runtime import Module

__version__ = "0.1.0"


def load(vmfb: str | Path | bytes, *, plugin: str | Path | None = None) -> Module:
    """Load a `.vmfb` made by `mipsc compile`; see `mipsc.runtime.Module`."""
    from mipsc.runtime import load as load_module

    return load_module(vmfb, plugin=plugin)


__all__ = ["__version__", "load"]
