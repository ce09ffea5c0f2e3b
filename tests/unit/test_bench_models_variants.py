"""tools/bench_models.py's llama variants with sibling products fused by hand: the same
numbers and the same streamed weights as the plain layer (torch only; no export)."""

from __future__ import annotations

import pytest
from repo_tools import load_tool

torch = pytest.importorskip("torch")


PAIRS = [
    ("LlamaDecoderLayer", "LlamaFusedLayer", "llama_prefill_inputs"),
    ("LlamaDecodeStep", "LlamaFusedDecodeStep", "llama_decode_inputs"),
    ("LlamaDecodeStep", "LlamaQkvFusedDecodeStep", "llama_decode_inputs"),
]


@pytest.mark.parametrize(("plain", "fused", "inputs"), PAIRS)
def test_fused_variant_computes_the_plain_layer(plain: str, fused: str, inputs: str) -> None:
    """A small layer (hidden 64, 4 heads on 2 key/value heads, MLP 96), seeded alike: every
    output of the variant is the plain layer's (up to the sum order of one product on the
    concatenated weights), and a call streams the same weight bytes (the unused separate
    projections are not counted)."""
    tool = load_tool("bench_models")
    cfg = tool.LlamaConfig(hidden=64, heads=4, kv_heads=2, intermediate=96, prompt=8, cached=5)
    layers = []
    for name in (plain, fused):
        torch.manual_seed(0)
        layers.append(getattr(tool, name)(cfg).eval())
    args = getattr(tool, inputs)(cfg)
    with torch.inference_mode():
        want, got = (tool.outputs_of(layer(*args)) for layer in layers)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-6)
    assert tool.weight_bytes(layers[1]) == tool.weight_bytes(layers[0])
    assert tool.weight_bytes(layers[1]) < sum(
        p.numel() * p.element_size() for p in layers[1].parameters()
    )
