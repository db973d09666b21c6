"""Scale-out: `archdsl search worker` processes sharing one study, on a throw-away PostgreSQL
server (one worker killed mid-trial) and on a journal file; the PostgreSQL study's report equals
the report of its candidates run again in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from pg_server import postgres_url  # noqa: F401 -- the fixture
from test_search_driver import SPACE

from archdsl.search.space import SearchSpace
from archdsl.search.storage import STALE_REASON, open_storage, stale_key

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def archdsl(*args: str, sleep: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
           "OMP_NUM_THREADS": "1", "SEARCH_EVAL_SLEEP": str(sleep)}
    return subprocess.Popen([sys.executable, "-m", "archdsl", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wide_space(tmp_path: Path) -> Path:
    """The test space with 8 widths: 30 architectures inside the budget (x2 learning rates)."""
    path = tmp_path / "space.yaml"
    path.write_text(SPACE.replace("[4, 8, 16, 32]", "[4, 6, 8, 10, 12, 16, 20, 24, 32]"),
                    encoding="utf-8")
    return path


def check_study(study: optuna.Study, space: SearchSpace) -> list[optuna.trial.FrozenTrial]:
    """Every trial with parameters is inside the budget; no architecture completed twice."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    for t in study.trials:
        if t.params:
            assert space.feasible(t.params), t.params
            assert space.cost(t.params).params <= 12_000
    hashes = [space.arch_hash(t.params) for t in complete]
    assert len(hashes) == len(set(hashes))
    return complete


def test_postgres_four_workers_one_killed(postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    space_file = wide_space(tmp_path)
    n = 12
    create = archdsl("search", "create", str(space_file), "--storage", postgres_url,
                     "--study", "s4", "--trials", str(n))
    assert create.wait(120) == 0, create.stderr.read()
    out = tmp_path / "runs"
    workers = [archdsl("search", "worker", "s4", "--storage", postgres_url, "--eval",
                       "search_evals:arch", "-o", str(out), "--heartbeat", "1", "--grace", "5",
                       "--no-artifacts", sleep=1.5)
               for _ in range(4)]
    storage = open_storage(postgres_url, several_workers=True)
    study = optuna.load_study(study_name="s4", storage=storage)
    victim = workers[0]
    deadline = time.time() + 120
    killed_trial = None
    while killed_trial is None and time.time() < deadline:  # wait until it is mid-trial
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if t.user_attrs.get("pid") == victim.pid and "values" in t.user_attrs:
                time.sleep(0.3)
                victim.send_signal(signal.SIGKILL)
                killed_trial = t.number
                break
        time.sleep(0.1)
    assert killed_trial is not None, "the first worker never started a trial"
    for w in workers[1:]:
        assert w.wait(180) == 0, w.stderr.read()
    victim.wait(10)

    study = optuna.load_study(study_name="s4", storage=storage)
    states = {t.number: t.state for t in study.trials}
    assert states[killed_trial] == optuna.trial.TrialState.FAIL
    assert study.user_attrs[stale_key(killed_trial)] == STALE_REASON
    others = [t for t in study.trials if t.number != killed_trial]
    surplus = [t for t in others if t.user_attrs.get("surplus")]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in others if t not in surplus)
    assert len(study.trials) - len(surplus) == n
    complete = check_study(study, SearchSpace.read(space_file))
    assert len(complete) == n - 1
    pids = {t.user_attrs["pid"] for t in complete}
    assert len(pids) >= 2

    # The report equals one made from the same trials run on one machine.
    report = archdsl("search", "report", "s4", "--storage", postgres_url, "-o",
                     str(tmp_path / "pg-report"))
    assert report.wait(120) == 0, report.stderr.read()
    scaled = json.loads((tmp_path / "pg-report" / "report.json").read_text())
    alone = one_machine(space_file, complete, tmp_path)
    assert scaled["trials"]["by_state"].get("FAIL") == 1
    assert canonical(scaled) == canonical(alone)
    assert len(canonical(alone)["records"]) == n - 1


def one_machine(space_file: Path, trials: list[optuna.trial.FrozenTrial],
                tmp_path: Path) -> dict:
    """Run the candidates of ``trials`` again, in their order, in one `archdsl search run`
    process (a journal study of the same name with them enqueued), and report it."""
    url = f"journal:{tmp_path / 'alone.journal'}"
    create = archdsl("search", "create", str(space_file), "--storage", url, "--study", "s4",
                     "--trials", str(len(trials)))
    assert create.wait(120) == 0, create.stderr.read()
    study = optuna.load_study(study_name="s4", storage=open_storage(url, several_workers=False))
    for t in sorted(trials, key=lambda t: t.number):
        study.enqueue_trial(t.params)
    run = archdsl("search", "run", str(space_file), "--storage", url, "--study", "s4",
                  "--trials", str(len(trials)), "--eval", "search_evals:arch", "-o",
                  str(tmp_path / "alone"), "--no-artifacts")
    assert run.wait(180) == 0, run.stderr.read()
    report = archdsl("search", "report", "s4", "--storage", url, "-o",
                     str(tmp_path / "alone-report"))
    assert report.wait(120) == 0, report.stderr.read()
    return json.loads((tmp_path / "alone-report" / "report.json").read_text())


def canonical(report: dict) -> dict:
    """report.json less what only the scale-out has: the trials that did not complete (the
    killed worker's, and surplus ones begun after the study had its trials) with the counts
    by state ("trials"), and the trial numbers those took (the rest renumbered in order)."""
    keep = sorted(r["number"] for r in report["records"] if r["state"] == "COMPLETE")
    new = {old: i for i, old in enumerate(keep)}
    out = {k: v for k, v in report.items() if k != "trials"}
    out["records"] = [{**r, "number": new[r["number"]]} for r in report["records"]
                      if r["number"] in new]
    out["axes"] = {cost: {**axis, "front": [new[n] for n in axis["front"]],
                          "hypervolume_curve": [[new[n], hv] for n, hv in
                                                axis["hypervolume_curve"]],
                          "best_at_budget": [{**b, "trial": new[b["trial"]]}
                                             for b in axis["best_at_budget"]]}
                   for cost, axis in report["axes"].items()}
    return out


def test_journal_two_processes(tmp_path: Path) -> None:
    space_file = wide_space(tmp_path)
    url = f"journal:{tmp_path / 'study.journal'}"
    assert archdsl("search", "create", str(space_file), "--storage", url, "--study", "j",
                   "--trials", "6").wait(120) == 0
    workers = [archdsl("search", "worker", "j", "--storage", url, "--eval",
                       "search_evals:quick", "-o", str(tmp_path / "runs"), "--no-artifacts",
                       sleep=0.5) for _ in range(2)]
    for w in workers:
        assert w.wait(180) == 0, w.stderr.read()
    study = optuna.load_study(study_name="j", storage=open_storage(url, several_workers=True))
    complete = check_study(study, SearchSpace.read(space_file))
    surplus = [t for t in study.trials if t.user_attrs.get("surplus")]
    assert len(complete) == 6 and len(study.trials) == 6 + len(surplus)
    assert len({t.user_attrs["pid"] for t in complete}) == 2  # both worked
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == \
        sorted(f"trial-{t.number}" for t in complete)
