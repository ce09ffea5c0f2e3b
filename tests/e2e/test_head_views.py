"""Attention's heads by strides: the views that split heads off a projection and move them
([B, S, H, D] -> [B, H, S, D], a select of a fused QKV) reach the kernel as strides of the
projection's output, and ·v writes its output where the heads merged back put it, instead of
IREE copies (view_chains, strided_operands). Checked against torch on small layers of the two
shapes real models export, batch 2 (the batch index of a product then spans two dims of the
tensor: batch and head), and by the transposes left in the IR handed to IREE."""

from __future__ import annotations

import pytest

torch = pytest.importorskip(
    "torch", reason="the torch front door needs the mipsc[torch] extra (torch, iree-turbine)"
)
pytest.importorskip(
    "iree.turbine.aot", reason="the torch front door needs iree-turbine (mipsc[torch] extra)"
)

import mipsc  # noqa: E402
from mipsc.options import CompileOptions  # noqa: E402
from mipsc.pipeline import lower_module  # noqa: E402

pytestmark = pytest.mark.e2e

nn = torch.nn


class HeadsAttention(nn.Module):
    """Llama-style: q, k, v projections split into heads by view + transpose(1, 2), causal
    grouped-query attention, heads merged back by transpose(1, 2) + reshape."""

    def __init__(self, dim: int = 32, heads: int = 4, kv_heads: int = 2) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q = self.q(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        att = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o(att.transpose(1, 2).reshape(b, s, d))


def transposes_left(model: mipsc.compiled.CompiledModel, fuse: bool = True) -> int:
    options = CompileOptions(fuse_attention=fuse)
    return lower_module(model.mlir, "model.mlir", options).count("linalg.transpose")


@pytest.mark.parametrize(
    ("kv_heads", "fuse", "left"), [(4, True, 0), (2, True, 0), (4, False, 0), (2, False, 2)]
)
def test_llama_style_heads_are_read_by_strides(kv_heads: int, fuse: bool, left: int):
    torch.manual_seed(0)
    module = HeadsAttention(kv_heads=kv_heads).eval()
    x = torch.randn(2, 8, 32)
    model = mipsc.compile(module, x, fuse_attention=fuse)
    assert model.routed == (5, 5), model.report
    with torch.no_grad():
        torch.testing.assert_close(model(x), module(x), rtol=1e-5, atol=1e-5)
    # Fused (mips.attention), q, k and v are read in place, key/value head h / G for query
    # head h, and the kernel writes its output where the heads merged back put it ([B, S, H,
    # D]): no transpose. Decomposed without grouped heads the same holds for the products;
    # with grouped heads (G query heads per key/value head) q·kᵀ views q as [B, Hkv, G·S, D],
    # whose rows (g, s) have no single stride in the projection's [B, S, H, D], and ·v's
    # output rows neither: two are left.
    assert transposes_left(model, fuse) == left


def test_multihead_attention_heads_are_read_by_strides():
    # nn.TransformerEncoderLayer exports nn.MultiheadAttention: x moved to [S, B, E], one QKV
    # projection, its [S, B, 3, E] view moved to [3, S, B, E] and cloned, q/k/v selected,
    # each viewed [S, B·H, D] and moved to [B·H, S, D].
    torch.manual_seed(1)
    module = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True).eval()
    x = torch.randn(2, 6, 16)
    model = mipsc.compile(module, x)
    assert model.routed == (5, 5), model.report
    with torch.no_grad():
        torch.testing.assert_close(model(x), module(x), rtol=1e-5, atol=1e-5)
    # Left: x [B, S, E] -> [S, B, E] into the QKV projection (its rows, (s, b), have no single
    # stride with B = 2). Before: 6 (the QKV clone, q, k, v, and the heads merged back).
    assert transposes_left(model) == 1
