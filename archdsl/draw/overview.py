"""The whole network at a glance (the paper's Figures 9 and 15): input, stem, one box per stage
with its repeat count, the head, and the tensor shape on every edge. ``expand`` opens blocks."""

from __future__ import annotations

from ..spec import Spec
from . import style
from .emit import Emitter, Options
from .figure import DrawOptions, add_legend, input_port, new_graph, output_end


def draw_overview(spec: Spec, opts: DrawOptions | None = None) -> str:
    """DOT text of the network's overview."""
    opts = opts or DrawOptions()
    depth = opts.expand or 0
    notes = []
    cites = spec.program.doc.cites
    if cites:
        notes.append(cites if isinstance(cites, str) else "; ".join(cites))
    notes.append(f"{style.paper_shape(spec.input_shape)} -> {style.paper_shape(spec.output_shape)}")
    if opts.cost:
        notes.append(style.cost_line(spec.ir) + " in total")
    graph = new_graph(spec.name, spec.name, notes, opts.rankdir)
    if depth == 0:
        graph.node_defaults["width"] = "2.2"  # one column of equal boxes, as in Figure 9
    em = Emitter(graph, Options(depth=depth, cost=opts.cost, rankdir=opts.rankdir))
    ports = [input_port(graph, spec.input_shape)]
    for item in spec.ir.items:
        ports = em.emit(item, ports, graph, depth)
        em.taps[item.name] = ports
    output_end(em, ports)
    if opts.legend:
        add_legend(em)
    return graph.source()
