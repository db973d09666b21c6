"""Turning an IR subtree into DOT nodes and edges, the way the paper draws blocks.

One emitter serves both figures. A node is either *opened* (its structure drawn: a box per
layer, branches side by side, a ``Filter concat`` where they join, a ``+`` with the shortcut for
a residual sum) or *collapsed* into one box titled after its block (``Inception-A x4``). Block
calls and repeats open while the depth budget lasts; each opened block call becomes a cluster.

Every DOT node id is the IR path of what it stands for (``inception_c.0.branch1.1.branch0``),
with ``#concat``, ``#add``, ``#scale`` ... for the joins, so the text only depends on the spec.
Each edge carries the shape of the tensor on it in the paper's notation (``35x35x384``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ir
from ..layers.base import Shape
from . import style
from .dot import Digraph, Html, Subgraph, escape_html

# A tensor leaving a drawn node: the node's DOT id and the tensor's shape.
Port = tuple[str, Shape]


@dataclass(frozen=True)
class Options:
    depth: int  # how many levels of block calls (and repeats) to open; deeper ones are boxes
    cost: bool = False  # add parameters and MACs to every box
    shapes: bool = True  # label edges with tensor shapes
    rankdir: str = "BT"

    @property
    def cluster_labelloc(self) -> str:
        """Where a frame's title goes so that it reads at the top ('b' is the top when the
        graph flows bottom to top)."""
        return "b" if self.rankdir == "BT" else "t"


def box_label(title: str, notes: list[str], bold: bool = False) -> Html:
    head = escape_html(title)
    if bold:
        head = f"<B>{head}</B>"
    lines = [head] + [
        f'<FONT POINT-SIZE="9" COLOR="{style.NOTE_COLOR}">{escape_html(n)}</FONT>' for n in notes
    ]
    return Html("<BR/>".join(lines))


def _node_id(path: str) -> str:
    return path or "network"


@dataclass
class Emitter:
    graph: Digraph
    opts: Options
    # Outputs of top-level items, by name, for auxiliary heads that read an earlier one.
    taps: dict[str, list[Port]] = field(default_factory=dict)
    # What the figure contains, for the legend.
    seen: set[str] = field(default_factory=set)
    block_fills: dict[str, str] = field(default_factory=dict)
    labelled: set[str] = field(default_factory=set)  # ports whose shape is on an edge already
    scales: list[float] = field(default_factory=list)  # residual scales drawn, in order

    # --- edges and boxes ------------------------------------------------------------------------
    def connect(self, srcs: list[Port], head: str, **attrs: str) -> None:
        """Edges from each port to ``head``; a tensor's shape is written on the first edge that
        carries it only (four branches reading one input show its shape once)."""
        for tail, shape in srcs:
            edge_attrs = dict(attrs)
            if self.opts.shapes and tail not in self.labelled:
                self.labelled.add(tail)
                edge_attrs["label"] = style.paper_shape(shape)
            self.graph.edge(tail, head, **edge_attrs)

    def layer(self, node: ir.Layer, srcs: list[Port], parent: Subgraph) -> list[Port]:
        notes = [s for s in (style.layer_subtitle(node),) if s]
        if self.opts.cost:
            notes.append(style.cost_line(node))
        self.note_layer(node)
        node_id = parent.node(_node_id(node.path), label=box_label(node.label, notes),
                              fillcolor=style.layer_fill(node.kind), **{"class": "layer"})
        self.connect(srcs, node_id)
        return [(node_id, node.out_shape)]

    def note_layer(self, node: ir.Layer) -> None:
        """Remember what the legend must explain about this layer."""
        f = node.fields
        if getattr(f, "padding", None) == "valid":
            self.seen.add("valid")
        if node.kind == "conv" and f is not None:
            act = getattr(f, "act", None)
            self.seen.add(f"conv:{getattr(f, 'norm', None) or ''}+{act or ''}")

    def collapsed(self, node: ir.Node, srcs: list[Port], parent: Subgraph) -> list[Port]:
        """One box for a whole block call or repeat."""
        key = _fill_key(node)
        fill = self.block_fills.setdefault(
            key, style.BLOCK_FILLS[len(self.block_fills) % len(style.BLOCK_FILLS)])
        notes = [style.cost_line(node)] if self.opts.cost else []
        node_id = parent.node(_node_id(node.path), label=box_label(style.call_title(node), notes,
                                                                   bold=True),
                              fillcolor=fill, **{"class": "block"})
        self.connect(srcs, node_id)
        return [(node_id, node.out_shape)]

    def concat_node(self, node: ir.Node, srcs: list[Port], parent: Subgraph) -> list[Port]:
        self.seen.add("concat")
        node_id = parent.node(_node_id(node.path) + "#concat", label="Filter concat",
                              fillcolor=style.CONCAT_FILL, **{"class": "concat"})
        self.connect(srcs, node_id)
        return [(node_id, node.out_shape)]

    # --- structures -----------------------------------------------------------------------------
    def emit(self, node: ir.Node, srcs: list[Port], parent: Subgraph, depth: int,
             merge: bool = False, framed: bool = False) -> list[Port]:
        """Draw ``node`` fed by ``srcs``; return the ports its output leaves by.

        ``merge``: the caller concatenates this node's output, so a concat at its end may hand
        over its branches unjoined (the paper draws a nested split straight into the outer
        ``Filter concat``; the channels are the same). ``framed``: the caller already drew the
        cluster of this block call or repeat.
        """
        if isinstance(node, ir.Layer):
            return self.layer(node, srcs, parent)
        if isinstance(node, ir.Seq) and node.repeat and not framed:
            return self.repeat(node, srcs, parent, depth, merge)
        if node.block and not framed:
            if depth <= 0:
                return self.collapsed(node, srcs, parent)
            cluster = self.frame(parent, node, style.call_title(node))
            return self.emit(node, srcs, cluster, depth - 1, merge, framed=True)
        if isinstance(node, ir.Seq):
            ports = srcs
            for i, item in enumerate(node.items):
                ports = self.emit(item, ports, parent, depth, merge and i == len(node.items) - 1)
            return ports
        if isinstance(node, ir.Merge):
            return self.merge(node, srcs, parent, depth, merge)
        if isinstance(node, ir.Residual):
            return self.residual(node, srcs, parent, depth)
        if isinstance(node, ir.Aux):
            return self.aux(node, srcs, parent, depth)
        return self.unknown(node, srcs, parent, depth)

    def frame(self, parent: Subgraph, node: ir.Node, title: str) -> Subgraph:
        notes = [style.cost_line(node)] if self.opts.cost else []
        return parent.cluster(_node_id(node.path), label=box_label(title, notes, bold=True),
                              style="rounded,dashed", color="#888888", labeljust="l",
                              labelloc=self.opts.cluster_labelloc)

    def repeat(self, node: ir.Seq, srcs: list[Port], parent: Subgraph, depth: int,
               merge: bool) -> list[Port]:
        if depth <= 0:
            return self.collapsed(node, srcs, parent)
        cluster = self.frame(parent, node, style.call_title(node))
        if _uniform(node):
            # Identical repeats: draw one, the frame's title says how many.
            return self.emit(node.items[0], srcs, cluster, depth - 1, merge, framed=True)
        ports = srcs
        for i, item in enumerate(node.items):
            ports = self.emit(item, ports, cluster, depth, merge and i == len(node.items) - 1)
        return ports

    def merge(self, node: ir.Merge, srcs: list[Port], parent: Subgraph, depth: int,
              merge: bool) -> list[Port]:
        base = _node_id(node.path)
        if node.split:
            self.seen.add("split")
            split_id = parent.node(base + "#split", label="Channel split",
                                   fillcolor=style.CONCAT_FILL, **{"class": "split"})
            self.connect(srcs, split_id)
        outs: list[Port] = []
        firsts: list[str] = []
        for i, branch in enumerate(node.branches):
            before = len(self.graph.owner)
            feed = srcs
            if node.split:
                feed = [(split_id, (node.split[i], *node.in_shape[1:]))]
            if _is_identity(branch):
                outs += feed  # an identity branch is an edge straight to the join
                continue
            outs += self.emit(branch, feed, parent, depth, merge=node.op == "cat")
            firsts += list(self.graph.owner)[before:before + 1]
        # The branches start side by side, in spec order, as in the paper's figures.
        if len(firsts) > 1 and all(self.graph.owner[f] is parent for f in firsts):
            parent.same_rank(firsts)
        if node.op != "cat":
            self.seen.add(node.op)
            join_id = parent.node(base + "#" + node.op, label=style.JOIN_LABELS[node.op],
                                  shape="circle", width="0.35", fixedsize="true", fontsize="16",
                                  fillcolor=style.IO_FILL, **{"class": node.op})
            self.connect(outs, join_id)
            return [(join_id, node.out_shape)]
        if merge and not node.split:
            return outs
        return self.concat_node(node, outs, parent)

    def residual(self, node: ir.Residual, srcs: list[Port], parent: Subgraph,
                 depth: int) -> list[Port]:
        self.seen.add("residual")
        base = _node_id(node.path)
        body = self.emit(node.body, srcs, parent, depth) if node.body is not None else srcs
        if node.scale != 1:
            self.seen.add("scale")
            self.scales.append(node.scale)
            scale_id = parent.node(base + "#scale", label=f"x{node.scale:g}", shape="ellipse",
                                   fillcolor=style.IO_FILL, **{"class": "scale"})
            self.connect(body, scale_id)
            body = [(scale_id, body[0][1] if body else node.out_shape)]
        add_id = parent.node(base + "#add", label=style.JOIN_LABELS["add"], shape="circle",
                             width="0.35", fixedsize="true", fontsize="16", fillcolor=style.IO_FILL,
                             **{"class": "add"})
        self.connect(body, add_id)
        shortcut = srcs
        if node.shortcut is not None:
            shortcut = self.emit(node.shortcut, srcs, parent, depth)
        self.connect(shortcut, add_id, penwidth="1.6", **{"class": "shortcut"})
        ports: list[Port] = [(add_id, _sum_shape(node))]
        if node.after is not None:
            ports = self.emit(node.after, ports, parent, depth)
        return ports

    def aux(self, node: ir.Aux, srcs: list[Port], parent: Subgraph, depth: int) -> list[Port]:
        """A side branch: the head reads the current (or a named earlier) tensor, its output
        leaves the figure as an extra output, and the main path goes on unchanged."""
        self.seen.add("aux")
        tap = self.taps.get(node.source, srcs) if node.source else srcs
        if node.head is None:
            return srcs
        side = parent.cluster(_node_id(node.path), label=f"auxiliary head: {node.name}",
                              style="dashed", color="#888888", fontsize="10",
                              labelloc=self.opts.cluster_labelloc)
        outs = self.emit(node.head, tap, side, depth)
        out_id = side.node(_node_id(node.path) + "#out", label=box_label(
            f"{node.name} output", ["training only"]), fillcolor=style.IO_FILL,
            **{"class": "io"})
        self.connect(outs, out_id, style="dashed")
        return srcs

    def unknown(self, node: ir.Node, srcs: list[Port], parent: Subgraph,
                depth: int) -> list[Port]:
        """A structure this drawer does not know yet: its children in a labelled frame, in
        order, so that a new IR class shows up (roughly) instead of crashing the figure."""
        cluster = parent.cluster(_node_id(node.path), label=type(node).__name__,
                                 style="dotted", color="#888888",
                                 labelloc=self.opts.cluster_labelloc)
        ports = srcs
        for child in node.children():
            ports = self.emit(child, ports, cluster, depth)
        return ports


def _is_identity(node: ir.Node) -> bool:
    """An empty sequence or an ``identity`` layer: drawn as an edge, not a box."""
    if isinstance(node, ir.Layer):
        return node.kind == "identity"
    return isinstance(node, ir.Seq) and not node.items


def _uniform(node: ir.Seq) -> bool:
    """Repeats that are drawn the same: one block, one input and one output shape."""
    first = node.items[0] if node.items else None
    return first is not None and all(
        type(i) is type(first) and i.block == first.block and i.args == first.args
        and i.in_shape == first.in_shape and i.out_shape == first.out_shape for i in node.items)


def _fill_key(node: ir.Node) -> str:
    while isinstance(node, ir.Seq) and node.repeat and node.items:
        node = node.items[0]
    return node.block or type(node).__name__


def _sum_shape(node: ir.Residual) -> Shape:
    return node.after.in_shape if node.after is not None else node.out_shape
