"""Choices in a spec: the space is the spec.

A value anywhere a knob could reach may be a choice, written as a plain YAML mapping:

* ``{choice: [a, b, c]}`` -- categorical;
* ``{int: [low, high], step: 2, log: false}`` -- an integer range (ends included);
* ``{float: [low, high], log: true}`` -- a float range;

each optionally with ``default:`` (the value the space has when read as a spec; the first
choice or the low end otherwise). A node may be a choice between named alternatives:
``{choice: {plain: [...], residual: [...]}, name: stage2}``; a choice written inside an
alternative exists only when that alternative is chosen.

This module reads the choices of the top file's YAML tree and rewrites the tree into a plain
spec whose knobs carry them, so that the rest of archdsl (parser, resolver, cost, cache by knob
values) needs no change: a choice in ``params`` is that knob; an inline choice becomes a knob
named after its module path and field (``stage2.c`` is knob ``stage2_c``); an alternative
becomes a sequence of its alternatives, each kept ``when`` its knob names it. The repeats of
``xN`` and every call of a block share the decisions written inside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ErrorSink, Loc, SpecError
from .layers import KINDS
from .names import UniqueNames, name_problem
from .source import YMap, YNode, YScalar, YSeq
from .suggest import did_you_mean

CHOICE_KEYS = ("choice", "int", "float")
CHOICE_OPTIONS = {"choice": ("default",), "int": ("step", "log", "default"),
                  "float": ("step", "log", "default")}
NODE_META = ("name", "repeat", "when", "from")
ALT_OPTIONS = ("default", "name", "repeat", "when")
MERGES = ("concat", "add", "mul")
BLOCK_META = ("args", "doc", "figure")
# Top-level keys whose values are not the network: a choice there means nothing.
NO_CHOICE_KEYS = ("name", "cites", "description", "input", "include", "reference")


@dataclass
class Choice:
    """One dimension of a space, as written in the spec."""

    name: str  # knob name (params), module path + field (inline), or module path (alternative)
    knob: str  # the knob that carries the decision ('' for training knobs: not a network knob)
    kind: str  # categorical | int | float
    loc: Loc
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    default: Any = None
    condition: tuple[str, tuple[Any, ...]] | None = None
    architecture: bool = True
    alternative: bool = False  # a choice between nodes (its choices are the alternatives' names)
    node: YNode | None = field(default=None, repr=False)  # what replaced it in the tree

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of this choice's values."""
        if self.kind == "categorical":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        assert self.low is not None and self.high is not None
        if not self.low <= value <= self.high:
            return False
        if self.step and self.kind == "int":
            return (value - self.low) % self.step == 0
        if self.step:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-9
        return True

    def size(self) -> float:
        """How many values (math.inf for a continuous float range)."""
        if self.kind == "categorical":
            return len(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return int((self.high - self.low) // (self.step or 1)) + 1
        if self.step:
            return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return math.inf

    def values(self) -> list[Any]:
        """Every value, in order (finite choices only)."""
        if self.kind == "categorical":
            return list(self.choices)
        assert self.low is not None
        n = self.size()
        if n == math.inf:
            raise ValueError(f"{self.name} is a continuous range")
        step = self.step or 1
        if self.kind == "int":
            return [int(self.low + i * step) for i in range(int(n))]
        return [self.low + i * step for i in range(int(n))]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (
        not isinstance(a, bool) and not isinstance(b, bool)
        and isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b)


def is_choice(y: YNode) -> bool:
    return isinstance(y, YMap) and any(k in y.items for k in CHOICE_KEYS)


def knob_name(name: str) -> str:
    """The knob that carries an inline choice: ``stage2.c`` -> ``stage2_c``."""
    knob = name.replace(".", "_")
    return knob if knob.isidentifier() else f"c_{knob}"


class ChoiceReader:
    """Finds the choices of one file's tree, rewriting each into a knob (see the module doc)."""

    def __init__(self, sink: ErrorSink, blocks: set[str], top: bool) -> None:
        self.sink = sink
        self.blocks = blocks
        self.top = top
        self.choices: list[Choice] = []
        self.knobs: dict[str, Choice] = {}  # synthetic knob -> its choice

    # --- the file ----------------------------------------------------------------------------
    def read(self, root: YMap) -> list[Choice]:
        params = root.get("params")
        if isinstance(params, YMap):
            for name, (kloc, v) in list(params.items.items()):
                if is_choice(v) and self.allowed(v, "params"):
                    choice = self.value_choice(v, name, name, None)
                    if choice is not None:
                        params.items[name] = (kloc, _scalar(choice.default, v.loc))
                else:
                    params.items[name] = (kloc, self.value(v, name, None))
        if isinstance(defaults := root.get("defaults"), YMap):
            for kind, (_, fields) in defaults.items.items():
                if isinstance(fields, YMap):
                    for f, (kloc, v) in list(fields.items.items()):
                        fields.items[f] = (kloc, self.value(v, f"defaults.{kind}.{f}", None))
        if isinstance(blocks := root.get("blocks"), YMap):
            for name, (kloc, ydef) in list(blocks.items.items()):
                blocks.items[name] = (kloc, self.block(name, ydef))
        if isinstance(net := root.get("network"), YSeq):
            self.seq_items(net, "", None, top=True)
        if self.knobs:
            self.add_knobs(root, params)
        return self.choices

    def allowed(self, y: YNode, where: str) -> bool:
        if self.top:
            return True
        self.sink.add(y.loc, f"a choice in {where} of an included library: choices are written "
                             "in the space file (the spec given on the command line)")
        return False

    def refuse(self, y: YNode, where: str) -> None:
        """Report every choice inside ``y``, where none is allowed."""
        if is_choice(y):
            self.sink.add(y.loc, f"a choice is not allowed in {where} (choices go in params, "
                                 "defaults, blocks, network and search.train)")
        elif isinstance(y, YMap):
            for _, v in y.items.values():
                self.refuse(v, where)
        elif isinstance(y, YSeq):
            for v in y.items:
                self.refuse(v, where)

    def add_knobs(self, root: YMap, params: YNode | None) -> None:
        """Put the synthetic knobs first in ``params`` (their values are literal defaults)."""
        if params is not None and not isinstance(params, YMap):
            return  # the document check reports it
        old = params.items if isinstance(params, YMap) else {}
        new: dict[str, tuple[YScalar, YNode]] = {}
        for knob, choice in self.knobs.items():
            if knob in old:
                self.sink.add(choice.loc, f"choice {choice.name!r} is carried by the knob "
                                          f"{knob!r}, which params already has: rename one")
                continue
            new[knob] = (YScalar(knob, choice.loc), _scalar(choice.default, choice.loc))
        new.update(old)
        if isinstance(params, YMap):
            params.items = new
        else:
            root.items["params"] = (YScalar("params", root.loc), YMap(new, root.loc))

    # --- values ------------------------------------------------------------------------------
    def value(self, y: YNode, name: str, cond: tuple | None) -> YNode:
        """A value with every choice inside it replaced by its knob."""
        if is_choice(y):
            if not self.allowed(y, name):
                return y
            choice = self.value_choice(y, name, knob_name(name), cond)
            if choice is None:
                return y
            self.knobs[choice.knob] = choice
            node = YScalar(f"${choice.knob}", y.loc, plain=False)
            choice.node = node
            return node
        if isinstance(y, YMap):
            self.near_miss(y)
            for k, (kloc, v) in list(y.items.items()):
                y.items[k] = (kloc, self.value(v, f"{name}.{k}", cond))
        elif isinstance(y, YSeq):
            y.items = [self.value(v, f"{name}.{i}", cond) for i, v in enumerate(y.items)]
        return y

    def near_miss(self, y: YMap) -> None:
        """``{chioce: [...]}``: a one-key mapping whose key is close to a choice key."""
        if len(y.items) == 1:
            key = next(iter(y.items))
            hint = did_you_mean(key, CHOICE_KEYS)
            if hint and key not in KINDS and key not in self.blocks:
                self.sink.add(y.key_loc(key), f"{key!r} is not a choice key (choice, int, float); "
                                              f"{hint}")

    def value_choice(self, y: YMap, name: str, knob: str,
                     cond: tuple | None) -> Choice | None:
        """Read ``{choice: [...]}``, ``{int: [lo, hi], ...}`` or ``{float: [lo, hi], ...}``."""
        keys = [k for k in CHOICE_KEYS if k in y.items]
        if len(keys) > 1:
            self.sink.add(y.key_loc(keys[1]), f"a choice has one of choice, int, float; found "
                                              f"{' and '.join(keys)}")
            return None
        key = keys[0]
        before = len(self.sink.errors)
        for other in y.items:
            if other != key and other not in CHOICE_OPTIONS[key]:
                known = (key, *CHOICE_OPTIONS[key])
                self.sink.add(y.key_loc(other), f"unknown key {other!r} in a {key} choice (it "
                                                f"takes {', '.join(known)})"
                                                f"{did_you_mean(other, known, sep='; ')}")
        body = y.get(key)
        assert body is not None
        choice = Choice(name, knob, "categorical" if key == "choice" else key, y.loc,
                        condition=cond)
        if key == "choice":
            if isinstance(body, YMap):
                self.sink.add(body.loc, "named alternatives are a choice between nodes; a value "
                                        "is chosen from a list: {choice: [a, b]}")
            elif not isinstance(body, YSeq) or not body.items:
                self.sink.add(body.loc, "choice takes a non-empty list of values, e.g. "
                                        "{choice: [16, 32, 64]}")
            else:
                values = [self.literal(v) for v in body.items]
                for i, v in enumerate(values):
                    if any(_same(v, w) for w in values[:i]):
                        self.sink.add(body.items[i].loc, f"{v!r} is listed twice")
                choice.choices = tuple(values)
        else:
            self.range(choice, key, y, body)
        if len(self.sink.errors) > before:
            return None
        if (yd := y.get("default")) is not None:
            choice.default = self.literal(yd)
            if not choice.contains(choice.default):
                self.sink.add(yd.loc, f"default {choice.default!r} is not one of the choice's "
                                      f"values")
                return None
        else:
            choice.default = choice.choices[0] if choice.choices else (
                int(choice.low) if key == "int" else choice.low)
        return choice if self.register(choice) else None

    def register(self, choice: Choice) -> bool:
        """Keep a choice; two with one name (a block's ``unit.c`` and a node named ``unit``)
        would be one dimension by accident, so the second is refused."""
        for other in self.choices:
            if other.name == choice.name or (choice.knob and other.knob == choice.knob):
                self.sink.add(choice.loc, f"a second choice named {choice.name!r} (knob "
                                          f"{choice.knob!r}; the first is at {other.loc}): "
                                          "name the node differently")
                return False
        self.choices.append(choice)
        return True

    def range(self, choice: Choice, key: str, y: YMap, body: YNode) -> None:
        if not (isinstance(body, YSeq) and len(body.items) == 2):
            self.sink.add(body.loc, f"{key} takes [low, high], e.g. {{{key}: [1, 4]}}")
            return
        ends = [self.literal(v) for v in body.items]
        want = int if key == "int" else (int, float)
        for v, yv in zip(ends, body.items, strict=True):
            if isinstance(v, bool) or not isinstance(v, want) or (
                    isinstance(v, float) and not math.isfinite(v)):
                self.sink.add(yv.loc, f"{key} range: {v!r} is not "
                                      f"{'an integer' if key == 'int' else 'a finite number'}")
                return
        low, high = ends
        if low > high:
            self.sink.add(body.loc, f"{key} range [{low}, {high}]: low is above high")
            return
        choice.low, choice.high = low, high
        if (ystep := y.get("step")) is not None:
            step = self.literal(ystep)
            if isinstance(step, bool) or not isinstance(step, want) or not step > 0:
                self.sink.add(ystep.loc, f"step: {step!r} is not a positive "
                                         f"{'integer' if key == 'int' else 'number'}")
                return
            choice.step = step
        if (ylog := y.get("log")) is not None:
            log = self.literal(ylog)
            if not isinstance(log, bool):
                self.sink.add(ylog.loc, f"log: {log!r} is not true or false")
                return
            if log and low <= 0:
                self.sink.add(body.loc, f"a log range needs a positive low end, got {low}")
                return
            if log and choice.step not in (None, 1):
                self.sink.add(ylog.loc, "a log range takes no step (Optuna's rule too)")
                return
            choice.log = log

    def literal(self, y: YNode) -> Any:
        """A choice's value: literal YAML (a number, text, bool, null, or a list of them)."""
        if isinstance(y, YScalar):
            if isinstance(y.value, str) and "$" in y.value:
                self.sink.add(y.loc, f"choices are literal values; {y.value!r} holds an "
                                     "expression (make the knob it reads the choice)")
            return y.value
        if isinstance(y, YSeq):
            return [self.literal(v) for v in y.items]
        self.sink.add(y.loc, "a choice's value is a number, text, true/false or a list, not a "
                             "mapping")
        return None

    # --- nodes -------------------------------------------------------------------------------
    def block(self, name: str, ydef: YNode) -> YNode:
        if not isinstance(ydef, YMap):
            return self.node(ydef, name, None)
        if isinstance(args := ydef.get("args"), YMap):
            for a, (kloc, v) in list(args.items.items()):
                args.items[a] = (kloc, self.value(v, f"{name}.{a}", None))
        if (body := ydef.get("body")) is not None:
            ydef.items["body"] = (ydef.items["body"][0], self.node(body, name, None))
        else:
            self.node_map(ydef, name, None, skip=BLOCK_META)
        return ydef

    def seq_items(self, y: YSeq, path: str, cond: tuple | None, top: bool = False) -> None:
        used = UniqueNames()
        items = []
        for i, item in enumerate(y.items):
            child = used.unique(self.default_name(item, i, top))
            items.append(self.node(item, _join(path, child), cond))
        y.items = items

    def node(self, y: YNode, path: str, cond: tuple | None) -> YNode:
        """A node with every choice in it rewritten; returns what replaces it."""
        if isinstance(y, YSeq):
            self.seq_items(y, path, cond)
        elif isinstance(y, YMap):
            if "choice" in y.items:
                return self.alternatives(y, path, cond)
            self.node_map(y, path, cond)
        return y

    def node_map(self, y: YMap, path: str, cond: tuple | None, skip: tuple = ()) -> None:
        for meta in ("repeat", "when"):
            if (v := y.get(meta)) is not None:
                y.items[meta] = (y.items[meta][0], self.value(v, f"{path}.{meta}", cond))
        for meta in ("name", "from"):
            if (v := y.get(meta)) is not None:
                self.refuse(v, f"'{meta}'")
        keys = [k for k in y.items if k not in NODE_META and k not in skip]
        if len(keys) != 1:
            return  # the parser reports it
        key = keys[0]
        kloc, body = y.items[key]
        if key in CHOICE_KEYS[1:]:
            self.sink.add(kloc.loc, f"a node cannot be an {key} range; a node choice is "
                                    "{choice: {name: node, ...}}")
        elif key == "seq" and isinstance(body, YSeq):
            self.seq_items(body, path, cond)
        elif key in MERGES:
            branches = body.get("branches") if isinstance(body, YMap) else body
            if isinstance(body, YMap) and (split := body.get("split")) is not None:
                body.items["split"] = (body.items["split"][0],
                                       self.value(split, f"{path}.split", cond))
            if isinstance(branches, YSeq):
                used = UniqueNames()
                out = []
                for i, b in enumerate(branches.items):
                    own = b.get("name") if isinstance(b, YMap) else None
                    bname = used.unique(own.value if isinstance(own, YScalar)
                                        and isinstance(own.value, str) else f"branch{i}")
                    out.append(self.node(b, _join(path, bname), cond))
                branches.items = out
        elif key == "residual":
            if isinstance(body, YSeq):
                self.seq_items(body, _join(path, "body"), cond)
            elif isinstance(body, YMap):
                for part in ("body", "shortcut", "after"):
                    if (v := body.get(part)) is not None:
                        body.items[part] = (body.items[part][0],
                                            self.node(v, _join(path, part), cond))
                for part in ("scale", "drop_path"):
                    if (v := body.get(part)) is not None:
                        body.items[part] = (body.items[part][0],
                                            self.value(v, _join(path, part), cond))
        elif key == "aux":
            if isinstance(body, YSeq):
                self.seq_items(body, _join(path, "head"), cond)
            else:
                y.items[key] = (kloc, self.node(body, _join(path, "head"), cond))
        elif isinstance(body, YMap):  # a layer's fields or a block call's arguments
            for f, (fkloc, v) in list(body.items.items()):
                body.items[f] = (fkloc, self.value(v, _join(path, f), cond))

    def alternatives(self, y: YMap, path: str, cond: tuple | None) -> YNode:
        """``{choice: {a: nodes, b: nodes}}`` -> a sequence of the alternatives, each kept when
        the knob names it (module paths: ``path.a.0`` ...)."""
        if not self.allowed(y, path or "the network"):
            return y
        before = len(self.sink.errors)
        for other in y.items:
            if other != "choice" and other not in ALT_OPTIONS:
                self.sink.add(y.key_loc(other), f"unknown key {other!r} in a node choice (it "
                                                f"takes choice, {', '.join(ALT_OPTIONS)})"
                                                f"{did_you_mean(other, ALT_OPTIONS, sep='; ')}")
        alts = y.get("choice")
        if not isinstance(alts, YMap) or not alts.items:
            self.sink.add(alts.loc if alts is not None else y.loc,
                          "a node choice names its alternatives: {choice: {plain: [...], "
                          "residual: [...]}}")
            return y
        for alt in alts.items:
            if (problem := name_problem(alt)) is not None:
                self.sink.add(alts.key_loc(alt), f"alternative {alt!r}: {problem}")
        if not path:
            path = "choice"
        choice = Choice(path, knob_name(path), "categorical", y.loc, choices=tuple(alts.items),
                        condition=cond, alternative=True)
        default = y.get("default")
        choice.default = default.value if isinstance(default, YScalar) else choice.choices[0]
        if default is not None and choice.default not in choice.choices:
            hint = did_you_mean(str(choice.default), choice.choices, sep="; ")
            self.sink.add(default.loc, f"default {choice.default!r} is not an alternative "
                                       f"({', '.join(choice.choices)}){hint}")
        if len(self.sink.errors) > before or not self.register(choice):
            return y
        self.knobs[choice.knob] = choice
        wrappers = []
        for alt, (akloc, anode) in alts.items.items():
            items = anode if isinstance(anode, YSeq) else YSeq([anode], anode.loc)
            self.seq_items(items, _join(path, alt), (choice.name, (alt,)))
            when = YScalar(f"$({choice.knob} == '{alt}')", akloc.loc, plain=False)
            wrappers.append(YMap({"seq": (YScalar("seq", akloc.loc), items),
                                  "name": (YScalar("name", akloc.loc), YScalar(alt, akloc.loc)),
                                  "when": (YScalar("when", akloc.loc), when)}, anode.loc))
        out = YMap({"seq": (YScalar("seq", y.loc), YSeq(wrappers, alts.loc))}, y.loc)
        for meta in ("name", "repeat", "when"):
            if meta in y.items:
                out.items[meta] = y.items[meta]
        self.node_map(out, path, cond, skip=("seq",))  # repeat/when may hold choices too
        choice.node = out
        return out

    def default_name(self, y: YNode, index: int, top: bool) -> str:
        """The module name the resolver gives an item of a sequence (resolve.default_name)."""
        if isinstance(y, YScalar) and isinstance(y.value, str):
            words = y.value.split()
            if len(words) >= 3 and words[-2] == "as":
                return words[-1]
            head = words[0] if words else ""
            if head in self.blocks or (top and head in KINDS):
                return head
        elif isinstance(y, YMap):
            own = y.get("name")
            if isinstance(own, YScalar) and isinstance(own.value, str):
                return own.value
            keys = [k for k in y.items if k not in NODE_META]
            if len(keys) == 1:
                if keys[0] in self.blocks or (top and keys[0] in KINDS):
                    return keys[0]
                if keys[0] == "aux":
                    return "aux"
        return str(index)


def misplaced_choices(root: YMap) -> list[SpecError]:
    """Choices in top-level keys that take none (``input``, ``include`` ...): found before the
    document is validated, so that the message names the choice rather than the type."""
    sink = ErrorSink()
    reader = ChoiceReader(sink, set(), top=True)
    for key in NO_CHOICE_KEYS:
        if (y := root.get(key)) is not None:
            reader.refuse(y, f"'{key}'")
    return sink.errors


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _scalar(value: Any, loc: Loc) -> YNode:
    if isinstance(value, list):
        return YSeq([_scalar(v, loc) for v in value], loc)
    return YScalar(value, loc, plain=False)

