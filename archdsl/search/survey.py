"""What a space holds: its size, the exact cost range, and the share inside the budget.

Cost is not monotone in every dimension (a wider stem can make a later projection shortcut
unnecessary; an alternative can be cheaper at one width and dearer at another), so bounds found
by pushing each dimension to its ends are not guaranteed. The survey evaluates every candidate
when the space has at most ``limit`` of them (exact figures), and otherwise a seeded sample drawn
uniformly per dimension (figures of the sample, said so).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from ..cost.report import Counts
from ..cost.units import human
from ..errors import SpecError, SpecErrors
from .space import SearchSpace, assignments

LIMIT = 5000  # candidates evaluated exhaustively (about a millisecond each)
SAMPLES = 2000  # candidates drawn beyond that
METRICS = ("params", "macs")


@dataclass
class Extreme:
    value: int
    values: dict[str, Any]


@dataclass
class Survey:
    size: float  # architectures (training knobs left out); math.inf when continuous
    method: str  # "exhaustive" or "sample"
    evaluated: int = 0
    invalid: int = 0
    first_invalid: SpecError | None = None
    excluded: int = 0  # valid, but a constraint does not hold
    inside: int = 0  # valid, constraints hold, inside the budget
    low: dict[str, Extreme] = field(default_factory=dict)  # over valid candidates (constraints)
    high: dict[str, Extreme] = field(default_factory=dict)
    seed: int = 0

    @property
    def share(self) -> float:
        return self.inside / self.evaluated if self.evaluated else 0.0

    def share_text(self) -> str:
        if self.method == "exhaustive":
            pct = 100 * self.share
            return f"{self.inside:,} of {self.evaluated:,} candidates ({pct:.1f}%, exact)"
        se = math.sqrt(self.share * (1 - self.share) / self.evaluated) if self.evaluated else 0
        return (f"about {100 * self.share:.1f}% +- {100 * se:.1f}% ({self.inside:,} of a sample "
                f"of {self.evaluated:,}, seed {self.seed})")


def survey(space: SearchSpace, limit: int = LIMIT, samples: int = SAMPLES,
           seed: int = 0) -> Survey:
    size = space.size(architecture_only=True)
    if size <= limit:
        out = Survey(size, "exhaustive")
        candidates: Any = space.enumerate()
    else:
        out = Survey(size, "sample", seed=seed)
        rng = random.Random(seed)
        candidates = (space.sample_values(rng) for _ in range(samples))
    for values in candidates:
        out.evaluated += 1
        try:
            if not space.constraints_hold(values):
                out.excluded += 1
                continue
            spec = space.resolve(values)
        except SpecErrors as exc:
            out.invalid += 1
            out.first_invalid = out.first_invalid or exc.errors[0]
            continue
        counts = space.counts(spec)
        arch = {k: v for k, v in values.items() if space.choice(k).architecture}
        _extremes(out, counts, arch, space.budget.metric if space.budget else None)
        if space.budget is None or space.budget.holds(counts):
            out.inside += 1
    return out


def _extremes(out: Survey, counts: Counts, values: dict[str, Any], budget: str | None) -> None:
    for m in {*METRICS, *([budget] if budget else [])}:
        v = counts.get(m)
        if m not in out.low or v < out.low[m].value:
            out.low[m] = Extreme(v, dict(values))
        if m not in out.high or v > out.high[m].value:
            out.high[m] = Extreme(v, dict(values))


def refusal(space: SearchSpace, s: Survey) -> SpecErrors | None:
    """The located error for a space with nothing inside its budget (None when something is):
    it names what to move."""
    if s.inside:
        return None
    sampled = "" if s.method == "exhaustive" else f" (in a sample of {s.evaluated:,})"
    if s.evaluated == s.invalid:
        assert s.first_invalid is not None
        return SpecErrors([SpecError(s.first_invalid.loc, f"no candidate of the space is "
                                                          f"valid{sampled}; the first: "
                                                          f"{s.first_invalid.message}")])
    if s.evaluated == s.invalid + s.excluded:
        loc = space.constraints[0].loc
        return SpecErrors.one(loc, f"no valid candidate satisfies the constraints{sampled}: "
                                   "loosen them")
    b = space.budget
    assert b is not None
    lo, hi = s.low[b.metric], s.high[b.metric]
    if lo.value > b.high:
        what = (f"the cheapest candidate{sampled} has {human(lo.value)} {b.metric} "
                f"({_values(lo.values)}): raise the budget's "
                f"{'high end' if b.low is not None else 'maximum'} to at least {human(lo.value)}")
    elif b.low is not None and hi.value < b.low:
        what = (f"the dearest candidate{sampled} has {human(hi.value)} {b.metric} "
                f"({_values(hi.values)}): lower the budget's low end to at most "
                f"{human(hi.value)}, or raise the high end of a range")
    else:
        what = (f"candidates{sampled} fall on both sides of the band: widen it (the space spans "
                f"{human(lo.value)} to {human(hi.value)} {b.metric})")
    return SpecErrors.one(space.budget_loc, f"nothing in the space is inside the budget "
                                            f"{b.describe()}: {what}")


_values = assignments
