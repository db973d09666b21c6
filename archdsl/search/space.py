"""A search space: a spec whose values are choices (docs/search.md, "The space").

Read once (:meth:`SearchSpace.read`), then resolve many candidates: a candidate is a mapping of
dimension names to values, and every question about it (is it valid, what does it cost, is it
inside the budget, which network is it) goes through :meth:`archdsl.program.Program.resolve`,
which reuses the block calls resolved for earlier candidates. No torch, no optuna.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from .. import ir
from ..choices import Choice
from ..cost.report import Counts, totals
from ..errors import ErrorSink, Loc, SpecError, SpecErrors
from ..expr import evaluate_value
from ..program import Program, read_program
from ..source import YMap, YNode, YScalar, YSeq
from ..spec import resolve_params
from ..suggest import did_you_mean

if TYPE_CHECKING:
    from ..spec import Spec

RANGE_CHECKED = 16  # ranges up to this many values are checked whole by validate
_CACHE_SIZE = 64  # resolved candidates kept: cost, feasible and arch_hash of one candidate


@dataclass(frozen=True)
class Dimension:
    name: str  # knob name ("depth") or module path + field for inline choices ("stage2.c")
    kind: Literal["categorical", "int", "float"]
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    # Active only when dimension ``condition[0]`` takes one of the values ``condition[1]``.
    condition: tuple[str, tuple[Any, ...]] | None = None
    where: str = ""  # file:line:col of the choice
    architecture: bool = True  # False: a training knob (lr, epochs) that leaves the network alone


@dataclass(frozen=True)
class Budget:
    metric: Literal["params", "macs", "flops"]
    low: float | None  # None: a plain maximum
    high: float

    def holds(self, counts: Counts) -> bool:
        value = counts.get(self.metric)
        return value <= self.high and (self.low is None or value >= self.low)

    def describe(self) -> str:
        from ..cost.units import human

        if self.low is None:
            return f"{self.metric} <= {human(self.high)}"
        return f"{human(self.low)} <= {self.metric} <= {human(self.high)}"


def is_active(dim: Dimension, values: Mapping[str, Any]) -> bool:
    """Active when unconditional, or when its parent is set to one of the condition's values."""
    if dim.condition is None:
        return True
    parent, allowed = dim.condition
    return parent in values and values[parent] in allowed


class SearchSpace:
    """The dimensions, budget, constraints and objectives of a space, and its candidates."""

    def __init__(self, program: Program, allow_large: bool = False) -> None:
        self.program = program
        self.allow_large = allow_large  # lift the size limits (as --allow-large)
        self.path = program.path
        self._choices: dict[str, Choice] = {c.name: c for c in program.choices}
        self.dimensions: list[Dimension] = [_dimension(c) for c in program.choices]
        section = program.search
        self.budget: Budget | None = None
        self.budget_loc: Loc = Loc(str(program.path), 1, 1)
        if section is not None and section.budget is not None:
            b = section.budget
            self.budget = Budget(b.metric, b.low, b.high)  # type: ignore[arg-type]
            self.budget_loc = b.loc
        self.objectives: list[tuple[str, str]] = list(section.objectives) if section else []
        self.sampler: str | None = section.sampler if section else None
        self.seed: int | None = section.seed if section else None
        self.constraints = list(section.constraints) if section else []
        self.fixed_training: dict[str, Any] = dict(section.train) if section else {}
        self._by_knob = {c.knob: c.name for c in program.choices if c.knob}
        self._resolved: OrderedDict[tuple, Spec] = OrderedDict()

    @classmethod
    def read(cls, path: str | Path, library: list[str | Path] | None = None,
             allow_large: bool = False) -> SearchSpace:
        """Read a space; SpecErrors (located) when it is malformed."""
        program = read_program(path, library)
        program.check()
        if program.is_library:
            raise SpecErrors.one(Loc(program.shown, 1, 1),
                                 "a space is a spec with a network; this file is a library")
        return cls(program, allow_large)

    def choice(self, name: str) -> Choice:
        return self._choices[name]

    # --- candidates --------------------------------------------------------------------------
    def active(self, values: Mapping[str, Any]) -> list[Dimension]:
        """The dimensions active under these values, in order: a conditional one is active when
        its parent is active and has one of the values of its condition."""
        on: set[str] = set()
        out = []
        for d in self.dimensions:
            if is_active(d, values) and (d.condition is None or d.condition[0] in on):
                on.add(d.name)
                out.append(d)
        return out

    def complete(self, values: Mapping[str, Any],
                 architecture_only: bool = False) -> dict[str, Any]:
        """The values of the active dimensions (knob spellings such as ``stage2_c`` accepted);
        SpecErrors when one is missing or out of its range, or a name is unknown. With
        ``architecture_only``, training knobs are left out (and need no value)."""
        named: dict[str, Any] = {}
        errors = []
        shown = Loc(str(self.path), 1, 1)
        for key, v in values.items():
            name = key if key in self._choices else self._by_knob.get(key)
            if name is None:
                known = list(self._choices)
                errors.append(SpecErrors.one(shown, f"{key!r} is not a dimension of the space "
                                                    f"({', '.join(known) or 'none'})"
                                                    f"{did_you_mean(key, known, sep='; ')}"))
                continue
            named[name] = v
        out: dict[str, Any] = {}
        for d in self.active(named):
            if architecture_only and not d.architecture:
                continue
            c = self._choices[d.name]
            if d.name not in named:
                errors.append(SpecErrors.one(c.loc, f"no value for dimension {d.name!r}"))
                continue
            v = named[d.name]
            if not c.contains(v):
                errors.append(SpecErrors.one(c.loc, f"{d.name}={v!r} is not a value of this "
                                                    f"choice ({_range_text(d)})"))
                continue
            out[d.name] = int(v) if d.kind == "int" else v
        if errors:
            raise SpecErrors([e for exc in errors for e in exc.errors])
        return out

    def defaults(self) -> dict[str, Any]:
        """The candidate the space is when read as a plain spec (every choice's default)."""
        return self.fill({})

    def fill(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """These values, with the default of every active dimension they leave out."""
        out: dict[str, Any] = {}
        for d in self.dimensions:
            if d.condition is not None:
                parent, allowed = d.condition
                if parent not in out or out[parent] not in allowed:
                    continue
            out[d.name] = values[d.name] if d.name in values else self._choices[d.name].default
        return out

    def satisfying(self, fixed: Mapping[str, Any], tries: int = 200) -> dict[str, Any] | None:
        """A candidate with these values that satisfies the constraints: the defaults for the
        rest if they do, else the first of ``tries`` seeded draws that does (None: none did)."""
        values = self.fill(fixed)
        rng = random.Random(0)
        for _ in range(tries):
            try:
                if self.constraints_hold(values):
                    return values
            except SpecErrors:
                return values  # resolving it reports the problem
            values = self.fill({**self.sample_values(rng), **fixed})
        return None

    def sha256(self) -> str:
        """One hash over the space's files (the spec and its libraries)."""
        h = hashlib.sha256()
        for name in sorted(self.program.sources):
            h.update(name.encode() + b"\0" + self.program.sources[name].encode() + b"\0")
        return h.hexdigest()

    def resolve(self, values: Mapping[str, Any]) -> Spec:
        """The candidate's network (an :class:`archdsl.spec.Spec`); SpecErrors if invalid."""
        knobs = self.knobs(values)
        key = tuple(sorted((k, repr(v)) for k, v in knobs.items()))
        hit = self._resolved.get(key)
        if hit is not None:
            self._resolved.move_to_end(key)
            return hit
        spec = self.program.resolve(knobs, allow_large=self.allow_large)
        self._resolved[key] = spec
        if len(self._resolved) > _CACHE_SIZE:
            self._resolved.popitem(last=False)
        return spec

    def cost(self, values: Mapping[str, Any]) -> Counts:
        """Exact costs (params, MACs, flops = 2 MACs, ...) of the candidate's network."""
        return totals(self.resolve(values).ir)

    def knobs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The knobs of a candidate's network (completed: SpecErrors when values are bad)."""
        full = self.complete(values, architecture_only=True)
        return {self._choices[k].knob: v for k, v in full.items()}

    def constraints_hold(self, values: Mapping[str, Any]) -> bool:
        """Every constraint of ``search:`` holds: evaluated on the knobs alone, before (and
        without) resolving the network. SpecErrors when a constraint cannot be evaluated."""
        if not self.constraints:
            return True
        sink = ErrorSink()
        params = resolve_params(self.program, self.knobs(values), sink)
        sink.raise_if_any()
        return all(evaluate_value(c.value, params) for c in self.constraints)

    @staticmethod
    def counts(spec: Spec) -> Counts:
        return totals(spec.ir)

    def violations(self, values: Mapping[str, Any]) -> list[str]:
        """Why a candidate is not feasible ([] when it is): a constraint, invalid, the budget."""
        try:
            if not self.constraints_hold(values):
                return ["a constraint does not hold: " + ", ".join(
                    c.value.text for c in self.constraints)]
            spec = self.resolve(values)
        except SpecErrors as exc:
            return [f"invalid: {exc.errors[0]}"]
        if self.budget is not None:
            counts = totals(spec.ir)
            if not self.budget.holds(counts):
                from ..cost.units import human

                return [f"outside the budget {self.budget.describe()}: "
                        f"{human(counts.get(self.budget.metric))}"]
        return []

    def feasible(self, values: Mapping[str, Any]) -> bool:
        """Valid, every constraint holds, and inside the budget."""
        return not self.violations(values)

    def training_knobs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The knobs of training (``search.train``): fixed ones and the candidate's choices."""
        out = dict(self.fixed_training)
        for d in self.dimensions:
            if not d.architecture:
                out[d.name] = values.get(d.name, self._choices[d.name].default)
        return out

    def network_hash(self, values: Mapping[str, Any]) -> str:
        """SHA-256 of the resolved network alone (training knobs left out)."""
        return hashlib.sha256(repr(network_key(self.resolve(values).ir)).encode()).hexdigest()

    def arch_hash(self, values: Mapping[str, Any]) -> str:
        """SHA-256 of the resolved network (layers, fields, shapes, structure; not module names
        nor the values that led there) and of the training knobs' values."""
        h = hashlib.sha256()
        h.update(repr(network_key(self.resolve(values).ir)).encode())
        h.update(repr(sorted(self.training_knobs(values).items())).encode())
        return h.hexdigest()

    def concrete_spec(self, values: Mapping[str, Any], header: str = "") -> str:
        """The candidate as a plain spec (YAML text, no choices, no includes) that ``archdsl
        build`` and ``archdsl cost`` accept wherever it is written."""
        return concrete_spec(self, self.complete(values, architecture_only=True), header)

    # --- sampling and enumeration ------------------------------------------------------------
    def sample_values(self, rng: random.Random) -> dict[str, Any]:
        """One candidate drawn uniformly per dimension (log-uniformly for log ranges)."""
        values: dict[str, Any] = {}
        for d in self.dimensions:
            if d.condition is not None:
                parent, allowed = d.condition
                if parent not in values or values[parent] not in allowed:
                    continue
            values[d.name] = draw(d, rng)
        return values

    def size(self, architecture_only: bool = False) -> float:
        """How many candidates (distinct active assignments): exact, math.inf when continuous."""
        dims = [d for d in self.dimensions if d.architecture or not architecture_only]
        children: dict[str, list[Dimension]] = {}
        for d in dims:
            if d.condition is not None:
                children.setdefault(d.condition[0], []).append(d)

        def count(d: Dimension) -> float:
            c = self._choices[d.name]
            if c.size() == math.inf:
                return math.inf
            total = 0.0
            for v in c.values():
                part = 1.0
                for ch in children.get(d.name, []):
                    if v in ch.condition[1]:  # type: ignore[index]
                        part *= count(ch)
                total += part
            return total

        out = 1.0
        for d in dims:
            if d.condition is None:
                out *= count(d)
        return out if out == math.inf else int(out)

    def enumerate(self, architecture_only: bool = True) -> Iterator[dict[str, Any]]:
        """Every candidate, in order (a finite space only)."""
        dims = [d for d in self.dimensions if d.architecture or not architecture_only]

        def rec(i: int, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(dims):
                yield dict(values)
                return
            d = dims[i]
            if d.condition is not None and (d.condition[0] not in values
                                            or values[d.condition[0]] not in d.condition[1]):
                yield from rec(i + 1, values)
                return
            for v in self._choices[d.name].values():
                values[d.name] = v
                yield from rec(i + 1, values)
                del values[d.name]

        yield from rec(0, {})


def check_every_choice(space: SearchSpace) -> tuple[int, list[SpecError]]:
    """Resolve every value of every choice (each categorical value and alternative, each value
    of a range of at most RANGE_CHECKED values, else its ends and middle), the others at their
    defaults and the parents set so that it is active. Returns how many candidates were
    resolved and their errors, each saying which value it comes from."""
    candidates: list[tuple[str, dict[str, Any]]] = [("", space.defaults())]
    for d in space.dimensions:
        if not d.architecture:
            continue
        chain: dict[str, Any] = {}
        cond = d.condition
        while cond is not None:  # make it active: its parent takes a value that enables it
            chain[cond[0]] = cond[1][0]
            cond = space.choice(cond[0]).condition
        c = space.choice(d.name)
        if c.size() <= RANGE_CHECKED:
            values = c.values()
        else:
            mid = (c.low + c.high) / 2  # type: ignore[operator]
            values = [c.low, int(mid) if d.kind == "int" else mid, c.high]
            if c.step:
                values[1] = c.values()[int(c.size()) // 2]
        for v in values:
            if v == c.default and not chain:
                continue  # the defaults' candidate covers it
            found = space.satisfying({**chain, d.name: v})
            if found is not None:
                candidates.append((f"{d.name}={v}", found))
    errors: dict[tuple, SpecError] = {}
    for what, values in candidates:
        try:
            space.resolve(values)
        except SpecErrors as exc:
            for e in exc.errors:
                key = (e.loc, e.message)
                if key not in errors:
                    note = f" (with {what})" if what else " (with every choice at its default)"
                    errors[key] = SpecError(e.loc, e.message + note, e.path)
    return len(candidates), list(errors.values())


def draw(d: Dimension, rng: random.Random) -> Any:
    """One value of a dimension, uniform (log-uniform for log ranges)."""
    if d.kind == "categorical":
        return d.choices[rng.randrange(len(d.choices))]
    assert d.low is not None and d.high is not None
    if d.kind == "int":
        if d.log:
            x = math.exp(rng.uniform(math.log(d.low), math.log(d.high + 1)))
            return int(min(max(math.floor(x), d.low), d.high))
        step = int(d.step or 1)
        return int(d.low) + step * rng.randrange(int((d.high - d.low) // step) + 1)
    if d.step:
        return d.low + d.step * rng.randrange(int(math.floor((d.high - d.low) / d.step + 1e-9))
                                              + 1)
    if d.log:
        return math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
    return rng.uniform(d.low, d.high)


def word(value: Any) -> str:
    """A value as the spec and --set write it: true, false, null, 3, 0.5, A."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def assignments(values: Mapping[str, Any]) -> str:
    """``depth=3 residual=true`` (the defaults when empty)."""
    return " ".join(f"{k}={word(v)}" for k, v in values.items()) or "the defaults"


def _dimension(c: Choice) -> Dimension:
    return Dimension(c.name, c.kind, c.choices, c.low, c.high, c.step, c.log,  # type: ignore
                     c.condition, str(c.loc), c.architecture)


def _range_text(d: Dimension) -> str:
    if d.kind == "categorical":
        return "one of " + ", ".join(repr(c) for c in d.choices)
    step = f" step {d.step}" if d.step else ""
    return f"{d.kind} in [{d.low}, {d.high}]{step}{' log' if d.log else ''}"


# --- the network's identity ------------------------------------------------------------------
_NOT_STRUCTURE = {"name", "path", "loc", "block", "args", "totals", "size", "_cost", "repeat",
                  "in_shape", "out_shape", "fields", "items", "branches", "body", "shortcut",
                  "after", "head"}


def network_key(node: ir.Node) -> tuple:
    """What a network computes, as nested tuples: layers with their fields and shapes, merges,
    residuals and heads; sequences flattened (nesting and module names do not change it)."""
    if isinstance(node, ir.Seq):
        return ("seq", *_flat(node))
    if isinstance(node, ir.Layer):
        fields = node.fields.model_dump() if node.fields is not None else {}
        return ("layer", node.kind, tuple(sorted((k, repr(v)) for k, v in fields.items())),
                node.in_shape, node.out_shape)
    extra = tuple((f.name, repr(getattr(node, f.name))) for f in dc_fields(node)
                  if f.name not in _NOT_STRUCTURE)
    kids = tuple(network_key(c) if c is not None else None for c in _named_children(node))
    return (type(node).__name__, node.in_shape, node.out_shape, extra, kids)


def _flat(seq: ir.Seq) -> Iterator[tuple]:
    for item in seq.items:
        if isinstance(item, ir.Seq):
            yield from _flat(item)
        else:
            yield network_key(item)


def _named_children(node: ir.Node) -> list[ir.Node | None]:
    if isinstance(node, ir.Residual):
        return [node.body, node.shortcut, node.after]
    return list(node.children())


# --- concrete specs --------------------------------------------------------------------------
_DROP = object()


def concrete_spec(space: SearchSpace, values: dict[str, Any], header: str = "") -> str:
    """The candidate ``values`` (complete) as one plain YAML spec: choices replaced by their
    values, the alternatives not chosen left out, included libraries written in (so the file
    builds wherever it is written)."""
    prog = space.program
    chosen = {c.name: values.get(c.name, c.default) for c in prog.choices}
    inline: dict[int, Any] = {}
    wrappers: dict[int, bool] = {}  # alternative wrapper -> chosen
    synthetic: dict[str, str] = {}  # knob -> dimension, for inline choices and alternatives
    for c in prog.choices:
        if not c.architecture:
            continue
        if c.knob != c.name or c.alternative:
            synthetic[c.knob] = c.name
        if c.alternative and isinstance(c.node, YMap):
            for w in c.node.get("seq").items:  # type: ignore[union-attr]
                wrappers[id(w)] = w.get("name").value == chosen[c.name]  # type: ignore
        elif c.node is not None:
            inline[id(c.node)] = chosen[c.name]

    def plain(y: YNode) -> Any:
        if id(y) in inline:
            return inline[id(y)]
        if isinstance(y, YScalar):
            return y.value
        if isinstance(y, YSeq):
            return [p for p in (plain(i) for i in y.items) if p is not _DROP]
        if id(y) in wrappers:
            if not wrappers[id(y)]:
                return _DROP
            return {k: plain(v) for k, (_, v) in y.items.items() if k != "when"}
        return {k: plain(v) for k, (_, v) in y.items.items()}

    params: dict[str, Any] = {}
    defaults: dict[str, dict[str, Any]] = {}
    blocks: dict[str, Any] = {}
    for _, root in reversed(prog.trees):  # libraries first: the spec has the last word
        assert isinstance(root, YMap)
        if isinstance(yp := root.get("params"), YMap):
            for k, (_, v) in yp.items.items():
                if k in synthetic:  # kept: an expression may read it (``$stage1_c``)
                    params[k] = chosen[synthetic[k]]
                    continue
                is_choice = k in space._choices and space._choices[k].architecture
                params[k] = chosen[k] if is_choice else plain(v)
        if isinstance(yd := root.get("defaults"), YMap):
            for kind, (_, fields) in yd.items.items():
                defaults.setdefault(kind, {}).update(plain(fields))
        if isinstance(yb := root.get("blocks"), YMap):
            for name, (_, ydef) in yb.items.items():
                blocks[name] = plain(ydef)
    top = prog.trees[0][1]
    assert isinstance(top, YMap)
    doc: dict[str, Any] = {}
    for key in ("name", "cites", "description", "input"):
        if (y := top.get(key)) is not None:
            doc[key] = plain(y)
    for key, value in (("params", params), ("defaults", defaults), ("blocks", blocks)):
        if value:
            doc[key] = value
    doc["network"] = plain(top.get("network"))  # type: ignore[arg-type]
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100,
                          allow_unicode=True)
    return header + text
