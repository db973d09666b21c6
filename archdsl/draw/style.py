"""How the figures look: titles of blocks, shapes in the paper's notation, colours, cost lines.

Everything is derived from names and the IR, never from a table of known networks, so a new
spec gets readable figures without touching this file.
"""

from __future__ import annotations

import re

from .. import ir
from ..layers import KINDS
from ..layers.base import Shape

FONT = "Helvetica"
EDGE_FONT_SIZE = 9
EDGE_COLOR = "#555555"
NOTE_COLOR = "#555555"

# Fill colours, by what a box is (the paper's figures colour layer types alike).
CONV_FILL = "#fff2b3"
POOL_FILL = "#cfe2f3"
ACT_FILL = "#f4cccc"
OTHER_FILL = "#eeeeee"
CONCAT_FILL = "#d9ead3"
# The join of an element-wise merge (and of a residual sum): + for add, x for mul.
JOIN_LABELS = {"add": "+", "mul": "\u00d7"}
IO_FILL = "#ffffff"
# Overview boxes: one colour per block, in order of first appearance.
BLOCK_FILLS = ("#fce5cd", "#d9ead3", "#cfe2f3", "#ead1dc", "#fff2cc", "#d0e0e3", "#e6d9f2",
               "#f4cccc")

_VERSION = re.compile(r"v\d+")


def paper_shape(shape: Shape) -> str:
    """(C, H, W) -> '35x35x384' as the paper writes it; a flat (F,) -> 'F'."""
    if len(shape) == 3:
        c, h, w = shape
        return f"{h}x{w}x{c}"
    return "x".join(str(d) for d in shape)


def block_title(name: str) -> str:
    """A readable title from a block name.

    inception_a -> 'Inception-A', reduction_b -> 'Reduction-B', stem_v4 -> 'Stem' (a trailing
    version tag is dropped), ir_a -> 'IR-A' (words of one or two letters are initials),
    aux_head -> 'Aux Head', mixed_5b -> 'Mixed-5b'.
    """
    words = [w for w in name.split("_") if w]
    if not words:
        return name
    if len(words) > 1 and _VERSION.fullmatch(words[-1]):
        words = words[:-1]
    parts = [w.upper() if len(w) <= 2 and w.isalpha() else w[:1].upper() + w[1:] for w in words]
    if len(parts) > 1 and len(words[-1]) <= 2:
        return " ".join(parts[:-1]) + "-" + parts[-1]
    return " ".join(parts)


# Names the IR gives to the parts of structures; a name a spec chose (``as conv1``) is shown.
_STRUCTURAL = re.compile(r"\d+|branch\d+|body|shortcut|after|head")


def chosen_name(node: ir.Node) -> str | None:
    """The name the spec gave this node, if it is not one the IR makes up."""
    return None if _STRUCTURAL.fullmatch(node.name) else node.name


def call_title(node: ir.Node) -> str:
    """Title of a box standing for a block call, a repeat, a layer or an inline structure."""
    if isinstance(node, ir.Seq) and node.repeat and node.items:
        return f"{call_title(node.items[0])} x{node.repeat}"
    if node.block:
        title = block_title(node.block)
        name = chosen_name(node)
        if name and name.startswith(node.block + "_"):
            return f"{title} ({name[len(node.block) + 1:]})"  # inception_3a: 'Inception (3a)'
        if name and name != node.block:
            return f"{title} ({name})"
        return title
    if isinstance(node, ir.Layer):
        return node.label
    if isinstance(node, ir.Merge):
        return node.word.capitalize()  # Concat, Add, Mul
    return type(node).__name__


def layer_subtitle(layer: ir.Layer) -> str | None:
    """The name a spec gave a layer with ``as`` (conv1, pool5), when it says more than the kind."""
    name = chosen_name(layer)
    return None if name == layer.kind else name


def is_activation(kind: str) -> bool:
    return type(KINDS[kind]).__module__.endswith(".activation")


def layer_fill(kind: str) -> str:
    if "conv" in kind:
        return CONV_FILL
    if "pool" in kind or kind in ("gap", "subsample"):
        return POOL_FILL
    if is_activation(kind):
        return ACT_FILL
    return OTHER_FILL


def human(n: int) -> str:
    """1234567 -> '1.23M' (three significant digits)."""
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            value = n / size
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f}{unit}"
    return str(n)


def node_cost(node: ir.Node) -> tuple[int, int]:
    """Parameters and MACs (batch 1, torchvision's convention) of a node and all below it.

    As in ``archdsl cost``, auxiliary heads below the node add their parameters but not their
    MACs (they run in training only); a head drawn on its own shows its own MACs.
    """
    return ir.param_count(node), _macs(node)


def _macs(node: ir.Node) -> int:
    if isinstance(node, ir.Layer):
        return node.cost().macs
    return sum(_macs(child) for child in node.children() if not isinstance(child, ir.Aux))


def cost_line(node: ir.Node) -> str:
    params, macs = node_cost(node)
    return f"{human(params)} params, {human(macs)} MACs"
