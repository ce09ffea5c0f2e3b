"""torch.export's "Constraints violated" errors read into what each dynamic dim needs, and said
in the terms of each front door (mipsc.frontends.dim_constraints). The texts are torch 2.13's,
as printed for the models named (no torch needed here)."""

from __future__ import annotations

import pytest

from mipsc.frontends.dim_constraints import (
    CliWords,
    DimNeed,
    DimWords,
    dim_needs,
    explain,
    places_of,
)

TAIL = (
    "\nThe error above occurred when calling torch.export.export. If you would like to view "
    "some more information about this error, ... you can replace your `export()` call with "
    "`draft_export()`."
)

# nn.Linear(8, ...) with its input's dim 1 dynamic (mipsc compile --dynamic-dim 0:1)
SPECIALIZED = (
    'Constraints violated (input0_dim1)! For more information, run with TORCH_LOGS="+dynamic".\n'
    "  - You marked input0_dim1 as dynamic but your code specialized it to be a constant (8). "
    "If you're using mark_dynamic, either remove it or use maybe_mark_dynamic. If you're using "
    "Dim.DYNAMIC, replace it with either Dim.STATIC or Dim.AUTO.\n"
    "User stack:\n  File \"linear.py\", line 134, in forward\n" + TAIL
)
# x + y with dim 0 of x named a and of y named b
EQUAL = (
    'Constraints violated (b)! For more information, run with TORCH_LOGS="+dynamic".\n'
    "  - The values of b = L['y'].size()[0] and a = L['x'].size()[0] must always be equal.\n"
    "Suggested fixes:\n  b = a\n" + TAIL
)
# x[1:] + y
RELATED = (
    'Constraints violated (a)! For more information, run with TORCH_LOGS="+dynamic".\n'
    "  - The values of a = L['x'].size()[0] must always be related to the values of "
    "b = L['y'].size()[0] by a = b + 1.\nSuggested fixes:\n  a = b + 1\n" + TAIL
)
# `if x.shape[0] > 4:` with Dim("n", max=10)
BOUNDED = (
    'Constraints violated (n)! For more information, run with TORCH_LOGS="+dynamic".\n'
    "  - Not all values of n = L['x'].size()[0] in the specified range n <= 10 satisfy the "
    "generated guard 5 <= L['x'].size()[0] and L['x'].size()[0] <= 10\n"
    "Suggested fixes:\n  n = Dim('n', min=5, max=10)\n" + TAIL
)
# x.view(2, x.shape[0] // 2, 8)
MULTIPLE = (
    'Constraints violated (n)! For more information, run with TORCH_LOGS="+dynamic".\n'
    "  - Not all values of n = L['x'].size()[0] in the specified range satisfy the generated "
    "guard (8*L['x'].size()[0]) == (16*(L['x'].size()[0] // 2)).\n"
    "  - Not all values of n = L['x'].size()[0] in the specified range satisfy the generated "
    "guard (L['x'].size()[0] % 2) == 0.\n"
    "Suggested fixes:\n  _n = Dim('_n', min=1, max=oo)\n  n = 2*_n\n" + TAIL
)
# the same view, when torch suggests no fix (its guards were too complex)
GUARD_ONLY = MULTIPLE.split("Suggested fixes:")[0] + TAIL


@pytest.mark.parametrize(
    ("text", "need"),
    [
        (SPECIALIZED, DimNeed("input0_dim1", "constant", "8")),
        (EQUAL, DimNeed("b", "equal", other="a")),
        (RELATED, DimNeed("a", "related", "b + 1", "b")),
        (BOUNDED, DimNeed("n", "bounds", "5..10")),
        (MULTIPLE, DimNeed("n", "multiple", "2")),
        (GUARD_ONLY, DimNeed("n", "guard", "(8*n) == (16*(n // 2))")),
    ],
)
def test_each_kind_of_need_is_read(text, need):
    assert dim_needs(text) == [need]


def test_a_text_that_is_no_constraint_violation_has_no_needs():
    assert dim_needs("Dynamic control flow is not supported at the moment.") == []


CLI = CliWords({"a": [(0, 0, "0:0=a")], "b": [(1, 0, "1:0=b")], "n": [(0, 0, "0:0=n")]})
PYTHON = DimWords(places_of(({0: "a"}, {0: "b"})))


@pytest.mark.parametrize(
    ("need", "cli", "python"),
    [
        (
            DimNeed("b", "equal", other="a"),
            "dim 0 of input 2 (%arg1) (--dynamic-dim 1:0=b) cannot be dynamic: M needs it equal "
            "to dim 0 of input 1 (%arg0) (--dynamic-dim 0:0=a): give both one NAME "
            "(--dynamic-dim 1:0=a, as the other dim's)",
            "dim 0 of input 2 (%arg1) cannot be dynamic: M needs it equal to dim 0 of input 1 "
            "(%arg0): give both one name (or one Dim) in dynamic_shapes (e.g. 'a' for both)",
        ),
        (
            DimNeed("a", "constant", "1"),
            "dim 0 of input 1 (%arg0) (--dynamic-dim 0:0=a) cannot be dynamic: it is 1 in the "
            "example input, a size torch.export takes as a constant: give an --example-input "
            "in which it is at least 2, or drop --dynamic-dim 0:0=a",
            "dim 0 of input 1 (%arg0) cannot be dynamic: it is 1 in the example input, a size "
            "torch.export takes as a constant: give an example input in which it is at least "
            "2, or leave it out of dynamic_shapes (it then keeps the example input's size)",
        ),
    ],
)
def test_the_fix_is_said_for_the_front_door(need, cli, python):
    """`--dynamic-dim` errors carried torch's advice (`mark_dynamic`, `Dim.STATIC`), which
    neither the command line nor mipsc.compile's dynamic_shapes of names takes."""
    assert explain(need, CLI, "M") == cli
    assert explain(need, PYTHON, "M") == python


@pytest.mark.parametrize(
    "text", [SPECIALIZED, EQUAL, RELATED, BOUNDED, MULTIPLE, GUARD_ONLY], ids=str.__len__
)
def test_no_cli_message_gives_torch_advice(text):
    for need in dim_needs(text):
        said = explain(need, CLI, "M")
        assert "mark_dynamic" not in said and "Dim.STATIC" not in said, said
        assert "--dynamic-dim" in said, said


def test_a_symbol_of_two_graph_inputs_names_both():
    """One TorchDynamo size in two inputs (the batch of x and of mask): both are named."""
    from mipsc.dynamo import DynamicPlan

    plan = DynamicPlan({0: {0: "s0"}, 2: {0: "s0", 1: "s1"}}, {}, (0, 1, 2))
    assert plan.places(["x", "w", "mask"]) == {
        "s0": ["dim 0 of x", "dim 0 of mask"],
        "s1": ["dim 1 of mask"],
    }
