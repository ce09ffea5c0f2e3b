"""Shared pieces of the end-to-end tests: compile with mipsc, run through the plugin, count calls."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from mipsc.options import CompileOptions
from mipsc.pipeline import compile_module
from mipsc.runtime import plugin_path

# Under `make test` the end-to-end tests also run against the sanitized plugin, with libasan
# preloaded into this process; the tools the tests start (iree-compile) need none of it and
# run about twice as slow with it.
if "libasan" in os.environ.get("LD_PRELOAD", ""):
    del os.environ["LD_PRELOAD"]


@pytest.fixture(scope="session")
def plugin() -> Path:
    """The kernel plugin; the suite fails (not skips) without it: run `make kernels`."""
    return plugin_path()


class KernelCalls:
    """The plugin's debug counters: IREE loads the same library, so they count its calls."""

    def __init__(self, path: Path) -> None:
        self._lib = ctypes.CDLL(str(path))
        self._lib.mips_debug_call_count.restype = ctypes.c_uint64
        self._lib.mips_debug_call_count.argtypes = [ctypes.c_char_p]
        self._lib.mips_debug_thread_count.restype = ctypes.c_uint64
        self._lib.mips_debug_thread_count.argtypes = []
        self._lib.mips_debug_reset_counts.restype = None
        self._lib.mips_debug_reset_counts.argtypes = []

    def __getitem__(self, symbol: str) -> int:
        """Calls of `symbol`; for mips_matmul_<t>, with those of mips_matmul_packed_<t> and
        mips_matmul_packed_epilogue_<t>, which compute the same tiles when pack-weights packed
        a constant B (`exact` tells apart)."""
        count = self.exact(symbol)
        if (packed := symbol.replace("mips_matmul_", "mips_matmul_packed_", 1)) != symbol:
            count += self.exact(packed)
            count += self.exact(symbol.replace("mips_matmul_", "mips_matmul_packed_epilogue_", 1))
        return count

    def exact(self, symbol: str) -> int:
        """Calls of exactly `symbol`."""
        return int(self._lib.mips_debug_call_count(symbol.encode()))

    @property
    def threads(self) -> int:
        """How many distinct threads entered any kernel since the last reset."""
        return int(self._lib.mips_debug_thread_count())

    def reset(self) -> None:
        """Zero the call and thread counts (tests that compare before/after are unaffected)."""
        self._lib.mips_debug_reset_counts()


@pytest.fixture(scope="session")
def kernel_calls(plugin: Path) -> KernelCalls:
    return KernelCalls(plugin)


@pytest.fixture(scope="session")
def compile_text(tmp_path_factory: pytest.TempPathFactory):
    """Compile MLIR text with `mipsc compile`'s pipeline; returns the .vmfb path (read it,
    never write it). The same text, name and options are compiled once per session: many
    tests (and parametrized cases) run one module on different inputs."""
    folder = tmp_path_factory.mktemp("compiled")
    done: dict[tuple[str, str, tuple[str, ...], str], Path] = {}

    def compile_(
        text: str,
        name: str = "model.mlir",
        flags: tuple[str, ...] = (),
        kernel_backend: str = "builtin",
    ) -> Path:
        key = (text, name, tuple(flags), kernel_backend)
        if key not in done:
            out = folder / f"{len(done)}.{Path(name).stem}.{kernel_backend}.vmfb"
            options = CompileOptions(kernel_backend=kernel_backend, iree_flags=tuple(flags))
            compile_module(text, name, out, options)
            done[key] = out
        return done[key]

    return compile_
