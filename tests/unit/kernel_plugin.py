"""The kernel plugin as the ctypes tests load it: found (MIPSC_PLUGIN, else the built one),
opened, and the import-ABI entry points typed (`int fn(void* params, void*, void*)`)."""

from __future__ import annotations

import ctypes
import os
import pathlib
from collections.abc import Iterable

import pytest

DEFAULT_PLUGIN = pathlib.Path(__file__).resolve().parents[2] / "src/mipsc/_lib/libmips_kernels.so"


def plugin_path() -> pathlib.Path:
    """$MIPSC_PLUGIN (e.g. the sanitized build), else the plugin `make kernels` builds."""
    env = os.environ.get("MIPSC_PLUGIN")
    return pathlib.Path(env) if env else DEFAULT_PLUGIN


def open_plugin(entry_points: Iterable[str]) -> ctypes.CDLL:
    """The plugin with `entry_points` typed as import-ABI kernels; a test failure saying how
    to build it when it is missing."""
    path = plugin_path()
    if not path.is_file():
        pytest.fail(
            f"kernel library {path} not found: run `make kernels` first "
            "(or point MIPSC_PLUGIN at a built libmips_kernels.so)"
        )
    lib = ctypes.CDLL(str(path))
    for name in entry_points:
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p] * 3
        fn.restype = ctypes.c_int
    return lib
