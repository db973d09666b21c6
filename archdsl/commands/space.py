"""Show a search space: its dimensions (kind, values, condition, where), its size, the exact cost
range of its candidates and the share inside its budget. Refuses (exit 2, located at the budget)
a space with nothing inside its budget, naming what to move. Imports no torch.

Spaces of at most --limit candidates are evaluated whole (exact figures); larger ones through a
seeded sample of --samples candidates drawn uniformly per dimension (sample figures, said so).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..cost.units import human
from ..jsonout import add_format_option, emit
from ..layers.base import fmt_shape
from ..search.space import Dimension, SearchSpace, assignments, word
from ..search.survey import LIMIT, METRICS, SAMPLES, Survey, refusal, survey
from ..table import render
from ..usage import UsageError, spec_file

HELP = "show a search space: dimensions, size, cost range, share inside the budget (no torch)"
EXAMPLES = """\
  archdsl space specs/search/cifar_resnet.yaml
  archdsl space specs/search/digits_cnn.yaml --format json      # docs/json.md
  archdsl space specs/search/cifar_iso.yaml --limit 0 --samples 500 --seed 1"""



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="a space: a spec whose values are choices (docs/search.md)")
    p.add_argument("--library", action="append", default=[], metavar="DIR",
                   help="another folder includes may come from (repeatable)")
    p.add_argument("--allow-large", action="store_true",
                   help="lift the size limits of every candidate (see archdsl validate)")
    add_format_option(p)
    p.add_argument("--limit", type=int, default=LIMIT,
                   help=f"evaluate every candidate up to this many (default {LIMIT})")
    p.add_argument("--samples", type=int, default=SAMPLES,
                   help=f"beyond --limit, evaluate a seeded sample of this many ({SAMPLES})")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")


def run(args: argparse.Namespace) -> int:
    if args.limit < 0 or args.samples < 1:
        raise UsageError("--limit is 0 or more and --samples 1 or more")
    space = SearchSpace.read(spec_file(args.spec), args.library, args.allow_large)
    s = survey(space, args.limit, args.samples, args.seed)
    data = as_dict(space, s)
    if args.format == "json":
        emit("space", refusal(space, s) is None, **data)
    else:
        print(text(space, s))
    if (err := refusal(space, s)) is not None:
        raise err
    return 0


def _values_text(d: Dimension) -> str:
    if d.kind == "categorical":
        return ", ".join(word(c) for c in d.choices)
    step = f" step {d.step}" if d.step else ""
    return f"[{d.low}, {d.high}]{step}{' log' if d.log else ''}"


def _size(n: float) -> str:
    return "infinite (a continuous range)" if n == math.inf else f"{int(n):,}"


def text(space: SearchSpace, s: Survey) -> str:
    spec = space.resolve(space.defaults())
    lines = [f"space {space.path}: {spec.name}, input {fmt_shape(spec.input_shape)}"]
    rows = [(d.name, d.kind + ("" if d.architecture else " (training)"), _values_text(d),
             f"{d.condition[0]} in {', '.join(map(word, d.condition[1]))}" if d.condition else "",
             d.where) for d in space.dimensions]
    lines.append(render(("dimension", "kind", "values", "active when", "where"), rows,
                        indent="  "))
    total = space.size()
    lines.append(f"size: {_size(s.size)} architectures"
                 + ("" if total == s.size else f"; {_size(total)} with the training knobs"))
    how = ("every candidate evaluated (exact)" if s.method == "exhaustive" else
           f"a sample of {s.evaluated:,} candidates, seed {s.seed}, uniform per dimension "
           f"(more than the limit of exhaustive evaluation: sample figures, not exact bounds)")
    lines.append(f"cost range: {how}")
    for m in sorted(s.low, key=lambda m: (m not in METRICS, m)):
        lo, hi = s.low[m], s.high[m]
        lines.append(f"  {m}: {human(lo.value)} .. {human(hi.value)}  "
                     f"(lowest at {_kv(lo.values)}; highest at {_kv(hi.values)})")
    if s.invalid:
        lines.append(f"  {s.invalid:,} invalid candidates, e.g. {s.first_invalid}")
    if s.excluded:
        lines.append(f"  {s.excluded:,} excluded by the constraints")
    if space.budget is not None:
        lines.append(f"budget {space.budget.describe()}: {s.share_text()} inside")
    else:
        lines.append(f"no budget; {s.share_text()} valid and within the constraints")
    if space.objectives:
        lines.append("objectives: " + ", ".join(f"{m} {d}" for m, d in space.objectives))
    extra = [f"sampler {space.sampler}" if space.sampler else "",
             f"seed {space.seed}" if space.seed is not None else "",
             ("training " + _kv(space.fixed_training)) if space.fixed_training else ""]
    if any(extra):
        lines.append("; ".join(e for e in extra if e))
    return "\n".join(lines)


_kv = assignments


def as_dict(space: SearchSpace, s: Survey) -> dict[str, Any]:
    def num(n: float) -> Any:
        return None if n == math.inf else n

    return {
        "space": str(space.path),
        "dimensions": [{"name": d.name, "kind": d.kind, "choices": list(d.choices),
                        "low": d.low, "high": d.high, "step": d.step, "log": d.log,
                        "condition": [d.condition[0], list(d.condition[1])] if d.condition
                        else None, "where": d.where, "architecture": d.architecture}
                       for d in space.dimensions],
        "size": num(s.size), "size_with_training": num(space.size()),
        "method": s.method, "evaluated": s.evaluated, "seed": s.seed if s.method == "sample"
        else None, "invalid": s.invalid, "excluded": s.excluded,
        "cost": {m: {"min": s.low[m].value, "max": s.high[m].value,
                     "argmin": s.low[m].values, "argmax": s.high[m].values} for m in s.low},
        "budget": None if space.budget is None else {
            "metric": space.budget.metric, "low": space.budget.low, "high": space.budget.high},
        "inside": s.inside, "share": s.share,
        "objectives": [list(o) for o in space.objectives], "sampler": space.sampler,
        "space_seed": space.seed, "training": space.fixed_training,
    }


