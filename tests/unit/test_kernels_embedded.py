"""The freestanding kernel object (mips_kernels_embedded.o) and the embedded entry points.

The object is what iree-compile links into a module built with --kernel-link=embedded; here it is
linked the way IREE links it (-nostdlib, --no-undefined, into a shared object) and called through
ctypes. Forced configurations (the object cannot read MIPSC_KERNEL_CONFIG) are built with
`make EMBEDDED_DEFS=-DMIPS_FORCE_CONFIG=...` into build/ (see embedded_object). The entry points'
workspace scheme (blocks fitted into the lent memory) is checked through the plugin's copy too,
which also runs under the sanitizers.
"""

import ctypes
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from kernel_plugin import plugin_path
from test_kernels import (
    COMBOS,
    DTYPES,
    LAYOUTS,
    STORAGE,
    _describe,
    bits,
    call,
    check_result,
    kernel_info,
    lib,  # noqa: F401 (the plugin fixture)
    make_params,
    random_values,
    to_f64,
)
from test_kernels_packed import check_embedded_entries

from mipsc.kernel_abi import (
    ACTIVATIONS,
    BIAS_MODES,
    BINARY_OPS,
    EMBEDDED_WORKSPACE_MAX_BYTES,
    EPILOGUE_PARAMS,
    EPILOGUE_SYMBOLS,
    KERNEL_ABI_VERSION,
    MATMUL_SYMBOLS,
    EpilogueParams,
    embedded_object_path,
    embedded_symbol,
)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
I64 = ctypes.c_int64
VP = ctypes.c_void_p
CONFIGS = ("intel-avx512", "avx2", "sse2")
"""The forced entries tested besides the detected one (zen4 on the project's machine: AVX-512,
bf16 on VDPBF16PS): each vector path the kernels have (intel-avx512: bf16 widened on AVX-512).
One whose ISA this CPU lacks is skipped (the object would ignore the forcing)."""
CONFIG_ISA = {"intel-avx512": "avx512", "avx2": "avx2", "sse2": "generic"}


def embedded_object(config: str | None) -> pathlib.Path:
    """The package's object (None), or one built with MIPS_FORCE_CONFIG=config in build/."""
    if config is None:
        return embedded_object_path()
    build = f"build/embedded-{config}"
    target = f"{build}/mips_kernels_embedded.o"
    subprocess.run(
        [
            "make", "-s", "-C", str(REPO_ROOT), f"EMBEDDED={target}", f"EMBEDDED_BUILD={build}",
            f"EMBEDDED_DEFS=-DMIPS_FORCE_CONFIG={config}", target,
        ],
        check=True,
    )  # fmt: skip
    return REPO_ROOT / target


def link_like_iree(obj: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """The object linked as iree-compile links it: a shared object, no libc, nothing left
    undefined (a symbol from outside would fail here, as it fails iree-compile)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to link the object")
    cmd = [cc, "-shared", "-nostdlib", "-Wl,--no-undefined", "-o", str(out), str(obj)]
    subprocess.run(cmd, check=True)
    return out


def load_embedded(path: pathlib.Path) -> ctypes.CDLL:
    library = ctypes.CDLL(str(path))
    load_embedded_in(library)
    return library


@pytest.fixture(scope="module")
def detected(tmp_path_factory) -> ctypes.CDLL:
    """The package's object, linked like IREE links it."""
    out = tmp_path_factory.mktemp("embedded") / "detected.so"
    return load_embedded(link_like_iree(embedded_object(None), out))


def call_embedded(library, dtype, a_base, a, b_base, b, c_base, c, accumulate, workspace) -> int:
    """One call of mips_matmul_<dtype>_embedded on views of the bases; workspace is a numpy
    buffer (its bytes are lent) or None."""
    m, k = a.shape
    n = b.shape[1]
    ws, ws_bytes = (None, 0) if workspace is None else (workspace.ctypes.data, workspace.nbytes)
    fn = getattr(library, embedded_symbol(f"mips_matmul_{dtype}"))
    args = (*_describe(a_base, a), *_describe(b_base, b), *_describe(c_base, c))
    return fn(*args, m, n, k, accumulate, ws, ws_bytes)


def run_embedded_case(library, rng, dtype, m, n, k, combo, accumulate, workspace):
    """A random call checked against the f64 reference; C's bits outside its view kept."""
    st = STORAGE[dtype]
    bases, views = [], []
    for (rows, cols), name in zip(((m, k), (k, n), (m, n)), combo, strict=True):
        shape_fn, view_fn = LAYOUTS[name]
        base = random_values(rng, shape_fn(rows, cols), dtype).astype(st)
        bases.append(base)
        views.append(view_fn(base, rows, cols))
    c_before = bases[2].copy()
    a64, b64, c64 = (to_f64(np.array(v), dtype) for v in views)
    rc = call_embedded(library, dtype, bases[0], views[0], bases[1], views[1], bases[2], views[2],
                       accumulate, workspace)  # fmt: skip
    assert rc == 0
    mask = np.zeros(bases[2].shape, bool)
    LAYOUTS[combo[2]][1](mask, m, n)[...] = True
    assert np.array_equal(bits(bases[2][~mask]), bits(c_before[~mask]))
    check_result(np.array(views[2]), a64, b64, c64, accumulate, dtype)


def test_object_is_freestanding_and_tagged():
    """Nothing undefined (IREE links -nostdlib --no-undefined), and the ABI tag mipsc reads."""
    obj = embedded_object(None)
    nm = shutil.which("nm")
    if nm is not None:
        undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True)
        assert undefined.stdout.strip() == ""
    data = obj.read_bytes()
    assert f"mips_kernel_abi_version={KERNEL_ABI_VERSION};".encode() in data
    # No plugin-ABI entry points, counters or libc in the object.
    assert b"mips_matmul_f32\0" not in data
    assert b"mips_debug_call_count" not in data


SHAPES = [(1, 1, 1), (3, 5, 0), (7, 1, 13), (13, 50, 31), (37, 23, 19), (100, 70, 600)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedded_object_every_config(lib, tmp_path, dtype):  # noqa: F811
    """The linked object computes right on every configuration this CPU can run (the package's
    detected one, and each forced entry), with the module's 1 MiB workspace. Forced to avx2 or
    intel-avx512, it gives the bits of the plugin's path of that ISA (the test hook; k in one
    block, so the same sums): the forcing works."""
    workspace = np.zeros(EMBEDDED_WORKSPACE_MAX_BYTES, np.uint8)
    rng = np.random.default_rng(7)
    ran = 0
    for config in (None, *CONFIGS):
        if config is not None and not _cpu_has(config):
            continue
        name = config or "detected"
        library = load_embedded(link_like_iree(embedded_object(config), tmp_path / f"{name}.so"))
        for m, n, k in SHAPES:
            for combo in COMBOS[:4]:
                run_embedded_case(library, rng, dtype, m, n, k, combo, 1, workspace)
        if config in ("avx2", "intel-avx512"):
            assert_same_bits_as_hook(library, lib, dtype, CONFIG_ISA[config].encode(), workspace)
        ran += 1
    assert ran >= 2


def assert_same_bits_as_hook(library, plugin, dtype, isa, workspace) -> None:
    st = STORAGE[dtype]
    rng = np.random.default_rng(11)
    a = random_values(rng, (70, 200), dtype).astype(st)
    b = random_values(rng, (200, 90), dtype).astype(st)
    c_obj, c_hook = np.zeros((70, 90), st), np.zeros((70, 90), st)
    assert call_embedded(library, dtype, a, a, b, b, c_obj, c_obj, 0, workspace) == 0
    params = make_params(a, a, b, b, c_hook, c_hook, 0)
    assert call(plugin, dtype, params, isa) == 0
    assert np.array_equal(bits(c_obj), bits(c_hook))


def _cpu_has(config: str) -> bool:
    """Whether this CPU has the ISA of a configuration entry (from the plugin's view)."""
    plugin = ctypes.CDLL(str(plugin_path()))
    plugin.mips_debug_matmul_isa.argtypes = [ctypes.c_char_p, ctypes.c_char_p, VP]
    # A NULL params call returns 1 (rejected) on a path the CPU has, -1 on one it lacks.
    return plugin.mips_debug_matmul_isa(b"mips_matmul_f32", CONFIG_ISA[config].encode(), None) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("workspace_bytes", [0, 4096, 96 * 1024, EMBEDDED_WORKSPACE_MAX_BYTES])
def test_blocks_fit_the_workspace(lib, dtype, workspace_bytes):  # noqa: F811
    """A small workspace shrinks the blocks (or, with none, takes the plain loop): still right,
    through the plugin's copy of the entry points (sanitized in `make test-asan`). Large k and
    n make f16/bf16 keep partial sums in W and split k into several blocks."""
    load_embedded_in(lib)
    rng = np.random.default_rng(workspace_bytes)
    workspace = np.zeros(workspace_bytes, np.uint8) if workspace_bytes else None
    for m, n, k in [(40, 300, 700), (5, 33, 2100), (200, 64, 2500), (2, 9000, 3)]:
        run_embedded_case(lib, rng, dtype, m, n, k, COMBOS[0], 1, workspace)
        run_embedded_case(lib, rng, dtype, m, n, k, COMBOS[2], 0, workspace)


def load_embedded_in(library: ctypes.CDLL) -> None:
    """Declares the embedded entry points of `library` (the object's or the plugin's)."""
    for symbol in MATMUL_SYMBOLS.values():
        fn = getattr(library, embedded_symbol(symbol))
        fn.argtypes = [VP, I64, I64, I64] * 3 + [I64] * 4 + [VP, I64]
        fn.restype = ctypes.c_int
    for symbol in EPILOGUE_SYMBOLS.values():
        fn = getattr(library, embedded_symbol(symbol))
        fn.argtypes = [VP if name in ("c", "bias", "other") else I64 for name in EPILOGUE_PARAMS]
        fn.restype = ctypes.c_int


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedded_equals_plugin_bit_for_bit(lib, detected, dtype):  # noqa: F811
    """With the configuration's blocks (they fit 1 MiB for these shapes), the object and the
    plugin run the same code: the same bits."""
    load_embedded_in(lib)
    rng = np.random.default_rng(3)
    workspace = np.zeros(EMBEDDED_WORKSPACE_MAX_BYTES, np.uint8)
    st = STORAGE[dtype]
    for m, n, k in [(37, 23, 19), (96, 64, 300), (516, 256, 500)]:
        a = random_values(rng, (m, k), dtype).astype(st)
        b = random_values(rng, (k, n), dtype).astype(st)
        outs = []
        for library in (detected, lib):
            c = np.zeros((m, n), st)
            assert call_embedded(library, dtype, a, a, b, b, c, c, 0, workspace) == 0
            outs.append(bits(c))
        assert np.array_equal(outs[0], outs[1])
    assert kernel_info(lib)["config"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_invalid_calls_touch_nothing(detected, dtype):
    """The contract's errors hold in the object: non-zero, C untouched."""
    st = STORAGE[dtype]
    a, b = np.ones((4, 3), st), np.ones((3, 5), st)
    c = np.full((4, 5), 7, st)
    before = c.copy()
    fn = getattr(detected, embedded_symbol(f"mips_matmul_{dtype}"))
    args = [*_describe(a, a), *_describe(b, b), *_describe(c, c)]
    bad_k = fn(*args, 4, 5, -1, 0, None, 0)
    bad_acc = fn(*args, 4, 5, 3, 2, None, 0)
    assert (bad_k, bad_acc) == (1, 1)
    assert np.array_equal(bits(c), bits(before))


def _epilogue_case(rng: np.random.Generator, dtype: str) -> tuple[np.ndarray, ...]:
    """C (a strided 13 x 70 view), a bias and a transposed `other`, of random values."""
    st = STORAGE[dtype]
    c_base = random_values(rng, (20, 150), dtype).astype(st)
    bias = random_values(rng, (70,), dtype).astype(st)
    other_base = random_values(rng, (70, 13), dtype).astype(st)
    return c_base, c_base[3:16, 5:145:2], bias, other_base, other_base.T


def _epilogue_args(c_base, c, bias, other_base, other, kinds: tuple[int, int, int]) -> list:
    """The EPILOGUE_PARAMS of a call on views of the bases, in order."""
    bias_stride = bias.strides[0] // bias.itemsize
    m, n = c.shape
    return [*_describe(c_base, c), bias.ctypes.data, 0, bias_stride,
            *_describe(other_base, other), m, n, *kinds]  # fmt: skip


EPILOGUE_SYMBOLS_BY_NAME = {dtype: f"mips_epilogue_{dtype}" for dtype in DTYPES}
EPILOGUE_KINDS = [
    (BIAS_MODES["add"], ACTIVATIONS["gelu"], BINARY_OPS["mul"]),
    (BIAS_MODES["none"], ACTIVATIONS["silu"], BINARY_OPS["add"]),
    (BIAS_MODES["set"], ACTIVATIONS["none"], BINARY_OPS["none"]),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedded_epilogue_equals_plugin_bit_for_bit(lib, detected, dtype):  # noqa: F811
    """mips_epilogue_<t>_embedded in the object (params as arguments) gives the bits of the
    plugin's mips_epilogue_<t> (params struct) on strided tiles, over C's whole base."""
    rng = np.random.default_rng(5)
    plugin_fn = getattr(lib, EPILOGUE_SYMBOLS_BY_NAME[dtype])
    plugin_fn.argtypes = [VP] * 3
    for kinds in EPILOGUE_KINDS:
        c_base, c, bias, other_base, other = _epilogue_case(rng, dtype)
        c_obj_base = c_base.copy()
        c_obj = c_obj_base[3:16, 5:145:2]
        embedded = getattr(detected, embedded_symbol(EPILOGUE_SYMBOLS_BY_NAME[dtype]))
        args = _epilogue_args(c_obj_base, c_obj, bias, other_base, other, kinds)
        assert embedded(*args) == 0
        params = EpilogueParams(*_epilogue_args(c_base, c, bias, other_base, other, kinds))
        assert plugin_fn(ctypes.byref(params), None, None) == 0
        assert np.array_equal(bits(c_obj_base), bits(c_base))


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedded_epilogue_invalid_calls_touch_nothing(detected, dtype):
    """The epilogue's errors hold in the object: non-zero, C untouched."""
    rng = np.random.default_rng(6)
    c_base, c, bias, other_base, other = _epilogue_case(rng, dtype)
    before = c_base.copy()
    fn = getattr(detected, embedded_symbol(EPILOGUE_SYMBOLS_BY_NAME[dtype]))
    bad_mode = _epilogue_args(c_base, c, bias, other_base, other, (3, 0, 0))
    set_and_act = _epilogue_args(c_base, c, bias, other_base, other, (2, 1, 0))
    negative_m = _epilogue_args(c_base, c, bias, other_base, other, (0, 1, 0))
    negative_m[11] = -1
    assert [fn(*bad_mode), fn(*set_and_act), fn(*negative_m)] == [1, 1, 1]
    assert np.array_equal(bits(c_base), bits(before))


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_embedded_pack_and_packed_matmul_in_the_object(detected, dtype):
    """The object's mips_pack_b_<t>_embedded writes the contract's layout and its
    mips_matmul_packed_<t>_embedded computes the exact products from it, with the 1 MiB a
    module lends and with none."""
    for workspace in (np.zeros(EMBEDDED_WORKSPACE_MAX_BYTES, np.uint8), None):
        check_embedded_entries(detected, dtype, workspace)
