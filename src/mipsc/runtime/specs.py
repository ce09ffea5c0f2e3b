"""The command line's arrays and files: `--input` specs (`@x.npy`, `2x3xf32=1`,
`8x32xbf16=@x.bin`), `--example-input` specs, `--output` files and `--parameters` specs, read
and written as IREE's tools (iree-run-module) do.

numpy has no bf16: bf16 arrays are `ml_dtypes.bfloat16`, which a .npy cannot record, so they
go in and out as raw bytes with their type.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from mipsc.diagnostics import MipscError

_DTYPES: dict[str, Any] = {
    "f32": np.float32,
    "f64": np.float64,
    "f16": np.float16,
    "bf16": ml_dtypes.bfloat16,
    "i64": np.int64,
    "si64": np.int64,
    "i32": np.int32,
    "si32": np.int32,
    "i8": np.int8,
    "i1": np.bool_,
}
_LITERAL = re.compile(r"^(?P<shape>(?:\d+x)*)(?P<dtype>[a-z]+\d*)=(?P<values>.*)$", re.S)


def type_string(array: np.ndarray) -> str:
    """`2x3xf32`, as IREE's tools and `--input` literals write a tensor type."""
    names = {np.dtype(t): name for name, t in reversed(_DTYPES.items())}
    dtype = names.get(array.dtype, str(array.dtype))
    return "x".join([*map(str, array.shape), dtype])


def npy_can_hold(dtype: np.dtype) -> bool:
    """Whether a .npy file records `dtype`: np.save writes ml_dtypes' bf16 as untyped `<V2`."""
    return dtype.kind != "V" or dtype.fields is not None


def _load_npy(path: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except OSError as err:
        reason = err.strerror or str(err)
        raise MipscError(f"cannot read input '{path}': {reason}") from None
    except ValueError:
        # np.load falls back to unpickling anything that is not .npy/.npz.
        raise MipscError(f"cannot read input '{path}': not a .npy file") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise MipscError(f"cannot read input '{path}': a .npz archive; give one .npy per input")
    if not npy_can_hold(array.dtype):
        shape = "x".join(map(str, array.shape))
        raise MipscError(
            f"cannot read input '{path}': its elements are untyped {array.dtype.itemsize}-byte "
            "values (np.save writes bfloat16 so, and np.load cannot tell it back); give the raw "
            f"bits with their type instead, e.g. --input={shape}{'x' if shape else ''}bf16=@x.bin "
            "after array.tofile('x.bin')"
        )
    return array


def _load_raw(spec: str, path: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """`2x3xbf16=@x.bin`: the file holds exactly the elements' bytes, as iree-run-module reads."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise MipscError(f"cannot read input '{path}': {err.strerror}") from None
    itemsize = np.dtype(dtype).itemsize
    want = int(np.prod(shape)) * itemsize
    if len(data) != want:
        type_name = spec.split("=", 1)[0]
        raise MipscError(
            f"input '{spec}': '{path}' holds {len(data)} bytes, and {type_name} needs {want}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def parse_input(spec: str) -> np.ndarray:
    """An input as IREE's tools take it: `@file.npy`, `2x3xbf16=@raw.bin`, or literals such as
    `2x3xf32=1` / `2xf32=1,2` (bf16 has no .npy form, hence the raw one)."""
    if spec.startswith("@"):
        return _load_npy(spec[1:])
    match = _LITERAL.match(spec.strip())
    if match is None or match["dtype"] not in _DTYPES:
        raise MipscError(
            f"cannot understand input '{spec}': expected @file.npy or a literal such as "
            f"2x3xf32=1 or 2x3xbf16=@raw.bin (types: {', '.join(_DTYPES)})"
        )
    shape = tuple(int(d) for d in match["shape"].split("x") if d)
    dtype = _DTYPES[match["dtype"]]
    if match["values"].startswith("@"):
        return _load_raw(spec, match["values"][1:], shape, dtype)
    try:
        values = np.array([float(v) for v in re.split(r"[\s,\[\]]+", match["values"]) if v])
    except ValueError:
        raise MipscError(f"input '{spec}' has a value that is not a number") from None
    count = int(np.prod(shape)) if shape else 1
    if values.size == 1:
        return np.full(shape, values[0], dtype=dtype)
    if values.size != count:
        raise MipscError(
            f"input '{spec}' has {values.size} values; its shape needs {count} (or 1 for all)"
        )
    return values.astype(dtype).reshape(shape)


_TYPE_ONLY = re.compile(r"^(?P<shape>(?:\d+x)*)(?P<dtype>[a-z]+\d*)$")


def parse_example_input(spec: str, seed: int = 0) -> np.ndarray:
    """An example input for an export: `4x8xf32` (random normal floats, zero integers: only
    the shape and dtype matter to a trace), or anything `parse_input` takes."""
    match = _TYPE_ONLY.match(spec.strip())
    if match is None:
        return parse_input(spec)
    if match["dtype"] not in _DTYPES:
        raise MipscError(
            f"cannot understand example input '{spec}': unknown element type "
            f"'{match['dtype']}' (types: {', '.join(_DTYPES)})"
        )
    shape = tuple(int(d) for d in match["shape"].split("x") if d)
    dtype = np.dtype(_DTYPES[match["dtype"]])
    if dtype.kind == "f" or dtype.name == "bfloat16":
        return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype)


def save_output(spec: str, array: np.ndarray, index: int = 0) -> None:
    """`@out.npy` writes a .npy, any other name the raw element bytes, as iree-run-module does.

    A bf16 result has no .npy form (np.load would not know it again), so it needs a raw name.
    """
    path = spec.removeprefix("@")
    as_npy = path.endswith(".npy")
    if as_npy and not npy_can_hold(array.dtype):
        raise MipscError(
            f"result[{index}] is {type_string(array)}, which a .npy file cannot record; write its "
            f"raw bits instead (e.g. --output=@{path.removesuffix('.npy')}.bin, read back with "
            f"np.fromfile(path, ml_dtypes.{array.dtype.name}))"
        )
    try:
        with open(path, "wb") as file:
            if as_npy:
                # To exactly the named file: np.save given a name would append .npy.
                np.save(file, array, allow_pickle=False)
            else:
                file.write(np.ascontiguousarray(array).tobytes())
    except OSError as err:
        raise MipscError(f"cannot write '{path}': {err.strerror}") from None


def parse_parameters(spec: str) -> tuple[str, str]:
    """`scope=file.irpa`, or `file.irpa` for the unnamed scope, as iree-run-module takes them."""
    scope, sep, path = spec.partition("=")
    if not sep:
        scope, path = "", spec
    if not path.strip():
        raise MipscError(
            f"cannot understand --parameters '{spec}': expected SCOPE=FILE (e.g. "
            "model=weights.irpa), or FILE for the unnamed scope"
        )
    return scope, path
