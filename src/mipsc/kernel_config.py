"""The kernel configuration table (kernels/mips_config.c) as the compiler reads it.

One entry per CPU kind says both how the kernels block (KC, MC, NC, paths) and the constants
of the lowering's tile cost model (the `tile_*` fields; mips_kernels.h, "Tile cost model").
The kernels choose their entry at run time from cpuid; the compiler reads the entry of the
compile's target CPU from the shipped plugin at compile time, through ctypes
(`mips_kernel_config_name`, `mips_kernel_config_value`), so both sides follow one table:

- `--target-cpu=host` (the default) gets the entry the plugin picks for this machine, by the
  kernels' own rule (cpuid, MIPSC_KERNEL_CONFIG), with its live values (`mipsc kernel-info`
  prints the same; the embedded kernels pick by cpuid alone, so under MIPSC_KERNEL_CONFIG
  they may run another entry than the one the tiles were chosen for);
- a named LLVM CPU (`znver4`, `skylake-avx512`, `x86-64-v3`, ...) gets the entry the kernels
  would pick on that CPU (CPU_CONFIGS), as written in the table;
- any other name, or no usable plugin (absent, not loadable, or built for another kernel
  ABI), gets no entry: `read_config` returns None with the reason, and the caller falls back
  to its documented defaults.

Kept lean (ctypes and the standard library): `mipsc compile` imports neither numpy nor the
runtime.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from mipsc.kernel_abi import (
    ABI_VERSION_SYMBOL,
    CONFIG_NAME_SYMBOL,
    CONFIG_VALUE_SYMBOL,
    EMBEDDED_WORKSPACE_MAX_BYTES,
    KERNEL_ABI_VERSION,
    PLUGIN_ENV,
    PLUGIN_FILE,
)

HOST = "host"
"""The target CPU that means this machine (IREE's `--iree-llvmcpu-target-cpu=host`)."""

_ENTRY_CPUS: dict[str, tuple[str, ...]] = {
    "zen4": ("znver4",),
    "zen5": ("znver5",),
    "intel-avx512": (
        "skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
        "icelake-server", "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids",
        "graniterapids", "graniterapids-d", "diamondrapids", "knl", "knm",
    ),
    "avx2": (
        "x86-64-v3", "haswell", "core-avx2", "broadwell", "skylake", "alderlake", "raptorlake",
        "meteorlake", "arrowlake", "arrowlake-s", "lunarlake", "pantherlake", "gracemont",
        "sierraforest", "grandridge", "clearwaterforest", "znver1", "znver2", "znver3", "bdver4",
    ),
    "sse2": (
        "x86-64", "x86-64-v2", "generic", "k8", "opteron", "athlon64", "amdfam10", "barcelona",
        "btver1", "btver2", "bdver1", "bdver2", "bdver3", "core2", "penryn", "nehalem",
        "corei7", "westmere", "sandybridge", "corei7-avx", "ivybridge", "core-avx-i",
        "bonnell", "atom", "silvermont", "slm", "goldmont", "goldmont-plus", "tremont",
    ),
}  # fmt: skip
CPU_CONFIGS: dict[str, str] = {cpu: entry for entry, cpus in _ENTRY_CPUS.items() for cpu in cpus}
"""LLVM's x86 CPU names (`--target-cpu`) → the configuration entry the kernels pick on such a
CPU (mips_config.c's detect_entry): AMD family 0x19 / 0x1a with AVX-512 zen4 / zen5, Intel
with AVX-512 intel-avx512, another AVX-512 CPU (x86-64-v4) zen4, AVX2+FMA avx2, else sse2."""
CPU_CONFIGS["x86-64-v4"] = "zen4"


@dataclass(frozen=True)
class TargetConfig:
    """The configuration entry a compile's target CPU gets."""

    target_cpu: str
    """The target CPU as given (`host`, `znver4`, ...)."""
    name: str
    """The entry's name in kernels/mips_config.c."""
    reason: str
    """How it was chosen, for messages: `this machine's (detected from cpuid)`, ..."""
    values: tuple[tuple[str, int], ...]
    """(key, value) of the fields read, in the order asked."""

    def __getitem__(self, key: str) -> int:
        return dict(self.values)[key]


def plugin_file() -> Path:
    """The plugin the compile reads: $MIPSC_PLUGIN if set (the one the module will run with),
    else the one `make kernels` builds into the package (whose table the embedded kernels
    share: both are built from the same sources)."""
    return Path(os.environ.get(PLUGIN_ENV) or Path(__file__).parent / "_lib" / PLUGIN_FILE)


def read_config(target_cpu: str, keys: tuple[str, ...]) -> TargetConfig | str:
    """The entry for `target_cpu` with the int fields `keys`, or why there is none (a
    sentence). Cached per target, plugin and keys; `forget_configs` clears it (after
    `mips_debug_set_config` changed the live configuration that `host` reads)."""
    return _read_config(target_cpu, str(plugin_file()), keys)


def forget_configs() -> None:
    """Drop what `read_config` read (the plugin's live configuration may have changed)."""
    _read_config.cache_clear()


@functools.cache
def _read_config(target_cpu: str, path: str, keys: tuple[str, ...]) -> TargetConfig | str:
    library = _open_table(Path(path))
    if isinstance(library, str):
        return library
    if target_cpu == HOST:
        name_of = getattr(library, CONFIG_NAME_SYMBOL)
        name, entry = name_of(-1).decode(), ""
        reason = "this machine's entry, as `mipsc kernel-info` shows"
    elif (entry := CPU_CONFIGS.get(target_cpu, "")) != "":
        name, reason = entry, f"the entry the kernels take on {target_cpu}"
    else:
        return f"no kernel configuration is known for the CPU '{target_cpu}'"
    value_of = getattr(library, CONFIG_VALUE_SYMBOL)
    values = []
    for key in keys:
        value = ctypes.c_int64()
        if value_of(entry.encode(), key.encode(), ctypes.byref(value)) != 0:
            return f"the kernel plugin {path} has no field '{key}' in its entry '{name}'"
        values.append((key, value.value))
    return TargetConfig(target_cpu, name, reason, tuple(values))


def _open_table(path: Path) -> ctypes.CDLL | str:
    """The plugin with its table functions typed, or why it cannot be read."""
    if not path.is_file():
        return f"no kernel plugin at {path} (build it with `make kernels`)"
    try:
        library = ctypes.CDLL(str(path.resolve()))  # the handle IREE's loader gets later
    except OSError as err:
        return f"the kernel plugin {path} cannot be loaded ({err})"
    if not hasattr(library, ABI_VERSION_SYMBOL):
        return f"the kernel plugin {path} predates kernel ABI versions"
    version_of = getattr(library, ABI_VERSION_SYMBOL)
    version_of.restype = ctypes.c_int
    if (version := version_of()) != KERNEL_ABI_VERSION:
        return (
            f"the kernel plugin {path} was built for kernel ABI {version}, not this mipsc's "
            f"{KERNEL_ABI_VERSION} (rebuild it with `make kernels`)"
        )
    name_of = getattr(library, CONFIG_NAME_SYMBOL)
    name_of.argtypes, name_of.restype = [ctypes.c_int], ctypes.c_char_p
    value_of = getattr(library, CONFIG_VALUE_SYMBOL)
    value_of.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)]
    value_of.restype = ctypes.c_int
    return library


def config_names() -> list[str]:
    """The names of the table's entries, in order ([] without a usable plugin)."""
    library = _open_table(plugin_file())
    if isinstance(library, str):
        return []
    name_of = getattr(library, CONFIG_NAME_SYMBOL)
    names: list[str] = []
    while (name := name_of(len(names))) is not None:
        names.append(name.decode())
    return names


SMALLEST_L2_BYTES: dict[str, int] = {
    "zen4": 1 << 20,
    "zen5": 1 << 20,
    "intel-avx512": 512 << 10,
    "avx2": 256 << 10,
    "sse2": 256 << 10,
}
"""Entry → the smallest per-core L2 of the CPUs CPU_CONFIGS maps to it, from the vendors'
datasheets: Zen 4 and Zen 5 1 MiB; Ice Lake client 512 KiB (the Xeons 1-2 MiB); Haswell to
Skylake client 256 KiB (Zen 1-3 512 KiB); older x86-64 256 KiB or more per core."""

UNKNOWN_L2_BYTES = 256 << 10
"""The L2 assumed for a CPU whose L2 is not known (no sysfs, an unmapped LLVM name)."""

_SYSFS_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")


def host_l2_bytes(caches: Path = _SYSFS_CACHES) -> int | None:
    """This machine's L2 data (or unified) cache of CPU 0, in bytes, from Linux's sysfs (the
    size IREE's runtime takes for a worker's local memory), or None where sysfs has none."""
    for index in sorted(caches.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if level == "2" and kind in ("Data", "Unified"):
            units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
            scale = units.get(size[-1:], 1)
            digits = size[:-1] if size[-1:] in units else size
            return int(digits) * scale if digits.isdigit() else None
    return None


def target_l2_bytes(target_cpu: str) -> int:
    """The per-core L2 of `target_cpu` in bytes: this machine's for `host`, the smallest of
    its entry's CPUs for a named LLVM CPU (SMALLEST_L2_BYTES), else UNKNOWN_L2_BYTES."""
    if target_cpu == HOST:
        return host_l2_bytes() or UNKNOWN_L2_BYTES
    return SMALLEST_L2_BYTES.get(CPU_CONFIGS.get(target_cpu, ""), UNKNOWN_L2_BYTES)


def embedded_workspace_bytes(target_cpu: str) -> int:
    """The workgroup-local memory a module compiled for `target_cpu` lends each embedded kernel
    call: the target's L2 (what IREE's local-task workers have there by default), at most
    EMBEDDED_WORKSPACE_MAX_BYTES, so that the module runs under stock `iree-run-module` on
    that CPU as well as under mipsc's runtime (which gives its workers at least the maximum,
    mipsc.runtime.plugin.device)."""
    return min(target_l2_bytes(target_cpu), EMBEDDED_WORKSPACE_MAX_BYTES)
