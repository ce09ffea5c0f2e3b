"""torch.export's "Constraints violated" error, said in the words of the front door that made
the dims dynamic.

torch.export refuses a dynamic dim the module does not work for at every size with a text
written for its own API ("You marked input0_dim1 as dynamic but your code specialized it ...
If you're using mark_dynamic, either remove it ...", "Suggested fixes: n = Dim('n', min=5)").
`dim_needs` reads that text into what each dim needs (a constant, another dim's size, a
bound, a multiple, a guard), by the Dim's name; a `DimWords` of the front door (the Python
API's dynamic_shapes, the command line's --dynamic-dim, torch.compile's graph inputs) then
names the dim and the fix in the user's own terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mipsc.diagnostics import MipscError, input_name

_VIOLATED = re.compile(r"Constraints violated \(([^)]*)\)!")
_CONSTANT = re.compile(
    r"You marked (\w+) as dynamic but your code specialized it to be a constant \((-?\d+)\)"
)
_EQUAL = re.compile(r"The values of (\w+) = (\S+) and (\w+) = (\S+) must always be equal")
_RELATED = re.compile(
    r"The values of (\w+) = (\S+) must always be related to the values of (\w+) = (\S+) by "
    r"\w+ = (.+?)\.?$"
)
_GUARD = re.compile(
    r"Not all values of (\w+) = (\S+) in the specified range.*? satisfy the generated guard "
    r"(.+?)\.?$"
)
_BOUNDS_FIX = re.compile(r"^Dim\('\w+'(?:, min=(\d+))?(?:, max=(\d+|oo))?\)$")
_MULTIPLE_FIX = re.compile(r"^(\d+)\*_\w+$")


@dataclass(frozen=True)
class DimNeed:
    """What torch.export found one dynamic dim needs."""

    name: str
    """The dim's name in dynamic_shapes (a Dim's name, or the name given as a string)."""
    kind: Literal["constant", "equal", "related", "bounds", "multiple", "guard"]
    """`constant` (value: the size), `equal` (other: the dim it must equal), `related`
    (value: its size as an expression of `other`'s name), `bounds` (value: `min..max`, either
    may be empty), `multiple` (value: the factor), `guard` (value: torch's condition, sizes
    written as dim names)."""
    value: str = ""
    other: str = ""


def is_constraint_violation(err: BaseException) -> bool:
    return _VIOLATED.search(str(err)) is not None


def dim_needs(text: str) -> list[DimNeed]:
    """What each dim torch.export's constraint-violation `text` names needs, one per dim
    (its clearest: a suggested bound or multiple over a raw guard), in torch's order."""
    items, fixes = _items_and_fixes(text)
    sources = _sources(items)
    found: dict[str, DimNeed] = {}
    for item in items:
        need = _need_of(item, sources, fixes)
        if need is None:
            continue
        earlier = found.get(need.name)
        if earlier is None or (earlier.kind == "guard" and need.kind != "guard"):
            found[need.name] = need
    return list(found.values())


def _items_and_fixes(text: str) -> tuple[list[str], dict[str, str]]:
    """torch's `  - ...` items, and its suggested fixes by dim name (`n = Dim('n', min=5)`)."""
    body, _, fix_text = text.partition("Suggested fixes:")
    items = [line.strip()[2:] for line in body.splitlines() if line.strip().startswith("- ")]
    fixes: dict[str, str] = {}
    for line in fix_text.strip().splitlines():
        name, equals, value = line.strip().partition(" = ")
        if not equals or not name.isidentifier():
            break
        fixes[name] = value
    return items, fixes


def _sources(items: Iterable[str]) -> dict[str, str]:
    """torch's source expressions (`L['x'].size()[1]`) by the dim name they stand for."""
    sources: dict[str, str] = {}
    for item in items:
        if found := _EQUAL.search(item) or _RELATED.search(item):
            sources[found[2]], sources[found[4]] = found[1], found[3]
        elif found := _GUARD.search(item):
            sources[found[2]] = found[1]
    return sources


def _need_of(item: str, sources: dict[str, str], fixes: dict[str, str]) -> DimNeed | None:
    if found := _CONSTANT.search(item):
        return DimNeed(found[1], "constant", found[2])
    if found := _EQUAL.search(item):
        return DimNeed(found[1], "equal", other=found[3])
    if found := _RELATED.search(item):
        return DimNeed(found[1], "related", found[5], found[3])
    if found := _GUARD.search(item):
        return _fixed_need(found[1], fixes.get(found[1], "")) or DimNeed(
            found[1], "guard", _named(found[3], sources)
        )
    return None


def _fixed_need(name: str, fix: str) -> DimNeed | None:
    """The need torch's suggested fix for `name` says plainly: bounds or a multiple."""
    if found := _BOUNDS_FIX.match(fix):
        low, high = found[1] or "", "" if found[2] in (None, "oo") else found[2]
        return DimNeed(name, "bounds", f"{low}..{high}") if low or high else None
    if found := _MULTIPLE_FIX.match(fix):
        return DimNeed(name, "multiple", found[1])
    return None


def _named(guard: str, sources: dict[str, str]) -> str:
    """A guard with torch's source expressions written as dim names."""
    for source, name in sorted(sources.items(), key=lambda p: -len(p[0])):
        guard = guard.replace(source, name)
    return guard.replace(" and ", ", ").replace("IntInfinity()", "any size")


class DimWords:
    """How the Python API's user names a dynamic dim and its fixes: the inputs in order, each
    with its `{dim: name}` of dynamic_shapes. Other front doors override the methods."""

    def __init__(self, places: dict[str, list[str]]) -> None:
        self.places = places
        """Where each dim name is, said for this user (`dim 1 of input 1 (%arg0)`)."""

    def where(self, name: str) -> str:
        said = self.places.get(name)
        return " and ".join(said) if said else f"the dim torch calls '{name}'"

    def unmark(self, name: str) -> str:
        return "leave it out of dynamic_shapes (it then keeps the example input's size)"

    def one_name(self, name: str, other: str) -> str:
        return f"give both one name (or one Dim) in dynamic_shapes (e.g. '{other}' for both)"

    def derived(self, name: str, expression: str, other: str) -> str:
        return (
            f"use torch.export.Dim objects for both (not names): {other} = "
            f"torch.export.Dim('{other}'), and {expression} for {self.where(name)}"
        )

    def bounds(self, name: str, low: str, high: str) -> str:
        limits = ", ".join(f for f in (low and f"min={low}", high and f"max={high}") if f)
        return f"give it as torch.export.Dim('{name}', {limits}) in dynamic_shapes"

    def multiple(self, name: str, factor: str) -> str:
        return (
            f"give it as a multiple of a Dim: {factor} * torch.export.Dim('{name}_{factor}') "
            "in dynamic_shapes"
        )

    def bigger_example(self, name: str) -> str:
        return f"give an example input in which it is at least 2, or {self.unmark(name)}"


class CliWords(DimWords):
    """`mipsc compile --dynamic-dim INPUT:DIM[=NAME]`'s terms: each dim by its flag. The flag
    gives no bounds and no derived sizes: for those, what it can do (leave the dim static),
    or mipsc.compile, whose dynamic_shapes take torch.export.Dim objects."""

    def __init__(self, flags: dict[str, list[tuple[int, int, str]]]) -> None:
        said = "dim {1} of {0} (--dynamic-dim {2})"
        super().__init__(
            {
                name: [said.format(input_name(i), dim, spec) for i, dim, spec in at]
                for name, at in flags.items()
            }
        )
        self.flags = flags
        """(input, dim, the flag's value) of each dim name, from 0."""

    def _drop(self, *names: str) -> str:
        specs = [f"--dynamic-dim {spec}" for name in names for *_, spec in self.flags.get(name, [])]
        return "drop " + " and ".join(specs or ["that --dynamic-dim"])

    def unmark(self, name: str) -> str:
        return f"{self._drop(name)} (the dim then keeps its --example-input size)"

    def one_name(self, name: str, other: str) -> str:
        same = [f"--dynamic-dim {i}:{dim}={other}" for i, dim, _ in self.flags.get(name, [])]
        return f"give both one NAME ({' '.join(same)}, as the other dim's)"

    def derived(self, name: str, expression: str, other: str) -> str:
        return (
            f"--dynamic-dim cannot give a size derived from another: {self._drop(name, other)} "
            "(both static), or compile from Python with mipsc.compile, whose dynamic_shapes "
            f"take torch.export.Dim objects ({other} = Dim('{other}'), then {expression} for "
            "this dim)"
        )

    def bounds(self, name: str, low: str, high: str) -> str:
        limits = ", ".join(f for f in (low and f"min={low}", high and f"max={high}") if f)
        return (
            f"--dynamic-dim gives no bounds: {self.unmark(name)}, or compile from Python "
            f"with mipsc.compile and torch.export.Dim('{name}', {limits}) in dynamic_shapes"
        )

    def multiple(self, name: str, factor: str) -> str:
        return (
            f"--dynamic-dim cannot say so: {self.unmark(name)}, or compile from Python "
            f"with mipsc.compile and {factor} * torch.export.Dim(...) in dynamic_shapes"
        )

    def bigger_example(self, name: str) -> str:
        return f"give an --example-input in which it is at least 2, or {self._drop(name)}"


def explain(need: DimNeed, words: DimWords, module: str) -> str:
    """One dim's need and its fix, in `words`' terms: `<where> cannot be dynamic: ...`."""
    where, name = words.where(need.name), need.name
    if need.kind == "constant" and need.value in ("0", "1"):
        return (
            f"{where} cannot be dynamic: it is {need.value} in the example input, a size "
            f"torch.export takes as a constant: {words.bigger_example(name)}"
        )
    return f"{where} cannot be dynamic: {module} {_needs(need, words)}: {_fix(need, words)}"


def _needs(need: DimNeed, words: DimWords) -> str:
    low, _, high = need.value.partition("..")
    span = f"from {low} to {high}" if low and high else f"at least {low}" if low else ""
    return {
        "constant": f"needs it to be {need.value}",
        "equal": f"needs it equal to {words.where(need.other)}",
        "related": f"needs it to be {need.value}, {need.other} being {words.where(need.other)}",
        "bounds": f"needs it to be {span or f'at most {high}'}",
        "multiple": f"needs it to be a multiple of {need.value}",
    }.get(
        need.kind,
        f"works only for some of its sizes (torch.export needs {need.value}, {need.name} "
        "being its size)",
    )


def _fix(need: DimNeed, words: DimWords) -> str:
    name, value = need.name, need.value
    if need.kind == "equal":
        return words.one_name(name, need.other)
    if need.kind == "related":
        return words.derived(name, value, need.other)
    if need.kind == "bounds":
        return words.bounds(name, *value.split(".."))
    if need.kind == "multiple":
        return words.multiple(name, value)
    if need.kind == "guard":
        return f"{words.unmark(name)}, or change the model so that it works for every size"
    return words.unmark(name)


class DynamicDimError(MipscError):
    """torch.export refused dynamic dims: what each needs (`needs`), said for the Python API
    (`said_with` says it for another front door)."""

    def __init__(self, module: str, needs: Sequence[DimNeed], words: DimWords, first: str) -> None:
        self.module, self.needs, self.torch_said = module, list(needs), first
        lines = [explain(need, words, module) for need in needs]
        super().__init__(lines[0], notes=[*lines[1:], f"torch.export said: {first}"])

    def said_with(self, words: DimWords, module: str | None = None) -> DynamicDimError:
        """The same needs said in `words` (and of `module`, if given)."""
        return DynamicDimError(module or self.module, self.needs, words, self.torch_said)


def places_of(dynamic_shapes: Any) -> dict[str, list[str]]:
    """Where each dim name of a dynamic_shapes is: one `{dim: name or Dim}` per input in
    order (`dim 1 of input 1 (%arg0)`), or a dict by argument name (`dim 1 of x`)."""
    entries: Iterable[tuple[Any, Any]]
    if isinstance(dynamic_shapes, dict):
        entries = dynamic_shapes.items()
    elif isinstance(dynamic_shapes, list | tuple):
        entries = enumerate(dynamic_shapes)
    else:
        return {}
    places: dict[str, list[str]] = {}
    for key, spec in entries:
        label = input_name(key) if isinstance(key, int) else key
        dims: Iterable[tuple[Any, Any]] = spec.items() if isinstance(spec, dict) else ()
        dims = enumerate(spec) if isinstance(spec, list | tuple) else dims
        for dim, named in dims:
            name = named if isinstance(named, str) else getattr(named, "__name__", None)
            if name:
                places.setdefault(name, []).append(f"dim {dim} of {label}")
    return places


def dynamic_dim_error(err: BaseException, module: str, words: DimWords) -> DynamicDimError | None:
    """torch.export's constraint violation `err` as a DynamicDimError said in `words`, or
    None when it is another error (or one whose items this does not read)."""
    if not is_constraint_violation(err):
        return None
    needs = dim_needs(str(err))
    if not needs:
        return None
    first = next(line for line in str(err).splitlines() if _VIOLATED.search(line))
    return DynamicDimError(module, needs, words, first.split("!")[0])
