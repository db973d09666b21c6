"""Write a spec's network as one standalone PyTorch file: a class per block, one for the network.

The file imports only torch; the state-dict keys and shapes are those of ``archdsl build``, so
its checkpoints load into the exported model unchanged. ``num_classes``-like knobs become
constructor arguments; knobs that change the structure are baked in at the values given here.
"""

from __future__ import annotations

import argparse
import sys

from ..atomic import write_text_atomic
from ..jsonout import add_format_option, emit
from ..usage import UsageError, add_spec_options, load_from_args

HELP = "write a spec's network as plain, standalone PyTorch source"
EXAMPLES = """\
  archdsl export specs/inception_v4.yaml -o inception_v4.py
  archdsl export specs/mobilenet_v1.yaml@width=0.5 > mobilenet_half.py
  archdsl export specs/resnet50.yaml -o resnet50.py --format json   # report as JSON"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (SPEC@key=value sets knobs for this spec)")
    add_spec_options(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the source here (atomically); default: standard output")
    add_format_option(p)


def run(args: argparse.Namespace) -> int:
    from ..export import export_source

    spec = load_from_args(args)
    try:
        text = export_source(spec)
    except NotImplementedError as exc:  # a form the exporter cannot write (yet)
        raise UsageError(f"{spec.path}: cannot export: {exc}") from None
    if args.output:
        try:
            write_text_atomic(args.output, text)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    lines = text.count("\n")
    if args.format == "json":  # the source inline when it was not written to a file
        emit("export", name=spec.name, file=str(spec.path), lines=lines, written=args.output,
             source=None if args.output else text)
    elif not args.output:
        sys.stdout.write(text)
    else:
        print(f"wrote {args.output} ({spec.name}: {lines} lines)")
    return 0
