"""Local response normalisation across channels (AlexNet, GoogLeNet, VGG A-LRN).

``alpha`` is in the PyTorch and Caffe sense: the sum of squares over the ``size`` neighbouring
channels is scaled by ``alpha / size``. Krizhevsky et al. 2012 write the same layer with their
alpha not divided by n; Caffe's ``bvlc_alexnet`` and ``bvlc_googlenet`` use local_size 5,
alpha 1e-4, beta 0.75, k 1 in this sense, and so does ``torch.nn.LocalResponseNorm``'s default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from . import register
from .base import Call, Count, Fields, LayerCost, LayerKind, Shape, need_image, numel

if TYPE_CHECKING:
    from torch import nn


class LrnFields(Fields):
    size: Count = Field(5, description="neighbouring channels summed over (the paper's n)")
    alpha: float = Field(1e-4, ge=0, description="scale of the sum of squares, divided by size")
    beta: float = Field(0.75, ge=0, description="exponent")
    k: float = Field(1.0, description="additive constant (Krizhevsky et al.: 2; Caffe: 1)")


class LocalResponseNorm(LayerKind):
    name = "lrn"
    summary = "local response normalisation across channels (no parameters)"
    fields = LrnFields
    positional = ("size",)

    def infer(self, f: LrnFields, shape: Shape) -> Shape:
        need_image(self.name, shape)
        return shape

    def cost(self, f: LrnFields, shape: Shape, out: Shape) -> LayerCost:
        # No parameters, no MACs; fvcore counts none of the element-wise ops it runs (measured:
        # pow, avg_pool3d, mul, add, div are all "unsupported" and add 0).
        return LayerCost(activations=numel(out))

    def build(self, f: LrnFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        return nn.LocalResponseNorm(f.size, alpha=f.alpha, beta=f.beta, k=f.k)

    def source(self, f: LrnFields, shape: Shape, out: Shape) -> Call:
        return Call("nn.LocalResponseNorm", (f.size,), {"alpha": f.alpha, "beta": f.beta, "k": f.k},
                    {"alpha": 1e-4, "beta": 0.75, "k": 1.0})

    def label(self, f: LrnFields) -> str:
        return f"LRN (size {f.size})"


register(LocalResponseNorm())
