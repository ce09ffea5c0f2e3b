"""`mipsc compile` and `mipsc run` as a user meets them: outputs, and every user error without a
traceback.

The .vmfb is compiled once per module. `mipsc run` in this process configures IREE's kernel plugin
(once per process), so the cases about the plugin itself run in a subprocess.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mipsc.cli import main

MODEL = """func.func @main(%a: !torch.vtensor<[2,3],f32>, %b: !torch.vtensor<[3,4],f32>) -> !torch.vtensor<[2,4],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[2,4],f32>
  return %0 : !torch.vtensor<[2,4],f32>
}
func.func @neg(%x: !torch.vtensor<[2],f32>) -> !torch.vtensor<[2],f32> {
  %0 = torch.aten.neg %x : !torch.vtensor<[2],f32> -> !torch.vtensor<[2],f32>
  return %0 : !torch.vtensor<[2],f32>
}
"""

# A torch op mipsc keeps as written and IREE's torch frontend cannot lower (line 3, column 3).
UNLOWERABLE = """func.func @main(%a: !torch.vtensor<[2,4],f32>) -> !torch.vtensor<[2,4],f32> {
  %c = torch.constant.int 1
  %1 = torch.operator "aten.not_a_real_op"(%a, %c) : (!torch.vtensor<[2,4],f32>, !torch.int) -> !torch.vtensor<[2,4],f32>
  return %1 : !torch.vtensor<[2,4],f32>
}
"""

A = np.arange(6, dtype=np.float32).reshape(2, 3)
B = np.arange(12, dtype=np.float32).reshape(3, 4) - 5


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def assert_ok(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "error: " in result.output
    for fragment in fragments:
        assert fragment in result.output


def run_mipsc_process(*args, env=None):
    """`python -m mipsc ...` in a fresh process (its own IREE plugin configuration)."""
    return subprocess.run(
        [sys.executable, "-m", "mipsc", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with the model, its .vmfb (compiled once, with the default name) and inputs."""
    path = tmp_path_factory.mktemp("cli")
    (path / "model.mlir").write_text(MODEL)
    result = run("compile", path / "model.mlir")
    assert_ok(result)
    assert result.output == ""  # silent when not on a terminal and without -v
    np.save(path / "a.npy", A)
    np.save(path / "b.npy", B)
    np.save(path / "a_int.npy", A.astype(np.int32))
    return path


@pytest.fixture(scope="module")
def vmfb(work) -> Path:
    return work / "model.vmfb"


# --------------------------------------------------------------------------------------------
# mipsc compile


def test_compile_default_name_is_file_with_vmfb(vmfb):
    assert vmfb.read_bytes()[:2] == b"PK"  # a .vmfb is a zip-framed flatbuffer


def test_compile_stdin_to_output_file(tmp_path):
    out = tmp_path / "from_stdin.vmfb"
    assert_ok(run("compile", "-", "-o", out, input=MODEL))
    assert out.read_bytes()[:2] == b"PK"


def test_compile_to_stdout_for_pipes(work):
    result = run("compile", work / "model.mlir", "-o", "-")
    assert_ok(result)
    assert result.stdout_bytes[:2] == b"PK"


def test_emit_mips_prints_mlir(work):
    result = run("compile", work / "model.mlir", "--emit=mips")
    assert_ok(result)
    assert "mips.matmul" in result.output and "torch.aten.mm" not in result.output
    assert "flow.dispatch" not in result.output


def test_emit_iree_input_prints_mlir(work, tmp_path):
    result = run("compile", work / "model.mlir", "--emit=iree-input")
    assert_ok(result)
    assert "flow.dispatch" in result.output and "mips_matmul_f32" in result.output
    out = tmp_path / "input.mlir"
    assert_ok(run("compile", work / "model.mlir", "--emit=iree-input", "-o", out))
    assert out.read_text() == result.output


def test_a_reader_that_leaves_early_is_no_error(work):
    """`mipsc compile --emit=iree-input | head -1` on a module larger than the pipe's buffer:
    the pipe closes before the module is printed; mipsc stops quietly (exit 141, as for SIGPIPE), no "internal error"."""
    mipsc = subprocess.Popen(
        [sys.executable, "-m", "mipsc", "compile", str(work / "model.mlir"), "--emit=iree-input"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert mipsc.stdout is not None and mipsc.stderr is not None
    mipsc.stdout.close()  # before mipsc prints (its imports alone take longer)
    stderr = mipsc.stderr.read().decode()
    assert mipsc.wait(timeout=120) == 141, stderr
    assert "error" not in stderr


@pytest.mark.parametrize("flag", ["--bogus", "-x", "--target_cpu=host"])
def test_unknown_option_is_rejected(work, flag):
    assert_user_error(
        run("compile", work / "model.mlir", flag),
        f"unknown option '{flag}' (only --iree-* flags go to iree-compile)",
    )


@pytest.mark.parametrize("args", [["other.mlir"], ["--iree-opt-level", "O3"]])
def test_stray_argument_is_explained(work, args):
    assert_user_error(
        run("compile", work / "model.mlir", "-o", work / "x.vmfb", *args),
        f"unexpected argument '{args[-1]}'",
        "--iree-flag=value",
    )


def test_unknown_iree_flag_is_forwarded_and_reported(work, tmp_path):
    result = run("compile", work / "model.mlir", "-o", tmp_path / "x.vmfb", "--iree-bogus-flag")
    assert_user_error(result, "error: iree-compile does not know the option '--iree-bogus-flag'")
    assert not (tmp_path / "x.vmfb").exists()


@pytest.mark.parametrize("flag", ["--iree-llvmcpu-target-cpu=not-a-cpu", "--target-cpu=not-a-cpu"])
def test_bad_target_cpu_is_reported(work, tmp_path, flag):
    result = run("compile", work / "model.mlir", "-o", tmp_path / "x.vmfb", flag)
    assert_user_error(
        result,
        "error: iree-compile does not know the CPU 'not-a-cpu'",
        "List of accepted CPUs:",
    )
    assert result.output.count("is not a recognized processor") == 0


def test_iree_compile_error_points_into_the_users_file(tmp_path):
    source = tmp_path / "unlowerable.mlir"
    source.write_text(UNLOWERABLE)
    assert_ok(run("opt", source))  # mipsc itself round-trips the op
    result = run("compile", source, "-o", tmp_path / "x.vmfb")
    assert_user_error(
        result,
        f"{source}:3:3: error: iree-compile: failed to legalize operation 'torch.operator'",
        "IREE's torch frontend cannot lower this op",
        "see current operation",
    )
    lines = result.output.splitlines()
    quoted = UNLOWERABLE.splitlines()[2]
    assert lines[1:3] == [quoted, "  ^"]  # the user's line, once, with the caret at column 3
    assert lines.count(quoted) == 1


def test_missing_input_file(tmp_path):
    assert_user_error(
        run("compile", tmp_path / "nope.mlir"), f"error: cannot read '{tmp_path / 'nope.mlir'}'"
    )


def test_stdin_needs_an_output_name():
    assert_user_error(run("compile", "-", input=MODEL), "reading from stdin needs -o OUT.vmfb")


def test_unwritable_output(work):
    assert_user_error(
        run("compile", work / "model.mlir", "-o", "/nonexistent/dir/m.vmfb"),
        "error: cannot write '/nonexistent/dir/m.vmfb': No such file or directory",
    )


# --------------------------------------------------------------------------------------------
# mipsc run


def test_run_npy_inputs_to_npy_output(work, vmfb, tmp_path):
    out = tmp_path / "c.npy"
    result = run(
        "run", vmfb, f"--input=@{work / 'a.npy'}", f"--input=@{work / 'b.npy'}", f"--output=@{out}"
    )
    assert_ok(result)
    assert result.output == ""
    np.testing.assert_allclose(np.load(out), A @ B, rtol=1e-6)


def test_output_is_written_to_exactly_the_named_file(work, vmfb, tmp_path):
    out = tmp_path / "c.bin"
    assert_ok(
        run(
            "run",
            vmfb,
            f"--input=@{work / 'a.npy'}",
            f"--input=@{work / 'b.npy'}",
            f"--output=@{out}",
        )
    )
    assert out.is_file() and not (tmp_path / "c.bin.npy").exists()
    # Not .npy: the raw element bytes, as iree-run-module writes them.
    np.testing.assert_allclose(np.fromfile(out, np.float32).reshape(2, 4), A @ B, rtol=1e-6)


def test_run_literal_inputs_prints_results(vmfb):
    b_values = ",".join(str(v) for v in B.flatten())
    result = run("run", vmfb, "--input=2x3xf32=1", f"--input=3x4xf32={b_values}")
    assert_ok(result)
    assert result.output.startswith("result[0]: 2x4xf32\n")
    want = np.ones((2, 3), np.float32) @ B
    assert np.array2string(want, threshold=1000) in result.output


def test_run_other_function_with_1d_literal(vmfb):
    result = run("run", vmfb, "--function=neg", "--input=2xf32=1,2")
    assert_ok(result)
    assert result.output == "result[0]: 2xf32\n[-1. -2.]\n"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("2x3xq32=1", "cannot understand input '2x3xq32=1': expected @file.npy or a literal"),
        ("2x3xf32", "cannot understand input '2x3xf32'"),
        ("2x3xf32=1,x", "input '2x3xf32=1,x' has a value that is not a number"),
        ("2x3xf32=1,2", "input '2x3xf32=1,2' has 2 values; its shape needs 6 (or 1 for all)"),
    ],
)
def test_bad_literal(vmfb, spec, message):
    assert_user_error(run("run", vmfb, f"--input={spec}", "--input=3x4xf32=1"), message)


def test_missing_npy(vmfb, tmp_path):
    missing = tmp_path / "missing.npy"
    assert_user_error(
        run("run", vmfb, f"--input=@{missing}", "--input=3x4xf32=1"),
        f"error: cannot read input '{missing}': No such file or directory",
    )


def test_input_that_is_not_npy(work, vmfb):
    assert_user_error(
        run("run", vmfb, f"--input=@{work / 'model.mlir'}", "--input=3x4xf32=1"),
        "not a .npy file",
    )


@pytest.mark.parametrize("count", [1, 3])
def test_wrong_number_of_inputs(vmfb, count):
    inputs = ["--input=2x3xf32=1", "--input=3x4xf32=1", "--input=3x4xf32=1"][:count]
    assert_user_error(run("run", vmfb, *inputs), f"main takes 2 input(s), {count} given")


def test_wrong_dtype(work, vmfb):
    result = run("run", vmfb, f"--input=@{work / 'a_int.npy'}", "--input=3x4xf32=1")
    assert_user_error(
        result,
        "input 1 (%arg0) does not match main's signature: tensor element type mismatch; "
        "expected f32 but have si32",
    )
    assert "runtime/src" not in result.output and "bytecode module" not in result.output


def test_wrong_shape(vmfb):
    assert_user_error(
        run("run", vmfb, "--input=3x3xf32=1", "--input=3x4xf32=1"),
        "expected shape `2x3`, actual shape `3x3`",
    )


def test_not_a_vmfb(work):
    result = run("run", work / "model.mlir")
    assert_user_error(result, "model.mlir is not a valid IREE module (.vmfb", "mipsc compile")
    assert "runtime/src" not in result.output


def test_nonexistent_vmfb(tmp_path):
    assert_user_error(
        run("run", tmp_path / "nope.vmfb"),
        f"error: cannot read '{tmp_path / 'nope.vmfb'}': No such file or directory",
    )


def test_output_count_mismatch(vmfb, tmp_path):
    result = run(
        "run",
        vmfb,
        "--input=2x3xf32=1",
        "--input=3x4xf32=1",
        f"--output=@{tmp_path / 'o1.npy'}",
        f"--output=@{tmp_path / 'o2.npy'}",
    )
    assert_user_error(result, "main returned 1 output(s), --output given 2")


def test_unwritable_output_path(vmfb):
    assert_user_error(
        run(
            "run",
            vmfb,
            "--input=2x3xf32=1",
            "--input=3x4xf32=1",
            "--output=@/nonexistent/dir/o.npy",
        ),
        "error: cannot write '/nonexistent/dir/o.npy': No such file or directory",
    )


@pytest.mark.parametrize("name", ["nope", "__init", "main$async"])
def test_function_that_does_not_exist(vmfb, name):
    assert_user_error(
        run("run", vmfb, f"--function={name}"),
        f"has no function '{name}' (its functions: main, neg)",
    )


# --------------------------------------------------------------------------------------------
# The plugin


def test_plugin_path_prints_an_existing_file():
    result = run("plugin-path")
    assert_ok(result)
    path = Path(result.output.strip())
    assert path.is_file() and path.name == "libmips_kernels.so"


def test_kernel_info_names_the_configuration_and_paths():
    """`mipsc kernel-info` prints the plugin's choice; MIPSC_KERNEL_CONFIG forces an entry every
    x86-64 CPU can run (sse2), and an unknown name is ignored, and said so."""
    result = run_mipsc_process("kernel-info")
    assert result.returncode == 0, result.stderr
    for key in ("config=", "cpu=", "f32_path=", "bf16_path=", "kc=", "about="):
        assert key in result.stdout, result.stdout
    forced = run_mipsc_process("kernel-info", env={"MIPSC_KERNEL_CONFIG": "sse2"})
    assert forced.stdout.startswith("config=sse2 (MIPSC_KERNEL_CONFIG)"), forced.stdout
    assert "f32_path=generic f16_path=generic bf16_path=generic" in forced.stdout
    bogus = run_mipsc_process("kernel-info", env={"MIPSC_KERNEL_CONFIG": "no-such-cpu"})
    assert "MIPSC_KERNEL_CONFIG=no-such-cpu ignored: no such entry" in bogus.stdout


@pytest.mark.parametrize("value", ["2", "abc", "-1", "", "off"])
def test_a_bad_pack_huge_pages_setting_is_ignored_and_said_so(value):
    """MIPSC_KERNEL_PACK_HUGE_PAGES other than 0 or 1 was ignored silently; like an unknown
    MIPSC_KERNEL_CONFIG, kernel-info now says so, and the default (1) stays."""
    result = run_mipsc_process("kernel-info", env={"MIPSC_KERNEL_PACK_HUGE_PAGES": value})
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.endswith(f"; MIPSC_KERNEL_PACK_HUGE_PAGES={value} ignored: not 0 or 1)"), first
    assert re.search(r" pack_huge_pages=1\b", result.stdout), result.stdout
    off = run_mipsc_process("kernel-info", env={"MIPSC_KERNEL_PACK_HUGE_PAGES": "0"})
    assert "ignored" not in off.stdout, off.stdout
    assert re.search(r" pack_huge_pages=0\b", off.stdout), off.stdout


def test_missing_plugin_gives_the_make_kernels_hint(work, vmfb):
    env = {"MIPSC_PLUGIN": str(work / "no_such_lib.so")}
    for args in (["plugin-path"], ["run", vmfb, "--input=2x3xf32=1", "--input=3x4xf32=1"]):
        result = run_mipsc_process(*args, env=env)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(
            f"error: kernel plugin not found ($MIPSC_PLUGIN points at {work / 'no_such_lib.so'}); "
            "build it with `make kernels`"
        )


def test_plugin_that_is_not_a_library(work, vmfb):
    result = run_mipsc_process(
        "run", vmfb, f"--plugin={work / 'model.mlir'}", "--input=2x3xf32=1", "--input=3x4xf32=1"
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: cannot load kernel plugin {work / 'model.mlir'}")


def test_compile_report_lists_each_matmul(tmp_path):
    path = tmp_path / "two.mlir"
    path.write_text(
        """func.func @main(%a: !torch.vtensor<[2,3],f32>, %b: !torch.vtensor<[3,4],f32>, %i: !torch.vtensor<[3,4],si64>) -> (!torch.vtensor<[2,4],f32>, !torch.vtensor<[3,3],si64>) {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[2,4],f32>
  %t = torch.aten.t %i : !torch.vtensor<[3,4],si64> -> !torch.vtensor<[4,3],si64>
  %1 = torch.aten.mm %i, %t : !torch.vtensor<[3,4],si64>, !torch.vtensor<[4,3],si64> -> !torch.vtensor<[3,3],si64>
  return %0, %1 : !torch.vtensor<[2,4],f32>, !torch.vtensor<[3,3],si64>
}
"""
    )
    result = CliRunner().invoke(main, ["compile", str(path), "--emit=mips", "--report"])
    assert result.exit_code == 0, result.output
    assert "@main: 1 of 2 matmul-family ops run in the kernel" in result.output
    assert "[kernel] torch.aten.mm (2x3, 3x4) f32 -> mips.matmul" in result.output
    assert "[IREE  ] torch.aten.mm left on IREE's path: element type si64" in result.output
    assert f"({path}:4:3)" in result.output


def test_compile_report_names_the_kernel_of_each_backend(tmp_path):
    """--report says which kernel each routed op calls; --kernel-backend=openblas moves f32 to
    OpenBLAS and leaves bf16 on the builtin kernel."""
    path = tmp_path / "two.mlir"
    a_t, b_t = "!torch.vtensor<[2,3],f32>", "!torch.vtensor<[3,4],f32>"
    x, y = "!torch.vtensor<[8,16],bf16>", "!torch.vtensor<[16,4],bf16>"
    path.write_text(
        f"""func.func @main(%a: {a_t}, %b: {b_t}, %x: {x}, %y: {y}) -> (!torch.vtensor<[2,4],f32>, !torch.vtensor<[8,4],bf16>) {{
  %0 = torch.aten.mm %a, %b : {a_t}, {b_t} -> !torch.vtensor<[2,4],f32>
  %1 = torch.aten.mm %x, %y : {x}, {y} -> !torch.vtensor<[8,4],bf16>
  return %0, %1 : !torch.vtensor<[2,4],f32>, !torch.vtensor<[8,4],bf16>
}}
"""
    )
    for backend, f32_kernel in (
        ("builtin", "mips_matmul_f32"),
        ("openblas", "mips_matmul_openblas_f32"),
    ):
        result = CliRunner().invoke(
            main,
            ["compile", str(path), "--emit=iree-input", "--report", f"--kernel-backend={backend}"],
        )
        assert result.exit_code == 0, result.output
        assert "@main: 2 of 2 matmul-family ops run in the kernel" in result.output
        assert (
            f"[kernel] torch.aten.mm (2x3, 3x4) f32 -> mips.matmul -> calls {f32_kernel} (1 12x32 tile)  ({path}:2:3)"
        ) in result.output
        assert (
            f"[kernel] torch.aten.mm (8x16, 16x4) bf16 -> mips.matmul -> calls mips_matmul_bf16 (1 12x32 tile)  ({path}:3:3)"
        ) in result.output
        assert f"func.call @{f32_kernel}(" in result.output
    bad = CliRunner().invoke(main, ["compile", str(path), "--kernel-backend=mkl"])
    assert bad.exit_code == 1  # checked by CompileOptions, as mipsc.compile's keywords are
    assert "kernel_backend='mkl' (--kernel-backend) is not one of: builtin, openblas" in bad.output


def test_compile_workers_sets_the_tiles(tmp_path):
    """--workers picks the tiles for that many cores: more cores, more (smaller) tiles."""
    path = tmp_path / "mm512.mlir"
    t = "!torch.vtensor<[512,512],f32>"
    path.write_text(
        f"func.func @main(%a: {t}, %b: {t}) -> {t} {{\n"
        f"  %0 = torch.aten.mm %a, %b : {t}, {t} -> {t}\n"
        f"  return %0 : {t}\n}}\n"
    )
    tiles = {}
    for workers in (1, 8):
        result = CliRunner().invoke(
            main,
            ["compile", str(path), "--emit=iree-input", "--report", f"--workers={workers}"],
        )
        assert result.exit_code == 0, result.output
        tiles[workers] = result.output.split("calls mips_matmul_f32 (")[1].split(" ")[0]
    assert int(tiles[1]) < int(tiles[8]) == 8
    bad = CliRunner().invoke(main, ["compile", str(path), "--workers=-1"])
    assert bad.exit_code == 1
    assert "workers=-1 (--workers) is out of range: give a whole number from 0 to 256" in (
        bad.output
    )


@pytest.mark.parametrize(
    ("loc_f32", "loc_f16", "where_f32", "where_f16"),
    [
        # name locations without a file position: where the ops were parsed
        ('loc("fc1")', 'loc("fc2")', "named.mlir:2:3", "named.mlir:3:3"),
        # the same source location for both
        ('loc("model.py":7:1)', 'loc("model.py":7:1)', "model.py:7:1", "model.py:7:1"),
        # call-site and fused locations: the callee's / the first file position
        ('loc(callsite("fc"("layers.py":12:3) at "model.py":40:9))',
         'loc(fused["model.py":41:2, "layers.py":30:1])', "layers.py:12:3", "model.py:41:2"),
    ],
)  # fmt: skip
def test_report_joins_each_op_with_its_own_kernels(tmp_path, loc_f32, loc_f16, where_f32, where_f16):
    # Joined by location, both rows once showed both kernels and the function's location.
    path = tmp_path / "named.mlir"
    a, b = "!torch.vtensor<[2,3],f32>", "!torch.vtensor<[3,4],f32>"
    c, d = "!torch.vtensor<[2,3],f16>", "!torch.vtensor<[3,4],f16>"
    path.write_text(
        f"""func.func @main(%a: {a}, %b: {b}, %c: {c}, %d: {d}) -> (!torch.vtensor<[2,4],f32>, !torch.vtensor<[2,4],f16>) {{
  %0 = torch.aten.mm %a, %b : {a}, {b} -> !torch.vtensor<[2,4],f32> {loc_f32}
  %1 = torch.aten.mm %c, %d : {c}, {d} -> !torch.vtensor<[2,4],f16> {loc_f16}
  return %0, %1 : !torch.vtensor<[2,4],f32>, !torch.vtensor<[2,4],f16>
}}
"""
    )
    result = CliRunner().invoke(main, ["compile", str(path), "--emit=iree-input", "--report"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("  [kernel]")]
    assert len(rows) == 2, result.output
    f32_row, f16_row = rows
    assert "f32 ->" in f32_row and "calls mips_matmul_f32 (1 " in f32_row
    assert "mips_matmul_f16" not in f32_row and f32_row.endswith(f"{where_f32})")
    assert "f16 ->" in f16_row and "calls mips_matmul_f16 (1 " in f16_row
    assert "mips_matmul_f32" not in f16_row and f16_row.endswith(f"{where_f16})")


def test_report_lists_ops_in_source_order(tmp_path):
    # decompose-torch reports before convert-torch-to-mips; the rows still follow the file.
    path = tmp_path / "order.mlir"
    t = "!torch.vtensor<[2,3],f32>"
    u = "!torch.vtensor<[3,4],f32>"
    r = "!torch.vtensor<[2,4],f32>"
    path.write_text(
        f"""func.func @main(%a: {t}, %b: {u}) -> ({r}, {r}) {{
  %0 = torch.aten.mm %a, %b : {t}, {u} -> {r}
  %eq = torch.constant.str "ij,jk->ik"
  %none = torch.constant.none
  %ops = torch.prim.ListConstruct %a, %b : ({t}, {u}) -> !torch.list<vtensor>
  %1 = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> {r}
  return %0, %1 : {r}, {r}
}}
"""
    )
    result = CliRunner().invoke(main, ["compile", str(path), "--emit=iree-input", "--report"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("  [")]
    assert [row.split()[1] for row in rows] == ["torch.aten.mm", "torch.aten.einsum"]
    assert rows[0].endswith(f"{path}:2:3)") and rows[1].endswith(f"{path}:6:3)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.mlir", "-o", "model.mlir"], "-o 'model.mlir' is the input file"),  # a .vmfb
        (["model.py:make", "-o", "model.py", "--emit=torch"], "-o 'model.py' is the input file"),
        (["model.py:make", "-o", "./model.py"], "-o './model.py' is the input file"),
        (
            ["model.py:make", "--weights-output=w", "-o", "m.vmfb"],
            "must end in .irpa (IREE would write 'w.irpa'), e.g. --weights-output=w.irpa",
        ),
        (["model.py:make", "-o", "w.irpa"], "-o 'w.irpa' is also where the weights would go"),
        (
            ["model.py:make", "--weights-output=m.irpa", "-o", "m.irpa"],
            "-o 'm.irpa' is also where the weights would go",
        ),
        (
            ["model.py:make", "--weights-output=w.irpa", "--inline-weights", "-o", "m.vmfb"],
            "--weights-output 'w.irpa' with --inline-weights: the weights go into the module, "
            "so no parameter file is written; give one of the two flags",
        ),
    ],
)
def test_compile_refuses_outputs_that_overwrite_its_input_or_weights(
    tmp_path, monkeypatch, args, message
):
    """Checked before any export: the input and the outputs stay as they were."""
    monkeypatch.chdir(tmp_path)
    Path("model.mlir").write_text(MODEL)
    Path("model.py").write_text("raise SystemExit('never imported')\n")
    assert_user_error(run("compile", *args), message)
    assert Path("model.mlir").read_text() == MODEL
    assert Path("model.py").read_text() == "raise SystemExit('never imported')\n"
    assert not Path("w.irpa").exists() and not Path("m.irpa").exists()


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--external-weights"], "--external-weights/--inline-weights: for .py and .onnx"),
        (["--inline-weights"], "--external-weights/--inline-weights: for .py and .onnx"),
        (["--weights-output=w.irpa"], "--weights-output: for .py and .onnx inputs"),
    ],
)
def test_weights_flags_on_an_mlir_input_are_refused(tmp_path, flags, named):
    """They were ignored silently: `--external-weights -o m.vmfb` left the weights inline."""
    source = tmp_path / "model.mlir"
    source.write_text(MODEL)
    result = run("compile", source, *flags, "-o", tmp_path / "m.vmfb")
    assert_user_error(result, named, "an MLIR file keeps its weights where its export put them")
    assert not (tmp_path / "m.vmfb").exists()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"kernel_link": "embedded"}, "MIPSC_KERNEL_CONFIG=avx2: the tiles follow it, the embedded kernels do not"),
        ({"kernel_link": "embedded", "target_cpu": "znver4"},
         "MIPSC_KERNEL_CONFIG=avx2: neither the tiles (chosen for the target CPU) nor the embedded kernels follow it"),
        ({"kernel_link": "plugin"}, None),  # the plugin's kernels read it where the module runs
    ],
)  # fmt: skip
def test_verbose_says_the_embedded_kernels_ignore_a_forced_configuration(monkeypatch, options, said):
    """With MIPSC_KERNEL_CONFIG set, -v said only 'tiles chosen for the kernel configuration
    avx2', while the embedded kernels choose their own entry by cpuid where they run."""
    from mipsc.options import CompileOptions
    from mipsc.pipeline import forced_config_note

    monkeypatch.setenv("MIPSC_KERNEL_CONFIG", "avx2")
    note = forced_config_note(CompileOptions(**options))
    assert note == said if said is None else note.startswith(said)
    if note is not None:
        assert "compile with --kernel-link=plugin and run with MIPSC_KERNEL_CONFIG set" in note
    monkeypatch.setenv("MIPSC_KERNEL_CONFIG", "no-such-cpu")
    assert forced_config_note(CompileOptions(**options)).startswith(
        "MIPSC_KERNEL_CONFIG=no-such-cpu is ignored: the kernels have no such configuration"
    )
    monkeypatch.delenv("MIPSC_KERNEL_CONFIG")
    assert forced_config_note(CompileOptions(**options)) is None


def test_verbose_compile_under_a_forced_configuration(work, tmp_path):
    """The line, end to end: `MIPSC_KERNEL_CONFIG=sse2 mipsc compile -v` of an embedded module
    (in a process of its own: the plugin reads the variable once)."""
    out = tmp_path / "m.vmfb"
    result = run_mipsc_process(
        "compile", work / "model.mlir", "-o", out, "-v", "--kernel-link=embedded",
        env={"MIPSC_KERNEL_CONFIG": "sse2"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tiles chosen for the kernel configuration 'sse2'" in result.stderr
    assert "mipsc: MIPSC_KERNEL_CONFIG=sse2: the tiles follow it, the embedded kernels do not" in result.stderr


def test_an_input_too_large_for_memory_is_a_user_error(vmfb):
    """`--input=100000x100000x100xf32=1` (3.6 TiB) said `mipsc: internal error: MemoryError
    ... This is a bug in mipsc`: it is the user's input, said as such."""
    result = run("run", vmfb, "--input=100000x100000x100xf32=1", "--input=3x4xf32=1")
    assert_user_error(result, "error: out of memory: Unable to allocate 3.64 TiB")
    assert "internal error" not in result.output
