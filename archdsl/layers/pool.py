"""Max and average pooling over a window, and global average pooling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from . import register
from .base import (
    Call,
    Fields,
    LayerCost,
    LayerKind,
    Padding,
    Pair,
    Shape,
    fmt_kernel,
    need_image,
    numel,
    pair_arg,
    resolve_padding,
    sliding_shape,
    torch_layer,
)

if TYPE_CHECKING:
    from torch import nn


class PoolFields(Fields):
    kernel: Pair = Field(description="window height x width")
    stride: Pair = Field(
        (1, 1), description="as in the papers, a pool without a stride is stride 1"
    )
    padding: Padding = Field("same", description="'same', 'valid' (the paper's V), or explicit")
    ceil_mode: bool = False


class AvgPoolFields(PoolFields):
    count_include_pad: bool = Field(True, description="average over padding zeros too (PyTorch)")


class _Pool(LayerKind):
    title: str
    words = {"ceil": {"ceil_mode": True}}

    def infer(self, f: PoolFields, shape: Shape) -> Shape:
        pad = resolve_padding(self.name, f.padding, f.kernel)
        return sliding_shape(self.name, shape, shape[0] if shape else 0, f.kernel, f.stride, pad,
                             ceil=f.ceil_mode)

    def label(self, f: PoolFields) -> str:
        notes = []
        if f.stride != (1, 1):
            notes.append(f"stride {f.stride[0]}")
        if f.padding == "valid":
            notes.append("V")
        suffix = f" ({' '.join(notes)})" if notes else ""
        return f"{fmt_kernel(f.kernel)} {self.title}{suffix}"


class MaxPool(_Pool):
    name = "maxpool"
    summary = "max pooling"
    title = "MaxPool"
    fields = PoolFields

    def build(self, f: PoolFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        pad = resolve_padding(self.name, f.padding, f.kernel)
        return nn.MaxPool2d(f.kernel, f.stride, pad, ceil_mode=f.ceil_mode)

    def source(self, f: PoolFields, shape: Shape, out: Shape) -> Call:
        return pool_call("nn.MaxPool2d", f)


class AvgPool(_Pool):
    name = "avgpool"
    summary = "average pooling"
    title = "Avg Pooling"  # the paper's words (Figures 4-6); MaxPool is its word for max pooling
    fields = AvgPoolFields
    words = {"ceil": {"ceil_mode": True}, "exclude_pad": {"count_include_pad": False}}

    def build(self, f: AvgPoolFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        pad = resolve_padding(self.name, f.padding, f.kernel)
        return nn.AvgPool2d(
            f.kernel, f.stride, pad, ceil_mode=f.ceil_mode, count_include_pad=f.count_include_pad
        )

    def source(self, f: AvgPoolFields, shape: Shape, out: Shape) -> Call:
        call = pool_call("nn.AvgPool2d", f)
        call.kwargs["count_include_pad"] = f.count_include_pad
        call.defaults["count_include_pad"] = True
        return call


class GapFields(Fields):
    flatten: bool = Field(True, description="give a C vector (True) or a Cx1x1 map (False)")
    mean: bool = Field(
        False, description="build torch's x.mean over the grid (as timm's squeeze-and-excitation "
        "does, which fvcore counts as no flops) instead of AdaptiveAvgPool2d (one flop an input "
        "element to fvcore)")


class GlobalAvgPool(LayerKind):
    name = "gap"
    summary = "global average pooling (to a C vector by default)"
    fields = GapFields
    words = {"keepdims": {"flatten": False}, "mean": {"mean": True}}

    def infer(self, f: GapFields, shape: Shape) -> Shape:
        c, _, _ = need_image(self.name, shape)
        return (c,) if f.flatten else (c, 1, 1)

    def cost(self, f: GapFields, shape: Shape, out: Shape) -> LayerCost:
        # fvcore counts adaptive average pooling as one flop per input element, a mean as none.
        return LayerCost(fvcore=0 if f.mean else numel(shape), activations=numel(out))

    def build(self, f: GapFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        if f.mean:
            from ..torch_layers import GridMean

            return GridMean(keepdim=not f.flatten)
        pool = nn.AdaptiveAvgPool2d(1)
        return nn.Sequential(pool, nn.Flatten(1)) if f.flatten else pool

    def source(self, f: GapFields, shape: Shape, out: Shape) -> Call:
        if f.mean:
            return Call("GridMean", kwargs={"keepdim": not f.flatten},
                        helpers=(torch_layer("GridMean"),))
        pool = Call("nn.AdaptiveAvgPool2d", (1,))
        return Call("nn.Sequential", (pool, Call("nn.Flatten"))) if f.flatten else pool

    def label(self, f: Any) -> str:
        return "Avg Pooling"


def pool_call(callee: str, f: PoolFields) -> Call:
    """``nn.MaxPool2d(3, stride=2)``: the stride always written (torch's default is the window),
    padding and ceil mode when they are not the default."""
    pad = resolve_padding("pool", f.padding, f.kernel)
    return Call(callee, (pair_arg(f.kernel),),
                {"stride": pair_arg(f.stride), "padding": pair_arg(pad), "ceil_mode": f.ceil_mode},
                {"padding": 0, "ceil_mode": False})


register(MaxPool())
register(AvgPool())
register(GlobalAvgPool())
