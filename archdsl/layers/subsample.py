"""LeNet-5's trainable subsampling (S2, S4 of LeCun et al. 1998, section II.B).

Each unit adds up a window of its map, multiplies the sum by a trainable coefficient, adds a
trainable bias and passes the result through the squashing function: two parameters per map.
The connections the paper counts are window-size inputs plus the bias, per output unit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Optional

from pydantic import Field

from . import register
from .activation import ACTIVATIONS, ActName, activation_source, build_activation
from .base import (
    Call,
    Fields,
    LayerCost,
    LayerKind,
    Pair,
    Shape,
    fmt_kernel,
    numel,
    sliding_shape,
    torch_layer,
)

if TYPE_CHECKING:
    from torch import nn


class SubsampleFields(Fields):
    kernel: Pair = Field((2, 2), description="window height x width (the paper: 2x2)")
    stride: Optional[Pair] = Field(None, description="default: the window size (no overlap)")
    act: ActName = Field(None, description="the squashing function (the paper: scaled_tanh)")

    @property
    def step(self) -> tuple[int, int]:
        return self.stride if self.stride is not None else self.kernel


class Subsample(LayerKind):
    name = "subsample"
    summary = "trainable subsampling: window sum x coefficient + bias, per map (LeNet-5 S2/S4)"
    fields = SubsampleFields
    words = {a: {"act": a} for a in ACTIVATIONS}

    def infer(self, f: SubsampleFields, shape: Shape) -> Shape:
        return sliding_shape(self.name, shape, shape[0] if shape else 0, f.kernel, f.step, (0, 0))

    def cost(self, f: SubsampleFields, shape: Shape, out: Shape) -> LayerCost:
        # One multiply-accumulate per window element: the torch module is a depthwise conv whose
        # kernel repeats the coefficient, so fvcore counts the same.
        macs = numel(out) * f.kernel[0] * f.kernel[1]
        return LayerCost(params=2 * shape[0], macs=macs, fvcore=macs, activations=numel(out))

    def build(self, f: SubsampleFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        from ..torch_layers import TrainableSubsample

        sub = TrainableSubsample(shape[0], f.kernel, f.step)
        if not f.act:
            return sub
        return nn.Sequential(OrderedDict(sub=sub, act=build_activation(f.act)))

    def source(self, f: SubsampleFields, shape: Shape, out: Shape) -> Call:
        sub = Call("TrainableSubsample", (shape[0], tuple(f.kernel), tuple(f.step)),
                   helpers=(torch_layer("TrainableSubsample"),))
        if not f.act:
            return sub
        named = Call("OrderedDict", kwargs={"sub": sub, "act": activation_source(f.act)})
        return Call("nn.Sequential", (named,))

    def label(self, f: SubsampleFields) -> str:
        return f"{fmt_kernel(f.kernel)} Subsampling (trainable)"


register(Subsample())
