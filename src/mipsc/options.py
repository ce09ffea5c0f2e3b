"""`CompileOptions`: every option of a compile, in one frozen object.

`mipsc compile`, `mipsc.compile`, the front doors and the pipeline all take this one object:
the command line makes its flags from the fields (see `OptionSpec`), `mipsc.compile` takes
them as keywords, the pipeline hands each pass the fields that name one of its options
(`pass_arguments`), and `mipsc.compile`'s cache keys on the whole object.

A new option is one field here (`kernel_link` is an example: one field, with its flag, its
pass option and its help).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from mipsc.backend.iree_compile import DEFAULT_TARGET_CPU
from mipsc.diagnostics import MipscError
from mipsc.kernel_abi import DEFAULT_BACKEND, DEFAULT_KERNEL_LINK, KERNEL_BACKENDS, KERNEL_LINKS

MAX_THREADS = 256
"""The most threads mipsc takes anywhere (`mipsc.set_threads`, `mipsc bench --threads`,
`--workers`): above any CPU mipsc runs on, and low enough that a mistyped count does not
start thousands of workers."""

LOWERING = "lower-mips-to-call"
"""The flag name of the pass that takes the kernel options (LowerMipsToCallPass.name)."""

TARGET_CPU_FLAG = "--iree-llvmcpu-target-cpu="
"""iree-compile's flag for its target CPU (`--target-cpu` gives it; in iree_flags it names the
CPU in its place, and the two naming different CPUs are an error: check_target_cpus)."""

PACKING = "pack-weights"
"""The flag name of the pass that packs constant weights for the kernels (PackWeightsPass.name):
it packs only for the builtin kernels (the others take B unpacked), so it sees the backend too."""


@dataclass(frozen=True)
class OptionSpec:
    """How a CompileOptions field shows on the command line and reaches a pass."""

    help: str
    """The `--help` text of its flag."""
    choices: tuple[str, ...] = ()
    """The values a string option takes (a click.Choice); () for any."""
    int_range: tuple[int, int] | None = None
    """(lowest, highest) of an int option."""
    flag: str = ""
    """The flag (e.g. `--external-weights/--inline-weights` for a bool pair); "" for
    `--field-name`."""
    pass_options: tuple[tuple[str, str], ...] = ()
    """(pass flag name, its option name) of each pass built with this field's value."""
    lowers: bool = False
    """Whether the field changes the MLIR handed to iree-compile (`--emit=iree-input`), as
    opposed to iree-compile's own flags."""

    def flags_for(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def option(default: Any, **spec: Any) -> Any:
    """A CompileOptions field with its OptionSpec (see there for the keywords)."""
    meta = OptionSpec(**spec)
    return field(default=default, metadata={"spec": meta})


@dataclass(frozen=True)
class CompileOptions:
    """The options of one compile (the defaults are `mipsc compile`'s).

    Equal options compile equal modules: `mipsc.compile` caches by them.
    """

    target_cpu: str = option(
        DEFAULT_TARGET_CPU,
        pass_options=((LOWERING, "target_cpu"), (PACKING, "target_cpu")),
        lowers=True,
        help="CPU for IREE's own code (--iree-llvmcpu-target-cpu) and for the matmuls' output "
        "tiles (the tile cost model of its kernel configuration, `mipsc kernel-info`). "
        "Given with an --iree-llvmcpu-target-cpu= naming another CPU, an error.",
    )
    kernel_backend: str = option(
        DEFAULT_BACKEND,
        choices=KERNEL_BACKENDS,
        pass_options=((LOWERING, "backend"), (PACKING, "backend")),
        lowers=True,
        help="The kernel library the matmuls call. builtin: mipsc's own kernels. openblas: f32 "
        "matmuls call OpenBLAS's sgemm per tile, single-threaded (IREE's workers own the "
        "threads); f16/bf16 stay on the builtin kernels, since scipy-openblas32 has no "
        "half-precision gemm. Running such a module needs OpenBLAS: `pip install "
        "scipy-openblas32`, or MIPSC_OPENBLAS_LIB=/path/to/libopenblas.so.",
    )
    kernel_link: str = option(
        DEFAULT_KERNEL_LINK,
        choices=KERNEL_LINKS,
        pass_options=((LOWERING, "kernel_link"),),
        lowers=True,
        help="Where the kernels come from. embedded: linked into the .vmfb, which then runs "
        "with no plugin (stock iree-run-module too). plugin: imports that the kernel plugin "
        "(`mipsc plugin-path`) resolves at load time. Default: $MIPSC_KERNEL_LINK, else "
        "embedded; plugin with --kernel-backend=openblas, which needs it.",
    )
    workers: int = option(
        0,
        int_range=(0, MAX_THREADS),
        pass_options=((LOWERING, "workers"),),
        lowers=True,
        help="The cores the matmuls' output tiles are chosen for (IREE runs one workgroup per "
        "worker at a time). Default: this machine's cores, as for --target-cpu=host.",
    )
    fuse_attention: bool = option(
        True,
        flag="--fuse-attention/--decompose-attention",
        pass_options=(("decompose-torch", "fuse_attention"),),
        lowers=True,
        help="scaled_dot_product_attention as one fused kernel (flash-attention style: the "
        "scores are never stored whole) where its form allows (static shapes), or always as "
        "its two products in the kernel with torch's softmax between, run by IREE.",
    )
    external_weights: bool | None = option(
        None,
        flag="--external-weights/--inline-weights",
        lowers=True,
        help="For .py and .onnx inputs: put the weights in OUT's name with .irpa (run with "
        "--parameters=FILE.irpa), or inline them in the module. Default: external above "
        "16 MiB.",
    )
    iree_flags: tuple[str, ...] = ()
    """Extra iree-compile flags, after mipsc's own (they win); `mipsc compile` takes them as
    any --iree-* argument."""

    def __post_init__(self) -> None:
        # A list given by a caller is kept as a tuple: the options stay hashable.
        if isinstance(self.iree_flags, str):
            raise MipscError(
                f"iree_flags={self.iree_flags!r} is one string: give a list of flags, e.g. "
                "iree_flags=['--iree-flag=value']"
            )
        object.__setattr__(self, "iree_flags", tuple(self.iree_flags))
        if self.target_cpu is None:  # mipsc.compile(target_cpu=None): the default, as elsewhere
            object.__setattr__(self, "target_cpu", DEFAULT_TARGET_CPU)
        for f, spec in option_specs():
            check_option(f.name, spec, getattr(self, f.name), f.default)
        for flag in self.iree_flags:
            if not isinstance(flag, str) or not flag.startswith("--iree-"):
                raise MipscError(
                    f"iree_flags: {flag!r} is not an iree-compile flag (--iree-*=value)"
                )
            _check_target_cpu_flag(flag)
        check_target_cpus(
            self.target_cpu,
            self.iree_flags,
            given=self.target_cpu != DEFAULT_TARGET_CPU,
            keyword=True,
        )

    @property
    def compiled_cpu(self) -> str:
        """The CPU iree-compile compiles for: the last `--iree-llvmcpu-target-cpu=` of
        iree_flags (which follow mipsc's own flags, and win), else target_cpu. The lowering's
        tiles are chosen for it too."""
        named = [f for f in self.iree_flags if f.startswith(TARGET_CPU_FLAG)]
        return named[-1].removeprefix(TARGET_CPU_FLAG) if named else self.target_cpu

    def pass_arguments(self, pass_name: str) -> dict[str, Any]:
        """{option name: value} of the fields that set options of the pass `pass_name`
        (target_cpu: `compiled_cpu`)."""
        return {
            option: self.compiled_cpu if f.name == "target_cpu" else getattr(self, f.name)
            for f, spec in option_specs()
            for pass_flag, option in spec.pass_options
            if pass_flag == pass_name
        }

    def command_line(self, *, lowering_only: bool = False) -> list[str]:
        """The `mipsc compile` flags that give these options (defaults left out); with
        `lowering_only`, those that give the same MLIR (target_cpu: `compiled_cpu`)."""
        flags = []
        for f, spec in option_specs():
            value = getattr(self, f.name)
            if lowering_only and f.name == "target_cpu":
                value = self.compiled_cpu
            if value == f.default or (lowering_only and not spec.lowers):
                continue
            flag = spec.flags_for(f.name)
            if isinstance(value, bool):
                on, _, off = flag.partition("/")
                flags.append(on if value else off)
            else:
                flags.append(f"{flag}={value}")
        return flags if lowering_only else [*flags, *self.iree_flags]

    def replace(self, **changes: Any) -> CompileOptions:
        """These options with some fields changed; an unknown name is a TypeError naming the
        known ones."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            known = ", ".join(f.name for f in fields(self))
            raise TypeError(f"unknown compile option(s) {', '.join(sorted(unknown))} ({known})")
        return dataclasses.replace(self, **changes)


def _check_target_cpu_flag(flag: str) -> None:
    """A MipscError for an --iree-llvmcpu-target-cpu among iree_flags that names no CPU: the
    lowering chooses its tiles for that CPU (CompileOptions.compiled_cpu), so an empty value
    or one given as the next argument (which iree-compile read as a file) is refused here."""
    if flag == TARGET_CPU_FLAG or flag == TARGET_CPU_FLAG.rstrip("="):
        raise MipscError(
            f"iree_flags: {flag!r} names no CPU: give it after '=', e.g. "
            f"{TARGET_CPU_FLAG}znver4, or use --target-cpu (target_cpu=)"
        )


def check_target_cpus(
    target_cpu: str, iree_flags: tuple[str, ...], *, given: bool, keyword: bool = False
) -> None:
    """A MipscError when a CPU flag names no CPU (empty, spaced, upper case: LLVM's names are
    lower case) or the CPU flags name two CPUs: `target_cpu` (when `given`: a default `host`
    names none) and each --iree-llvmcpu-target-cpu= among `iree_flags`. The last one won
    silently (-v alone said so), for IREE's code and the lowering's tiles alike; the same CPU
    named twice is fine. The message spells target_cpu as `mipsc.compile`'s keyword with
    `keyword`, else as `mipsc compile`'s flag."""
    own = f"target_cpu={target_cpu!r}" if keyword else f"--target-cpu={target_cpu}"
    named = [(own, target_cpu)] if given else []
    named += [
        (f"iree_flags {f!r}" if keyword else f, f.removeprefix(TARGET_CPU_FLAG))
        for f in iree_flags
        if f.startswith(TARGET_CPU_FLAG)
    ]
    for flag, cpu in named:
        _check_cpu_name(flag, cpu)
    for flag, cpu in named[1:]:
        if cpu != named[0][1]:
            raise MipscError(_two_cpus(named[0], (flag, cpu)))


def _check_cpu_name(flag: str, cpu: str) -> None:
    """A MipscError for a CPU name LLVM has no CPU of: empty, with spaces, or in upper case."""
    if not cpu:
        wrong = "is empty"
    elif cpu.strip() != cpu or " " in cpu:
        wrong = "has a space in it"
    elif cpu.lower() != cpu:
        wrong = f"is not in lower case, as LLVM's CPU names are (did you mean {cpu.lower()}?)"
    else:
        return
    raise MipscError(
        f"{flag}: the CPU name {wrong}: give one such as znver4, or host (this machine's CPU)"
    )


def _two_cpus(first: tuple[str, str], second: tuple[str, str]) -> str:
    """The message for two flags naming a CPU each (not the same): `host` is this machine's
    CPU, which the other may name too, so only the other case says "two different CPUs"."""
    both = (
        "give only one: that one flag sets both the CPU IREE compiles for and the one the "
        "matmuls' tiles are chosen for"
    )
    if "host" in (first[1], second[1]):
        return (
            f"{first[0]} and {second[0]} both name the CPU to compile for (host is this "
            f"machine's CPU): {both}"
        )
    return f"{first[0]} and {second[0]} name two different CPUs: {both}"


def check_option(name: str, spec: OptionSpec, value: Any, default: Any) -> None:
    """A MipscError, naming the keyword and its flag, for a value the option does not take:
    the one check of `mipsc.compile`'s keywords and `mipsc compile`'s flags."""
    flag = spec.flags_for(name).split("/")[0]
    said = f"{name}={value!r} ({flag})"
    if spec.int_range is not None:
        low, high = spec.int_range
        if isinstance(value, bool) or not isinstance(value, int):
            raise MipscError(f"{said} is not an int: give a whole number from {low} to {high}")
        if not low <= value <= high:
            raise MipscError(f"{said} is out of range: give a whole number from {low} to {high}")
    elif spec.choices:
        if value not in spec.choices and not (value == default and not default):
            raise MipscError(f"{said} is not one of: {', '.join(spec.choices)}")
    elif isinstance(default, bool) or default is None:
        if value is not None and not isinstance(value, bool):
            raise MipscError(f"{said} is not True, False or None")
    elif isinstance(default, str) and (not isinstance(value, str) or not value.strip()):
        raise MipscError(f"{said} is not a name: give one such as {default!r}")


def option_specs() -> list[tuple[dataclasses.Field[Any], OptionSpec]]:
    """The fields of CompileOptions that have a command-line flag, in order."""
    return [(f, f.metadata["spec"]) for f in fields(CompileOptions) if "spec" in f.metadata]


DEFAULT_OPTIONS = CompileOptions()
"""`mipsc compile`'s defaults."""
