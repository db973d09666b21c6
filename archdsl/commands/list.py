"""List the networks of the library that ships with archdsl (no torch).

Every name shown works wherever a command takes a SPEC (``archdsl build inception_v4``) and in
Python (``archdsl.load("inception_v4", num_classes=10)``). Parameters and MACs are counted from
the spec at its own knobs and input; ``verified`` is ``model`` (checked against a timm /
torchvision / pretrainedmodels model by the test suite), ``counts`` (the published counts hold),
``rejected`` (a literal reading of a paper that does not add up, by design) or ``-``.
"""

from __future__ import annotations

import argparse

from ..catalog import FAMILIES, catalog
from ..cost.units import human, parse_quantity
from ..jsonout import add_format_option, emit
from ..table import render
from ..usage import UsageError

HELP = "list the networks of the library (name, params, MACs, reference, verified, knobs)"
EXAMPLES = """\
  archdsl list                              # every network
  archdsl list 'resnet*' --max-macs 5G       # a name glob and a cost limit
  archdsl list --family inception --format json
  archdsl build inception_v4 --set width=0.5  # any listed name works as a SPEC"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", metavar="GLOB", help="names to show, e.g. 'resnet*'")
    p.add_argument("--family", action="append", default=[],
                   choices=sorted({f for _, f in FAMILIES}), help="only this family (repeatable)")
    p.add_argument("--max-params", metavar="N", help="at most N parameters, e.g. 25M")
    p.add_argument("--max-macs", metavar="N", help="at most N MACs, e.g. 5G")
    add_format_option(p)


def _limit(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_quantity(text)
    except ValueError as exc:
        raise UsageError(f"{option} {exc}") from None


def _first(items: list[str]) -> str:
    """The first of several (``--format json`` has them all)."""
    return f"{items[0]} +{len(items) - 1}" if len(items) > 1 else (items[0] if items else "-")


def _short(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 3].rsplit(",", 1)[0] + ", ..."


def run(args: argparse.Namespace) -> int:
    rows = catalog(args.pattern, families=args.family or None,
                   max_params=_limit("--max-params", args.max_params),
                   max_macs=_limit("--max-macs", args.max_macs))
    if args.format == "json":
        emit("list", models=[r.to_json() for r in rows])
        return 0
    if not rows:
        print("no network of the library matches")
        return 0
    table = [(r.name, r.family, "-" if r.params is None else human(r.params),
              "-" if r.macs is None else human(r.macs), _first(list(dict.fromkeys(r.references))),
              r.verified, _short(", ".join(r.knobs), 34)) for r in rows]
    print(render(("name", "family", "params", "MACs", "reference", "verified", "knobs"), table))
    print(f"{len(rows)} networks; archdsl.load(NAME, **knobs) or any command with NAME as SPEC")
    return 0
