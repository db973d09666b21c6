"""Torch modules for the layer kinds that ``torch.nn`` has no class for (LeNet-5's layers, channel
shuffle and padding, a mean over the grid).

Imported only by the kinds' ``build`` (and :func:`archdsl.layers.activation.build_activation`),
so shape, cost and drawing never load torch. Every forward is plain tensor code: the models
script with TorchScript and trace with ``torch.compile``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ScaledTanh(nn.Module):
    """LeCun's squashing function ``A tanh(S a)`` with A = 1.7159, S = 2/3 (1998, appendix A)."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4g}"


class TrainableSubsample(nn.Module):
    """LeNet-5's S2/S4: the sum over each window, times one trainable coefficient per map, plus
    one trainable bias per map.

    Written as a depthwise convolution whose kernel is the map's coefficient repeated over the
    window, so that the result is exact and counters (fvcore) see a convolution.
    """

    def __init__(self, channels: int, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        # The paper's rule: uniform in +-2.4 / fan-in (appendix A); fan-in is the window size.
        bound = 2.4 / (kernel[0] * kernel[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        c = self.weight.shape[0]
        kernel = self.weight.view(c, 1, 1, 1).expand(c, 1, self.kernel[0], self.kernel[1])
        return F.conv2d(x, kernel, self.bias, self.stride, 0, 1, c)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, kernel_size={self.kernel}, stride={self.stride}"


class MapConv(nn.Conv2d):
    """One output map of a partially connected convolution: a convolution over the input maps
    listed in ``inputs`` only."""

    def __init__(self, inputs: list[int], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], bias: bool) -> None:
        super().__init__(len(inputs), 1, kernel, stride, padding, bias=bias)
        # Structure, not state: it comes from the spec, so it stays out of the state dict.
        self.register_buffer("inputs", torch.tensor(inputs, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self._conv_forward(x.index_select(1, self.inputs), self.weight, self.bias)


class PartialConv2d(nn.Module):
    """A convolution in which output map ``j`` sees only the input maps ``table[j]`` (LeNet-5's
    C3, Table I of LeCun et al. 1998). Only real connections are parameters."""

    def __init__(self, table: list[list[int]], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], bias: bool = True) -> None:
        super().__init__()
        self.maps = nn.ModuleList(MapConv(t, kernel, stride, padding, bias) for t in table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        outs: list[torch.Tensor] = []
        for conv in self.maps:
            outs.append(conv(x))
        return torch.cat(outs, 1)


class RBFOutput(nn.Module):
    """Euclidean radial basis function units: ``y_i = sum_j (x_j - w_ij)^2`` (LeNet-5's output).

    The centres are fixed in the paper (hand-drawn 7x12 bitmaps of +-1), so by default they are a
    buffer; ``trainable=True`` makes them a parameter. They start as a fixed pseudo-random +-1
    code (the paper's bitmaps are not reproduced); load real centres into ``centres``.
    """

    def __init__(self, features: int, units: int, trainable: bool = False) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1998)
        code = torch.randint(0, 2, (units, features), generator=gen).float() * 2 - 1
        if trainable:
            self.centres = nn.Parameter(code)
        else:
            self.register_buffer("centres", code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return ((x.unsqueeze(1) - self.centres) ** 2).sum(-1)

    def extra_repr(self) -> str:
        units, features = self.centres.shape
        return f"in_features={features}, units={units}"


class GridMean(nn.Module):
    """Global average pooling written as ``x.mean((2, 3))``, as timm's SE modules write it."""

    def __init__(self, keepdim: bool) -> None:
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x.mean((2, 3), keepdim=self.keepdim)


class ChannelShuffle(nn.Module):
    """Interleave the channels of ``groups`` groups (Zhang et al. 2018; ShuffleNet v2's shuffle
    after the concat): C = g x n channels, read as g x n, transposed to n x g."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        b, c, h, w = x.shape
        x = x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return x.view(b, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class PadChannels(nn.Module):
    """Zero channels added before and after the input's (He et al. 2016, option A shortcuts)."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__()
        self.before = before
        self.after = after

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))

    def extra_repr(self) -> str:
        return f"before={self.before}, after={self.after}"
