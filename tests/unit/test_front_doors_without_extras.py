"""The front doors' packages are optional: `import mipsc` and `mipsc --help` never import them,
and an input that needs one says which extra to install (tested with the package hidden)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_import_mipsc_and_help_do_not_import_torch_or_onnx():
    done = _python(
        "import sys, mipsc, mipsc.cli\n"
        "from click.testing import CliRunner\n"
        "assert CliRunner().invoke(mipsc.cli.main, ['compile', '--help']).exit_code == 0\n"
        "heavy = sorted(m for m in ('torch', 'onnx', 'iree.turbine') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_dir_mipsc_shows_the_api_only():
    import mipsc
    from mipsc.diagnostics import MipscError

    assert dir(mipsc) == ["MipscError", "__version__", "compile", "load", "set_threads"]
    assert mipsc.MipscError is MipscError


# `sys.modules[name] = None` makes `import name` fail as if the package were not installed.
HIDE = "import sys\nfor m in {names}: sys.modules[m] = None\nfrom mipsc.cli import main\n"


@pytest.mark.parametrize(
    ("hidden", "args", "message"),
    [
        (
            ["torch"],
            ["compile", "{tmp}/m.py:make", "--example-input", "2xf32"],
            "pip install 'mipsc[torch]'",
        ),
        (
            ["iree.turbine"],
            ["compile", "{tmp}/m.py:make", "--example-input", "2xf32"],
            "pip install 'mipsc[torch]'",
        ),
        (["onnx"], ["compile", "{tmp}/m.onnx"], "pip install 'mipsc[onnx]'"),
    ],
)
def test_missing_extra_says_what_to_install(tmp_path, hidden, args, message):
    (tmp_path / "m.py").write_text("def make():\n    raise AssertionError('not reached')\n")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    argv = [a.format(tmp=tmp_path) for a in args]
    done = _python(HIDE.format(names=hidden) + f"main({argv!r}, prog_name='mipsc')\n")
    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_python_api_without_torch_says_what_to_install():
    done = _python(
        "import sys\nsys.modules['torch'] = None\nimport mipsc\n"
        "from mipsc.diagnostics import MipscError\n"
        "try:\n    mipsc.compile(object())\nexcept MipscError as e:\n    print(e.render())\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'mipsc[torch]'" in done.stdout
