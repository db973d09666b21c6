"""Running a search: create a study once, then any number of workers run its trials.

- :func:`create_study` records, as the study's user attributes, what every worker needs to run
  the same search: the space's path and SHA-256, the objectives and their directions, the
  sampler, the seed and the number of trials. Creating a study twice is refused (Optuna's
  concurrent first creation kills workers), so workers only ever load it.
- :func:`run_worker` loads nothing itself: given the study and its space, it runs trials until
  the study has its ``n_trials`` (every trial that started, whatever its state, in all workers)
  or this worker ran ``trials`` of them. With heartbeats on, it waits at the end for the other
  workers' running trials, so that one whose worker died is marked FAIL and replaced.
- A trial: the sampler has chosen its candidate before the trial got any parameter
  (:mod:`archdsl.search.sampler`); the trial folder is written (:mod:`archdsl.search.records`);
  the model is built with the trial's seed and handed to the evaluation function; its metrics
  and the candidate's exact cost give the objective values. A trial whose architecture was
  already trained copies that trial's values (user attribute ``reused_from``) and trains
  nothing. An evaluation that raises makes a FAIL trial whose traceback is kept.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled  # no public name in Optuna 5
from optuna.trial import TrialState

from .. import __version__
from ..usage import UsageError
from . import records
from .sampler import BudgetSampler, is_active, make_inner, suggest
from .stopping import CostAwareStopping, StudyStopper
from .storage import open_storage, stale_key

BUILTIN_EVALS = ("digits", "mnist")  # archdsl.search.train.evaluate on that data set
COST_METRICS = ("params", "macs", "flops", "fvcore", "activations")
DEFAULT_OBJECTIVES = (("accuracy", "maximize"),)
WAIT_POLL = 1.0  # seconds between looks at a trial this one waits for
WAIT_LIMIT = 3600.0  # without heartbeats (journal), how long to wait for a duplicate's original

Evaluator = Callable[[Any, Any, Any], Mapping[str, float]]


class EvalFailed(Exception):
    """The evaluation (or building the model) raised: the trial fails, the worker goes on."""


@dataclass
class EvalContext:
    """What the evaluation function gets besides the model and the spec."""

    dataset: str | None  # the built-in evaluator's data set (None for a user function)
    seed: int  # the trial's seed: the study's seed + the trial's number
    epochs: int | None  # the epoch budget (None: the evaluator's own default)
    knobs: dict[str, Any]  # the candidate's training knobs (non-architecture dimensions)
    scratch: Path  # a folder of the trial's own, for checkpoints and logs
    trial_number: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)
    stop: Callable[[int, float], bool] | None = None  # early stopping (True: stop now)
    trial: optuna.Trial | None = None
    stopper: StudyStopper | None = None  # --early-stop: the cost-aware rule on the study
    stop_reason: str | None = None  # why the last report said stop (None: it did not)

    def report(self, step: int, value: float) -> bool:
        """Record an intermediate value; True when the trial should stop now."""
        step, value = int(step), float(value)
        self.curve.append((step, value))
        if self.trial is not None and len(self.trial.study.directions) == 1:
            # Shown by optuna-dashboard (single-objective studies only). Optuna's pruners are
            # not asked: the studies have none (NopPruner); stopping is decided here.
            self.trial.report(value, step)
        self.stop_reason = None
        if self.stop is not None and self.stop(step, value):
            self.stop_reason = "asked by the context's stop function"
        if self.stopper is not None and self.trial is not None:
            # The stopper publishes this curve (user attribute ``curve``) for the other
            # trials' decisions; the driver writes the same list again at the end.
            decision = self.stopper.decide(self.trial, self.curve)
            if decision.stop:
                self.stop_reason = decision.reason
        return self.stop_reason is not None


@dataclass
class Evaluation:
    """A ``--eval`` argument made callable."""

    name: str
    fn: Evaluator
    dataset: str | None


def load_eval(name: str) -> Evaluation:
    """``digits``/``mnist`` (the built-in trainer) or ``module:function``."""
    if name in BUILTIN_EVALS:
        from . import train

        return Evaluation(name, train.evaluate, name)
    module, colon, func = name.partition(":")
    if not colon or not module or not func:
        raise UsageError(f"--eval {name!r}: expected {' or '.join(BUILTIN_EVALS)} or "
                         "module:function (e.g. mypkg.train:evaluate)")
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 -- any failure to import is the user's to see
        raise UsageError(f"--eval {name}: cannot import {module}: "
                         f"{type(exc).__name__}: {exc}") from None
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise UsageError(f"--eval {name}: {module} has no function {func!r}")
    return Evaluation(name, fn, None)


# --- the study --------------------------------------------------------------------------------
def read_space(path: str | Path, library: list[str] | None = None) -> Any:
    """The :class:`archdsl.search.space.SearchSpace` in a file (located errors on bad input)."""
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such space file")
    from .space import SearchSpace

    space = SearchSpace.read(path, library or None)
    if not space.dimensions:
        raise UsageError(f"{path}: the spec has no choices, so there is nothing to search (write "
                         "{choice: [...]}, {int: [low, high]} or {float: [low, high]} where a "
                         "value may vary: docs/search.md, 'Choices')")
    return space


def check_data(space: Any, evaluation: Evaluation) -> None:
    """Refuse, before any trial, a space whose input is not the built-in data set's (the input
    is never a choice, so the default candidate tells for all)."""
    if evaluation.dataset is None:
        return
    from ..errors import SpecErrors
    from .train import SHAPES

    try:
        spec = space.resolve(space.satisfying({}) or space.defaults())
    except SpecErrors:
        return  # an invalid default candidate: the sampler skips it; trials say the rest
    want = SHAPES[evaluation.dataset]
    if tuple(spec.input_shape) != want:
        raise UsageError(f"{space.path}: --eval {evaluation.name} trains on "
                         f"{'x'.join(map(str, want))} images but the space's input is "
                         f"{'x'.join(map(str, spec.input_shape))} (set its input: {list(want)})")


def study_space(study: optuna.Study, path: str | Path | None,
                library: list[str] | None = None) -> Any:
    """The space of a study: the file it recorded, or ``path``; either must be the same file."""
    path = Path(path or study.user_attrs["space_path"])
    if not path.is_file():
        raise UsageError(f"{path}: no such space file (study {study.study_name!r} was created "
                         "from it; give its place on this host with --space)")
    check_space(study, path)
    return read_space(path, library)


def space_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def objectives_of(space: Any) -> list[tuple[str, str]]:
    return [tuple(o) for o in (space.objectives or DEFAULT_OBJECTIVES)]  # type: ignore[misc]


def create_study(space: Any, storage: Any, name: str, *, n_trials: int,
                 sampler: str | None = None, seed: int | None = None,
                 load_if_exists: bool = False) -> optuna.Study:
    """Create the study with everything workers need as user attributes (see the module)."""
    objectives = objectives_of(space)
    attrs = {
        "space_path": str(Path(space.path).resolve()),
        "space_sha256": space_sha256(space.path),
        "objectives": [list(o) for o in objectives],
        "sampler": (sampler or space.sampler or
                    ("tpe" if len(objectives) == 1 else "nsga2")),
        "seed": seed if seed is not None else space.seed,
        "n_trials": n_trials,
        "archdsl_version": __version__,
    }
    try:
        study = optuna.create_study(storage=storage, study_name=name,
                                    directions=[d for _, d in objectives],
                                    load_if_exists=load_if_exists,
                                    pruner=optuna.pruners.NopPruner())
    except optuna.exceptions.DuplicatedStudyError:
        raise UsageError(f"study {name!r} exists already in this storage: start workers with "
                         f"`archdsl search worker {name}`, or choose another --study") from None
    if study.user_attrs.get("space_sha256") not in (None, attrs["space_sha256"]):
        raise UsageError(f"study {name!r} was created from another version of the space "
                         f"({study.user_attrs['space_path']}); choose another --study")
    if not study.user_attrs:
        for key, value in attrs.items():
            study.set_user_attr(key, value)
    return study


def load_study(storage: Any, name: str) -> optuna.Study:
    try:
        study = optuna.load_study(study_name=name, storage=storage,
                                  pruner=optuna.pruners.NopPruner())
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        from ..suggest import did_you_mean

        raise UsageError(f"no study {name!r} in this storage{did_you_mean(name, names)} "
                         "(create it first: archdsl search create SPACE --study NAME)") from None
    if "space_path" not in study.user_attrs:
        raise UsageError(f"study {name!r} was not made by `archdsl search create`")
    return study


def check_space(study: optuna.Study, path: str | Path) -> None:
    """Refuse a space file that is not the one the study was created from."""
    want = study.user_attrs["space_sha256"]
    if space_sha256(path) != want:
        raise UsageError(f"{path}: not the space study {study.study_name!r} was created from "
                         f"(SHA-256 {want[:12]}...); give that file with --space")


def attach_sampler(study: optuna.Study, space: Any, seed: int | None) -> BudgetSampler:
    """The study's sampler, wrapped so that it only yields feasible, new candidates."""
    inner = make_inner(study.user_attrs.get("sampler"), seed, len(study.directions))
    sampler = BudgetSampler(inner, space, seed=seed)
    study.sampler = sampler
    return sampler


def started(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Every trial some worker began (complete, running, failed or pruned), except those
    interrupted (Ctrl-C): resuming the study runs them again."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state != TrialState.WAITING and not t.user_attrs.get("interrupted")]


# --- the worker -------------------------------------------------------------------------------
@dataclass
class Worker:
    """Runs trials of one study in this process."""

    study: optuna.Study
    space: Any
    evaluation: Evaluation
    out_dir: Path
    sampler: BudgetSampler
    epochs: int | None = None
    artifacts: bool = True
    stopper: StudyStopper | None = None
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))
    ran: list[int] = field(default_factory=list)

    @property
    def n_trials(self) -> int | None:
        return self.study.user_attrs.get("n_trials")

    def run(self, trials: int | None = None) -> list[int]:
        """Run trials until the study has its n_trials or ``trials`` ran here; their numbers."""
        heartbeat = is_heartbeat_enabled(self.study._storage)
        import torch  # noqa: F401 -- now: importing it in a trial would stall its heartbeats
        while trials is None or len(self.ran) < trials:
            if heartbeat:
                optuna.storages.fail_stale_trials(self.study)
            begun = started(self.study)
            if self.n_trials is not None and len(begun) >= self.n_trials:
                if heartbeat and any(t.state == TrialState.RUNNING for t in begun):
                    time.sleep(WAIT_POLL)  # one of them may be a dead worker's: wait and see
                    continue
                break
            try:
                self.study.optimize(self.objective, n_trials=1, catch=(EvalFailed,),
                                    gc_after_trial=False)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Another worker failed this trial: its heartbeat stopped for the grace period
                # (a process starved of CPU, a lost connection). Its result is lost; go on.
                self.log(f"trial {self.ran[-1]} was marked failed by another worker (no "
                         "heartbeat within the grace period); its result is not recorded")
        return self.ran

    # --- one trial ------------------------------------------------------------------------------
    def objective(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        self.ran.append(trial.number)
        try:
            return self.trial(trial)
        except KeyboardInterrupt:
            # Optuna marks it FAIL and lets the interrupt through; marked so, it does not count
            # among the study's trials, and running the same command again resumes the study.
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
            raise

    def trial(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        storage = self.study._storage
        attrs = storage.get_trial(trial._trial_id).user_attrs  # what the sampler wrote
        if self.n_trials is not None and sum(
                t.number < trial.number for t in started(self.study)) >= self.n_trials:
            trial.set_user_attr("surplus", True)  # another worker began the last trial first
            raise optuna.TrialPruned("the study had its n_trials when this trial began")
        if attrs.get("no_candidate"):
            trial.set_user_attr("fail_reason", "the sampler found no candidate inside the budget")
            raise EvalFailed("no candidate inside the budget")
        values: dict[str, Any] = {}
        for dim in self.space.dimensions:
            if is_active(dim, values):
                values[dim.name] = suggest(trial, dim)
        if not self.space.feasible(values):  # only an enqueued trial can get here
            trial.set_user_attr("fail_reason", "the candidate is outside the budget")
            raise EvalFailed("the candidate is outside the budget")
        if "arch_hash" not in attrs:  # enqueued: the sampler did not see it
            attrs = {**attrs, **self.enqueued(trial, values)}
        folder = self.out_dir / f"trial-{trial.number}"
        seed = int(self.study.user_attrs.get("seed") or 0) + trial.number
        record = records.TrialRecord(folder, trial, self.space, values, seed,
                                     self.artifact_store(), self.log)
        record.write_candidate()
        original = attrs.get("duplicate_of")
        if original is not None:
            reused = self.reuse(trial, record, original)
            if reused is not None:
                return reused
        return self.evaluate(trial, record, values, seed)

    def enqueued(self, trial: optuna.Trial, values: dict[str, Any]) -> dict[str, Any]:
        """Record an enqueued trial's candidate as the sampler records its own (``arch_hash``,
        ``candidate``, ``sampled_by``), and ``duplicate_of`` when a trial that is running, done
        or stopped has its architecture (then it is not trained again)."""
        arch = self.space.arch_hash(values)
        attrs: dict[str, Any] = {"arch_hash": arch, "candidate": values, "sampled_by": "enqueued"}
        same = [t for t in self.study.get_trials(deepcopy=False, states=(
                    TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED))
                if t.number != trial.number and t.user_attrs.get("arch_hash") == arch
                and "surplus" not in t.user_attrs]
        if same:
            done = [t for t in same if t.state == TrialState.COMPLETE]
            attrs["duplicate_of"] = min(done or same, key=lambda t: t.number).number
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return attrs

    def reuse(self, trial: optuna.Trial, record: records.TrialRecord,
              number: int) -> float | tuple[float, ...] | None:
        """The values of trial ``number`` (same architecture), once it has finished; None when
        it failed (then this trial trains)."""
        heartbeat = is_heartbeat_enabled(self.study._storage)
        deadline = time.time() + (math.inf if heartbeat else WAIT_LIMIT)
        while True:
            other = self.study.get_trials(deepcopy=False)[number]
            if other.state != TrialState.RUNNING or time.time() > deadline:
                break
            if heartbeat:  # a dead worker's trial is failed after the grace period
                optuna.storages.fail_stale_trials(self.study)
            time.sleep(WAIT_POLL)
        if other.state in (TrialState.FAIL, TrialState.RUNNING):
            if other.state == TrialState.RUNNING:
                self.log(f"trial {trial.number}: trial {number} (same architecture) still "
                         f"runs after {WAIT_LIMIT} s without heartbeats to tell whether its "
                         "worker lives; training it here")
            return None
        trial.set_user_attr("reused_from", number)
        record.write_result({"reused_from": number, "state": other.state.name,
                             "metrics": other.user_attrs.get("metrics", {})})
        if other.state != TrialState.COMPLETE:
            raise optuna.TrialPruned(f"same architecture as trial {number}, which was pruned")
        return other.values[0] if len(other.values) == 1 else tuple(other.values)

    def evaluate(self, trial: optuna.Trial, record: records.TrialRecord,
                 values: dict[str, Any], seed: int) -> float | tuple[float, ...]:
        scratch = record.folder / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        context = EvalContext(dataset=self.evaluation.dataset, seed=seed, epochs=self.epochs,
                              knobs=dict(self.space.training_knobs(values)), scratch=scratch,
                              trial_number=trial.number, trial=trial, stopper=self.stopper)
        start = time.time()
        try:
            spec = self.space.resolve(values)
            model = build_seeded(spec, seed)
            metrics = dict(self.evaluation.fn(model, spec, context))
            metrics = {str(k): float(v) for k, v in metrics.items()}
            objective = self.objective_values(metrics, values)
        except KeyboardInterrupt:
            record.write_result({"state": "FAIL", "error": "interrupted (Ctrl-C)",
                                 "curve": context.curve, "time": time.time() - start,
                                 "started": start})
            raise
        except Exception as exc:  # noqa: BLE001 -- any failure of the user's code fails the trial
            tb = traceback.format_exc()
            record.write_result({"state": "FAIL", "error": f"{type(exc).__name__}: {exc}",
                                 "traceback": tb, "curve": context.curve,
                                 "time": time.time() - start, "started": start})
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:1000])
            trial.set_user_attr("traceback", tb[-8000:])
            self.log(f"trial {trial.number} failed: {type(exc).__name__}: {exc}")
            raise EvalFailed(str(exc)) from exc
        stopped = context.stop_reason is not None  # the last report said stop
        record.write_result({"state": "PRUNED" if stopped else "COMPLETE", "metrics": metrics,
                             "curve": context.curve, "stopped_early": stopped,
                             **({"stop_reason": context.stop_reason} if stopped else {}),
                             "objectives": dict(zip([n for n, _ in objectives_of(self.space)],
                                                    objective, strict=True)),
                             "time": time.time() - start, "started": start,
                             "eval": self.evaluation.name})
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("curve", [list(p) for p in context.curve])
        trial.set_user_attr("stopped_early", stopped)
        text = ", ".join(f"{n}={v:.4g}" for (n, _), v in zip(objectives_of(self.space),
                                                              objective, strict=True))
        if stopped:
            # Stopped early: PRUNED, as Optuna calls it, so that it is neither on the front nor
            # in the error EDFs with a half-trained score; its architecture is not tried again.
            trial.set_user_attr("stop_reason", context.stop_reason)
            self.log(f"trial {trial.number} stopped early at step {context.curve[-1][0]}: "
                     f"{context.stop_reason} ({text})")
            raise optuna.TrialPruned(context.stop_reason)
        self.log(f"trial {trial.number}: {text}")
        return objective[0] if len(objective) == 1 else objective

    def objective_values(self, metrics: dict[str, float],
                         values: dict[str, Any]) -> tuple[float, ...]:
        """The study's objectives from the metrics, cost metrics from the exact count."""
        cost = self.space.cost(values)
        out = []
        for name, _ in objectives_of(self.space):
            if name in metrics:
                out.append(metrics[name])
            elif name in COST_METRICS:
                out.append(float(cost.get(name)))
            else:
                raise KeyError(f"the evaluation returned no {name!r} (objective of the space; "
                               f"it returned {sorted(metrics) or 'nothing'})")
        return tuple(out)

    def artifact_store(self) -> Any:
        if not self.artifacts:
            return None
        from optuna.artifacts import FileSystemArtifactStore

        base = self.out_dir / "artifacts"
        base.mkdir(parents=True, exist_ok=True)
        return FileSystemArtifactStore(str(base))


def build_seeded(spec: Any, seed: int) -> Any:
    """The torch model with its initial weights set by the seed alone."""
    import random

    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass
    return spec.build()


def evaluate_baseline(path: str | Path, evaluation: Evaluation, *, seed: int,
                      epochs: int | None, scratch: Path,
                      library: list[str] | None = None) -> tuple[str, dict[str, float]]:
    """A plain spec evaluated as a trial is (same seed rule, same evaluation), with its exact
    cost: (its name, its metrics) for the report's baselines."""
    from ..spec import load

    if not Path(path).is_file():
        raise UsageError(f"--baseline {path}: no such spec file")
    spec = load(path, library=library or None)
    scratch.mkdir(parents=True, exist_ok=True)
    context = EvalContext(dataset=evaluation.dataset, seed=seed, epochs=epochs, knobs={},
                          scratch=scratch)
    metrics = {str(k): float(v) for k, v in
               evaluation.fn(build_seeded(spec, seed), spec, context).items()}
    total = spec.cost().total
    for name in COST_METRICS:
        metrics.setdefault(name, float(total.get(name)))
    return spec.name, metrics


# --- the three entry points -------------------------------------------------------------------
@dataclass(frozen=True)
class EarlyStop:
    """``--early-stop``'s settings (see :class:`archdsl.search.stopping.CostAwareStopping`)."""

    min_peers: int = 4
    quantile: float = 0.5
    warmup: int = 1


def make_stopper(space: Any, settings: EarlyStop) -> StudyStopper:
    """The cost-aware rule for this space: trials are compared on the cost of the budget's
    metric (else MACs), and the reported value in the direction of the first objective that is
    not a cost (accuracy, maximised, by default)."""
    direction = next((d for n, d in objectives_of(space) if n not in COST_METRICS), "maximize")
    budget = getattr(space, "budget", None)
    rule = CostAwareStopping(direction=direction, min_peers=settings.min_peers,
                             warmup_steps=settings.warmup, quantile=settings.quantile)
    return StudyStopper(rule, cost_attr=budget.metric if budget is not None else "macs")


def start_worker(study: optuna.Study, space: Any, evaluation: Evaluation, out_dir: Path, *,
                 seed: int | None = None, epochs: int | None = None,
                 artifacts: bool = True, early_stop: EarlyStop | None = None) -> Worker:
    sampler = attach_sampler(study, space, seed)
    stopper = make_stopper(space, early_stop) if early_stop is not None else None
    return Worker(study, space, evaluation, Path(out_dir), sampler, epochs, artifacts, stopper)


def run_search(space: Any, evaluation: Evaluation, out_dir: Path, n_trials: int, *,
               storage_url: str | None = None, study_name: str | None = None,
               sampler: str | None = None, seed: int | None = None,
               epochs: int | None = None, artifacts: bool = True,
               early_stop: EarlyStop | None = None) -> tuple[optuna.Study, list[int]]:
    """One machine, one process: create (or resume) the study and run its trials.

    Without a storage the study goes into a journal file in the output folder
    (``study.journal``), so that ``archdsl search report`` can read it afterwards.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    url = storage_url or f"journal:{out_dir / 'study.journal'}"
    storage = open_storage(url, several_workers=False)
    name = study_name or Path(space.path).stem
    study = create_study(space, storage, name, n_trials=n_trials, sampler=sampler, seed=seed,
                         load_if_exists=True)
    if study.user_attrs.get("n_trials") != n_trials:
        study.set_user_attr("n_trials", n_trials)  # resuming with more (or fewer) trials
    seed = study.user_attrs.get("seed")
    worker = start_worker(study, space, evaluation, out_dir, seed=seed, epochs=epochs,
                          artifacts=artifacts, early_stop=early_stop)
    return study, worker.run()


NOTES = ("fail_reason", "reused_from", "duplicate_of", "surplus", "stop_reason")


def summary(study: optuna.Study) -> dict[str, Any]:
    """Every trial's state, objective values, cost and how its candidate was found."""
    trials = []
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "values": t.values,
                               "params": t.user_attrs.get("params"),
                               "macs": t.user_attrs.get("macs"),
                               "sampled_by": t.user_attrs.get("sampled_by"),
                               "candidate": t.user_attrs.get("values", t.params)}
        notes = [f"{k}={t.user_attrs[k]}" for k in NOTES if k in t.user_attrs]
        if stale_key(t.number) in study.user_attrs:
            notes.append(f"fail_reason={study.user_attrs[stale_key(t.number)]}")
        row["note"] = "; ".join(notes)[:80]
        trials.append(row)
    return {"study": study.study_name, "objectives": [n for n, _ in
                                                      study.user_attrs.get("objectives", [])],
            "directions": [d.name.lower() for d in study.directions], "states": states,
            "n_trials": study.user_attrs.get("n_trials"), "trials": trials}
