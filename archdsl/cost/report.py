"""The cost of a spec from its IR alone: totals, and a row per stage, block and layer.

Each layer kind states its own cost (:meth:`archdsl.layers.base.LayerKind.cost`); this module only
adds them up along the IR tree, so a kind's rule lives in exactly one place. Structures cost
nothing themselves: a concat is a copy and a residual sum or scale is element-wise, which neither
torchvision's MAC figures nor fvcore (it ignores ``aten::add`` and ``aten::mul`` by default)
count.

Auxiliary heads run in training mode only, so their parameters and buffers count and their
MACs, fvcore flops and activations (eval mode, batch 1) do not; their rows say ``train_only``.

Granularity, as ``--depth`` picks it:

1. stage: the top-level items of ``network:`` (``stem_v4``, ``inception_a x4``, ``gap``, ...);
2. block: a repeat split into its repeats (``inception_a.0`` ...), an inline ``seq`` into its
   items; a block call, concat or residual is one block;
3. layer: every layer (conv, pool, linear, ...) inside its block.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from .. import ir
from ..layers.base import Shape
from .units import ORDER

STAGE, BLOCK, LAYER = 1, 2, 3
LEVEL_NAMES = {STAGE: "stage", BLOCK: "block", LAYER: "layer"}
Depth = Union[int, str]  # 1, 2, 3 or "stage", "block", "layer"


def depth_level(depth: Depth) -> int:
    """1/"stage", 2/"block" or 3/"layer" as the level number (ValueError otherwise)."""
    if isinstance(depth, str):
        for level, name in LEVEL_NAMES.items():
            if depth in (name, str(level)):
                return level
    elif depth in LEVEL_NAMES and not isinstance(depth, bool):
        return depth
    raise ValueError(f"depth {depth!r}: expected one of 'stage', 'block', 'layer' (or 1, 2, 3)")
BYTES_PER_VALUE = 4  # float32 weights


@dataclass(frozen=True)
class Counts:
    """Additive costs at batch 1 (see :mod:`archdsl.cost.units` for what each means)."""

    params: int = 0
    buffers: int = 0
    macs: int = 0
    fvcore: int = 0
    activations: int = 0

    @property
    def flops(self) -> int:
        """FLOPs = 2 x MACs (a multiply and an add each)."""
        return 2 * self.macs

    @property
    def weight_mb(self) -> float:
        """Memory of parameters and buffers as float32, in MB (10^6 bytes)."""
        return BYTES_PER_VALUE * (self.params + self.buffers) / 1e6

    def get(self, metric: str) -> int:
        return int(getattr(self, metric))

    def __add__(self, other: Counts) -> Counts:
        return add_up((self, other))

    def train_only(self) -> Counts:
        """What a training-only part adds to an eval-mode count: its weights only."""
        return Counts(params=self.params, buffers=self.buffers)

    def as_dict(self) -> dict[str, int]:
        return {m: self.get(m) for m in ORDER}


def add_up(parts: Iterable[Counts]) -> Counts:
    """The sum of several counts (written out: this is the hot loop of a cost search)."""
    params = buffers = macs = fvcore = activations = 0
    for c in parts:
        params += c.params
        buffers += c.buffers
        macs += c.macs
        fvcore += c.fvcore
        activations += c.activations
    return Counts(params, buffers, macs, fvcore, activations)


@dataclass
class NodeCost:
    """One row of a report: an IR node and everything below it."""

    node: ir.Node = field(repr=False)
    level: int  # STAGE, BLOCK or LAYER
    counts: Counts
    train_only: bool = False  # inside an auxiliary head
    children: list[NodeCost] = field(default_factory=list)

    @property
    def path(self) -> str:
        """Module path, e.g. "inception_a.3"."""
        return self.node.path

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def out_shape(self) -> Shape:
        return self.node.out_shape

    @property
    def kind(self) -> str:
        """The layer kind ("conv", ...) or the structure ("seq", "concat", "mul", "residual",
        "aux", ...)."""
        node = self.node
        if isinstance(node, ir.Merge):
            return node.word
        return node.kind if isinstance(node, ir.Layer) else type(node).__name__.lower()

    @property
    def what(self) -> str:
        """A one-line description, made when shown: ``inception_a x4``, ``3x3 Conv (96)``."""
        node = self.node
        if isinstance(node, ir.Layer):
            return node.label
        if isinstance(node, ir.Aux) and node.head is not None:
            return f"aux head: {ir.describe(node.head)} (training only)"
        return ir.describe(node)

    def rows(self, depth: Depth) -> Iterator[NodeCost]:
        """This row and those below it down to ``depth`` (see :func:`depth_level`)."""
        depth = depth_level(depth)
        if self.level <= depth:
            yield self
            for child in self.children:
                yield from child.rows(depth)

    def as_dict(self) -> dict[str, Any]:
        return {"level": LEVEL_NAMES[self.level], "path": self.path, "name": self.name,
                "kind": self.kind, "what": self.what, "output": list(self.out_shape),
                **self.counts.as_dict(), "train_only": self.train_only}


@dataclass
class CostReport:
    """What a resolved spec costs: totals and the per-node tree (stages at the top)."""

    name: str
    path: str
    input_shape: Shape
    output_shape: Shape
    knobs: dict[str, Any]
    total: Counts
    stages: list[NodeCost]

    def rows(self, depth: Depth = LAYER) -> list[NodeCost]:
        """Every row down to ``depth``: "stage" (1), "block" (2) or "layer" (3, default)."""
        level = depth_level(depth)
        return [row for stage in self.stages for row in stage.rows(level)]

    def to_records(self, depth: Depth = LAYER) -> list[dict[str, Any]]:
        """A dict per row (``NodeCost.as_dict`` with the spec's name): for CSV, JSON, pandas."""
        return [{"spec": self.name, **row.as_dict()} for row in self.rows(depth)]

    def to_pandas(self, depth: Depth = LAYER) -> Any:
        """The rows as a ``pandas.DataFrame`` (needs pandas: ``pip install archdsl[notebook]``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("CostReport.to_pandas needs pandas, which is not installed: "
                              "pip install 'archdsl[notebook]' (or pandas)") from None
        return pd.DataFrame.from_records(self.to_records(depth))

    def __repr__(self) -> str:  # the dataclass default prints every node (~30 kB)
        return (f"<CostReport {self.name}: {self.total.params:,} params, "
                f"{self.total.macs:,} MACs, {len(self.stages)} stages>")

    def _repr_html_(self) -> str:
        from ..notebook import report_html

        return report_html(self)

    def node(self, path: str) -> NodeCost:
        for row in self.rows():
            if row.path == path:
                return row
        raise KeyError(path)

    def as_dict(self, depth: Depth = LAYER) -> dict[str, Any]:
        """The JSON form: exact integers, units named in ``archdsl.cost.units.METRICS``."""
        depth = depth_level(depth)
        return {
            "name": self.name,
            "path": self.path,
            "input": list(self.input_shape),
            "output": list(self.output_shape),
            "knobs": self.knobs,
            **self.total.as_dict(),
            "weight_mb": round(self.total.weight_mb, 3),
            "depth": LEVEL_NAMES[depth],
            "nodes": [row.as_dict() for row in self.rows(depth)],
        }


def cost_report(spec: Any) -> CostReport:
    """The report of a loaded :class:`archdsl.Spec` (IR only; no torch)."""
    counter = _Counter()
    stages = [counter.stage(node) for node in spec.ir.items]
    total = add_up(s.counts for s in stages)
    return CostReport(spec.name, str(spec.path), spec.input_shape, spec.output_shape,
                      dict(spec.params), total, stages)


def totals(root: ir.Node) -> Counts:
    """Totals only, without rows: the quick path for searches (``archdsl match``)."""
    return _Counter().of(root)


class _Counter:
    """Rolls layer costs up the tree; each node is costed once and remembered on the node."""

    def of(self, node: ir.Node) -> Counts:
        hit = node.totals
        if hit is not None:
            return hit
        if isinstance(node, ir.Layer):
            c = node.cost()
            out = Counts(c.params, c.buffers, c.macs, c.fvcore, c.activations)
        else:
            out = add_up(self.of(child) for child in node.children())
            if isinstance(node, ir.Aux):
                out = out.train_only()
        node.totals = out
        return out

    def row(self, node: ir.Node, level: int, train_only: bool) -> NodeCost:
        return NodeCost(node, level, self.of(node), train_only)

    def stage(self, node: ir.Node) -> NodeCost:
        aux = isinstance(node, ir.Aux)
        row = self.row(node, STAGE, aux)
        if isinstance(node, ir.Layer):
            return row
        blocks = list(_blocks(node))
        if blocks:
            row.children = [self.block(b, aux) for b in blocks]
        else:
            row.children = self.layer_rows(node, aux)
        return row

    def block(self, node: ir.Node, train_only: bool) -> NodeCost:
        row = self.row(node, BLOCK, train_only)
        if not isinstance(node, ir.Layer):
            row.children = self.layer_rows(node, train_only)
        return row

    def layer_rows(self, node: ir.Node, train_only: bool) -> list[NodeCost]:
        return [self.row(layer, LAYER, train_only) for layer in node.layers()]


def _blocks(node: ir.Node) -> Iterator[ir.Node]:
    """The blocks of a stage: the repeats of a repeat, the items of an inline sequence."""
    if isinstance(node, ir.Aux) and node.head is not None:
        node = node.head
    if not isinstance(node, ir.Seq) or (node.block and not node.repeat):
        return
    for item in node.items:
        if isinstance(item, ir.Seq) and not item.block and not item.repeat:
            yield from _blocks(item)
        else:
            yield item
