"""Draw a spec in the style of the paper's figures, with Graphviz.

Without --block: the network's overview (input, stem, one box per stage with its repeat count,
the head; the tensor shape on every edge). --block NAME: one block's schematic, as the network
first calls it. --all-blocks -o DIR: every block the network uses, one file each.
The format comes from --format, else from the output's extension; DOT text needs no Graphviz.
Without -o, the DOT text goes to standard output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..draw import (
    FORMATS,
    RANKDIRS,
    BlockNotDrawable,
    DrawOptions,
    RenderError,
    block_names,
    called_blocks,
    draw_block,
    draw_overview,
    find_dot,
    format_of,
    write_figure,
)
from ..jsonout import emit
from ..progress import progress
from ..spec import Spec
from ..usage import UsageError, add_spec_options, load_from_args

HELP = "draw the network's overview or its blocks as paper-style diagrams (Graphviz)"
EXAMPLES = """\
  archdsl draw specs/inception_v4.yaml -o inception_v4.svg
  archdsl draw specs/inception_v4.yaml --block inception_c -o inception_c.png
  archdsl draw specs/resnet50.yaml --all-blocks -o figures/ --cost
  archdsl draw specs/resnet50.yaml | dot -Tpdf > resnet50.pdf      # DOT text to stdout
  archdsl draw specs/resnet50.yaml -o resnet50.svg --format json   # what was written, as JSON"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file")
    add_spec_options(p)
    p.add_argument("-o", "--output", metavar="FILE|DIR",
                   help="write the figure here (a folder with --all-blocks); "
                   "without it or with '-': DOT text to stdout")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--block", metavar="NAME", help="draw this block instead of the overview")
    what.add_argument("--all-blocks", action="store_true",
                      help="draw every block the network uses into the folder -o names")
    p.add_argument("--format", choices=(*FORMATS, "json"),
                   help="svg, png, pdf or dot (default: from the output's extension, else svg); "
                        "json: report what was drawn as JSON (the figure's format then comes "
                        "from -o's extension; without -o the DOT text is in the JSON)")
    p.add_argument("--rankdir", choices=RANKDIRS, default="BT",
                   help="direction of flow (default BT: bottom to top, as in the paper)")
    p.add_argument("--cost", action="store_true", help="add parameters and MACs to every box")
    p.add_argument("--expand", type=int, metavar="N",
                   help="open blocks N levels deep (default: 0 for the overview, all for a block)")
    p.add_argument("--no-legend", dest="legend", action="store_false", help="leave out the key")


def run(args: argparse.Namespace) -> int:
    if args.output == "-" and not args.all_blocks:
        args.output = None  # ``-o -``: standard output, as without -o
    if args.expand is not None and args.expand < 0:
        raise UsageError("--expand must be 0 or more")
    if args.all_blocks and not args.output:
        raise UsageError("--all-blocks writes one file per block: give the folder with -o DIR")
    fmt = _format(args)
    if fmt != "dot":
        try:
            find_dot()  # before any work, so that nothing is half done when Graphviz is missing
        except RenderError as exc:
            raise UsageError(str(exc)) from None
    spec = load_from_args(args)
    opts = DrawOptions(rankdir=args.rankdir, cost=args.cost, expand=args.expand,
                       legend=args.legend)
    as_json = args.format == "json"
    fields = {"name": spec.name, "file": str(spec.path), "format": fmt}
    try:
        if args.all_blocks:
            written, skipped = _all_blocks(spec, Path(args.output), fmt, opts)
            if as_json:
                emit("draw", **fields, written=written, skipped=skipped, dot=None)
            return 0
        text = draw_block(spec, args.block, opts) if args.block else draw_overview(spec, opts)
        if not args.output:
            if as_json:
                emit("draw", **fields, written=[], skipped=[], dot=text)
            else:
                sys.stdout.write(text)
            return 0
        with progress(f"drawing {args.output}"):
            _write(text, Path(args.output), fmt)
    except BlockNotDrawable as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.output}", file=sys.stderr)
    if as_json:
        emit("draw", **fields, written=[args.output], skipped=[], dot=None)
    return 0


def _format(args: argparse.Namespace) -> str:
    if args.format == "json":
        return format_of(args.output, None) if args.output and not args.all_blocks else \
            "svg" if args.all_blocks else "dot"
    if args.format:
        fmt = args.format
    elif args.output and not args.all_blocks:
        fmt = format_of(args.output, None)
    else:
        fmt = "svg" if args.all_blocks else "dot"
    if not args.output and fmt != "dot":
        raise UsageError(f"--format {fmt} writes a file: give it with -o FILE")
    return fmt


def _all_blocks(spec: Spec, folder: Path, fmt: str,
                opts: DrawOptions) -> tuple[list[str], list[str]]:
    """Every block the network uses, one file each; returns the files and the skipped blocks."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is not a folder (--all-blocks writes one file per block)")
    used = called_blocks(spec)
    # Draw everything first: a block that cannot be drawn should stop the run before any write.
    figures = [(name, draw_block(spec, name, opts)) for name in block_names(spec) if name in used]
    written = []
    with progress(f"drawing into {folder}", len(figures)) as bar:
        for name, text in figures:
            bar.advance(name)
            target = folder / f"{name}.{fmt}"
            _write(text, target, fmt)
            written.append(str(target))
            print(f"wrote {target}", file=sys.stderr)
    skipped = [name for name in block_names(spec) if name not in used]
    for name in skipped:
        print(f"skipped block {name!r}: the network does not use it with these parameters, "
              "so it has no shapes to draw", file=sys.stderr)
    return written, skipped


def _write(text: str, target: Path, fmt: str) -> None:
    try:
        write_figure(text, target, fmt)
    except RenderError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
