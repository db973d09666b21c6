"""Porting weights from a reference implementation into a model built from a spec.

``port_weights(spec_or_module, source)`` pairs the tensors of the two state dicts (parameters and
buffers, batch-norm running statistics included; ``num_batches_tracked`` counters are left out
on both sides, as old checkpoints lack them) by structure, never by name, settles what the
structure leaves open by trying each possibility on the outputs, checks the pairing on the
outputs, and copies the weights.

How tensors are paired
----------------------
Both state dicts list tensors in module registration order. The reference's dotted names give
its module tree: each module holds its own tensors (one unit, kept in order) and its submodules
(units that may move). Our dotted names give our module tree (the IR's: a residual's ``body``,
then its ``shortcut``). The matcher looks for the orders of the reference's units whose shapes
equal ours position by position, and takes one only when nothing else could be meant:

* registration order all the way down, when it fits, is the default. Shapes cannot prove it
  (two same-shaped convs used in the other order in ``forward`` look the same): the output
  check below does;
* otherwise every order of sibling units within each module is considered (reordering never
  crosses a module boundary of the reference, and a unit that moves moves whole). Of those that
  fit, the ones with the fewest moved units win, then, among those, the ones in which fewest
  reference modules cut across a module of ours: a reference unit that pairs with exactly our
  ``body`` (all its tensors, in order) is the body, and a same-shaped sibling pairs with the
  ``shortcut``, rather than with the body's first layer. torchvision's RegNet registers ``proj``
  before ``f``, where ``proj`` has the shapes of ``f``'s first conv; timm's ``legacy_xception``
  registers ``skip``, ``skipbn`` before ``rep``; torchvision's ResNets register ``downsample``
  after the body, as we do;
* a tie between two different pairings is never broken by guessing: the outputs settle it
  (below) or the port is refused (:class:`PortError`) and the report names the module and the
  pairings. A unit that moves while a sibling of the same structure and shapes is still unused
  is such a tie. A module tree whose search goes over :data:`SEARCH_LIMIT` states is refused
  (never a hang).

When nothing fits in full (another head, another depth), the walk goes into the module that
does not fit and applies the same rule one position at a time (registration order unless one
sibling fits with fewer moves; a tie is a doubt), and reports each position where the shapes
differ.

How a tie is settled
--------------------
A tie is kept at the innermost reference module where the order of units is open (the modules
around it pair as usual). Its candidates are *every* order of its units that fits the shapes,
each unit paired as the matcher pairs it, or by its own candidates where it holds a tie too;
not only the orders of the best score, since the fewest moves need not be what ``forward``
does: timm's ``PreActBottleneck`` registers ``downsample`` first, with the shapes of ``conv3``
in the first stage (and ``norm1``, ``norm2``, ``norm3`` of one shape there), so 3! x 2 = 12
orders fit, and the fewest moves pair ``downsample`` with our ``conv3``. A tie with more than
:data:`MAX_CANDIDATES` candidates is refused untried. Each candidate is tried, with the
reference's batch-norm statistics randomised as in the check below, and kept only if it is the
one candidate whose outputs equal the reference's (:data:`OUTPUT_RTOL`); none or several, and
the port is refused, naming them (several: a pairing the outputs cannot tell apart, such as two
summed branches, is still a guess).

A candidate is tried on the module alone when it can be: one run of the reference records the
tied module's input and output (forward hooks, copied before in-place operations change them),
and our module holding exactly the same tensors runs on that input with the candidate's tensors,
which costs a block's forward per candidate instead of two whole models, and does not depend on
the rest of the pairing. Ties where that is not possible (no module of ours holds exactly those
tensors, the reference module runs other than once on one tensor, or no candidate passes alone:
a parameter-free operation may sit on the other side of the module boundary in ours) are tried
together on the whole model, one output check per combination of their candidates, at most
:data:`MAX_MODEL_TRIALS`. The report lists each settled tie ("decided by outputs") with the
pairing kept and how it was tried; the whole model's output check below still runs on the final
pairing. Ties are tried only when they are all that keeps the tensors from pairing (no mismatch,
no other doubt); without the output check (``verify=False``, a state-dict source) they are
refused.

How a pairing is checked
------------------------
Shapes say which tensors may pair, not in what order ``forward`` uses them. So after pairing,
a copy of the reference gets random batch-norm statistics and affine parameters (so that
swapped ones show; the real ones are what is ported), its tensors go into a copy of our model
by the pairing, and both run in eval mode on one random input: the port is refused when
``max |ours - reference| > 1e-4 * max |reference|`` (:data:`OUTPUT_RTOL`). Relative to the
output's scale because randomly initialised networks range from 0.2 (Inception) to 1e11
(ResNet-152) at the output; every reference of the library agrees to 0.0, so 1e-4 only leaves
room for float32 round-off of other operation orders, while a wrong pairing (or another network
with the same shapes: ResNet-152's paper stride placement against torchvision's) differs at the
output's own scale. Outputs that are zero or not finite prove nothing and are refused. The
reference's main output is compared (the first of a tuple or mapping: auxiliary heads). A
state-dict file has no ``forward``: such ports are paired by shapes only, which the report says.
``verify=False`` (``--no-verify``) skips the check.

A port with any mismatch, left-over tensor, ambiguity or failed check is refused
(:class:`PortError`, carrying the report) unless ``partial=True``, which copies the pairs before
the first mismatch or ambiguity only (and checks nothing).
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .layers.base import fmt_shape

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .spec import Spec

Shape = tuple[int, ...]
IGNORED_SUFFIXES = ("num_batches_tracked",)
OUTPUT_RTOL = 1e-4  # the output check's tolerance, relative to the reference's largest output


class PortError(Exception):
    """The weights cannot be ported (bad source, tensors that do not pair, outputs that differ)."""

    def __init__(self, message: str, report: PortReport | None = None) -> None:
        super().__init__(message)
        self.report = report


# --- the structural matcher (pure Python: names and shapes) ------------------------------------

Score = tuple[int, int]  # (reorderings, reference units that cut across a module of ours)


@dataclass
class _Module:
    """A module of the reference: its units are leaf groups (tensor indices) and submodules."""

    prefix: str
    units: list[_Module | list[int]] = field(default_factory=list)


Unit = _Module | list[int]


def _module_tree(names: list[str]) -> _Module:
    root = _Module("")
    by_prefix = {"": root}
    for i, name in enumerate(names):
        parts = name.split(".")
        node = root
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            child = by_prefix.get(prefix)
            if child is None:
                child = by_prefix[prefix] = _Module(prefix)
                node.units.append(child)
            node = child
        if node.units and isinstance(node.units[-1], list):
            node.units[-1].append(i)
        else:
            node.units.append([i])
    return root


def _module_spans(names: list[str]) -> dict[tuple[int, int], str]:
    """Our modules as [start, end) ranges of our list (a module's tensors are consecutive in a
    state dict), outermost name first for ranges that several nested modules share."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, name in enumerate(names):
        parts = name.split(".")
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            first.setdefault(prefix, i)
            last[prefix] = i
    spans: dict[tuple[int, int], str] = {}
    for prefix, start in first.items():
        spans.setdefault((start, last[prefix] + 1), prefix)
    return spans


@dataclass
class Alignment:
    """The reference's tensors in the order that pairs them with ours, and what was done."""

    order: list[int]  # indices into the reference list, one per position of ours
    reordered: list[str]  # reorderings taken (a unit paired before one registered earlier)
    doubts: list[str]  # places where several pairings fit (ambiguous: nothing is guessed)
    decided: list[str] = field(default_factory=list)  # ties in order broken by our structure
    doubt_at: list[int] = field(default_factory=list)  # our positions of the doubts
    ties: list[Tie] = field(default_factory=list)  # the doubts the outputs may settle
    by_outputs: list[str] = field(default_factory=list)  # ties the outputs settled


@dataclass(frozen=True)
class Candidate:
    """One pairing of a tied module: reference indices for our positions ``start ..``."""

    order: tuple[int, ...]
    text: str  # "[unit -> ours, ...]"


@dataclass(frozen=True)
class Tie:
    """A reference module whose pairing the shapes leave open (a doubt, placed in registration
    order meanwhile), with every pairing of it that fits them: the outputs may decide
    (:func:`settle_ties`). No candidates when there are too many to try."""

    module: str  # the reference module ('' for the whole reference)
    ours: str | None  # our module holding exactly our tensors start .. end ('' the whole model)
    start: int
    end: int
    doubt: str  # its text in Alignment.doubts
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class _Fit:
    """The best complete pairing of a reference unit (or of a module's remaining units) with our
    tensors from some position."""

    score: Score
    order: tuple[int, ...]  # reference indices, one per position of ours
    steps: tuple[tuple[str, int, int], ...] = ()  # (unit, start, end) at one module's level
    reordered: tuple[str, ...] = ()
    decided: tuple[str, ...] = ()
    ambiguity: str | None = None  # set when another pairing scores the same
    tie: str | None = None  # the ambiguity when it is between orders of this module's units
    parts: tuple[Unit, ...] = ()  # the units of ``steps``


_EMPTY = _Fit((0, 0), ())
SEARCH_LIMIT = 20_000  # states of the order search (real networks: under 100; 1 s is ~10,000)
# A tie is settled by trying its pairings (module docstring). timm's resnetv2_50 has 12 in its
# first unit (3 same-shaped batch norms x 2 same-shaped 1x1 convs); a module with more is refused.
MAX_CANDIDATES = 24
MAX_MODEL_TRIALS = 24  # whole-model runs, for the ties a module alone cannot settle


class _GaveUp(Exception):
    """The order search went over :data:`SEARCH_LIMIT` (a pathological module tree)."""


class _TooMany(Exception):
    """A tie has more than :data:`MAX_CANDIDATES` pairings that fit the shapes."""


class _Matcher:
    def __init__(self, ours: list[Shape], theirs: list[Shape], names: list[str],
                 our_names: list[str] | None = None) -> None:
        self.ours, self.theirs, self.names = ours, theirs, names
        self.our_names = our_names
        self.spans = _module_spans(our_names) if our_names else {}
        n = len(ours)
        # For the crossing test: the farthest end of our modules starting at each position, the
        # nearest start of those ending at each position.
        self._max_end = [0] * (n + 1)
        self._min_start = list(range(n + 1))
        for start, end in self.spans:
            self._max_end[start] = max(self._max_end[start], end)
            self._min_start[end] = min(self._min_start[end], start)
        # Multiset fingerprints of shapes: a cheap test that a unit cannot fit at a position.
        self._prefix = [0]
        for shape in ours:
            self._prefix.append(self._prefix[-1] + hash(shape))
        self._best: dict[tuple[int, int], _Fit | None] = {}
        self._size: dict[int, int] = {}
        self._print: dict[int, int] = {}
        self._kind: dict[int, int] = {}
        self._kinds: dict[tuple, int] = {}
        self._candidates: dict[tuple[int, int], list[Candidate]] = {}
        self.states = 0  # of the order search, over all modules

    # -- facts about units ---------------------------------------------------------------------

    def size(self, unit: Unit) -> int:
        key = id(unit)
        if key not in self._size:
            if isinstance(unit, list):
                self._size[key] = len(unit)
                self._print[key] = sum(hash(self.theirs[i]) for i in unit)
            else:
                self._size[key] = sum(self.size(u) for u in unit.units)
                self._print[key] = sum(self._print[id(u)] for u in unit.units)
        return self._size[key]

    def kind(self, unit: Unit) -> int:
        """Equal for units of the same structure and shapes: units that shapes cannot tell
        apart wherever they are put."""
        key = id(unit)
        if key not in self._kind:
            if isinstance(unit, list):
                sig: tuple = ("L", *(self.theirs[i] for i in unit))
            else:
                sig = ("M", *(self.kind(u) for u in unit.units))
            self._kind[key] = self._kinds.setdefault(sig, len(self._kinds))
        return self._kind[key]

    def name(self, unit: Unit) -> str:
        return (unit.prefix or "(the reference)") if isinstance(unit, _Module) \
            else self.names[unit[0]]

    def flat(self, unit: Unit) -> list[int]:
        if isinstance(unit, list):
            return list(unit)
        return [i for u in unit.units for i in self.flat(u)]

    def crosses(self, start: int, end: int) -> bool:
        """Whether [start, end) of our list cuts across one of our modules (overlaps it in part)."""
        return (any(self._max_end[c] > end for c in range(start + 1, end))
                or any(self._min_start[d] < start for d in range(start + 1, end)))

    def span(self, start: int, end: int) -> str:
        """Our tensors [start, end) by name: a module's name when they are exactly one."""
        if self.our_names is None:
            return f"our #{start}" if end - start == 1 else f"our #{start}-#{end - 1}"
        if (start, end) in self.spans:
            return self.spans[start, end]
        if end - start == 1:
            return self.our_names[start]
        return f"{self.our_names[start]} .. {self.our_names[end - 1]}"

    def steps_text(self, steps: Sequence[tuple[str, int, int]]) -> str:
        return "[" + ", ".join(f"{u} -> {self.span(a, b)}" for u, a, b in steps) + "]"

    # -- the best complete pairing of a unit from a position -----------------------------------

    def best(self, unit: Unit, pos: int) -> _Fit | None:
        """The best complete pairing of ``unit`` with ours from ``pos`` (module docstring), or
        None when none fits. Memoised: each unit is solved at each position once."""
        key = (id(unit), pos)
        if key not in self._best:
            self._best[key] = self._solve(unit, pos)
        return self._best[key]

    def _solve(self, unit: Unit, pos: int) -> _Fit | None:
        end = pos + self.size(unit)
        if end > len(self.ours) or self._prefix[end] - self._prefix[pos] != self._print[id(unit)]:
            return None
        cut = int(self.crosses(pos, end))
        if isinstance(unit, list):
            ok = all(self.ours[pos + k] == self.theirs[i] for k, i in enumerate(unit))
            return _Fit((0, cut), tuple(unit)) if ok else None
        fit = self._in_order(unit, pos) or self._search(unit, pos)
        if fit is None:
            return None
        return replace(fit, score=(fit.score[0], fit.score[1] + cut))

    def _in_order(self, unit: _Module, pos: int) -> _Fit | None:
        """Registration order all the way down, if it fits: the default, never ambiguous."""
        order: list[int] = []
        cuts = 0
        for u in unit.units:
            fit = self.best(u, pos + len(order))
            if fit is None or fit.score[0]:
                return None
            order += fit.order
            cuts += fit.score[1]
        return _Fit((0, cuts), tuple(order))

    def _search(self, unit: _Module, pos: int) -> _Fit | None:
        """The orders of the module's units that fit, fewest reorderings first, then fewest
        units cutting across our modules; a tie between different pairings is ambiguous.

        Dynamic programming over which units are used. Units of the same kind are interchangeable
        for the shapes, so they are taken in registration order, and a state is the count taken
        of each kind."""
        units = unit.units
        kinds: dict[int, list[int]] = {}
        for k, u in enumerate(units):
            kinds.setdefault(self.kind(u), []).append(k)
        groups = list(kinds.values())
        memo: dict[tuple[int, ...], _Fit | None] = {}

        def solve(taken: tuple[int, ...], at: int) -> _Fit | None:
            if taken in memo:
                return memo[taken]
            self.states += 1
            if self.states > SEARCH_LIMIT:
                raise _GaveUp
            heads = [(g, groups[g][n]) for g, n in enumerate(taken) if n < len(groups[g])]
            if not heads:
                return _EMPTY
            first = min(k for _, k in heads)
            options = []
            for g, k in heads:
                fit = self.best(units[k], at)
                if fit is None:
                    continue
                rest = solve(taken[:g] + (taken[g] + 1,) + taken[g + 1:], at + len(fit.order))
                if rest is None:
                    continue
                moved = int(k != first)
                score = (fit.score[0] + rest.score[0] + moved, fit.score[1] + rest.score[1])
                options.append((score, g, k, fit, rest))
            memo[taken] = result = self._choose(unit, options, groups, taken, first, at)
            return result

        return solve((0,) * len(groups), pos)

    def _choose(self, module: _Module, options: list, groups: list[list[int]],
                taken: tuple[int, ...], first: int, at: int) -> _Fit | None:
        """The best of the options at one state of :meth:`_search`, with what to report."""
        if not options:
            return None
        units = module.units
        where = f"in {self.name(module)} from {self.span(at, at + 1)}"
        options.sort(key=lambda o: o[0])
        score, g, k, fit, rest = options[0]
        step = (self.name(units[k]), at, at + len(fit.order))
        steps = (step, *rest.steps)
        parts = (units[k], *rest.parts)
        reordered = fit.reordered + rest.reordered
        if k != first:
            reordered = (f"{self.name(units[k])} paired before {self.name(units[first])}",
                         *reordered)
        decided = fit.decided + rest.decided
        ambiguity = fit.ambiguity or rest.ambiguity
        tie = rest.tie
        ties = [o for o in options[1:] if o[0] == score]
        if ties:
            other = ties[0]
            other_steps = ((self.name(units[other[2]]), at, at + len(other[3].order)),
                           *other[4].steps)
            ambiguity = tie = (f"{where}: {self.steps_text(steps)} and "
                               f"{self.steps_text(other_steps)} fit the shapes equally well")
        elif k != first and taken[g] + 1 < len(groups[g]):
            twin = units[groups[g][taken[g] + 1]]
            ambiguity = tie = (f"{where}: {self.steps_text(steps)} fits, and so "
                               f"does the same with {self.name(units[k])} and {self.name(twin)} "
                               f"(same shapes) swapped")
        else:
            runner_up = [o for o in options[1:] if o[0][0] == score[0]]
            if runner_up:
                other = runner_up[0]
                decided = (f"{self.name(units[k])} paired with {self.span(*step[1:])}, not "
                           f"{self.name(units[other[2]])}: both orders fit the shapes, the "
                           f"other cuts more reference modules across modules of ours",
                           *decided)
        return _Fit(score, fit.order + rest.order, steps, reordered, decided, ambiguity, tie,
                    parts)

    # -- the walk that never fails (for the report) ---------------------------------------------

    def place(self, unit: Unit, pos: int, out: Alignment) -> int:
        """Append ``unit``'s tensors to ``out.order`` as they pair from ``pos``; where nothing
        fits in full, walk in and report; returns the position after the unit."""
        fit = self.best(unit, pos)
        size = self.size(unit)
        if fit is not None and fit.ambiguity is None:
            out.order += fit.order
            out.reordered += fit.reordered
            out.decided += fit.decided
            return pos + size
        if fit is not None and fit.tie is None:  # the order here is decided; a tie is inside
            assert isinstance(unit, _Module)
            for part, (_, start, _) in zip(fit.parts, fit.steps, strict=True):
                self.place(part, start, out)
            return pos + size
        if fit is not None:  # a tie: registration order, which does not fit (docstring)
            out.doubts.append(f"ambiguous {fit.tie}")
            out.doubt_at.append(pos)
            out.ties.append(self.tie(unit, pos, out.doubts[-1]))
            out.order += self.flat(unit)
            return pos + size
        if isinstance(unit, list):  # the mismatches say where
            out.order += unit
            return pos + size
        left = list(unit.units)
        while left:
            k = self._local_choice(left, pos, out)
            pos = self.place(left[k], pos, out)
            del left[k]
        return pos

    # -- the pairings of a tie, for the outputs to decide ---------------------------------------

    def tie(self, unit: Unit, pos: int, doubt: str) -> Tie:
        """The tie at ``unit`` from ``pos``, with all its candidate pairings (or none when there
        are more than :data:`MAX_CANDIDATES`, or too many orders to search)."""
        end = pos + self.size(unit)
        if self.our_names is None:
            ours = None
        else:
            ours = "" if (pos, end) == (0, len(self.ours)) else self.spans.get((pos, end))
        module = unit.prefix if isinstance(unit, _Module) else self.names[unit[0]]
        try:
            found = tuple(self.candidates(unit, pos))
        except (_TooMany, _GaveUp):
            found = ()
        return Tie(module, ours, pos, end, doubt, found)

    def candidates(self, unit: Unit, pos: int) -> list[Candidate]:
        """The pairings of ``unit`` from ``pos`` to try: the matcher's where it found no tie,
        every order of the units that fits the shapes where it found one."""
        key = (id(unit), pos)
        if key not in self._candidates:
            fit = self.best(unit, pos)
            end = pos + self.size(unit)
            if fit is None:
                found = []
            elif fit.ambiguity is None or isinstance(unit, list):
                found = [Candidate(fit.order, self.steps_text([(self.name(unit), pos, end)]))]
            elif fit.tie is None:  # the order here is decided: the ties inside vary
                found = self._product([self.candidates(u, a)
                                       for u, (_, a, _) in zip(fit.parts, fit.steps, strict=True)])
            else:
                found = self._orders(unit, pos)
            self._candidates[key] = found
        return self._candidates[key]

    @staticmethod
    def _product(choices: list[list[Candidate]]) -> list[Candidate]:
        found = [Candidate((), "")]
        for options in choices:
            if len(found) * len(options) > MAX_CANDIDATES:
                raise _TooMany
            found = [Candidate(a.order + b.order, _joined(a.text, b.text))
                     for a in found for b in options]
        return found

    def _orders(self, module: _Module, pos: int) -> list[Candidate]:
        """Every order of the module's units (each by its own candidates) that fits the shapes,
        at any score: the fewest moves need not be what ``forward`` does."""
        found: list[Candidate] = []

        def extend(left: tuple[Unit, ...], at: int, done: Candidate) -> None:
            self.states += 1
            if self.states > SEARCH_LIMIT:
                raise _GaveUp
            if not left:
                found.append(done)
                if len(found) > MAX_CANDIDATES:
                    raise _TooMany
                return
            for k, u in enumerate(left):
                for c in self.candidates(u, at):
                    extend(left[:k] + left[k + 1:], at + len(c.order),
                           Candidate(done.order + c.order, _joined(done.text, c.text)))

        extend(tuple(module.units), pos, Candidate((), ""))
        return found

    def _local_choice(self, left: list[Unit], pos: int, out: Alignment) -> int:
        """In a module that does not fit in full: the unit to walk next. The rule of
        :meth:`_search` at this one position (the rest of the module cannot decide)."""
        seen: set[int] = set()
        options: list[tuple[Score, int]] = []
        for k, u in enumerate(left):
            if self.kind(u) not in seen:
                seen.add(self.kind(u))
                fit = self.best(u, pos)
                if fit is not None:
                    options.append(((fit.score[0] + int(k > 0), fit.score[1]), k))
        if not options:
            return 0
        options.sort()
        score, k = options[0]
        ties = [j for s, j in options if s == score]
        twin = k > 0 and any(self.kind(u) == self.kind(left[k]) for u in left[k + 1:])
        if len(ties) > 1 or twin:
            which = ", ".join(self.name(left[j]) for j in ties)
            if twin:
                which += " and its sibling of the same shapes"
            out.doubts.append(f"ambiguous at {self.span(pos, pos + 1)}: {which} fit alike")
            out.doubt_at.append(pos)
            return 0
        if k:
            out.reordered.append(f"{self.name(left[k])} paired before {self.name(left[0])}")
        return k


def _joined(a: str, b: str) -> str:
    """Two "[unit -> ours, ...]" texts as one."""
    return f"{a[:-1]}, {b[1:]}" if a and b else a or b


def align(ours: list[Shape], theirs: list[tuple[str, Shape]],
          our_names: list[str] | None = None) -> Alignment:
    """Order the reference's (name, shape) list to pair with our shapes (module docstring);
    ``our_names`` give our module tree, which breaks ties between orders."""
    names = [n for n, _ in theirs]
    matcher = _Matcher(ours, [s for _, s in theirs], names, our_names)
    out = Alignment([], [], [])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # one frame level per unit of a deep module
    try:
        matcher.place(_module_tree(names), 0, out)
    except _GaveUp:  # never a hang: refuse instead
        out = Alignment(list(range(len(theirs))), [], [
            f"ambiguous: the reference's modules admit too many orders to search (gave up "
            f"after {SEARCH_LIMIT:,} states); nothing is paired"], doubt_at=[0])
    finally:
        sys.setrecursionlimit(limit)
    return out


# --- the report -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    index: int  # position in our state dict (num_batches_tracked left out)
    ours: str
    ours_shape: Shape
    theirs: str
    theirs_shape: Shape

    def __str__(self) -> str:
        return (f"#{self.index}: ours {self.ours} {fmt_shape(self.ours_shape) or 'scalar'}"
                f" vs reference {self.theirs} {fmt_shape(self.theirs_shape) or 'scalar'}")


@dataclass(frozen=True)
class OutputCheck:
    """Ours against the reference on one random input, after porting (module docstring)."""

    input_shape: Shape
    max_diff: float  # max |ours - reference|
    scale: float  # max |reference|
    problem: str = ""  # why the outputs could not be compared, if they could not

    @property
    def tolerance(self) -> float:
        return OUTPUT_RTOL * self.scale

    @property
    def ok(self) -> bool:
        # A reference that outputs zeros proves nothing: refused rather than trusted.
        return not self.problem and self.scale > 0 and self.max_diff <= self.tolerance

    def __str__(self) -> str:
        where = f"eval outputs on a random {fmt_shape((1, *self.input_shape))} input"
        if self.problem:
            return f"{where}: {self.problem}"
        verdict = "ok" if self.ok else "DIFFER"
        return (f"{where} (batch-norm statistics randomised): max |ours - reference| = "
                f"{self.max_diff:.2e}, tolerance {self.tolerance:.2e} "
                f"({OUTPUT_RTOL:g} x max |reference| {self.scale:.3g}): {verdict}")


@dataclass
class PortReport:
    """What a port paired, everything that did not pair, and the output check."""

    source: str
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (ours, reference) names
    mismatches: list[Mismatch] = field(default_factory=list)
    left_ours: list[tuple[str, Shape]] = field(default_factory=list)
    left_theirs: list[tuple[str, Shape]] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    decided: list[str] = field(default_factory=list)  # ties in order broken by our structure
    by_outputs: list[str] = field(default_factory=list)  # ties settled by trying each pairing
    doubts: list[str] = field(default_factory=list)  # ambiguities: nothing is guessed
    doubt_at: list[int] = field(default_factory=list)  # our positions of the doubts
    check: OutputCheck | None = None
    unchecked: str = ""  # why the outputs were not compared
    ignored: int = 0  # num_batches_tracked entries left out
    copied: int = 0  # tensors actually written into the model
    elements: int = 0  # numbers copied
    model: Any = None  # the model the weights went into
    # What the ported weights are: RANDOM_INIT for a reference built without its published
    # weights, "published (pretrained)", "from the file F", ...
    weights: str = ""

    @property
    def paired(self) -> bool:
        """Every tensor paired, and no doubt about how."""
        return not (self.mismatches or self.left_ours or self.left_theirs or self.doubts)

    @property
    def ok(self) -> bool:
        return self.paired and (self.check is None or self.check.ok)

    @property
    def agreeing_prefix(self) -> int:
        """How many of our tensors pair before the first mismatch or ambiguity."""
        return min([m.index for m in self.mismatches[:1]] + self.doubt_at + [len(self.pairs)])

    def summary(self, limit: int = 20) -> str:
        lines = [f"from {self.source}: {len(self.pairs)} tensors paired, "
                 f"{len(self.mismatches)} mismatched, {len(self.left_ours)} of ours and "
                 f"{len(self.left_theirs)} of the reference left over "
                 f"({self.ignored} num_batches_tracked ignored)"]
        lines += [f"  reordered: {r}" for r in self.reordered]
        lines += [f"  decided by structure: {d}" for d in self.decided]
        lines += [f"  decided by outputs: {d}" for d in self.by_outputs]
        lines += [f"  {d}" for d in self.doubts[:limit]]
        lines += [f"  mismatch {m}" for m in self.mismatches[:limit]]
        if len(self.mismatches) > limit:
            lines.append(f"  ... and {len(self.mismatches) - limit} more mismatches")
        for side, left in (("ours", self.left_ours), ("reference", self.left_theirs)):
            shown = ", ".join(f"{n} {fmt_shape(s)}" for n, s in left[:5])
            if left:
                more = f", ... ({len(left) - 5} more)" if len(left) > 5 else ""
                lines.append(f"  left over in {side}: {shown}{more}")
        if self.check is not None:
            lines.append(f"  checked {self.check}")
        elif self.unchecked:
            lines.append(f"  outputs not compared: {self.unchecked}")
        if self.copied:
            lines.append(f"  copied {self.copied} tensors ({self.elements:,} numbers)")
        return "\n".join(lines)


def pair_up(ours: list[tuple[str, Shape]], theirs: list[tuple[str, Shape]],
            source: str = "") -> PortReport:
    """Pair two (name, shape) lists structurally; the report lists every mismatch and doubt."""
    return _report(align([s for _, s in ours], theirs, [n for n, _ in ours]), ours, theirs,
                   source)


def _report(al: Alignment, ours: list[tuple[str, Shape]], theirs: list[tuple[str, Shape]],
            source: str) -> PortReport:
    ordered = [theirs[i] for i in al.order]
    report = PortReport(source, reordered=al.reordered, decided=al.decided,
                        by_outputs=al.by_outputs, doubts=al.doubts, doubt_at=al.doubt_at)
    for k in range(min(len(ours), len(ordered))):
        (a, sa), (b, sb) = ours[k], ordered[k]
        if sa == sb:
            report.pairs.append((a, b))
        else:
            report.mismatches.append(Mismatch(k, a, sa, b, sb))
    report.left_ours = ours[len(ordered):]
    report.left_theirs = ordered[len(ours):]
    return report


# --- torch side -------------------------------------------------------------------------------

def reference_model(model: str, kwargs: Mapping[str, Any] | None = None,
                    pretrained: bool = False) -> nn.Module:
    """Build ``timm:NAME``, ``torchvision:NAME`` or ``pretrainedmodels:NAME`` without weights
    (its random initialisation), or with its published weights from the user's cache
    (``pretrained``; :mod:`archdsl.pretrained`, never downloaded)."""
    module = _reference_model(model, kwargs)
    if not pretrained:
        return module
    from .pretrained import NotCached, build_published

    try:
        return build_published(model, dict(kwargs or {}), module)
    except NotCached as exc:
        raise PortError(str(exc)) from None
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PortError(f"{model}: the cached published weights do not load: {first}") from None


def _reference_model(model: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    lib, _, name = model.partition(":")
    kw = dict(kwargs or {})
    try:
        if lib == "timm":
            import timm

            if name not in timm.list_models():
                raise PortError(f"timm has no model {name!r}")
            return timm.create_model(name, pretrained=False, **kw)
        if lib == "torchvision":
            import torchvision

            if name not in torchvision.models.list_models():
                raise PortError(f"torchvision has no model {name!r}")
            return torchvision.models.get_model(name, weights=None, **kw)
        if lib == "pretrainedmodels":
            import pretrainedmodels

            if name not in pretrainedmodels.model_names:
                raise PortError(f"pretrainedmodels has no model {name!r}")
            return getattr(pretrainedmodels, name)(pretrained=None, **kw)
    except ImportError as exc:
        raise PortError(f"{model}: cannot import {lib} ({exc})") from None
    except TypeError as exc:
        raise PortError(f"{model}: bad constructor arguments {kw}: {exc}") from None
    raise PortError(f"unknown source {model!r}: expected timm:NAME, torchvision:NAME, "
                    "pretrainedmodels:NAME or a state-dict file")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file: a plain state dict, an archdsl checkpoint (``state_dict``), or
    a training checkpoint with ``model``; ``.safetensors`` files too. No code is unpickled."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise PortError(f"{path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is one clear message
        raise PortError(f"{path}: not a readable state dict ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor)
                                                for v in data.values()):
        raise PortError(f"{path}: holds no state dict (a mapping of names to tensors)")
    return dict(data)


RANDOM_INIT = "random initialisation"


def _source(source: Any, kwargs: Mapping[str, Any] | None, pretrained: bool = False
            ) -> tuple[str, Mapping, nn.Module | None, str]:
    """The source's name, state dict, module (None for a state dict: nothing to run) and what
    its weights are (:attr:`PortReport.weights`)."""
    from torch import nn

    if isinstance(source, nn.Module):
        return type(source).__name__, source.state_dict(), source, "the given module's"
    if isinstance(source, Mapping):
        return "a state dict", source, None, "the given state dict's"
    text = str(source)
    if ":" in text and text.partition(":")[0] in ("timm", "torchvision", "pretrainedmodels"):
        module = reference_model(text, kwargs, pretrained)
        weights = "published (pretrained)" if pretrained else RANDOM_INIT
        return text, module.state_dict(), module, weights
    if pretrained:
        raise PortError("--pretrained goes with --from timm:NAME or torchvision:NAME; a file "
                        "already holds the weights to port")
    return text, read_state_dict(text), None, f"from the file {text}"


def _named_into_reference(target: Any, path: Path, kwargs: Mapping[str, Any] | None
                          ) -> nn.Module:
    """A .safetensors file keeps its tensors sorted by name, not in the order of the module
    that saved them, which pairing by structure needs: load it by name into the spec's
    reference model (which also gives the output check something to run)."""
    from torch import nn

    from .reference import model_reference

    state = read_state_dict(path)
    ref = None if isinstance(target, nn.Module) else model_reference(target)
    if ref is None or ref.model is None:
        raise PortError(f"{path}: a .safetensors file keeps no module order, and the spec "
                        "names no reference model to read it into; save the state dict with "
                        "torch.save (.pt / .pth) instead")
    module = _reference_model(ref.model, {**ref.kwargs, **(kwargs or {})})
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise PortError(f"{path}: a .safetensors file keeps no module order, and its tensors "
                        f"are not those of the spec's reference {ref.model} ({detail}); save "
                        "the state dict with torch.save (.pt / .pth) instead") from None
    module.archdsl_weights_file = path  # type: ignore[assignment] -- named in the report
    return module


def _entries(state: Mapping[str, Any]) -> tuple[list[tuple[str, Shape]], int]:
    kept = [(k, tuple(v.shape)) for k, v in state.items()
            if not k.endswith(IGNORED_SUFFIXES)]
    return kept, len(state) - len(kept)


def _copy_pairs(dest_state: Mapping[str, Any], src_state: Mapping[str, Any],
                pairs: Sequence[tuple[str, str]]) -> int:
    """Copy each reference tensor into its pair of ours; returns the numbers copied."""
    import torch

    numbers = 0
    with torch.no_grad():
        for ours_name, theirs_name in pairs:
            dest = dest_state[ours_name]
            dest.copy_(src_state[theirs_name].detach().to(dest.device))
            numbers += dest.numel()
    return numbers


def port_weights(target: Spec | nn.Module, source: Any = None, *,
                 kwargs: Mapping[str, Any] | None = None, partial: bool = False,
                 verify: bool = True, input_shape: Sequence[int] | None = None,
                 pretrained: bool = False) -> PortReport:
    """Copy a reference's weights into ``target`` (a Spec, which is built, or a module).

    ``source``: ``timm:NAME`` / ``torchvision:NAME`` / ``pretrainedmodels:NAME`` (built with
    ``kwargs``: its random initialisation, or with ``pretrained`` the published weights from the
    user's cache), a state-dict file, an ``nn.Module`` or a state dict;
    by default the spec's ``reference`` model. Raises :class:`PortError` when anything does not
    pair or the pairing is ambiguous, unless ``partial`` (then the pairs before the first
    mismatch or ambiguity are copied), and when the output check fails (module docstring; on by
    default when the source is a model, at the spec's input or ``input_shape``, which a module
    target needs). Nothing is copied into ``target`` when the port is refused.
    The report's ``model`` is the model the weights went into.
    """
    from torch import nn

    if source is None and not isinstance(target, nn.Module):
        from .reference import model_reference

        ref = model_reference(target)
        if ref is None:
            raise PortError(f"{target.path}: the spec names no reference model for these "
                            "knobs; give a source (timm:NAME, torchvision:NAME or a file)")
        source, kwargs = ref.model, {**ref.kwargs, **(kwargs or {})}
    if source is None:
        raise PortError("no source to port from")
    if input_shape is None and not isinstance(target, nn.Module):
        input_shape = target.input_shape
    if isinstance(source, (str, Path)) and str(source).endswith(".safetensors"):
        source = _named_into_reference(target, Path(source), kwargs)
        weights_file = str(source.archdsl_weights_file)
    else:
        weights_file = ""
    # first: a bad source fails fast
    name, theirs_state, reference, weights = _source(source, kwargs, pretrained)
    if weights_file:
        name, weights = weights_file, f"from the file {weights_file}"
    if verify and reference is not None and input_shape is None:
        raise PortError("the output check needs the input shape of a module target: give "
                        "input_shape, or verify=False")
    model = target if isinstance(target, nn.Module) else target.build()
    ours_state = model.state_dict(keep_vars=True)
    ours, ignored = _entries(ours_state)
    theirs, ignored_theirs = _entries(theirs_state)
    al = align([s for _, s in ours], theirs, [n for n, _ in ours])
    if al.ties and verify and reference is not None:
        assert input_shape is not None
        al = settle_ties(al, ours, theirs, model, reference, tuple(input_shape))
    report = _report(al, ours, theirs, name)
    report.weights = weights
    report.ignored = ignored + ignored_theirs
    report.model = model
    if not report.paired and not partial:
        why = "the pairing is ambiguous" if report.doubts else "the tensors do not pair up"
        if al.ties and not verify and reference is not None:
            why += " (the output check may settle it: drop verify=False, --no-verify)"
        raise PortError(f"cannot port from {name}: {why}", report)
    if not report.paired:
        report.unchecked = "a partial port"
    elif not verify:
        report.unchecked = "skipped (verify=False, --no-verify)"
    elif reference is None:
        report.unchecked = "the source is a state dict, with nothing to run: paired by shapes"
    else:
        assert input_shape is not None
        report.check = check_outputs(model, reference, report.pairs, tuple(input_shape))
        if not report.check.ok:
            if report.check.problem:
                why = f"the output check failed: {report.check.problem}"
            else:
                why = ("the outputs differ after pairing (a wrong pairing, or a network that "
                       "computes something else with tensors of the same shapes)")
            raise PortError(f"cannot port from {name}: {why}", report)
    pairs = report.pairs[:report.agreeing_prefix]
    report.elements = _copy_pairs(ours_state, theirs_state, pairs)
    report.copied = len(pairs)
    return report


def _randomised(reference: nn.Module, seed: int) -> tuple[nn.Module, torch.Generator]:
    """An eval copy of the reference with random batch-norm statistics, and the random input
    drawn after them: the same for every check of one port."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    theirs = copy.deepcopy(reference).eval()
    randomise_norm_statistics(theirs, gen)
    return theirs, gen


def check_outputs(model: nn.Module, reference: nn.Module, pairs: Sequence[tuple[str, str]],
                  input_shape: Shape, seed: int = 0) -> OutputCheck:
    """Run copies of ``model`` (with the reference's tensors copied in by ``pairs``) and of the
    reference, batch-norm statistics randomised, in eval mode on one random input. Neither model
    is changed, nor the global random state."""
    import torch

    theirs, gen = _randomised(reference, seed)
    ours = copy.deepcopy(model).eval()
    _copy_pairs(ours.state_dict(keep_vars=True), theirs.state_dict(), pairs)
    x = torch.randn(1, *input_shape, generator=gen)
    with torch.no_grad():
        try:
            b = _main_output(theirs(x.to(_device(theirs))))
        except Exception as exc:  # noqa: BLE001 -- any failure of their forward is one message
            return OutputCheck(input_shape, 0.0, 0.0, f"the reference does not run on it "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0]})")
        a = _main_output(ours(x.to(_device(ours))))
    return compare_outputs(a, b, input_shape)


def compare_outputs(a: torch.Tensor | str, b: torch.Tensor | str, input_shape: Shape
                    ) -> OutputCheck:
    """Ours (``a``) against the reference's (``b``), at :data:`OUTPUT_RTOL`; a string says why
    there is no output."""
    if isinstance(a, str) or isinstance(b, str):
        return OutputCheck(input_shape, 0.0, 0.0, a if isinstance(a, str) else b)
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    if a.shape != b.shape:
        return OutputCheck(input_shape, 0.0, 0.0, f"ours give {fmt_shape(tuple(a.shape))}, "
                           f"the reference {fmt_shape(tuple(b.shape))}")
    diff, scale = float((a - b).abs().max()), float(b.abs().max())
    if not (math.isfinite(diff) and math.isfinite(scale)):
        return OutputCheck(input_shape, diff, scale, "the outputs are not finite")
    if scale == 0:
        return OutputCheck(input_shape, diff, scale, "the reference outputs zeros on it, which "
                           "tells nothing")
    return OutputCheck(input_shape, diff, scale)


# --- ties settled by the outputs --------------------------------------------------------------

def settle_ties(al: Alignment, ours: list[tuple[str, Shape]], theirs: list[tuple[str, Shape]],
                model: nn.Module, reference: nn.Module, input_shape: Shape,
                seed: int = 0) -> Alignment:
    """Settle each tie of ``al`` by trying its candidate pairings (module docstring): the one
    candidate whose outputs equal the reference's is taken; a tie with none or several stays a
    doubt that names them. Nothing is tried unless the ties are all that is left in doubt and
    every candidate pairs all tensors; ``al`` is not changed."""
    import torch

    if not _settleable(al, ours, theirs):
        return al
    settled: dict[int, Candidate] = {}  # by position of the tie in al.ties
    why: dict[int, str] = {}  # how each was settled, or why not
    our_names = [n for n, _ in ours]
    their_names = [n for n, _ in theirs]
    theirs_model, gen = _randomised(reference, seed)
    x = torch.randn(1, *input_shape, generator=gen)
    calls = _module_calls(theirs_model, [t.module for t in al.ties], x)
    state = theirs_model.state_dict()
    for n, tie in enumerate(al.ties):
        matches = _module_trials(tie, calls.get(tie.module, []), model, our_names, their_names,
                                 state)
        if not matches:
            continue  # not tried, or no candidate passes alone: the whole model decides
        if len(matches) == 1:
            settled[n] = matches[0]
            why[n] = "tried on the module alone, on its input in the reference"
        else:
            why[n] = _several(tie, matches, "on the module alone")
    rest = [n for n in range(len(al.ties)) if n not in settled and n not in why]
    if rest and len(settled) < len(why):  # a tie left open: the port is refused anyway
        why.update((n, "not tried on the whole model: another tie is not settled") for n in rest)
    elif rest:
        _model_trials(al, rest, settled, why, model, reference, our_names, their_names,
                      input_shape, seed)
    return _settled(al, settled, why)


def _settleable(al: Alignment, ours: list, theirs: list) -> bool:
    """Whether the ties are the only doubts and, with them paired by any of their candidates
    (which all fit the shapes), every tensor pairs."""
    if len(al.doubts) != len(al.ties) or len(ours) != len(theirs) or len(al.order) != len(ours):
        return False
    order = list(al.order)
    for tie in al.ties:
        if not tie.candidates:
            return False
        order[tie.start:tie.end] = tie.candidates[0].order
    return all(s == theirs[i][1] for (_, s), i in zip(ours, order, strict=True))


def _module_calls(model: nn.Module, prefixes: list[str], x: torch.Tensor
                  ) -> dict[str, list[tuple[tuple, bool, torch.Tensor | str]]]:
    """Run ``model`` on ``x`` and record each call of the modules named ``prefixes``: copies of
    its positional arguments, whether it had keyword arguments, and its main output (copied
    before later in-place operations can change them)."""
    import torch

    calls: dict[str, list[tuple[tuple, bool, Any]]] = {p: [] for p in prefixes}
    handles = []

    def clone(value: Any) -> Any:
        return value.detach().clone() if isinstance(value, torch.Tensor) else value

    for prefix in prefixes:
        module = model.get_submodule(prefix)

        def before(_m: nn.Module, args: tuple, kwargs: dict, prefix: str = prefix) -> None:
            calls[prefix].append((tuple(clone(a) for a in args), bool(kwargs), None))

        def after(_m: nn.Module, _args: tuple, output: Any, prefix: str = prefix) -> None:
            args, kw, _ = calls[prefix][-1]
            calls[prefix][-1] = (args, kw, clone(_main_output(output)))

        handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(module.register_forward_hook(after))
    try:
        with torch.no_grad():
            model(x.to(_device(model)))
    except Exception:  # noqa: BLE001 -- the whole-model trials report why it does not run
        return {}
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _module_trials(tie: Tie, calls: list, model: nn.Module, our_names: list[str],
                   their_names: list[str], state: Mapping[str, Any]) -> list[Candidate] | None:
    """The candidates of ``tie`` whose module of ours, given the input the reference module got,
    gives its output; None when that cannot be tried (no module of ours holds exactly these
    tensors, the reference module ran other than once on one tensor, ours does not run)."""
    import torch

    if tie.ours is None or len(calls) != 1:
        return None
    args, keywords, expected = calls[0]
    if keywords or len(args) != 1 or not isinstance(args[0], torch.Tensor) \
            or not isinstance(expected, torch.Tensor):
        return None
    ours = copy.deepcopy(model.get_submodule(tie.ours)).eval()
    dest = ours.state_dict(keep_vars=True)
    strip = len(tie.ours) + 1 if tie.ours else 0
    names = [n[strip:] for n in our_names[tie.start:tie.end]]
    matches = []
    for candidate in tie.candidates:
        _copy_pairs(dest, state, [(a, their_names[i])
                                  for a, i in zip(names, candidate.order, strict=True)])
        try:
            with torch.no_grad():
                out = _main_output(ours(args[0].clone().to(_device(ours))))
        except Exception:  # noqa: BLE001 -- not the reference module's input: try the whole
            return None
        check = compare_outputs(out, expected, tuple(args[0].shape))
        if check.problem:
            return None  # other shapes, no tensor, zeros: this module alone tells nothing
        if check.ok:
            matches.append(candidate)
    return matches


def _model_trials(al: Alignment, rest: list[int], settled: dict[int, Candidate],
                  why: dict[int, str], model: nn.Module, reference: nn.Module,
                  our_names: list[str], their_names: list[str], input_shape: Shape,
                  seed: int) -> None:
    """Settle the ties ``rest`` together by whole-model output checks, one per combination of
    their candidates (at most :data:`MAX_MODEL_TRIALS`); fills ``settled`` or ``why``."""
    import itertools

    ties = [al.ties[n] for n in rest]
    trials = math.prod(len(t.candidates) for t in ties)
    if trials > MAX_MODEL_TRIALS:
        for n in rest:
            why[n] = (f"not tried: the module alone cannot be run, and the whole model would "
                      f"need {trials} runs (more than {MAX_MODEL_TRIALS})")
        return
    order = list(al.order)
    for n, candidate in settled.items():
        order[al.ties[n].start:al.ties[n].end] = candidate.order
    passed = []
    for combination in itertools.product(*(t.candidates for t in ties)):
        for tie, candidate in zip(ties, combination, strict=True):
            order[tie.start:tie.end] = candidate.order
        pairs = [(a, their_names[i]) for a, i in zip(our_names, order, strict=True)]
        if check_outputs(model, reference, pairs, input_shape, seed).ok:
            passed.append(combination)
    if len(passed) == 1:
        for n, candidate in zip(rest, passed[0], strict=True):
            settled[n] = candidate
            why[n] = "tried on the whole model"
        return
    for k, n in enumerate(rest):
        matches = list(dict.fromkeys(c[k] for c in passed))
        why[n] = _several(al.ties[n], matches, "on the whole model")


def _several(tie: Tie, matches: list[Candidate], where: str) -> str:
    """Why the outputs do not settle ``tie``: none or several of its candidates reproduce them."""
    shown = matches or list(tie.candidates)
    what = (f"{len(matches)} of its {len(tie.candidates)} pairings that fit the shapes give "
            f"the reference's outputs" if matches else
            f"none of its {len(tie.candidates)} pairings that fit the shapes gives the "
            f"reference's outputs")
    return f"{what} ({where}): " + "; ".join(c.text for c in shown)


def _settled(al: Alignment, settled: dict[int, Candidate], why: dict[int, str]) -> Alignment:
    """``al`` with the settled ties in their pairing and the others' doubts saying why not."""
    order = list(al.order)
    doubts, doubt_at, ties, by_outputs = [], [], [], list(al.by_outputs)
    for n, tie in enumerate(al.ties):
        if n in settled:
            order[tie.start:tie.end] = settled[n].order
            by_outputs.append(f"{tie.module or '(the reference)'}: {settled[n].text}, the only "
                              f"one of the {len(tie.candidates)} pairings that fit the shapes "
                              f"to give the reference's outputs ({why[n]})")
        else:
            doubts.append(f"{tie.doubt}; {why[n]}" if n in why else tie.doubt)
            doubt_at.append(tie.start)
            ties.append(tie)
    return replace(al, order=order, doubts=doubts, doubt_at=doubt_at, ties=ties,
                   by_outputs=by_outputs)


def _main_output(out: Any) -> torch.Tensor | str:
    """The main output of a forward pass: the tensor, the first of a tuple (aux heads), or the
    first value of a mapping; a string says why there is none."""
    import torch

    while not isinstance(out, torch.Tensor):
        if isinstance(out, (tuple, list)) and out:
            out = out[0]
        elif isinstance(out, Mapping) and out:
            out = next(iter(out.values()))
        else:
            return f"the output is a {type(out).__name__}, not a tensor"
    return out


def _device(module: nn.Module) -> torch.device:
    import torch

    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def randomise_norm_statistics(model: Any, generator: torch.Generator | None = None) -> None:
    """Give every batch norm running statistics and affine parameters that are not the
    identity, so that a port that swapped two of them would change the outputs (imports torch).
    """
    import torch
    from torch import nn

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.1, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5, generator=generator)
                    m.bias.normal_(0, 0.1, generator=generator)
