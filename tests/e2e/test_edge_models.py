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


class Products(torch.nn.Module):
    """Products torch writes as ops IREE's torch dialect has no op for: torch.export kept
    them (CompositeImplicitAutograd ops outside iree-turbine's table, addmv outside torch's
    core table) and iree-compile failed on each: "failed to legalize operation
    'torch.operator' (torch.aten.linalg_matmul)"."""

    def forward(self, a, b, m, v, c):
        return (
            torch.linalg.matmul(a, b),
            torch.inner(a, m),
            torch.tensordot(a, b, dims=([2], [1])),
            torch.addmv(c, m, v, beta=0.5, alpha=2.0),
            torch.linalg.multi_dot([m, m.t(), m]),
            torch.vdot(v, v),
            torch.addr(m, c, v),
        )


def test_products_outside_irees_torch_dialect_are_decomposed_and_routed():
    torch.manual_seed(0)
    args = (torch.randn(2, 3, 4), torch.randn(2, 4, 5), torch.randn(3, 4), torch.randn(4),
            torch.randn(3))  # fmt: skip
    compiled = mipsc.compile(Products(), *args)
    routed, total = compiled.routed
    assert routed == total >= 6, compiled.report  # each product but vdot's (mul, sum) and addr's
    for got, want in zip(compiled(*args), Products()(*args), strict=True):
        assert_matches_torch(got, want, 1e-5)


def test_a_recurrent_layer_compiles_and_matches_torch():
    # nn.LSTM traces to aten.lstm.input: decomposed into its steps' linears.
    torch.manual_seed(0)
    model = torch.nn.LSTM(8, 6, num_layers=2, batch_first=True).eval()
    x = torch.randn(2, 5, 8)
    compiled = mipsc.compile(model, x)
    got, (h, c) = compiled(x)
    want, (h_want, c_want) = model(x)
    for g, w in ((got, want), (h, h_want), (c, c_want)):
        assert_matches_torch(g, w.detach(), 1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_subnormal_results_read_as_zero_as_the_readme_says(dtype):
    # IREE's runtime runs every dispatch with flush-to-zero / denormals-are-zero on (the
    # README's Troubleshooting): subnormal products are 0 in mipsc's kernels (f32, bf16 on
    # any CPU, not only with AMX) and on IREE's own path (f64), where torch keeps them.
    tiny = {torch.float64: 1e-160}.get(dtype, 1e-20)
    a = torch.full((2, 3), tiny, dtype=dtype)
    b = torch.full((3, 2), tiny, dtype=dtype)

    class Product(torch.nn.Module):
        def forward(self, a, b):
            return a @ b

    want = Product()(a, b)
    assert (want > 0).all()  # torch: 3·tiny², a subnormal
    compiled = mipsc.compile(Product(), a, b)
    assert (compiled(a, b) == 0).all()


@pytest.mark.parametrize("equation", ["ii", "bii->b", "ij->i", "ij", "...ij->...ji", "iji->j"])
def test_one_operand_einsums_match_torch(equation):
    # IREE's own einsum lowering failed on these ("failed to legalize operation
    # 'torch.aten.sum.dim_IntList'"); ii->i and ij->ji passed already.
    torch.manual_seed(0)
    shapes = {"ii": (4, 4), "bii->b": (2, 3, 3), "iji->j": (3, 5, 3), "...ij->...ji": (2, 3, 4)}
    shape = shapes.get(equation, (3, 4))

    class Einsum(torch.nn.Module):
        def forward(self, x):
            return torch.einsum(equation, x)

    x = torch.randn(shape)
    compiled = mipsc.compile(Einsum(), x)
    assert_matches_torch(compiled(x), Einsum()(x), 1e-5)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int32])
def test_one_operand_integer_einsums_sum_in_int64_as_torch(dtype):
    """torch's einsum sums integers in int64; the decomposition's sum declared the operand's
    type and iree-compile refused the module (result si8 against the function's si64)."""

    class Sums(torch.nn.Module):
        def forward(self, x):
            return torch.einsum("ij->j", x), torch.einsum("ij->", x), torch.einsum("ii->i", x)

    x = torch.randint(-100, 100, (4, 4), dtype=torch.int32).to(dtype)
    compiled = mipsc.compile(Sums(), x)
    for got, want in zip(compiled(x), Sums()(x), strict=True):
        assert got.dtype == want.dtype and torch.equal(got, want)
