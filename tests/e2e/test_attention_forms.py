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
    hidden_row: bool = False
    """Row 1 of the mask hides every key: torch (>= 2.5, _safe_softmax) gives 0 there."""
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
    Form("hidden_row_bool", (1, 1, 3, 4), (1, 1, 3, 4), (1, 1, 3, 4), mask=(1, 1, 3, 3),
         mask_bool=True, hidden_row=True),
    Form("hidden_row_float", (2, 5, 4), (2, 6, 4), (2, 6, 3), mask=(2, 5, 6), hidden_row=True),
    Form("head_dim_zero", (2, 3, 4, 0), (2, 3, 5, 0), (2, 3, 5, 6)),
    # A head dim known only at run time: the scale 1/sqrt(E) is computed then. (Left on
    # IREE's path, this form once came back wrong by up to 2.8.)
    Form("dynamic_head_dim", (2, 3, 4, None), (2, 3, 5, None), (2, 3, 5, None),
         mask=(2, 1, 1, 5), mask_bool=True, runtime=(8, 8, 8)),
    # A query head count known only at run time: the groups are counted then (H / Hkv).
    Form("gqa_dynamic_query_heads", (2, None, 6, 8), (2, 2, 7, 8), (2, 2, 7, 8), gqa=True,
         mask=(2, 1, 6, 7), runtime=(6,)),
    Form("dynamic_head_dim_f16", (1, 2, 6, None), (1, 2, 6, None), (1, 2, 6, 4), dtype="f16",
         causal=True, runtime=(16, 16)),
    # The fused kernel's edges: more keys than one chunk (512) and query rows than one tile
    # (64), neither a multiple; a single query and key; causal with more queries than keys
    # (rows past the last key still see every key); a grouped, causal, masked bf16 form whose
    # mask hides a row.
    Form("long_keys", (1, 1, 70, 8), (1, 1, 600, 8), (1, 1, 600, 4), mask=(70, 600)),
    Form("single", (1, 1, 1, 8), (1, 1, 1, 8), (1, 1, 1, 8)),
    Form("causal_l_gt_s", (1, 2, 9, 8), (1, 2, 5, 8), (1, 2, 5, 8), causal=True),
    Form("bf16_gqa_causal_masked", (2, 4, 6, 8), (2, 2, 6, 8), (2, 2, 6, 8), dtype="bf16",
         gqa=True, causal=True, mask=(2, 1, 6, 6), hidden_row=True),
    Form("bf16_bool_mask", (1, 2, 6, 8), (1, 2, 6, 8), (1, 2, 6, 8), dtype="bf16",
         mask=(1, 1, 6, 6), mask_bool=True, hidden_row=True),
]  # fmt: skip


def fused(form: Form) -> bool:
    """Whether decompose-torch makes the form one mips.attention (static shapes)."""
    return None not in (*form.q, *form.k, *form.v)


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
    scale = form.scale if form.scale else 1.0 / math.sqrt(max(q.shape[-1], 1))  # E = 0: empty
    bias = np.zeros((length, keys))
    if form.causal:
        bias[~np.tril(np.ones((length, keys), bool))] = -np.inf
    if mask is not None:
        bias = np.where(mask, bias, -np.inf) if form.mask_bool else bias + mask.astype(np.float64)
    if form.gqa:
        k = np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    scores = q @ np.swapaxes(k, -1, -2) * scale + bias
    hidden = np.isneginf(scores).all(-1, keepdims=True)
    scores = np.exp(scores - np.where(hidden, 0, scores.max(-1, keepdims=True)))
    probs = np.where(hidden, 0.0, scores / np.where(hidden, 1, scores.sum(-1, keepdims=True)))
    return probs @ v


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
        if form.hidden_row:
            mask[..., 1, :] = False if form.mask_bool else -np.inf
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
    # Decomposed, f16/bf16 attention runs in f32 products, as torch's does.
    symbol = f"mips_attention_{form.dtype}" if fused(form) else "mips_matmul_f32"
    before = kernel_calls[symbol]
    got = attention_module.function(form.name)(*arrays)
    # q·kᵀ with a head dim of 0 is an empty product: no kernel call needed.
    assert kernel_calls[symbol] - before >= (1 if form.q[-1] == 0 or fused(form) else 2)
    want = reference(form, *arrays[:3], mask)
    assert np.isfinite(got.astype(np.float64)).all()
    # f16/bf16: one rounding of the f32 result (half an ulp: 2^-11, 2^-8 relative), not the
    # error of scores and probabilities rounded to the type between the products.
    tol = {"f32": 2e-5, "f16": 1e-3, "bf16": 8e-3}[form.dtype]
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


def test_grouped_heads_with_a_dynamic_key_value_count_stay_with_a_remark():
    form = Form("kv_dynamic", (2, None, 6, 8), (2, None, 7, 8), (2, None, 7, 8), gqa=True)
    with collect_remarks() as remarks:
        lowered = lower_module("module {\n" + function(form) + "}\n", "kv.mlir")
    assert "torch.aten.scaled_dot_product_attention" in lowered
    assert any(r.routed is False and "key/value head count" in r.message for r in remarks)
