"""scaled_dot_product_attention in every form exporters write, through the kernel, against
torch's definition of it computed in numpy (float64).

All forms share one module (one function each), so one iree-compile covers them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import pytest
from harness import MATMUL_FAMILY

import mipsc
from mipsc.pipeline import compile_module, lower_module
from mipsc.remarks import collect_remarks

pytestmark = pytest.mark.e2e

NP = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}


@dataclass
class Form:
    name: str
    q: tuple[int | None, ...]
    k: tuple[int | None, ...]
    v: tuple[int | None, ...]
    mask: tuple[int, ...] | None = None
    mask_bool: bool = False
    causal: bool = False
    scale: float | None = None
    gqa: bool = False
    dtype: str = "f32"
    runtime: tuple[int, ...] = ()
    """Sizes of the `None` (dynamic) dims, in order of appearance in q, k, v."""


FORMS = [
    Form("plain", (2, 4, 8, 16), (2, 4, 10, 16), (2, 4, 10, 12)),
    Form("float_mask", (2, 4, 8, 16), (2, 4, 10, 16), (2, 4, 10, 16), mask=(2, 1, 8, 10)),
    Form("bool_mask", (1, 2, 6, 8), (1, 2, 6, 8), (1, 2, 6, 8), mask=(1, 1, 1, 6), mask_bool=True),
    Form("causal", (1, 3, 7, 8), (1, 3, 7, 8), (1, 3, 7, 8), causal=True),
    Form("causal_l_ne_s", (1, 2, 5, 8), (1, 2, 9, 8), (1, 2, 9, 4), causal=True),
    Form("scale", (2, 6, 16), (2, 9, 16), (2, 9, 16), scale=0.3),
    Form("gqa", (1, 4, 8, 16), (1, 2, 8, 16), (1, 2, 8, 16), gqa=True, causal=True),
    Form("gqa_masked", (2, 6, 5, 8), (2, 2, 7, 8), (2, 2, 7, 8), gqa=True, mask=(5, 7)),
    Form("dynamic", (None, 2, None, 8), (None, 2, None, 8), (None, 2, None, 8), causal=True,
         runtime=(3, 6, 3, 6, 3, 6)),
    Form("f16", (1, 2, 8, 16), (1, 2, 8, 16), (1, 2, 8, 16), dtype="f16", causal=True),
    Form("bf16_gqa", (1, 4, 8, 16), (1, 1, 8, 16), (1, 1, 8, 16), dtype="bf16", gqa=True),
]  # fmt: skip


def vt(shape, dtype):
    return f"!torch.vtensor<[{','.join('?' if d is None else str(d) for d in shape)}],{dtype}>"


def function(form: Form) -> str:
    t = form.dtype
    args = [f"%q: {vt(form.q, t)}", f"%k: {vt(form.k, t)}", f"%v: {vt(form.v, t)}"]
    mask_type, mask_value = "!torch.none", "%none"
    if form.mask is not None:
        mask_type = vt(form.mask, "i1" if form.mask_bool else t)
        args.append(f"%m: {mask_type}")
        mask_value = "%m"
    out = (*form.q[:-1], form.v[-1])
    scale = f"torch.constant.float {form.scale}" if form.scale else "torch.constant.none"
    scale_type = "!torch.float" if form.scale else "!torch.none"
    return f"""  func.func @{form.name}({", ".join(args)}) -> {vt(out, t)} {{
    %none = torch.constant.none
    %zero = torch.constant.float 0.000000e+00
    %causal = torch.constant.bool {"true" if form.causal else "false"}
    %gqa = torch.constant.bool {"true" if form.gqa else "false"}
    %scale = {scale}
    %r = torch.aten.scaled_dot_product_attention %q, %k, %v, {mask_value}, %zero, %causal, %scale, %gqa : {vt(form.q, t)}, {vt(form.k, t)}, {vt(form.v, t)}, {mask_type}, !torch.float, !torch.bool, {scale_type}, !torch.bool -> {vt(out, t)}
    return %r : {vt(out, t)}
  }}
"""


def reference(form: Form, q, k, v, mask):
    """torch.nn.functional.scaled_dot_product_attention's documented definition, in f64."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    length, keys = q.shape[-2], k.shape[-2]
    scale = form.scale if form.scale else 1.0 / math.sqrt(q.shape[-1])
    bias = np.zeros((length, keys))
    if form.causal:
        bias[~np.tril(np.ones((length, keys), bool))] = -np.inf
    if mask is not None:
        bias = np.where(mask, bias, -np.inf) if form.mask_bool else bias + mask.astype(np.float64)
    if form.gqa:
        k = np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    scores = q @ np.swapaxes(k, -1, -2) * scale + bias
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    return (scores / scores.sum(-1, keepdims=True)) @ v


def inputs(form: Form, rng):
    sizes = iter(form.runtime)
    shapes = [tuple(next(sizes) if d is None else d for d in s) for s in (form.q, form.k, form.v)]
    arrays = [rng.standard_normal(s).astype(NP[form.dtype]) for s in shapes]
    mask = None
    if form.mask is not None:
        if form.mask_bool:
            mask = rng.random(form.mask) < 0.7
            mask[..., 0] = True  # no row fully masked (torch would give NaN)
        else:
            mask = rng.standard_normal(form.mask).astype(NP[form.dtype])
        arrays.append(mask)
    return arrays, mask


TEXT = "module {\n" + "".join(function(f) for f in FORMS) + "}\n"


def test_every_attention_form_is_decomposed_and_routed():
    with collect_remarks() as remarks:
        lowered = lower_module(TEXT, "attention.mlir")
    for op in MATMUL_FAMILY:
        assert op not in lowered, f"{op.strip()} left on IREE's path"
    counted = [r for r in remarks if r.routed is not None]
    assert len(counted) == len(FORMS) and all(r.routed for r in counted)
    # Grouped heads are read by view, never repeated per query head.
    assert "repeat" not in lowered and "expand" not in lowered.replace("expand_shape", "")


@pytest.fixture(scope="module")
def attention_module(tmp_path_factory):
    vmfb = tmp_path_factory.mktemp("attention") / "attention.vmfb"
    compile_module(TEXT, "attention.mlir", vmfb)
    return mipsc.load(vmfb)


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_attention_matches_torchs_definition(attention_module, kernel_calls, form):
    arrays, mask = inputs(form, np.random.default_rng(11))
    symbol = f"mips_matmul_{form.dtype}"
    before = kernel_calls[symbol]
    got = attention_module.function(form.name)(*arrays)
    assert kernel_calls[symbol] - before >= 2
    want = reference(form, *arrays[:3], mask)
    tol = {"f32": 2e-5, "f16": 4e-3, "bf16": 3e-2}[form.dtype]
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)
