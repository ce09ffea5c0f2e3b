"""`mipsc run` and `mipsc.load` with bf16 tensors and with external parameter files.

numpy has no bf16: mipsc takes and returns `ml_dtypes.bfloat16` arrays, and on the command line
raw bits (`2x3xbf16=@x.bin`, `--output=@out.bin`), since .npy cannot record the type. Weights
read through `#flow.parameter.named<"scope"::"key">` come from `--parameters=scope=file.irpa`.
"""

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner
from iree.runtime import save_archive_file

import mipsc
from mipsc.cli import main
from mipsc.diagnostics import MipscError
from mipsc.runtime import parse_parameters

BF16 = ml_dtypes.bfloat16

BF16_MODEL = """func.func @main(%a: !torch.vtensor<[2,3],bf16>, %b: !torch.vtensor<[3,4],bf16>) -> !torch.vtensor<[2,4],bf16> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[2,3],bf16>, !torch.vtensor<[3,4],bf16> -> !torch.vtensor<[2,4],bf16>
  return %0 : !torch.vtensor<[2,4],bf16>
}
"""

# mm(a, w) + b, with w and b external parameters of the scope "model".
PARAM_MODEL = """module @module {
  util.global private @w = #flow.parameter.named<"model"::"w"> : tensor<3x4xf32>
  util.global private @b = #flow.parameter.named<"model"::"b"> : tensor<4xf32>
  func.func @main(%a: !torch.vtensor<[2,3],f32>) -> !torch.vtensor<[2,4],f32> {
    %w = util.global.load @w : tensor<3x4xf32>
    %0 = torch_c.from_builtin_tensor %w : tensor<3x4xf32> -> !torch.vtensor<[3,4],f32>
    %b = util.global.load @b : tensor<4xf32>
    %1 = torch_c.from_builtin_tensor %b : tensor<4xf32> -> !torch.vtensor<[4],f32>
    %2 = torch.aten.mm %a, %0 : !torch.vtensor<[2,3],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[2,4],f32>
    %int1 = torch.constant.int 1
    %3 = torch.aten.add.Tensor %2, %1, %int1 : !torch.vtensor<[2,4],f32>, !torch.vtensor<[4],f32>, !torch.int -> !torch.vtensor<[2,4],f32>
    return %3 : !torch.vtensor<[2,4],f32>
  }
}
"""

# Exact in bf16: small integers, whose products and sums bf16 holds.
A = (np.arange(6).reshape(2, 3) - 2).astype(BF16)
B = (np.arange(12).reshape(3, 4) % 5 - 2).astype(BF16)
W = np.arange(12, dtype=np.float32).reshape(3, 4) / 4
BIAS = np.array([1, -2, 3, -4], np.float32)
X = np.arange(6, dtype=np.float32).reshape(2, 3) - 2


def want_bf16() -> np.ndarray:
    return (A.astype(np.float32) @ B.astype(np.float32)).astype(BF16)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_ok(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ")
    for fragment in fragments:
        assert fragment in result.output


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The two models compiled once, their inputs as raw bits, and parameter archives."""
    path = tmp_path_factory.mktemp("bf16_params")
    for name, text in (("bf16", BF16_MODEL), ("params", PARAM_MODEL)):
        (path / f"{name}.mlir").write_text(text)
        assert_ok(run("compile", path / f"{name}.mlir"))
    A.tofile(path / "a.bin")
    B.tofile(path / "b.bin")
    np.save(path / "a_bf16.npy", A)  # np.save writes it as untyped `<V2`
    np.save(path / "a_bits.npy", A.view(np.uint16))
    save_archive_file({"w": W, "b": BIAS}, path / "wb.irpa")
    save_archive_file({"w": W}, path / "w.irpa")
    save_archive_file({"b": BIAS}, path / "b.irpa")
    (path / "garbage.irpa").write_bytes(b"not an archive" * 8)
    (path / "empty.irpa").write_bytes(b"")
    return path


# --------------------------------------------------------------------------------------------
# bf16


def test_python_api_takes_and_returns_bf16(work):
    got = mipsc.load(work / "bf16.vmfb").main(A, B)
    assert got.dtype == BF16 and got.shape == (2, 4)
    np.testing.assert_array_equal(got.astype(np.float32), want_bf16().astype(np.float32))


def test_python_api_explains_uint16_bits(work):
    with pytest.raises(MipscError) as err:
        mipsc.load(work / "bf16.vmfb").main(A.view(np.uint16), B)
    assert "expected bf16 but have ui16" in str(err.value)
    assert "bits.view(ml_dtypes.bfloat16)" in str(err.value)


def test_run_raw_bf16_inputs_to_raw_output(work, tmp_path):
    out = tmp_path / "c.bin"
    result = run(
        "run",
        work / "bf16.vmfb",
        f"--input=2x3xbf16=@{work / 'a.bin'}",
        f"--input=3x4xbf16=@{work / 'b.bin'}",
        f"--output=@{out}",
    )
    assert_ok(result)
    assert result.output == ""
    got = np.fromfile(out, dtype=BF16).reshape(2, 4)
    np.testing.assert_array_equal(got.astype(np.float32), want_bf16().astype(np.float32))


def test_run_bf16_literals_print_bf16(work):
    result = run(
        "run", work / "bf16.vmfb", "--input=2x3xbf16=1", f"--input=3x4xbf16=@{work / 'b.bin'}"
    )
    assert_ok(result)
    want = (np.ones((2, 3), np.float32) @ B.astype(np.float32)).astype(BF16)
    assert result.output == f"result[0]: 2x4xbf16\n{np.array2string(want, threshold=1000)}\n"


def test_bf16_result_cannot_go_to_npy(work, tmp_path):
    out = tmp_path / "c.npy"
    result = run(
        "run", work / "bf16.vmfb", "--input=2x3xbf16=1", "--input=3x4xbf16=1", f"--output=@{out}"
    )
    assert_user_error(
        result,
        "result[0] is 2x4xbf16, which a .npy file cannot record",
        f"--output=@{tmp_path / 'c.bin'}",
        "np.fromfile(path, ml_dtypes.bfloat16)",
    )
    assert not out.exists()


def test_bf16_npy_input_points_to_the_raw_form(work):
    result = run("run", work / "bf16.vmfb", f"--input=@{work / 'a_bf16.npy'}", "--input=3x4xbf16=1")
    assert_user_error(
        result,
        "its elements are untyped 2-byte values",
        "--input=2x3xbf16=@x.bin after array.tofile('x.bin')",
    )


def test_uint16_npy_for_a_bf16_input_says_how_to_pass_it(work):
    result = run("run", work / "bf16.vmfb", f"--input=@{work / 'a_bits.npy'}", "--input=3x4xbf16=1")
    # The CLI's hint names the CLI's way (raw bits with their type), not the Python one.
    assert_user_error(
        result,
        "input 1 (%arg0) does not match main's signature",
        "expected bf16 but have ui16",
        "--input=2x3xbf16=@x.bin",
    )
    assert "ml_dtypes" not in result.output


def test_uint16_array_for_a_bf16_input_gets_the_python_hint(work):
    with pytest.raises(MipscError, match=r"input 1 \(%arg0\).*ml_dtypes\.bfloat16"):
        mipsc.load(work / "bf16.vmfb").main(A.view(np.uint16), B)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("3x3xbf16=@{work}/a.bin", "'{work}/a.bin' holds 12 bytes, and 3x3xbf16 needs 18"),
        ("2x3xbf16=@{work}/nope.bin", "cannot read input '{work}/nope.bin': No such file"),
        ("2x3xbf16=@{work}", "cannot read input '{work}': Is a directory"),
    ],
)
def test_bad_raw_input(work, spec, message):
    result = run(
        "run", work / "bf16.vmfb", f"--input={spec.format(work=work)}", "--input=3x4xbf16=1"
    )
    assert_user_error(result, message.format(work=work))


def test_raw_output_of_f32(work, tmp_path):
    out = tmp_path / "y.dat"
    assert_ok(
        run(
            "run",
            work / "params.vmfb",
            "--input=2x3xf32=1",
            f"--parameters=model={work / 'wb.irpa'}",
            f"--output=@{out}",
        )
    )
    np.testing.assert_allclose(
        np.fromfile(out, np.float32).reshape(2, 4), np.ones((2, 3)) @ W + BIAS
    )


# --------------------------------------------------------------------------------------------
# Parameters


def test_run_with_parameters(work, tmp_path):
    out = tmp_path / "y.npy"
    x = work / "x.npy"
    np.save(x, X)
    result = run(
        "run",
        work / "params.vmfb",
        f"--input=@{x}",
        f"--parameters=model={work / 'wb.irpa'}",
        f"--output=@{out}",
    )
    assert_ok(result)
    np.testing.assert_allclose(np.load(out), X @ W + BIAS, rtol=1e-6)


def test_one_scope_from_several_files(work):
    result = run(
        "run",
        work / "params.vmfb",
        "--input=2x3xf32=1",
        f"--parameters=model={work / 'w.irpa'}",
        f"--parameters=model={work / 'b.irpa'}",
    )
    assert_ok(result)
    assert np.array2string(np.ones((2, 3), np.float32) @ W + BIAS) in result.output


@pytest.mark.parametrize(
    "parameters",
    [
        lambda work: {"model": work / "wb.irpa"},
        lambda work: [("model", str(work / "w.irpa")), ("model", work / "b.irpa")],
        lambda work: str(work / "wb.irpa"),  # one file, no scope: the module's only scope
        lambda work: [("", work / "w.irpa"), ("", work / "b.irpa")],
    ],
    ids=["dict", "pairs", "bare-path", "unscoped-pairs"],
)
def test_python_api_parameters(work, parameters):
    got = mipsc.load(work / "params.vmfb", parameters=parameters(work)).main(X)
    np.testing.assert_allclose(got, X @ W + BIAS, rtol=1e-6)


@pytest.mark.parametrize(
    "parameters",
    [lambda work: b"wb.irpa", lambda work: [("model",)], lambda work: {1: "x.irpa"}],
    ids=["bytes", "short-pair", "non-str-scope"],
)
def test_python_api_malformed_parameters(work, parameters):
    with pytest.raises(MipscError, match="parameters"):
        mipsc.load(work / "params.vmfb", parameters=parameters(work))


def test_missing_parameters_name_the_scope(work):
    for extra in ([], [f"--parameters=other={work / 'wb.irpa'}"]):
        result = run("run", work / "params.vmfb", "--input=2x3xf32=1", *extra)
        assert_user_error(
            result,
            "params.vmfb reads its weights from parameters of the scope 'model', and no "
            "parameter file was given for it",
            "--parameters=model=file.irpa",
        )
        assert "runtime/src" not in result.output


def test_missing_parameter_key(work):
    result = run(
        "run", work / "params.vmfb", "--input=2x3xf32=1", f"--parameters=model={work / 'w.irpa'}"
    )
    assert_user_error(
        result, "reads the parameter 'b', which none of the parameter files of its scope holds"
    )


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        ("nope.irpa", "No such file or directory"),
        (".", "Is a directory"),
        ("empty.irpa", "it is empty"),
        ("garbage.irpa", "IRPA file magic missing or invalid"),
        ("params.mlir", "unsupported file format `mlir`"),
    ],
)
def test_bad_parameter_file(work, file, reason):
    path = work / file
    result = run("run", work / "params.vmfb", "--input=2x3xf32=1", f"--parameters=model={path}")
    assert_user_error(result, f"error: cannot read parameter file '{path}': {reason}")
    assert "runtime/src" not in result.output


@pytest.mark.parametrize("spec", ["model=", "", "model=  "])
def test_malformed_parameters_spec(work, spec):
    result = run("run", work / "params.vmfb", "--input=2x3xf32=1", f"--parameters={spec}")
    assert_user_error(result, f"cannot understand --parameters '{spec}': expected SCOPE=FILE")


def test_parameters_spec_forms():
    assert parse_parameters("model=w.irpa") == ("model", "w.irpa")
    assert parse_parameters("w.irpa") == ("", "w.irpa")  # the unnamed scope, as iree-run-module
    assert parse_parameters("=w.irpa") == ("", "w.irpa")


# Parameters without a scope (`--parameters=FILE`): the module's scope when it has one.
TWO_SCOPES = PARAM_MODEL.replace('"model"::"b"', '"extra"::"b"')


def test_unscoped_parameter_file_serves_the_only_scope(work):
    result = run(
        "run", work / "params.vmfb", "--input=2x3xf32=1", f"--parameters={work / 'wb.irpa'}"
    )
    assert_ok(result)
    assert np.array2string(np.ones((2, 3), np.float32) @ W + BIAS) in result.output


def test_unscoped_parameter_file_with_two_scopes_names_them(work, tmp_path):
    (tmp_path / "two.mlir").write_text(TWO_SCOPES)
    assert_ok(run("compile", tmp_path / "two.mlir"))
    result = run(
        "run", tmp_path / "two.vmfb", "--input=2x3xf32=1", f"--parameters={work / 'wb.irpa'}"
    )
    assert_user_error(
        result, "reads parameters of more than one scope ('model', 'extra')", "--parameters=extra="
    )
    with pytest.raises(MipscError, match="more than one scope"):
        mipsc.load(tmp_path / "two.vmfb", parameters=work / "wb.irpa")
    # Named scopes work as before, and an unscoped file can serve the remaining one.
    ok = run(
        "run", tmp_path / "two.vmfb", "--input=2x3xf32=1",
        f"--parameters=extra={work / 'b.irpa'}", f"--parameters={work / 'w.irpa'}",
    )  # fmt: skip
    assert_ok(ok)
