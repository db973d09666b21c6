"""A convolution with a connection table: output map j sees only some input maps.

LeNet-5's C3 (LeCun et al. 1998, section II.B, Table I) connects its 16 maps to subsets of S2's
6 maps, "to keep the number of connections within reasonable bounds" and to break symmetry.
Only the real connections are parameters: C3 has 1,516 of them and 151,600 connections.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Literal, Union

from pydantic import Field, field_validator

from . import register
from .activation import ACTIVATIONS, ActName, activation_source, build_activation
from .base import (
    Call,
    Fields,
    LayerCost,
    LayerError,
    LayerKind,
    PadPair,
    Pair,
    Shape,
    fmt_kernel,
    numel,
    sliding_shape,
    torch_layer,
)

if TYPE_CHECKING:
    from torch import nn


def _lecun_table() -> list[list[int]]:
    """Table I: maps 0-5 take 3 neighbouring S2 maps, 6-11 four neighbouring ones, 12-14 four
    non-neighbouring ones, and map 15 all six (neighbours wrap around)."""
    table = [[(j + i) % 6 for i in range(3)] for j in range(6)]
    table += [[(j + i) % 6 for i in range(4)] for j in range(6)]
    table += [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]]
    table.append(list(range(6)))
    return table


TABLES: dict[str, list[list[int]]] = {"lecun": _lecun_table()}


class PartialConvFields(Fields):
    kernel: Pair = Field(description="kernel height x width")
    table: Union[Literal["lecun"], list[list[int]]] = Field(
        "lecun", description="for each output map, the input maps it sees; 'lecun' is Table I "
        "of LeCun et al. 1998 (16 maps over 6)",
    )
    stride: Pair = (1, 1)
    padding: PadPair = Field((0, 0), description="explicit padding (LeNet-5 uses none)")
    bias: bool = True
    act: ActName = None

    @field_validator("table")
    @classmethod
    def _check_table(cls, v: str | list[list[int]]) -> str | list[list[int]]:
        if isinstance(v, list):
            if not v:
                raise ValueError("the table needs at least one output map")
            for j, row in enumerate(v):
                if not row:
                    raise ValueError(f"output map {j} sees no input map")
                if len(set(row)) != len(row) or min(row) < 0:
                    raise ValueError(f"output map {j}: input maps must be distinct and >= 0")
        return v

    @property
    def rows(self) -> list[list[int]]:
        return TABLES[self.table] if isinstance(self.table, str) else self.table


class PartialConv(LayerKind):
    name = "partialconv"
    summary = "convolution with a connection table (LeNet-5 C3)"
    fields = PartialConvFields
    words = {"nobias": {"bias": False}, **{a: {"act": a} for a in ACTIVATIONS}}

    def infer(self, f: PartialConvFields, shape: Shape) -> Shape:
        rows = f.rows
        highest = max(max(r) for r in rows)
        if shape and highest >= shape[0]:
            raise LayerError(
                f"partialconv: the table uses input map {highest}, the input has {shape[0]} maps"
            )
        return sliding_shape(self.name, shape, len(rows), f.kernel, f.stride, f.padding)

    def cost(self, f: PartialConvFields, shape: Shape, out: Shape) -> LayerCost:
        links = sum(len(r) for r in f.rows)
        weights = links * f.kernel[0] * f.kernel[1]
        macs = weights * out[1] * out[2]
        params = weights + (len(f.rows) if f.bias else 0)
        # The torch module keeps each map's input list as a (non-persistent) index buffer.
        return LayerCost(params, links, macs, macs, numel(out))

    def build(self, f: PartialConvFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        from ..torch_layers import PartialConv2d

        conv = PartialConv2d(f.rows, f.kernel, f.stride, f.padding, f.bias)
        if not f.act:
            return conv
        return nn.Sequential(OrderedDict(conv=conv, act=build_activation(f.act)))

    def source(self, f: PartialConvFields, shape: Shape, out: Shape) -> Call:
        helper = torch_layer("PartialConv2d", needs=(torch_layer("MapConv"),))
        conv = Call("PartialConv2d", (f.rows, tuple(f.kernel), tuple(f.stride), tuple(f.padding)),
                    {"bias": f.bias}, {"bias": True}, (helper,))
        if not f.act:
            return conv
        named = Call("OrderedDict", kwargs={"conv": conv, "act": activation_source(f.act)})
        return Call("nn.Sequential", (named,))

    def label(self, f: PartialConvFields) -> str:
        table = "Table I" if f.table == "lecun" else "table"
        return f"{fmt_kernel(f.kernel)} Conv ({len(f.rows)}, partial: {table})"


register(PartialConv())
