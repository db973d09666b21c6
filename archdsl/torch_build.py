"""The PyTorch back end: the IR becomes an ``nn.Module`` with readable, spec-ordered names.

The module tree mirrors the IR: a sequence is an ``nn.Sequential``, a concat a :class:`Concat`,
a residual sum a :class:`Residual`, and each layer the module its kind builds. Forward passes are
plain code over submodules (no interpretation of the graph per call), so the result runs like a
hand-written model, traces with ``torch.compile(fullgraph=True)`` and scripts with TorchScript.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import ir


class Concat(nn.Sequential):
    """Branches side by side on the same input, joined along channels (the "Filter concat").

    A ``Sequential`` subclass so that the branches keep their names (``branch0`` ...) and
    TorchScript can unroll the loop over them.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        outs: list[torch.Tensor] = []
        for branch in self:
            outs.append(branch(x))
        return torch.cat(outs, 1)


class Residual(nn.Module):
    """``after(shortcut(x) + scale * body(x))``; an absent shortcut is the identity."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None, scale: float,
                 after: nn.Module | None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.after = after if after is not None else nn.Identity()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = self.body(x)
        if self.scale != 1.0:
            y = y * self.scale
        return self.after(self.shortcut(x) + y)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


def build_module(node: ir.Node) -> nn.Module:
    """Build the module for an IR node and everything below it."""
    if isinstance(node, ir.Layer):
        return node.kind_def.build(node.fields, node.in_shape, node.out_shape)
    if isinstance(node, ir.Seq):
        return nn.Sequential(OrderedDict((c.name, build_module(c)) for c in node.items))
    if isinstance(node, ir.Concat):
        return Concat(OrderedDict((b.name, build_module(b)) for b in node.branches))
    if isinstance(node, ir.Residual):
        assert node.body is not None
        return Residual(
            build_module(node.body),
            build_module(node.shortcut) if node.shortcut else None,
            node.scale,
            build_module(node.after) if node.after else None,
        )
    raise TypeError(f"unknown IR node {type(node).__name__}")
