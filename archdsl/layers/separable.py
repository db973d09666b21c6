"""Depthwise-separable convolution (``sepconv``): a depthwise kxk conv, then a pointwise 1x1.

The factorisation of Xception (Chollet 2017) and MobileNet (Howard et al. 2017): the depthwise
conv filters each input channel on its own (``multiplier`` maps per channel), the pointwise conv
mixes channels. Xception puts nothing between the two and BN (+ ReLU) after; MobileNet puts BN
and ReLU after each (``mid_norm``, ``mid_act``). The module registers ``depthwise``
[``mid_bn``, ``mid_act``] ``pointwise`` [``bn``, ``act``], in the order timm's
``SeparableConv2d`` + BN and ``DepthwiseSeparableConv`` register theirs, so weights port.

Example of the Xception seed: 16 -> 32 channels, 3x3: 16 x 9 + 16 x 32 = 656 weights against
4,608 for a full 3x3 conv (the seed's 800 is the pointwise-first order, 16 x 32 + 32 x 9).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, field_validator

from . import register
from .activation import ACTIVATIONS, ActName, activation_source, build_activation
from .base import (
    Call,
    Count,
    LayerCost,
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
from .conv import (
    CONV_ARGS,
    TAIL_WORDS,
    ConvTailFields,
    norm_alias,
    tail_kwargs,
    tail_source,
    title_words,
    widened,
    window_notes,
)

if TYPE_CHECKING:
    from torch import nn


class SepConvFields(ConvTailFields):
    filters: Count = Field(description="output channels (of the pointwise conv)")
    kernel: Pair = Field(description="depthwise kernel height x width")
    stride: Pair = Field((1, 1), description="stride of the depthwise conv")
    padding: Padding = Field("same", description="padding of the depthwise conv")
    dilation: Pair = (1, 1)
    multiplier: Count = Field(1, description="depthwise maps per input channel")
    mid_norm: Optional[Literal["batchnorm"]] = Field(
        None, description="batch norm between depthwise and pointwise (MobileNet)")
    mid_act: ActName = Field(None, description="activation between depthwise and pointwise")

    _mid_norm = field_validator("mid_norm", mode="before")(norm_alias)


class SepConv(LayerKind):
    name = "sepconv"
    summary = "depthwise-separable convolution: depthwise KxK, then pointwise 1x1"
    fields = SepConvFields
    positional = ("filters",)
    words = TAIL_WORDS

    def prepare(self, f: SepConvFields, shape: Shape) -> SepConvFields:
        update = widened(f)
        return f.model_copy(update=update) if update else f

    def infer(self, f: SepConvFields, shape: Shape) -> Shape:
        pad = resolve_padding(self.name, f.padding, f.kernel, f.dilation)
        return sliding_shape(self.name, shape, f.filters, f.kernel, f.stride, pad, f.dilation)

    def cost(self, f: SepConvFields, shape: Shape, out: Shape) -> LayerCost:
        mid = shape[0] * f.multiplier
        grid = out[1] * out[2]
        dw = mid * f.kernel[0] * f.kernel[1]
        pw = mid * f.filters
        macs = (dw + pw) * grid
        params = dw + pw + (f.filters if f.has_bias else 0)
        buffers = fvcore_extra = 0
        # Each batch norm: gamma, beta (params), running mean/var and a counter (buffers), and
        # 2 flops an output element in fvcore's count of an affine eval BN.
        for norm, channels in ((f.mid_norm, mid), (f.norm, f.filters)):
            if norm:
                params += 2 * channels
                buffers += 2 * channels + 1
                fvcore_extra += 2 * channels * grid
        return LayerCost(params, buffers, macs, macs + fvcore_extra, numel(out))

    def build(self, f: SepConvFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        mid = shape[0] * f.multiplier
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        parts["depthwise"] = nn.Conv2d(
            shape[0], mid, f.kernel, stride=f.stride,
            padding=resolve_padding(self.name, f.padding, f.kernel, f.dilation),
            dilation=f.dilation, groups=shape[0], bias=False)
        if f.mid_norm:
            parts["mid_bn"] = nn.BatchNorm2d(mid, eps=f.eps, momentum=f.momentum)
        if f.mid_act:
            parts["mid_act"] = build_activation(f.mid_act, inplace=True)
        parts["pointwise"] = nn.Conv2d(mid, f.filters, 1, bias=f.has_bias)
        if f.norm:
            parts["bn"] = nn.BatchNorm2d(f.filters, eps=f.eps, momentum=f.momentum)
        if f.act:
            parts["act"] = build_activation(f.act, inplace=True)
        return nn.Sequential(parts)

    def source(self, f: SepConvFields, shape: Shape, out: Shape) -> Call:
        pad = resolve_padding(self.name, f.padding, f.kernel, f.dilation)
        mid, needs, title = [], (), ""
        if f.mid_norm:
            mid.append(("mid_bn", "nn.BatchNorm2d(in_channels * multiplier, eps=eps, "
                                  "momentum=momentum)"))
            title = "Bn"
        if f.mid_act:
            act = activation_source(f.mid_act, inplace=True)
            mid.append(("mid_act", call_text(act)))
            needs, title = act.helpers, title + ACTIVATIONS[f.mid_act][1]
        tail, params, tail_needs, tail_title = tail_source(f)
        if f.mid_norm and not f.norm:
            params = ["eps: float = 1e-5", "momentum: float = 0.1"]
        name = "SeparableConv" + (f"{title}Pointwise" if title else "") + tail_title
        helper = chain_helper(
            name, "A depthwise convolution, "
            + (f"{title_words(title)}, " if title else "") + "a pointwise 1x1 convolution"
            + (f", {title_words(tail_title)}" if tail_title else "") + ".",
            ["in_channels: int", "out_channels: int", "kernel_size", "stride=1", "padding=0",
             "dilation=1", "multiplier: int = 1", f"bias: bool = {not f.norm}", *params],
            [("depthwise", "nn.Conv2d(in_channels, in_channels * multiplier, kernel_size, stride, "
                           "padding, dilation, in_channels, False)"), *mid,
             ("pointwise", "nn.Conv2d(in_channels * multiplier, out_channels, 1, bias=bias)"),
             *tail], needs + tail_needs)
        tail_kw, tail_at = tail_kwargs(f)
        if f.mid_norm and not f.norm:
            tail_kw.update(eps=f.eps, momentum=f.momentum)
            tail_at.update(eps=1e-5, momentum=0.1)
        return Call(name, (shape[0], f.filters, pair_arg(f.kernel)),
                    {"stride": pair_arg(f.stride), "padding": pair_arg(pad),
                     "dilation": pair_arg(f.dilation), "multiplier": f.multiplier, **tail_kw},
                    {"stride": 1, "padding": 0, "dilation": 1, "multiplier": 1, **tail_at},
                    (helper,), CONV_ARGS)

    def label(self, f: SepConvFields) -> str:
        notes = [str(f.filters), *window_notes(f)]
        if f.multiplier > 1:
            notes.append(f"x{f.multiplier} per channel")
        if not f.act:
            notes.append("Linear")
        return f"{fmt_kernel(f.kernel)} SeparableConv ({' '.join(notes)})"


register(SepConv())
