"""Running compiled modules: locating and loading the kernel plugin, numpy in and out.

IREE reads `--executable_plugin` once per process, when the first local device is created, so
the plugin is configured here before any device exists, and every module of this process
shares that device.

bf16 tensors are `ml_dtypes.bfloat16` arrays (a dependency of iree-base-runtime, whose
`asdevicearray`/`to_host` map that dtype to and from HAL's BFLOAT_16). Weights exported as
`#flow.parameter.named<"scope"::"key">` come from parameter files (.irpa, .safetensors, .gguf)
given per scope, as iree-run-module's `--parameters=scope=file.irpa`.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import ml_dtypes
import numpy as np

from mipsc.diagnostics import MipscError
from mipsc.kernel_abi import (
    ABI_VERSION_SYMBOL,
    EMBEDDED_ABI_TAG,
    KERNEL_ABI_VERSION,
    KERNEL_INFO_SYMBOL,
    KERNEL_SYMBOLS,
    OPENBLAS_ENV,
    OPENBLAS_ERROR_SYMBOL,
    OPENBLAS_SYMBOL,
)

PLUGIN_ENV = "MIPSC_PLUGIN"
PLUGIN_FILE = "libmips_kernels.so"
DEVICE = "local-task"

_KNOWN_KERNELS = frozenset(KERNEL_SYMBOLS)
# Longest first: mips_matmul_openblas_f32 is not read as anything shorter.
_KERNEL_NAME = re.compile(
    b"|".join(re.escape(s.encode()) for s in sorted(_KNOWN_KERNELS, key=len, reverse=True))
)

_configured_plugin: Path | None = None


def plugin_path() -> Path:
    """The kernel plugin: $MIPSC_PLUGIN if set, else the one `make kernels` builds."""
    path = Path(os.environ.get(PLUGIN_ENV) or Path(__file__).parent / "_lib" / PLUGIN_FILE)
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


def _default_plugin(needed: set[str]) -> Path | None:
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


def _configure_plugin(path: Path) -> None:
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


def _device() -> Any:
    """The process's local CPU device (IREE caches it)."""
    global _device_made
    import iree.runtime as rt

    device = rt.get_device(DEVICE)
    _device_made = True
    return device


def _check_kernels(needed: set[str], plugin: Path | None, module_name: str) -> None:
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


class Function:
    """A callable function of a loaded module: numpy arrays in, numpy arrays out."""

    def __init__(self, module: Module, name: str, invoke: Any) -> None:
        self._module = module
        self.name = name
        self._invoke = invoke

    def __call__(self, *args: Any) -> Any:
        """Call with numpy arrays (bf16: ml_dtypes.bfloat16) or torch tensors, in order.

        Returns one array, or a tuple for several results; torch tensors when any input was a
        torch tensor. A failure (wrong count, shape or dtype; a kernel's refusal) is a
        MipscError that names the input.
        """
        return self.call(args)

    def call(self, args: Sequence[Any], *, cli: bool = False) -> Any:
        """`__call__`, with hints worded for `mipsc run`'s flags when `cli`."""
        arrays = [_as_input(arg, index, cli) for index, arg in enumerate(args)]
        try:
            results = self._invoke(*arrays)
        except (RuntimeError, ValueError, IndexError, TypeError) as err:
            # IREE maps its status codes onto these (OUT_OF_RANGE is an IndexError).
            raise MipscError(
                f"{self._module.name}: calling {self.name} failed: "
                f"{self._explain(str(err), arrays, cli)}"
            ) from None
        as_torch = any(_is_torch_tensor(arg) for arg in args)
        if results is None:
            return ()
        if isinstance(results, tuple | list):
            return tuple(_as_output(r, as_torch) for r in results)
        return _as_output(results, as_torch)

    def _explain(self, message: str, arrays: Sequence[np.ndarray], cli: bool) -> str:
        """IREE's invocation error in the user's terms."""
        hint = _BF16_CLI_HINT if cli else _BF16_HINT
        if "dispatch kernel returned non-zero" in message:
            return (
                "a kernel rejected its arguments, so nothing was computed: the input "
                "shapes do not fit (for example, the K dims of a matmul's inputs differ)\n"
                f"IREE said: {message.strip()}"
            )
        if (count := _ARG_COUNT.search(message)) is not None:
            return f"{self.name} takes {count['want']} input(s), {count['got']} given"
        plain = iree_message(message)
        if "could not map dtype" in plain:
            return f"an input has a dtype IREE cannot take ({plain}){hint}"
        if "mismatch" in plain and "hal.buffer_view.assert" in message:
            which, index = _which_input(plain, arrays)
            bf16 = ""
            if "expected bf16" in plain:
                shape = arrays[index].shape if index is not None else (8, 32)
                bf16 = hint.replace("8x32x", "".join(f"{d}x" for d in shape))
            return f"{which} does not match {self.name}'s signature: {plain}{bf16}"
        return plain


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


def _which_input(plain: str, arrays: Sequence[np.ndarray]) -> tuple[str, int | None]:
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
        return f"input {candidates[0] + 1} (%arg{candidates[0]})", candidates[0]
    if candidates:
        listed = ", ".join(f"{i + 1} (%arg{i})" for i in candidates)
        return f"one of the inputs {listed}", None
    return "an input", None


def _is_torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")  # never imported here: a tensor means torch is loaded
    return torch is not None and isinstance(value, torch.Tensor)


def _as_input(value: Any, index: int, cli: bool = False) -> Any:
    """A call argument as IREE takes it: numpy arrays and scalars pass; torch tensors become
    numpy arrays (bf16 as ml_dtypes.bfloat16); anything else is a MipscError naming it."""
    if isinstance(value, np.ndarray | np.generic | int | float) and not isinstance(value, bool):
        return value
    if type(value).__module__.startswith("iree."):
        return value  # IREE's own arrays (DeviceArray, HalBufferView) go in as they are
    if _is_torch_tensor(value):
        import torch

        tensor = value.detach().cpu().contiguous()
        if tensor.dtype == torch.bfloat16:
            return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return tensor.numpy()
    kind = type(value).__name__
    fix = (
        "give it as --input=@file.npy or a literal like 2x3xf32=1"
        if cli
        else "pass a numpy array, e.g. np.asarray(x, dtype=np.float32), or a torch tensor"
    )
    raise MipscError(f"input {index + 1} (%arg{index}) is a {kind}, not an array: {fix}")


def _as_output(result: Any, as_torch: bool) -> Any:
    array = np.asarray(result.to_host() if hasattr(result, "to_host") else result)
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
        import iree.runtime as rt

        if isinstance(vmfb, bytes):
            data, self.name = vmfb, "<module>"
        else:
            try:
                data = Path(vmfb).read_bytes()
            except OSError as err:
                raise MipscError(f"cannot read '{vmfb}': {err.strerror}") from None
            self.name = str(vmfb)
        indices = _parameter_indices(parameters)
        needed = required_kernels(data)
        plugin_file = Path(plugin).resolve() if plugin is not None else _default_plugin(needed)
        if plugin_file is not None:
            _check_kernels(needed, plugin_file, self.name)
            _configure_plugin(plugin_file)
        else:
            _check_kernels(needed, _configured_plugin, self.name)
        # Files given without a scope serve the unnamed scope; when the module reads another
        # one, they serve that (the first load names it), as long as it reads only one.
        unscoped_as = ""
        while True:
            self._context = rt.SystemContext(config=rt.Config(device=_device()))
            try:
                # Registered even without files, so that a module reading parameters fails
                # naming the scope it needs. It keeps the providers, which keep files mapped.
                providers = [
                    index.create_provider(scope=s or unscoped_as) for s, index in indices.items()
                ]
                params = rt.create_io_parameters_module(self._context.instance, *providers)
                self._context.add_vm_module(params)
                vm_module = rt.VmModule.copy_buffer(self._context.instance, data)
                self._context.add_vm_module(vm_module)
                break
            except (RuntimeError, ValueError) as err:
                missing = _PARAMETER_SCOPE.search(str(err))
                if missing and "" in indices and not unscoped_as and missing["scope"]:
                    unscoped_as = missing["scope"]
                    continue
                if missing and unscoped_as:
                    raise MipscError(
                        f"{self.name} reads parameters of more than one scope ('{unscoped_as}', "
                        f"'{missing['scope']}'), so a file without a scope is ambiguous: name "
                        f"each file's scope, e.g. {_parameters_hint(missing['scope'])}"
                    ) from None
                raise MipscError(self._explain_load_error(str(err), needed)) from None
        self.parameter_scopes = {s or unscoped_as: s for s in indices}
        """The scopes the parameter files serve (a file given without one: the module's)."""
        self._vm_module = vm_module
        self._bound = self._context.modules[vm_module.name]

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
                f"{_configured_plugin}, and IREE could not resolve them"
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
        return Function(self, name, self._bound[name])

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
