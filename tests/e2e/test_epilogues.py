"""Fused epilogues end to end: small torch models whose elementwise chains after a linear run
in the matmul's dispatch (fuse-epilogues), checked against torch eager, with the kernel
counted and named in the report; on both kernel links (the plugin, as the suite sets it, with
its counters; the kernels embedded in the module, with no plugin). The linears' weights are
constants, packed at load, so each tile makes one call of the fused kernel
(mips_matmul_packed_epilogue_<t>: the chain in its store phase); a weight that is an input
keeps the epilogue kernel's calls after the matmul's."""

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
    assert "mips_matmul_packed_epilogue_f32 (" in report, report
    before = kernel_calls[FUSED_F32]
    got = model(x)
    with torch.no_grad():
        want = module(x)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=2e-5, atol=2e-5)
    assert kernel_calls[FUSED_F32] > before


FUSED_F32, FUSED_BF16 = "mips_matmul_packed_epilogue_f32", "mips_matmul_packed_epilogue_bf16"


def test_bf16_block_matches_torch_rounding(kernel_calls):
    """bf16: each fused step rounds to bf16 as torch's ops do, so the outputs agree with
    torch's to its own bf16 matmul's differences (sum order), not to an f32 chain's."""
    module, x, model = _compile(torch.bfloat16, nn.GELU())
    before = kernel_calls[FUSED_BF16]
    got = model(x)
    with torch.no_grad():
        want = module(x)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.bfloat16
        torch.testing.assert_close(g, w, rtol=2e-2, atol=2e-2)
    assert kernel_calls[FUSED_BF16] > before


@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float32, 2e-5), (torch.bfloat16, 2e-2)], ids=["f32", "bf16"]
)
def test_embedded_block_matches_torch(kernel_calls, dtype, tol):
    """--kernel-link=embedded: the epilogues run in the module's own object (its
    mips_matmul_packed_epilogue_<t>_embedded entry points), not through the plugin, with
    torch's numbers."""
    module, x, model = _compile(dtype, nn.GELU(), kernel_link="embedded")
    report = str(model.report)
    assert "epilogue: bias, gelu" in report, report
    assert "epilogue: silu, mul" in report, report
    symbol = FUSED_BF16 if dtype == torch.bfloat16 else FUSED_F32
    before = kernel_calls[symbol]
    got = model(x)
    with torch.no_grad():
        want = module(x)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype
        torch.testing.assert_close(g, w, rtol=tol, atol=tol)
    assert kernel_calls[symbol] == before  # not the plugin's


class InputWeight(nn.Module):
    """A linear whose weight and bias are inputs (not constants: nothing to pack at load),
    then GELU."""

    def forward(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(nn.functional.linear(x, w, b))


def test_unpacked_weight_keeps_the_epilogue_calls(kernel_calls):
    """The old path for the rest: a B not packed at load gets the bias fill and the GELU as
    mips_epilogue_f32 calls around mips_matmul_f32, not the fused kernel."""
    torch.manual_seed(0)
    args = (torch.randn(40, 48), torch.randn(96, 48), torch.randn(96))
    model = mipsc.compile(InputWeight(), *args)
    assert "epilogue: bias, gelu" in str(model.report), model.report
    before = kernel_calls["mips_epilogue_f32"], kernel_calls[FUSED_F32]
    got = model(*args)
    torch.testing.assert_close(got, InputWeight()(*args), rtol=2e-5, atol=2e-5)
    assert kernel_calls["mips_epilogue_f32"] > before[0]
    assert kernel_calls[FUSED_F32] == before[1]


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 2e-5), (torch.bfloat16, 2e-2)])
def test_thin_product_through_the_fused_kernel(kernel_calls, dtype, tol):
    """3 rows (a thin product: the fused kernel makes the three steps in turn, counted as
    ':steps'), packed weights, bias and SiLU: torch's numbers."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(64, 96), nn.SiLU()).eval().to(dtype)
    x = torch.randn(3, 64).to(dtype)
    model = mipsc.compile(module, x, external_weights=dtype == torch.bfloat16)
    symbol = FUSED_BF16 if dtype == torch.bfloat16 else FUSED_F32
    before = kernel_calls[f"{symbol}:steps"]
    with torch.no_grad():
        torch.testing.assert_close(model(x), module(x), rtol=tol, atol=tol)
    assert kernel_calls[f"{symbol}:steps"] > before


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
