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
"""Kernel symbol per element type; f16/bf16 accumulate in f32 and round once."""

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

KERNEL_ABI_VERSION = 1
"""The contract version this mipsc emits calls for; MIPS_KERNEL_ABI_VERSION in mips_kernels.h.
Bump both with any change of the symbols, the params struct, the numerics or the errors."""

ABI_VERSION_SYMBOL = "mips_kernel_abi_version"
"""`int mips_kernel_abi_version(void)`: the version a plugin was built for."""


class MatmulParams(ctypes.Structure):
    """The params struct as ctypes, built from MATMUL_PARAMS: for calling kernels directly
    (kernel tests, tools/bench_kernels.py). Base pointers are void*, the rest int64."""

    _fields_ = [
        (name, ctypes.c_void_p if name in ("a", "b", "c") else ctypes.c_int64)
        for name in MATMUL_PARAMS
    ]


def matmul_symbol(element_type: Attribute) -> str | None:
    """The kernel for this element type, or None when the library has none."""
    return MATMUL_SYMBOLS.get(type(element_type))
