"""Early stopping that suits multi-objective studies (Optuna refuses to prune those).

A trial that is worse than costlier trials may still end on the Pareto front, because it is
cheaper; only trials that cost as much or less can show that it is dominated. The rule:

    Stop trial T (exact cost c) at step s when
      1. s >= warmup_steps, and
      2. at least ``min_peers`` other trials with cost <= c have reported step s ("peers"), and
      3. at least k = max(1, ceil(quantile * #peers)) of the peers are strictly better than T,
    comparing each trial's best value up to step s (direction: maximize or minimize).

With the default quantile 0.5, T stops when it is worse than the median of the trials that
cost no more (half of them beat it); quantile 1.0 stops only when every such trial beats it.
The decision needs nothing but (cost, curve) records: :meth:`CostAwareStopping.decide` is a pure
function. :class:`StudyStopper` reads the records from an Optuna study, where multi-objective
trials cannot ``report`` and keep their curve as the user attribute ``curve`` instead (a list of
``[step, value]``; intermediate values are read when present).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

CURVE_ATTR = "curve"


@dataclass(frozen=True)
class Record:
    """One trial as the rule sees it: its exact cost and its curve (step -> value)."""

    cost: float
    curve: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    stop: bool
    reason: str
    peers: int = 0
    better: int = 0


@dataclass(frozen=True)
class CostAwareStopping:
    """The rule of this module's docstring, with its three settings."""

    direction: Literal["maximize", "minimize"] = "maximize"
    min_peers: int = 4
    warmup_steps: int = 1
    quantile: float = 0.5

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be maximize or minimize, not {self.direction!r}")
        if not 0 < self.quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], not {self.quantile}")
        if self.min_peers < 1:
            raise ValueError(f"min_peers must be at least 1, not {self.min_peers}")

    def decide(self, cost: float, step: int, curve: Mapping[int, float],
               others: Iterable[Record]) -> Decision:
        """Whether the trial of this cost, with this curve so far, stops at ``step``."""
        if step < self.warmup_steps:
            return Decision(False, f"step {step} is inside the warm-up ({self.warmup_steps})")
        mine = self._best(curve, step)
        if mine is None:
            return Decision(False, f"the trial has no value up to step {step}")
        peers = [b for r in others if r.cost <= cost and step in r.curve
                 and (b := self._best(r.curve, step)) is not None]
        if len(peers) < self.min_peers:
            return Decision(False, f"{len(peers)} trials of cost <= {cost:g} reached step {step}"
                                   f" (fewer than {self.min_peers})", len(peers))
        better = sum(self._better(b, mine) for b in peers)
        need = max(1, math.ceil(self.quantile * len(peers)))
        stop = better >= need
        return Decision(stop, f"{better} of {len(peers)} trials of cost <= {cost:g} beat it at "
                              f"step {step} ({'stop' if stop else 'go on'}: {need} needed)",
                        len(peers), better)

    def should_stop(self, cost: float, step: int, curve: Mapping[int, float],
                    others: Iterable[Record]) -> bool:
        return self.decide(cost, step, curve, others).stop

    def _best(self, curve: Mapping[int, float], step: int) -> float | None:
        values = [v for s, v in curve.items() if s <= step and math.isfinite(v)]
        if not values:
            return None
        return max(values) if self.direction == "maximize" else min(values)

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


def curve_of(trial: Any) -> dict[int, float]:
    """A frozen Optuna trial's curve: intermediate values, else the ``curve`` user attribute."""
    if trial.intermediate_values:
        return {int(s): float(v) for s, v in trial.intermediate_values.items()}
    return {int(s): float(v) for s, v in trial.user_attrs.get(CURVE_ATTR, [])}


def records_from_study(study: Any, cost_attr: str = "macs",
                       exclude: int | None = None) -> list[Record]:
    """The (cost, curve) of every complete, pruned or running trial that has a cost (user
    attribute ``cost_attr``), except trial number ``exclude``."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return [Record(float(t.user_attrs[cost_attr]), curve_of(t))
            for t in study.get_trials(deepcopy=False, states=states)
            if t.number != exclude and cost_attr in t.user_attrs]


@dataclass
class StudyStopper:
    """The rule on a live Optuna trial. ``stopper(trial, step, value)`` appends the value to the
    trial's ``curve`` user attribute and says whether to stop; :meth:`decide` takes the whole
    curve from its caller instead (the search driver keeps it), publishes it as the ``curve``
    user attribute, so that running trials see each other's, and decides. The trial's cost is
    its ``cost_attr`` user attribute (set before training)."""

    rule: CostAwareStopping = field(default_factory=CostAwareStopping)
    cost_attr: str = "macs"
    last: Decision | None = None

    def __call__(self, trial: Any, step: int, value: float) -> bool:
        curve = [(int(s), float(v)) for s, v in trial.user_attrs.get(CURVE_ATTR, [])]
        return self.decide(trial, [*curve, (int(step), float(value))]).stop

    def decide(self, trial: Any, curve: Iterable[tuple[int, float]]) -> Decision:
        """Publish ``curve`` (``(step, value)`` in order; the last one is the step to decide
        at) as the trial's ``curve`` attribute and apply the rule."""
        points = [[int(s), float(v)] for s, v in curve]
        trial.set_user_attr(CURVE_ATTR, points)
        cost = float(trial.user_attrs[self.cost_attr])
        others = records_from_study(trial.study, self.cost_attr, exclude=trial.number)
        self.last = self.rule.decide(cost, points[-1][0], {s: v for s, v in points}, others)
        return self.last
