"""The kernel call contract as the compiler sees it; kernels/mips_kernels.h is the C side.

A test (test_python_contract_matches_the_c_header in tests/unit/test_kernels.py) checks that
the two agree.
"""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type
from xdsl.ir import Attribute

MATMUL_SYMBOLS: dict[type[Attribute], str] = {
    Float32Type: "mips_matmul_f32",
    Float16Type: "mips_matmul_f16",
    BFloat16Type: "mips_matmul_bf16",
}
"""The builtin kernel per element type; f16/bf16 accumulate in f32 and round once. These
element types are the ones the compiler routes to a kernel, whatever the backend."""

KERNEL_BACKENDS: tuple[str, ...] = ("builtin", "openblas")
"""The kernel libraries a compiled module can call (`lower-mips-to-call{backend=...}`,
`mipsc compile --kernel-backend`); the first is the default."""

DEFAULT_BACKEND = KERNEL_BACKENDS[0]

BACKEND_SYMBOLS: dict[str, dict[type[Attribute], str]] = {
    "openblas": {Float32Type: "mips_matmul_openblas_f32"},
}
"""Per backend other than builtin, the element types it computes itself; every other type
stays on the builtin kernel (scipy-openblas32 has no f16/bf16 gemm)."""

OPENBLAS_SYMBOL = BACKEND_SYMBOLS["openblas"][Float32Type]
"""f32 through OpenBLAS's sgemm, per tile, single-threaded; the plugin opens the library named
by OPENBLAS_ENV on its first call (mips_kernels.h, "OpenBLAS backend")."""

OPENBLAS_ENV = "MIPSC_OPENBLAS_LIB"
OPENBLAS_ERROR_SYMBOL = "mips_openblas_error"
"""`const char* mips_openblas_error(void)`: NULL when the plugin has OpenBLAS, else why not."""

EPILOGUE_SYMBOLS: dict[type[Attribute], str] = {
    Float32Type: "mips_epilogue_f32",
    Float16Type: "mips_epilogue_f16",
    BFloat16Type: "mips_epilogue_bf16",
}
"""The epilogue kernel per element type (mips_kernels.h, "Epilogues"): on a tile of C, after
the matmul call, `C = binary(activation(C + bias), other)` rounded to the type after each step,
or `C = bias` before a product that accumulates into it. Takes EPILOGUE_PARAMS."""

PACKED_SYMBOLS: dict[type[Attribute], str] = {
    Float32Type: "mips_matmul_packed_f32",
    BFloat16Type: "mips_matmul_packed_bf16",
}
"""The kernel per element type that takes B pre-packed (mips_kernels.h, "Pre-packed B"), with
the params of MATMUL_PARAMS: b is the packed buffer, b_offset the tile's offset, b_stride0 the
packed rows (packed_rows(k)), b_stride1 PACKED_B_PANEL."""

PACKED_EPILOGUE_SYMBOLS: dict[type[Attribute], str] = {
    Float32Type: "mips_matmul_packed_epilogue_f32",
    BFloat16Type: "mips_matmul_packed_epilogue_bf16",
}
"""The packed matmul with the epilogue fused into its store phase, per element type
(mips_kernels.h, "Fused epilogue"): one call per tile for a bias, an activation and a binary
op, bit for bit the epilogue (BIAS_SET), packed matmul, epilogue calls it replaces. Takes
PACKED_EPILOGUE_PARAMS."""

PACK_SYMBOLS: dict[type[Attribute], str] = {
    Float32Type: "mips_pack_b_f32",
    BFloat16Type: "mips_pack_b_bf16",
}
"""The routine per element type that writes a B of any strides into the packed layout, with
the params of PACK_PARAMS."""

ATTENTION_SYMBOLS: dict[type[Attribute], str] = {
    Float32Type: "mips_attention_f32",
    Float16Type: "mips_attention_f16",
    BFloat16Type: "mips_attention_bf16",
}
"""The fused attention kernel per element type (mips_kernels.h, "Attention"): softmax(q·kᵀ·scale
+ mask)·v on a tile of query rows of one head, in f32 with one rounding of the result."""

PACK_PARAMS: tuple[str, ...] = (
    "b", "b_offset", "b_stride0", "b_stride1", "packed", "packed_offset", "k", "n",
)  # fmt: skip
"""The pack call's arguments, in order: B (base, offset, strides, in elements), the packed
buffer (base, offset), B's rows and columns."""

PACKED_B_PANEL = 32
"""Columns per panel of the packed layout (MIPS_PACKED_B_PANEL): every kernel path's register
tile width (8, 16, 32) divides it, so the layout, and its size, do not depend on the CPU."""


def packed_rows(k: int) -> int:
    """Kp: the rows of each packed panel, k rounded up to even (bf16 is packed in k pairs)."""
    return -(-k // 2) * 2


def packed_cols(n: int) -> int:
    """Np: the columns of the packed layout, n rounded up to a whole panel."""
    return -(-n // PACKED_B_PANEL) * PACKED_B_PANEL


def packed_size(k: int, n: int) -> int:
    """Elements of the packed form of a k x n B (MIPS_PACKED_B_SIZE)."""
    return packed_rows(k) * packed_cols(n)


KERNEL_SYMBOLS: tuple[str, ...] = (
    *MATMUL_SYMBOLS.values(),
    *PACKED_SYMBOLS.values(),
    *PACK_SYMBOLS.values(),
    *(symbol for symbols in BACKEND_SYMBOLS.values() for symbol in symbols.values()),
    *EPILOGUE_SYMBOLS.values(),
    *PACKED_EPILOGUE_SYMBOLS.values(),
)
"""Every kernel a compiled module may import, all with the calling convention `int fn(void*
params, void*, void*)`: the matmuls and packed matmuls take MATMUL_PARAMS, the packs PACK_PARAMS,
the epilogues EPILOGUE_PARAMS, the fused epilogues PACKED_EPILOGUE_PARAMS."""

MATMUL_PARAMS: tuple[str, ...] = (
    "a", "a_offset", "a_stride0", "a_stride1",
    "b", "b_offset", "b_stride0", "b_stride1",
    "c", "c_offset", "c_stride0", "c_stride1",
    "m", "n", "k",
    "accumulate",
)  # fmt: skip
"""The call's arguments, in order: each operand as base pointer, offset, strides (in elements),
then the tile's sizes, then 0 (C = A·B) or 1 (C += A·B)."""

EPILOGUE_PARAMS: tuple[str, ...] = (
    "c", "c_offset", "c_stride0", "c_stride1",
    "bias", "bias_offset", "bias_stride",
    "other", "other_offset", "other_stride0", "other_stride1",
    "m", "n",
    "bias_mode", "activation", "binary",
)  # fmt: skip
"""An epilogue call's arguments, in order: the C tile (base, offset, strides), the bias row
(base, offset, stride; any base when bias_mode is 0), the second tensor's tile (likewise when
binary is 0), the tile's sizes, then the kinds below."""

PACKED_EPILOGUE_PARAMS: tuple[str, ...] = MATMUL_PARAMS + EPILOGUE_PARAMS[4:11] + (
    "bias_mode", "activation", "binary",
)  # fmt: skip
"""A fused epilogue call's arguments, in order: the packed matmul's (MATMUL_PARAMS), then the
epilogue's bias, other tensor and kinds (with bias_mode "set" the product starts from the
bias, accumulate 0)."""

BIAS_MODES: dict[str, int] = {"none": 0, "add": 1, "set": 2}
"""MIPS_EPILOGUE_NONE / _BIAS_ADD / _BIAS_SET: no bias, `C = R(C + bias[j])`, `C = bias[j]`."""

ACTIVATIONS: dict[str, int] = {"none": 0, "relu": 1, "gelu": 2, "gelu_tanh": 3, "silu": 4}
"""MIPS_EPILOGUE_<NAME>: the activation kinds, by the names the mips dialect uses."""

BINARY_OPS: dict[str, int] = {"none": 0, "add": 1, "mul": 2}
"""MIPS_EPILOGUE_ADD / _MUL: `C = R(C + other)`, `C = R(C * other)`."""

PLUGIN_NAME = "mips_kernels"

KERNEL_LINKS: tuple[str, ...] = ("embedded", "plugin")
"""How a compiled module gets its kernels (`lower-mips-to-call{kernel-link=...}`, `mipsc
compile --kernel-link`): `embedded`, the freestanding object linked into the .vmfb (no plugin to
ship; mips_kernels.h, "Embedded entry points"), or `plugin`, imports that the executable plugin
libmips_kernels.so resolves at load time. The first is the default (README, "Kernels in the
module or in a plugin")."""

DEFAULT_KERNEL_LINK = ""
"""No choice made: $MIPSC_KERNEL_LINK, else `embedded`, or `plugin` for a backend that needs it
(resolve_kernel_link)."""

KERNEL_LINK_ENV = "MIPSC_KERNEL_LINK"
"""The link used when none is given (the test suite sets `plugin`: its tests count kernel calls
with the plugin's debug counters, which the embedded object does not have)."""

PLUGIN_ONLY_BACKENDS: tuple[str, ...] = ("openblas",)
"""Backends whose kernels live in the plugin only (OpenBLAS is opened with dlopen)."""


def resolve_kernel_link(kernel_link: str, backend: str = "builtin") -> str:
    """The link a module gets: `kernel_link` when given, else plugin for PLUGIN_ONLY_BACKENDS,
    else $MIPSC_KERNEL_LINK, else embedded (KERNEL_LINKS[0]). Raises ValueError, saying what to
    do, for an unknown link or embedded with a plugin-only backend."""
    if not kernel_link:
        if backend in PLUGIN_ONLY_BACKENDS:
            return "plugin"
        kernel_link = os.environ.get(KERNEL_LINK_ENV) or KERNEL_LINKS[0]
    if kernel_link not in KERNEL_LINKS:
        raise ValueError(f"unknown kernel link '{kernel_link}' (known: {', '.join(KERNEL_LINKS)})")
    if kernel_link == "embedded" and backend in PLUGIN_ONLY_BACKENDS:
        raise ValueError(
            f"the {backend} kernel backend runs in the kernel plugin only (it opens its "
            "library at run time): use the plugin kernel link with it (--kernel-link=plugin)"
        )
    return kernel_link


EMBEDDED_SUFFIX = "_embedded"
"""The object's entry point for a kernel is its symbol plus this suffix: the params as
arguments, a direct call (a matmul or packed matmul: MATMUL_PARAMS, then a workspace pointer
and its size in bytes; an epilogue: EPILOGUE_PARAMS alone; a pack: PACK_PARAMS alone)."""

EMBEDDED_WORKSPACE_MAX_BYTES = 1 << 20
"""The most workgroup-local memory an embedded kernel call is lent for its packed panels:
1 MiB, the L2 of the Zen 4 on which the table's largest cache blocks were measured
(kernels/mips_config.c, entry zen4). A module asks for the target CPU's L2 size up to this
(kernel_config.embedded_workspace_bytes): a local-task worker of IREE 3.13 has as much local
memory as its CPU's L2 (`--task_worker_local_memory`, 0 by default: the L2 size), and a
dispatch asking for more fails to run. The kernel fits its cache blocks into what it gets."""

EMBEDDED_OBJECT_FILE = "mips_kernels_embedded.o"
EMBEDDED_OBJECT_ENV = "MIPSC_EMBEDDED_KERNELS"
"""Overrides the object mipsc links (tests use builds with a forced configuration)."""

EMBEDDED_ABI_TAG = b"mips_kernel_abi_version="
"""The start of `mips_kernel_abi_tag` (kernels/common.c): "mips_kernel_abi_version=<n>;" in the
object's bytes, and so in every module the object is linked into."""

_ABI_TAG = re.compile(re.escape(EMBEDDED_ABI_TAG) + rb"(\d+);")


def embedded_symbol(symbol: str) -> str:
    """The embedded object's entry point for the kernel `symbol`."""
    return symbol + EMBEDDED_SUFFIX


def embedded_object_path() -> Path:
    """The kernel object to link: $MIPSC_EMBEDDED_KERNELS, else the package's (`make kernels`).

    Raises ValueError, saying what to do, when it is missing or was built for another kernel
    ABI than this mipsc's (its `mips_kernel_abi_tag` bytes)."""
    override = os.environ.get(EMBEDDED_OBJECT_ENV)
    path = Path(override or Path(__file__).parent / "_lib" / EMBEDDED_OBJECT_FILE)
    where = f"${EMBEDDED_OBJECT_ENV} points at" if override else "expected at"
    if not path.is_file():
        raise ValueError(
            f"the kernel object for --kernel-link=embedded is missing ({where} {path}): build "
            "it with `make kernels`, or compile with --kernel-link=plugin"
        )
    found = _ABI_TAG.search(path.read_bytes())
    version = int(found[1]) if found else None
    if version != KERNEL_ABI_VERSION:
        built = f"version {version}" if version is not None else "no version tag"
        raise ValueError(
            f"the kernel object {path} was built for another kernel ABI ({built}) than this "
            f"mipsc's (version {KERNEL_ABI_VERSION}): rebuild it with `make kernels`"
        )
    return path.resolve()


KERNEL_ABI_VERSION = 10
"""The contract version this mipsc emits calls for; MIPS_KERNEL_ABI_VERSION in mips_kernels.h.
Bump both with any change of the symbols, the params struct, the numerics or the errors.
2: mips_matmul_openblas_f32 and mips_openblas_error. 3: bf16 on VDPBF16PS (subnormals flushed,
as on AMX), the per-CPU configuration and mips_kernel_info. 4: the embedded entry points
(mips_matmul_<t>_embedded, with a workspace) and the object's mips_kernel_abi_tag. 5: the
epilogues (EPILOGUE_SYMBOLS) and pre-packed B (PACKED_SYMBOLS, PACK_SYMBOLS), with their
embedded entry points (both were numbered 4 on their branches, unreleased). 6: fused
attention. 7: the tile cost model in the configuration (CONFIG_NAME_SYMBOL,
CONFIG_VALUE_SYMBOL). 8: mips_matmul_packed_f32 with at most 4 rows of C sums each column's k
products in order (kernels/matmul_gemm.inc, packed_thin): other rounding than 7's. 9:
mips_collapse_huge_pages (COLLAPSE_HUGE_PAGES_SYMBOL) and the configuration's
prepack_f32_min_rows. 10: the fused epilogue (PACKED_EPILOGUE_SYMBOLS)."""

ABI_VERSION_SYMBOL = "mips_kernel_abi_version"
"""`int mips_kernel_abi_version(void)`: the version a plugin was built for."""

KERNEL_INFO_SYMBOL = "mips_kernel_info"
"""`const char* mips_kernel_info(void)`: the kernel configuration and paths this machine gets
(`key=value` fields; MIPSC_KERNEL_CONFIG=<name> forces an entry)."""


PLUGIN_ENV = "MIPSC_PLUGIN"
"""The environment variable naming the kernel plugin to use instead of the packaged one."""

PLUGIN_FILE = "libmips_kernels.so"
"""The kernel plugin's file name in the package's `_lib` (`make kernels` builds it)."""

CONFIG_NAME_SYMBOL = "mips_kernel_config_name"
"""`const char* mips_kernel_config_name(int index)`: the configuration table's entry `index`,
or with -1 the entry this machine gets (mips_kernels.h, "Tile cost model")."""

CONFIG_VALUE_SYMBOL = "mips_kernel_config_value"
"""`int mips_kernel_config_value(const char* config, const char* key, int64_t* value)`: one
int field of a table entry (or with "" of this process's live configuration); 0, or -1 for an
unknown entry or key."""


COLLAPSE_HUGE_PAGES_SYMBOL = "mips_collapse_huge_pages"
"""`int64_t mips_collapse_huge_pages(void* begin, uint64_t bytes)`: huge pages for memory
already written (the plugin's; mips_kernels.h, "Huge pages after the fact"); the bytes
collapsed, 0 none, -1 nothing advised."""


class MatmulParams(ctypes.Structure):
    """The params struct as ctypes, built from MATMUL_PARAMS: for calling kernels directly
    (kernel tests, tools/bench_kernels.py). Base pointers are void*, the rest int64."""

    _fields_ = [
        (name, ctypes.c_void_p if name in ("a", "b", "c") else ctypes.c_int64)
        for name in MATMUL_PARAMS
    ]


class EpilogueParams(ctypes.Structure):
    """The epilogue params struct as ctypes, built from EPILOGUE_PARAMS: base pointers are
    void*, the rest int64."""

    _fields_ = [
        (name, ctypes.c_void_p if name in ("c", "bias", "other") else ctypes.c_int64)
        for name in EPILOGUE_PARAMS
    ]


class PackedEpilogueParams(ctypes.Structure):
    """The fused epilogue's params struct as ctypes, built from PACKED_EPILOGUE_PARAMS."""

    _fields_ = [
        (name, ctypes.c_void_p if name in ("a", "b", "c", "bias", "other") else ctypes.c_int64)
        for name in PACKED_EPILOGUE_PARAMS
    ]


def epilogue_symbol(element_type: Attribute) -> str | None:
    """The epilogue kernel for `element_type`, or None when there is none."""
    return EPILOGUE_SYMBOLS.get(type(element_type))


class PackParams(ctypes.Structure):
    """The pack params struct as ctypes, built from PACK_PARAMS (for calling it directly)."""

    _fields_ = [
        (name, ctypes.c_void_p if name in ("b", "packed") else ctypes.c_int64)
        for name in PACK_PARAMS
    ]


def matmul_symbol(element_type: Attribute, backend: str = DEFAULT_BACKEND) -> str | None:
    """The kernel a matmul on `element_type` calls with this backend, or None when no kernel
    takes that type (it then stays on IREE's path). The one place that picks the symbol."""
    if backend not in KERNEL_BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r} (known: {KERNEL_BACKENDS})")
    own = BACKEND_SYMBOLS.get(backend, {}).get(type(element_type))
    return own or MATMUL_SYMBOLS.get(type(element_type))
