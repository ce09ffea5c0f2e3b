"""The pass registry and the pipelines, in one visible list.

`mipsc opt` runs any pipeline of registered passes; `mipsc compile` runs COMPILE_PIPELINE and
hands the printed module to iree-compile.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass, PassPipeline, PassPipelineCallbackType
from xdsl.utils.exceptions import ArgSpecParseError

from mipsc.diagnostics import MipscError
from mipsc.ir import verify_module
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


def run_pipeline(ctx: Context, module: ModuleOp, pipeline: PassPipeline) -> None:
    """Apply `pipeline` and check that the result is still valid IR."""
    pipeline.apply(ctx, module)
    verify_module(module)
