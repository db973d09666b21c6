"""Search a space (a spec with choices and a `search:` section) with Optuna, never leaving its
budget: every trial's candidate is inside it before the trial exists, and no architecture is
trained twice.

  run     one machine: create the study (in a journal file in -o unless --storage) and run it
  create  create a study once in a shared storage (PostgreSQL for many hosts, a journal file
          for several processes on one host), before any worker starts
  worker  run trials of a created study until it has its --trials (start as many as you like)
  report  Pareto front, plots and tables of a study's trials

Every trial is a folder -o DIR/trial-N: spec.yaml (a plain spec), spec.sha256, cost.json,
overview.svg, result.json. --eval digits|mnist trains on built-in data; --eval module:function
calls function(model, spec, context) -> {metric: value} (see docs/search.md).
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path
from typing import Any

from ..jsonout import emit
from ..search.section import SAMPLERS
from ..usage import UsageError

HELP = "search a space with Optuna inside its budget: run, create, worker, report"
EPILOG = """examples:
  archdsl search run specs/search/digits_cnn.yaml --trials 40 --eval digits -o runs/digits
  archdsl search create specs/search/digits_cnn.yaml --storage postgresql://me@db/optuna \\
      --study s1 --trials 200
  archdsl search worker s1 --storage postgresql://me@db/optuna --eval mypkg.train:evaluate
  archdsl search report s1 --storage postgresql://me@db/optuna -o runs/s1
  archdsl search report digits_cnn --storage runs/digits/study.journal -o runs/digits

exit status: 0 success; 1 some trial of this process failed (its traceback is in its
result.json); 2 a bad space, command line or storage; 3 an internal error (a bug)"""
EXIT_STATUS = EPILOG


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="search_command", required=True, metavar="ACTION")
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an internal error")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=EPILOG, parents=[debug],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    run = action("run", "create (or resume) a study and run its trials in this process")
    run.add_argument("space", help="the space: a spec with choices and a search: section")
    run.add_argument("--trials", type=_positive, required=True, help="number of trials")
    _eval_option(run, required=True)
    run.add_argument("-o", "--output", metavar="DIR", help="trial folders (default runs/SPACE)")
    run.add_argument("--storage", metavar="URL",
                     help="default: the journal file DIR/study.journal")
    run.add_argument("--study", metavar="NAME", help="study name (default: the space's name)")
    _study_options(run)
    _trial_options(run)
    run.add_argument("--format", choices=("text", "json"), default="text",
                     help="the summary on stdout")

    create = action("create", "create a study once in a shared storage")
    create.add_argument("space", help="the space file (workers read it from this path)")
    create.add_argument("--storage", metavar="URL", required=True,
                        help="postgresql://user@host/db or journal:PATH (not SQLite)")
    create.add_argument("--study", metavar="NAME", required=True)
    create.add_argument("--trials", type=_positive, default=100,
                        help="trials of the whole study, over all workers (default 100)")
    _study_options(create)

    worker = action("worker", "run trials of a created study until it has its trials")
    worker.add_argument("study", metavar="NAME")
    worker.add_argument("--storage", metavar="URL", required=True)
    _eval_option(worker, required=True)
    worker.add_argument("-o", "--output", metavar="DIR",
                        help="trial folders (default runs/NAME; share it between hosts to keep "
                        "every folder in one place)")
    worker.add_argument("--trials", type=_positive,
                        help="at most this many trials in this worker (default: until the "
                        "study has its trials)")
    worker.add_argument("--space", metavar="FILE",
                        help="the space file, when not at the path the study recorded")
    worker.add_argument("--seed", type=int,
                        help="the inner sampler's seed (default: none, so that workers differ)")
    worker.add_argument("--heartbeat", type=_positive, default=10, metavar="SECONDS",
                        help="PostgreSQL: seconds between a trial's heartbeats (default 10)")
    worker.add_argument("--grace", type=_positive, default=30, metavar="SECONDS",
                        help="PostgreSQL: a trial without heartbeat this long is failed "
                        "(default 30)")
    _trial_options(worker)

    report = action("report", "fronts, plots and tables of a study's trials")
    report.add_argument("study", metavar="NAME")
    report.add_argument("--storage", metavar="URL", required=True)
    report.add_argument("-o", "--output", metavar="DIR", required=True)
    report.add_argument("--space", metavar="FILE",
                        help="the space file, when not at the path the study recorded")
    report.add_argument("--baseline", action="append", default=[], metavar="SPEC",
                        help="a plain spec to show beside the trials, evaluated as the trials "
                        "were (with --eval; repeatable)")
    _eval_option(report, required=False)
    report.add_argument("--epochs", type=_positive, help="the baselines' epoch budget")
    report.add_argument("--compare", action="append", default=[], metavar="STUDY[=LABEL]",
                        help="another study (another space) drawn beside this one in the error "
                        "EDFs, labelled LABEL (default: its name; repeatable)")
    report.add_argument("--compare-storage", metavar="URL",
                        help="where the --compare studies are (default: --storage)")
    report.add_argument("--format", choices=("text", "json"), default="text",
                        help="the summary on stdout")
    for parser in (run, create, worker, report):
        parser.add_argument("--library", action="append", default=[], metavar="DIR",
                            help="another folder includes may come from (repeatable)")


def _eval_option(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--eval", dest="eval", metavar="digits|mnist|MODULE:FUNCTION",
                   required=required,
                   help="the built-in trainer on that data set, or your function "
                   "(model, spec, context) -> {metric: value}")


def _study_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampler", choices=SAMPLERS,
                   help="the inner sampler (default: the space's, else tpe for one objective "
                   "and nsga2 for several)")
    p.add_argument("--seed", type=int, help="the study's seed (default: the space's)")


def _trial_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=_positive, help="the epoch budget of every trial")
    p.add_argument("--no-artifacts", dest="artifacts", action="store_false",
                   help="do not copy the trial files into Optuna's artifact store")
    stop = p.add_argument_group(
        "early stopping", "stop a trial (PRUNED, stopped_early in its result) at a step where "
        "trials that cost no more (the budget's metric, else MACs) beat it")
    stop.add_argument("--early-stop", action="store_true",
                      help="stop trials early with the cost-aware rule")
    stop.add_argument("--early-stop-peers", type=_positive, default=4, metavar="N",
                      help="at least N cheaper trials must have reached the step (default 4)")
    stop.add_argument("--early-stop-quantile", type=_share, default=0.5, metavar="Q",
                      help="stop when at least Q of them are better (0 < Q <= 1; default 0.5)")
    stop.add_argument("--early-stop-warmup", type=_positive, default=1, metavar="STEPS",
                      help="never before this step (default 1)")


def _share(text: str) -> float:
    try:
        q = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < q <= 1:
        raise argparse.ArgumentTypeError("must be above 0 and at most 1")
    return q


def _early_stop(args: argparse.Namespace) -> Any:
    """The EarlyStop settings of --early-stop (None without it; its options alone are refused)."""
    from ..search.driver import EarlyStop

    given = [f"--early-stop-{k}" for k, default in (("peers", 4), ("quantile", 0.5),
                                                     ("warmup", 1))
             if getattr(args, f"early_stop_{k}") != default]
    if not args.early_stop:
        if given:
            raise UsageError(f"{given[0]} tunes --early-stop: give --early-stop too")
        return None
    return EarlyStop(min_peers=args.early_stop_peers, quantile=args.early_stop_quantile,
                     warmup=args.early_stop_warmup)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return n


def run(args: argparse.Namespace) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial is ours
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    return {"run": _run, "create": _create, "worker": _worker,
            "report": _report}[args.search_command](args)


def _run(args: argparse.Namespace) -> int:
    from ..search import driver

    space = driver.read_space(args.space, args.library)
    evaluation = driver.load_eval(args.eval)
    driver.check_data(space, evaluation)
    early_stop = _early_stop(args)
    out = Path(args.output or Path("runs") / Path(args.space).stem)
    try:
        study, ran = driver.run_search(space, evaluation, out, args.trials,
                                       storage_url=args.storage, study_name=args.study,
                                       sampler=args.sampler, seed=args.seed, epochs=args.epochs,
                                       artifacts=args.artifacts, early_stop=early_stop)
    except KeyboardInterrupt:
        return _interrupted(args)
    status = _status(study, ran)
    _summary(args, study, status, out)
    return status


def _create(args: argparse.Namespace) -> int:
    from ..search import driver
    from ..search.storage import open_storage, redact

    space = driver.read_space(args.space, args.library)
    storage = open_storage(args.storage, several_workers=True)
    study = driver.create_study(space, storage, args.study, n_trials=args.trials,
                                sampler=args.sampler, seed=args.seed)
    print(f"created study {study.study_name!r} ({args.trials} trials, "
          f"{study.user_attrs['sampler']}) in {redact(args.storage)}; start workers with:\n"
          f"  archdsl search worker {study.study_name} --storage {redact(args.storage)} "
          "--eval ...", file=sys.stderr)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from ..search import driver
    from ..search.storage import open_storage

    storage = open_storage(args.storage, several_workers=True, heartbeat_interval=args.heartbeat,
                           grace_period=args.grace)
    study = driver.load_study(storage, args.study)
    space = driver.study_space(study, args.space, args.library)
    evaluation = driver.load_eval(args.eval)
    driver.check_data(space, evaluation)
    out = Path(args.output or Path("runs") / args.study)
    worker = driver.start_worker(study, space, evaluation, out, seed=args.seed,
                                 epochs=args.epochs, artifacts=args.artifacts,
                                 early_stop=_early_stop(args))
    try:
        ran = worker.run(args.trials)
    except KeyboardInterrupt:
        return _interrupted(args)
    print(f"worker: {len(ran)} trials of study {args.study!r} in {out}", file=sys.stderr)
    return _status(study, ran)


def _report(args: argparse.Namespace) -> int:
    from ..search import driver
    from ..search.report import write_report
    from ..search.storage import open_storage

    storage = open_storage(args.storage, several_workers=False)
    study = driver.load_study(storage, args.study)
    space = driver.study_space(study, args.space, args.library)
    out = Path(args.output)
    baselines = []
    if args.baseline:
        if not args.eval:
            raise UsageError("--baseline SPEC is evaluated like the trials: give --eval too")
        evaluation = driver.load_eval(args.eval)
        seed = int(study.user_attrs.get("seed") or 0)
        for i, spec in enumerate(args.baseline):
            baselines.append(driver.evaluate_baseline(
                spec, evaluation, seed=seed, epochs=args.epochs,
                scratch=out / f"baseline-{i}", library=args.library))
    others = _compared(args, storage, study.study_name)
    tables = io.StringIO()  # the fronts' tables (and proxies' correlations), shown after the trials
    path = write_report(study, space, out, baselines=tuple(baselines), others=others,
                        echo=tables)
    print(f"wrote {path}", file=sys.stderr)
    _summary(args, study, 0, None)
    if args.format == "text":
        print(f"\n{tables.getvalue()}", end="")
    return 0


def _compared(args: argparse.Namespace, storage: Any, name: str) -> dict[str, Any]:
    """The --compare studies by label (labels must differ from each other and from ``name``)."""
    from ..search import driver
    from ..search.storage import open_storage

    if args.compare_storage and not args.compare:
        raise UsageError("--compare-storage says where the --compare studies are: give "
                         "--compare STUDY too")
    if args.compare and args.compare_storage:
        storage = open_storage(args.compare_storage, several_workers=False)
    others: dict[str, Any] = {}
    for item in args.compare:
        other, _, label = item.partition("=")
        label = label or other
        if label in others or label == name:
            raise UsageError(f"--compare {item}: the label {label!r} is taken (give another: "
                             f"--compare {other}=LABEL)")
        others[label] = driver.load_study(storage, other)
    return others


def _interrupted(args: argparse.Namespace) -> int:
    """Ctrl-C: the trial under way is failed, marked interrupted so that it does not count."""
    print(f"archdsl search {args.search_command}: interrupted; the trial under way is marked "
          "failed (interrupted) and does not count: run the same command again to resume the "
          "study", file=sys.stderr)
    return 130


def _status(study: Any, ran: list[int]) -> int:
    from optuna.trial import TrialState

    failed = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
              if t.number in set(ran)]
    if failed:
        print(f"{len(failed)} trial(s) failed: {', '.join(map(str, failed))} (see their "
              "result.json)", file=sys.stderr)
        return 1
    return 0


def _summary(args: argparse.Namespace, study: Any, status: int, out: Path | None) -> None:
    from ..search.driver import summary
    from ..table import render

    doc = summary(study)
    if args.format == "json":
        emit("search", status == 0, action=args.search_command, **doc)
        return
    names = doc["objectives"]
    cost = [m for m in ("params", "macs") if m not in names]  # unless objectives already
    rows = [[t["number"], t["state"], *(t["values"] or [""] * len(names)),
             *(t.get(m) or "" for m in cost), t.get("sampled_by") or "", t.get("note", "")]
            for t in doc["trials"]]
    print(render(["trial", "state", *names, *cost, "found by", "note"], rows))
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(doc["states"].items()))
    print(f"\nstudy {doc['study']!r}: {counts}" + (f"; trial folders in {out}" if out else ""))
