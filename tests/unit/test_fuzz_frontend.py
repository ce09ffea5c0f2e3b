"""Front-end fuzzing: whatever text `mipsc opt` is given, it succeeds or says why.

The property, for every input and for the pipelines `mipsc opt` and `mipsc opt -p
convert-torch-to-mips,lower-mips-to-call` run: either the module is printed and the printed text
parses back (and prints the same again), or a `MipscError` comes out, located in the input when
parsing failed. Any other exception, or a hang, is a bug in mipsc.

Inputs are (a) byte-level mutations of the small valid modules in tests/fuzz_corpus and (b) soups
of MLIR/torch tokens, some inside a function so that the passes see them. CI runs a
derandomized smoke run; `MIPSC_FUZZ_EXAMPLES=5000 pytest tests/unit/test_fuzz_frontend.py`
runs a random campaign of that many examples per test (tools/fuzz_frontend.py drives atheris).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mipsc.cli import main
from mipsc.diagnostics import MipscError
from mipsc.ir import make_context, parse_module, print_module, verify_module
from mipsc.pipeline import COMPILE_PIPELINE, build_pipeline, run_pipeline
from mipsc.remarks import collect_remarks

CORPUS_DIR = Path(__file__).resolve().parents[1] / "fuzz_corpus"
CORPUS = {p.name: p.read_text() for p in sorted(CORPUS_DIR.glob("*.mlir"))}

CAMPAIGN = int(os.environ.get("MIPSC_FUZZ_EXAMPLES", "0"))
"""Examples per test for a local campaign (random seeds); 0 means the CI smoke run."""

TIMEOUT_S = 20
"""One input taking longer than this is a hang (the corpus inputs take milliseconds)."""


def fuzz_settings(smoke_examples: int) -> settings:
    """Derandomized and small in CI; random and as long as asked for in a campaign."""
    return settings(
        max_examples=CAMPAIGN or smoke_examples,
        derandomize=not CAMPAIGN,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextmanager
def watchdog(seconds: int | None) -> Iterator[None]:
    """Turn a hang into a test failure (SIGALRM; pytest runs tests in the main thread)."""
    if seconds is None:
        yield
        return

    def hung(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s: mipsc hangs on this input")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _assert_rendered(err: MipscError, *, located: bool) -> None:
    rendered = err.render()
    assert "error: " in rendered and err.message.strip(), rendered
    assert "Traceback" not in rendered
    if located:
        assert err.location is not None, f"a parse error without a location: {rendered}"
        assert rendered.startswith(f"{err.location.file}:{err.location.line}:"), rendered


def _reparse(printed: str, stage: str, *, debuginfo: bool = False) -> None:
    """The printed module parses and verifies again, and prints the same (a fixpoint)."""
    ctx = make_context()
    try:
        module = parse_module(ctx, printed, f"printed-{stage}.mlir")
        run_pipeline(ctx, module, build_pipeline(""))
    except MipscError as err:
        raise AssertionError(
            f"mipsc printed a module ({stage}) it cannot read back:\n{err.render()}\n{printed}"
        ) from None
    again = print_module(ctx, module, debuginfo=debuginfo)
    if again != printed:  # not `assert ==`: pytest's diff of two modules takes minutes
        first, second = printed.splitlines(), again.splitlines()
        line = next(
            (i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), None
        )
        where = "" if line is None else f" at line {line + 1}:\n{first[line]}\n{second[line]}"
        raise AssertionError(f"printing ({stage}) is not a fixpoint{where}\n{printed}")


def check_frontend(text: str, name: str = "fuzz.mlir", timeout: int | None = TIMEOUT_S) -> str:
    """What `mipsc opt` does with `text`, then with COMPILE_PIPELINE; the outcome's name.

    Returns "ok", "parse-error" or "error" (verification or a pass); raises on anything else.
    """
    with watchdog(timeout):
        ctx = make_context()
        try:
            module = parse_module(ctx, text, name)
        except MipscError as err:
            _assert_rendered(err, located=True)
            return "parse-error"
        try:
            run_pipeline(ctx, module, build_pipeline(""))  # `mipsc opt`: verify, print
        except MipscError as err:
            _assert_rendered(err, located=False)
            return "error"
        _reparse(print_module(ctx, module), "as parsed")
        _reparse(print_module(ctx, module, debuginfo=True), "with loc", debuginfo=True)
        try:
            # The input is valid: a pass may still refuse it, saying where, but what the
            # passes make must verify, or they built something wrong.
            with collect_remarks():
                build_pipeline(COMPILE_PIPELINE).apply(ctx, module)
        except MipscError as err:
            _assert_rendered(err, located=True)
            return "error"
        try:
            verify_module(module)
        except MipscError as err:
            raise AssertionError(f"the passes made invalid IR:\n{err.render()}") from None
        _reparse(print_module(ctx, module), COMPILE_PIPELINE)
    return "ok"


# --------------------------------------------------------------------------------------------
# The corpus itself


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_is_valid_and_round_trips(name):
    assert check_frontend(CORPUS[name], name) == "ok"


# --------------------------------------------------------------------------------------------
# What fuzzing found, kept as regressions: (input, outcome, a fragment of the message)

_MM = (
    "func.func @main(%a: {A}, %b: {B}) -> {R} {{\n"
    "  %0 = torch.aten.{OP} %a, %b : {A}, {B} -> {R}\n"
    "  return %0 : {R}\n}}\n"
)
REGRESSIONS = {
    # xDSL's string-literal regex backtracked exponentially on an unclosed quote: minutes.
    "unclosed quote": (
        '%0 = torch.aten.linear %x, %w : !torch".vtensor<[10,16],f32>, !torch.vtensor<[10],f32>'
        " -> !torch.vtensor<[2,3,10],f32>\n",
        "parse-error",
        "closing string literal",
    ),
    # The lexer reads the first token when the parser is made, outside parse_module's try.
    "bad first character": ("\\\n", "parse-error", "Unexpected character: \\"),
    # linalg.fill's parser indexes its operands before checking there are any (IndexError).
    "linalg.fill alone": ("linalg.fill foo", "parse-error", "cannot parse this 'linalg.fill' op"),
    # A torch op's dim -5 became a nonsense tensor<-5x3xf32> that did not read back.
    "negative dim": (
        _MM.format(
            OP="mm",
            A="!torch.vtensor<[-5,3],f32>",
            B="!torch.vtensor<[3,4],f32>",
            R="!torch.vtensor<[-5,4],f32>",
        ),
        "parse-error",
        "a dim is a size (0 to 2^63 - 1) or ?, not -5",
    ),
    # A decimal integer was read as the bits of a double: 5 became 2.5e-323.
    "decimal float bits": (
        "%0 = torch.constant.float 5\n",
        "parse-error",
        "expected a float (like 5.0) or the 64 bits of a double in hex, not 5",
    ),
    "float bits too wide": ("%0 = torch.constant.float 0x7FF8000000000001FF\n", "parse-error", ""),
    # The patterns indexed the operands of a family op written without them (IndexError).
    # Since the family ops are typed, such an op is the input's located error, as in MLIR.
    "addmm without operands": (
        "func.func @f(%c: !torch.vtensor<[2,4],f32>) -> !torch.vtensor<[2,4],f32> {\n"
        "  %0, %1 = torch.aten.addmm : !torch.vtensor<[2,3],f32>, !torch.vtensor<[2,3],f32>\n"
        "  return %c : !torch.vtensor<[2,4],f32>\n}\n",
        "error",
        "regression.mlir:2:3: error: 'torch.aten.addmm' op Expected 5 operands, but got 0",
    ),
    # A batch dim that torch left `?` while every operand has 1 there (AssertionError).
    "dynamic batch of ones": (
        _MM.format(
            OP="matmul",
            A="!torch.vtensor<[1,2,3],f32>",
            B="!torch.vtensor<[1,3,4],f32>",
            R="!torch.vtensor<[?,2,4],f32>",
        ),
        "ok",
        "",
    ),
    # addmm with alpha != 1 tied a product typed by its operands (4x?) to the result type
    # (4x4): a valid module was refused with an error about torch_c.from_builtin_tensor.
    "addmm of dynamic operands into a static result": (
        "func.func @f(%c: !torch.vtensor<[4,4],f32>, %a: !torch.vtensor<[4,?],f32>) -> "
        "!torch.vtensor<[4,4],f32> {\n"
        "  %int1 = torch.constant.int 1\n"
        "  %half = torch.constant.float 5.000000e-01\n"
        "  %0 = torch.aten.addmm %c, %a, %a, %int1, %half : !torch.vtensor<[4,4],f32>, "
        "!torch.vtensor<[4,?],f32>, !torch.vtensor<[4,?],f32>, !torch.int, !torch.float -> "
        "!torch.vtensor<[4,4],f32>\n"
        "  return %0 : !torch.vtensor<[4,4],f32>\n}\n",
        "ok",
        "",
    ),
    # A static bias broadcast into a `?` dim (and a `?` batch dim into a static 1) made a
    # linalg.broadcast that does not verify: valid modules refused.
    "static bias, dynamic output": (
        "func.func @f(%x: !torch.vtensor<[?,?],f32>, %w: !torch.vtensor<[?,?],f32>, "
        "%b: !torch.vtensor<[4],f32>) -> !torch.vtensor<[?,?],f32> {\n"
        "  %0 = torch.aten.linear %x, %w, %b : !torch.vtensor<[?,?],f32>, "
        "!torch.vtensor<[?,?],f32>, !torch.vtensor<[4],f32> -> !torch.vtensor<[?,?],f32>\n"
        "  return %0 : !torch.vtensor<[?,?],f32>\n}\n",
        "ok",
        "",
    ),
    "dynamic batch dim into a static 1": (
        _MM.format(
            OP="matmul",
            A="!torch.vtensor<[1,?,?,1],f32>",
            B="!torch.vtensor<[?,1,1,?],f32>",
            R="!torch.vtensor<[1,?,?,?],f32>",
        ),
        "ok",
        "",
    ),
    # A stray quote in an attribute of an unknown dialect swallowed the next lines into it.
    "unclosed quote in a dialect attribute": (
        'util.global private @w = #flow.parameter.named<"m"\'"5::"w"> : tensor<4xf32>\n'
        'util.global private @b = #flow.parameter.named<"m::"b"> : tensor<4xf32>\n',
        "parse-error",
        "this string is not closed on its line",
    ),
    # Shapes that do not fit were reported as errors of mips.matmul or tensor.cast.
    "matmul result type": (
        _MM.format(
            OP="matmul",
            A="!torch.vtensor<[2,3],f32>",
            B="!torch.vtensor<[3,4],f32>",
            R="!torch.vtensor<[?,5],f32>",
        ),
        "error",
        "'torch.aten.matmul' op result type !torch.vtensor<[?,5],f32> does not fit",
    ),
    # An explicit `loc(unknown)` was replaced by the op's place in the file.
    "explicit unknown loc": (
        "func.func @f() {\n  func.return loc(unknown)\n} loc(unknown)\n",
        "ok",
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_found_by_fuzzing(name):
    text, outcome, fragment = REGRESSIONS[name]
    assert check_frontend(text, timeout=5) == outcome
    if fragment:
        ctx = make_context()
        with pytest.raises(MipscError) as err:
            module = parse_module(ctx, text, "regression.mlir")
            run_pipeline(ctx, module, build_pipeline(COMPILE_PIPELINE))
        assert fragment in err.value.render()


# --------------------------------------------------------------------------------------------
# (a) Mutations of the corpus

# Characters that matter to MLIR's lexer, plus some that it has no use for.
_SPECIAL = [*"%@!#^<>[](){}:,=-?*\"'\\/.x0123456789 \n\t", "\x00", "é", "\u2028", "\ufeff"]
_SNIPPETS = [
    "?", "-1", "0", "1", "17", "9223372036854775808", "-9223372036854775809", "1.5e400",
    "0x7FF8000000000001", "f32", "f64", "bf16", "si64", "i1", "unk", "*", "[]", "[?]",
    "!torch.vtensor", "!torch.vtensor<*,f32>", "!torch.int", "!torch.none", "tensor<?xf32>",
    "%arg0", "%0", "%int1", "%none", "@main", "#loc", 'loc("f":1:2)', "loc(unknown)",
    "torch.aten.mm", "torch.aten.matmul", "torch.aten.linear", "torch.aten.t",
    "torch.aten.transpose.int", "torch.aten.addmm", "torch.aten.bmm", "torch.aten.mv",
    "torch.aten.scaled_dot_product_attention", "torch.constant.int", "torch.constant.float",
    "torch.constant.none", "torch.prim.ListConstruct", "mips.matmul", "mips.batch_matmul",
    "transpose_lhs", "transpose_rhs", "flow.dispatch", "stream.executable", "util.global",
    "dense<1.0>", "dense_resource<x>", "#flow.parameter.named<\"a\"::\"b\">", "{-#", "#-}",
    "// -----", "\"", "->", "::", "attributes {}", "{a = 1}", "^bb0:",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    """(corpus name, text) after 1-4 insertions, deletions, replacements or a truncation."""
    name = draw(st.sampled_from(sorted(CORPUS)))
    text = CORPUS[name]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "swap-line"]))
        at = draw(st.integers(0, len(text)))
        piece = draw(
            st.one_of(
                st.sampled_from(_SNIPPETS),
                st.text(st.sampled_from(_SPECIAL), min_size=1, max_size=3),
                st.text(min_size=1, max_size=2),
            )
        )
        if kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif kind == "replace":
            text = text[:at] + piece + text[at + draw(st.integers(1, 6)) :]
        elif kind == "truncate":
            text = text[:at]
        else:
            lines = text.splitlines(keepends=True)
            i, j = draw(st.integers(0, len(lines))), draw(st.integers(0, len(lines)))
            if i < len(lines) and j < len(lines):
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return name, text


@fuzz_settings(120)
@given(mutated())
def test_mutated_corpus(case):
    name, text = case
    check_frontend(text, name)


# --------------------------------------------------------------------------------------------
# (b) Token soups

_TYPES = [
    "!torch.vtensor<[2,3],f32>", "!torch.vtensor<[3,4],f32>", "!torch.vtensor<[2,4],f32>",
    "!torch.vtensor<[3],f32>", "!torch.vtensor<[?,?],f32>", "!torch.vtensor<[2,3,4],f32>",
    "!torch.vtensor<[1,3,4],f32>", "!torch.vtensor<[4,3],f32>", "!torch.vtensor<[2,3],si64>",
    "!torch.vtensor<[2,3],f16>", "!torch.vtensor<[2,3],bf16>", "!torch.vtensor<[],f32>",
    "!torch.vtensor<*,f32>", "!torch.vtensor<[2,3],unk>", "!torch.vtensor", "!torch.int",
    "!torch.float", "!torch.bool", "!torch.none", "!torch.list<int>", "tensor<2x3xf32>",
    "tensor<3x4xf32>", "tensor<?x?xf32>", "tensor<2x4xf32>", "tensor<2x3x4xf32>", "f32", "index",
]  # fmt: skip
_OPS = [
    "torch.aten.mm", "torch.aten.bmm", "torch.aten.mv", "torch.aten.matmul", "torch.aten.linear",
    "torch.aten.addmm", "torch.aten.baddbmm", "torch.aten.addbmm", "torch.aten.t",
    "torch.aten.transpose.int", "torch.aten.permute", "torch.aten.relu", "torch.aten.add.Tensor",
    "torch.aten.scaled_dot_product_attention", "torch.constant.int", "torch.constant.float",
    "torch.constant.bool", "torch.constant.none", "torch.constant.str", "torch.constant.number",
    "torch.constant.device", "torch.vtensor.literal", "torch.prim.ListConstruct",
    "torch.operator", "torch.symbolic_int", "torch.bind_symbolic_shape",
    "torch.tensor_static_info_cast", "torch_c.to_builtin_tensor", "torch_c.from_builtin_tensor",
    "mips.matmul", "mips.batch_matmul", "util.global", "util.global.load", "util.global.store",
    "flow.dispatch", "stream.executable", "stream.executable.export", "stream.binding.subspan",
    "stream.dispatch.workgroup.id", "stream.return", "tensor.empty", "linalg.fill",
    "arith.constant", "func.return", "return", "foo.bar", "builtin.module", "module",
    "func.func",
]  # fmt: skip
_VALUES = ["%a", "%b", "%c", "%0", "%1", "%int1", "%int-1", "%none", "%arg0", "%w"]
_PUNCT = [
    "<", ">", "[", "]", "(", ")", "{", "}", ":", ",", "=", "->", "?", "*", "@main", "@g", "ins",
    "outs", "transpose_lhs", "transpose_rhs", "private", "mutable", "immutable", "workgroups",
    "1", "0", "-1", "2", "2.5", "0x7FF0000000000000", "true", "false", '"s"', '"aten.foo"',
    "dense<1.0>", "dense<[1.0, 2.0]>", "dense_resource<blob>", "loc(unknown)", "{min_val = 1}",
    "affine_map<()[s0] -> (s0, 3)>", '#flow.parameter.named<"m"::"w">', "\n", "\n", "\n",
]  # fmt: skip
_TOKENS = _TYPES + _OPS + _VALUES + _PUNCT

_DTYPES = ["f32"] * 8 + ["f16", "bf16", "si64", "f64", "unk"]
_DIMS = ["1", "2", "3", "4", "?"]


@st.composite
def vtensor(draw: st.DrawFn, shape: list[str] | None = None, dims: list[str] = _DIMS) -> str:
    """A `!torch.vtensor` type: mostly ranked f32 with dims from `dims`, sometimes odd."""
    if shape is None and draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(["!torch.vtensor<*,f32>", "!torch.vtensor", "!torch.int"]))
    if shape is None:
        shape = draw(st.lists(st.sampled_from(dims), max_size=4))
    dtype = draw(st.sampled_from(_DTYPES)) if draw(st.integers(0, 5)) == 0 else "f32"
    return f"!torch.vtensor<[{','.join(shape)}],{dtype}>"


def _shape_of(ty: str) -> list[str] | None:
    if not ty.startswith("!torch.vtensor<[") or not ty.endswith(",f32>"):
        return None
    inner = ty[len("!torch.vtensor<[") : -len("],f32>")]
    return inner.split(",") if inner else []


def _guess_result(op: str, operands: list[list[str] | None]) -> list[str] | None:
    """The result shape torch would give (a rough version of its rules), or None."""
    tensors = [s for s in operands if s is not None]
    if op in ("torch.aten.relu", "torch.aten.add.Tensor") and tensors:
        return tensors[0]
    if op in ("torch.aten.t", "torch.aten.transpose.int", "torch.aten.permute") and tensors:
        t = tensors[0]
        return [*t[:-2], t[-1], t[-2]] if len(t) >= 2 else None
    if op == "torch.aten.linear" and len(tensors) >= 2 and tensors[0] and len(tensors[1]) == 2:
        return [*tensors[0][:-1], tensors[1][0]]
    if op.endswith(("addmm", "baddbmm", "addbmm")) and len(tensors) >= 3:
        tensors = tensors[1:3]
    if op == "torch.aten.scaled_dot_product_attention" and len(tensors) >= 3:
        return [*tensors[0][:-1], tensors[2][-1]] if tensors[0] and tensors[2] else None
    if len(tensors) < 2 or not tensors[0] or not tensors[1]:
        return None
    a, b = tensors[0], tensors[1]
    rows = [a[-2]] if len(a) > 1 else []
    cols = [b[-1]] if len(b) > 1 else []
    batch = a[:-2] if len(a[:-2]) >= len(b[:-2]) else b[:-2]
    result = [*batch, *rows, *cols]
    return result[1:] if op == "torch.aten.addbmm" else result


# The roles of each op's operands: T a tensor, I an int, S a number, N none, B a bool,
# L a list of ints. Ops get their usual operands most of the time, anything otherwise.
_SIGNATURES = {
    "torch.aten.mm": ["TT"], "torch.aten.bmm": ["TT"], "torch.aten.mv": ["TT"],
    "torch.aten.matmul": ["TT"], "torch.aten.linear": ["TT", "TTT", "TTN"],
    "torch.aten.addmm": ["TTTSS"], "torch.aten.baddbmm": ["TTTSS"], "torch.aten.addbmm": ["TTTSS"],
    "torch.aten.scaled_dot_product_attention": ["TTTNSBN", "TTTNSBNB", "TTTTSBS"],
    "torch.aten.t": ["T"], "torch.aten.transpose.int": ["TII"], "torch.aten.permute": ["TL"],
    "torch.aten.relu": ["T"], "torch.aten.add.Tensor": ["TTS"],
}  # fmt: skip
_SCALARS = {
    "I": ["%int0", "%int1", "%int-1", "%int-2"],
    "S": ["%int1", "%float1", "%float05"],
    "N": ["%none"],
    "B": ["%false", "%true"],
    "L": ["%perm10", "%perm021", "%int1"],
}
_PRELUDE = """  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %int-1 = torch.constant.int -1
  %int-2 = torch.constant.int -2
  %float1 = torch.constant.float 1.000000e+00
  %float05 = torch.constant.float 5.000000e-01
  %none = torch.constant.none
  %false = torch.constant.bool false
  %true = torch.constant.bool true
  %perm10 = torch.prim.ListConstruct %int1, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %perm021 = torch.prim.ListConstruct %int0, %int2, %int1 : (!torch.int, !torch.int, !torch.int) -> !torch.list<int>
"""
_SCALAR_TYPES = {
    "%int0": "!torch.int", "%int1": "!torch.int", "%int2": "!torch.int", "%int-1": "!torch.int",
    "%int-2": "!torch.int", "%float1": "!torch.float", "%float05": "!torch.float",
    "%none": "!torch.none", "%false": "!torch.bool", "%true": "!torch.bool",
    "%perm10": "!torch.list<int>", "%perm021": "!torch.list<int>",
}  # fmt: skip


@st.composite
def typed_function(draw: st.DrawFn) -> str:
    """A function of matmul-family ops on tensors of random shapes: well-formed at the syntax
    level (each value used at its type), so the verifiers and the passes see every op."""
    env = dict(_SCALAR_TYPES)
    params = []
    # Few distinct sizes per function, so that K dims often agree.
    dims = draw(st.lists(st.sampled_from(_DIMS), min_size=1, max_size=3, unique=True))
    for i, ty in enumerate(draw(st.lists(vtensor(dims=dims), min_size=1, max_size=4))):
        params.append(f"%a{i}: {ty}")
        env[f"%a{i}"] = ty
    tensors = [f"%a{i}" for i in range(len(params))]
    lines = []
    for i in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(sorted(_SIGNATURES)))
        roles = draw(st.sampled_from(_SIGNATURES[op]))
        if draw(st.integers(0, 9)) == 0:
            roles = draw(st.text(st.sampled_from("TISNBL"), max_size=6))
        operands = [
            draw(st.sampled_from(tensors if role == "T" else _SCALARS[role])) for role in roles
        ]
        types = [env[v] for v in operands]
        shape = _guess_result(op, [_shape_of(t) for t in types])
        result = draw(vtensor(shape if draw(st.integers(0, 4)) else None, dims))
        line = f"  %v{i} = {op}"
        if operands:
            line += f" {', '.join(operands)} : {', '.join(types)} ->"
        else:
            line += " :"
        lines.append(f"{line} {result}\n")
        env[f"%v{i}"] = result
        tensors.append(f"%v{i}")
    ret = tensors[-1]
    body = "".join(lines)
    # Only the constants used (each one parsed costs time in every example).
    prelude = [
        line
        for line in _PRELUDE.splitlines(keepends=True)
        if line.split()[0] in body or (line.split()[0] in ("%int0", "%int2") and "%perm" in body)
    ]
    return (
        f"func.func @main({', '.join(params)}) -> {env[ret]} {{\n{''.join(prelude)}{body}"
        f"  return {ret} : {env[ret]}\n}}\n"
    )


def token_soup() -> st.SearchStrategy[str]:
    """Random tokens, or a typed function with random tokens spliced in, or a typed function."""
    soup = st.lists(st.sampled_from(_TOKENS), max_size=40).map(" ".join)

    def splice(case: tuple[str, str, int]) -> str:
        function, tokens, at = case
        lines = function.splitlines(keepends=True)
        at %= len(lines)
        return "".join([*lines[:at], tokens, "\n", *lines[at:]])

    spliced = st.tuples(typed_function(), soup, st.integers(0, 100)).map(splice)
    return st.one_of(soup, spliced, typed_function(), typed_function())


@fuzz_settings(80)
@given(token_soup())
def test_token_soup(text):
    check_frontend(text)


@fuzz_settings(40)
@given(st.text(max_size=60))
def test_pass_pipeline_specs(spec):
    """`-p` text: a pipeline, or a `MipscError` naming what is wrong."""
    try:
        build_pipeline(spec)
    except MipscError as err:
        _assert_rendered(err, located=False)


# --------------------------------------------------------------------------------------------
# Through the command line


@fuzz_settings(20)
@given(st.one_of(mutated().map(lambda case: case[1]), token_soup()), st.booleans())
def test_cli_opt_exit_codes(text, with_passes):
    """`mipsc opt`: exit 0 with a module, or exit 1 with `error:`; never a traceback or a bug."""
    args = ["opt", "-"] + (["-p", COMPILE_PIPELINE] if with_passes else [])
    with watchdog(TIMEOUT_S):
        result = CliRunner().invoke(main, args, input=text)
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and "internal error" not in result.output
    if result.exit_code == 1:
        assert "error: " in result.output
