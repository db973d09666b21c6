"""Adaptive average pooling to a fixed grid (torchvision's AlexNet and VGG heads).

torchvision puts ``AdaptiveAvgPool2d((6, 6))`` / ``((7, 7))`` before the classifier so that
other input sizes work; at 224x224 it is the identity, but fvcore still counts it (one flop per
input element), so the spec must have it for the counts to agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from . import register
from .base import Call, Fields, LayerCost, LayerKind, Pair, Shape, need_image, numel, pair_arg

if TYPE_CHECKING:
    from torch import nn


class AdaptiveFields(Fields):
    output: Pair = Field(description="output grid height x width, e.g. 6 or '6x6'")


class AdaptiveAvgPool(LayerKind):
    name = "adaptive_avgpool"
    summary = "average pooling to a fixed output grid (torch AdaptiveAvgPool2d)"
    fields = AdaptiveFields
    positional = ("output",)

    def infer(self, f: AdaptiveFields, shape: Shape) -> Shape:
        c, _, _ = need_image(self.name, shape)
        return (c, f.output[0], f.output[1])

    def cost(self, f: AdaptiveFields, shape: Shape, out: Shape) -> LayerCost:
        return LayerCost(fvcore=numel(shape), activations=numel(out))

    def build(self, f: AdaptiveFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        return nn.AdaptiveAvgPool2d(f.output)

    def source(self, f: AdaptiveFields, shape: Shape, out: Shape) -> Call:
        return Call("nn.AdaptiveAvgPool2d", (pair_arg(f.output),))

    def label(self, f: AdaptiveFields) -> str:
        return f"Adaptive AvgPool ({f.output[0]}x{f.output[1]})"


register(AdaptiveAvgPool())
