"""The search driver on one machine: trial folders (spec that builds and costs what its record
says), failures with their traceback, the --eval protocol, storages and the command line."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import optuna
import pytest

from archdsl import cli
from archdsl.search.driver import EvalContext, load_eval, run_search
from archdsl.search.space import SearchSpace
from archdsl.usage import UsageError

SPACE = """\
name: digits_small
input: [1, 8, 8]
params:
  num_classes: 10
  width: {choice: [4, 8, 16, 32]}
  depth: {int: [1, 3]}
  head: {choice: [gap, flat]}
defaults:
  conv: {act: relu}
network:
  - conv 3x3 $width
  - {conv: 3x3 $(width*2), when: $(depth >= 2)}
  - {conv: 3x3 $(width*4), when: $(depth >= 3)}
  - {gap: {}, when: $(head == 'gap')}
  - {flatten: {}, when: $(head == 'flat')}
  - linear $num_classes
search:
  budget: {params: 12K}
  objectives: {accuracy: maximize, params: minimize}
  sampler: nsga2
  seed: 0
  train: {lr: {choice: [0.05, 0.1]}, epochs: 2}
"""


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "digits_small.yaml"
    path.write_text(SPACE, encoding="utf-8")
    return path


@pytest.mark.slow  # builds and runs every saved spec: about 5 s
def test_trial_folders_build_and_cost_what_they_say(space_file: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    space = SearchSpace.read(space_file)
    out = tmp_path / "runs"
    study, ran = run_search(space, load_eval("search_evals:quick"), out, 3)
    assert ran == [0, 1, 2]
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        folder = out / f"trial-{t.number}"
        names = {"spec.yaml", "spec.sha256", "cost.json", "result.json"}
        if shutil.which("dot"):
            names.add("overview.svg")
            assert (folder / "overview.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
        assert names <= {p.name for p in folder.iterdir()}
        text = (folder / "spec.yaml").read_text()
        sha, name = (folder / "spec.sha256").read_text().split()
        assert (sha, name) == (hashlib.sha256(text.encode()).hexdigest(), "spec.yaml")
        # the saved spec builds (archdsl build) and costs what the trial's record says
        assert cli.main(["build", str(folder / "spec.yaml")]) == 0
        capsys.readouterr()
        assert cli.main(["cost", str(folder / "spec.yaml"), "--format", "json"]) == 0
        keys = ("params", "buffers", "macs", "flops", "fvcore", "activations", "input", "output")
        fresh = json.loads(capsys.readouterr().out)["specs"][0]
        cost = {k: fresh[k] for k in keys}
        saved = json.loads((folder / "cost.json").read_text())["specs"][0]
        assert cost == {k: saved[k] for k in keys}
        assert cost["params"] == t.user_attrs["params"] == t.values[1]
        assert cost["macs"] == t.user_attrs["macs"] == space.cost(t.params).macs
        assert cost["params"] <= 12_000
        result = json.loads((folder / "result.json").read_text())
        assert result["metrics"]["accuracy"] == t.values[0]
        assert result["seed"] == t.number  # the space's seed 0 + the trial's number
        assert [tuple(p) for p in result["curve"]] == [(1, .25), (2, .5), (3, .75), (4, 1.0)]
        assert {"archdsl", "optuna", "python", "torch"} <= set(result["versions"])
        # the scratch folder and the training knobs reached the evaluation
        assert (folder / "scratch" / "seen.txt").read_text().split(" ", 1)[1].strip() == \
            "['epochs', 'lr']"
        # the same files are the trial's artifacts
        metas = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        assert {m.filename for m in metas} == names


def test_failed_evaluation_keeps_its_traceback(space_file: Path, tmp_path: Path) -> None:
    space = SearchSpace.read(space_file)
    study, _ = run_search(space, load_eval("search_evals:broken"), tmp_path / "r", 2)
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.FAIL
        assert "this evaluation always fails" in t.user_attrs["traceback"]
        assert t.user_attrs["fail_reason"] == "ValueError: this evaluation always fails"
        result = json.loads((tmp_path / "r" / f"trial-{t.number}" / "result.json").read_text())
        assert result["state"] == "FAIL"
        assert "search_evals.py" in result["traceback"]


def test_missing_objective_is_a_failed_trial(space_file: Path, tmp_path: Path) -> None:
    space = SearchSpace.read(space_file)
    space.objectives = [("top5", "maximize")]
    study, _ = run_search(space, load_eval("search_evals:quick"), tmp_path / "r", 1,
                          study_name="m", artifacts=False)
    assert "returned no 'top5'" in study.trials[0].user_attrs["fail_reason"]


def test_eval_names() -> None:
    with pytest.raises(UsageError, match="module:function"):
        load_eval("nonsense")
    with pytest.raises(UsageError, match="cannot import"):
        load_eval("no_such_module_xyz:f")
    with pytest.raises(UsageError, match="no function"):
        load_eval("search_evals:nope")
    ev = load_eval("search_evals:quick")
    assert ev.dataset is None and callable(ev.fn)


def test_context_report_asks_to_stop() -> None:
    ctx = EvalContext(dataset=None, seed=0, epochs=1, knobs={}, scratch=Path("."),
                      stop=lambda step, value: value < 0.5)
    assert ctx.report(1, 0.9) is False
    assert ctx.report(2, 0.1) is True
    assert ctx.curve == [(1, 0.9), (2, 0.1)]


def test_cli_run_resume_and_json(space_file: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "runs"
    args = ["search", "run", str(space_file), "--eval", "search_evals:quick", "-o", str(out),
            "--format", "json", "--no-artifacts"]
    assert cli.main([*args, "--trials", "2"]) == 0
    capsys.readouterr()
    assert cli.main([*args, "--trials", "3"]) == 0  # resumes the study in out/study.journal
    doc = json.loads(capsys.readouterr().out)
    assert (doc["version"], doc["command"], doc["action"], doc["ok"]) == (1, "search", "run", True)
    assert doc["states"] == {"COMPLETE": 3}
    assert doc["objectives"] == ["accuracy", "params"]
    assert len({json.dumps(t["candidate"], sort_keys=True) for t in doc["trials"]}) == 3
    # another space into the same study is refused
    other = tmp_path / "other.yaml"
    other.write_text(SPACE.replace("12K", "11K"), encoding="utf-8")
    assert cli.main(["search", "run", str(other), "--eval", "search_evals:quick", "-o",
                     str(out), "--trials", "1", "--study", "digits_small"]) == 2
    assert "another version of the space" in capsys.readouterr().err


def test_cli_failures_exit_1(space_file: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["search", "run", str(space_file), "--eval", "search_evals:broken", "-o",
                     str(tmp_path / "r"), "--trials", "1", "--no-artifacts"]) == 1
    err = capsys.readouterr().err
    assert "trial 0 failed: ValueError: this evaluation always fails" in err
    assert "Traceback" not in err  # it is in the trial's result.json


def test_sqlite_refused_for_workers(space_file: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert cli.main(["search", "create", str(space_file), "--storage", url, "--study",
                     "s"]) == 2
    assert cli.main(["search", "worker", "s", "--storage", url, "--eval", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("SQLite locks the whole database") == 2
    assert not (tmp_path / "x.db").exists()


def test_create_once(space_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"journal:{tmp_path / 'j.log'}"
    create = ["search", "create", str(space_file), "--storage", url, "--study", "s"]
    assert cli.main(create) == 0
    assert cli.main(create) == 2
    assert "exists already" in capsys.readouterr().err
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))))
    attrs = study.user_attrs
    assert attrs["space_sha256"] == hashlib.sha256(space_file.read_bytes()).hexdigest()
    assert attrs["n_trials"] == 100 and attrs["sampler"] == "nsga2" and attrs["seed"] == 0
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    # a worker on a host where the space has moved or changed is refused
    space_file.write_text(SPACE.replace("12K", "11K"), encoding="utf-8")
    assert cli.main(["search", "worker", "s", "--storage", url, "--eval", "digits"]) == 2
    assert "not the space" in capsys.readouterr().err
    assert cli.main(["search", "worker", "nope", "--storage", url, "--eval", "digits"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err


def test_cli_report_passes_study_space_and_baselines(space_file: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    """The report itself is archdsl.search.report's; here a stand-in records the call."""
    import types

    calls = []

    def write_report(study, space, out_dir, baselines=(), others=None, echo=None):
        assert others == {}  # no --compare
        calls.append((study.study_name, space.path, Path(out_dir), baselines))
        return Path(out_dir) / "report.md"

    monkeypatch.setitem(sys.modules, "archdsl.search.report",
                        types.SimpleNamespace(write_report=write_report))
    out = tmp_path / "runs"
    assert cli.main(["search", "run", str(space_file), "--eval", "search_evals:quick", "-o",
                     str(out), "--trials", "2", "--no-artifacts"]) == 0
    baseline = tmp_path / "base.yaml"
    baseline.write_text((out / "trial-0" / "spec.yaml").read_text().replace(
        "name: digits_small", "name: base"), encoding="utf-8")
    report = ["search", "report", "digits_small", "--storage", str(out / "study.journal"),
              "-o", str(out), "--format", "json"]
    assert cli.main([*report, "--baseline", str(baseline)]) == 2  # needs --eval
    capsys.readouterr()
    assert cli.main([*report, "--baseline", str(baseline), "--eval", "search_evals:quick"]) == 0
    assert json.loads(capsys.readouterr().out)["states"] == {"COMPLETE": 2}
    (name, path, folder, baselines), = calls
    assert (name, path.resolve(), folder) == ("digits_small", space_file.resolve(), out)
    (base_name, metrics), = baselines
    study_trial0 = json.loads((out / "trial-0" / "result.json").read_text())
    assert base_name == "base"
    assert metrics["accuracy"] == study_trial0["metrics"]["accuracy"]  # same net, same eval
    assert metrics["params"] == study_trial0["objectives"]["params"]


def test_unreachable_server_is_a_usage_error_without_the_password(
        space_file: Path, capsys: pytest.CaptureFixture) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://me:s3cret@127.0.0.1:{port}/db"
    assert cli.main(["search", "create", str(space_file), "--storage", url, "--study",
                     "s"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the database" in err and "me:***@" in err and "s3cret" not in err


@pytest.mark.slow
def test_digits_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """8 trials of specs/search/digits_cnn.yaml trained by the built-in trainer (2 epochs)."""
    from conftest import SPECS

    out = tmp_path / "runs"
    assert cli.main(["search", "run", str(SPECS / "search" / "digits_cnn.yaml"), "--trials",
                     "8", "--eval", "digits", "--epochs", "2", "-o", str(out), "--format",
                     "json", "--no-artifacts"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["states"] == {"COMPLETE": 8}
    space = SearchSpace.read(SPECS / "search" / "digits_cnn.yaml")
    accuracies = [t["values"][0] for t in doc["trials"]]
    assert all(0.0 <= a <= 1.0 for a in accuracies) and max(accuracies) > 0.5  # chance: 0.1
    for t in doc["trials"]:
        assert space.feasible(t["candidate"])
        assert t["values"][1] == space.cost(t["candidate"]).macs <= space.budget.high
    assert len({space.arch_hash(t["candidate"]) for t in doc["trials"]}) == 8


def test_early_stop_stops_dear_worse_trials_never_cheap_ones(
        space_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """search_evals:costly gives dearer networks a worse curve at every step. With
    --early-stop (2 peers, quantile 0.5, warm-up 2) a trial stops at the first step s >= 2
    where at least 2 earlier trials costing no more (params: the budget's metric) reached s and
    at least half of them are strictly better, i.e. strictly cheaper: worked out here from the
    trials' costs and curve lengths, not by the rule's code."""
    import math

    out = tmp_path / "runs"
    assert cli.main(["search", "run", str(space_file), "--eval", "search_evals:costly", "-o",
                     str(out), "--trials", "10", "--no-artifacts", "--early-stop",
                     "--early-stop-peers", "2", "--early-stop-warmup", "2"]) == 0
    assert "stopped early at step" in capsys.readouterr().err
    study = optuna.load_study(study_name="digits_small", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))))
    trials = sorted(study.trials, key=lambda t: t.number)
    stopped, cheap_kept = 0, 0
    for i, t in enumerate(trials):
        cost, earlier = t.user_attrs["params"], trials[:i]
        want = None
        for step in (2, 3, 4):
            peers = [e for e in earlier if e.user_attrs["params"] <= cost
                     and len(e.user_attrs["curve"]) >= step]
            better = [e for e in peers if e.user_attrs["params"] < cost]
            if len(peers) >= 2 and len(better) >= max(1, math.ceil(0.5 * len(peers))):
                want = step
                break
        result = json.loads((out / f"trial-{t.number}" / "result.json").read_text())
        curve = t.user_attrs["curve"]
        assert [list(p) for p in result["curve"]] == curve  # one curve, written live and at end
        assert [s for s, _ in curve] == list(range(1, len(curve) + 1))  # no step twice
        assert result["stopped_early"] is (want is not None) is t.user_attrs["stopped_early"]
        if want is None:
            assert t.state == optuna.trial.TrialState.COMPLETE and len(curve) == 4
            cheapest = all(e.user_attrs["params"] > cost for e in earlier)
            cheap_kept += cheapest and len(earlier) >= 2
        else:
            stopped += 1
            assert t.state == optuna.trial.TrialState.PRUNED and result["state"] == "PRUNED"
            assert len(curve) == want and "beat it at step" in t.user_attrs["stop_reason"]
    assert stopped >= 2 and cheap_kept >= 1  # both cases happened in this run


def test_early_stop_options_need_early_stop(space_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    args = ["search", "run", str(space_file), "--eval", "search_evals:costly", "-o",
            str(tmp_path / "r"), "--trials", "1"]
    assert cli.main([*args, "--early-stop-peers", "3"]) == 2
    assert "give --early-stop too" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*args, "--early-stop", "--early-stop-quantile", "1.5"])
    assert "at most 1" in capsys.readouterr().err


@pytest.mark.slow  # three reports of plots: about 10 s
def test_cli_report_compares_spaces(space_file: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    """--compare STUDY=LABEL puts another study's trials beside this one's in the error EDFs
    (the plots and report.json's error_edf), from the same storage or --compare-storage."""
    import numpy as np

    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(SPACE.replace("[4, 8, 16, 32]", "[2, 3]"), encoding="utf-8")
    journal, other = tmp_path / "study.journal", tmp_path / "other.journal"
    quick = load_eval("search_evals:quick")
    studies = {"wide": run_search(SearchSpace.read(space_file), quick, tmp_path / "a", 4,
                                  storage_url=str(journal), study_name="wide",
                                  artifacts=False)[0],
               "tiny": run_search(SearchSpace.read(tiny), quick, tmp_path / "b", 3,
                                  storage_url=str(journal), study_name="tiny",
                                  artifacts=False)[0]}
    run_search(SearchSpace.read(tiny), quick, tmp_path / "c", 2, storage_url=str(other),
               study_name="tiny", artifacts=False)
    capsys.readouterr()

    def report(out: str, *more: str) -> dict:
        assert cli.main(["search", "report", "wide", "--storage", str(journal), "-o",
                         str(tmp_path / out), *more]) == 0
        doc = json.loads((tmp_path / out / "report.json").read_text())
        printed = capsys.readouterr().out  # the trials, then the fronts' tables
        front = doc["axes"]["macs"]["best_at_budget"]
        assert printed.index("study 'wide'") < printed.index("Best accuracy at each macs budget")
        assert f"{front[0]['macs']:,}" in printed.split("each macs budget")[1]
        return doc

    def errors(study: optuna.Study) -> list[float]:
        return sorted(1 - t.values[0] for t in study.trials)

    alone = report("alone")
    assert [(e["space"], e["n"]) for e in alone["error_edf"]] == [("wide", 4)]
    both = report("both", "--compare", "tiny=two widths")
    assert [(e["space"], e["n"]) for e in both["error_edf"]] == [("wide", 4), ("two widths", 3)]
    for entry, name in zip(both["error_edf"], ("wide", "tiny"), strict=True):
        e = errors(studies[name])
        assert entry["error"]["min"] == e[0] and entry["error"]["max"] == e[-1]
        assert entry["error"]["median"] == pytest.approx(float(np.median(e)))
    assert "| two widths | 3 |" in (tmp_path / "both" / "report.md").read_text()
    for stem in ("error_edf", "error_edf_by_macs"):  # the plots differ with a second space
        assert (tmp_path / "both" / f"{stem}.svg").read_bytes() != \
            (tmp_path / "alone" / f"{stem}.svg").read_bytes()
    assert both["axes"] == alone["axes"]  # this study's figures do not change
    elsewhere = report("elsewhere", "--compare", "tiny", "--compare-storage", str(other))
    assert [(e["space"], e["n"]) for e in elsewhere["error_edf"]] == [("wide", 4), ("tiny", 2)]
    capsys.readouterr()
    assert cli.main(["search", "report", "wide", "--storage", str(journal), "-o",
                     str(tmp_path / "x"), "--compare", "tinny"]) == 2
    assert "did you mean 'tiny'" in capsys.readouterr().err
    assert cli.main(["search", "report", "wide", "--storage", str(journal), "-o",
                     str(tmp_path / "x"), "--compare", "tiny=wide"]) == 2
    assert "label 'wide' is taken" in capsys.readouterr().err


def test_enqueued_trials_are_recorded_and_not_trained_twice(space_file: Path,
                                                            tmp_path: Path) -> None:
    space = SearchSpace.read(space_file)
    quick = load_eval("search_evals:quick")
    study, _ = run_search(space, quick, tmp_path / "r", 1, artifacts=False)
    first = study.trials[0]
    study.enqueue_trial(first.params)  # the same candidate again
    study, ran = run_search(space, quick, tmp_path / "r", 2, artifacts=False)
    again = study.trials[1]
    assert ran == [1] and again.params == first.params
    assert again.user_attrs["sampled_by"] == "enqueued"
    assert again.user_attrs["arch_hash"] == first.user_attrs["arch_hash"] == \
        space.arch_hash(first.params)
    assert again.user_attrs["reused_from"] == 0 and again.values == first.values
    assert not (tmp_path / "r" / "trial-1" / "scratch").exists()  # not trained


def test_ctrl_c_leaves_the_study_resumable(space_file: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "runs"
    args = ["search", "run", str(space_file), "--eval", "search_evals:interrupt", "-o",
            str(out), "--trials", "3", "--no-artifacts", "--format", "json"]
    monkeypatch.setenv("SEARCH_EVAL_INTERRUPT", "1")
    assert cli.main(args) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    result = json.loads((out / "trial-1" / "result.json").read_text())
    assert result["state"] == "FAIL" and result["error"] == "interrupted (Ctrl-C)"
    monkeypatch.delenv("SEARCH_EVAL_INTERRUPT")
    assert cli.main(args) == 0  # resumes: the interrupted trial does not count
    doc = json.loads(capsys.readouterr().out)
    assert doc["states"] == {"COMPLETE": 3, "FAIL": 1}
    assert [t["state"] for t in doc["trials"]] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert "interrupted (Ctrl-C)" in doc["trials"][1]["note"]


def test_spaces_the_search_cannot_use_are_refused_before_any_trial(
        space_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: plain\ninput: [1, 8, 8]\nnetwork: [conv 3x3 4, gap, linear 10]\n",
                     encoding="utf-8")
    assert cli.main(["search", "run", str(plain), "--eval", "digits", "-o",
                     str(tmp_path / "a"), "--trials", "1"]) == 2
    assert "no choices, so there is nothing to search" in capsys.readouterr().err
    assert cli.main(["search", "run", str(space_file), "--eval", "mnist", "-o",
                     str(tmp_path / "b"), "--trials", "1"]) == 2
    assert "trains on 1x28x28 images but the space's input is 1x8x8" in \
        capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
