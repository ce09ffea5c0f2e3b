"""The kernel plugin: where it is, what it provides, whether its kernel ABI is this mipsc's,
and handing it to IREE before the process's device exists (with OpenBLAS for its openblas
backend).

IREE reads `--executable_plugin` once per process, when the first local device is created, so
the plugin is configured here before any device exists, and every module of this process
shares that device.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import time
from functools import cache
from pathlib import Path
from typing import Any

from mipsc.diagnostics import MipscError
from mipsc.kernel_abi import (
    ABI_VERSION_SYMBOL,
    EMBEDDED_ABI_TAG,
    EMBEDDED_WORKSPACE_MAX_BYTES,
    KERNEL_ABI_VERSION,
    KERNEL_INFO_SYMBOL,
    KERNEL_SYMBOLS,
    OPENBLAS_ENV,
    OPENBLAS_ERROR_SYMBOL,
    OPENBLAS_SYMBOL,
    PLUGIN_ENV,
    PLUGIN_FILE,
)
from mipsc.kernel_config import host_l2_bytes
from mipsc.options import MAX_THREADS

DEVICE = "local-task"
"""The device modules run on: IREE's multi-threaded CPU device, its worker threads running
the dispatches while the calling thread waits."""
SYNC_DEVICE = "local-sync"
"""The device of one thread (`set_threads(1)`, or a process allowed a single CPU): the
calling thread runs the dispatches itself, so it never waits for a worker."""

_KNOWN_KERNELS = frozenset(KERNEL_SYMBOLS)
# Longest first: mips_matmul_openblas_f32 is not read as anything shorter.
_KERNEL_NAME = re.compile(
    b"|".join(re.escape(s.encode()) for s in sorted(_KNOWN_KERNELS, key=len, reverse=True))
)

_configured_plugin: Path | None = None


def plugin_path() -> Path:
    """The kernel plugin: $MIPSC_PLUGIN if set, else the one `make kernels` builds."""
    path = Path(os.environ.get(PLUGIN_ENV) or Path(__file__).parents[1] / "_lib" / PLUGIN_FILE)
    if not path.is_file():
        hint = f"${PLUGIN_ENV} points" if os.environ.get(PLUGIN_ENV) else "expected"
        raise MipscError(
            f"kernel plugin not found ({hint} at {path}); build it with `make kernels`"
        )
    return path.resolve()


OPENBLAS_PACKAGE = "scipy_openblas32"
OPENBLAS_FIX = (
    f"install it with `pip install scipy-openblas32` (or `pip install 'mipsc[openblas]'`), or "
    f"set {OPENBLAS_ENV} to an OpenBLAS library (libopenblas.so)"
)


def _packaged_openblas() -> Path | None:
    """The library of the scipy-openblas32 wheel, if installed.

    Found without importing the package: its import loads OpenBLAS into the process (with
    RTLD_GLOBAL and a thread pool) even when no module of this process calls it.
    """
    try:
        spec = importlib.util.find_spec(OPENBLAS_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted((Path(folder) / "lib").glob("libscipy_openblas*.so"))
        if found:
            return found[0]
    return None


def openblas_library() -> Path | None:
    """The OpenBLAS library the kernel plugin's openblas backend opens: $MIPSC_OPENBLAS_LIB, or
    else the scipy-openblas32 wheel's, which is then put in $MIPSC_OPENBLAS_LIB for the plugin
    (it reads the variable on its first OpenBLAS call). None when there is neither."""
    if configured := os.environ.get(OPENBLAS_ENV):
        return Path(configured)
    packaged = _packaged_openblas()
    if packaged is not None:
        os.environ[OPENBLAS_ENV] = str(packaged)
    return packaged


def openblas_problem(plugin: Path) -> str | None:
    """Why the plugin's OpenBLAS backend cannot run in this process, or None when it can. The
    plugin's own loader is asked (it opens the library once per process and keeps the outcome),
    so None means OpenBLAS is now open in this process."""
    explicit = bool(os.environ.get(OPENBLAS_ENV))
    library = openblas_library()
    if library is None:
        return (
            "no OpenBLAS was found: the package scipy-openblas32 is not installed and "
            f"{OPENBLAS_ENV} is not set; {OPENBLAS_FIX}"
        )
    reason = _call_plugin(plugin, OPENBLAS_ERROR_SYMBOL, ctypes.c_char_p)
    if reason is None:
        return None
    if explicit:
        source = f"${OPENBLAS_ENV}"
        fix = (
            f"point {OPENBLAS_ENV} at an OpenBLAS library (libopenblas.so), or unset it to use "
            "the scipy-openblas32 package (`pip install scipy-openblas32`)"
        )
    else:
        source, fix = "the scipy-openblas32 package", f"reinstall it, or {OPENBLAS_FIX}"
    return (
        f"the kernel plugin cannot use the OpenBLAS library {library} (from {source}): "
        f"{reason.decode(errors='replace')}; {fix}"
    )


def openblas_corename(plugin: Path) -> str | None:
    """The core OpenBLAS picked its kernels for (OPENBLAS_CORETYPE overrides it), once the
    plugin has opened it; None before."""
    name = _call_plugin(plugin, "mips_openblas_corename", ctypes.c_char_p)
    return name.decode(errors="replace") if name else None


def check_openblas(plugin: Path, module_name: str) -> None:
    """A module calling mips_matmul_openblas_f32 runs only if the plugin can open OpenBLAS."""
    problem = openblas_problem(plugin)
    if problem is not None:
        raise MipscError(
            f"{module_name} was compiled with --kernel-backend=openblas ({OPENBLAS_SYMBOL}), "
            f"and {problem}"
        )


def has_embedded_kernels(vmfb: bytes) -> bool:
    """Whether the module carries the kernels itself (`--kernel-link=embedded`): the object
    linked into it holds its ABI tag (mips_kernel_abi_tag), which a module that imports the
    kernels from the plugin never contains (the plugin's own copy stays in the plugin)."""
    return EMBEDDED_ABI_TAG in vmfb


def required_kernels(vmfb: bytes) -> set[str]:
    """The kernel symbols a compiled module imports from the plugin (their names are stored in
    the module); none for a module with embedded kernels, whose names are its own."""
    if has_embedded_kernels(vmfb):
        return set()
    return {m.decode() for m in _KERNEL_NAME.findall(vmfb)} & _KNOWN_KERNELS


@cache
def _open_plugin(path: Path) -> ctypes.CDLL:
    """The plugin, loaded into this process (IREE's dlopen later gets the same copy)."""
    try:
        library = ctypes.CDLL(str(path))
    except OSError as err:
        raise MipscError(f"cannot load kernel plugin {path}: {err}") from None
    if not hasattr(library, "iree_hal_executable_plugin_query"):
        raise MipscError(f"{path} is not an IREE executable plugin (no plugin query function)")
    return library


def _call_plugin(path: Path, symbol: str, restype: Any) -> Any:
    """The result of the plugin's function `symbol`, which takes no arguments."""
    function = getattr(_open_plugin(path), symbol)
    function.argtypes = []
    function.restype = restype
    return function()


def plugin_kernels(path: Path) -> frozenset[str]:
    """The kernel symbols a plugin exports."""
    library = _open_plugin(path)
    return frozenset(name for name in _KNOWN_KERNELS if hasattr(library, name))


def plugin_abi_version(path: Path) -> int | None:
    """The kernel ABI version a plugin was built for; None for a build older than versioning."""
    library = _open_plugin(path)
    if not hasattr(library, ABI_VERSION_SYMBOL):
        return None
    return int(_call_plugin(path, ABI_VERSION_SYMBOL, ctypes.c_int))


def kernel_info(path: Path) -> str:
    """Which kernel configuration and paths the plugin picks on this machine (its
    KERNEL_INFO_SYMBOL text: config, cpu, per-type paths, cache blocks; mips_kernels.h,
    "Kernel configuration"). MIPSC_KERNEL_CONFIG in the environment forces an entry."""
    check_plugin(path)
    return _call_plugin(path, KERNEL_INFO_SYMBOL, ctypes.c_char_p).decode()


def check_plugin(path: Path) -> None:
    """A plugin IREE may be given: a loadable IREE plugin built for this mipsc's kernel ABI.

    With another ABI the kernels would read their arguments differently from how the compiled
    modules pass them: wrong results or a crash, never an error, so it is refused here.
    """
    version = plugin_abi_version(path)
    if version == KERNEL_ABI_VERSION:
        return
    built = f"version {version}" if version is not None else f"no {ABI_VERSION_SYMBOL}"
    age = "a newer" if version is not None and version > KERNEL_ABI_VERSION else "an older"
    raise MipscError(
        f"kernel plugin {path} was built for {age} kernel ABI ({built}) than this mipsc's "
        f"(version {KERNEL_ABI_VERSION}): rebuild it from this mipsc's sources with "
        f"`make kernels` (or point ${PLUGIN_ENV} or --plugin at such a build)"
    )


_device_made = False
_threads: int | None = None
_made_name: str | None = None
_made_workers: int | None = None
"""How many threads the device was made to run (local-sync: 1, the caller); None when IREE's
own topology picked them (_worker_threads counts them)."""


def set_threads(count: int) -> None:
    """Run this process's modules on `count` threads; before its first module is loaded (IREE
    reads the thread count when it creates the device).

    1 is IREE's local-sync device: the caller runs every dispatch itself. With local-task's
    one worker, the caller would wait for the worker and, on a busy CPU, spin for up to a
    scheduler slice after each call (`mipsc.runtime.waiting`): 0.49-0.97x the time on 1 thread
    (BENCHMARKS.md, 2026-12-01, "the caller's wait"). More is local-task with `count` workers
    (`--task_topology_group_count`). Without a call, IREE's own topology picks the workers
    (one per physical core), except in a process allowed a single CPU, which runs local-sync.
    MipscError for a count that is not an int from 1 to MAX_THREADS, or once the device exists
    with another count (the same count is no change: nothing is done).
    """
    global _threads
    _check_thread_count(count)
    if count == _threads or _is_made_with(count):
        _threads = count
        return
    if _device_made:
        plural = "" if _made_workers == 1 else "s"
        running = f", {_made_workers} thread{plural}" if _made_workers is not None else ""
        raise MipscError(
            f"this process already created its IREE device ({device_name()}{running}), and "
            f"IREE cannot change its thread count to {count}: call mipsc.set_threads before "
            "the first module is loaded or compiled (mipsc.compile loads one), or start a new "
            "process"
        )
    if count > 1:
        import iree.runtime as rt

        rt.flags.parse_flags(f"--task_topology_group_count={count}")
    _threads = count


def _is_made_with(count: int) -> bool:
    """Whether the device exists and is what `set_threads(count)` would make: local-sync for 1,
    else local-task with `count` workers (a default load on a machine of `count` cores)."""
    if _made_name == SYNC_DEVICE:
        return count == 1
    if _made_name != DEVICE or count < 2:
        return False
    if _made_workers is not None:
        return count == _made_workers
    # A worker names itself once it runs: just after the device is made, some may not yet.
    for _ in range(20):
        if (running := _worker_threads()) is None or running >= count:
            return running == count
        time.sleep(0.005)
    return False


def _check_thread_count(count: object) -> None:
    """MipscError unless `count` is an int (not a bool) from 1 to MAX_THREADS."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise MipscError(
            f"mipsc.set_threads takes a whole number of threads (an int from 1 to "
            f"{MAX_THREADS}), not {count!r} ({type(count).__name__})"
        )
    if not 1 <= count <= MAX_THREADS:
        raise MipscError(
            f"the thread count must be at least 1 and at most {MAX_THREADS}, not {count} "
            "(mipsc.set_threads)"
        )


def _worker_threads() -> int | None:
    """How many of this process's threads are IREE task workers (named iree-worker-N), or None
    without /proc/self/task."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    count = 0
    for task in tasks:
        try:
            count += Path(f"/proc/self/task/{task}/comm").read_text().startswith("iree-worker")
        except OSError:  # the thread ended
            continue
    return count


def device_name() -> str:
    """The IREE device this process runs modules on: SYNC_DEVICE for one thread, else DEVICE
    (once made, the one made)."""
    if _made_name is not None:
        return _made_name
    threads = _threads
    if threads is None and hasattr(os, "sched_getaffinity"):
        threads = 1 if len(os.sched_getaffinity(0)) == 1 else None
    return SYNC_DEVICE if threads == 1 else DEVICE


def default_plugin(needed: set[str]) -> Path | None:
    """The plugin to configure when the caller named none.

    Even a module without kernel calls configures it when it exists: the first module of the
    process creates the device, and a device made without the plugin never gets it.
    """
    if _configured_plugin is not None or _device_made:
        return _configured_plugin
    try:
        path = plugin_path()
        if not needed:
            check_plugin(path)  # a stale or broken plugin is an error only when it is used
        return path
    except MipscError:
        if needed:
            raise
        return None


def configure_plugin(path: Path) -> None:
    """Hand the plugin to IREE before the first device of this process exists."""
    global _configured_plugin
    if _configured_plugin == path:
        return
    check_plugin(path)
    if _configured_plugin is not None:
        raise MipscError(
            f"this process already runs modules with the plugin {_configured_plugin}; "
            f"IREE cannot switch to {path} (start a new process)"
        )
    if _device_made:
        raise MipscError(
            "this process created its IREE device before any kernel plugin was given, and IREE "
            f"cannot add {path} to it now (load a kernel-calling module first, or start a new "
            "process)"
        )
    import iree.runtime as rt

    openblas_library()  # sets $MIPSC_OPENBLAS_LIB for the plugin's openblas backend if unset
    rt.flags.parse_flags(f"--executable_plugin={path}")
    _configured_plugin = path


def device() -> Any:
    """The process's local CPU device (`device_name()`; IREE caches it). Its workers get at
    least the most workgroup-local memory a mipsc module asks for (worker_local_memory)."""
    global _device_made, _made_name, _made_workers
    import iree.runtime as rt

    name = device_name()
    if not _device_made and name == DEVICE:
        rt.flags.parse_flags(f"--task_worker_local_memory={worker_local_memory()}")
    made = rt.get_device(name)
    if not _device_made:
        _made_workers = 1 if name == SYNC_DEVICE else _threads
    _device_made, _made_name = True, name
    return made


def worker_local_memory() -> int:
    """The bytes of local memory each local-task worker of this process gets: this machine's
    L2 (IREE's own default) or EMBEDDED_WORKSPACE_MAX_BYTES, whichever is larger. A module
    compiled for a CPU of a larger L2 than this one's asks its embedded kernels' workspace
    (kernel_config.embedded_workspace_bytes) up to that maximum, and with IREE's default it
    would fail here ("dispatch requires ... of local memory but only ... is available")."""
    return max(host_l2_bytes() or 0, EMBEDDED_WORKSPACE_MAX_BYTES)


def check_kernels(needed: set[str], plugin: Path | None, module_name: str) -> None:
    if not needed:
        return
    names = ", ".join(sorted(needed))
    if plugin is None:
        raise MipscError(f"{module_name} calls the kernels {names}, but no kernel plugin is loaded")
    missing = needed - plugin_kernels(plugin)
    if missing:
        raise MipscError(
            f"{module_name} calls the kernels {', '.join(sorted(missing))}, "
            f"which the plugin {plugin} does not provide"
        )
    if OPENBLAS_SYMBOL in needed:
        check_plugin(plugin)  # the ABI that has mips_openblas_error
        check_openblas(plugin, module_name)


def configured_plugin() -> Path | None:
    """The plugin IREE was given in this process, or None before any."""
    return _configured_plugin
