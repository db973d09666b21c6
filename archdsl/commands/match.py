"""Solve a knob of a spec (width, depth, input size or any parameter) so that its cost matches
another spec's within a tolerance, and write the matched spec as YAML. Works on the IR only:
no torch, no model is built.

The matched spec is the original text with the knob's value changed under ``params:`` (or
``input:``), comments kept, include paths re-pointed from where it is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cost import METRICS, totals
from ..jsonout import add_format_option, emit
from ..match import (
    INPUT,
    MatchError,
    Problem,
    describe_result,
    find_knob,
    matched_text,
    solve,
    write_matched,
    yaml_scalar,
)
from ..progress import progress
from ..spec import load
from ..table import wrap
from ..usage import UsageError, add_spec_options, load_from_args, parse_sets

HELP = "solve a knob so that a spec costs what another does; write the matched spec (no torch)"
EXAMPLES = """\
  archdsl match specs/inception_resnet_v2.yaml --to specs/inception_v4.yaml --knob width
  archdsl match specs/resnet50.yaml --to specs/resnet34.yaml --knob input --tolerance 0.03
  archdsl match specs/mobilenet_v1.yaml --to specs/resnet18.yaml --knob width -o mb_wide.yaml
  archdsl match specs/mobilenet_v1.yaml --to specs/resnet18.yaml --knob width --format json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the spec to adjust")
    p.add_argument("--to", required=True, metavar="TARGET", help="the spec whose cost to meet")
    p.add_argument("--knob", required=True, metavar="NAME",
                   help="width, depth, input (the resolution) or any parameter of the spec")
    p.add_argument("--metric", default="macs", choices=list(METRICS),
                   help="what to match (default macs)")
    p.add_argument("--tolerance", type=float, default=0.01, metavar="FRACTION",
                   help="largest accepted |achieved/target - 1| (default 0.01 = 1%%)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the matched spec here (atomically); without it, only report")
    add_spec_options(p)
    add_format_option(p)
    p.add_argument("--to-set", dest="to_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter of the target spec (--set applies to SPEC; "
                        "--input to both)")


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.tolerance < 1:
        raise UsageError(f"--tolerance {args.tolerance}: give a fraction such as 0.01")
    target_spec = load_from_args(
        argparse.Namespace(**{**vars(args), "sets": args.to_sets}), args.to)
    target = totals(target_spec.ir).get(args.metric)
    spec = load_from_args(args)
    overrides = parse_sets(args.sets)
    try:
        knob = find_knob(spec, args.knob)
    except MatchError as exc:
        raise UsageError(str(exc)) from None
    if knob.name in overrides:
        raise UsageError(f"--set {knob.name}=... fixes the knob being solved; drop one of them")
    unit = METRICS[args.metric].unit
    if args.output:  # fail before the search if the result could not be written
        try:
            trial = {**overrides, **({} if knob.name == INPUT else {knob.name: knob.start})}
            matched_text(spec.path, Path(args.output), trial, spec.input_shape, "")
        except MatchError as exc:
            raise UsageError(str(exc)) from None
    as_json = args.format == "json"
    def say(text: str) -> None:
        if not as_json:
            print(wrap(text))

    say(f"target: {target_spec.name} ({args.to}): {target:,} {unit}")
    problem = Problem(spec.program, knob, args.metric, target, spec.input_shape,
                      allow_large=args.allow_large, overrides=overrides)
    fields = {"spec": spec.name, "file": args.spec, "target": {"name": target_spec.name,
              "file": args.to, args.metric: target}, "knob": knob.name, "metric": args.metric,
              "tolerance": args.tolerance}
    try:
        with progress(f"matching {knob.name} of {spec.name}"):
            result = solve(problem, args.tolerance)
    except MatchError as exc:
        if as_json:
            emit("match", False, **fields, result=None, error=str(exc), written=None)
        print(f"archdsl match: {spec.name}: {exc}", file=sys.stderr)
        return 1
    fields["result"] = {"value": result.value, "achieved": result.achieved,
                        "ratio": result.ratio, "input": list(result.input_shape),
                        "evaluations": result.evaluations}
    say(describe_result(result, spec.name, target_spec.name))
    if not args.output:
        if as_json:
            emit("match", **fields, written=None)
        return 0

    params = dict(overrides)
    if knob.name != INPUT:
        params[knob.name] = result.value
    new_input = result.input_shape if (knob.name == INPUT or args.input) else None
    changed = ", ".join(f"{k}={yaml_scalar(v)}" for k, v in params.items())
    if new_input:
        changed = ", ".join(filter(None, [changed, "input=" + "x".join(map(str, new_input))]))
    header = (f"# Matched by archdsl match: {changed}, so that its {unit} are "
              f"{result.ratio:.4f}x those of {args.to} ({target:,}).\n")

    def verify(tmp: Path) -> None:
        again = load(tmp, library=[spec.path.resolve().parent, *args.library],
                     allow_large=args.allow_large)
        got = totals(again.ir).get(args.metric)
        if got != result.achieved:
            raise RuntimeError(f"internal error: the written spec costs {got:,} {unit}, "
                               f"the solution {result.achieved:,}")

    try:
        notes = write_matched(spec.path, Path(args.output), params, new_input, header,
                              verify)
    except MatchError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if as_json:
        emit("match", **fields, written=args.output, notes=notes)
        return 0
    say(f"wrote {args.output} ({changed})")
    for note in notes:
        say(f"note: {note}")
    return 0
