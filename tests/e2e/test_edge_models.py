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
