"""mips.matmul: the verifier, reify-shape and memory effects."""

import pytest
from xdsl.dialects import tensor
from xdsl.dialects.builtin import DYNAMIC_INDEX, TensorType, f16, f32
from xdsl.ir import Block
from xdsl.traits import is_side_effect_free
from xdsl.utils.exceptions import VerifyException

from mipsc.dialects.mips import BatchMatmulOp, MatmulOp, PackRhsOp

Q = DYNAMIC_INDEX


def make_matmul(lhs, rhs, init, elts=(f32, f32, f32)):
    block = Block(arg_types=[TensorType(e, s) for e, s in zip(elts, (lhs, rhs, init), strict=True)])
    op = MatmulOp(*block.args)
    block.add_op(op)
    return op


@pytest.mark.parametrize(
    ("lhs", "rhs", "init"),
    [
        ([4, 5], [5, 3], [4, 3]),
        ([Q, Q], [Q, Q], [Q, Q]),
        ([Q, 5], [5, 3], [7, 3]),
        ([4, Q], [6, 3], [4, Q]),
        ([0, 5], [5, 0], [0, 0]),
    ],
)
def test_valid_shapes(lhs, rhs, init):
    make_matmul(lhs, rhs, init).verify()


@pytest.mark.parametrize(
    ("lhs", "rhs", "init", "message"),
    [
        ([4, 5], [6, 3], [4, 3], "K mismatch: lhs dim 1 is 5 but rhs dim 0 is 6"),
        ([4, 5], [5, 3], [7, 3], "M mismatch: lhs dim 0 is 4 but init dim 0 is 7"),
        ([4, 5], [5, 3], [4, 2], "N mismatch: rhs dim 1 is 3 but init dim 1 is 2"),
        ([Q, 5], [5, 3], [Q, 2], r"\(lhs \?x5, rhs 5x3, init \?x2\)"),
        ([2, 4, 5], [5, 3], [4, 3], "lhs must be a 2-D tensor"),
        ([4, 5], [5], [4, 3], "rhs must be a 2-D tensor"),
    ],
)
def test_invalid_shapes(lhs, rhs, init, message):
    with pytest.raises(VerifyException, match=message):
        make_matmul(lhs, rhs, init).verify()


def test_element_types_must_agree():
    with pytest.raises(VerifyException, match="lhs f16, rhs f32, init f32, result f32"):
        make_matmul([4, 5], [5, 3], [4, 3], (f16, f32, f32)).verify()


def test_result_type_is_init_type():
    op = make_matmul([Q, 5], [5, 3], [4, 3])
    assert op.result.type == TensorType(f32, [4, 3])


def test_reify_static_dims_builds_nothing():
    ops, dims = make_matmul([4, 5], [5, 3], [4, 3]).reify_result_shapes()
    assert ops == [] and dims == [4, 3]


def test_reify_dynamic_dims_uses_tensor_dim_of_the_right_operand():
    op = make_matmul([Q, 5], [5, Q], [Q, Q])
    ops, dims = op.reify_result_shapes()
    m, n = dims
    dim_ops = [o for o in ops if isinstance(o, tensor.DimOp)]
    assert [d.source for d in dim_ops] == [op.lhs, op.rhs]
    assert m is dim_ops[0].result and n is dim_ops[1].result
    assert [d.index.owner.value.value.data for d in dim_ops] == [0, 1]


def test_reify_mixed():
    ops, dims = make_matmul([7, 5], [5, Q], [7, Q]).reify_result_shapes()
    assert dims[0] == 7 and len([o for o in ops if isinstance(o, tensor.DimOp)]) == 1


def test_matmul_is_side_effect_free():
    assert is_side_effect_free(make_matmul([4, 5], [5, 3], [4, 3]))


def make_op(cls, lhs, rhs, init, **flags):
    block = Block(arg_types=[TensorType(f32, s) for s in (lhs, rhs, init)])
    op = cls(*block.args, **flags)
    block.add_op(op)
    return op


def test_transposed_operands_verify_with_their_logical_shapes():
    make_op(MatmulOp, [4, 5], [3, 5], [4, 3], transpose_rhs=True).verify()
    make_op(MatmulOp, [5, 4], [5, 3], [4, 3], transpose_lhs=True).verify()
    with pytest.raises(VerifyException, match="K mismatch: lhs dim 1 is 5 but rhs dim 0 is 3"):
        make_op(MatmulOp, [4, 5], [3, 5], [4, 3]).verify()


def test_reify_follows_transposes():
    op = make_op(MatmulOp, [5, Q], [Q, 5], [Q, Q], transpose_lhs=True, transpose_rhs=True)
    ops, _dims = op.reify_result_shapes()
    dim_ops = [o for o in ops if isinstance(o, tensor.DimOp)]
    assert [d.source for d in dim_ops] == [op.lhs, op.rhs]
    assert [d.index.owner.value.value.data for d in dim_ops] == [1, 0]


def test_batch_matmul_verifier():
    make_op(BatchMatmulOp, [2, 4, 5], [2, 5, 3], [2, 4, 3]).verify()
    make_op(BatchMatmulOp, [Q, 4, 5], [2, 3, 5], [Q, 4, 3], transpose_rhs=True).verify()
    with pytest.raises(VerifyException, match="batch mismatch: lhs dim 0 is 2 but rhs dim 0 is 3"):
        make_op(BatchMatmulOp, [2, 4, 5], [3, 5, 3], [2, 4, 3]).verify()
    with pytest.raises(VerifyException, match="lhs must be a 3-D tensor"):
        make_op(BatchMatmulOp, [4, 5], [5, 3], [4, 3]).verify()


def test_batch_matmul_reify_includes_the_batch():
    _ops, dims = make_op(BatchMatmulOp, [Q, 4, 5], [Q, 5, 3], [Q, 4, 3]).reify_result_shapes()
    assert dims[1:] == [4, 3] and not isinstance(dims[0], int)


def test_mips_flow_and_stream_ops_round_trip_through_the_generic_form():
    """Each op mipsc defines reads back from MLIR's generic form as it was."""
    from io import StringIO
    from pathlib import Path

    from xdsl.printer import Printer

    from mipsc.ir import make_context, parse_module, print_module
    from mipsc.pipeline import build_pipeline, run_pipeline

    source = Path(__file__).parents[1] / "filecheck" / "lower-mips-to-call" / "batched.mlir"
    ctx = make_context()
    module = parse_module(ctx, source.read_text(), "batched.mlir")
    custom_before = print_module(ctx, module)  # mips.batch_matmul
    run_pipeline(ctx, module, build_pipeline("lower-mips-to-call"))
    custom_after = print_module(ctx, module)  # flow.dispatch, stream.*
    for text in (custom_before, custom_after):
        ctx = make_context()
        generic = StringIO()
        Printer(stream=generic, print_generic_format=True).print_op(parse_module(ctx, text, "x"))
        assert '"mips.' in generic.getvalue() or '"flow.dispatch"' in generic.getvalue()
        ctx = make_context()
        assert print_module(ctx, parse_module(ctx, generic.getvalue(), "generic")) == text


def _tensor(*shape, element=f32):
    return Block(arg_types=[TensorType(element, list(shape))]).args[0]


def test_packed_rhs_verifies_against_the_packed_size():
    """A packed B of K = 5, N = 40 has packed_size(5, 40) = 6 * 64 elements; M may be dynamic."""
    MatmulOp(_tensor(DYNAMIC_INDEX, 5), _tensor(384), _tensor(DYNAMIC_INDEX, 40), packed_rhs=True)
    with pytest.raises(VerifyException, match=r"rhs must be tensor<384x..> \(K = 5, N = 40\)"):
        MatmulOp(_tensor(3, 5), _tensor(200), _tensor(3, 40), packed_rhs=True).verify()
    with pytest.raises(VerifyException, match="without transpose_rhs"):
        MatmulOp(
            _tensor(3, 5), _tensor(384), _tensor(3, 40), packed_rhs=True, transpose_rhs=True
        ).verify()
    with pytest.raises(VerifyException, match="static K and N"):
        MatmulOp(_tensor(3, 5), _tensor(384), _tensor(3, DYNAMIC_INDEX), packed_rhs=True).verify()


def test_packed_rhs_reify_takes_n_from_the_init():
    op = MatmulOp(
        _tensor(DYNAMIC_INDEX, 5), _tensor(384), _tensor(DYNAMIC_INDEX, 40), packed_rhs=True
    )
    ops, dims = op.reify_result_shapes()
    assert dims[1] == 40 and len(ops) == 2  # the dynamic M: a constant and a tensor.dim


def test_pack_rhs_result_type():
    """[N, K] = [40, 5] transposed is K = 5 x N = 40: 384 elements; the type is kept."""
    pack = PackRhsOp(_tensor(40, 5, element=f16), transpose=True)
    pack.verify()
    assert pack.result.type == TensorType(f16, [384])
    assert pack.logical_shape == (5, 40)
    bad = PackRhsOp.create(operands=[_tensor(5, 40)], result_types=[TensorType(f32, [100])])
    with pytest.raises(VerifyException, match=r"result must be tensor<384x\.\.>"):
        bad.verify()
