"""The error catalogue: each mistake a user can make, its message, exit code 1, no traceback.

README's Troubleshooting table lists these messages. The cases already covered where their
command is tested live there (test_cli_opt.py, test_cli_compile_run.py,
test_cli_run_bf16_parameters.py, e2e/test_kernel_path.py); this file adds the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import mipsc
from mipsc.cli import main
from mipsc.diagnostics import MipscError
from mipsc.kernel_abi import KERNEL_ABI_VERSION, MATMUL_SYMBOLS, OPENBLAS_ENV

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"

MM_F64 = """func.func @main(%a: !torch.vtensor<[2,3],f64>, %b: !torch.vtensor<[3,4],f64>) -> !torch.vtensor<[2,4],f64> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],f64>, !torch.vtensor<[3,4],f64> -> !torch.vtensor<[2,4],f64>
  return %0 : !torch.vtensor<[2,4],f64>
}
"""


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert "error: " in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------
# The input file


@pytest.mark.parametrize("command", ["opt", "compile"])
def test_unreadable_input(tmp_path, command):
    # Tests run as root, whom chmod 000 does not stop: a path through a file cannot be read.
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "model.mlir"
    assert_user_error(run(command, path), f"error: cannot read '{path}': Not a directory")


def test_not_mlir_for_compile(tmp_path):
    path = write(tmp_path / "model.txt", "import torch\n")  # (a .py is a module to export)
    assert_user_error(
        run("compile", path, "-o", tmp_path / "m.vmfb"), f"{path}:1:", "unknown operation"
    )
    assert not (tmp_path / "m.vmfb").exists()


def test_truncated_mlir(tmp_path):
    text = (DATA / "mm_static.mlir").read_text()
    path = write(tmp_path / "cut.mlir", text[: text.index("torch.aten.mm") + 30])
    result = run("opt", path)
    assert_user_error(result, f"{path}:3:", "the input ends in the middle of an op (cut short?)")
    assert result.output.splitlines()[-1].strip() == "^"


@pytest.mark.parametrize("text", ["", "\n\n", "// only a comment\n"])
def test_empty_input(text):
    assert_user_error(run("opt", "-", input=text), "error: the input is empty")


def test_unknown_dialect_op_with_custom_syntax(tmp_path):
    path = write(
        tmp_path / "foo.mlir",
        "func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n"
        "  %0 = foo.bar %a : tensor<2xf32>\n"
        "  return %0 : tensor<2xf32>\n}\n",
    )
    assert_user_error(
        run("opt", path),
        f"{path}:2:",
        "unknown operation 'foo.bar'",
        'the generic form ("dialect.op"(...) : (...) -> ...)',
    )
    # Written generically, as the message says, it is kept as it is.
    generic = path.read_text().replace(
        "foo.bar %a : tensor<2xf32>", '"foo.bar"(%a) : (tensor<2xf32>) -> tensor<2xf32>'
    )
    result = run("opt", "-", input=generic)
    assert result.exit_code == 0 and '"foo.bar"(%a)' in result.output


def test_torch_op_with_a_custom_syntax(tmp_path):
    vt = "!torch.vtensor<[2],f32>"
    path = write(
        tmp_path / "custom.mlir",
        f"func.func @f(%a: {vt}) -> {vt} {{\n"
        f"  %0 = torch.aten.relu %a : {vt} -> {vt} inplace\n"
        f"  return %0 : {vt}\n}}\n",
    )
    assert_user_error(
        run("opt", path),
        f"{path}:2:",
        "unexpected 'inplace': this torch op has a custom syntax that mipsc does not know",
    )


def test_op_that_its_definition_refuses(tmp_path):
    path = write(tmp_path / "big.mlir", "%0 = torch.constant.int 99999999999999999999999\n")
    assert_user_error(
        run("opt", path),
        f"{path}:1:1: error: cannot parse this 'torch.constant.int' op: Integer value",
    )


# --------------------------------------------------------------------------------------------
# Shapes and types


def test_mm_with_mismatched_k_fails_before_iree_compile(tmp_path):
    path = write(
        tmp_path / "k.mlir",
        (DATA / "mm_static.mlir").read_text().replace("[19,23]", "[18,23]"),
    )
    assert_user_error(
        run("compile", path, "-o", tmp_path / "k.vmfb"),
        f"{path}:3:5: error: 'torch.aten.mm' op K mismatch: self dim 1 is 19 but mat2 dim 0 is 18",
    )
    assert not (tmp_path / "k.vmfb").exists()


@pytest.mark.parametrize(
    ("op", "types", "message"),
    [
        (
            "torch.aten.matmul %a, %b",
            "!torch.vtensor<[2,5],f32>, !torch.vtensor<[3,4],f32>",
            "'torch.aten.matmul' op K mismatch: the lhs [2x5] has K = 5 but the rhs [3x4] has "
            "K = 3",
        ),
        (
            "torch.aten.matmul %a, %b",
            "!torch.vtensor<[2,2,3],f32>, !torch.vtensor<[3,3,4],f32>",
            "'torch.aten.matmul' op batch dims do not broadcast: 2 and 3 differ",
        ),
        (
            "torch.aten.linear %a, %b",
            "!torch.vtensor<[2,3],f32>, !torch.vtensor<[4,3],f32>",
            "'torch.aten.linear' op result type !torch.vtensor<[2,4,1],f32> does not fit the "
            "operands, which make [2x4]",
        ),
    ],
)
def test_family_op_with_shapes_that_do_not_fit(tmp_path, op, types, message):
    """Only aten.mm has a verifier; the rest of the family is checked by the conversion."""
    result_type = "!torch.vtensor<[2,4,1],f32>" if "linear" in op else "!torch.vtensor<[2,4],f32>"
    path = write(
        tmp_path / "bad.mlir",
        f"func.func @main(%a: {types.split(', ')[0]}, %b: {types.split(', ')[1]}) -> "
        f"{result_type} {{\n"
        f"  %0 = {op} : {types} -> {result_type}\n"
        f"  return %0 : {result_type}\n}}\n",
    )
    assert_user_error(run("opt", path, "--convert-torch-to-mips"), f"{path}:2:3: error: {message}")


def test_unsupported_dtype_falls_back_with_a_remark(tmp_path):
    path = write(tmp_path / "f64.mlir", MM_F64)
    result = run("opt", path, "--convert-torch-to-mips", "--remarks")
    assert result.exit_code == 0, result.output
    assert "torch.aten.mm %a, %b" in result.stdout  # left as it was
    assert (
        f"{path}:2:3: remark: [convert-torch-to-mips] torch.aten.mm left on IREE's path: "
        "element type f64 is not supported by the kernel (f32, f16, bf16 are)"
    ) in result.stderr
    # ... and IREE computes it, in f64 (iree-compile would demote it to f32 by default).
    vmfb = tmp_path / "f64.vmfb"
    result = run("compile", path, "-o", vmfb, "--report")
    assert result.exit_code == 0, result.output
    assert "@main: 0 of 1 matmul-family ops run in the kernel" in result.output
    a = np.arange(6, dtype=np.float64).reshape(2, 3) / 3
    b = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "c.npy"
    result = run("run", vmfb, f"--input=@{tmp_path / 'a.npy'}", f"--input=@{tmp_path / 'b.npy'}",
                 f"--output=@{out}")  # fmt: skip
    assert result.exit_code == 0, result.output
    got = np.load(out)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, a @ b, rtol=1e-15)


# --------------------------------------------------------------------------------------------
# Outputs


@pytest.mark.parametrize("target", ["dir", "file/inside"])
def test_output_path_not_writable(tmp_path, target):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    out = tmp_path / target
    reason = "Is a directory" if target == "dir" else "Not a directory"
    source = DATA / "mm_static.mlir"
    assert_user_error(run("opt", source, "-o", out), f"error: cannot write '{out}': {reason}")
    assert_user_error(
        run("compile", source, "--emit=mips", "-o", out), f"error: cannot write '{out}': {reason}"
    )
    # iree-compile's own "cannot open output file" says the same.
    assert_user_error(run("compile", source, "-o", out), f"error: cannot write '{out}': {reason}")


# --------------------------------------------------------------------------------------------
# The plugin


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_wrong_plugin_a_library_that_is_not_a_plugin(tmp_path, mm_vmfb):
    """MIPSC_PLUGIN naming a real shared library without the plugin entry point."""
    source = write(tmp_path / "other.c", "int not_a_plugin(void) { return 42; }\n")
    lib = tmp_path / "libother.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, source], check=True)
    result = subprocess.run(
        [sys.executable, "-m", "mipsc", "run", str(mm_vmfb), "--input=37x19xf32=1",
         "--input=19x23xf32=1"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "MIPSC_PLUGIN": str(lib)},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"error: {lib} is not an IREE executable plugin (no plugin query function)"
    )


@pytest.fixture(scope="module")
def f64_vmfb(tmp_path_factory) -> Path:
    """A module without kernel calls (its f64 mm stays on IREE's path)."""
    tmp = tmp_path_factory.mktemp("f64")
    vmfb = tmp / "f64.vmfb"
    assert run("compile", write(tmp / "f64.mlir", MM_F64), "-o", vmfb).exit_code == 0
    return vmfb


def run_with_plugin(vmfb: Path, plugin: Path, dtype: str = "f32") -> subprocess.CompletedProcess:
    shapes = ("37x19", "19x23") if dtype == "f32" else ("2x3", "3x4")
    return subprocess.run(
        [sys.executable, "-m", "mipsc", "run", str(vmfb), f"--input={shapes[0]}x{dtype}=1",
         f"--input={shapes[1]}x{dtype}=1"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "MIPSC_PLUGIN": str(plugin)},
    )  # fmt: skip


CC_FLAGS = ["-O0", "-std=c11", "-fPIC", "-fvisibility=hidden"]


def compile_objects(sources: list[Path], folder: Path, defines: tuple[str, ...] = ()) -> None:
    """`cc -c` of each source into `folder`, two at a time (the machine's cores)."""
    pending = list(sources)
    while pending:
        batch, pending = pending[:2], pending[2:]
        jobs = [
            subprocess.Popen(["cc", *CC_FLAGS, *defines, "-c", str(source), "-o",
                              str(folder / f"{source.stem}.o")])
            for source in batch
        ]  # fmt: skip
        assert all(job.wait() == 0 for job in jobs)


@pytest.fixture(scope="module")
def kernel_objects(tmp_path_factory) -> dict[str, Path]:
    """The real kernel sources compiled once (-O0), by stem; the sources that use
    MIPS_KERNEL_ABI_VERSION are compiled again per version by the test."""
    folder = tmp_path_factory.mktemp("kernel-objects")
    sources = sorted((REPO / "kernels").glob("*.c"))
    compile_objects(sources, folder)
    return {source.stem: folder / f"{source.stem}.o" for source in sources}


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
@pytest.mark.parametrize(
    ("version", "age"), [(KERNEL_ABI_VERSION - 1, "an older"), (KERNEL_ABI_VERSION + 1, "a newer")]
)
def test_plugin_built_for_another_abi_version(
    tmp_path, kernel_objects, mm_vmfb, f64_vmfb, version, age
):
    """The real kernel sources built with another MIPS_KERNEL_ABI_VERSION: refused before IREE
    sees them, naming the plugin, both versions and the fix. A module that calls no kernel
    still runs when such a plugin is merely the default one."""
    lib = tmp_path / "libmips_kernels.so"
    versioned = [
        source for source in sorted((REPO / "kernels").glob("*.c"))
        if "MIPS_KERNEL_ABI_VERSION" in source.read_text()
    ]  # fmt: skip
    compile_objects(versioned, tmp_path, (f"-DMIPS_KERNEL_ABI_VERSION={version}",))
    objects = {**kernel_objects, **{s.stem: tmp_path / f"{s.stem}.o" for s in versioned}}
    subprocess.run(
        ["cc", "-shared", "-o", lib, *objects.values(), "-lm", "-ldl", "-lpthread"], check=True
    )
    want = (
        f"error: kernel plugin {lib} was built for {age} kernel ABI (version {version}) than "
        f"this mipsc's (version {KERNEL_ABI_VERSION}): rebuild it from this mipsc's sources "
        "with `make kernels`"
    )
    result = run_with_plugin(mm_vmfb, lib)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(want), result.stderr
    # mipsc.load says the same, and leaves the process free to load the right plugin.
    with pytest.raises(MipscError) as err:
        mipsc.load(mm_vmfb, plugin=lib)
    assert str(err.value).startswith(want.removeprefix("error: "))
    result = run_with_plugin(f64_vmfb, lib, "f64")
    assert result.returncode == 0, result.stderr
    assert "[[3. 3. 3. 3.]" in result.stdout


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_plugin_built_before_abi_versioning(tmp_path, mm_vmfb):
    """A plugin with the query function and every kernel, but no mips_kernel_abi_version."""
    source = write(
        tmp_path / "old.c",
        "void* iree_hal_executable_plugin_query(unsigned v, void* r) { return 0; }\n"
        + "".join(f"int {s}(void* p, void* c, void* r) {{ return 1; }}\n"
                  for s in MATMUL_SYMBOLS.values()),
    )  # fmt: skip
    lib = tmp_path / "libmips_kernels.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, source], check=True)
    result = run_with_plugin(mm_vmfb, lib)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"error: kernel plugin {lib} was built for an older kernel ABI (no "
        f"mips_kernel_abi_version) than this mipsc's (version {KERNEL_ABI_VERSION}): rebuild it "
        "from this mipsc's sources with `make kernels`"
    ), result.stderr


# --------------------------------------------------------------------------------------------
# The OpenBLAS backend (each run in its own process: the plugin opens OpenBLAS once per process)


@pytest.fixture(scope="module")
def openblas_vmfb(tmp_path_factory) -> Path:
    """A module calling mips_matmul_openblas_f32 (37x19 . 19x23)."""
    vmfb = tmp_path_factory.mktemp("openblas") / "mm.vmfb"
    result = run("compile", DATA / "mm_static.mlir", "-o", vmfb, "--kernel-backend=openblas")
    assert result.exit_code == 0, result.output
    return vmfb


def run_without_openblas(vmfb: Path, library: str | None) -> subprocess.CompletedProcess:
    """`mipsc run` with $MIPSC_OPENBLAS_LIB = library; None: unset, and the scipy-openblas32
    package hidden as if it were not installed."""
    env = {k: v for k, v in os.environ.items() if k != OPENBLAS_ENV}
    if library is not None:
        env[OPENBLAS_ENV] = library
    hide = "sys.modules['scipy_openblas32'] = None; " if library is None else ""
    args = ["run", str(vmfb), "--input=37x19xf32=1", "--input=19x23xf32=1"]
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {hide}from mipsc.cli import main; main({args!r})"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def test_openblas_backend_without_openblas(openblas_vmfb):
    result = run_without_openblas(openblas_vmfb, None)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"error: {openblas_vmfb} was compiled with --kernel-backend=openblas "
        "(mips_matmul_openblas_f32), and no OpenBLAS was found: the package scipy-openblas32 is "
        f"not installed and {OPENBLAS_ENV} is not set; install it with `pip install "
        "scipy-openblas32`"
    ), result.stderr


def test_openblas_backend_with_a_wrong_library(openblas_vmfb, mm_vmfb):
    """$MIPSC_OPENBLAS_LIB naming a missing file: the plugin's own loader says why. A module
    of the builtin backend does not need it, and runs."""
    missing = "/nonexistent/libopenblas.so"
    result = run_without_openblas(openblas_vmfb, missing)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"error: {openblas_vmfb} was compiled with --kernel-backend=openblas "
        f"(mips_matmul_openblas_f32), and the kernel plugin cannot use the OpenBLAS library "
        f"{missing} (from ${OPENBLAS_ENV}): {missing}: cannot open shared object file: No such "
        f"file or directory; point {OPENBLAS_ENV} at an OpenBLAS library"
    ), result.stderr
    result = run_without_openblas(mm_vmfb, missing)
    assert result.returncode == 0, result.stderr
    assert "[[19. 19." in result.stdout


def test_a_tensor_of_unknown_rank_is_a_located_error_not_an_iree_crash(tmp_path):
    text = """func.func @main(%a: !torch.vtensor<*,f32>, %b: !torch.vtensor<[3,4],f32>) -> !torch.vtensor<*,f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<*,f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<*,f32>
  return %0 : !torch.vtensor<*,f32>
}
"""
    result = run("compile", write(tmp_path / "unranked.mlir", text), "-o", tmp_path / "u.vmfb")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "Stack dump" not in result.output
    assert "unranked.mlir:2:3: error: 'torch.aten.mm' uses a tensor of unknown rank" in result.output
