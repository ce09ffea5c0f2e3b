"""Fused epilogues end to end: small torch models whose elementwise chains after a linear run
in the matmul's dispatch (fuse-epilogues), checked against torch eager, with the epilogue
kernel counted and named in the report; on both kernel links (the plugin, as the suite sets
it, with its counters; the kernels embedded in the module, with no plugin)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="exporting torch models needs the mipsc[torch] extra")
pytest.importorskip("iree.turbine.aot", reason="exporting needs iree-turbine (mipsc[torch] extra)")

import mipsc  # noqa: E402

pytestmark = pytest.mark.e2e
nn = torch.nn


class Block(nn.Module):
    """Every fused pattern at once: linear+bias → activation; a SiLU gate of two projections;
    a down projection plus a residual (through a clone, as torch's encoder layer has it); and
    a pre-activation output that is also returned (so its chain must not be fused)."""

    def __init__(self, act: nn.Module, d: int = 64, hidden: int = 160) -> None:
        super().__init__()
        self.up = nn.Linear(d, hidden)
        self.act = act
        self.gate = nn.Linear(d, hidden, bias=False)
        self.proj = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d)
        self.side = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.act(self.up(x)) + nn.functional.silu(self.gate(x)) * self.proj(x)
        y = x + self.down(h).clone()
        pre = self.side(y)
        return y, torch.relu(pre) + pre


ACTIVATIONS = {
    "gelu": (nn.GELU(), "gelu"),
    "gelu_tanh": (nn.GELU(approximate="tanh"), "gelu_tanh"),
    "relu": (nn.ReLU(), "relu"),
    "silu": (nn.SiLU(), "silu"),
}


def _compile(
    dtype: torch.dtype, act: nn.Module, kernel_link: str = "plugin"
) -> tuple[nn.Module, torch.Tensor, object]:
    torch.manual_seed(0)
    module = Block(act).eval().to(dtype)
    x = torch.randn(3, 20, 64).to(dtype)  # 60 rows: several tiles
    # bf16 weights cannot be inlined by the exporter (numpy has no bf16): a parameter file
    external = dtype == torch.bfloat16
    return module, x, mipsc.compile(module, x, external_weights=external, kernel_link=kernel_link)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_f32_block_matches_torch(kernel_calls, name):
    act, kind = ACTIVATIONS[name]
    module, x, model = _compile(torch.float32, act)
    report = str(model.report)
    assert f"epilogue: bias, {kind}" in report, report
    assert "epilogue: silu, mul" in report, report
    assert "epilogue: bias, add" in report, report
    before = kernel_calls["mips_epilogue_f32"]
    got = model(x)
    with torch.no_grad():
        want = module(x)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=2e-5, atol=2e-5)
    assert kernel_calls["mips_epilogue_f32"] > before


def test_bf16_block_matches_torch_rounding(kernel_calls):
    """bf16: each fused step rounds to bf16 as torch's ops do, so the outputs agree with
    torch's to its own bf16 matmul's differences (sum order), not to an f32 chain's."""
    module, x, model = _compile(torch.bfloat16, nn.GELU())
    before = kernel_calls["mips_epilogue_bf16"]
    got = model(x)
    with torch.no_grad():
        want = module(x)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.bfloat16
        torch.testing.assert_close(g, w, rtol=2e-2, atol=2e-2)
    assert kernel_calls["mips_epilogue_bf16"] > before


@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 2e-5), (torch.bfloat16, 2e-2)], ids=["f32", "bf16"]
)
def test_embedded_block_matches_torch(kernel_calls, dtype, tol):
    """--kernel-link=embedded: the epilogues run in the module's own object (its
    mips_epilogue_<t>_embedded entry points), not through the plugin, with torch's numbers."""
    module, x, model = _compile(dtype, nn.GELU(), kernel_link="embedded")
    report = str(model.report)
    assert "epilogue: bias, gelu" in report, report
    assert "epilogue: silu, mul" in report, report
    symbol = "mips_epilogue_bf16" if dtype == torch.bfloat16 else "mips_epilogue_f32"
    before = kernel_calls[symbol]
    got = model(x)
    with torch.no_grad():
        want = module(x)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype
        torch.testing.assert_close(g, w, rtol=tol, atol=tol)
    assert kernel_calls[symbol] == before  # not the plugin's


class Residual(nn.Module):
    """A linear plus a residual that is another input, both with the batch exported as one
    dynamic size."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 32)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + y


def test_residual_of_another_size_is_an_error_not_an_out_of_bounds_read(kernel_calls):
    """Break-it found `linear(x) + y` with x of 3 rows and y of 1 (their batch exported as one
    size) returned rows of ~1e26 and, with 200000 rows, crashed: the fused epilogue read y by
    the result's rows, and the host's check that they agree was folded away, because the
    dispatch described y by the result's sizes. y is now described by its own, and the check
    fails the call. Since check-input-dims, the function's entry refuses the call first (the
    inputs' one dim name), naming both dims; the dispatch's own check stays for modules without
    the export's dim relations (test_matmul_family)."""
    torch.manual_seed(0)
    model = Residual()
    example = (torch.randn(4, 16), torch.randn(4, 32))
    compiled = mipsc.compile(model, *example, dynamic_shapes=({0: "b"}, {0: "b"}))
    x, y = torch.randn(3, 16), torch.randn(3, 32)
    torch.testing.assert_close(compiled(x, y), model(x, y).detach(), rtol=1e-5, atol=1e-5)
    with pytest.raises(mipsc.MipscError, match=r"dim 0 of input 2 \(%arg1\) \(given 1\) must "
                       r"equal dim 0 of input 1 \(%arg0\) \(given 3\)"):  # fmt: skip
        compiled(x, torch.randn(1, 32))
    with pytest.raises(mipsc.MipscError, match=r"dim 0 of input 2 \(%arg1\) \(given 4\) must "
                       r"equal dim 0 of input 1 \(%arg0\) \(given 5\)"):  # fmt: skip
        compiled(torch.randn(5, 16), torch.randn(4, 32))
