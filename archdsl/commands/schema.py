"""Print the JSON Schema of spec files (for editors' YAML completion), or write it with -o."""

from __future__ import annotations

import argparse
import json

from ..atomic import write_text_atomic
from ..jsonout import add_format_option, dumps
from ..schema import spec_schema

HELP = "print the JSON Schema of spec files"
EXAMPLES = """\
  archdsl schema > archdsl.schema.json           # the schema itself (for editors)
  archdsl schema -o archdsl.schema.json
  archdsl schema --format json                    # wrapped: {"version": 1, "schema": ...}"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    add_format_option(p, default="schema")


def run(args: argparse.Namespace) -> int:
    # The default output is the bare JSON Schema that editors read; --format json wraps it in
    # the versioned object every command prints.
    if args.format == "json":
        text = dumps("schema", schema=spec_schema())
    else:
        text = json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"
    if args.output:
        write_text_atomic(args.output, text)
    else:
        print(text, end="")
    return 0
