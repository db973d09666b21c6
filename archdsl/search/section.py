"""The ``search:`` section of a space: budget, constraints, objectives, sampler, seed, training.

```yaml
search:
  budget: {macs: 40M}                   # a maximum; {macs: [38M, 42M]} is a band (iso-cost)
  constraints: [$(c2 >= c1)]            # expressions over the knobs, all must hold
  objectives: {accuracy: maximize, macs: minimize}
  sampler: tpe                          # tpe | nsga2 | random
  seed: 0
  train: {lr: {float: [0.001, 0.1], log: true}, epochs: 3}   # knobs of training, not the network
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..choices import Choice, ChoiceReader, is_choice
from ..errors import ErrorSink, Loc
from ..source import YMap, YNode, YScalar, YSeq
from ..suggest import did_you_mean
from ..syntax import Parser, Val

KEYS = ("budget", "constraints", "objectives", "sampler", "seed", "train")
METRICS = ("params", "macs", "flops")
SAMPLERS = ("tpe", "nsga2", "random")
DIRECTIONS = ("maximize", "minimize")


@dataclass
class BudgetSpec:
    metric: str
    low: float | None
    high: float
    loc: Loc


@dataclass
class SearchSection:
    loc: Loc
    budget: BudgetSpec | None = None
    constraints: list[Val] = field(default_factory=list)
    objectives: list[tuple[str, str]] = field(default_factory=list)
    sampler: str | None = None
    seed: int | None = None
    train: dict[str, Any] = field(default_factory=dict)  # fixed training knobs
    train_choices: list[Choice] = field(default_factory=list)


def read_search(y: YNode, reader: ChoiceReader, parser: Parser, sink: ErrorSink) -> SearchSection:
    """Read the section; every problem is added to ``sink``, located."""
    out = SearchSection(y.loc)
    if not isinstance(y, YMap):
        sink.add(y.loc, f"search: a mapping of {', '.join(KEYS)}")
        return out
    for key, (kloc, v) in y.items.items():
        if key not in KEYS:
            sink.add(kloc.loc, f"search: unknown key {key!r} (it has {', '.join(KEYS)})"
                               f"{did_you_mean(key, KEYS, sep='; ')}")
        elif key == "train":
            _train(v, reader, out, sink)
        else:
            if key != "constraints":
                reader.refuse(v, f"search.{key}")
            {"budget": _budget, "constraints": _constraints, "objectives": _objectives,
             "sampler": _sampler, "seed": _seed}[key](v, out, sink, parser)
    return out


def _budget(y: YNode, out: SearchSection, sink: ErrorSink, parser: Parser) -> None:
    from ..cost.units import parse_quantity

    if not isinstance(y, YMap) or len(y.items) != 1:
        sink.add(y.loc, "budget: one metric with a maximum or a band, e.g. {macs: 40M} or "
                        "{macs: [38M, 42M]}")
        return
    metric, (kloc, v) = next(iter(y.items.items()))
    if metric not in METRICS:
        sink.add(kloc.loc, f"budget: unknown metric {metric!r} (one of {', '.join(METRICS)})"
                           f"{did_you_mean(metric, METRICS, sep='; ')}")
        return
    ends = v.items if isinstance(v, YSeq) else [v]
    values = []
    for e in ends:
        raw = e.value if isinstance(e, YScalar) else None
        try:
            if isinstance(raw, bool) or raw is None:
                raise ValueError(f"{raw!r} is not a number like 40M")
            number = float(raw) if isinstance(raw, (int, float)) else parse_quantity(str(raw))
            if not number >= 0 or number == float("inf"):
                raise ValueError(f"{raw!r} is not a finite number of 0 or more")
        except ValueError as exc:
            sink.add(e.loc, f"budget: {exc}")
            return
        values.append(number)
    if len(values) == 1:
        out.budget = BudgetSpec(metric, None, values[0], y.loc)
    elif len(values) == 2 and values[0] <= values[1]:
        out.budget = BudgetSpec(metric, values[0], values[1], y.loc)
    else:
        sink.add(v.loc, "budget: a band is [low, high] with low <= high")


def _constraints(y: YNode, out: SearchSection, sink: ErrorSink, parser: Parser) -> None:
    items = y.items if isinstance(y, YSeq) else [y]
    for item in items:
        val = parser.val(item) if isinstance(item, YScalar) else None
        whole = getattr(val.value, "whole", None) if val is not None else None
        if whole is None:
            sink.add(item.loc, "a constraint is one expression, e.g. $(c2 >= c1)")
            continue
        out.constraints.append(val)


def _objectives(y: YNode, out: SearchSection, sink: ErrorSink, parser: Parser) -> None:
    if not isinstance(y, YMap):
        sink.add(y.loc, "objectives: a mapping of metric to maximize or minimize, e.g. "
                        "{accuracy: maximize, macs: minimize}")
        return
    for metric, (_, v) in y.items.items():
        if not (isinstance(v, YScalar) and v.value in DIRECTIONS):
            word = str(v.value) if isinstance(v, YScalar) else ""
            sink.add(v.loc, f"objective {metric}: maximize or minimize"
                            f"{did_you_mean(word, DIRECTIONS, sep='; ')}")
            continue
        out.objectives.append((metric, str(v.value)))


def _sampler(y: YNode, out: SearchSection, sink: ErrorSink, parser: Parser) -> None:
    value = y.value if isinstance(y, YScalar) else None
    if value not in SAMPLERS:
        sink.add(y.loc, f"sampler: one of {', '.join(SAMPLERS)}"
                        f"{did_you_mean(str(value), SAMPLERS, sep='; ')}")
        return
    out.sampler = str(value)


def _seed(y: YNode, out: SearchSection, sink: ErrorSink, parser: Parser) -> None:
    value = y.value if isinstance(y, YScalar) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        sink.add(y.loc, f"seed: a whole number of 0 or more, got {value!r}")
        return
    out.seed = value


def _train(y: YNode, reader: ChoiceReader, out: SearchSection, sink: ErrorSink) -> None:
    if not isinstance(y, YMap):
        sink.add(y.loc, "train: a mapping of training knobs (lr, epochs, ...) to values or "
                        "choices")
        return
    for name, (_, v) in y.items.items():
        if is_choice(v):
            choice = reader.value_choice(v, name, "", None)
            if choice is not None:
                choice.architecture = False
                out.train_choices.append(choice)
        else:
            reader.refuse(v, f"search.train.{name}")
            out.train[name] = v.plain_value()
