"""The intermediate representation: a resolved network with every tensor shape inferred.

The networks archdsl describes are series-parallel graphs (sequences, concatenations of branches,
residual sums, element-wise gates), so the IR is a tree of those structures over typed layer
nodes. Each node knows its input and output shapes (channels, height, width; one number after
flattening), where in the spec it comes from, and its dotted path, which is also the name of its
torch module.
No torch here: the back ends (torch builder, cost counter, diagram renderer) walk this tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import Loc
from .layers import KINDS
from .layers.base import Fields, LayerCost, LayerKind, Shape


@dataclass
class Node:
    name: str  # the module's attribute name in its parent
    path: str  # dotted path from the root: "ir_a.3.branch1.1"
    loc: Loc
    in_shape: Shape
    out_shape: Shape
    block: str | None = None  # set when this node is the body of a call of that block
    args: dict[str, Any] = field(default_factory=dict)  # the call's arguments, resolved
    # The cost counter's totals for this subtree, kept once computed: resolved subtrees are
    # shared between the variants of a program and copied for identical repeats.
    totals: Any = field(default=None, repr=False, compare=False)
    # Size facts of this subtree for the limits (node count, largest layer), kept likewise.
    size: Any = field(default=None, repr=False, compare=False)

    def children(self) -> list[Node]:
        return []

    def walk(self) -> Iterator[Node]:
        """This node and all below it, depth first, in spec order."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))

    def layers(self) -> Iterator[Layer]:
        for node in self.walk():
            if isinstance(node, Layer):
                yield node


@dataclass
class Layer(Node):
    kind: str = ""
    fields: Fields | None = None
    _cost: LayerCost | None = field(default=None, repr=False, compare=False)

    @property
    def kind_def(self) -> LayerKind:
        return KINDS[self.kind]

    @property
    def label(self) -> str:
        return self.kind_def.label(self.fields)

    def cost(self) -> LayerCost:
        """The kind's cost rule for this layer, computed once (copies of a repeat share it)."""
        if self._cost is None:
            self._cost = self.kind_def.cost(self.fields, self.in_shape, self.out_shape)
        return self._cost


@dataclass
class Seq(Node):
    items: list[Node] = field(default_factory=list)
    repeat: int | None = None  # set when the items are repeats of one node (``ir_a x5``)

    def children(self) -> list[Node]:
        return self.items


@dataclass
class Merge(Node):
    """Branches joined by ``op``: ``cat`` along channels (the paper's "Filter concat"), or
    element-wise ``add`` / ``mul`` with broadcasting (squeeze-and-excitation's gate). Each branch
    sees the whole input, or with ``split`` its own slice of the input's channels."""

    op: str = "cat"
    branches: list[Node] = field(default_factory=list)
    split: tuple[int, ...] | None = None  # channels per branch

    def children(self) -> list[Node]:
        return self.branches

    @property
    def word(self) -> str:
        """The spec's word for this merge: ``concat``, ``add`` or ``mul``."""
        return MERGE_WORDS[self.op]


MERGE_WORDS = {"cat": "concat", "add": "add", "mul": "mul"}


@dataclass
class Residual(Node):
    body: Node | None = None
    shortcut: Node | None = None  # None: identity
    scale: float = 1.0
    after: Node | None = None  # applied to the sum (the paper's ReLU after the addition)
    drop_path: float = 0.0  # stochastic depth: chance of dropping the body, in training only

    def children(self) -> list[Node]:
        return [n for n in (self.body, self.shortcut, self.after) if n is not None]


@dataclass
class Aux(Node):
    """An auxiliary head (GoogLeNet, Inception-v3): a side branch on the current tensor whose
    output is an extra network output. The main path passes through unchanged; the head's own
    output shape is ``head.out_shape``.

    Like torchvision's, the head runs in training mode only, so eval-mode costs (MACs, fvcore)
    leave it out while parameter counts include it.
    """

    head: Node | None = None
    # The name of the earlier network item whose output the head reads (``from:``); None: the
    # current tensor. ``in_shape`` is the head's input, ``out_shape`` the main path's tensor.
    source: str | None = None

    def children(self) -> list[Node]:
        return [self.head] if self.head is not None else []


def describe(node: Node) -> str:
    """One line for a node in summaries: ``inception_a x4``, ``reduction_a k=192 ...`` (as the
    call is written in a spec)."""
    if isinstance(node, Seq) and node.repeat:
        inner = describe(node.items[0]) if node.items else node.name
        return f"{inner} x{node.repeat}"
    if node.block:
        if node.args:
            return " ".join([node.block, *(f"{k}={_word(v)}" for k, v in node.args.items())])
        return node.block
    if isinstance(node, Layer):
        return node.label
    return type(node).__name__.lower()


def _word(value: Any) -> str:
    """A value as a spec token: ``none`` for None, ``0.17``, ``[1, 2]`` without spaces."""
    if value is None:
        return "none"
    return str(value).replace(" ", "")


def param_count(node: Node) -> int:
    """Trainable parameters of a node and everything below it."""
    return sum(lay.cost().params for lay in node.layers())


def buffer_count(node: Node) -> int:
    """Buffers (batch-norm running statistics) of a node and everything below it."""
    return sum(lay.cost().buffers for lay in node.layers())


def node_count(node: Node) -> int:
    """Nodes in a subtree (itself included)."""
    return _size(node)[0]


def largest_layer(node: Node) -> tuple[int, Layer | None]:
    """The layer of a subtree with the most values in one tensor (its weights or its output),
    and that number."""
    return _size(node)[1:]  # type: ignore[return-value]


def _size(node: Node) -> tuple[int, int, Layer | None]:
    if node.size is None:
        if isinstance(node, Layer):
            c = node.cost()
            node.size = (1, max(c.params + c.buffers, c.activations), node)
        else:
            count, peak, where = 1, 0, None
            for child in node.children():
                n, most, layer = _size(child)
                count += n
                if most > peak:
                    peak, where = most, layer
            node.size = (count, peak, where)
    return node.size


def relocate(node: Node, name: str, path: str) -> Node:
    """A copy of a resolved subtree under another name and path (an identical repeat)."""
    old = len(node.path)

    def move(n: Node, new_name: str) -> Node:
        twin = object.__new__(type(n))
        twin.__dict__.update(n.__dict__)
        twin.name, twin.path = new_name, path + n.path[old:]
        for attr in _child_fields(type(n)):
            value = getattr(n, attr)
            if isinstance(value, Node):
                setattr(twin, attr, move(value, value.name))
            elif isinstance(value, list):
                setattr(twin, attr, [move(c, c.name) for c in value])
        return twin

    return move(node, name)


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    """The attributes of a node class that hold child nodes (looked up once per class)."""
    if cls not in _CHILD_FIELDS:
        _CHILD_FIELDS[cls] = tuple(
            f.name for f in fields(cls)
            if "Node" in str(f.type) and f.name not in ("name", "path", "loc")
        )
    return _CHILD_FIELDS[cls]
