"""`mipsc bench` end to end on a tiny shape: every backend is timed and reported."""

import json

import pytest
from click.testing import CliRunner

from mipsc.cli import main
from mipsc.runtime import openblas_library

pytestmark = pytest.mark.e2e


def test_bench_reports_every_backend(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        main,
        ["bench", "--shape", "48x40x32", "--threads", "1", "--seconds", "0.05", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "OPENBLAS_CORETYPE:" in result.output
    assert "48x40x32" in result.output
    assert "mipsc-openblas (f32; one single-threaded sgemm per tile): " in result.output
    report = json.loads(out.read_text())
    backends = {r["backend"] for r in report["results"]}
    # mipsc-openblas when OpenBLAS is there (the test extra installs scipy-openblas32)
    openblas = openblas_library() is not None
    assert backends == {"mipsc", "mipsc-plugin", "iree-best", "numpy"} | ({"mipsc-openblas"} if openblas else set())
    assert report["openblas_backend"].startswith("skipped: ") != openblas
    for r in report["results"]:
        assert r["median_ms"] > 0 and r["gflops"] > 0 and r["samples"] >= 1
        assert (r["m"], r["n"], r["k"], r["threads"]) == (48, 40, 32, 1)


def test_bench_rejects_a_bad_shape():
    result = CliRunner().invoke(main, ["bench", "--shape", "12x3"])
    assert result.exit_code == 1
    assert "bad shape '12x3'" in result.output
