"""The schematic of one block (the paper's Figures 3-8, 10-14, 16-19), from its use in the IR.

A block definition alone has no shapes: its arguments and its input come from a call. So a block
is drawn as the network first calls it (the IR holds every call resolved, with its arguments and
shapes); a block the network never calls cannot be drawn, and says so.
"""

from __future__ import annotations

from .. import ir
from ..spec import Spec
from ..suggest import did_you_mean
from . import style
from .emit import Emitter, Options
from .figure import DrawOptions, add_legend, input_port, new_graph, output_end

ALL_LEVELS = 1_000  # a block schematic opens every block called inside it, unless told otherwise


class BlockNotDrawable(Exception):
    """The spec has no such block, or the network never calls it (one-line message)."""


def block_names(spec: Spec) -> list[str]:
    """The spec's blocks (its own and its libraries'): those the network calls first, in the
    order it first calls them, then the others in definition order."""
    called = called_blocks(spec)
    return list(called) + [b for b in spec.program.blocks if b not in called]


def called_blocks(spec: Spec) -> dict[str, list[ir.Node]]:
    """Every call of every block, by block name, in network order."""
    calls: dict[str, list[ir.Node]] = {}
    for node in spec.ir.walk():
        if node.block:
            calls.setdefault(node.block, []).append(node)
    return calls


def find_block(spec: Spec, name: str) -> tuple[ir.Node, int]:
    """The first IR node that is a call of ``name``, and how many calls there are."""
    calls = called_blocks(spec).get(name)
    if calls:
        return calls[0], len(calls)
    if name in spec.program.blocks:
        raise BlockNotDrawable(
            f"block {name!r} is defined but the network does not use it (with these parameters),"
            " so it has no shapes to draw")
    known = block_names(spec)
    raise BlockNotDrawable(f"{spec.path} has no block {name!r} (it has "
                           f"{', '.join(known) or 'none'}){did_you_mean(name, known, sep='; ')}")


def draw_block(spec: Spec, name: str, opts: DrawOptions | None = None) -> str:
    """DOT text of block ``name`` as the network first calls it."""
    opts = opts or DrawOptions()
    node, ncalls = find_block(spec, name)
    notes = [_call_line(node, ncalls, spec)]
    shapes = f"{style.paper_shape(node.in_shape)} -> {style.paper_shape(node.out_shape)}"
    doc = spec.program.blocks[name].doc if name in spec.program.blocks else ""
    notes.append(f"{doc}: {shapes}" if doc else shapes)
    if opts.cost:
        notes.append(style.cost_line(node))
    graph = new_graph(f"{spec.name}.{name}", style.block_title(name), notes, opts.rankdir)
    depth = ALL_LEVELS if opts.expand is None else opts.expand
    em = Emitter(graph, Options(depth=depth, cost=opts.cost, rankdir=opts.rankdir))
    ports = em.emit(node, [input_port(graph, node.in_shape)], graph, depth, framed=True)
    output_end(em, ports)
    if opts.legend:
        add_legend(em)
    return graph.source()


def _call_line(node: ir.Node, ncalls: int, spec: Spec) -> str:
    what = ir.describe(node)
    where = f"{spec.name}: {what}"
    if ncalls > 1:
        where += f", as called at {node.path} (first of {ncalls} calls)"
    return where
