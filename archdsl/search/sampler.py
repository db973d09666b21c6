"""An Optuna sampler that only ever yields candidates inside the space's budget, each new.

Optuna creates a trial's row before it asks the sampler for anything, and fixes a parameter as
soon as it is suggested; its ``constraints_func`` only tells a sampler *afterwards* that a trial
was infeasible. :class:`BudgetSampler` therefore decides a trial's whole candidate in
``before_trial``, before any parameter exists, and serves it from ``sample_independent``:

1. draw a full candidate from the inner sampler (its ``sample_relative`` over its own relative
   search space, then ``sample_independent`` for every other dimension active under the values
   drawn so far, so conditional dimensions work with TPE, NSGA-II and random alike);
2. keep it when ``space.feasible(values)`` holds and no trial that is running, complete or
   pruned has the same ``space.arch_hash(values)``; otherwise redraw, up to ``redraws`` times;
3. repair (when ``repair`` is on): take the inner sampler's first proposal and move ONE numeric
   architecture dimension (an integer, or a float with a step) to the nearest grid value that
   makes the candidate feasible and new; of the dimensions that can, the one moved least
   relative to its range wins (ties: the first in the space's order);
4. fall back to the feasible candidate nearest the inner sampler's proposal: rejection sampling
   over the dimensions (each uniform over its range or choices), up to ``rejections`` draws, until
   ``nearest_pool`` feasible new candidates are found (or, when the space is finite and has at
   most ``enumerate_limit`` candidates and the draws found none, all its feasible new ones); of
   those, the one nearest the first proposal (:func:`distance`) is taken. So the inner sampler
   still steers when its proposals are all over the budget: TPE, which never sees an infeasible
   trial, keeps proposing the large networks that score best, and gets the nearest one inside
   (a pick among uniform draws alone would ignore it);
5. if every feasible candidate found is a duplicate, reuse one: the trial gets the user attribute
   ``duplicate_of`` (the number of the trial with that architecture, a complete one preferred)
   and the driver copies that trial's values instead of training again.

If nothing feasible is found at all the trial gets ``no_candidate`` and no parameters: a trial
with an over-budget candidate is never created. The decision is written to the trial's user
attributes (``arch_hash``, ``candidate``, ``sampled_by``) at once, then the study is read again:
when another worker claimed the same architecture meanwhile, this trial draws again (both may;
neither keeps a duplicate).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from .section import SAMPLERS
from .space import draw, is_active

#: Trials whose architecture counts as taken: trained, being trained, or stopped early.
TAKEN = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED, TrialState.WAITING)
PRIMITIVE = (type(None), bool, int, float, str)
REPAIR_POINTS = 64  # grid values tried per dimension when repairing, nearest first
NEAREST_POOL = 64  # feasible new candidates among which the fallback takes the nearest

Values = dict[str, Any]


# --- dimensions as Optuna distributions ---------------------------------------------------------
def encode_choice(choice: Any) -> Any:
    """Optuna's categorical choices must be None, bool, int, float or str: others as JSON."""
    return choice if isinstance(choice, PRIMITIVE) else json.dumps(choice, sort_keys=True)


def distribution(dim: Any) -> BaseDistribution:
    """The Optuna distribution of one :class:`archdsl.search.space.Dimension`."""
    if dim.kind == "categorical":
        return CategoricalDistribution([encode_choice(c) for c in dim.choices])
    if dim.kind == "int":
        return IntDistribution(int(dim.low), int(dim.high), log=bool(dim.log),
                               step=int(dim.step or 1))
    return FloatDistribution(float(dim.low), float(dim.high), log=bool(dim.log),
                             step=None if dim.step is None else float(dim.step))


def decode(dim: Any, value: Any) -> Any:
    """A value of :func:`distribution` back to the dimension's own choice."""
    if dim.kind != "categorical":
        return value
    for choice in dim.choices:
        if encode_choice(choice) == value:
            return choice
    raise ValueError(f"{dim.name}: {value!r} is not one of its choices")


def suggest(trial: optuna.trial.BaseTrial, dim: Any) -> Any:
    """Suggest one dimension on a trial (through whatever sampler the study has)."""
    dist = distribution(dim)
    if isinstance(dist, CategoricalDistribution):
        return decode(dim, trial.suggest_categorical(dim.name, dist.choices))
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(dim.name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(dim.name, dist.low, dist.high, step=dist.step, log=dist.log)


def grid(dim: Any) -> list[Any] | None:
    """Every value of a finite dimension in order, or None (a continuous float)."""
    if dim.kind == "categorical":
        return list(dim.choices)
    if dim.kind == "int":
        return list(range(int(dim.low), int(dim.high) + 1, int(dim.step or 1)))
    if dim.step is None:
        return None
    n = int(math.floor((dim.high - dim.low) / dim.step + 1e-9))
    return [dim.low + i * dim.step for i in range(n + 1)]


def distance(dims: Sequence[Any], a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """How far apart two candidates are: per dimension, 1 for a different choice (or one that
    exists in only one of them), else the difference over the dimension's range (of the
    logarithms for a log range)."""
    total = 0.0
    for dim in dims:
        x, y = a.get(dim.name, _ABSENT), b.get(dim.name, _ABSENT)
        if x is _ABSENT and y is _ABSENT:
            continue
        if x is _ABSENT or y is _ABSENT or dim.kind == "categorical":
            total += 0.0 if x == y else 1.0
            continue
        low, high, x, y = float(dim.low), float(dim.high), float(x), float(y)
        if dim.log:
            low, high, x, y = (math.log(v) for v in (low, high, x, y))
        total += abs(x - y) / (high - low) if high > low else 0.0
    return total


_ABSENT = object()


# --- the sampler ----------------------------------------------------------------------------------
class BudgetSampler(BaseSampler):
    """Wrap ``inner`` (TPE, NSGA-II, random, ...) so that every trial it yields is feasible
    and, while new architectures can be found, new (see the module's docstring)."""

    def __init__(self, inner: BaseSampler, space: Any, *, redraws: int = 32,
                 repair: bool = True, rejections: int = 2000, enumerate_limit: int = 5000,
                 nearest_pool: int = NEAREST_POOL, seed: int | None = None) -> None:
        self.inner = inner
        self.space = space
        self.redraws = redraws
        self.repair = repair
        self.rejections = rejections
        self.enumerate_limit = enumerate_limit
        self.nearest_pool = nearest_pool
        self._rng = random.Random(seed)
        self._decided: dict[int, Values] = {}
        self._feasible: dict[tuple, bool] = {}
        self._hash: dict[tuple, str] = {}
        self.stats: dict[str, int] = {}  # how candidates were found, for the benchmark

    def __str__(self) -> str:
        return f"BudgetSampler({self.inner})"

    # The whole candidate is decided in before_trial; nothing is sampled "relatively" outside.
    def infer_relative_search_space(self, study: Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        decided = self._decided.get(trial._trial_id)
        if decided is not None and param_name in decided:
            dim = self._dim(param_name)
            return encode_choice(decided[param_name]) if dim.kind == "categorical" else \
                decided[param_name]
        if self._has(param_name) and "fixed_params" not in trial.system_attrs:
            raise NoCandidate(f"trial {trial.number}: no candidate inside the budget was found, "
                              f"so {param_name!r} has no value")
        # A parameter outside the space (the user's own suggest): the inner sampler's business.
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)
        if trial.system_attrs.get("fixed_params"):
            return  # an enqueued trial: its values are given; the driver checks them
        for _ in range(3):  # claim, then check that no other worker claimed it meanwhile
            values, how, duplicate_of = self.choose(study, trial)
            self.stats[how] = self.stats.get(how, 0) + 1
            storage, tid = study._storage, trial._trial_id
            if values is None:
                storage.set_trial_user_attr(tid, "no_candidate", True)
                return
            self._decided[tid] = values
            key = self._key(values)
            storage.set_trial_user_attr(tid, "arch_hash", self._hash[key])
            storage.set_trial_user_attr(tid, "candidate", values)
            storage.set_trial_user_attr(tid, "sampled_by", how)
            if duplicate_of is not None:
                storage.set_trial_user_attr(tid, "duplicate_of", duplicate_of)
                return
            if not any(t._trial_id != tid for t in self._taken(study).get(self._hash[key], [])):
                return
        storage.set_trial_user_attr(tid, "duplicate_of", self._taken_by(study, values, tid))

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._decided.pop(trial._trial_id, None)
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self._rng = random.Random()

    def decided(self, trial_id: int) -> Values | None:
        """The candidate chosen for a trial of this process (None: none was found)."""
        return self._decided.get(trial_id)

    # --- choosing ------------------------------------------------------------------------------
    def choose(self, study: Study, trial: FrozenTrial) -> tuple[Values | None, str, int | None]:
        """(values, how they were found, the trial they duplicate or None)."""
        taken = self._taken(study, exclude=trial._trial_id)
        duplicates: list[Values] = []

        def new(values: Values | None) -> bool:
            if values is None or not self.feasible(values):
                return False
            if self._hash[self._key(values)] in taken:
                duplicates.append(values)
                return False
            return True

        first: Values | None = None
        for i in range(max(1, self.redraws)):
            values = self._draw_inner(study, trial)
            first = first or values
            if new(values):
                return values, "inner" if i == 0 else "inner-redraw", None
        if self.repair and first is not None:
            values = self._repair(first, new)
            if values is not None:
                return values, "repair", None
        found: list[Values] = []
        for _ in range(self.rejections):
            values = {}
            for dim in self.space.dimensions:
                if is_active(dim, values):
                    values[dim.name] = draw(dim, self._rng)
            if new(values):
                found.append(values)
                if len(found) >= self.nearest_pool:
                    break
        how = "nearest"
        if not found:
            found = [v for v in (self._enumerate() or []) if new(v)]
            how = "enumerate"
        if found:
            if first is None:
                return found[0], how, None
            return min(found, key=lambda v: distance(self.space.dimensions, v, first)), how, None
        if duplicates:
            values = duplicates[0]
            return values, "duplicate", self._pick_original(taken[self._hash[self._key(values)]])
        return None, "none", None

    def _draw_inner(self, study: Study, trial: FrozenTrial) -> Values:
        rel_space = self.inner.infer_relative_search_space(study, trial)
        rel_space = {k: d for k, d in rel_space.items() if self._has(k) and
                     d == distribution(self._dim(k))}
        relative = self.inner.sample_relative(study, trial, rel_space) if rel_space else {}
        values: Values = {}
        for dim in self.space.dimensions:
            if not is_active(dim, values):
                continue
            dist = distribution(dim)
            if dim.name in relative:
                raw = relative[dim.name]
            elif dist.single():
                raw = optuna.distributions._get_single_value(dist)
            else:
                raw = self.inner.sample_independent(study, trial, dim.name, dist)
            values[dim.name] = decode(dim, raw)
        return values

    def _repair(self, values: Values, new: Any) -> Values | None:
        best: tuple[float, int, Values] | None = None
        for order, dim in enumerate(self.space.dimensions):
            if dim.kind == "categorical" or not dim.architecture or dim.name not in values:
                continue
            points = grid(dim)
            if points is None or len(points) < 2:
                continue
            span = float(points[-1] - points[0])
            for point in sorted(points, key=lambda p: abs(p - values[dim.name]))[:REPAIR_POINTS]:
                moved = abs(point - values[dim.name]) / span
                if best is not None and (moved, order) >= best[:2]:
                    break
                candidate = {**values, dim.name: point}
                if point != values[dim.name] and new(candidate):
                    best = (moved, order, candidate)
                    break
        return None if best is None else best[2]

    def _enumerate(self) -> list[Values] | None:
        """Every candidate of a finite space (conditions applied), or None when too many."""
        out: list[Values] = []

        def walk(i: int, values: Values) -> Iterator[Values]:
            dims = self.space.dimensions
            while i < len(dims) and not is_active(dims[i], values):
                i += 1
            if i == len(dims):
                yield dict(values)
                return
            points = grid(dims[i])
            if points is None:
                raise _Infinite
            for p in points:
                values[dims[i].name] = p
                yield from walk(i + 1, values)
                del values[dims[i].name]

        try:
            for values in itertools.islice(walk(0, {}), self.enumerate_limit + 1):
                out.append(values)
        except _Infinite:
            return None
        return out if len(out) <= self.enumerate_limit else None

    # --- the study's record ---------------------------------------------------------------------
    def _taken(self, study: Study, exclude: int | None = None) -> dict[str, list[FrozenTrial]]:
        """Architecture hash -> the trials that trained it, train it or wait for it."""
        out: dict[str, list[FrozenTrial]] = {}
        for t in study.get_trials(deepcopy=False, states=TAKEN):
            h = t.user_attrs.get("arch_hash")
            if h and t._trial_id != exclude and not {"no_candidate", "surplus"} & set(
                    t.user_attrs):
                out.setdefault(h, []).append(t)
        return out

    def _taken_by(self, study: Study, values: Values, tid: int) -> int | None:
        others = [t for t in self._taken(study, exclude=tid).get(self._hash[self._key(values)], [])]
        return self._pick_original(others) if others else None

    @staticmethod
    def _pick_original(trials: list[FrozenTrial]) -> int:
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        return min(done or trials, key=lambda t: t.number).number

    # --- memoised space queries -----------------------------------------------------------------
    def feasible(self, values: Values) -> bool:
        key = self._key(values)
        if key not in self._feasible:
            ok = bool(self.space.feasible(values))
            self._feasible[key] = ok
            if ok:
                self._hash[key] = self.space.arch_hash(values)
        return self._feasible[key]

    @staticmethod
    def _key(values: Mapping[str, Any]) -> tuple:
        return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in values.items()))

    def _dim(self, name: str) -> Any:
        for dim in self.space.dimensions:
            if dim.name == name:
                return dim
        raise KeyError(name)

    def _has(self, name: str) -> bool:
        return any(d.name == name for d in self.space.dimensions)


class NoCandidate(Exception):
    """The sampler found no feasible candidate for this trial (it has no parameters)."""


class _Infinite(Exception):
    """A continuous dimension: the space cannot be enumerated."""


def make_inner(name: str | None, seed: int | None, n_objectives: int) -> BaseSampler:
    """Optuna's sampler by the space's name for it (default: TPE for one objective, NSGA-II
    for several)."""
    name = (name or ("tpe" if n_objectives == 1 else "nsga2")).lower()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name in ("nsga2", "nsgaii"):
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r} ({', '.join(SAMPLERS)})")
