"""Stand-ins for :class:`archdsl.search.space.SearchSpace` that follow its contract exactly
(docs/search.md), for the sampler and driver tests.

- :class:`AnalyticSpace`: any dimensions, a cost given by a Python function, a budget; the
  architecture hash is the hash of the architecture values. Enough for the sampler.
- :func:`digits_space`: a small CNN on 8x8x1 images whose candidates are real specs (resolved,
  costed and built by archdsl), for the driver and the trial folders.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from archdsl.cost.report import Counts
from archdsl.search.space import Budget, Dimension, is_active

DIGITS_BUDGET = Budget("params", None, 12_000)


class AnalyticSpace:
    """A space whose cost is ``cost_fn(values)`` (one number, the budget's metric)."""

    def __init__(self, dimensions: list[Dimension], cost_fn: Callable[[dict], float],
                 budget: Budget | None, objectives=(("accuracy", "maximize"),),
                 sampler: str | None = None, seed: int | None = 0,
                 path: Path = Path("fake.yaml")) -> None:
        self.dimensions = dimensions
        self.cost_fn = cost_fn
        self.budget = budget
        self.objectives = list(objectives)
        self.sampler = sampler
        self.seed = seed
        self.path = path
        self.calls = 0

    def active(self, values: Mapping[str, Any]) -> list[Dimension]:
        out: list[Dimension] = []
        for d in self.dimensions:
            if is_active(d, values):
                out.append(d)
        return out

    def complete(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for d in self.active(values):
            if d.name not in values:
                raise KeyError(d.name)
            v = values[d.name]
            if d.kind == "categorical":
                assert v in d.choices, (d.name, v)
            else:
                assert d.low <= v <= d.high, (d.name, v)
            out[d.name] = v
        return out

    def cost(self, values: Mapping[str, Any]) -> Counts:
        c = int(self.cost_fn(self.complete(values)))
        return Counts(params=c, macs=c, fvcore=c, activations=0)

    def feasible(self, values: Mapping[str, Any]) -> bool:
        self.calls += 1
        try:
            c = self.cost_fn(self.complete(values))
        except (KeyError, AssertionError):
            return False
        b = self.budget
        return b is None or ((b.low is None or c >= b.low) and c <= b.high)

    def arch_hash(self, values: Mapping[str, Any]) -> str:
        v = self.complete(values)
        arch = {d.name: v[d.name] for d in self.active(v) if d.architecture}
        knobs = {k: x for k, x in v.items() if k not in arch}
        return hashlib.sha256(json.dumps([arch, knobs], sort_keys=True).encode()).hexdigest()

    def training_knobs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        v = self.complete(values)
        return {d.name: v[d.name] for d in self.active(v) if not d.architecture}


DIGITS_DIMS = [
    Dimension("depth", "int", low=1, high=3),
    Dimension("width", "categorical", choices=(4, 8, 16, 32)),
    Dimension("head", "categorical", choices=("gap", "flat")),
    Dimension("hidden", "categorical", choices=(16, 64), condition=("head", ("flat",))),
]


class DigitsSpace(AnalyticSpace):
    """Conv stacks on 8x8x1 digits; every candidate a real, buildable spec."""

    def __init__(self, budget: Budget | None = DIGITS_BUDGET,
                 objectives=(("accuracy", "maximize"),), sampler: str | None = "tpe",
                 seed: int | None = 0, path: Path | None = None) -> None:
        super().__init__(list(DIGITS_DIMS), self._params, budget, objectives, sampler, seed,
                         path or Path(__file__).with_name("search_fakes.py"))
        self._folder = Path(tempfile.mkdtemp(prefix="digits_space_"))
        self._specs: dict[str, Any] = {}

    def concrete_spec(self, values: Mapping[str, Any]) -> str:
        v = self.complete(values)
        layers = [f"  - conv 3x3 {v['width'] * 2 ** i}" for i in range(v["depth"])]
        if v["head"] == "gap":
            layers += ["  - gap", "  - linear $num_classes"]
        else:
            layers += ["  - flatten", f"  - linear {v['hidden']} relu", "  - linear $num_classes"]
        return textwrap.dedent("""\
            name: digits_candidate
            input: [1, 8, 8]
            params: {num_classes: 10}
            defaults:
              conv: {act: relu}
            network:
            """) + "\n".join(layers) + "\n"

    def resolve(self, values: Mapping[str, Any]) -> Any:
        import archdsl

        text = self.concrete_spec(values)
        if text not in self._specs:
            path = self._folder / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
            path.write_text(text, encoding="utf-8")
            self._specs[text] = archdsl.load(path)
        return self._specs[text]

    def cost(self, values: Mapping[str, Any]) -> Counts:
        return self.resolve(values).cost().total

    def _params(self, values: Mapping[str, Any]) -> float:
        return self.cost(values).params

    def arch_hash(self, values: Mapping[str, Any]) -> str:
        spec = self.resolve(values)  # the resolved network, not the knob values
        return hashlib.sha256(repr(spec.ir).encode()).hexdigest()

