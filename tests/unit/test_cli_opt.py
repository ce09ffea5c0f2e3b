"""`mipsc opt` as a user meets it: inputs, outputs, and every user error without a traceback."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from mipsc.cli import main

MM = """func.func @main(%a: !torch.vtensor<[2,3],f32>, %b: !torch.vtensor<[3,4],f32>) -> !torch.vtensor<[2,4],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[2,4],f32>
  return %0 : !torch.vtensor<[2,4],f32>
}
"""


@pytest.fixture
def mm_file(tmp_path: Path) -> Path:
    path = tmp_path / "mm.mlir"
    path.write_text(MM)
    return path


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


def test_pass_flag_and_pipeline_option_agree(mm_file):
    by_flag = run("opt", str(mm_file), "--convert-torch-to-mips")
    by_pipeline = run("opt", str(mm_file), "-p", "convert-torch-to-mips")
    assert by_flag.exit_code == 0 and by_pipeline.exit_code == 0
    assert by_flag.output == by_pipeline.output
    assert "mips.matmul" in by_flag.output and "torch.aten.mm" not in by_flag.output


def test_stdin_and_output_file(tmp_path):
    out = tmp_path / "out.mlir"
    result = run("opt", "-", "--convert-torch-to-mips", "-o", str(out), input=MM)
    assert result.exit_code == 0
    assert "mips.matmul" in out.read_text()


def test_no_pass_round_trips(mm_file):
    result = run("opt", str(mm_file))
    assert result.exit_code == 0
    assert "torch.aten.mm %a, %b" in result.output


def test_list_passes():
    result = run("opt", "--list-passes")
    assert result.exit_code == 0 and "convert-torch-to-mips" in result.output


def test_help_explains_passes():
    result = run("opt", "--help")
    assert "--convert-torch-to-mips" in result.output and "PIPELINE" in result.output


def test_help_draws_every_compile_pass_in_order():
    """The pipeline drawn in `mipsc --help` named two of the seven passes."""
    from mipsc.pipeline import COMPILE_PIPELINE

    text = run("--help").output
    drawn = [line.split("--> ")[-1].strip() for line in text.splitlines() if "--> " in line]
    assert [p for p in drawn if p in COMPILE_PIPELINE.split(",")] == COMPILE_PIPELINE.split(",")


def test_help_says_the_kernels_are_linked_in_by_default():
    """The help said the matmuls run in the kernel plugin, which only --kernel-link=plugin
    modules need (embedded is the default)."""
    for command in ([], ["compile"]):
        text = " ".join(run(*command, "--help").output.split())
        assert "run in the mipsc kernel plugin" not in text
        assert "IREE runtime + kernel plugin" not in text
    assert "whose matmuls run in mipsc's kernels (linked into it)" in " ".join(
        run("compile", "--help").output.split()
    )


def test_missing_file():
    assert_user_error(run("opt", "/nonexistent/x.mlir"), "cannot read '/nonexistent/x.mlir'")


def test_directory_input(tmp_path):
    assert_user_error(run("opt", str(tmp_path)), "is a directory")


def test_binary_input(tmp_path):
    path = tmp_path / "b.mlir"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert_user_error(run("opt", str(path)), "not UTF-8")


def test_not_mlir(tmp_path):
    path = tmp_path / "x.mlir"
    path.write_text("def forward(self, x):\n    return x\n")
    assert_user_error(run("opt", str(path)), f"{path}:1:", "unknown operation 'def'")


def test_parse_error_shows_line_and_caret(tmp_path):
    path = tmp_path / "p.mlir"
    path.write_text(MM.replace("-> !torch.vtensor<[2,4],f32>\n  return", "->\n  return"))
    result = run("opt", str(path))
    assert_user_error(result, f"{path}:3:")
    assert "^" in result.output


def test_verification_error(tmp_path):
    path = tmp_path / "v.mlir"
    path.write_text(MM.replace("!torch.vtensor<[3,4],f32>", "!torch.vtensor<[5,4],f32>"))
    assert_user_error(run("opt", str(path)), f"{path}:2:3: error: 'torch.aten.mm' op K mismatch")


def test_unknown_pass(mm_file):
    assert_user_error(
        run("opt", str(mm_file), "-p", "no-such-pass"),
        "no-such-pass",
        "known passes: check-input-dims, decompose-torch, convert-torch-to-mips, fuse-epilogues, "
        "pack-weights, lower-mips-to-call, flatten-dynamic-views",
    )


def test_bad_pipeline_syntax(mm_file):
    assert_user_error(
        run("opt", str(mm_file), "-p", "convert-torch-to-mips{"), "invalid pass pipeline"
    )


def test_unwritable_output(mm_file):
    assert_user_error(
        run("opt", str(mm_file), "-o", "/nonexistent/dir/out.mlir"),
        "cannot write '/nonexistent/dir/out.mlir'",
    )


def test_print_between_passes(mm_file):
    result = CliRunner().invoke(
        main, ["opt", str(mm_file), "--convert-torch-to-mips", "--print-between-passes"]
    )
    assert "IR after convert-torch-to-mips" in result.output
