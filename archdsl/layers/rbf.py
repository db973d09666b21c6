"""Euclidean radial basis function output units (LeNet-5's output layer, "Gaussian connections").

Unit i outputs the squared distance between its input vector and its centre w_i (LeCun et al.
1998, section II.B, eq. 7). The paper chooses the centres by hand (+-1 bitmaps of stylised
characters) and keeps them fixed, and its "60,000 trainable parameters" leave them out; so here
they are a buffer unless ``trainable: true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from . import register
from .base import (
    Call,
    Count,
    Fields,
    LayerCost,
    LayerError,
    LayerKind,
    Shape,
    fmt_shape,
    torch_layer,
)

if TYPE_CHECKING:
    from torch import nn


class RbfFields(Fields):
    units: Count = Field(description="output units (classes)")
    trainable: bool = Field(False, description="learn the centres (the paper keeps them fixed)")


class Rbf(LayerKind):
    name = "rbf"
    summary = "Euclidean RBF output units: squared distance to a centre per unit (LeNet-5)"
    fields = RbfFields
    positional = ("units",)
    words = {"trainable": {"trainable": True}, "fixed": {"trainable": False}}

    def infer(self, f: RbfFields, shape: Shape) -> Shape:
        if len(shape) != 1:
            raise LayerError(f"rbf needs a flat input, got {fmt_shape(shape)}: add flatten")
        return (f.units,)

    def cost(self, f: RbfFields, shape: Shape, out: Shape) -> LayerCost:
        centres = f.units * shape[0]
        # One (difference squared) accumulate per centre coordinate. fvcore counts none of the
        # sub / pow / sum it runs (measured: all "unsupported", 0 flops).
        return LayerCost(
            params=centres if f.trainable else 0,
            buffers=0 if f.trainable else centres,
            macs=centres,
            fvcore=0,
            activations=f.units,
        )

    def build(self, f: RbfFields, shape: Shape, out: Shape) -> nn.Module:
        from ..torch_layers import RBFOutput

        return RBFOutput(shape[0], f.units, f.trainable)

    def source(self, f: RbfFields, shape: Shape, out: Shape) -> Call:
        return Call("RBFOutput", (shape[0], f.units), {"trainable": f.trainable},
                    {"trainable": False}, (torch_layer("RBFOutput"),))

    def label(self, f: RbfFields) -> str:
        return f"RBF ({f.units}{', trainable' if f.trainable else ''})"


register(Rbf())
