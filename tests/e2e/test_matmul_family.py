"""The matmul family, written as torch exports write it, through the kernel, against numpy.

Each case is one torch op with the operand shapes given; the test compiles it with mipsc, runs
it through the plugin, compares with numpy, checks that the kernel ran, and that no
matmul-family op or transpose is left for IREE's own codegen.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import MATMUL_FAMILY

import mipsc
from mipsc.pipeline import lower_module

pytestmark = pytest.mark.e2e

RNG = np.random.default_rng(7)


def vt(shape, dtype="f32"):
    dims = ",".join("?" if d is None else str(d) for d in shape)
    return f"!torch.vtensor<[{dims}],{dtype}>"


def module(body: str, args: list[str], result: str) -> str:
    params = ", ".join(f"%a{i}: {t}" for i, t in enumerate(args))
    return f"""func.func @main({params}) -> {result} {{
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %int-1 = torch.constant.int -1
  %int-2 = torch.constant.int -2
  %none = torch.constant.none
  %beta = torch.constant.float 5.000000e-01
  %alpha = torch.constant.float 2.000000e+00
  %one = torch.constant.int 1
{body}
  return %r : {result}
}}
"""


def check(compile_text, kernel_calls, text, inputs, want, symbol="mips_matmul_f32", tol=1e-4):
    lowered = lower_module(text, "case.mlir")
    for op in MATMUL_FAMILY:
        assert op not in lowered, f"{op.strip()} left on IREE's path"
    assert "aten.t " not in lowered and "transpose.int" not in lowered
    assert "aten.permute" not in lowered
    vmfb = compile_text(text, "case.mlir")
    before = kernel_calls[symbol]
    got = mipsc.load(vmfb).main(*inputs)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert got.shape == np.shape(want)
    assert kernel_calls[symbol] > before


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [
        ((7,), (7,)),  # dot
        ((7,), (7, 5)),  # 1-D x 2-D
        ((6, 7), (7,)),  # 2-D x 1-D
        ((6, 7), (7, 5)),
        ((3, 6, 7), (7, 5)),  # N-D x 2-D: leading dims fold into M
        ((2, 3, 6, 7), (7,)),
        ((6, 7), (3, 7, 5)),  # 2-D x N-D: lhs broadcast over the batch
        ((7,), (3, 7, 5)),
        ((3, 6, 7), (3, 7, 5)),  # batched
        ((2, 1, 6, 7), (3, 7, 5)),  # broadcast batch dims of different ranks
        ((2, 1, 6, 7), (1, 4, 7, 5)),
    ],
)
def test_matmul_ranks(compile_text, kernel_calls, a_shape, b_shape):
    a, b = rand(*a_shape), rand(*b_shape)
    want = np.matmul(a, b)
    body = f"  %r = torch.aten.matmul %a0, %a1 : {vt(a_shape)}, {vt(b_shape)} -> {vt(want.shape)}"
    text = module(body, [vt(a_shape), vt(b_shape)], vt(want.shape))
    check(compile_text, kernel_calls, text, [a, b], want)


def test_mv_and_bmm(compile_text, kernel_calls):
    m, v = rand(9, 13), rand(13)
    body = f"  %r = torch.aten.mv %a0, %a1 : {vt((9, 13))}, {vt((13,))} -> {vt((9,))}"
    check(
        compile_text, kernel_calls, module(body, [vt((9, 13)), vt((13,))], vt((9,))), [m, v], m @ v
    )
    a, b = rand(4, 5, 6), rand(4, 6, 3)
    body = f"  %r = torch.aten.bmm %a0, %a1 : {vt(a.shape)}, {vt(b.shape)} -> {vt((4, 5, 3))}"
    check(
        compile_text,
        kernel_calls,
        module(body, [vt(a.shape), vt(b.shape)], vt((4, 5, 3))),
        [a, b],
        a @ b,
    )


def test_dynamic_batch_bmm(compile_text, kernel_calls):
    dyn3 = vt((None, None, None))
    body = f"  %r = torch.aten.bmm %a0, %a1 : {dyn3}, {dyn3} -> {dyn3}"
    text = module(body, [dyn3, dyn3], dyn3)
    a, b = rand(5, 33, 20), rand(5, 20, 130)
    check(compile_text, kernel_calls, text, [a, b], a @ b)


@pytest.mark.parametrize(
    ("x_shape", "bias"),
    [((16,), True), ((8, 16), True), ((8, 16), False), ((2, 3, 16), True), ((None, 16), True)],
)
def test_linear(compile_text, kernel_calls, x_shape, bias):
    x = rand(*[d or 11 for d in x_shape])
    w, b = rand(10, 16), rand(10)
    out_shape = (*x_shape[:-1], 10)
    bias_type = vt((10,)) if bias else "!torch.none"
    bias_value = "%a2" if bias else "%none"
    body = f"  %r = torch.aten.linear %a0, %a1, {bias_value} : {vt(x_shape)}, {vt((10, 16))}, {bias_type} -> {vt(out_shape)}"
    args = [vt(x_shape), vt((10, 16))] + ([vt((10,))] if bias else [])
    want = x @ w.T + (b if bias else 0)
    check(
        compile_text, kernel_calls, module(body, args, vt(out_shape)), [x, w, b][: len(args)], want
    )


@pytest.mark.parametrize("transpose", ["t", "transpose", "permute"])
def test_transposed_operands_reach_the_kernel_as_strides(compile_text, kernel_calls, transpose):
    a, bt = rand(6, 7), rand(5, 7)  # b = bt.T
    if transpose == "t":
        line = f"  %b = torch.aten.t %a1 : {vt((5, 7))} -> {vt((7, 5))}"
    elif transpose == "transpose":
        line = f"  %b = torch.aten.transpose.int %a1, %int-2, %int-1 : {vt((5, 7))}, !torch.int, !torch.int -> {vt((7, 5))}"
    else:
        line = (f"  %perm = torch.prim.ListConstruct %int1, %int0 : (!torch.int, !torch.int) -> !torch.list<int>\n"
                f"  %b = torch.aten.permute %a1, %perm : {vt((5, 7))}, !torch.list<int> -> {vt((7, 5))}")  # fmt: skip
    body = f"{line}\n  %r = torch.aten.mm %a0, %b : {vt((6, 7))}, {vt((7, 5))} -> {vt((6, 5))}"
    check(
        compile_text,
        kernel_calls,
        module(body, [vt((6, 7)), vt((5, 7))], vt((6, 5))),
        [a, bt],
        a @ bt.T,
    )


def test_attention_scores_with_transposed_keys(compile_text, kernel_calls):
    q, k = rand(2, 8, 16), rand(2, 8, 16)
    body = (f"  %kt = torch.aten.transpose.int %a1, %int-2, %int-1 : {vt((2, 8, 16))}, !torch.int, !torch.int -> {vt((2, 16, 8))}\n"
            f"  %r = torch.aten.matmul %a0, %kt : {vt((2, 8, 16))}, {vt((2, 16, 8))} -> {vt((2, 8, 8))}")  # fmt: skip
    text = module(body, [vt((2, 8, 16))] * 2, vt((2, 8, 8)))
    check(compile_text, kernel_calls, text, [q, k], q @ k.transpose(0, 2, 1))


@pytest.mark.parametrize("alpha_one", [True, False])
@pytest.mark.parametrize("bias_shape", [(9, 11), (11,), (1, 11)])
def test_addmm(compile_text, kernel_calls, alpha_one, bias_shape):
    bias, a, b = rand(*bias_shape), rand(9, 6), rand(6, 11)
    alpha = "%one" if alpha_one else "%alpha"
    alpha_type = "!torch.int" if alpha_one else "!torch.float"
    body = f"  %r = torch.aten.addmm %a0, %a1, %a2, %beta, {alpha} : {vt(bias_shape)}, {vt((9, 6))}, {vt((6, 11))}, !torch.float, {alpha_type} -> {vt((9, 11))}"
    want = 0.5 * bias + (1.0 if alpha_one else 2.0) * (a @ b)
    text = module(body, [vt(bias_shape), vt((9, 6)), vt((6, 11))], vt((9, 11)))
    check(compile_text, kernel_calls, text, [bias, a, b], want)


def test_baddbmm_and_addbmm(compile_text, kernel_calls):
    bias, a, b = rand(3, 5, 4), rand(3, 5, 6), rand(3, 6, 4)
    body = f"  %r = torch.aten.baddbmm %a0, %a1, %a2, %beta, %alpha : {vt((3, 5, 4))}, {vt((3, 5, 6))}, {vt((3, 6, 4))}, !torch.float, !torch.float -> {vt((3, 5, 4))}"
    text = module(body, [vt((3, 5, 4)), vt((3, 5, 6)), vt((3, 6, 4))], vt((3, 5, 4)))
    check(compile_text, kernel_calls, text, [bias, a, b], 0.5 * bias + 2.0 * (a @ b))

    bias2 = rand(5, 4)
    body = f"  %r = torch.aten.addbmm %a0, %a1, %a2, %beta, %one : {vt((5, 4))}, {vt((3, 5, 6))}, {vt((3, 6, 4))}, !torch.float, !torch.int -> {vt((5, 4))}"
    text = module(body, [vt((5, 4)), vt((3, 5, 6)), vt((3, 6, 4))], vt((5, 4)))
    check(compile_text, kernel_calls, text, [bias2, a, b], 0.5 * bias2 + (a @ b).sum(0))


def test_f16_linear_matches_torch_rounding(compile_text, kernel_calls):
    x, w, b = (
        rand(8, 64, dtype=np.float16),
        rand(24, 64, dtype=np.float16),
        rand(24, dtype=np.float16),
    )
    body = f"  %r = torch.aten.linear %a0, %a1, %a2 : {vt((8, 64), 'f16')}, {vt((24, 64), 'f16')}, {vt((24,), 'f16')} -> {vt((8, 24), 'f16')}"
    text = module(
        body, [vt((8, 64), "f16"), vt((24, 64), "f16"), vt((24,), "f16")], vt((8, 24), "f16")
    )
    # torch's CPU result: f32 accumulation of the products and the bias, one rounding to f16.
    want = (x.astype(np.float32) @ w.astype(np.float32).T + b.astype(np.float32)).astype(np.float16)
    check(compile_text, kernel_calls, text, [x, w, b], want, symbol="mips_matmul_f16", tol=4e-3)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_scaled_dot_product_attention(compile_text, kernel_calls):
    q, k, v = rand(2, 4, 8, 16), rand(2, 4, 10, 16), rand(2, 4, 10, 12)
    t = [vt(q.shape), vt(k.shape), vt(v.shape)]
    body = (f"  %zero = torch.constant.float 0.000000e+00\n  %false = torch.constant.bool false\n"
            f"  %r = torch.aten.scaled_dot_product_attention %a0, %a1, %a2, %none, %zero, %false, %none, %false"
            f" : {t[0]}, {t[1]}, {t[2]}, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> {vt((2, 4, 8, 12))}")  # fmt: skip
    want = softmax(q @ k.transpose(0, 1, 3, 2) / 4.0) @ v
    check(compile_text, kernel_calls, module(body, t, vt((2, 4, 8, 12))), [q, k, v], want,
          symbol="mips_attention_f32")  # one fused kernel (mips.attention)


def test_attention_with_dropout_stays_on_iree_with_a_remark():
    t = vt((1, 2, 4, 8))
    body = (f"  %p = torch.constant.float 1.000000e-01\n  %false = torch.constant.bool false\n"
            f"  %r = torch.aten.scaled_dot_product_attention %a0, %a0, %a0, %none, %p, %false, %none, %false"
            f" : {t}, {t}, {t}, !torch.none, !torch.float, !torch.bool, !torch.none, !torch.bool -> {t}")  # fmt: skip
    from mipsc.remarks import collect_remarks

    with collect_remarks() as remarks:
        lowered = lower_module(module(body, [t], t), "dropout.mlir")
    assert "aten.scaled_dot_product_attention" in lowered
    assert any(r.routed is False and "dropout" in r.message for r in remarks)


# Inputs that once gave wrong numbers or failed (issue: "never a wrong number"), each with the
# right value.


def test_linear_of_a_transposed_input_with_a_dynamic_dim(compile_text, kernel_calls):
    # The bias init was sized from the stored dim (6) instead of the logical M (7).
    x, w, b = rand(6, 7), rand(4, 6), rand(4)
    body = (f"  %xt = torch.aten.t %a0 : {vt((6, None))} -> {vt((None, 6))}\n"
            f"  %r = torch.aten.linear %xt, %a1, %a2 : {vt((None, 6))}, {vt((4, 6))}, {vt((4,))} -> {vt((None, 4))}")  # fmt: skip
    text = module(body, [vt((6, None)), vt((4, 6)), vt((4,))], vt((None, 4)))
    check(compile_text, kernel_calls, text, [x, w, b], x.T @ w.T + b)


def test_linear_of_a_transposed_weight_view_with_a_dynamic_n(compile_text, kernel_calls):
    x, v, b = rand(3, 6), rand(6, 9), rand(9)
    body = (f"  %w = torch.aten.t %a1 : {vt((6, None))} -> {vt((None, 6))}\n"
            f"  %r = torch.aten.linear %a0, %w, %a2 : {vt((3, 6))}, {vt((None, 6))}, {vt((None,))} -> {vt((3, None))}")  # fmt: skip
    text = module(body, [vt((3, 6)), vt((6, None)), vt((None,))], vt((3, None)))
    check(compile_text, kernel_calls, text, [x, v, b], x @ v + b)


@pytest.mark.parametrize("alpha", ["%one", "%alpha"])
def test_addmm_with_beta_zero_ignores_nan_in_the_input(compile_text, kernel_calls, alpha):
    alpha_type = "!torch.int" if alpha == "%one" else "!torch.float"
    body = (f"  %zero = torch.constant.int 0\n"
            f"  %r = torch.aten.addmm %a0, %a1, %a2, %zero, {alpha} : {vt((1, 1))}, {vt((1, 1))}, {vt((1, 1))}, !torch.int, {alpha_type} -> {vt((1, 1))}")  # fmt: skip
    text = module(body, [vt((1, 1))] * 3, vt((1, 1)))
    nan, one = np.full((1, 1), np.nan, np.float32), np.ones((1, 1), np.float32)
    want = np.ones((1, 1)) * (1.0 if alpha == "%one" else 2.0)
    check(compile_text, kernel_calls, text, [nan, one, one], want)


def empty_product_result(text, inputs):
    """Compile and run a module whose products are empty: no kernel call is needed."""
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from mipsc.pipeline import compile_module

    with TemporaryDirectory() as tmp:
        vmfb = Path(tmp) / "empty.vmfb"
        compile_module(text, "empty.mlir", vmfb)
        return mipsc.load(vmfb).main(*inputs)


def test_k_zero_gives_zeros_and_linear_returns_its_bias():
    body = f"  %r = torch.aten.mm %a0, %a1 : {vt((1, 0))}, {vt((0, 1))} -> {vt((1, 1))}"
    got = empty_product_result(module(body, [vt((1, 0)), vt((0, 1))], vt((1, 1))),
                               [np.zeros((1, 0), np.float32), np.zeros((0, 1), np.float32)])  # fmt: skip
    np.testing.assert_array_equal(got, [[0.0]])

    x, w, b = np.zeros((3, 0), np.float32), np.zeros((4, 0), np.float32), rand(4)
    body = f"  %r = torch.aten.linear %a0, %a1, %a2 : {vt((3, 0))}, {vt((4, 0))}, {vt((4,))} -> {vt((3, 4))}"
    got = empty_product_result(module(body, [vt((3, 0)), vt((4, 0)), vt((4,))], vt((3, 4))), [x, w, b])
    np.testing.assert_array_equal(got, np.broadcast_to(b, (3, 4)))

    a, c = np.zeros((2, 3, 0), np.float32), np.zeros((2, 0, 5), np.float32)
    body = f"  %r = torch.aten.bmm %a0, %a1 : {vt((2, 3, 0))}, {vt((2, 0, 5))} -> {vt((2, 3, 5))}"
    got = empty_product_result(module(body, [vt((2, 3, 0)), vt((2, 0, 5))], vt((2, 3, 5))), [a, c])
    np.testing.assert_array_equal(got, np.zeros((2, 3, 5)))


@pytest.mark.parametrize(("m", "n"), [(0, 4), (4, 0), (0, 0)])
def test_empty_results_keep_working(m, n):
    body = f"  %r = torch.aten.mm %a0, %a1 : {vt((m, 3))}, {vt((3, n))} -> {vt((m, n))}"
    got = empty_product_result(module(body, [vt((m, 3)), vt((3, n))], vt((m, n))),
                               [rand(m, 3), rand(3, n)])  # fmt: skip
    assert got.shape == (m, n)


def test_dynamic_k_of_zero_at_run_time(compile_text, kernel_calls):
    body = f"  %r = torch.aten.mm %a0, %a1 : {vt((3, None))}, {vt((None, 4))} -> {vt((3, 4))}"
    text = module(body, [vt((3, None)), vt((None, 4))], vt((3, 4)))
    check(compile_text, kernel_calls, text, [rand(3, 0), rand(0, 4)], np.zeros((3, 4)))


def test_a_dynamic_dim_that_is_1_at_run_time_is_refused_not_broadcast_wrongly(compile_text):
    # addmm's input [?] given 1 element where N = 3: torch broadcasts; mipsc (like
    # torch.export, whose dynamic dims are never 1) does not, and once read past its end.
    body = f"  %r = torch.aten.addmm %a0, %a1, %a2, %one, %one : {vt((None,))}, {vt((None, 7))}, {vt((7, None))}, !torch.int, !torch.int -> {vt((None, None))}"
    vmfb = compile_text(module(body, [vt((None,)), vt((None, 7)), vt((7, None))], vt((None, None))))
    model = mipsc.load(vmfb)
    a, b = np.ones((5, 7), np.float32), np.ones((7, 3), np.float32)
    got = model.main(np.arange(3, dtype=np.float32), a, b)
    np.testing.assert_array_equal(got, a @ b + np.arange(3))
    with pytest.raises(Exception, match="assumes dynamic dims do not broadcast"):
        model.main(np.full(1, 100, np.float32), a, b)


def test_an_init_smaller_at_run_time_than_the_result_is_refused_without_harm(compile_text):
    # addmm's input [?,?] given 1x3 where the result is 5x3: once IREE folded the copy that
    # checked it, and the kernel wrote 60 bytes into the 12 of the input (a crash at exit).
    t = vt((None, None))
    body = f"  %r = torch.aten.addmm %a0, %a1, %a2, %one, %one : {t}, {vt((None, 7))}, {vt((7, None))}, !torch.int, !torch.int -> {t}"
    model = mipsc.load(compile_text(module(body, [t, vt((None, 7)), vt((7, None))], t)))
    a, b = rand(5, 7), rand(7, 3)
    with pytest.raises(Exception, match="assumes dynamic dims do not broadcast"):
        model.main(np.ones((1, 3), np.float32), a, b)
    init = rand(5, 3)
    np.testing.assert_allclose(model.main(init, a, b), init + a @ b, rtol=1e-5, atol=1e-5)
