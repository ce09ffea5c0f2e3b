"""Running compiled modules, in three parts:

- `mipsc.runtime.plugin`: the kernel plugin: discovery, its kernel ABI check, OpenBLAS for its
  openblas backend, handing it to IREE before the process's device exists, and that device
  (`set_threads`: local-sync for one thread, local-task's workers for more);
- `mipsc.runtime.module`: `Module` and `Function`, a loaded .vmfb called with numpy arrays or
  torch tensors (`mipsc.load`);
- `mipsc.runtime.specs`: `mipsc run`'s `--input`, `--output` and `--parameters` specs.

Every public name of the three is importable from here, as before the split.
"""

from __future__ import annotations

from mipsc.diagnostics import MipscError
from mipsc.runtime.module import (
    Function,
    Module,
    NoSuchFunction,
    Parameters,
    PathLike,
    call,
    iree_element_type,
    iree_message,
    load,
)
from mipsc.runtime.plugin import (
    DEVICE,
    OPENBLAS_FIX,
    OPENBLAS_PACKAGE,
    PLUGIN_ENV,
    PLUGIN_FILE,
    SYNC_DEVICE,
    check_openblas,
    check_plugin,
    device,
    device_name,
    kernel_info,
    openblas_corename,
    openblas_library,
    openblas_problem,
    plugin_abi_version,
    plugin_kernels,
    plugin_path,
    required_kernels,
    set_threads,
)
from mipsc.runtime.specs import (
    npy_can_hold,
    parse_example_input,
    parse_input,
    parse_parameters,
    save_output,
    type_string,
)

__all__ = [
    "DEVICE",
    "OPENBLAS_FIX",
    "OPENBLAS_PACKAGE",
    "PLUGIN_ENV",
    "PLUGIN_FILE",
    "SYNC_DEVICE",
    "Function",
    "MipscError",
    "Module",
    "NoSuchFunction",
    "Parameters",
    "PathLike",
    "call",
    "check_openblas",
    "check_plugin",
    "device",
    "device_name",
    "iree_element_type",
    "iree_message",
    "kernel_info",
    "load",
    "npy_can_hold",
    "openblas_corename",
    "openblas_library",
    "openblas_problem",
    "parse_example_input",
    "parse_input",
    "parse_parameters",
    "plugin_abi_version",
    "plugin_kernels",
    "plugin_path",
    "required_kernels",
    "save_output",
    "set_threads",
    "type_string",
]
