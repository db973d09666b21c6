"""A stand-alone batch norm: the BN of pre-activation blocks (BN-ReLU-conv, He et al. 2016b) and of
networks that normalise outside a conv. A conv's own norm stays its ``norm`` field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from . import register
from .activation import ACTIVATIONS, ActName, build_activation
from .base import Fields, LayerCost, LayerError, LayerKind, Shape, fmt_shape, numel

if TYPE_CHECKING:
    from torch import nn


class BatchNormFields(Fields):
    eps: float = Field(1e-5, gt=0)
    momentum: float = Field(0.1, gt=0, le=1, description="PyTorch sense")
    act: ActName = Field(None, description="an activation after the norm (pre-activation's ReLU)")


class BatchNorm(LayerKind):
    name = "batchnorm"
    summary = "batch normalisation on its own, optionally followed by an activation"
    fields = BatchNormFields
    words = {**{a: {"act": a} for a in ACTIVATIONS}, "noact": {"act": None}}

    def infer(self, f: BatchNormFields, shape: Shape) -> Shape:
        if len(shape) not in (1, 3):
            raise LayerError(f"batchnorm needs C or CxHxW, got {fmt_shape(shape)}")
        return shape

    def cost(self, f: BatchNormFields, shape: Shape, out: Shape) -> LayerCost:
        c = shape[0]
        # fvcore: an affine batch norm in eval mode is 2 flops an element.
        return LayerCost(2 * c, 2 * c + 1, 0, 2 * numel(shape), numel(out))

    def build(self, f: BatchNormFields, shape: Shape, out: Shape) -> nn.Module:
        from collections import OrderedDict

        from torch import nn

        cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
        bn = cls(shape[0], eps=f.eps, momentum=f.momentum)
        if not f.act:
            return bn
        return nn.Sequential(OrderedDict(bn=bn, act=build_activation(f.act, inplace=True)))

    def label(self, f: BatchNormFields) -> str:
        return "BN" + (f" + {f.act}" if f.act else "")


register(BatchNorm())
