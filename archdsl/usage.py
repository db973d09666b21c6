"""Options shared by the subcommands that read a spec, and the error for bad command lines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .knobs import override_problems
from .layers.base import parse_scalar
from .library import find_spec, shown_name
from .program import Program, read_program
from .spec import Spec


class UsageError(Exception):
    """A bad command line or environment (not a bad spec): reported in one line, exit 2."""


def add_spec_options(p: argparse.ArgumentParser) -> None:
    """``--set``, ``--input``, ``--library`` and ``--allow-large``."""
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec parameter (repeatable; also KEY=V1,KEY2=V2)")
    p.add_argument("--input", metavar="CxHxW", help="input shape, e.g. 3x224x224")
    p.add_argument("--library", action="append", default=[], metavar="DIR",
                   help="another folder includes may come from (repeatable)")
    p.add_argument("--allow-large", action="store_true",
                   help="lift the size limits (2e9 weights or activations, 5e8 values in one "
                   "tensor) and raise the budget of resolved nodes tenfold")


def add_wide_option(p: argparse.ArgumentParser) -> None:
    """``--wide``: tables at full width instead of fitting 100 columns (see archdsl/table.py)."""
    p.add_argument("--wide", action="store_true",
                   help="print tables at full width (default: cut to fit 100 columns)")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """['num_classes=10', 'width=0.5,depth=2'] -> {'num_classes': 10, 'width': 0.5, 'depth': 2}."""
    out: dict[str, Any] = {}
    for item in items:
        for part in item.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise UsageError(f"--set {part!r}: expected KEY=VALUE")
            out[key.strip()] = parse_scalar(value.strip())
    return out


def split_variant(text: str) -> tuple[str, str]:
    """'specs/resnet50.yaml@stride_at=3x3' -> ('specs/resnet50.yaml', 'stride_at=3x3').

    A variant names knobs for one spec of a command line, so that two variants of the same
    spec can be compared side by side; ``--set`` applies to every spec.
    """
    path, at, knobs = text.rpartition("@")
    if at and "=" in knobs and not Path(text).is_file():
        return path, knobs
    return text, ""


def spec_file(text: str) -> Path:
    """A SPEC argument: a file, or the name of a library network (archdsl list)."""
    try:
        return find_spec(text)
    except LookupError as exc:
        raise UsageError(str(exc)) from None


def read_from_args(args: argparse.Namespace,
                   path: str | None = None) -> tuple[Program, dict[str, Any]]:
    """The program a command line names (a spec or a library), and its knob values."""
    spec_text, variant = split_variant(path or args.spec)
    spec_path = spec_file(spec_text)
    shown = None if spec_path == Path(spec_text) else shown_name(spec_path)
    sets, at = parse_sets(args.sets), parse_sets([variant] if variant else [])
    program = read_program(spec_path, args.library, shown=shown)
    # A value of the wrong kind is the command line's fault: say so there, not at a layer.
    for key, why in override_problems(program, {**sets, **at}).items():
        given = f"{spec_text}@{key}" if key in at else f"--set {key}"
        raise UsageError(f"{given}={_text({**sets, **at}[key])}: {why}")
    return program, {**sets, **at}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_from_args(args: argparse.Namespace, path: str | None = None) -> Spec:
    program, overrides = read_from_args(args, path)
    return program.resolve(overrides, input=args.input, allow_large=args.allow_large)
