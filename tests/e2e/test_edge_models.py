"""Models as users write them, at the edges of what mipsc handles, through `mipsc.compile`:
each checked against torch eager (values, dtypes and shapes)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip(
    "torch", reason="the torch front door needs the mipsc[torch] extra (torch, iree-turbine)"
)
pytest.importorskip(
    "iree.turbine.aot", reason="the torch front door needs iree-turbine (mipsc[torch] extra)"
)

import mipsc  # noqa: E402

pytestmark = pytest.mark.e2e


def assert_matches_torch(got: torch.Tensor, want: torch.Tensor, tol: float) -> None:
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    torch.testing.assert_close(got, want, atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_linear_with_no_input_features_gives_its_bias(dtype):
    # nn.Linear(0, 3): K = 0, an empty constant weight; iree-compile refused its pack
    # ("offset 1 is out-of-bounds: 0 >= 0") before pack-weights left empty weights alone.
    torch.manual_seed(0)
    model = torch.nn.Linear(0, 3).to(dtype)
    torch.nn.init.normal_(model.bias)
    x = torch.randn(4, 0, dtype=dtype)
    compiled = mipsc.compile(model, x)
    assert_matches_torch(compiled(x), model(x).detach(), 0.0)


@pytest.mark.parametrize("causal", [False, True])
def test_f64_attention_is_computed_in_f64(causal):
    # IREE's own attention op computed f64 in f32 precision (max error 1.2e-7 here).
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, n, 8, dtype=torch.float64) for n in (7, 9, 9))

    class Attention(torch.nn.Module):
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    compiled = mipsc.compile(Attention(), q, k, v)
    assert compiled.routed == (0, 1), compiled.report  # f64: IREE's path, by torch's definition
    assert_matches_torch(compiled(q, k, v), Attention()(q, k, v), 1e-13)
