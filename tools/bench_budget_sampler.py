"""Over-budget trials: Optuna's soft constraints (``constraints_func``) against BudgetSampler.

On one space (default specs/search/cifar_resnet.yaml) the budget is moved to the quantile of
its metric that leaves --share of the valid candidates inside (10 % by default; uniform sample
of 4,000, seed 0). Each trial's objective is a stand-in for accuracy that grows with the
network's size (log MACs + log params: bigger is better, as in practice, which pulls a sampler
out of the budget), so no training is needed. For TPE, NSGA-II and random, same seeds:

- soft: the inner sampler told each trial's constraint (cost - budget) with Optuna 5's
  ``trial.set_constraint`` (``constraints_func`` is deprecated since 5.0); every trial is
  created and evaluated, the over-budget ones known infeasible only afterwards (RandomSampler
  ignores constraints: plain random);
- ours: BudgetSampler around the same inner sampler.

Printed per sampler and method: trials created, the share over budget, the best objective among
the feasible trials (mean over seeds), and the sampler's time per trial (ms, ask + suggest, no
evaluation). TPE and random optimise the stand-in alone; NSGA-II its two objectives (the
stand-in, max; MACs, min) and reports the best stand-in.

    python tools/bench_budget_sampler.py [SPACE] [--trials 60] [--seeds 3] [--share 0.1]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archdsl.search.sampler import BudgetSampler, is_active, suggest  # noqa: E402
from archdsl.search.space import SearchSpace  # noqa: E402
from archdsl.table import render  # noqa: E402

INNER = ("tpe", "nsga2", "random")


def quantile_budget(space: SearchSpace, share: float, n: int = 4000) -> float:
    rng = random.Random(0)
    metric = space.budget.metric if space.budget else "macs"
    costs = []
    saved, space.budget = space.budget, None
    try:
        for _ in range(n):
            values = space.sample_values(rng)
            if space.feasible(values):  # valid and the constraints hold (no budget now)
                costs.append(space.cost(values).get(metric))
    finally:
        space.budget = saved
    costs.sort()
    return costs[max(0, int(share * len(costs)) - 1)]


def stand_in(space: SearchSpace, values: dict) -> float:
    c = space.cost(values)
    return math.log(c.macs) + 0.5 * math.log(c.params)


def inner_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def one_run(space: SearchSpace, name: str, method: str, seed: int,
            trials: int) -> tuple[int, int, int, float, float]:
    """(created, over budget, breaking a constraint, best feasible stand-in, sampler ms per
    trial)."""
    budget = space.budget
    metric = budget.metric

    inner = inner_sampler(name, seed)
    sampler = BudgetSampler(inner, space, seed=seed) if method == "ours" else inner
    directions = ["maximize", "minimize"] if name == "nsga2" else ["maximize"]
    study = optuna.create_study(directions=directions, sampler=sampler)
    over, broken, best, spent = 0, 0, -math.inf, 0.0
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        values: dict = {}
        for dim in space.dimensions:
            if is_active(dim, values):
                values[dim.name] = suggest(trial, dim)
        spent += time.perf_counter() - start
        valid = not [v for v in space.violations(values) if not v.startswith("outside")]
        if not valid:  # an invalid or constraint-violating candidate: the worst, infeasible
            trial.set_constraint("budget", 1.0)
            broken += 1
            study.tell(trial, [-1e9, 1e18] if name == "nsga2" else -1e9)
            continue
        cost = space.cost(values).get(metric)
        excess = max(cost - budget.high, (budget.low - cost) if budget.low else 0.0)
        trial.set_constraint("budget", float(excess))
        y = stand_in(space, values)
        if excess > 0:
            over += 1
        else:
            best = max(best, y)
        study.tell(trial, [y, cost] if name == "nsga2" else y)
    return len(study.trials), over, broken, best, 1000 * spent / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("space", nargs="?", default="specs/search/cifar_resnet.yaml")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.1,
                        help="the share of valid candidates inside the budget (default 0.1)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    space = SearchSpace.read(args.space)
    metric = space.budget.metric if space.budget else "macs"
    high = quantile_budget(space, args.share)
    space.budget = replace(space.budget, low=None, high=high) if space.budget else None
    print(f"{args.space}: budget {metric} <= {high:,} ({args.share:.0%} of the valid "
          f"candidates of a uniform sample); {args.trials} trials, seeds 0..{args.seeds - 1}")
    rows = []
    for name in INNER:
        for method in ("soft", "ours"):
            runs = [one_run(space, name, method, seed, args.trials) for seed in range(args.seeds)]
            created = sum(r[0] for r in runs)
            over = sum(r[1] for r in runs)
            broken = sum(r[2] for r in runs)
            rows.append([name, "soft constraints" if method == "soft" else "BudgetSampler",
                         created, over, f"{100 * over / created:.1f}%", broken,
                         f"{statistics.mean(r[3] for r in runs):.3f}",
                         f"{statistics.mean(r[4] for r in runs):.1f}"])
    print(render(["sampler", "method", "trials created", "over budget", "share over",
                  "constraint broken", "best feasible (mean)", "sampler ms/trial"], rows,
                 width=None))  # a report: every column whole


if __name__ == "__main__":
    main()
