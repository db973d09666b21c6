"""Cost matching: find the value of one knob that makes a spec cost what another does.

The knob is the input resolution (``input``) or any parameter of the spec (``width``, ``depth``,
``num_filters``, ...). Costs grow with every such knob but in steps (channels are rounded to a
divisor, repeat counts to integers), so the solver brackets the target by doubling or halving
from the spec's own value, bisects the bracket down to the step, and keeps the value whose cost
is nearest the target. It works on the IR only (a load costs milliseconds), and refuses when no
value comes within the tolerance.

The matched spec is the original text with the knob's value (and any ``--set`` values) changed
in place, so comments and layout survive; include paths are rewritten relative to where it is
written.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_path
from .cost import METRICS, totals
from .errors import SpecErrors
from .layers.base import Shape, fmt_shape
from .library import library_dir
from .program import Program
from .spec import Spec

INPUT = "input"
REAL_KNOBS = ("width", "depth")
MAX_BRACKET_STEPS = 16  # doublings / halvings: a factor of 65536 either way
MAX_BISECTIONS = 60
FLOAT_RESOLUTION = 1e-5  # relative width of the final bracket for a real-valued knob


class MatchError(Exception):
    """The knob cannot be used, or no value of it meets the tolerance (one-line message)."""


@dataclass
class Knob:
    name: str  # "input" or a spec parameter
    start: float  # the spec's own value (the input's height for "input")
    integer: bool


@dataclass
class MatchResult:
    knob: str
    metric: str
    start: float
    value: float
    achieved: int
    target: int
    tolerance: float
    evaluations: int
    seconds: float
    input_shape: Shape

    @property
    def ratio(self) -> float:
        return self.achieved / self.target


def find_knob(spec: Spec, name: str) -> Knob:
    """The knob ``name`` of ``spec``, or a one-line MatchError saying why it is not one."""
    if name == INPUT:
        return Knob(INPUT, spec.input_shape[1], True)
    if name not in spec.params:
        known = ", ".join(spec.params) or "none"
        hint = ""
        if name == "width":
            hint = ('; give it one with params: {width: 1.0} and '
                    'defaults: {conv: {width: $width}}')
        elif name == "depth":
            hint = "; give it one with params: {depth: 1.0} and repeats like x$(round(4 * depth))"
        raise MatchError(f"{spec.path} has no parameter {name!r} (its parameters: {known}){hint}")
    value = spec.params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MatchError(f"{spec.path}: parameter {name!r} is {value!r}, not a number")
    # Multipliers are real even when written as 1; other whole-number parameters (filter
    # counts, repeats) are searched over the integers.
    integer = isinstance(value, int) and name not in REAL_KNOBS
    return Knob(name, value if integer else float(value), integer)


@dataclass
class Problem:
    """The cost of a program as a function of one knob, with every evaluation remembered.

    The program is read once; each evaluation resolves it again with the knob's value.
    """

    program: Program
    knob: Knob
    metric: str
    target: int
    base_input: Shape
    allow_large: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    seen: dict[float, int | None] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.program.path

    def input_for(self, value: float) -> Shape:
        if self.knob.name != INPUT:
            return self.base_input
        c, h, w = self.base_input
        return (c, int(value), max(1, round(value * w / h)))

    def load(self, value: float) -> Spec:
        overrides = dict(self.overrides)
        if self.knob.name != INPUT:
            overrides[self.knob.name] = value
        return self.program.resolve(overrides, input=self.input_for(value),
                                    allow_large=self.allow_large)

    def cost(self, value: float) -> int | None:
        """The metric at ``value``; None when the spec does not resolve there (too small an
        input for its windows, over the size limit, ...)."""
        if value not in self.seen:
            try:
                self.seen[value] = totals(self.load(value).ir).get(self.metric)
            except SpecErrors:
                self.seen[value] = None
        return self.seen[value]

    def error(self, value: float) -> float:
        got = self.seen.get(value)
        return math.inf if got is None else abs(got / self.target - 1)


def solve(problem: Problem, tolerance: float) -> MatchResult:
    """The knob value whose cost is nearest the target; MatchError if beyond ``tolerance``."""
    if problem.target <= 0:
        raise MatchError(f"the target's {problem.metric} is {problem.target}: nothing to match")
    start = time.perf_counter()
    knob = problem.knob
    v0 = knob.start
    f0 = problem.cost(v0)
    if f0 is None:
        problem.load(v0)  # raises the spec's own errors
    if f0 != problem.target:
        lo, hi = _bracket(problem, v0, f0 < problem.target)  # type: ignore[operator]
        _bisect(problem, lo, hi, v0)
    best = min((v for v, f in problem.seen.items() if f is not None),
               key=lambda v: (problem.error(v), abs(v - v0)))
    if not knob.integer:
        best = _tidy(problem, best)
    if problem.error(best) > tolerance:
        got = problem.seen[best]
        raise MatchError(
            f"cannot match {problem.metric} within {tolerance:.2%}: the nearest is "
            f"{knob.name}={_fmt_value(best)} with {METRICS[problem.metric].unit} "
            f"{got:,} = {got / problem.target:.4f}x the target's {problem.target:,}")
    return MatchResult(knob.name, problem.metric, v0, best, problem.seen[best] or 0,
                       problem.target, tolerance, len(problem.seen),
                       time.perf_counter() - start, problem.input_for(best))


def _bracket(problem: Problem, v0: float, upward: bool) -> tuple[float, float]:
    """(lo, hi) with cost(lo) <= target <= cost(hi), or a MatchError."""
    knob, target = problem.knob, problem.target
    lo = hi = v0
    for _ in range(MAX_BRACKET_STEPS):
        if upward:
            cand = max(hi * 2, hi + 1) if knob.integer else hi * 2
            f = problem.cost(cand)
            if f is None or f >= target:  # past a size limit counts as over
                return lo, cand
            lo = hi = cand
        else:
            cand = hi // 2 if knob.integer else hi / 2
            if cand <= 0 or cand == hi:
                break
            f = problem.cost(cand)
            if f is None or f <= target:  # too small to resolve counts as under
                return cand, hi
            lo = hi = cand
    way = "up" if upward else "down"
    last = problem.seen.get(hi)
    raise MatchError(f"{problem.metric} does not reach the target's {target:,} going {way} from "
                     f"{knob.name}={_fmt_value(v0)} (at {knob.name}={_fmt_value(hi)}: "
                     f"{last if last is None else format(last, ',')})")


def _bisect(problem: Problem, lo: float, hi: float, v0: float) -> None:
    integer = problem.knob.integer
    for _ in range(MAX_BISECTIONS):
        if integer and hi - lo <= 1:
            return
        if not integer and hi - lo <= FLOAT_RESOLUTION * max(abs(hi), 1e-12):
            return
        mid = (lo + hi) // 2 if integer else (lo + hi) / 2
        f = problem.cost(mid)
        if f is None:
            lo, hi = (mid, hi) if mid < v0 else (lo, mid)
        elif f < problem.target:
            lo = mid
        elif f > problem.target:
            hi = mid
        else:
            return


def _tidy(problem: Problem, best: float) -> float:
    """The shortest decimal near ``best`` that costs as close to the target (same step)."""
    for digits in range(1, 7):
        scale = 10**digits
        # The bisection ends at the edge of a cost step: round towards its inside, either way.
        for short in (math.floor(best * scale) / scale, math.ceil(best * scale) / scale):
            if short > 0 and problem.cost(short) is not None and \
                    problem.error(short) <= problem.error(best):
                return short
    return best


def _fmt_value(v: float) -> str:
    return str(v) if isinstance(v, int) else yaml_scalar(float(f"{v:.6g}"))


# --- writing the matched spec --------------------------------------------------------------------
def yaml_scalar(value: Any) -> str:
    """A value as YAML text that reads back as the same value and type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, _, exp = text.partition("e")
            text = f"{mantissa}.0e{exp}"  # YAML 1.1 floats need a dot
        return text
    if value is None:
        return "null"
    return json.dumps(str(value))


_PLAIN_PATH_RE = re.compile(r"^[\w./-]+$")


def matched_text(original: Path, out: Path, params: dict[str, Any],
                 input_shape: Shape | None, header: str) -> tuple[str, list[str]]:
    """The original spec text with ``params`` (and ``input``) set and includes re-pointed.

    An include from the package's library becomes its library name (``lib/inception.yaml``),
    which loads from any folder. Returns the text and notes for the user (other includes that
    end up outside the new file's folder, which its loader has to be told about with
    ``--library``).
    """
    text = original.read_text(encoding="utf-8")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise MatchError(f"{original}: not a spec mapping")
    top = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    edits: list[tuple[int, int, str]] = []
    if params:
        pnode = top.get("params")
        entries = {k.value: v for k, v in pnode.value} if isinstance(pnode, yaml.MappingNode) \
            else {}
        for name, value in params.items():
            vnode = entries.get(name)
            if not isinstance(vnode, yaml.ScalarNode):
                raise MatchError(f"{original}: parameter {name!r} is not set in the spec's own "
                                 "params: mapping (an included file's parameters cannot be "
                                 "rewritten)")
            edits.append((vnode.start_mark.index, vnode.end_mark.index, yaml_scalar(value)))
    if input_shape is not None:
        inode = top["input"]
        edits.append((inode.start_mark.index, inode.end_mark.index,
                      "[" + ", ".join(str(d) for d in input_shape) + "]"))
    notes: list[str] = []
    inc = top.get("include")
    src_dir, out_dir = original.resolve().parent, out.resolve().parent
    if isinstance(inc, yaml.SequenceNode) and src_dir != out_dir:
        for item in inc.value:
            if not isinstance(item, yaml.ScalarNode):
                continue
            target = (src_dir / item.value).resolve()
            packaged = library_dir().resolve()
            if target.is_relative_to(packaged) and not (out_dir / target.relative_to(
                    packaged)).exists():
                # The package's own library: its name loads from anywhere (program.py).
                rel = target.relative_to(packaged).as_posix()
                edits.append((item.start_mark.index, item.end_mark.index, rel))
                continue
            rel = Path(os.path.relpath(target, out_dir)).as_posix()
            shown = rel if _PLAIN_PATH_RE.match(rel) else json.dumps(rel)
            edits.append((item.start_mark.index, item.end_mark.index, shown))
            if not target.is_relative_to(out_dir):
                notes.append(f"its include {rel} is outside its folder: load it with "
                             f"--library {os.path.relpath(target.parent)}")
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return header + text, notes


def write_matched(original: Path, out: Path, params: dict[str, Any],
                  input_shape: Shape | None, header: str,
                  verify: Callable[[Path], None]) -> list[str]:
    """Write the matched spec atomically, after ``verify`` has loaded it from its final folder."""
    text, notes = matched_text(original, out, params, input_shape, header)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
        verify(tmp)
    return notes


def describe_result(r: MatchResult, name: str, target_name: str) -> str:
    unit = METRICS[r.metric].unit
    if r.knob == INPUT:
        change = f"input {fmt_shape(r.input_shape)}"
    else:
        change = f"{r.knob} {_fmt_value(r.start)} -> {_fmt_value(r.value)}"
    return (f"{name}: {change}: {r.achieved:,} {unit} = {r.ratio:.4f}x {target_name}'s "
            f"{r.target:,} (tolerance {r.tolerance:.2%}; {r.evaluations} evaluations in "
            f"{r.seconds:.2f} s)")
