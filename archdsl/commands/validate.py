"""Check specs without building them: every error, located as file:line:col. Imports no torch."""

from __future__ import annotations

import argparse
import sys

from ..errors import SpecErrors
from ..layers.base import fmt_shape
from ..usage import add_spec_options, load_from_args

HELP = "check specs and infer every shape, reporting all errors (no torch)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files")
    add_spec_options(p)


def run(args: argparse.Namespace) -> int:
    status = 0
    for path in args.specs:
        try:
            spec = load_from_args(args, path)
        except SpecErrors as exc:
            for err in exc.errors:
                print(err, file=sys.stderr)
            n = len(exc.errors)
            print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
            status = 2
            continue
        print(f"{path}: ok: {spec.name}, input {fmt_shape(spec.input_shape)} -> "
              f"output {fmt_shape(spec.output_shape)}, {spec.param_count():,} parameters")
    return status
