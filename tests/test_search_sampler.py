"""BudgetSampler: never an infeasible candidate, no architecture twice, and its fallbacks, with
Optuna's TPE, NSGA-II and random samplers over random spaces and budgets."""

from __future__ import annotations

import random

import optuna
import pytest
from search_fakes import AnalyticSpace, Budget, Dimension

from archdsl.search.sampler import BudgetSampler, NoCandidate, is_active, make_inner, suggest

optuna.logging.set_verbosity(optuna.logging.ERROR)
INNER = ("tpe", "nsga2", "random")


def random_space(rng: random.Random) -> AnalyticSpace:
    """2-4 dimensions (int, stepped float, categorical, one conditional), a cost that mixes
    them, and a budget (a maximum or a band) holding a random share of the candidates."""
    dims = [Dimension("depth", "int", low=1, high=rng.choice([4, 8, 12])),
            Dimension("width", "categorical", choices=(8, 16, 32, 64)[:rng.randint(2, 4)]),
            Dimension("kind", "categorical", choices=("plain", "res"))]
    if rng.random() < 0.7:
        dims.append(Dimension("se", "float", low=0.0, high=0.5, step=0.125,
                              condition=("kind", ("res",))))
    weights = [rng.uniform(0.5, 2) for _ in range(3)]

    def cost(v: dict) -> float:
        extra = 1 + v.get("se", 0) if v["kind"] == "res" else 1
        return (weights[0] * v["depth"] * v["width"] ** 2 * extra + weights[1] * v["width"]
                + weights[2] * 100 * (v["kind"] == "res"))

    probe = AnalyticSpace(dims, cost, None)
    costs = sorted(cost(_uniform(probe, rng)) for _ in range(200))
    share = rng.choice([0.02, 0.1, 0.3])
    if rng.random() < 0.5:
        budget = Budget("macs", None, costs[int(share * 199)])
    else:
        mid = rng.randrange(len(costs) - int(share * 200))
        budget = Budget("macs", costs[mid], costs[mid + int(share * 199)])
    return AnalyticSpace(dims, cost, budget)


def _uniform(space: AnalyticSpace, rng: random.Random) -> dict:
    from archdsl.search.space import draw

    values: dict = {}
    for d in space.dimensions:
        if is_active(d, values):
            values[d.name] = draw(d, rng)
    return values


def _study(space: AnalyticSpace, inner: str, seed: int, **kw) -> tuple[optuna.Study,
                                                                          BudgetSampler]:
    sampler = BudgetSampler(make_inner(inner, seed, 1), space, seed=seed, **kw)
    return optuna.create_study(sampler=sampler), sampler


def _objective(space: AnalyticSpace):
    def objective(trial: optuna.Trial) -> float:
        values: dict = {}
        for d in space.dimensions:
            if is_active(d, values):
                values[d.name] = suggest(trial, d)
        assert space.feasible(values), values  # the property, at the moment it matters
        return -space.cost_fn(values)
    return objective


@pytest.mark.parametrize("inner", INNER)
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow),
                                  pytest.param(2, marks=pytest.mark.slow)])
def test_never_over_budget(inner: str, seed: int) -> None:
    space = random_space(random.Random(seed * 31 + INNER.index(inner)))
    study, _ = _study(space, inner, seed)
    study.optimize(_objective(space), n_trials=15)
    assert len(study.trials) == 15
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert space.feasible(t.params)
        b = space.budget
        c = space.cost_fn(t.params)
        assert c <= b.high and (b.low is None or c >= b.low)


@pytest.mark.parametrize("inner", INNER)
def test_no_architecture_twice_while_new_ones_exist(inner: str) -> None:
    dims = [Dimension("a", "int", low=0, high=5), Dimension("b", "categorical", choices=(0, 1)),
            Dimension("lr", "categorical", choices=(0.1,), architecture=False)]
    space = AnalyticSpace(dims, lambda v: v["a"] + 10 * v["b"], Budget("macs", None, 4))
    feasible = 5  # a in 0..4 with b = 0
    study, _ = _study(space, inner, 0)
    study.optimize(_objective(space), n_trials=feasible + 2)
    hashes = [t.user_attrs["arch_hash"] for t in study.trials]
    assert len(set(hashes[:feasible])) == feasible  # every feasible architecture once
    extra = study.trials[feasible:]
    # Then the space is exhausted: the duplicates name the trial whose result they reuse.
    for t in extra:
        original = study.trials[t.user_attrs["duplicate_of"]]
        assert original.user_attrs["arch_hash"] == t.user_attrs["arch_hash"]
        assert original.number < feasible


def test_hash_is_what_dedups_not_the_values() -> None:
    """Two knob values that give the same network (here: b is ignored when a == 0) are one
    architecture."""
    dims = [Dimension("a", "int", low=0, high=2), Dimension("b", "int", low=0, high=2)]
    space = AnalyticSpace(dims, lambda v: v["a"], Budget("macs", None, 0))
    space.arch_hash = lambda v: str(v["a"])  # the network depends on a only
    study, _ = _study(space, "random", 0)
    study.optimize(_objective(space), n_trials=3)
    assert "duplicate_of" not in study.trials[0].user_attrs
    assert all(t.user_attrs["duplicate_of"] == 0 for t in study.trials[1:])


def test_fallback_when_the_inner_sampler_rarely_hits_the_budget() -> None:
    """One candidate in 3,600 is feasible: redraws fail, uniform rejection (2,000 draws) or
    else enumeration finds it."""
    dims = [Dimension(n, "int", low=0, high=59) for n in ("x", "y")]
    space = AnalyticSpace(dims, lambda v: abs(v["x"] - 23) + abs(v["y"] - 45),
                          Budget("macs", None, 0))
    study, sampler = _study(space, "tpe", 0, redraws=8, repair=False)
    study.optimize(_objective(space), n_trials=2)
    assert study.trials[0].params == {"x": 23, "y": 45}
    assert study.trials[0].user_attrs["sampled_by"] in ("nearest", "enumerate")
    assert study.trials[1].user_attrs["duplicate_of"] == 0
    assert sampler.stats.get("inner", 0) + sampler.stats.get("inner-redraw", 0) <= 1


def test_repair_moves_one_numeric_dimension_into_the_band() -> None:
    dims = [Dimension("depth", "int", low=1, high=50), Dimension("width", "int", low=1, high=50)]
    space = AnalyticSpace(dims, lambda v: v["depth"] * v["width"], Budget("macs", 600, 610))
    study, sampler = _study(space, "random", 3, redraws=1)
    study.optimize(_objective(space), n_trials=5)
    for t in study.trials:
        assert 600 <= t.params["depth"] * t.params["width"] <= 610
    assert sampler.stats.get("repair", 0) >= 1


def test_no_candidate_gives_no_parameters() -> None:
    dims = [Dimension("x", "float", low=0.0, high=1.0)]
    space = AnalyticSpace(dims, lambda v: v["x"], Budget("macs", 2.0, 3.0))  # nothing inside
    study, _ = _study(space, "random", 0, redraws=2, rejections=10)
    trial = study.ask()
    attrs = study._storage.get_trial(trial._trial_id).user_attrs
    assert attrs["no_candidate"] is True
    with pytest.raises(NoCandidate):
        suggest(trial, dims[0])  # never an unchecked value from the inner sampler
    assert trial.params == {}


def test_categorical_choices_that_optuna_cannot_hold() -> None:
    """Lists as choices (kernel shapes) go to Optuna as JSON text and come back as lists."""
    dims = [Dimension("k", "categorical", choices=([3, 3], [1, 7], [7, 1]))]
    space = AnalyticSpace(dims, lambda v: v["k"][0] * v["k"][1], Budget("macs", None, 7))
    study, sampler = _study(space, "tpe", 0)
    seen = []

    def objective(trial: optuna.Trial) -> float:
        seen.append(suggest(trial, dims[0]))
        return 0.0

    study.optimize(objective, n_trials=2)
    assert sorted(seen) == [[1, 7], [7, 1]]


def test_make_inner_names() -> None:
    from archdsl.search.section import SAMPLERS

    kinds = {name: type(make_inner(name, 0, 1)).__name__ for name in SAMPLERS}
    assert kinds == {"tpe": "TPESampler", "nsga2": "NSGAIISampler", "random": "RandomSampler"}
    assert type(make_inner(None, 0, 2)).__name__ == "NSGAIISampler"


@pytest.mark.parametrize("inner", INNER)
def test_real_space_with_block_alternatives(inner: str) -> None:
    """specs/search/cifar_blocks.yaml: block kinds per stage, each with its own
    squeeze-and-excitation ratio (conditional dimensions); the budget cut to the 20 % cheapest
    of a seeded sample of its feasible candidates."""
    import random
    from dataclasses import replace

    from conftest import SPECS

    from archdsl.search.space import SearchSpace

    space = SearchSpace.read(SPECS / "search" / "cifar_blocks.yaml")
    rng = random.Random(0)
    drawn = (space.sample_values(rng) for _ in range(400))
    costs = sorted(space.cost(v).params for v in drawn if space.feasible(v))
    space.budget = replace(space.budget, high=costs[len(costs) // 5])
    study, _ = _study(space, inner, 0)
    study.optimize(_objective_cost(space), n_trials=12)
    hashes = set()
    for t in study.trials:
        assert space.feasible(t.params) and space.cost(t.params).params <= space.budget.high
        assert set(t.params) == {d.name for d in space.active(t.params)}
        hashes.add(t.user_attrs["arch_hash"])
    assert len(hashes) == 12


def _objective_cost(space):
    def objective(trial: optuna.Trial) -> float:
        values: dict = {}
        for d in space.dimensions:
            if is_active(d, values):
                values[d.name] = suggest(trial, d)
        assert space.feasible(values), values
        return float(space.cost(values).params)
    return objective


class _Largest(optuna.samplers.RandomSampler):
    """An inner sampler that always proposes the largest value of every dimension (as TPE does
    on a small budget: it never sees an infeasible trial, so the big networks look best)."""

    def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: ANN001, ANN201
        if isinstance(param_distribution, optuna.distributions.CategoricalDistribution):
            return param_distribution.choices[-1]
        return param_distribution.high


def test_the_fallback_stays_near_what_the_inner_sampler_proposes() -> None:
    """When every proposal is over the budget, the candidate taken is the feasible one nearest
    the proposal: with the inner sampler pushing up, the trials sit near the top of the budget,
    where uniform picks inside the budget would spread over all of it."""
    dims = [Dimension(n, "int", low=1, high=20) for n in ("depth", "width", "groups")]
    space = AnalyticSpace(dims, lambda v: v["depth"] * v["width"] * v["groups"],
                          Budget("macs", None, 1000))
    sampler = BudgetSampler(_Largest(seed=0), space, seed=0, repair=False, redraws=2)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective(space), n_trials=12)
    ours = [space.cost_fn(t.params) for t in study.trials]
    assert sampler.stats.get("nearest") == 12 and all(c <= 1000 for c in ours)
    rng = random.Random(0)
    inside = [c for c in (space.cost_fn(_uniform(space, rng)) for _ in range(20000)) if c <= 1000]
    assert sorted(ours)[len(ours) // 2] > sorted(inside)[int(0.9 * len(inside))]
