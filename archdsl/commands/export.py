"""Write a spec's network as one standalone PyTorch file: a class per block, one for the network.

The file imports only torch; the state-dict keys and shapes are those of ``archdsl build``, so
its checkpoints load into the exported model unchanged. ``num_classes``-like knobs become
constructor arguments; knobs that change the structure are baked in at the values given here.
"""

from __future__ import annotations

import argparse
import sys

from ..atomic import write_text_atomic
from ..usage import UsageError, add_spec_options, load_from_args

HELP = "write a spec's network as plain, standalone PyTorch source"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (SPEC@key=value sets knobs for this spec)")
    add_spec_options(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the source here (atomically); default: standard output")


def run(args: argparse.Namespace) -> int:
    from ..export import export_source

    spec = load_from_args(args)
    try:
        text = export_source(spec)
    except NotImplementedError as exc:  # a form the exporter cannot write (yet)
        raise UsageError(f"{spec.path}: cannot export: {exc}") from None
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        write_text_atomic(args.output, text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"wrote {args.output} ({spec.name}: {text.count(chr(10))} lines)")
    return 0
