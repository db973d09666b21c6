"""What every figure shares: the graph's look, its title, the input and output ends, the legend."""

from __future__ import annotations

from dataclasses import dataclass

from ..layers.activation import ACTIVATIONS
from ..layers.base import Shape
from . import style
from .dot import Digraph, Html, escape_html
from .emit import Emitter, Port, box_label

RANKDIRS = ("BT", "TB", "LR", "RL")


@dataclass(frozen=True)
class DrawOptions:
    """What the user chose on the command line."""

    rankdir: str = "BT"  # the paper's figures flow from the bottom up
    cost: bool = False
    expand: int | None = None  # levels of blocks to open; None: the figure's own default
    legend: bool = True


def new_graph(name: str, title: str, notes: list[str], rankdir: str) -> Digraph:
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    heading = f'<FONT POINT-SIZE="16"><B>{escape_html(title)}</B></FONT>'
    lines = [heading] + [
        f'<FONT POINT-SIZE="10" COLOR="{style.NOTE_COLOR}">{escape_html(n)}</FONT>'
        for n in notes
    ]
    return Digraph(
        name,
        attrs={
            "rankdir": rankdir,
            "label": Html("<BR/>".join(lines)),
            "labelloc": "t",
            "fontname": style.FONT,
            "nodesep": "0.25",
            "ranksep": "0.32",
            "ordering": "out",  # branches stay in spec order, left to right
        },
        node_defaults={
            "shape": "box",
            "style": "filled",
            "fontname": style.FONT,
            "fontsize": "11",
            "height": "0.32",
            "margin": "0.12,0.04",
        },
        edge_defaults={
            "fontname": style.FONT,
            "fontsize": str(style.EDGE_FONT_SIZE),
            "fontcolor": style.EDGE_COLOR,
            "color": "#333333",
            "arrowsize": "0.6",
        },
    )


def input_port(graph: Digraph, shape: Shape, title: str = "Input") -> Port:
    node_id = graph.node("#input", label=box_label(title, []), fillcolor=style.IO_FILL,
                         **{"class": "io"})
    return (node_id, shape)


def output_end(em: Emitter, ports: list[Port], title: str = "Output") -> None:
    node_id = em.graph.node("#output", label=box_label(title, []), fillcolor=style.IO_FILL,
                            **{"class": "io"})
    em.connect(ports, node_id)


def add_legend(em: Emitter) -> None:
    """A small key, only with what this figure shows."""
    rows: list[str] = []
    convs = sorted(s[5:] for s in em.seen if s.startswith("conv:"))
    if convs:
        rows.append("KxK Conv (N stride S): kernel, N filters, stride S (1 when not given)")
        post = {c for c in convs if not c.endswith("+")}
        linear = {c for c in convs if c.endswith("+")}
        if len(post) == 1:
            norm, act = next(iter(post)).split("+")
            after = " and ".join(w for w in (_norm_name(norm), _act_name(act)) if w)
            rows.append(f"every Conv is followed by {after}, except those marked Linear")
        if linear == {"+"}:
            rows.append("Linear: no activation and no normalisation")
        elif len(linear) == 1:
            rows.append(f"Linear: no activation ({_norm_name(next(iter(linear))[:-1])} kept)")
        elif linear:
            rows.append("Linear: no activation")
    if "valid" in em.seen:
        rows.append("V: valid padding (no padding, the grid shrinks); else same padding")
    if "concat" in em.seen:
        rows.append("Filter concat: the branches' channels joined")
    if "split" in em.seen:
        rows.append("Channel split: each branch takes its own share of the channels")
    if "add" in em.seen:
        rows.append("+ (without a shortcut): the branches added element-wise")
    if "mul" in em.seen:
        rows.append("\u00d7: the branches multiplied element-wise (a gate of size 1 stretches)")
    if "residual" in em.seen:
        rows.append("+: residual sum; the bold edge is the shortcut")
    if "scale" in em.seen:
        rows.append(f"x{em.scales[0]:g}: the residual branch scaled before the sum")
    if "aux" in em.seen:
        rows.append("dashed: auxiliary head, an extra output in training only")
    if em.opts.shapes:
        rows.append("on the arrows: tensor height x width x channels")
    if not rows:
        return
    cells = "".join(f'<TR><TD ALIGN="LEFT">{escape_html(r)}</TD></TR>' for r in rows)
    table = (f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
             f'<TR><TD ALIGN="LEFT"><B>Legend</B></TD></TR>{cells}</TABLE>')
    em.graph.node("#legend", label=Html(table), shape="plaintext", fontsize="9",
                  fontcolor=style.NOTE_COLOR, style="", **{"class": "legend"})


def _norm_name(norm: str) -> str:
    return {"batchnorm": "batch norm"}.get(norm, norm)


def _act_name(act: str) -> str:
    return ACTIVATIONS[act][0] if act in ACTIVATIONS else act
