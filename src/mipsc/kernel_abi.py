"""The kernel call contract as the compiler sees it; kernels/mips_kernels.h is the C side.

A test (test_python_contract_matches_the_c_header in tests/unit/test_kernels.py) checks that
the two agree.
"""

from __future__ import annotations

import ctypes

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

PACKED_SYMBOLS: dict[type[Attribute], str] = {
    Float32Type: "mips_matmul_packed_f32",
    BFloat16Type: "mips_matmul_packed_bf16",
}
"""The kernel per element type that takes B pre-packed (mips_kernels.h, "Pre-packed B"), with
the params of MATMUL_PARAMS: b is the packed buffer, b_offset the tile's offset, b_stride0 the
packed rows (packed_rows(k)), b_stride1 PACKED_B_PANEL."""

PACK_SYMBOLS: dict[type[Attribute], str] = {
    Float32Type: "mips_pack_b_f32",
    BFloat16Type: "mips_pack_b_bf16",
}
"""The routine per element type that writes a B of any strides into the packed layout, with
the params of PACK_PARAMS."""

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
)
"""Every kernel a compiled module may import: the matmuls take MATMUL_PARAMS, the packs
PACK_PARAMS."""

MATMUL_PARAMS: tuple[str, ...] = (
    "a", "a_offset", "a_stride0", "a_stride1",
    "b", "b_offset", "b_stride0", "b_stride1",
    "c", "c_offset", "c_stride0", "c_stride1",
    "m", "n", "k",
    "accumulate",
)  # fmt: skip
"""The call's arguments, in order: each operand as base pointer, offset, strides (in elements),
then the tile's sizes, then 0 (C = A·B) or 1 (C += A·B)."""

PLUGIN_NAME = "mips_kernels"

KERNEL_ABI_VERSION = 4
"""The contract version this mipsc emits calls for; MIPS_KERNEL_ABI_VERSION in mips_kernels.h.
Bump both with any change of the symbols, the params struct, the numerics or the errors.
2: mips_matmul_openblas_f32 and mips_openblas_error. 3: bf16 on VDPBF16PS (subnormals flushed,
as on AMX), the per-CPU configuration and mips_kernel_info. 4: pre-packed B (PACKED_SYMBOLS,
PACK_SYMBOLS)."""

ABI_VERSION_SYMBOL = "mips_kernel_abi_version"
"""`int mips_kernel_abi_version(void)`: the version a plugin was built for."""

KERNEL_INFO_SYMBOL = "mips_kernel_info"
"""`const char* mips_kernel_info(void)`: the kernel configuration and paths this machine gets
(`key=value` fields; MIPSC_KERNEL_CONFIG=<name> forces an entry)."""


class MatmulParams(ctypes.Structure):
    """The params struct as ctypes, built from MATMUL_PARAMS: for calling kernels directly
    (kernel tests, tools/bench_kernels.py). Base pointers are void*, the rest int64."""

    _fields_ = [
        (name, ctypes.c_void_p if name in ("a", "b", "c") else ctypes.c_int64)
        for name in MATMUL_PARAMS
    ]


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
