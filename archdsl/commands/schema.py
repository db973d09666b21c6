"""Print the JSON Schema of spec files (for editors' YAML completion), or write it with -o."""

from __future__ import annotations

import argparse
import json

from ..atomic import write_text_atomic
from ..schema import spec_schema

HELP = "print the JSON Schema of spec files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")


def run(args: argparse.Namespace) -> int:
    text = json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"
    if args.output:
        write_text_atomic(args.output, text)
    else:
        print(text, end="")
    return 0
