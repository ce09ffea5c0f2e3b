"""CompileOptions (mipsc.options): one object carries every option of a compile, and the CLI,
mipsc.compile and the passes all read it, so a new option is one field."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mipsc.cli import main
from mipsc.diagnostics import MipscError
from mipsc.options import DEFAULT_OPTIONS, CompileOptions, option_specs
from mipsc.pipeline import compile_passes, describe_pipeline
from mipsc.transforms.lower_mips_to_call import LowerMipsToCallPass


def test_the_passes_are_built_from_the_options():
    options = CompileOptions(kernel_backend="openblas", workers=3)
    passes = compile_passes(options)
    lowering = passes[-2]
    assert isinstance(lowering, LowerMipsToCallPass)
    assert (lowering.backend, lowering.workers) == ("openblas", 3)
    assert describe_pipeline(passes).endswith(
        'lower-mips-to-call{workers=3 backend="openblas"},flatten-dynamic-views'
    )
    assert describe_pipeline(compile_passes(DEFAULT_OPTIONS, "mips")) == (
        "check-input-dims,decompose-torch,convert-torch-to-mips,fuse-epilogues"
    )


def test_every_field_with_a_flag_is_a_compile_flag():
    help_text = CliRunner().invoke(main, ["compile", "--help"]).output
    for field, spec in option_specs():
        for flag in spec.flags_for(field.name).split("/"):
            assert flag in help_text, flag


def test_command_line_gives_back_the_options():
    options = CompileOptions(
        target_cpu="znver4", workers=2, external_weights=False, iree_flags=["--iree-x=1"]
    )
    assert options.command_line() == [
        "--target-cpu=znver4", "--workers=2", "--inline-weights", "--iree-x=1"
    ]  # fmt: skip
    # What changes the MLIR handed to iree-compile (what `-v` reprints), not iree-compile's own;
    # the target CPU does (its kernel configuration's tile cost model chooses the tiles).
    assert options.command_line(lowering_only=True) == [
        "--target-cpu=znver4", "--workers=2", "--inline-weights"
    ]  # fmt: skip
    assert DEFAULT_OPTIONS.command_line() == []


def test_options_are_hashable_and_replace_checks_names():
    options = DEFAULT_OPTIONS.replace(iree_flags=["--iree-a"], workers=4)
    assert options.iree_flags == ("--iree-a",)  # a list is kept as a tuple
    assert hash(options) == hash(CompileOptions(workers=4, iree_flags=("--iree-a",)))
    with pytest.raises(TypeError, match=r"unknown compile option.*kernel_backnd"):
        DEFAULT_OPTIONS.replace(kernel_backnd="openblas")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"workers": 300}, "workers=300 (--workers) is out of range: give a whole number from 0 to 256"),
        ({"workers": -1}, "workers=-1 (--workers) is out of range: give a whole number from 0 to 256"),
        ({"workers": 2.5}, "workers=2.5 (--workers) is not an int: give a whole number from 0 to 256"),
        ({"workers": True}, "workers=True (--workers) is not an int"),
        ({"kernel_link": "static"}, "kernel_link='static' (--kernel-link) is not one of: embedded, plugin"),
        ({"kernel_backend": "mkl"}, "kernel_backend='mkl' (--kernel-backend) is not one of: builtin, openblas"),
        ({"external_weights": "yes"}, "external_weights='yes' (--external-weights) is not True, False or None"),
        ({"target_cpu": ""}, "target_cpu='' (--target-cpu) is not a name: give one such as 'host'"),
        ({"iree_flags": "--iree-x=1"}, "iree_flags='--iree-x=1' is one string: give a list of flags"),
        ({"iree_flags": ["-O3"]}, "iree_flags: '-O3' is not an iree-compile flag (--iree-*=value)"),
        ({"iree_flags": ["--iree-llvmcpu-target-cpu="]}, "'--iree-llvmcpu-target-cpu=' names no CPU: give it after '='"),
        ({"iree_flags": ["--iree-llvmcpu-target-cpu"]}, "'--iree-llvmcpu-target-cpu' names no CPU"),
    ],
)  # fmt: skip
def test_values_are_checked_in_one_place_for_the_api_and_the_cli(values, message):
    """mipsc.compile's keywords (CompileOptions) and `mipsc compile`'s flags get one check and
    one message: the Python API took workers=300 silently."""
    with pytest.raises(MipscError) as info:
        CompileOptions(**values)
    assert message in info.value.render()
    with pytest.raises(MipscError):
        DEFAULT_OPTIONS.replace(**values)
    (name, value), *_ = values.items()
    # (the command line says --target-cpu= its own way: test_a_bad_cpu_name_is_said_...)
    if type(value) in (int, str) and name not in ("iree_flags", "external_weights", "target_cpu"):
        flag = name.replace("_", "-")
        result = CliRunner().invoke(main, ["compile", "x.mlir", f"--{flag}={value}"])
        assert result.exit_code == 1 and message in result.output, result.output


@pytest.mark.parametrize("flag", ["--iree-llvmcpu-target-cpu=", "--iree-llvmcpu-target-cpu"])
def test_a_target_cpu_flag_without_a_cpu_is_refused_on_the_command_line(flag):
    """`--iree-llvmcpu-target-cpu=` compiled with tiles for CPU '' and printed a -v command with
    --target-cpu= (which mipsc refuses); without '=', iree-compile said 'Too many positional
    arguments'."""
    result = CliRunner().invoke(main, ["compile", "x.mlir", flag, "-o", "x.vmfb"])
    assert result.exit_code == 1, result.output
    empty = f"{flag}: the CPU name is empty: give one such as znver4, or host"
    assert (empty if flag.endswith("=") else f"'{flag}' names no CPU") in result.output


CPU_CONFLICT = (
    "give only one: that one flag sets both the CPU IREE compiles for and the one the matmuls' "
    "tiles are chosen for"
)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--target-cpu=znver4", "--iree-llvmcpu-target-cpu=haswell"],
         "--target-cpu=znver4 and --iree-llvmcpu-target-cpu=haswell name two different CPUs"),
        (["--iree-llvmcpu-target-cpu=haswell", "--iree-llvmcpu-target-cpu=x86-64"],
         "--iree-llvmcpu-target-cpu=haswell and --iree-llvmcpu-target-cpu=x86-64 name two "
         "different CPUs"),
        # host is this machine's CPU, maybe the other one: not "two different CPUs"
        (["--target-cpu=host", "--iree-llvmcpu-target-cpu=znver4"],
         "--target-cpu=host and --iree-llvmcpu-target-cpu=znver4 both name the CPU to compile "
         "for (host is this machine's CPU)"),
    ],
)  # fmt: skip
def test_conflicting_target_cpus_are_an_error_naming_both_flags(flags, named):
    """`--target-cpu=znver4 --iree-llvmcpu-target-cpu=haswell` compiled for haswell silently
    (only -v said so): it is refused before any input is read (x.mlir does not exist)."""
    result = CliRunner().invoke(main, ["compile", "x.mlir", *flags, "-o", "x.vmfb"])
    assert result.exit_code == 1, result.output
    assert f"error: {named}: {CPU_CONFLICT}\n" == result.output


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--target-cpu=ZNVER4", "--iree-llvmcpu-target-cpu=znver4"],
         "--target-cpu=ZNVER4: the CPU name is not in lower case, as LLVM's CPU names are "
         "(did you mean znver4?)"),
        (["--target-cpu="], "--target-cpu=: the CPU name is empty"),
        (["--target-cpu=znver4", "--iree-llvmcpu-target-cpu="],
         "--iree-llvmcpu-target-cpu=: the CPU name is empty"),
        (["--target-cpu=znver4", "--iree-llvmcpu-target-cpu=znver4 "],
         "--iree-llvmcpu-target-cpu=znver4 : the CPU name has a space in it"),
    ],
)  # fmt: skip
def test_a_bad_cpu_name_is_said_rather_than_two_cpus(flags, said):
    """They all said "name two different CPUs"."""
    result = CliRunner().invoke(main, ["compile", "x.mlir", *flags, "-o", "x.vmfb"])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"error: {said}: give one such as znver4, or host (this machine's CPU)\n"
    )


def test_conflicting_target_cpus_are_an_error_in_python_too():
    """Python names its keywords: the message showed the command line's --target-cpu=."""
    with pytest.raises(MipscError) as raised:
        CompileOptions(target_cpu="znver4", iree_flags=["--iree-llvmcpu-target-cpu=haswell"])
    assert str(raised.value) == (
        "target_cpu='znver4' and iree_flags '--iree-llvmcpu-target-cpu=haswell' name two "
        f"different CPUs: {CPU_CONFLICT}"
    )


def test_target_cpu_none_is_the_default():
    """mipsc.compile(target_cpu=None) was refused ("is not a name")."""
    assert CompileOptions(target_cpu=None).target_cpu == CompileOptions().target_cpu == "host"
    assert DEFAULT_OPTIONS.replace(target_cpu=None) == DEFAULT_OPTIONS


@pytest.mark.parametrize(
    "values",
    [
        {"target_cpu": "haswell", "iree_flags": ["--iree-llvmcpu-target-cpu=haswell"]},
        {"iree_flags": ["--iree-llvmcpu-target-cpu=haswell"]},  # target_cpu left at host
        {"target_cpu": "znver4", "iree_flags": ["--iree-llvmcpu-target-cpu-features=+avx2"]},
    ],
)
def test_one_cpu_named_once_or_twice_is_fine(values):
    assert CompileOptions(**values).compiled_cpu == values.get("target_cpu", "haswell")
