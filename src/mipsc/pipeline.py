"""The pass registry and the pipelines, in one visible list.

`mipsc opt` runs any pipeline of registered passes; `mipsc compile` runs the passes of
EMIT_STAGES["iree-input"], each built from one CompileOptions (compile_passes), and hands the
printed module to iree-compile. Both go through one parse → passes → print loop (`lower`,
ParsedModule).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    DenseResourceAttr,
    DictionaryAttr,
    Float64Type,
    IntegerType,
    ModuleOp,
    ShapedType,
    Signedness,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute
from xdsl.passes import ModulePass, PassPipeline, PassPipelineCallbackType
from xdsl.utils.exceptions import ArgSpecParseError

from mipsc.backend.iree_compile import compile_mlir, compiled_cpu
from mipsc.diagnostics import (
    INPUT_NAMES_KEY,
    INPUT_SHAPES_KEY,
    UNSIGNED_OUTPUTS_KEY,
    MipscError,
    SourceFile,
    SourceLocation,
    argument_location_name,
    location_of,
    register_source,
)
from mipsc.dialects import torch
from mipsc.ir import make_context, parse_module, print_module, verify_module
from mipsc.kernel_abi import resolve_kernel_link
from mipsc.kernel_config import HOST, config_names
from mipsc.mlir_text import FileSpan, MlirText, resources_start
from mipsc.options import DEFAULT_OPTIONS, TARGET_CPU_FLAG, CompileOptions
from mipsc.tiling import describe_tile_model
from mipsc.transforms.check_input_dims import CheckInputDimsPass
from mipsc.transforms.convert_torch_to_mips import MATMUL_FAMILY_OPS, ConvertTorchToMipsPass
from mipsc.transforms.decompose_torch import DecomposeTorchPass
from mipsc.transforms.flatten_dynamic_views import FlattenDynamicViewsPass
from mipsc.transforms.fuse_epilogues import FuseEpiloguesPass
from mipsc.transforms.lower_mips_to_call import LowerMipsToCallPass
from mipsc.transforms.pack_weights import PackWeightsPass

PASS_CLASSES: tuple[type[ModulePass], ...] = (
    CheckInputDimsPass,
    DecomposeTorchPass,
    ConvertTorchToMipsPass,
    FuseEpiloguesPass,
    PackWeightsPass,
    LowerMipsToCallPass,
    FlattenDynamicViewsPass,
)

PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    cls.name: (lambda cls=cls: cls) for cls in PASS_CLASSES
}
"""Every pass that `mipsc opt` knows, by flag name (xDSL's registry convention)."""


def describe_passes() -> list[tuple[str, str]]:
    """(flag, first docstring line) of every registered pass, for `--help` and `--list-passes`."""
    return [(cls.name, (cls.__doc__ or "").strip().splitlines()[0]) for cls in PASS_CLASSES]


def build_pipeline(spec: str, callback: PassPipelineCallbackType | None = None) -> PassPipeline:
    """A pipeline from `pass1,pass2{opt=val}`; an unknown pass or bad syntax is a user error."""
    if not spec.strip():
        return PassPipeline((), callback)
    try:
        return PassPipeline.parse_spec(PASSES, spec, callback)
    except ArgSpecParseError as err:
        raise MipscError(f"invalid pass pipeline '{spec}': {err}") from None
    except ValueError as err:
        known = ", ".join(PASSES)
        raise MipscError(f"{err} (known passes: {known})") from None


EMIT_STAGES: dict[str, tuple[type[ModulePass], ...]] = {
    "mips": (CheckInputDimsPass, DecomposeTorchPass, ConvertTorchToMipsPass, FuseEpiloguesPass),
    "iree-input": (
        CheckInputDimsPass,
        DecomposeTorchPass,
        ConvertTorchToMipsPass,
        FuseEpiloguesPass,
        PackWeightsPass,
        LowerMipsToCallPass,
        FlattenDynamicViewsPass,
    ),
}
"""`mipsc compile --emit=STAGE`: the passes run before printing that stage's MLIR; "iree-input"
is what `mipsc compile` hands iree-compile."""

COMPILE_PIPELINE = ",".join(cls.name for cls in EMIT_STAGES["iree-input"])
"""The compile passes as `mipsc opt -p` spells them (with their default options)."""


def silent(_message: str) -> None:
    """The progress callback that shows nothing (steps done only for a message are skipped)."""


def compile_passes(options: CompileOptions, stage: str = "iree-input") -> tuple[ModulePass, ...]:
    """The pass objects of `stage`, each built with its options from `options` (see
    CompileOptions.pass_arguments)."""
    return tuple(cls(**options.pass_arguments(cls.name)) for cls in EMIT_STAGES[stage])


def describe_pipeline(passes: Sequence[ModulePass]) -> str:
    """`pass1,pass2{opt=val}`, as progress lines and `mipsc opt -p` write a pipeline."""
    return ",".join(str(p.pipeline_pass_spec()) for p in passes)


COMPILE_FLAGS: tuple[str, ...] = (
    "--iree-opt-const-eval=false",
    "--iree-opt-strip-assertions=false",
)
"""iree-compile flags every kernel-calling module needs:
- const-eval would run our dispatches at compile time, where no plugin is loaded (IREE issue
  14789); with it off, dispatches on constants run once when the module loads;
- the shape checks in front of each dispatch (dynamic K, M, N) are `cf.assert`s, which IREE
  strips by default; a mismatched input would make the kernel read out of bounds."""

KEEP_F64 = "--iree-input-demote-f64-to-f32=false"
"""For modules that compute in f64 (f64 tensors in a function's signature, or an f64 matmul):
IREE demotes f64 to f32 by default, which breaks an f64 result (viewed on an f32 buffer at run
time) and would round what torch computes in f64. Not for the others: f64 scalars that torch
uses inside f32 code (the scales of dequantize_per_tensor) are demoted as torch itself rounds
them, and kept in f64 they make iree-compile fail ('failed to legalize util.initializer')."""

NO_INLINE_CONSTANTS = "--iree-flow-inline-constants-max-byte-length=0"
"""For modules with bf16 constants: IREE 3.13 (llvm-cpu) fails on a bf16 constant inlined into
a dispatch ('arith.constant' op failed to verify that all of {value, result} have same type,
in iree-convert-bf16-arith-to-f32); kept out of the dispatches, they compile."""


def iree_flags_for(module: ModuleOp) -> list[str]:
    """The iree-compile flags this module needs besides COMPILE_FLAGS (see KEEP_F64 and
    NO_INLINE_CONSTANTS), read from the module as lowered."""
    flags = []
    if _computes_in_f64(module):
        flags.append(KEEP_F64)
    if _has_bf16_constant(module):
        flags.append(NO_INLINE_CONSTANTS)
    return flags


def _element_type(ty: Attribute) -> Attribute | None:
    if isinstance(ty, torch.ValueTensorType):
        return ty.dtype if ty.has_dtype else None
    return ty.get_element_type() if isinstance(ty, ShapedType) else None


def _computes_in_f64(module: ModuleOp) -> bool:
    for op in module.walk():
        if isinstance(op, func.FuncOp):
            types = [*op.function_type.inputs, *op.function_type.outputs]
        elif op.name in MATMUL_FAMILY_OPS:
            types = [v.type for v in (*op.operands, *op.results)]
        else:
            continue
        if any(isinstance(_element_type(t), Float64Type) for t in types):
            return True
    return False


def _has_bf16_constant(module: ModuleOp) -> bool:
    for op in module.walk():
        for attr in (*op.properties.values(), *op.attributes.values()):
            if isinstance(attr, DenseIntOrFPElementsAttr | DenseResourceAttr) and isinstance(
                _element_type(attr.type), BFloat16Type
            ):
                return True
    return False


def run_pipeline(
    ctx: Context, module: ModuleOp, pipeline: PassPipeline, *, verify_result: bool = True
) -> None:
    """Check the input, apply `pipeline`, and (with `verify_result`) check that the result is
    still valid IR.

    The passes assume valid IR: an invalid op (a mm of mismatched shapes) is the input's
    error, reported as such, and never reaches a rewrite that would trip over it.
    """
    if pipeline.passes:
        verify_module(module)
    pipeline.apply(ctx, module)
    if verify_result:
        verify_module(module)


@dataclass
class ParsedModule:
    """A module parsed in a context of its own. Its resource section is not parsed but kept
    where it is, in `source` from `resources_at` (see resources_start) or in its file (an input
    read by mipsc.mlir_text.read_mlir_file), and printed from there.
    """

    ctx: Context
    module: ModuleOp
    source: str | FileSpan = ""
    resources_at: int = 0
    """Where the resource section starts in a `source` string; len(source) when xDSL holds the
    blobs."""

    @staticmethod
    def parse(
        text: str | MlirText, filename: str, *, keep_resources_apart: bool = True
    ) -> ParsedModule:
        """MLIR text parsed; with `keep_resources_apart`, its resource blobs are not."""
        ctx = make_context()
        if keep_resources_apart and isinstance(text, MlirText) and isinstance(text.tail, FileSpan):
            return ParsedModule(ctx, parse_module(ctx, text.head, filename), text.tail)
        text = str(text)
        at = resources_start(text) if keep_resources_apart else len(text)
        body = text if at == len(text) else text[:at]
        return ParsedModule(ctx, parse_module(ctx, body, filename), text, at)

    def run(self, pipeline: PassPipeline, *, verify_result: bool = True) -> None:
        """Apply `pipeline` (see run_pipeline)."""
        run_pipeline(self.ctx, self.module, pipeline, verify_result=verify_result)

    def printed(self, *, debuginfo: bool = False) -> MlirText:
        """The module's text, its resource section after it, as pieces (no copy of the blobs)."""
        printed = print_module(self.ctx, self.module, debuginfo=debuginfo)
        has_resources = isinstance(self.source, FileSpan) or self.resources_at < len(self.source)
        if has_resources and resources_start(printed) < len(printed):
            # No pass makes blobs: one that did would need its section merged with this one.
            raise AssertionError("a pass made resource blobs; split_resources cannot append")
        if isinstance(self.source, FileSpan):
            return MlirText(printed, self.source)
        return MlirText(printed, self.source, self.resources_at)

    def print(self, *, debuginfo: bool = False) -> str:
        """The module's text, its resource section after it."""
        return str(self.printed(debuginfo=debuginfo))


def lower(
    text: str | MlirText,
    filename: str,
    passes: Sequence[ModulePass],
    progress: Callable[[str], None] = lambda _msg: None,
    *,
    verify_result: bool = True,
) -> ParsedModule:
    """Torch MLIR text → parse → `passes`: the loop `mipsc compile` and `mipsc opt` share
    (see run_pipeline for `verify_result`)."""
    progress(f"parsing {filename}")
    parsed = ParsedModule.parse(text, filename)
    progress(f"running {describe_pipeline(passes) or 'no pass'}")
    parsed.run(PassPipeline(tuple(passes)), verify_result=verify_result)
    return parsed


def lower_module(
    text: str | MlirText,
    filename: str,
    options: CompileOptions = DEFAULT_OPTIONS,
    *,
    stage: str = "iree-input",
    debuginfo: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
) -> str:
    """Torch MLIR text → parse → the passes up to `stage` → MLIR text."""
    passes = compile_passes(options, stage)
    return lower(text, filename, passes, progress).print(debuginfo=debuginfo)


def split_resources(text: str) -> tuple[str, str]:
    """(the module, its trailing `{-# dialect_resources: ... #-}` section, or "")."""
    at = resources_start(text)
    return text[:at], text[at:]


ELIDED = "dense_resource<__elided__>"


def check_weights_present(text: str, filename: str) -> None:
    """An export printed with its weights elided cannot be compiled: say so, at the first one,
    instead of letting iree-compile fail deep in code generation."""
    at = text.find(ELIDED)
    if at < 0:
        return
    register_source(SourceFile(filename, text))  # so that the error quotes the line
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    raise MipscError(
        f"the weights of this export were left out when it was printed ({ELIDED}): there is "
        "nothing to compute with",
        SourceLocation(filename, line, column),
        [
            "print the module with its weights: iree-turbine's exported.save_mlir(path) or "
            "str(exported.mlir_module) (print_readable() elides them, as does MLIR's "
            "--mlir-elide-elementsattrs-if-larger); or let mipsc export it: mipsc.compile or "
            "`mipsc compile model.py:NAME`"
        ],
    )


def check_ranked(module: ModuleOp) -> None:
    """A tensor of unknown rank makes iree-compile 3.13 abort with a stack trace: say where
    it is instead (torch's exports have ranks; shapes come from the example inputs)."""
    for op in module.walk():
        for value in (*op.operands, *op.results):
            ty = value.type
            if isinstance(ty, torch.ValueTensorType) and not ty.has_sizes:
                raise MipscError(
                    f"'{op.name}' uses a tensor of unknown rank ({ty}), which IREE cannot "
                    "compile: export the model with example inputs of known shapes",
                    location_of(op),
                )


def record_input_names(module: ModuleOp) -> None:
    """Writes the names the arguments' locations give the inputs of each public function (an
    ONNX model's graph inputs) into its `iree.reflection` (diagnostics.INPUT_NAMES_KEY), which
    IREE keeps in the .vmfb, for messages about a call's inputs to name them; and, for a
    function with a dynamic dim, its inputs' declared shapes (diagnostics.INPUT_SHAPES_KEY),
    for messages about a wrong shape to give them."""
    for op in _public_functions(module):
        arguments = op.body.block.args if op.body.blocks else ()
        names = [argument_location_name(a) for a in arguments]
        shapes = [_declared_shape(a.type) for a in arguments]
        entries: dict[str, Attribute] = {}
        if any(names):
            entries[INPUT_NAMES_KEY] = StringAttr(json.dumps(names))
        if any(shape is not None and "?" in shape for shape in shapes):
            entries[INPUT_SHAPES_KEY] = StringAttr(json.dumps(shapes))
        _add_reflection(op, entries)


def _public_functions(module: ModuleOp) -> Iterator[func.FuncOp]:
    """The functions of `module` a caller sees (no sym_visibility), which IREE exports."""
    for op in module.walk():
        if isinstance(op, func.FuncOp) and op.sym_visibility is None:
            yield op


def _add_reflection(op: func.FuncOp, entries: dict[str, Attribute]) -> None:
    """`entries` added to `op`'s `iree.reflection` (created where it has none)."""
    if not entries:
        return
    reflection = op.attributes.get(REFLECTION)
    given = dict(reflection.data) if isinstance(reflection, DictionaryAttr) else {}
    op.attributes[REFLECTION] = DictionaryAttr(given | entries)


def _declared_shape(ty: Attribute) -> str | None:
    """A tensor type's shape as IREE's messages write it (`?x6`, `""` for 0-d), else None."""
    if isinstance(ty, torch.ValueTensorType | torch.NonValueTensorType) and ty.has_sizes:
        dims = ty.get_shape()
    elif isinstance(ty, TensorType):
        dims = ty.get_shape()
    else:
        return None
    return "x".join("?" if d == DYNAMIC_INDEX else str(d) for d in dims)


def record_unsigned_outputs(module: ModuleOp) -> None:
    """Writes which results of each public function are unsigned integers (torch's `ui8`)
    into its `iree.reflection` (diagnostics.UNSIGNED_OUTPUTS_KEY), for the runtime to return
    them as such: IREE returns them as signed."""
    for op in _public_functions(module):
        dtypes = [_unsigned_dtype(t) for t in op.function_type.outputs]
        if any(dtypes):
            _add_reflection(op, {UNSIGNED_OUTPUTS_KEY: StringAttr(json.dumps(dtypes))})


def _unsigned_dtype(ty: Attribute) -> str | None:
    """`uint8` for a tensor of unsigned 8-bit integers (the numpy name), else None."""
    element = _element_type(ty)
    if isinstance(element, IntegerType) and element.signedness.data == Signedness.UNSIGNED:
        return f"uint{element.width.data}"
    return None


REFLECTION = "iree.reflection"
"""The function attribute whose string entries IREE keeps for the runtime to read."""


def compile_module(
    text: str | MlirText,
    filename: str,
    output: Path,
    options: CompileOptions = DEFAULT_OPTIONS,
    *,
    progress: Callable[[str], None] = silent,
    show_command: Callable[[list[str]], None] | None = None,
) -> None:
    """Torch MLIR text → parse → convert → lower → print → iree-compile → `output` (.vmfb).

    The module is printed with each op's source location, so iree-compile's errors point into
    the user's file. The passes get their options from `options`; iree-compile gets
    COMPILE_FLAGS, what this module needs (iree_flags_for), then `options.iree_flags` (which
    win). `show_command` gets the exact iree-compile command line.
    """
    check_weights_present(text.head if isinstance(text, MlirText) else text, filename)
    passes = compile_passes(options)  # an unknown backend fails before parsing
    if progress is not silent:
        progress(describe_tile_model(options.compiled_cpu))
        if (note := forced_config_note(options)) is not None:
            progress(note)
    # The lowered module is not verified by xDSL: iree-compile parses and verifies it next,
    # with MLIR's own verifiers (xDSL's took up to a third of the passes' time).
    parsed = lower(text, filename, passes, progress, verify_result=False)
    check_ranked(parsed.module)
    record_input_names(parsed.module)
    record_unsigned_outputs(parsed.module)
    flags = [*COMPILE_FLAGS, *iree_flags_for(parsed.module), *options.iree_flags]
    iree_input = parsed.printed(debuginfo=True)
    del parsed  # (the IR is not needed while iree-compile runs)
    target_cpu = options.target_cpu
    named = _cpu_named_by(options)
    progress(f"iree-compile (llvm-cpu, {named}) -> {output}")
    compile_mlir(
        iree_input,
        output,
        target_cpu=target_cpu,
        extra_flags=flags,
        show_command=show_command,
    )
    if progress is not silent and (cpu := compiled_cpu(output)) is not None:
        # (Only for the message: it reads the whole .vmfb, weights and all.)
        progress(f"IREE's code in {output} is for the CPU '{cpu}' ({named})")


KERNEL_CONFIG_ENV = "MIPSC_KERNEL_CONFIG"
"""The environment variable that forces the kernel plugin's configuration entry (kernels/
mips_config.c); the embedded kernels have no environment and never read it."""


def forced_config_note(options: CompileOptions) -> str | None:
    """The `-v` line on $MIPSC_KERNEL_CONFIG: a name that is no entry of the kernels' table is
    ignored by them (and the tiles); a real one does not reach an embedded module's kernels
    (they choose their entry by cpuid on the machine that runs them), and the tiles follow it
    only for --target-cpu=host. None when it is unset, or the link is the plugin's (whose
    kernels read it where the module runs)."""
    forced = os.environ.get(KERNEL_CONFIG_ENV, "")
    if not forced:
        return None
    entries = config_names()
    if entries and forced not in entries:
        return (
            f"{KERNEL_CONFIG_ENV}={forced} is ignored: the kernels have no such configuration "
            f"(theirs: {', '.join(entries)})"
        )
    try:
        link = resolve_kernel_link(options.kernel_link, options.kernel_backend)
    except ValueError:  # (the lowering says so, located)
        return None
    if link != "embedded":
        return None
    if options.compiled_cpu == HOST:
        who = "the tiles follow it, the embedded kernels do not"
    else:
        who = "neither the tiles (chosen for the target CPU) nor the embedded kernels follow it"
    return (
        f"{KERNEL_CONFIG_ENV}={forced}: {who} (the embedded kernels choose their entry by cpuid "
        "on the machine that runs the module; for kernels that run the forced entry, compile "
        f"with --kernel-link=plugin and run with {KERNEL_CONFIG_ENV} set)"
    )


def _cpu_named_by(options: CompileOptions) -> str:
    """The flag that names the CPU iree-compile compiles for, as -v says it: --target-cpu, or
    an --iree-llvmcpu-target-cpu= among the iree flags (CompileOptions refuses the two naming
    different CPUs)."""
    if any(flag.startswith(TARGET_CPU_FLAG) for flag in options.iree_flags):
        return f"{TARGET_CPU_FLAG}{options.compiled_cpu}"
    return f"--target-cpu={options.target_cpu}"
