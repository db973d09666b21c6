"""Code trees of exported source, the unification of many calls of a block into one class, and
the layout of the text.

An instance tree is what one IR node exports to: :class:`~archdsl.layers.base.Call` nodes (a
layer kind's ``source``), :class:`Struct` nodes (the structures the exporter writes itself) and
:class:`Loop` nodes, with Python literals as leaves. :func:`merge` lays the trees of all the calls
of a block over each other: where they agree the class has the literal, where a literal varies
it has a :class:`Slot` (a constructor parameter), where a part is present in some calls only a
:class:`Maybe`. Trees that cannot be laid over each other belong to different classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from ..layers.base import Call, Helper, same_value

WIDTH = 100  # the project's line length: the exported file passes its ruff config


class Mismatch(Exception):
    """Two trees differ in structure, not only in literal values."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # the value of a part in a call where the part is absent


@dataclass
class Struct:
    """A structure the exporter writes itself: ``kind`` says how, ``fields`` are its named
    parts; the keys in ``optional`` may be absent from some calls (a residual's shortcut);
    ``helpers`` are the helpers its text uses beside those of its parts (``drop_path``)."""

    kind: str
    fields: dict[str, Any]
    optional: frozenset[str] = frozenset()
    helpers: tuple[Helper, ...] = ()


@dataclass
class Loop:
    """``*[item for _ in range(count)]`` inside an ``nn.Sequential``: identical repeats."""

    count: Any
    item: Any


@dataclass
class Slot:
    """A literal of a class: one value per call (MISSING where its part is absent). ``expr``
    is the parameter expression it is written as when the values vary."""

    values: list[Any]
    hint: str
    expr: str | None = None

    @property
    def present(self) -> list[Any]:
        return [v for v in self.values if v is not MISSING]

    @property
    def constant(self) -> bool:
        first = self.present[0]
        return all(same_value(v, first) for v in self.present)


@dataclass
class Maybe:
    """A part present in some calls only; ``flag`` holds True/False per call."""

    flag: Slot
    node: Any


Tree = Union[Call, Struct, Loop, Any]


def is_node(x: Any) -> bool:
    return isinstance(x, (Call, Struct, Loop))


def skeleton(t: Tree) -> str:
    """The structure of a tree with its literals erased: equal skeletons always merge."""
    if isinstance(t, Call):
        kw = ",".join(f"{k}={skeleton(v)}" for k, v in t.kwargs.items())
        return f"{t.callee}({','.join(skeleton(a) for a in t.args)};{kw})"
    if isinstance(t, Struct):
        return f"<{t.kind}:" + ",".join(f"{k}={skeleton(v)}" for k, v in t.fields.items()) + ">"
    if isinstance(t, Loop):
        return f"[{skeleton(t.item)}]"
    return "_"


def merge(trees: list[Tree], hint: str = "value") -> Tree:
    """One template for trees of the same structure (MISSING entries: an absent part)."""
    present = [t for t in trees if t is not MISSING]
    first = present[0]

    def column(get: Any) -> list[Any]:
        return [MISSING if t is MISSING else get(t) for t in trees]

    if isinstance(first, Call):
        if not all(isinstance(t, Call) and t.callee == first.callee and len(t.args) == len(
                first.args) and list(t.kwargs) == list(first.kwargs) for t in present):
            raise Mismatch
        names = first.arg_names
        args = tuple(merge(column(lambda t, i=i: t.args[i]),
                           names[i] if i < len(names) else f"{first.callee}:{i}")
                     for i in range(len(first.args)))
        kwargs = {k: merge(column(lambda t, k=k: t.kwargs[k]), k) for k in first.kwargs}
        return Call(first.callee, args, kwargs, first.defaults, first.helpers, names)
    if isinstance(first, Struct):
        if not all(isinstance(t, Struct) and t.kind == first.kind for t in present):
            raise Mismatch
        keys: list[str] = []
        for t in present:
            keys += [k for k in t.fields if k not in keys]
        fields: dict[str, Any] = {}
        for k in keys:
            col = column(lambda t, k=k: t.fields.get(k, MISSING))
            there = [t for t in present if k in t.fields]
            if len(there) == len(present):
                fields[k] = merge(col, k)
            elif k in first.optional:
                flag = Slot([MISSING if t is MISSING else k in t.fields for t in trees], k)
                fields[k] = Maybe(flag, merge(col, k))
            else:
                raise Mismatch
        helpers = tuple(dict.fromkeys(h for t in present for h in t.helpers))
        return Struct(first.kind, fields, first.optional, helpers)
    if isinstance(first, Loop):
        if not all(isinstance(t, Loop) for t in present):
            raise Mismatch
        return Loop(merge(column(lambda t: t.count), "repeats"), merge(column(lambda t: t.item)))
    if any(is_node(t) for t in present):
        raise Mismatch
    return Slot(list(trees), "value" if ":" in hint else hint)


def group(trees: list[Tree]) -> list[list[int]]:
    """Indices of the trees that merge into one class each, in order of first appearance."""
    by_skeleton: dict[str, list[int]] = {}
    for i, t in enumerate(trees):
        by_skeleton.setdefault(skeleton(t), []).append(i)
    groups: list[list[list[int]]] = []  # each group: its skeleton classes
    for members in by_skeleton.values():
        for g in groups:
            try:
                merge([trees[c[0]] for c in g] + [trees[members[0]]])
            except Mismatch:
                continue
            g.append(members)
            break
        else:
            groups.append([members])
    return [sorted(i for c in g for i in c) for g in groups]


def slots(t: Any) -> list[Slot]:
    """Every slot of a template, in source order (flags of optional parts first)."""
    if isinstance(t, Slot):
        return [t]
    if isinstance(t, Maybe):
        return [t.flag, *slots(t.node)]
    if isinstance(t, Call):
        return [s for a in (*t.args, *t.kwargs.values()) for s in slots(a)]
    if isinstance(t, Struct):
        return [s for v in t.fields.values() for s in slots(v)]
    if isinstance(t, Loop):
        return [*slots(t.count), *slots(t.item)]
    return []


# --- naming the parameters of a class ---------------------------------------------------------


def _matches(values: list[Any], candidate: list[Any]) -> bool:
    return all(v is MISSING or same_value(v, c) for v, c in zip(values, candidate, strict=True))


def name_slot(slot: Slot, env: dict[str, list[Any]]) -> str | None:
    """An expression over the candidate names ``env`` (each with one value per call) that gives
    the slot's values in every call: ``c7``, ``4 * c``, ``n - 1``, ``pool == 'avg'``."""
    values = slot.values
    for name, cand in env.items():
        if _matches(values, cand):
            return name
    present = slot.present
    if all(isinstance(v, (list, tuple)) for v in present):
        return _name_items(slot, env)
    if all(isinstance(v, bool) for v in present):
        for name, cand in env.items():
            if all(isinstance(c, bool) for c in cand) and _matches(values, [not c for c in cand]):
                return f"not {name}"
            if all(isinstance(c, (str, type(None))) for c in cand):
                for word in dict.fromkeys(cand):
                    test = ("is", "is not") if word is None else ("==", "!=")
                    if _matches(values, [c == word for c in cand]):
                        return f"{name} {test[0]} {literal(word)}"
                    if _matches(values, [c != word for c in cand]):
                        return f"{name} {test[1]} {literal(word)}"
        return None
    if not all(type(v) is int for v in present):
        return None
    for name, cand in env.items():
        if not all(type(c) is int for c in cand):
            continue
        for k in range(2, 9):
            if _matches(values, [k * c for c in cand]):
                return f"{k} * {name}"
        for k in (1, 2, 3):
            if _matches(values, [c - k for c in cand]):
                return f"{name} - {k}"
            if _matches(values, [c + k for c in cand]):
                return f"{name} + {k}"
        for k in range(2, 9):
            if all(c % k == 0 for c in cand) and _matches(values, [c // k for c in cand]):
                return f"{name} // {k}"
    return None


def _name_items(slot: Slot, env: dict[str, list[Any]]) -> str | None:
    """A list or tuple of one length in every call, named item by item: ``[c // 2, c // 2]``."""
    present = slot.present
    size = len(present[0])
    if any(len(v) != size or type(v) is not type(present[0]) for v in present):
        return None
    items = []
    for i in range(size):
        item = Slot([MISSING if v is MISSING else v[i] for v in slot.values], slot.hint)
        expr = literal(item.present[0]) if item.constant else name_slot(item, env)
        if expr is None:
            return None
        items.append(expr)
    if isinstance(present[0], list):
        return f"[{', '.join(items)}]"
    return f"({items[0]},)" if size == 1 else f"({', '.join(items)})"


# --- layout -----------------------------------------------------------------------------------


@dataclass
class Group:
    """Bracketed text that breaks into one item per line when it does not fit."""

    open: str
    items: list[tuple[str, Doc]] = field(default_factory=list)  # (prefix, item)
    close: str = ")"
    sep: str = ", "  # "": items joined by spaces, no commas (a comprehension)


Doc = Union[str, Group]


def flat(d: Doc) -> str:
    if isinstance(d, str):
        return d
    joiner = d.sep if d.sep else " "
    return d.open + joiner.join(p + flat(x) for p, x in d.items) + d.close


def layout(d: Doc, indent: int, used: int, tail: int = 0) -> str:
    """``d`` as text starting at column ``used`` on a line indented by ``indent``, followed by
    ``tail`` more characters."""
    text = flat(d)
    if isinstance(d, str) or used + len(text) + tail <= WIDTH or not d.items:
        return text
    inner = indent + 4
    comma = "," if d.sep else ""
    only = d.items[0][1] if len(d.items) == 1 and not d.items[0][0] else None
    if isinstance(only, Group) and only.items and d.sep:
        # One bracketed argument: hug it, ``Concat(OrderedDict(`` ... ``))``.
        hugged = Group(d.open + only.open, only.items, only.close + d.close, only.sep)
        return layout(hugged, indent, used, tail)
    lines = [d.open]
    for prefix, item in d.items:
        body = layout(item, inner, inner + len(prefix), len(comma))
        lines.append(" " * inner + prefix + body + comma)
    lines.append(" " * indent + d.close)
    return "\n".join(lines)


def literal(v: Any) -> str:
    """Python source of a literal, strings in double quotes as the project writes them."""
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def literal_doc(v: Any) -> Doc:
    """A literal; long lists (a connection table) break like calls."""
    if isinstance(v, (list, tuple)) and len(repr(v)) > 40:
        close = "]" if isinstance(v, list) else ")"
        return Group("[" if isinstance(v, list) else "(", [("", literal_doc(x)) for x in v], close)
    return literal(v)
