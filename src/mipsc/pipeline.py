"""The pass registry and the pipelines, in one visible list.

`mipsc opt` runs any pipeline of registered passes; `mipsc compile` runs COMPILE_PIPELINE and
hands the printed module to iree-compile.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline, PassPipelineCallbackType
from xdsl.utils.exceptions import ArgSpecParseError

from mipsc.backend.iree_compile import DEFAULT_TARGET_CPU, compile_mlir, compiled_cpu
from mipsc.diagnostics import MipscError, SourceFile, SourceLocation, register_source
from mipsc.ir import make_context, parse_module, print_module, verify_module
from mipsc.kernel_abi import DEFAULT_BACKEND
from mipsc.transforms.convert_torch_to_mips import ConvertTorchToMipsPass
from mipsc.transforms.lower_mips_to_call import LowerMipsToCallPass

PASS_CLASSES: tuple[type[ModulePass], ...] = (ConvertTorchToMipsPass, LowerMipsToCallPass)

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


COMPILE_PIPELINE = "convert-torch-to-mips,lower-mips-to-call"
"""What `mipsc compile` runs before printing the module for iree-compile."""


def compile_pipeline(kernel_backend: str = DEFAULT_BACKEND, workers: int = 0) -> str:
    """COMPILE_PIPELINE with lower-mips-to-call's kernel backend and the workers its tiles
    are chosen for (0: this machine's cores)."""
    options = []
    if kernel_backend != DEFAULT_BACKEND:
        options.append(f"backend={kernel_backend}")
    if workers:
        options.append(f"workers={workers}")
    return f"{COMPILE_PIPELINE}{{{' '.join(options)}}}" if options else COMPILE_PIPELINE


COMPILE_FLAGS: tuple[str, ...] = (
    "--iree-opt-const-eval=false",
    "--iree-opt-strip-assertions=false",
    "--iree-input-demote-f64-to-f32=false",
)
"""iree-compile flags every kernel-calling module needs:
- const-eval would run our dispatches at compile time, where no plugin is loaded (IREE issue
  14789); with it off, dispatches on constants run once when the module loads;
- the shape checks in front of each dispatch (dynamic K, M, N) are `cf.assert`s, which IREE
  strips by default; a mismatched input would make the kernel read out of bounds;
- IREE demotes f64 to f32 by default, which breaks the f64 tensors of a torch function's
  signature (an f64 result viewed on an f32 buffer fails at run time) and would round what
  torch computes in f64; f64 ops stay on IREE's path, in f64."""


def run_pipeline(ctx: Context, module: ModuleOp, pipeline: PassPipeline) -> None:
    """Check the input, apply `pipeline`, and check that the result is still valid IR.

    The passes assume valid IR: an invalid op (a mm of mismatched shapes) is the input's
    error, reported as such, and never reaches a rewrite that would trip over it.
    """
    if pipeline.passes:
        verify_module(module)
    pipeline.apply(ctx, module)
    verify_module(module)


EMIT_STAGES: dict[str, str] = {
    "mips": "convert-torch-to-mips",
    "iree-input": COMPILE_PIPELINE,
}
"""`mipsc compile --emit=STAGE`: the passes run before printing that stage's MLIR."""


def lower_module(
    text: str,
    filename: str,
    *,
    stage: str = "iree-input",
    debuginfo: bool = False,
    kernel_backend: str = DEFAULT_BACKEND,
    workers: int = 0,
    progress: Callable[[str], None] = lambda _msg: None,
) -> str:
    """Torch MLIR text → parse → the passes up to `stage` → MLIR text."""
    spec = EMIT_STAGES[stage]
    if spec == COMPILE_PIPELINE:
        spec = compile_pipeline(kernel_backend, workers)
    pipeline = build_pipeline(spec)  # an unknown backend fails before parsing
    ctx = make_context()
    progress(f"parsing {filename}")
    body, resources = split_resources(text)
    module = parse_module(ctx, body, filename)
    progress(f"running {spec}")
    run_pipeline(ctx, module, pipeline)
    printed = print_module(ctx, module, debuginfo=debuginfo)
    if resources and "{-#" not in printed:
        return printed + resources
    if resources:  # the passes made resources of their own: let xDSL print them all
        ctx = make_context()
        module = parse_module(ctx, text, filename)
        run_pipeline(ctx, module, build_pipeline(spec))
        return print_module(ctx, module, debuginfo=debuginfo)
    return printed


def split_resources(text: str) -> tuple[str, str]:
    """(the module, its trailing `{-# dialect_resources: ... #-}` section, or "").

    mipsc's passes never read weight blobs, so the section (almost all of an export with inline
    weights) is not lexed, decoded and re-encoded by xDSL but handed on as it was: that round
    trip cost seconds and several copies of the weights in memory. The module keeps its lines,
    so locations stay right.
    """
    # (Index arithmetic, not slices: a slice of the section is a copy of the weights. Searched
    # forward, at a line start: the section is at the end and nearly all of the text.)
    start = text.find("\n{-#") + 1
    if start <= 0 or not text[-64:].rstrip().endswith("#-}"):
        return text, ""
    if not text[max(0, start - 64) : start].rstrip().endswith("}"):
        return text, ""
    if text.find("dialect_resources", start, start + 256) < 0:
        return text, ""
    return text[:start], text[start:]


_BF16_BLOB = re.compile(r"dense_resource<[^>]*> : tensor<[0-9x?]*bf16>")
_NO_INLINE_CONSTANTS = "--iree-flow-inline-constants-max-byte-length=0"


def workaround_flags(text: str, extra_flags: Sequence[str]) -> list[str]:
    """iree-compile flags that work around IREE 3.13 bugs this module would meet.

    A bf16 `dense_resource` weight that IREE inlines into a dispatch makes
    iree-convert-bf16-arith-to-f32 fail ("'arith.constant' op failed to verify that all of
    {value, result} have same type"): keeping constants out of dispatches avoids it. (Only the
    module is searched, not its blobs.)
    """
    if any(flag.startswith(_NO_INLINE_CONSTANTS.split("=")[0]) for flag in extra_flags):
        return []
    body, _ = split_resources(text)
    return [_NO_INLINE_CONSTANTS] if _BF16_BLOB.search(body) else []


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


def compile_module(
    text: str,
    filename: str,
    output: Path,
    *,
    target_cpu: str = DEFAULT_TARGET_CPU,
    extra_flags: Sequence[str] = (),
    kernel_backend: str = DEFAULT_BACKEND,
    workers: int = 0,
    progress: Callable[[str], None] = lambda _msg: None,
    show_command: Callable[[list[str]], None] | None = None,
) -> None:
    """Torch MLIR text → parse → convert → lower → print → iree-compile → `output` (.vmfb).

    The module is printed with each op's source location, so iree-compile's errors point into
    the user's file. `kernel_backend` is lower-mips-to-call's backend (kernel_abi.KERNEL_BACKENDS).
    `show_command` gets the exact iree-compile command line (it reads the module from stdin).
    """
    check_weights_present(text, filename)
    iree_input = lower_module(
        text,
        filename,
        debuginfo=True,
        kernel_backend=kernel_backend,
        workers=workers,
        progress=progress,
    )
    progress(f"iree-compile (llvm-cpu, target-cpu={target_cpu}) -> {output}")
    compile_mlir(
        iree_input,
        output,
        target_cpu=target_cpu,
        extra_flags=[*COMPILE_FLAGS, *workaround_flags(text, extra_flags), *extra_flags],
        show_command=show_command,
    )
    if (cpu := compiled_cpu(output)) is not None:
        progress(f"IREE's code in {output} is for the CPU '{cpu}' (--target-cpu={target_cpu})")
