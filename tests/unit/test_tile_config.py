"""The tile cost model's constants come from the kernel configuration table (issue 11, part 2):
the target CPU's entry in kernels/mips_config.c, read from the plugin (mipsc.kernel_config),
the entry the kernels take; without a table, the documented default (DEFAULT_TILE_MODEL)."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from mipsc import kernel_config
from mipsc.kernel_config import (
    CPU_CONFIGS,
    config_names,
    embedded_workspace_bytes,
    host_l2_bytes,
    plugin_file,
)
from mipsc.options import CompileOptions
from mipsc.pipeline import lower_module
from mipsc.remarks import collect_remarks
from mipsc.tiling import (
    DEFAULT_TILE_MODEL,
    TileModel,
    choose_tiles,
    describe_tile_model,
    forget_tile_models,
    tile_model,
)

needs_plugin = pytest.mark.skipif(
    not plugin_file().is_file(), reason="no kernel plugin (build it with `make kernels`)"
)

MM_1024 = """module @module {
  func.func @main(%a: !torch.vtensor<[1024,1024],f32>, %b: !torch.vtensor<[1024,1024],f32>) -> !torch.vtensor<[1024,1024],f32> {
    %0 = torch.aten.mm %a, %b : !torch.vtensor<[1024,1024],f32>, !torch.vtensor<[1024,1024],f32> -> !torch.vtensor<[1024,1024],f32>
    return %0 : !torch.vtensor<[1024,1024],f32>
  }
}
"""


def _numbers(model: TileModel) -> dict[str, object]:
    return {k: v for k, v in dataclasses.asdict(model).items() if k not in ("config", "reason")}


@needs_plugin
def test_the_default_is_the_zen4_entry():
    """DEFAULT_TILE_MODEL (a compile without the table) copies zen4's entry, field for field."""
    zen4 = tile_model("znver4")
    assert zen4.config == "zen4"
    assert _numbers(zen4) == _numbers(DEFAULT_TILE_MODEL)


@needs_plugin
@pytest.mark.parametrize(
    ("cpu", "entry"),
    [
        ("znver4", "zen4"), ("znver5", "zen5"), ("skylake-avx512", "intel-avx512"),
        ("sapphirerapids", "intel-avx512"), ("x86-64-v4", "zen4"), ("znver3", "avx2"),
        ("haswell", "avx2"), ("x86-64-v3", "avx2"), ("x86-64", "sse2"), ("sandybridge", "sse2"),
    ],
)  # fmt: skip
def test_a_named_target_gets_the_entry_the_kernels_take_there(cpu, entry):
    model = tile_model(cpu)
    assert (model.config, model.reason) == (
        entry,
        f"target-cpu={cpu}: the entry the kernels take on {cpu}",
    )


@needs_plugin
def test_every_mapped_entry_is_in_the_table():
    names = config_names()
    assert names[:2] == ["zen4", "zen5"]
    assert set(CPU_CONFIGS.values()) <= set(names)


def _info(env_config: str) -> tuple[dict[str, str], str]:
    """`mipsc kernel-info`'s fields and the compile's `-v` tile line, in processes of their
    own with MIPSC_KERNEL_CONFIG set ("" for none)."""
    env = {**os.environ, **({"MIPSC_KERNEL_CONFIG": env_config} if env_config else {})}
    run = {"capture_output": True, "text": True, "check": True}
    info = subprocess.run([sys.executable, "-m", "mipsc", "kernel-info"], env=env, **run).stdout
    line = subprocess.run(
        [sys.executable, "-c", "from mipsc.tiling import describe_tile_model as d; print(d('host'))"],
        env=env, **run,
    ).stdout.strip()  # fmt: skip
    return dict(re.findall(r"(\w+)=(\S+)", info)), line


@needs_plugin
@pytest.mark.parametrize("forced", ["", "avx2"])
def test_host_gets_the_entry_the_kernels_get(forced):
    """`--target-cpu=host` reads the entry `mipsc kernel-info` shows, MIPSC_KERNEL_CONFIG and
    all, with the same constants."""
    info, line = _info(forced)
    assert info["config"] == (forced or info["config"])
    assert f"configuration '{info['config']}' (target-cpu=host: this machine's entry" in line
    if not forced:
        host = tile_model("host")
        assert host.config == info["config"]
        assert info["tile_max"] == "{}x{}".format(*host.max_tile)
        assert int(info["tile_pack_flops"]) == host.pack_flops
        assert int(info["tile_wake_flops"]) == host.wake_flops
        assert int(info["tile_one_worker_pct"]) == round(100 * host.one_worker_weight)
        assert int(info["tile_thin_bytes"]) == host.thin_tile_bytes


@pytest.fixture
def live_config() -> Iterator[ctypes.CDLL]:
    """The plugin loaded in this process (the handle the table is read through), its live
    configuration restored after the test."""
    if not plugin_file().is_file():
        pytest.skip("no kernel plugin (build it with `make kernels`)")
    lib = ctypes.CDLL(str(plugin_file().resolve()))
    lib.mips_debug_set_config.argtypes = [ctypes.c_char_p, ctypes.c_int64]
    lib.mips_debug_set_config.restype = ctypes.c_int
    host = tile_model("host")
    yield lib
    for key, value in (
        ("tile_max_cols", host.max_tile[1]), ("tile_pack_flops", host.pack_flops),
        ("thin_streams", host.thin_column_align // 32),
        ("prepack_f32_min_rows", host.prepack_f32_min_rows),
    ):  # fmt: skip
        assert lib.mips_debug_set_config(key.encode(), value) == 0
    forget_tile_models()


def test_tiles_follow_the_constants_of_the_entry(live_config):
    """Changing the host's live entry (as tools/tune_kernels.py does) changes the tiles chosen
    for `host`, through the real lookup; a named target reads the table as written."""
    before = choose_tiles(2048, 2048, 1, 2048, 2)
    assert before == (516, 256)
    assert live_config.mips_debug_set_config(b"tile_max_cols", 128) == 0
    assert live_config.mips_debug_set_config(b"tile_pack_flops", 100_000_000) == 0
    forget_tile_models()
    host = tile_model("host")
    assert host.max_tile[1] == 128 and host.pack_flops == 100_000_000
    assert choose_tiles(2048, 2048, 1, 2048, 2) != before
    assert choose_tiles(2048, 2048, 1, 2048, 2)[1] <= 128
    assert choose_tiles(2048, 2048, 1, 2048, 2, model=tile_model("znver4")) == before
    assert live_config.mips_debug_set_config(b"tile_pack_flops", -1) == -1
    assert live_config.mips_debug_set_config(b"tile_nope", 1) == -1


def test_thin_tiles_follow_the_entrys_streams(live_config):
    """Thin tile widths are multiples of 32-column panels times thin_streams (1, 2 or 4)."""
    assert choose_tiles(1, 1100, 1, 1000, 2) == (12, 640)  # two stripes of 5 panels of 128
    assert live_config.mips_debug_set_config(b"thin_streams", 2) == 0
    forget_tile_models()
    assert tile_model("host").thin_column_align == 64
    assert choose_tiles(1, 1100, 1, 1000, 2) == (12, 576)  # of 9 panels of 64


def test_the_lowering_chooses_for_its_target_cpu(live_config):
    """The pass option target_cpu (from `--target-cpu`) picks the entry whose tiles the
    dispatches get: host's changed entry against znver4's table entry."""
    assert live_config.mips_debug_set_config(b"tile_max_cols", 128) == 0
    forget_tile_models()
    tiles = {}
    for cpu in ("host", "znver4"):
        with collect_remarks() as remarks:
            lower_module(MM_1024, "mm.mlir", CompileOptions(target_cpu=cpu, workers=2))
        (found,) = {m for r in remarks for m in re.findall(r"per (\d+x\d+) tile", r.message)}
        tiles[cpu] = found
    assert tiles == {"host": "516x128", "znver4": "516x256"}


def test_without_a_plugin_the_default_model(tmp_path, monkeypatch):
    """No plugin at compile time, or a file that is none, or a CPU the table does not know:
    DEFAULT_TILE_MODEL's tiles, and the `-v` line says why."""
    monkeypatch.setenv("MIPSC_PLUGIN", str(tmp_path / "missing.so"))
    model = tile_model("host")
    assert _numbers(model) == _numbers(DEFAULT_TILE_MODEL)
    assert describe_tile_model("host") == (
        "tiles chosen with the default cost model (zen4's constants): no kernel plugin at "
        f"{tmp_path / 'missing.so'} (build it with `make kernels`)"
    )
    assert choose_tiles(2048, 2048, 1, 2048, 2, model=model) == (516, 256)
    assert choose_tiles(128, 2304, 1, 768, 2, model=model) == (132, 192)
    (tmp_path / "junk.so").write_text("not a library")
    monkeypatch.setenv("MIPSC_PLUGIN", str(tmp_path / "junk.so"))
    assert "cannot be loaded" in tile_model("znver4").reason
    monkeypatch.delenv("MIPSC_PLUGIN")
    unknown = tile_model("cortex-a53")
    assert _numbers(unknown) == _numbers(DEFAULT_TILE_MODEL)
    assert unknown.reason == "no kernel configuration is known for the CPU 'cortex-a53'"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("int mips_kernel_abi_version(void) { return 6; }", "was built for kernel ABI 6, not"),
        ("int other(void) { return 0; }", "predates kernel ABI versions"),
    ],
)
def test_a_plugin_of_another_abi_gives_the_default_model(tmp_path, monkeypatch, source, why):
    """A stale plugin (its table may lack the tile fields, or lay them out otherwise) is not
    read: the default model, and the reason."""
    (tmp_path / "stale.c").write_text(source + "\n")
    library = tmp_path / "stale.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-o", str(library), str(tmp_path / "stale.c")], check=True
    )
    monkeypatch.setenv("MIPSC_PLUGIN", str(library))
    model = tile_model("znver4")
    assert _numbers(model) == _numbers(DEFAULT_TILE_MODEL)
    assert model.config == "default" and why in model.reason


def test_the_tiles_follow_an_iree_target_cpu_flag():
    """`--iree-llvmcpu-target-cpu=X` among the iree-compile flags (after mipsc's, so IREE
    takes it) names the CPU the lowering chooses for too (two naming different CPUs are an
    error: test_options)."""
    options = CompileOptions(iree_flags=["--iree-llvmcpu-target-cpu=x86-64"])
    assert options.compiled_cpu == "x86-64"
    assert options.pass_arguments("lower-mips-to-call")["target_cpu"] == "x86-64"
    assert options.command_line(lowering_only=True) == ["--target-cpu=x86-64"]  # `-v`'s reprint
    flags = ["--iree-llvmcpu-target-cpu-features=+avx2"]
    assert CompileOptions(target_cpu="znver4", iree_flags=flags).compiled_cpu == "znver4"


def test_verbose_names_the_flag_that_chose_the_cpu(tmp_path):
    """With an --iree-llvmcpu-target-cpu among the iree flags, -v said `target-cpu=znver4`
    for a module IREE compiled for haswell."""
    from mipsc.pipeline import compile_module

    said: list[str] = []
    options = CompileOptions(iree_flags=["--iree-llvmcpu-target-cpu=haswell"], kernel_link="plugin")
    mm = MM_1024.replace("1024", "4")
    compile_module(mm, "mm.mlir", tmp_path / "mm.vmfb", options, progress=said.append)
    flag = "--iree-llvmcpu-target-cpu=haswell"
    assert f"iree-compile (llvm-cpu, {flag}) -> {tmp_path / 'mm.vmfb'}" in said
    assert f"IREE's code in {tmp_path / 'mm.vmfb'} is for the CPU 'haswell' ({flag})" in said


ONE_ROW = """
util.global private @w = dense<1.0> : tensor<64x32xf32>
func.func @main(%a: tensor<1x32xf32>, %c: tensor<1x64xf32>) -> tensor<1x64xf32> {
  %w = util.global.load @w : tensor<64x32xf32>
  %r = mips.matmul transpose_rhs ins(%a, %w : tensor<1x32xf32>, tensor<64x32xf32>) outs(%c : tensor<1x64xf32>) -> tensor<1x64xf32>
  return %r : tensor<1x64xf32>
}
"""


def test_prepacking_follows_the_entrys_row_threshold(live_config):
    """pack-weights packs an f32 weight from the target entry's prepack_f32_min_rows rows of C
    (1 on zen4: a decode step's weights too); the host's changed entry against znver4's."""
    from mipsc.ir import make_context, parse_module
    from mipsc.transforms.pack_weights import PackWeightsPass

    assert tile_model("znver4").prepack_f32_min_rows == 1
    assert live_config.mips_debug_set_config(b"prepack_f32_min_rows", 5) == 0
    forget_tile_models()
    assert tile_model("host").prepack_f32_min_rows == 5
    packed = {}
    for cpu in ("host", "znver4"):
        ctx = make_context()
        module = parse_module(ctx, ONE_ROW)
        PackWeightsPass(target_cpu=cpu).apply(ctx, module)
        packed[cpu] = "packed_rhs" in str(module)
    assert packed == {"host": False, "znver4": True}
    assert live_config.mips_debug_set_config(b"prepack_f32_min_rows", 0) == -1


@pytest.mark.parametrize(
    ("cpu", "workspace"),
    [("znver4", 1 << 20), ("znver5", 1 << 20), ("sapphirerapids", 512 << 10),
     ("znver3", 256 << 10), ("haswell", 256 << 10), ("x86-64", 256 << 10),
     ("not-a-cpu", 256 << 10)],
)  # fmt: skip
def test_the_workspace_is_the_smallest_l2_of_a_named_target(cpu, workspace):
    assert embedded_workspace_bytes(cpu) == workspace


@pytest.mark.parametrize(
    ("size", "expected"),
    [("512K", 512 << 10), ("1024K", 1 << 20), ("2M", 2 << 20), ("1280K", 1280 << 10),
     ("", None), ("big", None)],
)  # fmt: skip
def test_the_host_l2_is_read_from_sysfs(tmp_path, size, expected):
    """cpu0's level-2 data or unified cache (an instruction cache of level 2 is not it)."""
    for index, (level, kind, text) in enumerate(
        [("1", "Data", "32K"), ("2", "Instruction", "64K"), ("2", "Unified", size)]
    ):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", text)):
            (folder / name).write_text(value + "\n")
    assert host_l2_bytes(tmp_path) == expected


def test_a_host_compile_lends_at_most_the_host_l2(monkeypatch):
    """IREE's workers have the L2's size of local memory: a host module never asks more."""
    monkeypatch.setattr(kernel_config, "host_l2_bytes", lambda: 512 << 10)
    assert embedded_workspace_bytes("host") == 512 << 10
    monkeypatch.setattr(kernel_config, "host_l2_bytes", lambda: 2 << 20)
    assert embedded_workspace_bytes("host") == 1 << 20
    monkeypatch.setattr(kernel_config, "host_l2_bytes", lambda: None)
    assert embedded_workspace_bytes("host") == 256 << 10
