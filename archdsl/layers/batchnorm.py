"""A stand-alone batch norm: the BN of pre-activation blocks (BN-ReLU-conv, He et al. 2016b) and of
networks that normalise outside a conv. A conv's own norm stays its ``norm`` field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from . import register
from .activation import ACTIVATIONS, ActName, activation_source, build_activation
from .base import (
    Call,
    Fields,
    LayerCost,
    LayerError,
    LayerKind,
    Shape,
    call_text,
    chain_helper,
    fmt_shape,
    numel,
)

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

    def source(self, f: BatchNormFields, shape: Shape, out: Shape) -> Call:
        cls = "nn.BatchNorm2d" if len(shape) == 3 else "nn.BatchNorm1d"
        kwargs = {"eps": f.eps, "momentum": f.momentum}
        defaults = {"eps": 1e-5, "momentum": 0.1}
        if not f.act:
            return Call(cls, (shape[0],), kwargs, defaults)
        # The built Sequential(bn=..., act=...) as a class with the same two children.
        act = activation_source(f.act, inplace=True)
        title = f"Bn{'' if len(shape) == 3 else '1d'}{ACTIVATIONS[f.act][1]}"
        helper = chain_helper(
            title, f"Batch norm followed by {ACTIVATIONS[f.act][1]}.",
            ["num_features: int", "eps: float = 1e-5", "momentum: float = 0.1"],
            [("bn", f"{cls}(num_features, eps=eps, momentum=momentum)"), ("act", call_text(act))],
            act.helpers)
        return Call(title, (shape[0],), kwargs, defaults, (helper,))

    def label(self, f: BatchNormFields) -> str:
        return "BN" + (f" + {f.act}" if f.act else "")


register(BatchNorm())
