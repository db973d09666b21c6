"""Element-wise activations, as layers of their own and as the ``act`` of conv and linear."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import field_validator

from . import register
from .base import Call, Fields, LayerKind, NoFields, Shape, torch_layer

if TYPE_CHECKING:
    from torch import nn

# name -> (diagram label, torch module factory name)
ACTIVATIONS: dict[str, tuple[str, str]] = {
    "relu": ("ReLU", "ReLU"),
    "relu6": ("ReLU6", "ReLU6"),
    "tanh": ("Tanh", "Tanh"),
    "sigmoid": ("Sigmoid", "Sigmoid"),
    "gelu": ("GELU", "GELU"),
    "silu": ("SiLU", "SiLU"),
    # Howard et al. 2019 (MobileNetV3), section 5.2: x * ReLU6(x + 3) / 6 and ReLU6(x + 3) / 6.
    "hardswish": ("h-swish", "Hardswish"),
    "hardsigmoid": ("h-sigmoid", "Hardsigmoid"),
    # LeCun et al. 1998, appendix A: f(a) = 1.7159 tanh(2a/3), so that f(1) = 1 and f(-1) = -1.
    "scaled_tanh": ("1.7159 tanh(2a/3)", "ScaledTanh"),
}
ActName = Optional[Literal["relu", "relu6", "tanh", "sigmoid", "gelu", "silu", "hardswish",
                           "hardsigmoid", "scaled_tanh"]]
NO_ACT = ("none", "None", "identity")  # words for "no activation" where one is chosen by value
# The activations whose torch module can work in place (``inplace=True``).
INPLACE_ACTIVATIONS = ("relu", "relu6", "silu", "hardswish", "hardsigmoid")


def build_activation(name: str, inplace: bool = False) -> nn.Module:
    """The torch module for an activation.

    ``inplace`` is for an activation fused into its conv or linear, whose fresh output nothing
    else reads. A standalone activation is built out of place: it may be the first layer of a
    branch or a residual body, where its input is shared; the torch builder switches it to in
    place where it knows its input is a fresh tensor (:mod:`archdsl.torch_build`).
    """
    from torch import nn

    if name == "scaled_tanh":  # not in torch.nn
        from ..torch_layers import ScaledTanh

        return ScaledTanh()
    cls = getattr(nn, ACTIVATIONS[name][1])
    return cls(inplace=True) if inplace and name in INPLACE_ACTIVATIONS else cls()


def activation_source(name: str, inplace: bool = False) -> Call:
    """The exported constructor of an activation, as :func:`build_activation` makes it."""
    if name == "scaled_tanh":
        return Call("ScaledTanh", helpers=(torch_layer("ScaledTanh"),))
    if inplace and name in INPLACE_ACTIVATIONS:
        return Call(f"nn.{ACTIVATIONS[name][1]}", kwargs={"inplace": True})
    return Call(f"nn.{ACTIVATIONS[name][1]}")



class Activation(LayerKind):
    fields = NoFields

    def __init__(self, name: str) -> None:
        self.name = name
        self.summary = f"{ACTIVATIONS[name][0]} activation"

    def infer(self, f: Any, shape: Shape) -> Shape:
        return shape

    def build(self, f: Any, shape: Shape, out: Shape) -> nn.Module:
        return build_activation(self.name)

    def source(self, f: Any, shape: Shape, out: Shape) -> Call:
        return activation_source(self.name)

    def label(self, f: Any) -> str:
        return ACTIVATIONS[self.name][0]


class ActFields(Fields):
    fn: ActName = None  # None: the identity

    @field_validator("fn", mode="before")
    @classmethod
    def _none_word(cls, v: Any) -> Any:
        return None if v in NO_ACT else v


class ChosenActivation(LayerKind):
    """``act relu``, ``act $after``: the activation as a value, so a knob can pick it or
    drop it (``none``: the identity, e.g. TF-slim's last Inception-ResNet-C block)."""

    name = "act"
    summary = "an activation chosen by value (act relu, act none, act $name)"
    fields = ActFields
    positional = ("fn",)  # ``act $after``: an expression gives the activation's name
    words = {**{a: {"fn": a} for a in ACTIVATIONS}, **{w: {"fn": None} for w in NO_ACT}}

    def infer(self, f: ActFields, shape: Shape) -> Shape:
        return shape

    def build(self, f: ActFields, shape: Shape, out: Shape) -> nn.Module:
        from torch import nn

        return build_activation(f.fn) if f.fn else nn.Identity()

    def source(self, f: ActFields, shape: Shape, out: Shape) -> Call:
        return activation_source(f.fn) if f.fn else Call("nn.Identity")

    def label(self, f: ActFields) -> str:
        return ACTIVATIONS[f.fn][0] if f.fn else "Identity"


for _name in ACTIVATIONS:
    register(Activation(_name))
register(ChosenActivation())
