"""Fixtures and settings shared by the unit and end-to-end tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"

# Modules compiled without an explicit --kernel-link get the plugin form in the test suite: most
# tests prove that a kernel ran with the plugin's debug counters, which the embedded object
# (the default for users) cannot have. The embedded form has its own tests, which ask for it.
os.environ.setdefault("MIPSC_KERNEL_LINK", "plugin")


@pytest.fixture(scope="session")
def mm_vmfb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/mm_static.mlir through `mipsc compile` (37x19 . 19x23 in mips_matmul_f32),
    once per session: the tests that only load or run it share it. Read it, never write it."""
    from click.testing import CliRunner

    from mipsc.cli import main

    vmfb = tmp_path_factory.mktemp("mm") / "mm.vmfb"
    result = CliRunner().invoke(main, ["compile", str(DATA / "mm_static.mlir"), "-o", str(vmfb)])
    assert result.exit_code == 0, result.output
    return vmfb
