"""The `mipsc` command line: a thin click layer over mipsc's pipeline, no logic of its own."""

from __future__ import annotations

import errno
import functools
import os
import shlex
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipelineCallbackType

from mipsc.diagnostics import MipscError
from mipsc.frontends.source import model_path, read_model
from mipsc.ir import print_module, split_chunks
from mipsc.kernel_abi import resolve_kernel_link
from mipsc.mlir_text import MlirText
from mipsc.options import MAX_THREADS, CompileOptions, check_target_cpus, option_specs
from mipsc.pipeline import (
    COMPILE_PIPELINE,
    EMIT_STAGES,
    ParsedModule,
    build_pipeline,
    compile_module,
    compile_passes,
    describe_passes,
    lower,
    silent,
)
from mipsc.remarks import collect_remarks, format_report

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(command: F) -> F:
    """Print a `MipscError` as `file:line:col: error: ...` and exit 1, as an out-of-memory
    error (an input too large for the machine); never a traceback.

    Anything else is a bug in mipsc: say so in one line, and show the traceback only when
    MIPSC_TRACEBACK=1.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MipscError as err:
            click.echo(err.render(), err=True)
            sys.exit(1)
        except MemoryError as err:
            # An input or shape too large for the machine (`--input=100000x100000x100xf32=1`):
            # the user's to change, not a bug in mipsc.
            click.echo(f"error: out of memory: {err or 'an allocation failed'}", err=True)
            sys.exit(1)
        except BrokenPipeError:
            # The reader of stdout left (`mipsc opt ... | head`): stop quietly, as cat does;
            # stdout goes to devnull so that Python's flush at exit does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except Exception as err:
            if os.environ.get("MIPSC_TRACEBACK") == "1":
                traceback.print_exc()
            click.echo(
                f"mipsc: internal error: {type(err).__name__}: {err}\n"
                "This is a bug in mipsc; rerun with MIPSC_TRACEBACK=1 and report the output.",
                err=True,
            )
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def write_output(text: str | MlirText, path: str | None) -> None:
    """`text` to the file `path`, or to stdout for None or `-`; piece by piece (an MlirText's
    weights are never joined into one more copy)."""
    pieces = text if isinstance(text, MlirText) else MlirText(text)
    if path is None or path == "-":
        for chunk in pieces.chunks():
            click.echo(chunk, nl=False)
        return
    try:
        pieces.write_file(Path(path))
    except OSError as err:
        raise MipscError(f"cannot write '{path}': {err.strerror}") from None


def _between_passes_printer(ctx: Context) -> PassPipelineCallbackType:
    def show(prev: ModulePass | None, module: ModuleOp, _next: ModulePass | None) -> None:
        if prev is not None:
            click.echo(f"// -----// IR after {prev.name} //----- //", err=True)
            click.echo(print_module(ctx, module), err=True)

    return show


def _pass_list_text() -> str:
    return "\n".join(f"  {flag:<28} {doc}" for flag, doc in describe_passes())


def _pipeline_help() -> str:
    """The group's help: what mipsc does and its pipeline, the passes read from
    COMPILE_PIPELINE (so the help cannot fall behind the pipeline)."""
    passes = "\n".join(f"             --> {name}" for name in COMPILE_PIPELINE.split(","))
    return (
        "mipsc: run the matmuls of PyTorch models in our kernel library, through IREE.\n\n"
        "\b\n"
        "Pipeline:  torch MLIR (or ONNX, or an nn.Module through iree-turbine)\n"
        "             --parse-->\n"
        f"{passes}\n"
        "             --print--> iree-compile --> .vmfb (the kernels linked in; or, with\n"
        "             --kernel-link=plugin, the kernel plugin at run time) --> IREE runtime\n\n"
        "`mipsc opt --help` says what each pass does."
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, help=_pipeline_help())
@click.version_option(package_name="mipsc")
def main() -> None:
    pass


def _collect_pass_flag(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
    # Click processes options in command-line order, so flags keep the order they were given.
    if value:
        ctx.meta.setdefault("mipsc_pass_flags", []).append(_param.name.replace("_", "-"))  # type: ignore[union-attr]


def _with_pass_flags(command: F) -> F:
    """One `--<pass-name>` flag per registered pass, like mlir-opt."""
    for flag, doc in reversed(describe_passes()):
        command = click.option(
            f"--{flag}",
            is_flag=True,
            expose_value=False,
            callback=_collect_pass_flag,
            help=f"Run {flag}: {doc}",
        )(command)
    return command


@main.command(
    epilog="\b\nPasses:\n" + _pass_list_text(),
)
@click.argument("input_file", metavar="FILE", default="-")
@click.option(
    "-p",
    "--passes",
    "pipeline",
    default="",
    metavar="PIPELINE",
    help="Comma-separated passes to run, e.g. 'convert-torch-to-mips'.",
)
@_with_pass_flags
@click.option("-o", "--output", metavar="OUT", help="Write the module here instead of stdout.")
@click.option(
    "--print-between-passes", is_flag=True, help="Print the module to stderr after each pass."
)
@click.option(
    "--print-debuginfo", is_flag=True, help="Print each op's source location as loc(...)."
)
@click.option(
    "--print-op-generic",
    is_flag=True,
    help="Print every op in the generic form, as mlir-opt's --mlir-print-op-generic.",
)
@click.option(
    "--remarks",
    is_flag=True,
    help="Report, on stderr, what each pass decided about each op and why.",
)
@click.option(
    "--split-input-file",
    is_flag=True,
    help="Treat each '// -----'-separated chunk as its own module (for tests).",
)
@click.option("--list-passes", is_flag=True, help="List the available passes and exit.")
@click.pass_context
@_user_errors
def opt(
    ctx: click.Context,
    input_file: str,
    pipeline: str,
    output: str | None,
    print_between_passes: bool,
    print_debuginfo: bool,
    print_op_generic: bool,
    remarks: bool,
    split_input_file: bool,
    list_passes: bool,
) -> None:
    """Parse FILE (torch-dialect MLIR, '-' for stdin, or an .onnx file), run passes, print
    the module.

    Passes come from -p and from the per-pass flags, in that order. With no pass the module is
    printed back unchanged in meaning (a round-trip that iree-compile accepts).
    """
    if list_passes:
        click.echo(_pass_list_text())
        return
    spec = ",".join(p for p in [pipeline, *ctx.meta.get("mipsc_pass_flags", [])] if p)
    build_pipeline(spec)  # a bad pipeline is reported before reading any input
    text, name, _ = read_model(input_file, options=CompileOptions(external_weights=False))
    # With --split-input-file each chunk is its own module; an error in one is reported and
    # the others still run.
    # Chunks go to stdout as they finish, so their output interleaves with their errors.
    to_stdout = output in (None, "-")
    printing = (print_debuginfo, print_op_generic)
    outputs: list[str] = []
    failed = False
    for index, chunk in enumerate(split_chunks(text) if split_input_file else [text]):
        try:
            printed = ("// -----\n" if index else "") + _opt_one(
                chunk, name, spec, print_between_passes, printing, remarks
            )
        except MipscError as err:
            click.echo(err.render(), err=True)
            failed = True
            continue
        if to_stdout:
            click.echo(printed, nl=False)
        else:
            outputs.append(printed)
    if not to_stdout:
        write_output("".join(outputs), output)
    if failed:
        sys.exit(1)


def _opt_one(
    text: str,
    name: str,
    spec: str,
    between_passes: bool,
    printing: tuple[bool, bool],
    remarks: bool,
) -> str:
    """One module through `mipsc opt`: parsed (its blobs too: `opt` shows what xDSL reads),
    the passes of `spec` run, printed (with (debuginfo, generic) `printing`); its remarks on
    stderr with `remarks`."""
    parsed = ParsedModule.parse(text, name, keep_resources_apart=False)
    show = _between_passes_printer(parsed.ctx) if between_passes else None
    with collect_remarks() as collected:
        parsed.run(build_pipeline(spec, show))
    if remarks:
        for remark in collected:
            click.echo(str(remark), err=True)
    debuginfo, generic = printing
    return print_module(parsed.ctx, parsed.module, debuginfo=debuginfo, generic=generic)


def _progress(verbose: bool) -> Callable[[str], None]:
    """Progress lines on stderr, for a terminal or with -v; silent in pipes and tests."""
    if not (verbose or sys.stderr.isatty()):
        return silent
    return lambda msg: click.echo(f"mipsc: {msg}", err=True)


def _with_compile_options(command: F) -> F:
    """One flag per CompileOptions field that has one (see mipsc.options.OptionSpec); the
    command gets them as keywords named as the fields."""
    for field, spec in reversed(option_specs()):
        # The values are checked by CompileOptions (check_option), as mipsc.compile's are.
        kind: Any = None
        metavar = None
        if spec.choices:
            metavar = "[" + "|".join(spec.choices) + "]"
        elif spec.int_range is not None:
            kind, metavar = int, "INTEGER RANGE {}-{}".format(*spec.int_range)
        command = click.option(
            spec.flags_for(field.name),
            field.name,
            type=kind,
            metavar=metavar,
            # "" is "no choice made" (the field resolves it); click would check it as a choice.
            default=field.default if field.default != "" else None,
            show_default=field.default not in (None, 0, ""),
            help=spec.help,
        )(command)
    return command


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog="\b\nExamples:\n"
    "  mipsc compile model.mlir -o model.vmfb\n"
    "  mipsc compile model.onnx -o model.vmfb --report\n"
    "  mipsc compile model.py:make_model --example-input 4x8xf32 -o model.vmfb\n"
    "  mipsc compile model.py:make_model --example-input 4x8xf32 --dynamic-dim 0:0=batch\n"
    "  mipsc compile model.mlir --emit=iree-input\n"
    "  mipsc compile model.mlir -o m.vmfb --kernel-backend=openblas --report\n"
    "  mipsc compile model.mlir -o m.vmfb --iree-llvmcpu-target-cpu-features=+avx2",
)
@click.argument("input_file", metavar="FILE")
@click.option(
    "-o", "--output", metavar="OUT", help="Where to write (default: FILE's name with .vmfb)."
)
@click.option(
    "--emit",
    type=click.Choice(["vmfb", "torch", *EMIT_STAGES]),
    default="vmfb",
    show_default=True,
    help="Stop after a stage: torch (the torch MLIR of a .py or .onnx input, before mipsc's "
    "passes), mips (after convert-torch-to-mips), iree-input (the MLIR handed to "
    "iree-compile), or vmfb.",
)
@click.option(
    "--example-input",
    "example_inputs",
    multiple=True,
    metavar="SPEC",
    help="For a model.py:NAME input: an example input of the module's forward, in order, as "
    "4x8xf32 (its shape and dtype), @x.npy or a literal like 4x8xf32=1.",
)
@click.option(
    "--dynamic-dim",
    "dynamic_dims",
    multiple=True,
    metavar="INPUT:DIM[=NAME]",
    help="For a model.py:NAME input: make dim DIM of input INPUT (both from 0) dynamic; dims "
    "given one NAME are one size (e.g. 0:0=batch 1:0=batch).",
)
@click.option(
    "--weights-output",
    metavar="FILE.irpa",
    help="For .py and .onnx inputs: put the weights in this parameter file, whatever their "
    "size (implies --external-weights; an error with --inline-weights). Default: OUT's name "
    "with .irpa, when the weights go to a file.",
)
@_with_compile_options
@click.option(
    "--print-debuginfo",
    is_flag=True,
    help="With --emit=mips or iree-input: print each op's source location as loc(...), as "
    "the module handed to iree-compile has them.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show each step on stderr, with the exact iree-compile command and the CPU it "
    "compiled for.",
)
@click.option(
    "--report",
    is_flag=True,
    help="List on stderr, per function, each matmul-family op: shapes, dtype, and which kernel "
    "it calls in how many output tiles (IREE workgroups), or why it stays on IREE's path.",
)
@click.pass_context
@_user_errors
def compile(
    ctx: click.Context,
    input_file: str,
    output: str | None,
    emit: str,
    example_inputs: tuple[str, ...],
    dynamic_dims: tuple[str, ...],
    weights_output: str | None,
    print_debuginfo: bool,
    verbose: bool,
    report: bool,
    **option_values: Any,
) -> None:
    """Compile FILE into an IREE module whose matmuls run in mipsc's kernels (linked into it).

    \b
    FILE is one of:
      model.mlir         torch MLIR from a PyTorch export (iree-turbine's aot.export)
      model.onnx         an ONNX model (needs `pip install 'mipsc[onnx]'`)
      model.py:NAME      an nn.Module named in a Python file (an instance, or a class or
                         function making one with no arguments, or a (module, example
                         inputs) pair), exported with iree-turbine; give its inputs with
                         --example-input (needs `pip install 'mipsc[torch]'`)

    Runs convert-torch-to-mips and lower-mips-to-call, prints the module and runs iree-compile
    for the local llvm-cpu target. Extra --iree-* flags are passed on to iree-compile. Run the
    result with `mipsc run`, or with stock iree-run-module (add
    --executable_plugin=$(mipsc plugin-path) for a module compiled with --kernel-link=plugin).
    """
    options = _options_from_flags(ctx, option_values)
    if emit == "vmfb" and input_file == "-" and not output:
        # Checked before reading: otherwise the user types a whole module first.
        raise MipscError("reading from stdin needs -o OUT.vmfb")
    progress = _progress(verbose)
    default_out = model_path(input_file).with_suffix(".vmfb" if emit == "vmfb" else ".mlir")
    out = Path(output) if output and output != "-" else default_out
    weights = Path(weights_output) if weights_output else out.with_suffix(".irpa")
    # (--emit=torch/mips/iree-input without -o print to stdout too: no file names the weights)
    to_stdout = output == "-" or (output is None and emit != "vmfb")
    _check_output_paths(input_file, output, emit, weights, weights_output)
    options = _weights_options(input_file, weights_output, options)
    with _weights_placed(weights, keep_existing=to_stdout and not weights_output) as staged:
        text, name, written = read_model(
            input_file,
            example_inputs=example_inputs,
            dynamic_dims=dynamic_dims,
            options=options,
            parameters_file=staged,
            progress=progress,
            resources_on_disk=True,
        )
    if written is not None:
        written = weights
        _say_where_the_weights_went(weights, out, emit, to_stdout)
    with collect_remarks() as collected:
        if emit == "torch":
            write_output(text, output)
        elif emit != "vmfb":
            parsed = lower(text, name, compile_passes(options, emit), progress)
            write_output(parsed.printed(debuginfo=print_debuginfo), output)
        elif output == "-":
            _compile_to_stdout(text, name, options, progress)
        else:
            out = Path(output) if output else default_out
            show = _command_printer(ctx, options, written) if verbose else None
            compile_module(text, name, out, options, progress=progress, show_command=show)
            progress(f"wrote {out}")
    if report:
        click.echo(format_report(collected), err=True)


def _options_from_flags(ctx: click.Context, option_values: dict[str, Any]) -> CompileOptions:
    """The CompileOptions of the command line: a flag not given (None) keeps its field's
    default; the extra --iree-* arguments become iree_flags."""
    given = {name: value for name, value in option_values.items() if value is not None}
    iree_flags = _iree_flags(ctx.args)
    # (an explicit --target-cpu=host names a CPU too, which CompileOptions cannot tell)
    explicit = ctx.get_parameter_source("target_cpu") is not ParameterSource.DEFAULT
    check_target_cpus(option_values.get("target_cpu") or "", iree_flags, given=explicit)
    options = CompileOptions(iree_flags=iree_flags, **given)
    # Resolved here, so that -v's command line names the link $MIPSC_KERNEL_LINK chose.
    try:
        link = resolve_kernel_link(options.kernel_link, options.kernel_backend)
    except ValueError as err:
        raise MipscError(str(err)) from None
    return options.replace(kernel_link=link)


def _iree_flags(args: list[str]) -> tuple[str, ...]:
    """`mipsc compile`'s extra arguments: --iree-* flags for iree-compile, nothing else."""
    for flag in args:
        if not flag.startswith("-"):
            raise MipscError(
                f"unexpected argument '{flag}': compile takes one FILE, and --iree-* flags "
                "take their value after '=' (--iree-flag=value)"
            )
        if not flag.startswith("--iree-"):
            raise MipscError(f"unknown option '{flag}' (only --iree-* flags go to iree-compile)")
    return tuple(args)


def _weights_options(
    input_file: str, weights_output: str | None, options: CompileOptions
) -> CompileOptions:
    """`options` with the weights' place the flags ask for: --weights-output names the
    parameter file to write, so it implies --external-weights (without it, a model under the
    16 MiB of the size rule kept its weights inline and no file was written, silently).
    MipscError, before any work, for --weights-output with --inline-weights (a contradiction)
    and for either flag on an MLIR input, which is exported already (they were ignored
    silently, so that `--external-weights -o m.vmfb` left the weights inline)."""
    if model_path(input_file).suffix not in (".py", ".onnx"):
        _refuse_weights_flags(weights_output, options)
        return options
    if weights_output is None:
        return options
    if options.external_weights is False:
        raise MipscError(
            f"--weights-output '{weights_output}' with --inline-weights: the weights go into "
            "the module, so no parameter file is written; give one of the two flags"
        )
    return options.replace(external_weights=True)


def _refuse_weights_flags(weights_output: str | None, options: CompileOptions) -> None:
    """MipscError if --weights-output or --external-weights/--inline-weights is given (for an
    MLIR input)."""
    given = [
        flag
        for flag, value in (
            ("--weights-output", weights_output),
            ("--external-weights/--inline-weights", options.external_weights),
        )
        if value is not None
    ]
    if given:
        raise MipscError(
            f"{' and '.join(given)}: for .py and .onnx inputs, which mipsc exports; an MLIR "
            "file keeps its weights where its export put them (inline, or the .irpa its "
            "#flow.parameter.named globals read, given to `mipsc run --parameters`)"
        )


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (an existing one, or the same path once resolved)."""
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def _check_output_paths(
    input_file: str, output: str | None, emit: str, weights: Path, weights_output: str | None
) -> None:
    """Refuses, before anything is exported or written, outputs that would destroy a file the
    compile needs or writes: -o naming the input (a .py or .onnx one, or any with a .vmfb out;
    MLIR rewritten in place is fine), a parameter file without the .irpa suffix (IREE's
    archive writer then writes FILE.irpa, not FILE), and a .vmfb written over its own weights
    (-o w.irpa, or --weights-output naming the -o file). MipscError saying what to do."""
    source = model_path(input_file)
    weighs = source.suffix in (".py", ".onnx")
    replaced = weighs or emit == "vmfb"
    if (
        replaced
        and output
        and output != "-"
        and input_file != "-"
        and _same_file(Path(output), source)
    ):
        raise MipscError(
            f"-o '{output}' is the input file: compiling would overwrite it; name another "
            "output (e.g. -o model.vmfb)"
        )
    if weights_output and weights.suffix != ".irpa":
        raise MipscError(
            f"--weights-output '{weights_output}': a parameter file's name must end in .irpa "
            f"(IREE would write '{weights_output}.irpa'), e.g. --weights-output="
            f"{weights.with_suffix('.irpa')}"
        )
    if weighs and output and output != "-" and _same_file(Path(output), weights):
        raise MipscError(
            f"-o '{output}' is also where the weights would go: the module would overwrite "
            "them; name the output FILE.vmfb, or the weights with --weights-output=FILE.irpa"
        )


@contextmanager
def _weights_placed(weights: Path, *, keep_existing: bool) -> Iterator[Path]:
    """The path the export writes its weights (.irpa) to: `weights` itself, or, with
    `keep_existing`, a temporary file moved to `weights` after the export if no file exists
    there (a MipscError if one does). For output to stdout (`-o -`, or --emit=torch without -o)
    without --weights-output: the user named no file, so none of theirs is overwritten."""
    if not keep_existing:
        yield weights
        return
    with tempfile.TemporaryDirectory(prefix="mipsc-weights-") as tmp:
        staged = Path(tmp) / weights.name
        yield staged
        if staged.exists():
            _move_to_new_file(staged, weights)


def _move_to_new_file(source: Path, target: Path) -> None:
    """`source` moved to `target`, which must not exist: a hard link (no copy of the weights)
    or, across file systems, a copy into a file created exclusively. A MipscError says that
    `target` exists, or why it cannot be written."""
    try:
        try:
            os.link(source, target)
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
            with source.open("rb") as src, target.open("xb") as dst:
                shutil.copyfileobj(src, dst, 2**20)
    except FileExistsError:
        raise MipscError(
            f"the export wrote its weights to a parameter file, and '{target}' exists: name "
            "the file for them with --weights-output=FILE.irpa (the output goes to stdout, "
            "and mipsc overwrites no file it was not given)"
        ) from None
    except OSError as err:
        raise MipscError(f"cannot write '{target}': {err.strerror}") from None


def _say_where_the_weights_went(weights: Path, out: Path, emit: str, to_stdout: bool) -> None:
    """One line on stderr: the .irpa an export wrote (absolute when the module went to stdout,
    where no file names the place) and, for a .vmfb, how to run it with them."""
    where = weights.resolve() if to_stdout else weights
    if emit != "vmfb":
        run = ""
    elif to_stdout:
        run = f": run the .vmfb written to stdout with --parameters={where}"
    else:
        run = f": run with `mipsc run {out} --parameters={where} ...`"
    click.echo(f"mipsc: the weights are in {where} (scope 'model'){run}", err=True)


def _command_printer(
    ctx: click.Context, options: CompileOptions, weights: Path | None
) -> Callable[[list[str]], None]:
    """Prints iree-compile's exact command line, fed by the mipsc command that prints the same
    module (iree-compile reads it on stdin): copy, paste, and it runs. Every option that made
    the module is spelled out, also those that came from the environment (the kernel link of
    $MIPSC_KERNEL_LINK) or from defaults (where the weights were written)."""
    p = ctx.params
    mipsc = ["mipsc", "compile", p["input_file"], "--emit=iree-input", "--print-debuginfo"]
    mipsc += [f"--example-input={spec}" for spec in p["example_inputs"]]
    mipsc += [f"--dynamic-dim={spec}" for spec in p["dynamic_dims"]]
    mipsc += options.command_line(lowering_only=True)
    if weights is not None:
        mipsc.append(f"--weights-output={weights}")

    def show(command: list[str]) -> None:
        if command[1] != "-":  # a large module goes through a temporary file
            click.echo(
                "mipsc: iree-compile ran on a temporary file, deleted after: "
                f"{shlex.join(command)}",
                err=True,
            )
            command = [command[0], "-", *command[2:]]
        click.echo(
            "mipsc: iree-compile command (the module goes to its stdin):\n"
            f"  {shlex.join(mipsc)} \\\n    | {shlex.join(command)}",
            err=True,
        )

    return show


def _compile_to_stdout(
    text: str | MlirText, name: str, options: CompileOptions, progress: Callable[[str], None]
) -> None:
    """`-o -`: the .vmfb goes to stdout (for pipes), never into a terminal."""
    stdout = sys.stdout.buffer
    if stdout.isatty():
        raise MipscError("refusing to write a binary .vmfb to a terminal; use -o FILE.vmfb")
    with tempfile.TemporaryDirectory(prefix="mipsc-") as tmp:
        out = Path(tmp) / "out.vmfb"
        compile_module(text, name, out, options, progress=progress)
        stdout.write(out.read_bytes())
        stdout.flush()


@main.command(
    epilog="\b\nExamples:\n"
    "  mipsc run model.vmfb --input=@a.npy --input=@b.npy --output=@out.npy\n"
    "  mipsc run model.vmfb --input=2x3xf32=1 --input=3x4xf32=2\n"
    "  mipsc run model_bf16.vmfb --input=8x32xbf16=@x.bin --output=@out.bin\n"
    "  mipsc run model.vmfb --parameters=model=weights.irpa --input=@x.npy",
)
@click.argument("module_file", metavar="MODULE.vmfb")
@click.option(
    "--function",
    default=None,
    help="Function to call (default: main, or the module's only function, e.g. an ONNX "
    "model's main_graph).",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="SPEC",
    help="An input, in order: @file.npy, raw bytes with their type like 8x32xbf16=@x.bin, "
    "or a literal like 2x3xf32=1 or 2xf32=1,2.",
)
@click.option(
    "--output",
    "outputs",
    multiple=True,
    metavar="@FILE",
    help="Save the outputs, in order: @FILE.npy as .npy, any other name as raw bytes "
    "(bf16 results need a raw name; .npy cannot record bf16).",
)
@click.option(
    "--parameters",
    "parameters",
    multiple=True,
    metavar="[SCOPE=]FILE",
    help="A parameter file (.irpa, .safetensors, .gguf) for the module's external weights of "
    "SCOPE, e.g. model=weights.irpa; without SCOPE, for the module's only scope; repeatable.",
)
@click.option("--plugin", metavar="PATH", help="Kernel plugin (default: `mipsc plugin-path`).")
@_user_errors
def run(
    module_file: str,
    function: str | None,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    parameters: tuple[str, ...],
    plugin: str | None,
) -> None:
    """Run a function of MODULE.vmfb on the CPU, with the kernel plugin loaded for you."""
    from mipsc import runtime

    arrays = [runtime.parse_input(spec) for spec in inputs]
    scoped = [runtime.parse_parameters(spec) for spec in parameters]
    module = runtime.load(module_file, plugin=plugin, parameters=scoped)
    if function is None:
        names = module.function_names
        function = names[0] if len(names) == 1 and "main" not in names else "main"
    results = runtime.call(module, function, arrays)
    if outputs and len(outputs) != len(results):
        raise MipscError(
            f"{function} returned {len(results)} output(s), --output given {len(outputs)}"
        )
    for index, result in enumerate(results):
        if outputs:
            runtime.save_output(outputs[index], result, index)
        else:
            click.echo(f"result[{index}]: {runtime.type_string(result)}")
            import numpy as np  # (not at the top: `mipsc compile` never needs it)

            click.echo(np.array2string(result, threshold=1000))


@main.command(name="plugin-path")
@_user_errors
def plugin_path() -> None:
    """Print the path of the kernel plugin, for iree-run-module --executable_plugin=..."""
    from mipsc.runtime import plugin_path as find_plugin

    click.echo(str(find_plugin()))


@main.command(name="kernel-info")
@_user_errors
def kernel_info() -> None:
    """Print the kernel configuration this machine gets: the CPU (from cpuid), the code path
    per element type and the cache blocks (MIPSC_KERNEL_CONFIG=<name> forces an entry)."""
    from mipsc.runtime import kernel_info as read_info
    from mipsc.runtime import plugin_path as find_plugin

    click.echo(read_info(find_plugin()), nl=False)


def _parse_shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise MipscError(f"bad shape '{text}': write MxNxK, e.g. 1024x1024x1024")
    if any(int(p) == 0 for p in parts):
        raise MipscError(f"bad shape '{text}': M, N and K must be at least 1 (nothing to time)")
    m, n, k = (int(p) for p in parts)
    return m, n, k


@main.command(
    epilog="\b\nExamples:\n"
    "  mipsc bench\n"
    "  mipsc bench --shape 2048x2048x2048 --threads 2 --dtype f32 --json out.json",
)
@click.option(
    "--shape",
    "shapes",
    multiple=True,
    metavar="MxNxK",
    help="A matmul shape (repeatable; default: 256³, 256x512x384, 512³, 1024³).",
)
@click.option(
    "--dtype",
    "dtypes",
    multiple=True,
    type=click.Choice(["f32", "f16", "bf16"]),
    help="Element types (repeatable; default: f32). numpy is timed for f32 only: it has no "
    "fast f16/bf16 matmul.",
)
@click.option(
    "--threads",
    "threads",
    multiple=True,
    type=click.IntRange(1, MAX_THREADS),
    help="Worker threads for IREE and OpenBLAS (repeatable; default: 1 and 2).",
)
@click.option(
    "--seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Time per case and backend.",
)
@click.option("--json", "json_path", metavar="FILE", help="Also write the results as JSON.")
@_user_errors
def bench(
    shapes: tuple[str, ...],
    dtypes: tuple[str, ...],
    threads: tuple[int, ...],
    seconds: float,
    json_path: str | None,
) -> None:
    """Time matmuls through mipsc (kernels linked into the module: mipsc; from the plugin:
    mipsc-plugin), IREE's own codegen with its best flags (--iree-opt-data-tiling,
    target-cpu=host) and numpy, interleaved in one run; f32 also through mipsc's OpenBLAS
    backend (mipsc-openblas) when OpenBLAS is available.

    Each backend runs in short bursts, taking turns, until each has had --seconds; the
    median call counts. Prints times, GFLOP/s, % of this CPU's measured f32 FMA peak and the
    ratios, and says how OPENBLAS_CORETYPE was set (it changes numpy's speed).
    """
    from mipsc.bench import DEFAULT_SHAPES, format_table, run_bench

    report = run_bench(
        [_parse_shape(s) for s in shapes] or list(DEFAULT_SHAPES),
        list(dtypes) or ["f32"],
        list(threads) or [1, 2],
        min_seconds=seconds,
        progress=lambda msg: click.echo(f"mipsc bench: {msg}", err=True),
    )
    click.echo(format_table(report))
    if json_path:
        import dataclasses
        import json

        write_output(json.dumps(dataclasses.asdict(report), indent=2) + "\n", json_path)
