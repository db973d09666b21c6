"""Check specs and block libraries without building them: every error, located as
file:line:col. Every block is checked, called or not; a library (a file without a network) is
checked on its own, without shapes (those need an input). Imports no torch."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import SpecErrors
from ..jsonout import add_format_option, emit, error_dicts
from ..layers.base import fmt_shape
from ..program import Program
from ..table import WIDTH
from ..usage import add_spec_options, read_from_args

HELP = "check specs (or block libraries) and infer every shape, reporting all errors (no torch)"
EXAMPLES = """\
  archdsl validate specs/inception_v4.yaml
  archdsl validate specs/*.yaml specs/lib/*.yaml          # every spec and library
  archdsl validate specs/mobilenet_v1.yaml --set width=0.5 --input 3x160x160
  archdsl validate specs/my_variant.yaml --format json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec or library files")
    add_spec_options(p)
    add_format_option(p)


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
    results = [_check(args, path) for path in args.specs]
    status = 2 if any(not r["ok"] for r in results) else 0
    if args.format == "json":
        emit("validate", status == 0, specs=[
            {**r, "errors": error_dicts(r["errors"])} if not r["ok"] else r for r in results])
        return status
    for r in results:
        if not r["ok"]:
            for err in r["errors"]:
                print(err, file=sys.stderr)
            n = len(r["errors"])
            print(f"{r['file']}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        elif r["kind"] == "library":
            print(f"{r['file']}: ok: a library of {len(r['blocks'])} blocks "
                  f"({_names(r['blocks'], max(30, WIDTH - len(r['file']) - 40))})")
        else:
            checked = r.get("choices_checked")
            print(f"{r['file']}: ok: {r['name']}, {fmt_shape(tuple(r['input']))} -> "
                  f"{fmt_shape(tuple(r['output']))}, {r['params']:,} parameters"
                  + (f"; every choice checked ({checked} candidates)" if checked else ""))
    return status


def _check(args: argparse.Namespace, path: str) -> dict[str, Any]:
    """One file's result: what it is and, when it fails, its located errors."""
    try:
        program, overrides = read_from_args(args, path)
        if program.is_library:
            program.check()
            return {"file": path, "ok": True, "kind": "library", "blocks": list(program.blocks)}
        spec = program.resolve(overrides, input=args.input, allow_large=args.allow_large)
        checked = _every_choice(program)
    except SpecErrors as exc:
        return {"file": path, "ok": False, "errors": exc.errors}
    return {"file": path, "ok": True, "kind": "network", "name": spec.name,
            "input": list(spec.input_shape), "output": list(spec.output_shape),
            "params": spec.param_count(), "choices_checked": checked}


def _names(names: list[str], room: int) -> str:
    """Block names, as many as fit in ``room`` characters (one line per file, for grep)."""
    shown: list[str] = []
    for i, name in enumerate(names):
        more = f", ... {len(names) - i} more"
        if len(", ".join([*shown, name])) + (len(more) if i < len(names) - 1 else 0) > room:
            return ", ".join(shown) + more if shown else f"{len(names)} names"
        shown.append(name)
    return ", ".join(shown)
