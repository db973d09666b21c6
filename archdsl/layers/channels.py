"""Layers that move channels around without weights: channel shuffle (ShuffleNet), zero-padding
of channels (the CIFAR ResNets' option A shortcut), and the identity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from . import register
from .base import (
    Call,
    Count,
    Fields,
    LayerCost,
    LayerError,
    LayerKind,
    NoFields,
    Shape,
    need_image,
    numel,
    torch_layer,
)

if TYPE_CHECKING:
    from torch import nn


class ShuffleFields(Fields):
    groups: Count = Field(description="groups whose channels are interleaved")


class ChannelShuffle(LayerKind):
    name = "shuffle"
    summary = "channel shuffle: interleave the channels of several groups (ShuffleNet)"
    fields = ShuffleFields
    positional = ("groups",)

    def infer(self, f: ShuffleFields, shape: Shape) -> Shape:
        c, _, _ = need_image(self.name, shape)
        if c % f.groups:
            raise LayerError(f"shuffle: {f.groups} groups must divide the {c} channels")
        return shape

    def build(self, f: ShuffleFields, shape: Shape, out: Shape) -> nn.Module:
        from ..torch_layers import ChannelShuffle as Module

        return Module(f.groups)

    def source(self, f: ShuffleFields, shape: Shape, out: Shape) -> Call:
        return Call("ChannelShuffle", (f.groups,), helpers=(torch_layer("ChannelShuffle"),))

    def label(self, f: ShuffleFields) -> str:
        return f"Channel shuffle ({f.groups} groups)"


class PadFields(Fields):
    filters: Count = Field(description="output channels (at least the input's)")
    side: Literal["end", "both"] = Field(
        "end", description="where the zeros go: after the input's channels, or half before and "
        "half after")


class PadChannels(LayerKind):
    name = "pad_channels"
    summary = "zero-padding of channels up to a count (option A shortcuts of He et al. 2016)"
    fields = PadFields
    positional = ("filters",)
    words = {"both": {"side": "both"}, "end": {"side": "end"}}

    def infer(self, f: PadFields, shape: Shape) -> Shape:
        c, h, w = need_image(self.name, shape)
        if f.filters < c:
            raise LayerError(f"pad_channels: {f.filters} channels is fewer than the input's {c}")
        return (f.filters, h, w)

    def cost(self, f: PadFields, shape: Shape, out: Shape) -> LayerCost:
        return LayerCost(activations=numel(out))

    def build(self, f: PadFields, shape: Shape, out: Shape) -> nn.Module:
        from ..torch_layers import PadChannels as Module

        return Module(*self.pads(f, shape))

    def source(self, f: PadFields, shape: Shape, out: Shape) -> Call:
        return Call("PadChannels", self.pads(f, shape), helpers=(torch_layer("PadChannels"),))

    @staticmethod
    def pads(f: PadFields, shape: Shape) -> tuple[int, int]:
        """The zero channels before and after the input's."""
        extra = f.filters - shape[0]
        before = extra // 2 if f.side == "both" else 0
        return before, extra - before

    def label(self, f: PadFields) -> str:
        return f"Zero-pad to {f.filters} channels"



class Identity(LayerKind):
    name = "identity"
    summary = "the input unchanged (an identity branch of a merge)"
    fields = NoFields

    def infer(self, f: Any, shape: Shape) -> Shape:
        return shape

    def cost(self, f: Any, shape: Shape, out: Shape) -> LayerCost:
        return LayerCost()

    def build(self, f: Any, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        return nn.Identity()

    def source(self, f: Any, shape: Shape, out: Shape) -> Call:
        return Call("nn.Identity")

    def label(self, f: Any) -> str:
        return "Identity"


register(ChannelShuffle())
register(PadChannels())
register(Identity())

