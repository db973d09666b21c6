"""The classifier end: flatten, dropout and fully connected (linear) layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from . import register
from .activation import ACTIVATIONS, ActName, activation_source, build_activation
from .base import (
    Call,
    Count,
    Fields,
    LayerCost,
    LayerError,
    LayerKind,
    NoFields,
    Shape,
    fmt_shape,
    numel,
)

if TYPE_CHECKING:
    from torch import nn



class Flatten(LayerKind):
    name = "flatten"
    summary = "flatten CxHxW to a vector"
    fields = NoFields

    def infer(self, f: Any, shape: Shape) -> Shape:
        return (numel(shape),)

    def build(self, f: Any, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        return nn.Flatten(1)

    def source(self, f: Any, shape: Shape, out: Shape) -> Call:
        return Call("nn.Flatten")

    def label(self, f: Any) -> str:
        return "Flatten"


class DropoutFields(Fields):
    p: float = Field(
        0.5, ge=0, lt=1, description="drop probability (the paper's keep 0.8 is p=0.2)"
    )


class Dropout(LayerKind):
    name = "dropout"
    summary = "dropout (identity in eval mode)"
    fields = DropoutFields
    positional = ("p",)

    def infer(self, f: Any, shape: Shape) -> Shape:
        return shape

    def build(self, f: DropoutFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        return nn.Dropout(f.p)

    def source(self, f: DropoutFields, shape: Shape, out: Shape) -> Call:
        return Call("nn.Dropout", (f.p,))

    def label(self, f: DropoutFields) -> str:
        return f"Dropout (keep {1 - f.p:g})"


class LinearFields(Fields):
    features: Count = Field(description="output features")
    bias: bool = True
    act: ActName = None


class Linear(LayerKind):
    name = "linear"
    summary = "fully connected layer"
    fields = LinearFields
    positional = ("features",)
    words = {"nobias": {"bias": False}, **{a: {"act": a} for a in ACTIVATIONS}}

    def infer(self, f: LinearFields, shape: Shape) -> Shape:
        if len(shape) != 1:
            raise LayerError(
                f"linear needs a flat input, got {fmt_shape(shape)}: add gap or flatten"
            )
        return (f.features,)

    def cost(self, f: LinearFields, shape: Shape, out: Shape) -> LayerCost:
        macs = shape[0] * f.features
        return LayerCost(macs + (f.features if f.bias else 0), 0, macs, macs, f.features)

    def build(self, f: LinearFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        fc = nn.Linear(shape[0], f.features, bias=f.bias)
        return nn.Sequential(fc, build_activation(f.act, inplace=True)) if f.act else fc

    def source(self, f: LinearFields, shape: Shape, out: Shape) -> Call:
        fc = Call("nn.Linear", (shape[0], f.features), {"bias": f.bias}, {"bias": True},
                  arg_names=("in_features", "features"))
        if not f.act:
            return fc
        return Call("nn.Sequential", (fc, activation_source(f.act, inplace=True)))

    def label(self, f: LinearFields) -> str:
        return f"FC ({f.features})"


register(Flatten())
register(Dropout())
register(Linear())
