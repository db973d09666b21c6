"""Check specs and block libraries without building them: every error, located as
file:line:col. Every block is checked, called or not; a library (a file without a network) is
checked on its own, without shapes (those need an input). Imports no torch."""

from __future__ import annotations

import argparse
import sys

from ..errors import SpecErrors
from ..layers.base import fmt_shape
from ..program import Program
from ..usage import add_spec_options, read_from_args

HELP = "check specs (or block libraries) and infer every shape, reporting all errors (no torch)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec or library files")
    add_spec_options(p)


def _every_choice(program: Program) -> int:
    """A space: resolve every value of every choice (raises their errors, each saying which
    value it comes from); returns how many candidates were resolved (0 for a plain spec)."""
    if not program.choices:
        return 0
    from ..search.space import SearchSpace, check_every_choice

    checked, errors = check_every_choice(SearchSpace(program))
    if errors:
        raise SpecErrors(errors)
    return checked


def run(args: argparse.Namespace) -> int:
    status = 0
    for path in args.specs:
        try:
            program, overrides = read_from_args(args, path)
            if program.is_library:
                program.check()
                print(f"{path}: ok: a library of {len(program.blocks)} blocks "
                      f"({', '.join(program.blocks)})")
                continue
            spec = program.resolve(overrides, input=args.input, allow_large=args.allow_large)
            checked = _every_choice(program)
        except SpecErrors as exc:
            for err in exc.errors:
                print(err, file=sys.stderr)
            n = len(exc.errors)
            print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
            status = 2
            continue
        print(f"{path}: ok: {spec.name}, input {fmt_shape(spec.input_shape)} -> "
              f"output {fmt_shape(spec.output_shape)}, {spec.param_count():,} parameters"
              + (f"; every choice checked ({checked} candidates)" if checked else ""))
    return status
