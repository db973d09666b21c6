"""Count what specs cost from their IR alone: parameters and buffers, MACs (torchvision
convention), FLOPs (= 2 x MACs), fvcore's count and activations, per stage, block or layer.

Several specs are shown side by side with ratios to the first, row by row: by module path
for variants of one network, by grid size (35x35, 17x17, 8x8) for different networks
(``--align``, see archdsl/cost/align.py). A spec that fails is reported with its located
errors; the others are still shown, and the exit status is 2. ``--budget`` exits with status 1
when a spec is over; ``--check fvcore`` builds each model and compares with fvcore's tracer (the
only path that imports torch).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..atomic import write_text_atomic
from ..cost import ALIGNMENTS, FORMATS, METRICS, CostReport, check_budget, parse_budget, render
from ..cost.report import BLOCK, LAYER, STAGE
from ..errors import Loc, SpecError, SpecErrors
from ..jsonout import error_dicts
from ..progress import progress
from ..table import WIDTH
from ..usage import UsageError, add_spec_options, add_wide_option, load_from_args, split_variant

HELP = "count parameters, MACs/FLOPs and activations from the spec (no torch)"
EXAMPLES = """\
  archdsl cost specs/inception_v4.yaml
  archdsl cost specs/inception_v4.yaml specs/inception_resnet_v2.yaml      # by grid size
  archdsl cost specs/mobilenet_v1.yaml specs/mobilenet_v1.yaml@width=0.5 --depth block
  archdsl cost specs/*.yaml --format csv -o costs.csv
  archdsl cost specs/inception_v4.yaml --budget macs=10G,params=40M"""
DEPTHS = {"1": STAGE, "2": BLOCK, "3": LAYER, "stage": STAGE, "block": BLOCK, "layer": LAYER}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC",
                   help="spec files; with several, ratios are to the first; "
                        "SPEC@KEY=VALUE,... sets knobs of that spec only")
    add_spec_options(p)
    p.add_argument("--depth", default="1", choices=list(DEPTHS),
                   help="rows per 1=stage (default), 2=block (repeats split), 3=layer")
    p.add_argument("--format", default="text", choices=FORMATS,
                   help="text (default), md, json or csv (exact integers)")
    p.add_argument("--metric", default="macs", choices=list(METRICS),
                   help="the metric of the per-node comparison of several specs (default macs)")
    p.add_argument("--align", default="auto", choices=ALIGNMENTS,
                   help="pair the rows of several specs by grid size or module path (default "
                        "auto: path when at least half the paths are in every spec, else grid)")
    p.add_argument("--budget", action="append", default=[], metavar="METRIC=LIMIT,...",
                   help="e.g. macs=10G,params=40M (K/M/G/T = 1e3..1e12); exit 1 when over")
    p.add_argument("--check", choices=["fvcore"],
                   help="also build each model and count it with fvcore's tracer (needs torch)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here (atomically)")
    add_wide_option(p)


def run(args: argparse.Namespace) -> int:
    try:
        budget = parse_budget(args.budget)
    except ValueError as exc:
        raise UsageError(f"--budget {exc}") from None
    depth = DEPTHS[args.depth]
    paths, reports, failed = _reports(args)
    status = 0
    extra: dict[str, Any] = {}
    notes: list[str] = []
    if failed:
        status = 2
        extra["errors"] = error_dicts(failed)
        notes.append(f"{len(args.specs) - len(paths)} of {len(args.specs)} specs failed "
                     f"(errors above)")

    if args.check:
        from ..cost.check import check_fvcore  # imports torch

        checks = [check_fvcore(load_from_args(args, path), rep)
                  for path, rep in zip(paths, reports, strict=True)]
        extra["fvcore_check"] = [c.as_dict() for c in checks]
        notes += [line for c in checks for line in c.lines()]
        if not all(c.ok for c in checks):
            status = status or 1

    if budget:
        results = [r for rep in reports for r in check_budget(rep, budget)]
        extra["budget"] = [r.as_dict() for r in results]
        notes += [f"budget: {r.message()}" for r in results]
        if any(r.over for r in results):
            status = status or 1

    extra = {"ok": status == 0, **extra}
    text = render(reports, args.format, depth, args.metric, extra, align_by=args.align,
                  width=None if args.wide else WIDTH)
    if args.format in ("text", "md") and notes:
        text += "\n" + "\n".join(f"- {n}" if args.format == "md" else n for n in notes) + "\n"
    if args.output:
        try:
            write_text_atomic(args.output, text)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    if args.format in ("json", "csv") or args.output:
        for note in notes:  # the machine output holds them; say them to the person too
            print(note, file=sys.stderr)
    return status


def _reports(args: argparse.Namespace) -> tuple[list[str], list[CostReport], list[SpecError]]:
    """The reports of the specs that load, and the located errors of those that do not (each
    printed at once, so that a long run shows them as it goes)."""
    paths: list[str] = []
    reports: list[CostReport] = []
    failed: list[SpecError] = []
    many = len(args.specs) > 1
    with progress("counting", len(args.specs) if many else None) as bar:
        for path in args.specs:
            bar.advance(path)
            try:
                rep = load_from_args(args, path).cost()
            except (SpecErrors, UsageError) as exc:
                if not many:
                    raise
                errors = exc.errors if isinstance(exc, SpecErrors) else \
                    [SpecError(Loc(split_variant(path)[0], 1, 1), str(exc))]
                for err in errors:
                    print(err, file=sys.stderr)
                failed += errors
                continue
            variant = split_variant(path)[1]
            if variant:  # name the variant in every column and row it heads
                rep.name = f"{rep.name}@{variant}"
            paths.append(path)
            reports.append(rep)
    if not reports:
        raise SpecErrors(failed)
    return paths, reports, failed
