"""einsum contractions, bilinear, dot and linear with a 1-D weight: through the kernel, against
numpy. All cases share one module (one function each), so one iree-compile covers them."""

from __future__ import annotations

import numpy as np
import pytest
from harness import MATMUL_FAMILY

import mipsc
from mipsc.pipeline import compile_module, lower_module
from mipsc.remarks import collect_remarks

pytestmark = pytest.mark.e2e

RNG = np.random.default_rng(5)


def vt(shape, dtype="f32"):
    return f"!torch.vtensor<[{','.join('?' if d is None else str(d) for d in shape)}],{dtype}>"


def concrete(shape, fill=3):
    return tuple(fill if d is None else d for d in shape)


EINSUMS = [
    # (name, equation, lhs, rhs, out)
    ("bmm", "bij,bjk->bik", (2, 3, 4), (2, 4, 5), (2, 3, 5)),
    ("scores", "bhqd,bhkd->bhqk", (2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 5, 7)),
    ("ellipsis", "...ij,jk->...ik", (2, 3, 4, 6), (6, 5), (2, 3, 4, 5)),
    ("vecmat", "bn,nd->bd", (4, 6), (6, 3), (4, 3)),
    ("implicit", "ij,jk", (3, 4), (4, 5), (3, 5)),
    ("outer", "i,j->ij", (3,), (4,), (3, 4)),
    ("folded", "abc,cde->abde", (2, 3, 4), (4, 5, 6), (2, 3, 5, 6)),
    ("permuted_out", "ij,jk->ki", (3, 4), (4, 5), (5, 3)),
    ("two_sums", "bij,bjiq->bq", (2, 3, 4), (2, 4, 3, 5), (2, 5)),
    ("dynamic", "bij,bjk->bik", (None, None, 4), (None, 4, None), (None, None, None)),
    # batch labels of size 1 on one side broadcast, as torch.einsum does
    ("broadcast_ellipsis", "...ij,...jk->...ik", (2, 1, 4, 5), (1, 3, 5, 6), (2, 3, 4, 6)),
    ("broadcast_batch", "bij,bjk->bik", (1, 3, 4), (2, 4, 5), (2, 3, 5)),
    # labels of one operand alone, not in the output: summed out of it first
    ("private_sum", "ij,jk->k", (3, 4), (4, 5), (5,)),
    ("private_sums_both", "bij,bjkq->bk", (2, 3, 4), (2, 4, 5, 6), (2, 5)),
    ("everything_summed", "ij,jk->", (3, 4), (4, 5), ()),
    # labels folded into M whose product has the output's rank: still viewed back
    ("batched_vector", "bik,k->bi", (2, 3, 5), (5,), (2, 3)),
]


def einsum_function(name, equation, lhs, rhs, out):
    return f"""  func.func @{name}(%a: {vt(lhs)}, %b: {vt(rhs)}) -> {vt(out)} {{
    %eq = torch.constant.str "{equation}"
    %none = torch.constant.none
    %ops = torch.prim.ListConstruct %a, %b : ({vt(lhs)}, {vt(rhs)}) -> !torch.list<vtensor>
    %r = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> {vt(out)}
    return %r : {vt(out)}
  }}
"""


OTHERS = """  func.func @bilinear(%x1: !torch.vtensor<[2,3,5],f32>, %x2: !torch.vtensor<[2,3,6],f32>, %w: !torch.vtensor<[7,5,6],f32>, %b: !torch.vtensor<[7],f32>) -> !torch.vtensor<[2,3,7],f32> {
    %r = torch.aten.bilinear %x1, %x2, %w, %b : !torch.vtensor<[2,3,5],f32>, !torch.vtensor<[2,3,6],f32>, !torch.vtensor<[7,5,6],f32>, !torch.vtensor<[7],f32> -> !torch.vtensor<[2,3,7],f32>
    return %r : !torch.vtensor<[2,3,7],f32>
  }
  func.func @bilinear_no_bias(%x1: !torch.vtensor<[?,5],f32>, %x2: !torch.vtensor<[?,6],f32>, %w: !torch.vtensor<[7,5,6],f32>) -> !torch.vtensor<[?,7],f32> {
    %none = torch.constant.none
    %r = torch.aten.bilinear %x1, %x2, %w, %none : !torch.vtensor<[?,5],f32>, !torch.vtensor<[?,6],f32>, !torch.vtensor<[7,5,6],f32>, !torch.none -> !torch.vtensor<[?,7],f32>
    return %r : !torch.vtensor<[?,7],f32>
  }
  func.func @bilinear_empty(%x1: !torch.vtensor<[0,5],f32>, %x2: !torch.vtensor<[0,6],f32>, %w: !torch.vtensor<[7,5,6],f32>, %b: !torch.vtensor<[7],f32>) -> !torch.vtensor<[0,7],f32> {
    %r = torch.aten.bilinear %x1, %x2, %w, %b : !torch.vtensor<[0,5],f32>, !torch.vtensor<[0,6],f32>, !torch.vtensor<[7,5,6],f32>, !torch.vtensor<[7],f32> -> !torch.vtensor<[0,7],f32>
    return %r : !torch.vtensor<[0,7],f32>
  }
  func.func @bilinear_no_inputs(%x1: !torch.vtensor<[3,0],f32>, %x2: !torch.vtensor<[3,6],f32>, %w: !torch.vtensor<[7,0,6],f32>, %b: !torch.vtensor<[7],f32>) -> !torch.vtensor<[3,7],f32> {
    %r = torch.aten.bilinear %x1, %x2, %w, %b : !torch.vtensor<[3,0],f32>, !torch.vtensor<[3,6],f32>, !torch.vtensor<[7,0,6],f32>, !torch.vtensor<[7],f32> -> !torch.vtensor<[3,7],f32>
    return %r : !torch.vtensor<[3,7],f32>
  }
  func.func @dot(%a: !torch.vtensor<[9],f32>, %b: !torch.vtensor<[9],f32>) -> !torch.vtensor<[],f32> {
    %r = torch.aten.dot %a, %b : !torch.vtensor<[9],f32>, !torch.vtensor<[9],f32> -> !torch.vtensor<[],f32>
    return %r : !torch.vtensor<[],f32>
  }
  func.func @linear_vector_weight(%x: !torch.vtensor<[4,6],f32>, %w: !torch.vtensor<[6],f32>, %b: !torch.vtensor<[],f32>) -> !torch.vtensor<[4],f32> {
    %r = torch.aten.linear %x, %w, %b : !torch.vtensor<[4,6],f32>, !torch.vtensor<[6],f32>, !torch.vtensor<[],f32> -> !torch.vtensor<[4],f32>
    return %r : !torch.vtensor<[4],f32>
  }
  func.func @linear_vector_both(%x: !torch.vtensor<[6],f32>, %w: !torch.vtensor<[6],f32>) -> !torch.vtensor<[],f32> {
    %none = torch.constant.none
    %r = torch.aten.linear %x, %w, %none : !torch.vtensor<[6],f32>, !torch.vtensor<[6],f32>, !torch.none -> !torch.vtensor<[],f32>
    return %r : !torch.vtensor<[],f32>
  }
"""

CHAIN = """  func.func @chain(%a: !torch.vtensor<[3,4],f32>, %b: !torch.vtensor<[4,5],f32>, %c: !torch.vtensor<[5,2],f32>) -> !torch.vtensor<[3,2],f32> {
    %eq = torch.constant.str "ij,jk,kl->il"
    %none = torch.constant.none
    %ops = torch.prim.ListConstruct %a, %b, %c : (!torch.vtensor<[3,4],f32>, !torch.vtensor<[4,5],f32>, !torch.vtensor<[5,2],f32>) -> !torch.list<vtensor>
    %r = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[3,2],f32>
    return %r : !torch.vtensor<[3,2],f32>
  }
  func.func @chain_batched(%a: !torch.vtensor<[2,3,4],f32>, %b: !torch.vtensor<[2,4,5],f32>, %c: !torch.vtensor<[5],f32>) -> !torch.vtensor<[2,3],f32> {
    %eq = torch.constant.str "bij,bjk,k->bi"
    %none = torch.constant.none
    %ops = torch.prim.ListConstruct %a, %b, %c : (!torch.vtensor<[2,3,4],f32>, !torch.vtensor<[2,4,5],f32>, !torch.vtensor<[5],f32>) -> !torch.list<vtensor>
    %r = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> !torch.vtensor<[2,3],f32>
    return %r : !torch.vtensor<[2,3],f32>
  }
"""



def one_operand_function(name, equation, shape, out):
    return f"""  func.func @{name}(%x: {vt(shape)}) -> {vt(out)} {{
    %eq = torch.constant.str "{equation}"
    %none = torch.constant.none
    %ops = torch.prim.ListConstruct %x : ({vt(shape)}) -> !torch.list<vtensor>
    %r = torch.aten.einsum %eq, %ops, %none : !torch.str, !torch.list<vtensor>, !torch.none -> {vt(out)}
    return %r : {vt(out)}
  }}
"""


ONE_OPERAND = [
    # (name, equation, operand, out): sums and permutes, not products (no kernel)
    ("sum_all", "ij->", (3, 4), ()),
    ("sum_reorder", "ijk->ki", (2, 3, 4), (4, 2)),
    ("sum_dynamic", "ij->j", (None, 4), (4,)),
    ("transpose_implicit", "ji", (3, 4), (4, 3)),
]

TEXT = (
    "module {\n"
    + "".join(einsum_function(*e) for e in EINSUMS)
    + "".join(one_operand_function(*e) for e in ONE_OPERAND)
    + OTHERS
    + CHAIN
    + "}\n"
)


@pytest.fixture(scope="module")
def contractions(tmp_path_factory):
    vmfb = tmp_path_factory.mktemp("contractions") / "contractions.vmfb"
    compile_module(TEXT, "contractions.mlir", vmfb)
    return mipsc.load(vmfb)


def test_every_contraction_is_routed():
    with collect_remarks() as remarks:
        lowered = lower_module(TEXT, "contractions.mlir")
    for op in (*MATMUL_FAMILY, "aten.einsum ", "aten.bilinear ", "aten.dot "):
        assert op not in lowered, f"{op.strip()} left on IREE's path"
    counted = [r for r in remarks if r.routed is not None]
    assert len(counted) == len(EINSUMS) + 9 and all(r.routed for r in counted)


@pytest.mark.parametrize(("name", "equation", "lhs", "rhs", "out"), EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(contractions, kernel_calls, name, equation, lhs, rhs, out):
    a = RNG.standard_normal(concrete(lhs)).astype(np.float32)
    b = RNG.standard_normal(concrete(rhs)).astype(np.float32)
    before = kernel_calls["mips_matmul_f32"]
    got = contractions.function(name)(a, b)
    assert kernel_calls["mips_matmul_f32"] > before
    np.testing.assert_allclose(got, np.einsum(equation, a, b), rtol=1e-5, atol=1e-5)


def test_bilinear(contractions, kernel_calls):
    x1, x2 = RNG.standard_normal((2, 3, 5)), RNG.standard_normal((2, 3, 6))
    w, b = RNG.standard_normal((7, 5, 6)), RNG.standard_normal(7)
    x1, x2, w, b = (v.astype(np.float32) for v in (x1, x2, w, b))
    want = np.einsum("...i,oij,...j->...o", x1, w, x2) + b
    before = kernel_calls["mips_matmul_f32"]
    np.testing.assert_allclose(contractions.bilinear(x1, x2, w, b), want, rtol=1e-5, atol=1e-5)
    assert kernel_calls["mips_matmul_f32"] - before >= 2
    got = contractions.bilinear_no_bias(x1[0], x2[0], w)
    np.testing.assert_allclose(got, want[0] - b, rtol=1e-5, atol=1e-5)


def test_einsum_of_three_operands_contracts_them_left_to_right(contractions, kernel_calls):
    a, b, c = (RNG.standard_normal(s).astype(np.float32) for s in ((3, 4), (4, 5), (5, 2)))
    before = kernel_calls["mips_matmul_f32"]
    got = contractions.chain(a, b, c)
    assert kernel_calls["mips_matmul_f32"] - before >= 2
    np.testing.assert_allclose(got, np.einsum("ij,jk,kl->il", a, b, c), rtol=1e-5, atol=1e-5)
    a, b, c = (RNG.standard_normal(s).astype(np.float32) for s in ((2, 3, 4), (2, 4, 5), (5,)))
    got = contractions.chain_batched(a, b, c)
    np.testing.assert_allclose(got, np.einsum("bij,bjk,k->bi", a, b, c), rtol=1e-5, atol=1e-5)


def test_bilinear_of_empty_sums_or_an_empty_result(contractions):
    b = RNG.standard_normal(7).astype(np.float32)
    got = contractions.bilinear_empty(np.zeros((0, 5), np.float32), np.zeros((0, 6), np.float32),
                                      RNG.standard_normal((7, 5, 6)).astype(np.float32), b)  # fmt: skip
    assert got.shape == (0, 7)
    got = contractions.bilinear_no_inputs(np.zeros((3, 0), np.float32), np.ones((3, 6), np.float32),
                                          np.zeros((7, 0, 6), np.float32), b)  # fmt: skip
    np.testing.assert_array_equal(got, np.broadcast_to(b, (3, 7)))


@pytest.mark.parametrize(("name", "equation", "shape", "out"), ONE_OPERAND, ids=[e[0] for e in ONE_OPERAND])
def test_one_operand_einsum_sums_and_permutes(contractions, name, equation, shape, out):
    x = RNG.standard_normal(concrete(shape, fill=5)).astype(np.float32)
    got = getattr(contractions, name)(x)
    np.testing.assert_allclose(got, np.einsum(equation, x), rtol=1e-5, atol=1e-5)


def test_dot_and_linear_with_a_vector_weight(contractions, kernel_calls):
    a, b = RNG.standard_normal(9).astype(np.float32), RNG.standard_normal(9).astype(np.float32)
    before = kernel_calls["mips_matmul_f32"]
    np.testing.assert_allclose(contractions.dot(a, b), np.dot(a, b), rtol=1e-5)
    x, w = RNG.standard_normal((4, 6)).astype(np.float32), RNG.standard_normal(6).astype(np.float32)
    bias = np.array(0.5, np.float32)
    np.testing.assert_allclose(contractions.linear_vector_weight(x, w, bias), x @ w + 0.5, rtol=1e-5)
    np.testing.assert_allclose(contractions.linear_vector_both(x[0], w), x[0] @ w, rtol=1e-5)
    assert kernel_calls["mips_matmul_f32"] - before >= 3


@pytest.mark.parametrize(
    ("equation", "lhs", "rhs", "out", "why"),
    [
        ("ii,ij->ij", (3, 3), (3, 4), (3, 4), "a diagonal"),
        ("...ij,...jk->...ik", (2, 3, 4), (4, 5), (2, 3, 5), "an ellipsis that broadcasts"),
        ("ij,jk->ik", (3, 1), (4, 5), (3, 5), "has sizes that do not broadcast"),
    ],
)
def test_other_einsums_stay_with_a_remark(equation, lhs, rhs, out, why):
    with collect_remarks() as remarks:
        lowered = lower_module("module {\n" + einsum_function("f", equation, lhs, rhs, out) + "}\n", "e.mlir")
    assert "torch.aten.einsum" in lowered
    assert any(r.routed is False and why in r.message for r in remarks)
