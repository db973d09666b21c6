"""2-D convolution, optionally followed by batch norm and an activation (the paper's "Conv").

In the papers every convolution is followed by BN and ReLU unless marked ``Linear``; specs say so
once in ``defaults: {conv: {norm: batchnorm, act: relu}}``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Literal, Optional, Union

from pydantic import Field, field_validator

from ..expr import make_divisible
from . import register
from .activation import ACTIVATIONS, ActName, activation_source, build_activation
from .base import (
    Call,
    Count,
    Fields,
    Helper,
    LayerCost,
    LayerError,
    LayerKind,
    Padding,
    Pair,
    Shape,
    call_text,
    chain_helper,
    fmt_kernel,
    numel,
    pair_arg,
    resolve_padding,
    sliding_shape,
)

if TYPE_CHECKING:
    from torch import nn


class ConvTailFields(Fields):
    """What follows a convolution (bias, batch norm, activation) and the width knob: shared by
    ``conv`` and ``sepconv``."""

    bias: Optional[bool] = Field(None, description="default: a bias only when there is no norm")
    norm: Optional[Literal["batchnorm"]] = None
    eps: float = Field(1e-5, gt=0, description="batch-norm epsilon")
    momentum: float = Field(0.1, gt=0, le=1, description="batch-norm momentum (PyTorch sense)")
    act: ActName = None
    width: float = Field(
        1.0, gt=0, le=1000, description="multiplier on filters (a spec's width knob: "
        "defaults: {conv: {width: $width}}); the product is rounded to a multiple of divisor"
    )
    divisor: Count = Field(8, description="channel rounding when width is not 1")

    @field_validator("norm", mode="before")
    @classmethod
    def _norm_alias(cls, v: Any) -> Any:
        return norm_alias(v)

    @property
    def has_bias(self) -> bool:
        return self.bias if self.bias is not None else self.norm is None


def norm_alias(v: Any) -> Any:
    """``bn``, ``true`` -> ``batchnorm``; ``false`` -> no norm."""
    return "batchnorm" if v in ("bn", "batchnorm", True) else (None if v is False else v)


# One-line words of the convolution kinds (``conv 1x1 320 linear``).
TAIL_WORDS: dict[str, dict[str, Any]] = {
    "linear": {"norm": None, "act": None, "bias": True},
    "bias": {"bias": True},
    "nobias": {"bias": False},
    "bn": {"norm": "batchnorm"},
    "nonorm": {"norm": None},
    "noact": {"act": None},
    **{a: {"act": a} for a in ACTIVATIONS},
}


# The spec's words for a convolution's positional arguments (in channels, filters, kernel).
CONV_ARGS = ("channels", "filters", "kernel")


def title_words(title: str) -> str:
    """``BnReLU`` -> ``batch norm and ReLU`` (helper docstrings)."""
    words = ["batch norm" if title.startswith("Bn") else ""]
    words.append(title.removeprefix("Bn"))
    return " and ".join(w for w in words if w)


def widened(f: Any) -> dict[str, Any]:
    """The update that applies the width knob to ``filters`` (once, in ``prepare``)."""
    if f.width == 1.0:
        return {}
    return {"filters": make_divisible(f.filters * f.width, f.divisor), "width": 1.0}


def window_notes(f: Any) -> list[str]:
    """The paper's notes on a window: ``stride 2``, ``V``."""
    notes = []
    if f.stride != (1, 1):
        square = f.stride[0] == f.stride[1]
        notes.append(f"stride {f.stride[0]}" if square else f"stride {f.stride}")
    if f.padding == "valid":
        notes.append("V")
    elif f.padding != "same":
        square = f.padding[0] == f.padding[1]
        notes.append(f"pad {f.padding[0]}" if square else f"pad {f.padding}")
    return notes


def tail_source(f: Any) -> tuple[list[tuple[str, str]], list[str], tuple[Helper, ...], str]:
    """The exported ``bn`` and ``act`` parts of a conv helper class, their ``__init__``
    parameters, the helpers they need, and the name they add (``BnReLU``)."""
    parts, params, needs, title = [], [], (), ""
    if f.norm:
        parts.append(("bn", "nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum)"))
        params = ["eps: float = 1e-5", "momentum: float = 0.1"]
        title = "Bn"
    if f.act:
        act = activation_source(f.act, inplace=True)
        parts.append(("act", call_text(act)))
        needs, title = act.helpers, title + ACTIVATIONS[f.act][1]
    return parts, params, needs, title


def tail_kwargs(f: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword arguments of a conv helper's call for the tail fields, and their defaults."""
    if not f.norm:
        return {"bias": f.has_bias}, {"bias": True}
    return ({"bias": f.has_bias, "eps": f.eps, "momentum": f.momentum},
            {"bias": False, "eps": 1e-5, "momentum": 0.1})


class ConvFields(ConvTailFields):
    filters: Count = Field(description="output channels")
    kernel: Pair = Field(description="kernel height x width, e.g. 3, '1x7' or [1, 7]")
    stride: Pair = (1, 1)
    padding: Padding = Field("same", description="'same', 'valid' (the paper's V), or explicit")
    dilation: Pair = (1, 1)
    groups: Union[Count, Literal["all"]] = Field(
        1, description="channel groups; 'all' is depthwise (one group per input channel)"
    )


class Conv(LayerKind):
    name = "conv"
    summary = "2-D convolution with optional batch norm and activation"
    fields = ConvFields
    positional = ("filters",)
    words = {**TAIL_WORDS, "depthwise": {"groups": "all"}}

    def prepare(self, f: ConvFields, shape: Shape) -> ConvFields:
        # Applied once here, so every later rule sees the real channel count.
        update = widened(f)
        if f.groups == "all" and shape:
            update["groups"] = shape[0]
        return f.model_copy(update=update) if update else f

    def infer(self, f: ConvFields, shape: Shape) -> Shape:
        pad = resolve_padding(self.name, f.padding, f.kernel, f.dilation)
        out = sliding_shape(self.name, shape, f.filters, f.kernel, f.stride, pad, f.dilation)
        groups = int(f.groups)
        if shape[0] % groups or f.filters % groups:
            raise LayerError(
                f"conv: {groups} groups must divide both the input channels ({shape[0]}) "
                f"and the filters ({f.filters})"
            )
        return out

    def cost(self, f: ConvFields, shape: Shape, out: Shape) -> LayerCost:
        weights = f.filters * (shape[0] // int(f.groups)) * f.kernel[0] * f.kernel[1]
        macs = weights * out[1] * out[2]
        params = weights + (f.filters if f.has_bias else 0)
        buffers = fvcore_extra = 0
        if f.norm:
            params += 2 * f.filters  # gamma, beta
            buffers += 2 * f.filters + 1  # running mean, running var, num_batches_tracked
            fvcore_extra = 2 * numel(out)  # fvcore: affine BN in eval is 2 flops an element
        return LayerCost(params, buffers, macs, macs + fvcore_extra, numel(out))

    def build(self, f: ConvFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        conv = nn.Conv2d(
            shape[0],
            f.filters,
            f.kernel,
            stride=f.stride,
            padding=resolve_padding(self.name, f.padding, f.kernel, f.dilation),
            dilation=f.dilation,
            groups=int(f.groups),
            bias=f.has_bias,
        )
        if not f.norm and not f.act:
            return conv
        parts: OrderedDict[str, nn.Module] = OrderedDict(conv=conv)
        if f.norm:
            parts["bn"] = nn.BatchNorm2d(f.filters, eps=f.eps, momentum=f.momentum)
        if f.act:
            parts["act"] = build_activation(f.act, inplace=True)
        return nn.Sequential(parts)

    def source(self, f: ConvFields, shape: Shape, out: Shape) -> Call:
        pad = resolve_padding(self.name, f.padding, f.kernel, f.dilation)
        args = (shape[0], f.filters, pair_arg(f.kernel))
        window = {"stride": pair_arg(f.stride), "padding": pair_arg(pad),
                  "dilation": pair_arg(f.dilation), "groups": int(f.groups)}
        at = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}
        tail, tail_at = tail_kwargs(f)
        if not f.norm and not f.act:
            return Call("nn.Conv2d", args, {**window, **tail}, {**at, **tail_at}, (), CONV_ARGS)
        parts, params, needs, title = tail_source(f)
        helper = chain_helper(
            f"Conv{title}", f"A convolution followed by {title_words(title)}.",
            ["in_channels: int", "out_channels: int", "kernel_size", "stride=1", "padding=0",
             "dilation=1", "groups: int = 1", f"bias: bool = {not f.norm}", *params],
            [("conv", "nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, "
                      "dilation, groups, bias)"), *parts], needs)
        return Call(helper.name, args, {**window, **tail}, {**at, **tail_at}, (helper,), CONV_ARGS)

    def label(self, f: ConvFields) -> str:
        notes = [str(f.filters), *window_notes(f)]
        if isinstance(f.groups, int) and f.groups > 1:
            notes.append(f"groups {f.groups}")
        if not f.act:
            notes.append("Linear")
        return f"{fmt_kernel(f.kernel)} Conv ({' '.join(notes)})"


register(Conv())
