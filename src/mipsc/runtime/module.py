"""A compiled module loaded on the local CPU device: its functions called with numpy arrays or
torch tensors, and IREE's errors told in the user's terms.

bf16 tensors are `ml_dtypes.bfloat16` arrays (a dependency of iree-base-runtime, whose
`asdevicearray`/`to_host` map that dtype to and from HAL's BFLOAT_16). Weights exported as
`#flow.parameter.named<"scope"::"key">` come from parameter files (.irpa, .safetensors, .gguf)
given per scope, as iree-run-module's `--parameters=scope=file.irpa`.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeAlias

import ml_dtypes
import numpy as np

from mipsc.diagnostics import (
    DIM_CHECK_MESSAGE,
    MipscError,
    input_name,
    input_names,
    input_shapes,
    unsigned_outputs,
)
from mipsc.runtime import huge_pages
from mipsc.runtime import plugin as kernel_plugin
from mipsc.runtime.waiting import batch_wait, worth_batch


class Function:
    """A callable function of a loaded module: numpy arrays in, numpy arrays out."""

    def __init__(
        self,
        module: Module,
        name: str,
        invoke: Any,
        written_inputs: Sequence[int] = (),
        input_names: Sequence[str | None] = (),
        output_dtypes: Sequence[str | None] = (),
        input_shapes: Sequence[str | None] = (),
    ) -> None:
        self._module = module
        self.name = name
        self._invoke = invoke
        self.input_names = tuple(input_names)
        """The inputs' own names, where the model gave them (an ONNX graph's inputs), for
        messages; () when it gave none."""
        self.output_dtypes = tuple(output_dtypes)
        """The numpy dtype of each result IREE returns with another sign (an unsigned one),
        None for the others; () when there are none."""
        self.input_shapes = tuple(input_shapes)
        """The inputs' declared shapes (`?x6`) of a function with dynamic dims, for messages
        about a wrong shape; () when the .vmfb has none (no dynamic dim, or an older mipsc)."""
        self.written_inputs = frozenset(written_inputs)
        """Positions (from 0) of the inputs the function changes in place (an export's
        `!torch.tensor` arguments, e.g. `x.add_(1)` on an input or a KV-cache buffer written
        under torch.compile): the caller's array or tensor gets the new contents."""

    def __call__(self, *args: Any) -> Any:
        """Call with numpy arrays (bf16: ml_dtypes.bfloat16) or torch tensors, in order.

        Returns one array, or a tuple for several results; torch tensors when any input was a
        torch tensor. A failure (wrong count, shape or dtype; a kernel's refusal) is a
        MipscError that names the input.
        """
        return self.call(args)

    def call(self, args: Sequence[Any], *, cli: bool = False) -> Any:
        """`__call__`, with hints worded for `mipsc run`'s flags when `cli`."""
        arrays = [_as_input(arg, self.input(index), cli) for index, arg in enumerate(args)]
        written = self.written_inputs & set(range(len(args)))
        self._check_written(args, arrays, written)
        # One call at a time per module: its staging arrays serve every call (see _views).
        with self._module.staging_lock:
            views = self._views(arrays, written)
            try:
                with self._waiting():
                    results = self._invoke(*_given(arrays, views))
            except (RuntimeError, ValueError, IndexError, TypeError) as err:
                # IREE maps its status codes onto these (OUT_OF_RANGE is an IndexError).
                raise MipscError(
                    f"{self._module.name}: calling {self.name} failed: "
                    f"{self._explain(str(err), arrays, cli, _torch_call(args))}"
                ) from None
            for index in written:
                _write_back(args[index], arrays[index], views[index])
            as_torch = _torch_call(args)
            # IREE may return a result in an input's buffer (`return x`, an addmm's init tied
            # to its output): never hand the caller memory it lent or the next call reuses.
            lent = [view.array for view in views if isinstance(view, _Lent)]
            if results is None:
                return ()
            listed = isinstance(results, tuple | list)
            dtypes = self.output_dtypes
            outputs = [
                _as_output(r, as_torch, lent, dtypes[i] if i < len(dtypes) else None)
                for i, r in enumerate(results if listed else [results])
            ]
            return tuple(outputs) if listed else outputs[0]

    def input(self, index: int) -> str:
        """How messages name the input at `index` (from 0): `input 2 ("mask", %arg1)`."""
        names = self.input_names
        return input_name(index, names[index] if index < len(names) else None)

    @contextmanager
    def _waiting(self) -> Iterator[None]:
        """How the caller waits for this call (mipsc.runtime.waiting): as SCHED_BATCH on
        local-task when the function's previous call took BATCH_MIN_SECONDS or more. Records
        the call's wall time."""
        seconds = self._module.call_seconds
        previous = seconds.get(self.name, 0.0)
        batch = self._module.waits_for_workers and worth_batch(previous)
        start = time.perf_counter()
        try:
            with batch_wait() if batch else nullcontext():
                yield
        finally:
            seconds[self.name] = time.perf_counter() - start

    def _check_written(self, args: Sequence[Any], arrays: Sequence[Any], written: set[int]) -> None:
        """An input the function changes in place must be writable and share no memory with
        another input (torch.export assumes inputs do not alias: with `f(x, x)` or `f(x, x.T)`
        the other input would read the value from before the change). MipscError otherwise."""
        for index in sorted(written):
            array = arrays[index]
            if isinstance(array, np.ndarray) and not array.flags.writeable:
                raise MipscError(
                    f"{self.name} changes {self.input(index)} in place, but the array given is "
                    "read-only: pass a writable array (numpy: array.copy())"
                )
            span = _memory_span(args[index])
            for other, given in enumerate(args):
                if other != index and span is not None and _overlap(span, _memory_span(given)):
                    raise MipscError(
                        f"{self.name} changes {self.input(index)} in place, and "
                        f"{self.input(other)} shares its memory: pass separate tensors (a copy of "
                        "one), as torch.export assumes inputs do not alias"
                    )

    def _views(self, arrays: Sequence[Any], written: set[int]) -> list[Any]:
        """Per input, what IREE is given instead of the array (None: the array, which IREE
        copies into a new device buffer, ~80 ms for 64 MiB on a loaded Zen 4, most of it page
        faults). IREE may write into an input's buffer (a result tied to it), so a large input
        goes in as this function's staging array (STAGE_BYTES), allocated once and copied into
        (a memcpy); an input the function changes in place goes in as a view of the caller's
        own memory (or a device copy, read back after)."""
        views: list[Any] = []
        for index, array in enumerate(arrays):
            if index in written:
                view = _imported(array)
                if view is None and isinstance(array, np.ndarray):
                    view = _device_copy(array)
            else:
                view = self._staged(index, array)
            views.append(view)
        return views

    def _staged(self, index: int, array: Any) -> _Lent | None:
        """Input `index` copied into the module's staging array for it, as a view for IREE;
        None for an input too small to gain (or one IREE cannot take as it is)."""
        if not isinstance(array, np.ndarray) or array.nbytes < STAGE_BYTES:
            return None
        key = (self.name, index)
        staging = self._module.staging.get(key)
        if staging is None or staging.shape != array.shape or staging.dtype != array.dtype:
            staging = _aligned_empty(array.shape, array.dtype)
            self._module.staging[key] = staging
        np.copyto(staging, array)
        return _imported(staging)

    def _explain(
        self, message: str, arrays: Sequence[np.ndarray], cli: bool, torch_call: bool = False
    ) -> str:
        """IREE's invocation error in the user's terms (a bf16 hint in the caller's terms: the
        command line's, torch's when the inputs are torch tensors, else numpy's)."""
        hint = _BF16_CLI_HINT if cli else _BF16_TORCH_HINT if torch_call else _BF16_HINT
        if "dispatch kernel returned non-zero" in message:
            return (
                "a kernel rejected its arguments, so nothing was computed: the input "
                "shapes do not fit (for example, the K dims of a matmul's inputs differ)\n"
                f"IREE said: {message.strip()}"
            )
        if "do not agree at run time" in message:  # the host's check before a matmul
            return (
                "the input shapes do not fit a matmul: the sizes of its operands do not agree "
                "(for example, the K dims of a matmul's inputs differ), so nothing was computed"
            )
        if DIM_CHECK_MESSAGE in message:
            return self._explain_dims(message, arrays)
        if (count := _ARG_COUNT.search(message)) is not None:
            return f"{self.name} takes {count['want']} input(s), {count['got']} given"
        plain = iree_message(message)
        if scalars := [i for i, a in enumerate(arrays) if _is_python_number(a)]:
            # IREE takes a Python int or float as a VM scalar (i64, f32), not as a tensor:
            # its refusal ("vm/list.c ... FAILED_PRECONDITION") names neither the input nor why.
            return (
                f"{self.input(scalars[0])} is a Python {type(arrays[scalars[0]]).__name__}, "
                "which IREE passes as a scalar, not a tensor: pass a 0-d array of the "
                "input's dtype, e.g. np.asarray(2.5, dtype=np.float32) (or "
                f"np.float32(2.5)); IREE said: {plain}"
            )
        if "could not map dtype" in plain:
            return f"an input has a dtype IREE cannot take ({plain}){hint}"
        if "mismatch" in plain and "hal.buffer_view.assert" in message:
            which, index = _which_input(plain, arrays, self.input)
            bf16 = ""
            if "expected bf16" in plain:
                shape = arrays[index].shape if index is not None else (8, 32)
                bf16 = hint.replace("8x32x", "".join(f"{d}x" for d in shape))
            said = self._declared(plain, index)
            return f"{which} does not match {self.name}'s signature: {said}{bf16}"
        return plain

    def _declared(self, plain: str, index: int | None) -> str:
        """IREE's signature message with the expected shape as declared: for a dynamic dim,
        IREE gives the size it read from the wrong input (`expected shape `3x0`` for a 1-D input
        of 3 where `?x?` is declared), which reads as the shape to give."""
        shapes = self.input_shapes
        if index is None or index >= len(shapes) or shapes[index] is None:
            return plain
        return _EXPECTED_SHAPE.sub(f"expected shape `{shapes[index]}` (? is any size)", plain)

    def _explain_dims(self, message: str, arrays: Sequence[Any]) -> str:
        """check-input-dims' message (`dim 0 of %arg1 must equal dim 0 of %arg0`) with each
        dim as the user's input and its size in this call."""
        relation = message.split(DIM_CHECK_MESSAGE + ": ", 1)[-1].split(";")[0].strip()

        def named(found: re.Match[str]) -> str:
            dim, index = int(found["dim"]), int(found["arg"])
            shape = getattr(arrays[index], "shape", ()) if index < len(arrays) else ()
            size = f" (given {shape[dim]})" if dim < len(shape) else ""
            return f"dim {dim} of {self.input(index)}{size}"

        return (
            f"the inputs' dynamic dims do not fit the relations the model was exported with: "
            f"{_INPUT_DIM.sub(named, relation)} (dims named alike are one size: one name in "
            "dynamic_shapes or --dynamic-dim, one dim_param of an ONNX model), so nothing was "
            "computed"
        )


_INPUT_DIM = re.compile(r"dim (?P<dim>\d+) of %arg(?P<arg>\d+)")
_EXPECTED_SHAPE = re.compile(r"expected shape `[^`]*`")
_ACTUAL_SHAPE = re.compile(r"actual shape `(?P<shape>[^`]*)`")
_HAVE_TYPE = re.compile(r"element type mismatch; expected \S+ but have (?P<type>\S+)")


def iree_element_type(dtype: np.dtype) -> str:
    """The element type name IREE's messages use for a numpy dtype (f32, si64, ui16, bf16)."""
    if dtype.name == "bfloat16":
        return "bf16"
    bits = dtype.itemsize * 8
    return {"f": f"f{bits}", "i": f"si{bits}", "u": f"ui{bits}", "b": "i8"}.get(
        dtype.kind, dtype.name
    )


def _which_input(
    plain: str, arrays: Sequence[np.ndarray], name: Callable[[int], str] = input_name
) -> tuple[str, int | None]:
    """`input 2 (%arg1)`: the input IREE's signature check refused, found by its actual shape or
    element type (IREE checks the inputs in order and names none)."""

    def shape(a: np.ndarray) -> str:
        return "x".join(map(str, a.shape))

    if (found := _ACTUAL_SHAPE.search(plain)) is not None:
        candidates = [i for i, a in enumerate(arrays) if shape(a) == found["shape"]]
    elif (found := _HAVE_TYPE.search(plain)) is not None:
        candidates = [
            i for i, a in enumerate(arrays) if iree_element_type(a.dtype) == found["type"]
        ]
    else:
        candidates = []
    if len(candidates) == 1:
        return name(candidates[0]), candidates[0]
    if candidates:
        listed = ", ".join(f"{i + 1} (%arg{i})" for i in candidates)
        return f"one of the inputs {listed}", None
    return "an input", None


def _torch_call(args: Sequence[Any]) -> bool:
    """Whether the caller passes torch tensors (then its results are tensors, and hints speak
    torch)."""
    return any(_is_torch_tensor(arg) for arg in args)


def _is_torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")  # never imported here: a tensor means torch is loaded
    return torch is not None and isinstance(value, torch.Tensor)


def _memory_span(value: Any) -> tuple[int, int] | None:
    """The addresses [start, end) of the memory a numpy array or a torch tensor views (the
    whole storage of a tensor), None for anything else."""
    if isinstance(value, np.ndarray):
        # numpy 2 moved byte_bounds to np.lib.array_utils; 1.26 has it at the top
        byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds
        start, end = byte_bounds(value)
        return start, end
    if _is_torch_tensor(value):
        storage = value.untyped_storage()
        return storage.data_ptr(), storage.data_ptr() + storage.nbytes()
    return None


def _overlap(a: tuple[int, int], b: tuple[int, int] | None) -> bool:
    return b is not None and a[0] < b[1] and b[0] < a[1] and a[0] < a[1] and b[0] < b[1]


def _is_python_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_input(value: Any, name: str, cli: bool = False) -> Any:
    """A call argument as IREE takes it: numpy arrays and scalars pass, in native byte order
    (IREE reads no other: a big-endian `>f4` array from a .npy written elsewhere is swapped,
    its values kept); torch tensors become numpy arrays (bf16 as ml_dtypes.bfloat16); anything
    else is a MipscError naming it."""
    if isinstance(value, np.ndarray | np.generic) and not value.dtype.isnative:
        return value.astype(value.dtype.newbyteorder("="))
    if isinstance(value, np.ndarray | np.generic) or _is_python_number(value):
        return value
    if type(value).__module__.startswith("iree."):
        return value  # IREE's own arrays (DeviceArray, HalBufferView) go in as they are
    if _is_torch_tensor(value):
        import torch

        try:
            tensor = value.detach().cpu().contiguous()
            if tensor.dtype == torch.bfloat16:
                return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
            return tensor.numpy()
        except (RuntimeError, NotImplementedError, TypeError) as err:
            # A tensor with no data (device "meta"), a sparse one, a dtype numpy lacks.
            raise MipscError(
                f"{name} cannot be read as an array ({_first_line(err)}): pass a dense tensor "
                "with its data on the CPU, of a dtype numpy has (or bfloat16)"
            ) from None
    kind = type(value).__name__
    fix = (
        "give it as --input=@file.npy or a literal like 2x3xf32=1"
        if cli
        else "pass a numpy array, e.g. np.asarray(x, dtype=np.float32), or a torch tensor"
    )
    raise MipscError(f"{name} is a {kind}, not an array: {fix}")


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


IMPORT_ALIGNMENT = 64
"""Bytes an array's data must be aligned to for IREE to read it in place: IREE's CPU code
assumes its bindings are 64-byte aligned (IREE_HAL_HEAP_BUFFER_ALIGNMENT); an array that is
not (a slice starting mid-row) is copied, as IREE does for any numpy input."""


STAGE_BYTES = 1 << 20
"""Inputs from this size on go to IREE through a staging array of the module's (a memcpy into
warm pages) instead of IREE's copy into a new buffer (page faults and a memcpy per call)."""


class _Lent:
    """A HAL buffer view over `array`'s memory (what IREE is given for an input)."""

    def __init__(self, view: Any, array: np.ndarray) -> None:
        self.view = view
        self.array = array


def _given(arrays: Sequence[Any], views: Sequence[Any]) -> list[Any]:
    """The call's arguments: each input's view, else the array itself."""
    given = []
    for array, view in zip(arrays, views, strict=True):
        given.append(array if view is None else view.view if isinstance(view, _Lent) else view)
    return given


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialized C-contiguous array whose data is IMPORT_ALIGNMENT-aligned."""
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + IMPORT_ALIGNMENT, np.uint8)
    start = (-raw.ctypes.data) % IMPORT_ALIGNMENT
    return raw[start : start + size].view(dtype).reshape(shape)


def _imported(array: Any) -> _Lent | None:
    """A numpy array as a HAL buffer view over its own memory (no copy), or None when IREE
    cannot take it so: not C-contiguous, not aligned, read-only, empty, or of a dtype IREE
    does not map. IREE may write into it (see Function._views). Calls are synchronous, and
    the view holds the array until IREE releases it.
    """
    import iree.runtime as rt

    if (
        not isinstance(array, np.ndarray)
        or not array.flags.c_contiguous
        or not array.flags.writeable
        or array.size == 0
        or array.ctypes.data % IMPORT_ALIGNMENT
    ):
        return None
    element_type = rt.array_interop.map_dtype_to_element_type(array.dtype)
    if element_type is None:
        return None
    try:
        buffer = kernel_plugin.device().allocator.import_host_allocation(
            array,
            memory_type=int(rt.MemoryType.HOST_LOCAL | rt.MemoryType.DEVICE_VISIBLE),
            allowed_usage=int(rt.BufferUsage.DEFAULT),
        )
        return _Lent(rt.HalBufferView(buffer, list(array.shape), element_type), array)
    except (RuntimeError, ValueError, TypeError):
        return None  # (an allocator that cannot import: IREE copies, as before)


def _device_copy(array: np.ndarray) -> Any:
    """An input IREE cannot read in place, copied to a device array of its own, so that what
    the function writes into it can be read back (IREE's implicit copy is out of reach)."""
    import iree.runtime as rt

    try:
        return rt.asdevicearray(kernel_plugin.device(), array)
    except ValueError:
        return None  # (a dtype IREE does not map: the call fails naming it)


def _write_back(arg: Any, array: Any, view: Any) -> None:
    """After a call that changed an input in place: the caller's `arg` gets the new contents.
    An input read in place from the caller's own memory already has them; one read from a copy
    (a non-contiguous tensor made contiguous, or a device array) is copied back."""
    if view is None:
        return
    if hasattr(view, "to_host"):
        contents = np.asarray(view.to_host())
    elif _same_memory(arg, array):
        return
    else:
        contents = array
    if _is_torch_tensor(arg):
        import torch

        with torch.no_grad():
            if arg.dtype == torch.bfloat16:
                arg.view(torch.int16).copy_(torch.from_numpy(contents.view(np.int16)))
            else:
                arg.copy_(torch.from_numpy(contents))
    elif isinstance(arg, np.ndarray) and arg.flags.writeable:
        np.copyto(arg, contents.reshape(arg.shape))


def _same_memory(arg: Any, array: np.ndarray) -> bool:
    if _is_torch_tensor(arg):
        return bool(arg.device.type == "cpu" and arg.data_ptr() == array.ctypes.data)
    return isinstance(arg, np.ndarray) and arg.ctypes.data == array.ctypes.data


def _as_output(
    result: Any, as_torch: bool, lent: Sequence[np.ndarray] = (), dtype: str | None = None
) -> Any:
    """A result as a numpy array (a torch tensor when `as_torch`), copied if it shares memory
    with one of the `lent` inputs (IREE may return an input's buffer as a result); viewed as
    `dtype` when given (an unsigned result IREE returns as signed, of the same width)."""
    array = np.asarray(result.to_host() if hasattr(result, "to_host") else result)
    if dtype is not None and np.dtype(dtype).itemsize == array.dtype.itemsize:
        array = array.view(dtype)
    if any(isinstance(a, np.ndarray) and np.may_share_memory(array, a) for a in lent):
        array = array.copy()
    if not as_torch:
        return array
    import torch

    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
    # (np.ascontiguousarray would make a 0-d result 1-d)
    return torch.from_numpy(array if array.flags.c_contiguous else array.copy())


# numpy has no bf16: users meet it as uint16 bit patterns, or as `V2` from a .npy file.
_BF16_HINT = (
    "; bf16 inputs are ml_dtypes.bfloat16 arrays: x.astype(ml_dtypes.bfloat16), or "
    "bits.view(ml_dtypes.bfloat16) for uint16 bit patterns"
)
_BF16_TORCH_HINT = "; give it as a bfloat16 tensor: x.to(torch.bfloat16)"
_BF16_CLI_HINT = (
    "; a .npy cannot hold bf16 (np.save writes it as uint16 bits or untyped): give the raw bits "
    "with their type instead, e.g. --input=8x32xbf16=@x.bin after array.tofile('x.bin')"
)


_ARG_COUNT = re.compile(r"expected (?P<want>\d+) arguments but passed (?P<got>\d+)")
# IREE's status text: `Error ...: c/runtime/src/x.c:12: INVALID_ARGUMENT; message; while ...`
# followed by a VM backtrace (`[ 0] bytecode module@1:178 -`).
_IREE_PREFIX = re.compile(r"^.*?\S+\.c:\d+: [A-Z_]+; ", re.S)
_IREE_TYPE_CODE = re.compile(r" \([0-9A-F]{8}\)")


def iree_message(message: str) -> str:
    """The part of an IREE runtime error a user can act on: no C source, status or backtrace."""
    text = _IREE_PREFIX.sub("", message.strip(), count=1)
    text = text.split("; while ", 1)[0]
    text = "\n".join(line for line in text.splitlines() if not line.startswith("["))
    return _IREE_TYPE_CODE.sub("", text).strip().rstrip(";")


PathLike: TypeAlias = str | os.PathLike[str]
# {scope: file}, [(scope, file), ...] or one file; a scope may have several files. "" is the
# unnamed scope, whose files also serve a module that reads one named scope.
Parameters: TypeAlias = PathLike | Mapping[str, PathLike] | Iterable[tuple[str, PathLike]]


def _parameters_hint(scope: str = "scope") -> str:
    return f"parameters={{'{scope}': 'file.irpa'}} (or `mipsc run --parameters={scope}=file.irpa`)"


def _parameter_files(parameters: Parameters) -> list[tuple[str, Path]]:
    """(scope, file) pairs from a dict or a list of pairs; anything else is a user error."""
    if isinstance(parameters, bytes):
        raise MipscError(f"parameters must be a file or files by scope: {_parameters_hint()}")
    if isinstance(parameters, str | os.PathLike):
        # As `--parameters=FILE`: the unnamed scope, or the module's only scope (see Module).
        return [("", Path(parameters))]
    pairs = parameters.items() if isinstance(parameters, Mapping) else parameters
    files: list[tuple[str, Path]] = []
    for pair in pairs:
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], str | os.PathLike)
        ):
            raise MipscError(
                f"parameters: {pair!r} is not a (scope, file) pair; expected {_parameters_hint()}"
            )
        files.append((pair[0], Path(pair[1])))
    return files


def _parameter_indices(parameters: Parameters | None) -> dict[str, Any]:
    """One IREE parameter index per scope, every file of that scope in it (as iree-run-module).

    Files are opened here, before any device exists, so a bad file fails before anything runs.
    """
    import iree.runtime as rt

    indices: dict[str, Any] = {}
    for scope, path in _parameter_files(parameters or {}):
        try:
            with path.open("rb") as file:
                empty = not file.read(1)
        except OSError as err:
            raise MipscError(f"cannot read parameter file '{path}': {err.strerror}") from None
        if empty:
            raise MipscError(f"cannot read parameter file '{path}': it is empty")
        index = indices.setdefault(scope, rt.ParameterIndex())
        try:
            index.load(str(path))
        except (ValueError, RuntimeError, NotImplementedError) as err:
            raise MipscError(
                f"cannot read parameter file '{path}': {iree_message(str(err))}"
            ) from None
    return indices


# IREE's load-time errors for parameters: a scope without files, a key no file of it holds.
_PARAMETER_SCOPE = re.compile(r"no provider registered that handles scopes like '(?P<scope>[^']*)'")
_PARAMETER_KEY = re.compile(r"no parameter found in index with key '(?P<key>[^']*)'")


class NoSuchFunction(MipscError, AttributeError):
    """`module.x` for a function the module does not have: a MipscError, and an AttributeError
    so that `hasattr(module, "x")` and `getattr(module, "x", None)` work."""


class Module:
    """A compiled `.vmfb` loaded on the local CPU device, with the kernel plugin when it needs it.

    `Module("m.vmfb").main(a, b)` returns numpy arrays. `parameters` gives the files of the
    module's external weights, per scope: `{"model": "weights.irpa"}`.
    """

    def __init__(
        self,
        vmfb: str | Path | bytes,
        *,
        plugin: str | Path | None = None,
        parameters: Parameters | None = None,
    ) -> None:
        data = self._read(vmfb)
        indices = _parameter_indices(parameters)
        needed = kernel_plugin.required_kernels(data)
        self._use_plugin(needed, plugin)
        # Files given without a scope serve the unnamed scope; when the module reads another
        # one, they serve that (the first load names it), as long as it reads only one.
        unscoped_as = ""
        # (the plugin, configured by now, collapses what the load maps: nothing to note without)
        configured = kernel_plugin.configured_plugin()
        memory_before = huge_pages.anonymous_memory() if configured is not None else []
        while True:
            try:
                vm_module = self._add_modules(data, indices, unscoped_as)
                break
            except (RuntimeError, ValueError) as err:
                unscoped_as = self._scope_for_unscoped_files(str(err), indices, unscoped_as)
                if not unscoped_as:
                    raise MipscError(self._explain_load_error(str(err), needed)) from None
        self.huge_page_bytes = 0
        """Bytes of new mappings this load made (the weights packed at load, mainly) that
        mipsc.runtime.huge_pages collapsed into huge pages. Not the whole of what the load
        got on huge pages: memory placed in a range an earlier load already advised (a second
        module of the process, often) gets them when first written and is not counted here;
        /proc/self/smaps' AnonHugePages says the total."""
        if configured is not None:
            new_memory = huge_pages.new_ranges(memory_before, huge_pages.anonymous_memory())
            self.huge_page_bytes = huge_pages.collapse(configured, new_memory)
        self.parameter_scopes = {s or unscoped_as: s for s in indices}
        """The scopes the parameter files serve (a file given without one: the module's)."""
        self._vm_module = vm_module
        self._bound = self._context.modules[vm_module.name]
        self.waits_for_workers = kernel_plugin.device_name() == kernel_plugin.DEVICE
        """Whether a call waits for IREE's worker threads (local-task), so that the caller waits
        as a SCHED_BATCH thread (mipsc.runtime.waiting); local-sync runs the call in it."""
        self.call_seconds: dict[str, float] = {}
        """By function: the wall time of its last call (s), which picks how the next waits."""
        self.staging: dict[tuple[str, int], np.ndarray] = {}
        """(function, input position) -> the array large inputs are copied into for IREE."""
        self.staging_lock = threading.Lock()
        self.written_inputs: dict[str, tuple[int, ...]] = {}
        """By function: the positions of the inputs it changes in place (see
        Function.written_inputs); set by whoever knows the source (mipsc.compile does)."""

    def _read(self, vmfb: str | Path | bytes) -> bytes:
        """The module's bytes; sets its display name."""
        if isinstance(vmfb, bytes):
            self.name = "<module>"
            return vmfb
        self.name = str(vmfb)
        try:
            return Path(vmfb).read_bytes()
        except OSError as err:
            raise MipscError(f"cannot read '{vmfb}': {err.strerror}") from None

    def _use_plugin(self, needed: set[str], plugin: str | Path | None) -> None:
        """Check that the plugin (given, or the default) has the kernels the module calls, and
        hand it to IREE if this process has none yet."""
        path = Path(plugin).resolve() if plugin is not None else None
        path = path or kernel_plugin.default_plugin(needed)
        if path is None:
            kernel_plugin.check_kernels(needed, kernel_plugin.configured_plugin(), self.name)
            return
        kernel_plugin.check_kernels(needed, path, self.name)
        kernel_plugin.configure_plugin(path)

    def _add_modules(self, data: bytes, indices: dict[str, Any], unscoped_as: str) -> Any:
        """A new context with the parameter providers and the module in it; the VM module."""
        import iree.runtime as rt

        self._context = rt.SystemContext(config=rt.Config(device=kernel_plugin.device()))
        # Registered even without files, so that a module reading parameters fails naming the
        # scope it needs. It keeps the providers, which keep files mapped.
        providers = [index.create_provider(scope=s or unscoped_as) for s, index in indices.items()]
        params = rt.create_io_parameters_module(self._context.instance, *providers)
        self._context.add_vm_module(params)
        vm_module = rt.VmModule.copy_buffer(self._context.instance, data)
        self._context.add_vm_module(vm_module)
        return vm_module

    def _scope_for_unscoped_files(
        self, message: str, indices: dict[str, Any], unscoped_as: str
    ) -> str:
        """The scope to retry the load with when files given without a scope can serve the one
        the module asked for; "" when the error is another one."""
        missing = _PARAMETER_SCOPE.search(message)
        if missing and "" in indices and not unscoped_as and missing["scope"]:
            return missing["scope"]
        if missing and unscoped_as:
            raise MipscError(
                f"{self.name} reads parameters of more than one scope ('{unscoped_as}', "
                f"'{missing['scope']}'), so a file without a scope is ambiguous: name "
                f"each file's scope, e.g. {_parameters_hint(missing['scope'])}"
            ) from None
        return ""

    def _explain_load_error(self, message: str, needed: set[str]) -> str:
        if (scope := _PARAMETER_SCOPE.search(message)) is not None:
            return (
                f"{self.name} reads its weights from parameters of the scope '{scope['scope']}', "
                f"and no parameter file was given for it: {_parameters_hint(scope['scope'])}"
            )
        if (key := _PARAMETER_KEY.search(message)) is not None:
            return (
                f"{self.name} reads the parameter '{key['key']}', which none of the parameter "
                "files of its scope holds"
            )
        if "no executable loader" in message and needed:
            return (
                f"{self.name} needs the kernels {', '.join(sorted(needed))} from the plugin "
                f"{kernel_plugin.configured_plugin()}, and IREE could not resolve them"
            )
        if "FlatBuffer" in message or "flatbuffer" in message or "INVALID_ARGUMENT" in message:
            return (
                f"{self.name} is not a valid IREE module (.vmfb; make one with `mipsc compile`): "
                f"{iree_message(message)}"
            )
        return f"cannot load {self.name}: {iree_message(message)}"

    @property
    def function_names(self) -> list[str]:
        """The functions users call (not IREE's `$async` variants or initializers)."""
        names = self._vm_module.function_names
        return [n for n in names if not n.startswith("__") and not n.endswith("$async")]

    def function(self, name: str) -> Function:
        # IREE's own entry points (`__init`, `main$async`) would take or return raw VM values.
        names = self.function_names
        if name not in names:
            listed = ", ".join(names) or "none"
            raise NoSuchFunction(f"{self.name} has no function '{name}' (its functions: {listed})")
        reflection = self._vm_module.lookup_function(name).reflection
        written = self.written_inputs.get(name, ())
        inputs, outputs = input_names(reflection), unsigned_outputs(reflection)
        shapes = input_shapes(reflection)
        return Function(self, name, self._bound[name], written, inputs, outputs, shapes)

    def __getattr__(self, name: str) -> Function:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.function(name)


def load(
    vmfb: str | Path | bytes,
    *,
    plugin: str | Path | None = None,
    parameters: Parameters | None = None,
) -> Module:
    """Load a `.vmfb` made by `mipsc compile`, with the kernel plugin if it calls kernels."""
    return Module(vmfb, plugin=plugin, parameters=parameters)


def call(module: Module, function: str, inputs: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Call `function` and always get a tuple of outputs."""
    result = module.function(function).call(inputs, cli=True)
    return result if isinstance(result, tuple) else (result,)
