"""The lean compile path (issue 14, part 7): what `mipsc compile` does not do any more.

tools/bench_compile.py measures the times; these tests keep the reasons for them in place:
no numpy or iree.compiler import, weight blobs handed on without an xDSL round trip, large
modules given to iree-compile as a file, and the same results and error locations either way.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import mipsc
from mipsc import mlir_text
from mipsc.backend import iree_compile
from mipsc.cli import main
from mipsc.diagnostics import MipscError
from mipsc.mlir_text import FileSpan, MlirText, read_mlir_file
from mipsc.options import DEFAULT_OPTIONS
from mipsc.pipeline import compile_module, compile_passes, lower, lower_module, split_resources

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"


def test_compiling_imports_neither_numpy_nor_iree_compiler(tmp_path):
    code = (
        "import sys\nfrom pathlib import Path\nimport mipsc.cli\n"
        "from mipsc.pipeline import compile_module\n"
        f"text = Path({str(DATA / 'mlp.mlir')!r}).read_text()\n"
        f"compile_module(text, 'mlp.mlir', Path({str(tmp_path / 'm.vmfb')!r}))\n"
        "print(sorted(m for m in ('numpy', 'iree.compiler') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "m.vmfb").stat().st_size > 0


def test_the_compile_command_imports_no_numpy_torch_onnx_or_iree_compiler(tmp_path):
    """`mipsc compile model.mlir` as a user runs it: no front door's packages (numpy alone cost
    ~0.4 s, imported by the torch front door to recognise `model.py:NAME`)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mipsc", "compile", str(DATA / "mm_static.mlir"),
         "-o", str(tmp_path / "m.vmfb")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "mipsc.pipeline" in imported  # (the list is read right)
    heavy = ("numpy", "torch", "onnx", "iree.compiler", "ml_dtypes", "mipsc.frontends.from_torch")
    assert sorted(imported & set(heavy)) == []
    assert (tmp_path / "m.vmfb").stat().st_size > 0


def test_the_command_makes_its_imports_with_the_collector_paused():
    """The `mipsc` script and `python -m mipsc` import mipsc.cli (xDSL and all) with no cyclic
    garbage collection, then collect as usual with the imports' objects frozen out of the scans
    (~25% of the CPU time of a small compile)."""
    code = (
        "import gc, sys\n"
        "during = []\n"
        "def seen(phase, info):  # a collection while mipsc.cli is being imported\n"
        "    cli = sys.modules.get('mipsc.cli')\n"
        "    if phase == 'start' and cli is not None and not hasattr(cli, 'main'):\n"
        "        during.append(info['generation'])\n"
        "gc.callbacks.append(seen)\n"
        "sys.argv = ['mipsc', '--help']\n"
        "from mipsc.__main__ import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "gc.collect()\n"
        "print(during, gc.isenabled(), gc.get_freeze_count() > 10000, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Usage: mipsc" in done.stdout
    assert done.stderr.strip() == "[] True True"


def test_resources_are_split_off_and_handed_on_unchanged():
    text = (DATA / "mlp.mlir").read_text()
    body, resources = split_resources(text)
    assert body + resources == text
    assert resources.startswith("{-#") and "dense_resource" not in resources
    assert "{-#" not in body
    lowered = lower_module(text, "mlp.mlir")
    assert lowered.endswith(resources)  # the blobs, as written, after mipsc's module
    assert lowered.count("{-#") == 1


def test_the_section_marker_in_a_string_of_a_module_with_weights():
    """A string attribute holding `{-# ... #-}` is no resource section, in the input or in
    the printed module (it crashed the printing: "a pass made resource blobs")."""
    text = (DATA / "mlp.mlir").read_text()
    marked = text.replace(
        "attributes {torch.assume_strict_symbolic_shapes}",
        'attributes {note = "{-# x #-}", torch.assume_strict_symbolic_shapes}',
        1,
    )
    assert marked != text
    lowered = lower_module(marked, "mlp.mlir")
    assert '"{-# x #-}"' in lowered
    assert lowered.endswith(split_resources(text)[1])


@pytest.mark.parametrize(
    "text",
    [
        "module {\n}\n",
        'module {\n  "x.y"() {s = "{-#"} : () -> ()\n}\n',  # the marker inside the module
        "module {\n}\n{-#\n  external_resources: {\n  }\n#-}\n",  # not dialect resources
    ],
)
def test_nothing_to_split(text):
    assert split_resources(text) == (text, "")


EXPORTS = sorted(DATA.glob("*.mlir"))


@pytest.mark.parametrize("path", EXPORTS, ids=[p.stem for p in EXPORTS])
def test_a_section_left_on_disk_is_handed_on_as_the_printed_module_has_it(
    path, monkeypatch, tmp_path
):
    """Every committed export, its resource section left in the file: what iree-compile reads
    is exactly the text the in-memory round trip printed."""
    monkeypatch.setattr(mlir_text, "STREAM_BYTES", 1)
    text = path.read_text()
    streamed = read_mlir_file(path)
    module, section = split_resources(text)
    assert isinstance(streamed, MlirText) == (section != "")
    if not section:
        assert streamed == text
        return
    assert streamed.head == module and streamed.tail == FileSpan(path, len(module), len(text))
    printed = lower(streamed, path.name, compile_passes(DEFAULT_OPTIONS)).printed(debuginfo=True)
    assert isinstance(printed.tail, FileSpan)  # never read
    expected = lower_module(text, path.name, debuginfo=True)
    assert str(printed) == expected
    with (tmp_path / "out.mlir").open("wb") as out:
        printed.write_binary(out)  # (the kernel's copy)
    assert (tmp_path / "out.mlir").read_text() == expected


def test_the_compile_command_leaves_a_large_section_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(mlir_text, "STREAM_BYTES", 1000)
    read: list[FileSpan] = []
    monkeypatch.setattr(FileSpan, "chunks", lambda span, size=0: read.append(span) or iter(()))
    source, out = DATA / "mlp.mlir", tmp_path / "mlp.iree.mlir"
    args = ["compile", str(source), "--emit=iree-input", "--print-debuginfo", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert read == []  # copied by the kernel, never read into Python
    assert out.read_text() == lower_module(source.read_text(), str(source), debuginfo=True)


def test_the_output_may_be_the_input_whose_section_it_copies(tmp_path, monkeypatch):
    monkeypatch.setattr(mlir_text, "STREAM_BYTES", 1000)
    path = tmp_path / "mlp.mlir"
    path.write_text((DATA / "mlp.mlir").read_text())
    expected = lower_module(path.read_text(), str(path), debuginfo=True)
    args = ["compile", str(path), "--emit=iree-input", "--print-debuginfo", "-o", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert path.read_text() == expected  # (not truncated before the section was copied)


def test_the_lowered_module_is_verified_by_iree_compile_alone(tmp_path, monkeypatch):
    """xDSL verifies the input (its errors are the user's) but not the lowered module, which
    iree-compile verifies next; `mipsc opt` and the --emit stages still verify both."""
    from mipsc import pipeline

    verified = []
    real = pipeline.verify_module
    monkeypatch.setattr(pipeline, "verify_module", lambda m: verified.append(m) or real(m))
    text = (DATA / "mm_static.mlir").read_text()
    compile_module(text, "mm_static.mlir", tmp_path / "m.vmfb")
    assert len(verified) == 1
    lower_module(text, "mm_static.mlir")
    assert len(verified) == 3


def test_a_large_module_goes_through_a_file_with_the_same_result(tmp_path, monkeypatch):
    text = (DATA / "mlp.mlir").read_text()
    small, large = tmp_path / "pipe.vmfb", tmp_path / "file.vmfb"
    compile_module(text, "mlp.mlir", small)
    monkeypatch.setattr(iree_compile, "FILE_INPUT_BYTES", 1000)
    seen = []
    compile_module(text, "mlp.mlir", large, show_command=seen.append)
    assert seen and seen[0][1].endswith("iree-input.mlir")  # a file, not stdin
    x = np.random.default_rng(0).standard_normal((8, 32), dtype=np.float32)
    np.testing.assert_array_equal(mipsc.load(large).main(x), mipsc.load(small).main(x))


def test_errors_of_a_large_module_do_not_point_into_mipsc_files(tmp_path, monkeypatch):
    monkeypatch.setattr(iree_compile, "FILE_INPUT_BYTES", 10)
    with pytest.raises(MipscError) as info:
        iree_compile.compile_mlir("module {\n  func.func private @f(", tmp_path / "x.vmfb")
    assert "iree-input.mlir" not in info.value.render()
    assert "mipsc-" not in info.value.render()


EXPORT_WITH_LOCATIONS = """#loc1 = loc("/src/model.py":8:0)
#loc2 = loc("/venv/lib/python3.11/site-packages/torch/_dynamo/functional_export.py":232:0)
#loc4 = loc(callsite(#loc1 at #loc2))
module @module {
  func.func @main(%arg0: !torch.vtensor<[2,8],f32> loc(callsite(#loc1 at #loc2))) -> !torch.vtensor<[2,8],f32> {
    %0 = torch.aten.relu %arg0 : !torch.vtensor<[2,8],f32> -> !torch.vtensor<[2,8],f32> loc(#loc5)
    %1 = torch.aten.relu %0 : !torch.vtensor<[2,8],f32> -> !torch.vtensor<[2,8],f32> loc(#loc2)
    return %1 : !torch.vtensor<[2,8],f32> loc(#loc4)
  } loc(#loc4)
} loc(#loc)
#loc = loc(unknown)
#loc3 = loc("/src/model.py":9:0)
#loc5 = loc(callsite(#loc3 at #loc2))

{-#
  dialect_resources: {
    builtin: {
      w: "0x04000000loc(#loc1)"
    }
  }
#-}
"""


def test_torch_locations_become_the_users_python_lines():
    from mipsc.frontends.from_torch import python_locations

    text = python_locations(EXPORT_WITH_LOCATIONS)
    assert "#loc" not in text.split("{-#")[0]  # no aliases left for xDSL to trip on
    assert (
        'relu %arg0 : !torch.vtensor<[2,8],f32> -> !torch.vtensor<[2,8],f32> loc("/src/model.py":9:1)'
        in text
    )
    # A stack only in Python's libraries keeps no location; the blobs are not touched.
    assert "-> !torch.vtensor<[2,8],f32>\n    return" in text
    assert text.endswith(EXPORT_WITH_LOCATIONS[EXPORT_WITH_LOCATIONS.index("{-#") :])
    module = lower_module(text, "<export>", debuginfo=True)  # mipsc reads and keeps them
    assert 'loc("/src/model.py":9:1)' in module


def test_mipsc_own_frames_are_not_the_users_line():
    """The torch.compile backend exports a graph through a wrapper in mipsc/dynamo.py; with an
    editable install (outside site-packages) its line was an error's location."""
    import mipsc.dynamo
    from mipsc.frontends.from_torch import python_locations

    ours = mipsc.dynamo.__file__
    text = EXPORT_WITH_LOCATIONS.replace('"/src/model.py":9:0', f'"{ours}":205:0')
    located = python_locations(text)
    assert ours not in located
    assert "-> !torch.vtensor<[2,8],f32>\n    %1" in located  # relu of #loc5: no location
    assert 'loc("/src/model.py":8:1)' in located  # the user's frames still count
