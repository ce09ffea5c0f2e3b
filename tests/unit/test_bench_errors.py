"""`mipsc bench`'s user errors: a time per case that times nothing, and shapes too large for
the machine's memory, each one line without a worker's traceback."""

import pytest
from click.testing import CliRunner

from mipsc.bench import _worker_error, run_bench
from mipsc.cli import main
from mipsc.diagnostics import MipscError

WORKER_MEMORY_ERROR = """Traceback (most recent call last):
  File "numpy/random/_common.pyx", line 309, in numpy.random._common.double_fill
numpy._core._exceptions._ArrayMemoryError: Unable to allocate 74.5 GiB for an array with shape (100000, 100000) and data type float64"""


@pytest.mark.parametrize("seconds", ["0", "-1"])
def test_seconds_that_time_nothing_are_refused(seconds):
    """--seconds 0 ran the workers, which failed with a traceback ending in `no median for
    empty data`."""
    result = CliRunner().invoke(main, ["bench", "--shape", "4x4x4", "--seconds", seconds])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--seconds'" in result.output and "x>0" in result.output
    with pytest.raises(MipscError, match=r"must be above 0"):
        run_bench([(4, 4, 4)], ["f32"], [1], min_seconds=float(seconds))


def test_a_worker_out_of_memory_is_one_line_naming_the_shape():
    """The operands of 100000³ do not fit: the worker's traceback was printed whole."""
    err = _worker_error(WORKER_MEMORY_ERROR, [(8, 8, 8), (100000, 100000, 100000)], ["f32"])
    assert err.message.startswith(
        "the benchmark ran out of memory: the operands of 100000x100000x100000 (f32) do not fit"
    ), err.message
    assert "Traceback" not in err.message and "Unable to allocate 74.5 GiB" in err.message
    other = _worker_error("Traceback ...\nValueError: boom", [(8, 8, 8)], ["f32"])
    assert other.message == "benchmark worker failed:\nTraceback ...\nValueError: boom"
