"""Results of a search: the trainer, the zero-cost proxies, cost-aware stopping and the report,
checked against references nobody here wrote (Optuna's fronts and hypervolume, scipy, closed
forms) and against controls that could fail (random labels must not learn)."""

from __future__ import annotations

import io
import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import optuna
import pytest

from archdsl.search import report
from archdsl.search.stopping import CostAwareStopping, Record, StudyStopper

optuna.logging.set_verbosity(optuna.logging.WARNING)

DIGITS_CNN = """
    name: digits_cnn
    input: [1, 8, 8]
    params: {num_classes: 10, width: 16}
    defaults:
      conv: {norm: batchnorm, act: relu}
    network:
      - conv 3x3 $width
      - conv 3x3 $(2 * width)
      - maxpool 2x2 /2 V
      - conv 3x3 $(2 * width)
      - gap
      - linear $num_classes
    """


# ---------------------------------------------------------------------------------------------
# Fronts and hypervolume against Optuna

def _study(n: int, seed: int) -> optuna.Study:
    """A two-objective study (accuracy max, MACs min) with ties on both axes."""
    rng = random.Random(seed)
    study = optuna.create_study(directions=["maximize", "minimize"], study_name=f"s{seed}")
    for i in range(n):
        macs = rng.choice([1000, 2000, 5000, 8000]) * rng.randint(1, 30)
        acc = round(rng.uniform(0.5, 1.0), 2)
        state = optuna.trial.TrialState.FAIL if i % 9 == 8 else optuna.trial.TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(
            state=state, values=[acc, macs] if state.name == "COMPLETE" else None,
            user_attrs={"params": macs // 7, "macs": macs, "flops": 2 * macs,
                        "arch_hash": f"{i:04x}", "spec_sha256": f"{i:064x}"}))
    return study


@pytest.mark.parametrize("seed", range(5))
def test_front_equals_optunas_best_trials(seed: int) -> None:
    study = _study(60, seed)
    records = report.records_of(study, report.objectives_of(study, None))
    ours = [r["number"] for r in report.front(records, ("accuracy", "maximize"), "macs")]
    assert sorted(ours) == sorted(t.number for t in study.best_trials)
    assert len(ours) >= 2


@pytest.mark.parametrize("seed", range(3))
def test_pareto_indices_in_three_dimensions_equal_optunas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    directions = ["maximize", "minimize", "maximize"]
    points = rng.integers(0, 6, size=(80, 3)).astype(float)  # many ties
    study = optuna.create_study(directions=directions)
    for p in points:
        study.add_trial(optuna.trial.create_trial(values=list(p)))
    assert report.pareto_indices(points.tolist(), directions) == sorted(
        t.number for t in study.best_trials)


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_equals_optunas(seed: int) -> None:
    from optuna._hypervolume import compute_hypervolume

    rng = np.random.default_rng(seed)
    pts = np.round(rng.uniform(0, 10, size=(50, 2)), 1)  # ties, and points beyond the reference
    ref = np.array([8.0, 9.0])
    inside = pts[(pts < ref).all(axis=1)]
    assert report.hypervolume_2d(pts.tolist(), ref.tolist()) == pytest.approx(
        compute_hypervolume(inside, ref), rel=1e-12)


def test_report_hypervolume_is_optunas_on_normalised_axes() -> None:
    from optuna._hypervolume import compute_hypervolume

    study = _study(40, 7)
    records = report.records_of(study, report.objectives_of(study, None))
    budget = {"metric": "macs", "low": None, "high": 150_000}
    q = ("accuracy", "maximize")
    ref = report.reference_point(records, q, "macs", budget)
    assert ref == (0.0, 150_000.0)
    done = [t for t in study.trials if t.values and t.values[1] < 150_000]
    loss = np.array([[-t.values[0], t.values[1] / 150_000] for t in done])
    assert report.hypervolume(records, q, "macs", ref) == pytest.approx(
        compute_hypervolume(loss, np.array([0.0, 1.0])), rel=1e-12)
    curve = report.hypervolume_curve(records, q, "macs", ref)
    hvs = [hv for _, hv in curve]
    assert hvs == sorted(hvs) and hvs[-1] == pytest.approx(report.hypervolume(records, q, "macs",
                                                                              ref))


def test_best_at_budget_is_the_best_within_each_budget() -> None:
    study = _study(50, 3)
    records = report.records_of(study, report.objectives_of(study, None))
    rows = report.best_at_budget(records, ("accuracy", "maximize"), "macs")
    done = [t for t in study.trials if t.values]
    for row in rows:  # brute force: the best accuracy among trials within the budget
        assert row["accuracy"] == max(t.values[0] for t in done if t.values[1] <= row["budget"])
    assert [r["budget"] for r in rows] == sorted(r["budget"] for r in rows)
    assert [r["accuracy"] for r in rows] == sorted(r["accuracy"] for r in rows)


# ---------------------------------------------------------------------------------------------
# Error EDFs

def test_edf_and_cost_weights() -> None:
    e, f = report.edf([0.3, 0.1, 0.2, 0.2])
    assert e.tolist() == [0.1, 0.2, 0.2, 0.3] and f.tolist() == [0.25, 0.5, 0.75, 1.0]
    # Space a has most trials cheap, space b most trials dear; after weighting, each shared
    # cost bin weighs the same in both.
    a = [10, 11, 12, 13, 14, 15, 900, 1000]
    b = [10, 900, 910, 920, 930, 1000, 5000]
    w = report.cost_weights({"a": a, "b": b}, bins=2)
    edges = np.geomspace(10, 1000, 3)
    for name, costs in (("a", a), ("b", b)):
        c = np.array(costs, dtype=float)
        low = w[name][(c >= edges[0]) & (c < edges[1])].sum()
        high = w[name][(c >= edges[1]) & (c <= edges[2])].sum()
        assert low == pytest.approx(0.5) and high == pytest.approx(0.5)
    assert w["b"][-1] == 0  # outside the shared range


# ---------------------------------------------------------------------------------------------
# Report files

class _Space:  # the part of archdsl.search.space.SearchSpace that the report reads
    objectives = [("accuracy", "maximize"), ("macs", "minimize")]

    class budget:  # noqa: N801
        metric, low, high = "flops", 20_000, 200_000


def _write(study: optuna.Study, out: Path, echo: io.StringIO | None = None) -> Path:
    other = report.records_of(_study(30, 2), _Space.objectives)
    return report.write_report(study, _Space, out, baselines=[("ref", {
        "accuracy": 0.8, "macs": 30_000, "params": 4_000})], others={"other space": other},
        echo=echo)


def test_report_files_parse(tmp_path: Path) -> None:
    study = _study(30, 1)
    out = io.StringIO()
    path = _write(study, tmp_path, out)
    for stem in ("accuracy_vs_macs", "accuracy_vs_params", "hypervolume", "error_edf",
                 "error_edf_by_macs"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert ET.parse(tmp_path / f"{stem}.svg").getroot().tag.endswith("svg")
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["version"] == 1 and data["study"] == "s1"
    assert data["budget"] == {"metric": "flops", "low": 20_000, "high": 200_000}
    # a FLOPs budget is a MACs band of half the figures: the reference point's cost
    assert data["axes"]["macs"]["reference_point"]["macs"] == 100_000
    assert data["axes"]["macs"]["front"] == sorted(
        (t.number for t in study.best_trials), key=lambda n: (study.trials[n].values[1], n))
    assert data["trials"]["by_state"] == {"COMPLETE": 27, "FAIL": 3}
    md = path.read_text()
    assert "![accuracy_vs_macs](accuracy_vs_macs.svg)" in md and "| macs <= |" in md
    assert "Best accuracy at each macs budget" in out.getvalue()


@pytest.mark.slow
def test_report_files_are_deterministic(tmp_path: Path) -> None:
    study = _study(30, 1)
    a, b = (_write(study, tmp_path / d).parent for d in ("a", "b"))
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == 12
    for name in names:  # same trials, same bytes
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ---------------------------------------------------------------------------------------------
# Cost-aware early stopping

RULE = CostAwareStopping(min_peers=3, warmup_steps=2, quantile=0.5)


def _peers(cost: float, values: list[float], step: int = 3) -> list[Record]:
    return [Record(cost, {s: v for s in range(1, step + 1)}) for v in values]


def test_stops_only_when_cheaper_trials_beat_it() -> None:
    curve = {1: 0.5, 2: 0.5, 3: 0.5}
    cheap_better = _peers(100, [0.9, 0.8, 0.7])
    assert RULE.decide(200, 3, curve, cheap_better).stop
    # the same trials costing more cannot dominate it: it stays
    assert not RULE.decide(50, 3, curve, cheap_better).stop
    # equal cost counts as a peer
    assert RULE.decide(100, 3, curve, cheap_better).stop


def test_warmup_and_minimum_peers() -> None:
    curve = {1: 0.1, 2: 0.1, 3: 0.1}
    assert not RULE.decide(200, 1, curve, _peers(100, [0.9] * 5)).stop  # warm-up
    d = RULE.decide(200, 3, curve, _peers(100, [0.9, 0.9]))
    assert not d.stop and d.peers == 2
    # peers must have reached the step
    assert not RULE.decide(200, 3, curve, _peers(100, [0.9] * 5, step=2)).stop


def test_quantile_counts_strictly_better_peers() -> None:
    curve = {3: 0.6}
    peers = _peers(10, [0.9, 0.6, 0.5, 0.4])  # one strictly better, one tie
    assert not RULE.decide(20, 3, curve, peers).stop  # 1 better < ceil(0.5 * 4) = 2
    assert RULE.decide(20, 3, curve, _peers(10, [0.9, 0.7, 0.5, 0.4])).stop  # 2 better
    strict = CostAwareStopping(min_peers=3, warmup_steps=0, quantile=1.0)
    assert not strict.decide(20, 3, curve, _peers(10, [0.9, 0.7, 0.5])).stop
    assert strict.decide(20, 3, curve, _peers(10, [0.9, 0.7, 0.65])).stop


def test_best_so_far_and_minimize() -> None:
    # a dip at step 3 after a good step 2 does not stop it: its best so far is compared
    assert not RULE.decide(20, 3, {2: 0.95, 3: 0.1}, _peers(10, [0.9, 0.9, 0.9])).stop
    loss = CostAwareStopping(direction="minimize", min_peers=2, warmup_steps=0)
    assert loss.decide(20, 3, {3: 2.0}, _peers(10, [1.0, 1.5])).stop
    assert not loss.decide(20, 3, {3: 0.5}, _peers(10, [1.0, 1.5])).stop
    with pytest.raises(ValueError, match="quantile"):
        CostAwareStopping(quantile=0)


def test_study_stopper_reads_a_multi_objective_study() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for macs, acc in ((100, 0.9), (150, 0.85), (180, 0.8), (5000, 0.99)):
        study.add_trial(optuna.trial.create_trial(
            values=[acc, macs], user_attrs={"macs": macs, "curve": [[1, acc - 0.1], [2, acc]]}))
    stopper = StudyStopper(CostAwareStopping(min_peers=3, warmup_steps=1), cost_attr="macs")
    trial = study.ask()
    trial.set_user_attr("macs", 200)
    assert not stopper(trial, 1, 0.75)  # 1 of 3 cheaper trials (0.8 0.75 0.7) beat it at step 1
    assert stopper(trial, 2, 0.5)  # its best, 0.75, is beaten by all three at step 2
    assert "3 of 3" in stopper.last.reason
    assert study.trials[-1].user_attrs["curve"] == [[1, 0.75], [2, 0.5]]
    cheap = study.ask()
    cheap.set_user_attr("macs", 50)  # nothing costs less: never stopped
    assert not stopper(cheap, 2, 0.0)


# ---------------------------------------------------------------------------------------------
# Proxies against closed forms

def test_synflow_equals_the_closed_form_of_a_linear_net(write_spec) -> None:
    import torch

    import archdsl
    from archdsl.search import proxies

    spec = archdsl.load(write_spec("""
        name: lin
        input: [1, 2, 3]
        network: [flatten, linear 5 nobias relu, linear 4 nobias]
        """))
    torch.manual_seed(0)
    model = spec.build()
    w1, w2 = (np.abs(m.weight.detach().double().numpy()) for m in model.modules()
              if isinstance(m, torch.nn.Linear))
    x = np.ones(6)
    # R = 1' |W2| |W1| x; dR/dW1 = (|W2|' 1) x', dR/dW2 = 1 (|W1| x)'
    hand = (w1 * np.outer(w2.T @ np.ones(4), x)).sum() + (w2 * np.outer(np.ones(4), w1 @ x)).sum()
    assert proxies.synflow(model, spec.input_shape) == pytest.approx(hand, rel=1e-12)
    assert hand == pytest.approx(2 * np.ones(4) @ w2 @ w1 @ x)  # two layers, each adds R
    assert next(model.parameters()).dtype == torch.float32  # the model itself is unchanged


def test_naswot_kernel_is_agreements_and_score_matches_numpy(write_spec) -> None:
    import torch
    from scipy.spatial.distance import cdist

    import archdsl
    from archdsl.search import proxies

    codes = np.random.default_rng(0).integers(0, 2, size=(7, 30))
    assert np.array_equal(proxies.naswot_kernel(codes),
                          30 - cdist(codes, codes, metric="hamming") * 30)
    spec = archdsl.load(write_spec("""
        name: one_hidden
        input: [1, 3, 3]
        network: [flatten, linear 40 relu, linear 10]
        """))
    torch.manual_seed(1)
    model = spec.build()
    images = torch.randn(12, 1, 3, 3)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    w, b = first.weight.detach().double().numpy(), first.bias.detach().double().numpy()
    c = (images.reshape(12, 9).double().numpy() @ w.T + b > 0).astype(float)
    k = 40 - cdist(c, c, metric="hamming") * 40
    assert proxies.naswot(model, images) == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)


def test_grad_norm_equals_the_softmax_gradient(write_spec) -> None:
    import torch

    import archdsl
    from archdsl.search import proxies

    spec = archdsl.load(write_spec("""
        name: softmax
        input: [1, 2, 2]
        network: [flatten, linear 3]
        """))
    torch.manual_seed(2)
    model = spec.build()
    x, y = torch.randn(8, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    lin = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
    xs = x.reshape(8, 4).double().numpy()
    z = xs @ w.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = (p - np.eye(3)[y.numpy()]).T @ xs / 8  # d mean CE / dW
    assert proxies.grad_norm(model, x, y) == pytest.approx(np.linalg.norm(grad), rel=1e-5)


def test_rank_correlations_against_params_and_macs() -> None:
    from archdsl.search import proxies

    recs = [{"params": p, "macs": 10 * p + (p % 3), "up": np.log(p), "down": -p, "acc": None}
            for p in (5, 9, 20, 31, 47)]
    rows = {(r.proxy, r.against): r for r in proxies.rank_correlations(recs, ["up", "down"],
                                                                         ["params", "macs", "acc"])}
    assert rows["up", "params"].spearman == pytest.approx(1)
    assert rows["up", "params"].kendall == pytest.approx(1)
    assert rows["down", "macs"].spearman == pytest.approx(-1)
    assert ("up", "acc") not in rows  # no accuracy known: no row
    table = proxies.correlation_table(list(rows.values()))
    assert table.splitlines()[0].split() == ["proxy", "vs", "n", "spearman", "kendall"]


# ---------------------------------------------------------------------------------------------
# The trainer

def test_trainer_refuses_a_network_of_the_wrong_shape(write_spec) -> None:
    import archdsl
    from archdsl.search.train import Context, evaluate

    spec = archdsl.load(write_spec(DIGITS_CNN.replace("[1, 8, 8]", "[1, 28, 28]")))
    with pytest.raises(ValueError, match=r"input is 1x28x28 but digits images are 1x8x8"):
        evaluate(None, spec, Context(dataset="digits"))
    spec = archdsl.load(write_spec(DIGITS_CNN), num_classes=7)
    with pytest.raises(ValueError, match="10 classes"):
        evaluate(None, spec, Context(dataset="digits"))


@pytest.mark.parametrize("name, side, total", [
    ("digits", 8, 1797), pytest.param("mnist", 28, 5000, marks=pytest.mark.slow)])
def test_data_sets_split_stratified_and_standardised(name: str, side: int, total: int) -> None:
    from archdsl.search.train import load_data

    d = load_data(name)
    assert d.shape == (1, side, side) and len(d.x_train) + len(d.x_val) == total
    assert abs(float(d.x_train.mean())) < 1e-4
    assert float(d.x_train.std()) == pytest.approx(1, abs=1e-4)
    share_train = np.bincount(d.y_train) / len(d.y_train)
    share_val = np.bincount(d.y_val) / len(d.y_val)
    assert np.abs(share_train - share_val).max() < 0.01
    shuffled = load_data(name, random_labels=True, seed=1)
    assert sorted(shuffled.y_train) == sorted(d.y_train)
    assert (shuffled.y_train != d.y_train).mean() > 0.5


@pytest.mark.slow
def test_trainer_learns_digits_and_random_labels_do_not(write_spec, capsys) -> None:
    import archdsl
    from archdsl.search.train import Context, build_seeded, evaluate

    spec = archdsl.load(write_spec(DIGITS_CNN))
    runs = [evaluate(build_seeded(spec, 3), spec, Context(seed=3, epochs=4)) for _ in range(2)]
    assert runs[0]["accuracy"] > 0.9
    assert runs[0]["train_time"] < 30
    same = [{k: v for k, v in r.items() if k != "train_time"} for r in runs]
    assert same[0] == same[1]  # same seed, same run
    control = evaluate(build_seeded(spec, 3), spec, Context(seed=3, epochs=4),
                       random_labels=True)
    assert control["accuracy"] < 0.3  # 10 classes: chance is 0.1
    assert capsys.readouterr().err == ""  # no progress bar when stderr is not a terminal


def test_trainer_stops_when_report_says_so(write_spec, monkeypatch) -> None:
    import archdsl
    from archdsl.search.train import Context, build_seeded, evaluate

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    spec = archdsl.load(write_spec(DIGITS_CNN), width=4)
    ctx = Context(seed=0, epochs=5, stop=lambda step, value: step >= 2)
    out = evaluate(build_seeded(spec, 0), spec, ctx)
    assert "digits_cnn on digits" in err.getvalue()  # a progress bar on a terminal
    assert out["epochs"] == 2 and out["stopped_early"] == 1
    assert [s for s, _ in ctx.curve] == [1, 2]
    assert ctx.curve[-1][1] == out["accuracy"]


def test_summary_prints_proxy_correlations_when_trials_carry_proxies() -> None:
    records = [{"number": i, "state": "COMPLETE", "params": p, "macs": 3 * p,
                "values": {"accuracy": 1 - 1 / p, "synflow": float(p) ** 0.5, "naswot": -p}}
               for i, p in enumerate((3, 7, 11, 40, 90))]
    summary = report.summarise(records)
    rows = {(c["proxy"], c["vs"]): c for c in summary["proxy_correlations"]}
    assert rows["synflow", "macs"]["spearman"] == pytest.approx(1)
    assert rows["naswot", "accuracy"]["kendall"] == pytest.approx(-1)
    assert "Rank correlation of the proxies" in report.text_tables(summary)
    assert report.summarise([{**r, "values": {"accuracy": 0.5}} for r in records])[
        "proxy_correlations"] == []
