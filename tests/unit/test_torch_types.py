"""Every torch type form that exports print parses into the right structure and prints back."""

import pytest
from xdsl.dialects.builtin import DYNAMIC_INDEX, BFloat16Type, Float32Type, TensorType, f16, f32
from xdsl.parser import Parser

from mipsc.dialects import torch
from mipsc.ir import make_context


def parse_type(text: str):
    return Parser(make_context(), text).parse_type()


@pytest.mark.parametrize(
    "text",
    [
        "!torch.vtensor<[4,?],f32>",
        "!torch.vtensor<[],f32>",
        "!torch.vtensor<[2,3,4],si64>",
        "!torch.vtensor<[1],i1>",
        "!torch.vtensor<[3],bf16>",
        "!torch.vtensor<[3],complex<f32>>",
        "!torch.vtensor<*,f32>",
        "!torch.vtensor<[2],unk>",
        "!torch.vtensor",
        "!torch.tensor<[2,2],f16>",
        "!torch.int",
        "!torch.float",
        "!torch.bool",
        "!torch.none",
        "!torch.str",
        "!torch.Device",
        "!torch.Generator",
        "!torch.number",
        "!torch.any",
        "!torch.list<int>",
        "!torch.list<vtensor<[2],f32>>",
        "!torch.list<optional<vtensor>>",
        "!torch.optional<list<int>>",
        "!torch.tuple<int, float, vtensor<[?],f32>>",
        "!torch.union<float, int>",
        "!torch.dict<str, int>",
    ],
)
def test_type_round_trips(text):
    assert str(parse_type(text)) == text


def test_vtensor_structure():
    ty = parse_type("!torch.vtensor<[4,?],f32>")
    assert isinstance(ty, torch.ValueTensorType)
    assert ty.get_shape() == (4, DYNAMIC_INDEX)
    assert ty.dtype == Float32Type()
    assert ty.to_builtin() == TensorType(f32, [4, DYNAMIC_INDEX])


def test_vtensor_unknowns():
    unranked = parse_type("!torch.vtensor<*,bf16>")
    assert not unranked.has_sizes and unranked.dtype == BFloat16Type()
    no_dtype = parse_type("!torch.vtensor<[2],unk>")
    assert no_dtype.has_sizes and not no_dtype.has_dtype
    bare = parse_type("!torch.vtensor")
    assert not bare.has_sizes and not bare.has_dtype
    with pytest.raises(ValueError, match="no builtin tensor equivalent"):
        unranked.to_builtin()


def test_builtin_conversion_round_trips():
    builtin = TensorType(f16, [DYNAMIC_INDEX, 8])
    assert torch.ValueTensorType.from_builtin(builtin).to_builtin() == builtin


def test_contained_types():
    ty = parse_type("!torch.list<optional<vtensor<[2],f32>>>")
    assert isinstance(ty, torch.ListType)
    (inner,) = ty.contained.data
    assert isinstance(inner, torch.OptionalType)
    assert inner.contained.data[0] == torch.ValueTensorType([2], f32)


def test_unknown_torch_type_is_kept_verbatim():
    text = '!torch.nn.Module<"__torch__.M">'
    assert str(parse_type(text)) == text
