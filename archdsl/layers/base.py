"""What a layer kind is, and the pieces the kinds share.

A layer kind (``conv``, ``maxpool``, ``linear``, ...) is defined in one module of this package:
its fields (a pydantic model, which also gives the mapping form and the JSON Schema), how its
one-line form reads, its shape rule, its cost rule, its torch builder, its diagram label and its
form in exported PyTorch source (``source``, read by :mod:`archdsl.export`).
Adding a kind means adding one module; :mod:`archdsl.layers` discovers it.

Torch is imported inside ``build`` only, so shape, cost, drawing and export never load it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]


class LayerError(Exception):
    """A layer cannot take the input it is given (shape rule failed)."""


@dataclass(frozen=True)
class LayerCost:
    """What one layer costs at batch 1.

    ``macs`` follows torchvision (conv and linear multiply-accumulates, bias excluded);
    ``fvcore`` is what ``fvcore.nn.FlopCountAnalysis`` reports for the layer (the same MACs plus
    its extras: 2 x output for an affine eval BatchNorm, the input size of adaptive pooling).
    """

    params: int = 0
    buffers: int = 0
    macs: int = 0
    fvcore: int = 0
    activations: int = 0


def _pair(value: Any) -> Any:
    """Accept 3, "3", "1x7", [1, 7] for a (height, width) pair."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:x\s*(\d+))?\s*", value)
        if m:
            a = int(m.group(1))
            return (a, int(m.group(2)) if m.group(2) else a)
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return (value[0], value[0])
    return value


# Sizes torch takes as 32-bit integers in places (cuDNN, ONNX); a kernel, stride or channel count
# of 0 or less, or past this, is refused where it is written instead of failing in torch.
MAX_SIZE = 2**31 - 1
Count = Annotated[int, Field(gt=0, le=MAX_SIZE)]
"""A positive size: channels, features, groups, a kernel or stride side."""
Offset = Annotated[int, Field(ge=0, le=MAX_SIZE)]

Pair = Annotated[tuple[Count, Count], BeforeValidator(_pair)]
"""A positive (height, width) pair: kernel, stride, dilation, output grid."""
PadPair = Annotated[tuple[Offset, Offset], BeforeValidator(_pair)]
"""An explicit (height, width) padding: 0 or more."""
Padding = Union[Literal["same", "valid"], PadPair]


class Fields(BaseModel):
    """Base of every kind's field model: unknown fields are errors, values are immutable."""

    # No inf or nan: ``width=inf`` would fail when rounded, far from where it was written.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NoFields(Fields):
    """The fields of a kind that has none (activations, flatten, identity)."""


# One-line tokens understood by every kind that has the matching field.
KERNEL_RE = re.compile(r"^(\d+)x(\d+)$")
STRIDE_RE = re.compile(r"^/(\d+)$")
NUMBER_RE = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE]-?\d+)?$")
PADDING_WORDS = {"V": "valid", "valid": "valid", "same": "same", "S": "same"}


def parse_scalar(text: str) -> Any:
    """A ``key=value`` value or bare token: number, bool, none, or text."""
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null", "~"):
        return None
    if NUMBER_RE.match(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    return text


class LayerKind:
    """One kind of layer. Subclasses set the class attributes and override the rules."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    fields: ClassVar[type[Fields]]
    # Bare numbers in the one-line form fill these fields in order (``conv 3x3 64``: filters).
    positional: ClassVar[tuple[str, ...]] = ()
    # Bare words in the one-line form and the fields they set (``linear``: no norm, no act, bias).
    words: ClassVar[dict[str, dict[str, Any]]] = {}

    # --- front end ---------------------------------------------------------------------------
    def read_token(self, token: str, positional_left: list[str]) -> dict[str, Any] | None:
        """Fields set by one token of the one-line form, or None if the token means nothing here."""
        names = self.fields.model_fields
        if "=" in token:
            key, _, value = token.partition("=")
            return {key: parse_scalar(value)}
        if token in self.words:
            return dict(self.words[token])
        if "kernel" in names and (m := KERNEL_RE.match(token)):
            return {"kernel": (int(m.group(1)), int(m.group(2)))}
        if "stride" in names and (m := STRIDE_RE.match(token)):
            return {"stride": int(m.group(1))}
        if "padding" in names and token in PADDING_WORDS:
            return {"padding": PADDING_WORDS[token]}
        if NUMBER_RE.match(token) and positional_left:
            return {positional_left.pop(0): parse_scalar(token)}
        return None

    def token_help(self) -> str:
        """What the one-line form accepts, for error messages."""
        names = self.fields.model_fields
        parts = [f"<{p}>" for p in self.positional]
        if "kernel" in names:
            parts.insert(0, "KxK")
        if "stride" in names:
            parts.append("/S")
        if "padding" in names:
            parts.append("V|same")
        parts += sorted(self.words)
        parts.append("field=value")
        return f"{self.name} " + " ".join(parts)

    def prepare(self, f: Fields, shape: Shape) -> Fields:
        """Fill fields that depend on the input (e.g. ``groups: all``). Default: unchanged."""
        return f

    # --- rules every kind must give ----------------------------------------------------------
    def infer(self, f: Any, shape: Shape) -> Shape:
        raise NotImplementedError

    def cost(self, f: Any, shape: Shape, out: Shape) -> LayerCost:
        return LayerCost(activations=_numel(out))

    def build(self, f: Any, shape: Shape, out: Shape) -> nn.Module:
        raise NotImplementedError

    def label(self, f: Any) -> str:
        return self.name

    def source(self, f: Any, shape: Shape, out: Shape) -> Call:
        """The constructor call of this layer in exported source: it must build a module with
        the state-dict keys and the outputs of :meth:`build`."""
        raise NotImplementedError(f"layer kind {self.name!r} has no source form")


# --- exported source (archdsl export) ------------------------------------------------------------


@dataclass(frozen=True)
class Helper:
    """A class that an exported model file defines once, at its top, when a layer uses it."""

    name: str
    code: str
    needs: tuple[Helper, ...] = ()  # helpers its code uses


@dataclass
class Call:
    """A constructor call in exported source: ``callee(*args, **kwargs)``.

    Arguments are Python literals (or nested calls). A keyword argument equal to its entry in
    ``defaults`` is left out of the source (the exporter decides once the calls of every
    instance of a block are known, since a value may vary between them).
    """

    callee: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    helpers: tuple[Helper, ...] = ()
    # Words for the positional arguments: the name of a block class's constructor parameter
    # when an argument varies between the calls and no argument of the block gives it.
    arg_names: tuple[str, ...] = ()


def call_text(call: Call) -> str:
    """A call as source text with literal arguments, keyword arguments at their defaults left
    out (for helper classes' code; the exporter formats the calls of a network itself)."""
    parts = [repr(a) for a in call.args]
    parts += [f"{k}={v!r}" for k, v in call.kwargs.items()
              if not (k in call.defaults and same_value(v, call.defaults[k]))]
    return f"{call.callee}({', '.join(parts)})"


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type (``True`` is not ``1`` in source)."""
    return type(a) is type(b) and a == b


def pair_arg(p: tuple[int, int]) -> int | tuple[int, int]:
    """A (height, width) argument as torch.nn's classes read it: ``3`` for (3, 3)."""
    return p[0] if p[0] == p[1] else tuple(p)  # type: ignore[return-value]


def chain_helper(name: str, doc: str, params: list[str], parts: list[tuple[str, str]],
                 needs: tuple[Helper, ...] = ()) -> Helper:
    """A helper class whose submodules ``parts`` (attribute, constructor) run one after another,
    e.g. ``ConvBnReLU``; ``params`` are its ``__init__`` parameters after ``self``."""
    lines = []
    for attr, expr in parts:
        line = f"        self.{attr} = {expr}"
        if len(line) > 100:  # the project's line length, which the exported file keeps
            callee, _, args = expr.partition("(")
            args = args[:-1]
            if len(args) > 88:
                args = ",\n            ".join(args.split(", ")) + ","
            line = f"        self.{attr} = {callee}(\n            {args}\n        )"
        lines.append(line)
    body = "\n".join(lines)
    chain = "x"
    for attr, _ in parts:
        chain = f"self.{attr}({chain})"
    signature = "    def __init__(self, " + ", ".join(params) + ") -> None:"
    if len(signature) > 100:
        signature = "    def __init__(\n" + "".join(
            f"        {p},\n" for p in ["self", *params]) + "    ) -> None:"
    code = (f'class {name}(nn.Module):\n    """{doc}"""\n\n{signature}\n'
            f"        super().__init__()\n{body}\n\n"
            f"    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        return {chain}\n")
    return Helper(name, code, needs)


def torch_layer(name: str, needs: tuple[Helper, ...] = (), module: str = "torch_layers") -> Helper:
    """A class (or function) of :mod:`archdsl.torch_layers` or another torch module of the
    package, copied from its source text without importing torch, so that the exported file runs
    the very code the built model runs."""
    path = Path(__file__).resolve().parent.parent / f"{module}.py"
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return Helper(name, ast.get_source_segment(text, node) + "\n", needs)
    raise KeyError(f"no class or function {name} in {path}")


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


numel = _numel


def need_image(kind: str, shape: Shape) -> tuple[int, int, int]:
    """Check that a layer that slides over an image gets a C x H x W input."""
    if len(shape) != 3:
        raise LayerError(f"{kind} needs a CxHxW input, got {fmt_shape(shape)}")
    return shape  # type: ignore[return-value]


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def window_out(
    size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int = 1, ceil: bool = False
) -> int:
    """Output length of a sliding window, with PyTorch's rules (including ceil mode's)."""
    span = dilation * (kernel - 1) + 1
    room = size + pad[0] + pad[1] - span
    if room < 0:
        return 0
    if not ceil:
        return room // stride + 1
    out = -(-room // stride) + 1
    # PyTorch drops a last window that would start inside the right padding only.
    if (out - 1) * stride >= size + pad[0]:
        out -= 1
    return out


def resolve_padding(
    kind: str, padding: Any, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)
) -> tuple[int, int]:
    """Symmetric padding per axis: ``valid`` is 0, ``same`` keeps the grid at stride 1."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        pads = []
        for k, d in zip(kernel, dilation, strict=True):
            span = d * (k - 1)
            if span % 2:
                raise LayerError(
                    f"{kind}: 'same' padding of a {fmt_kernel(kernel)} kernel is asymmetric; "
                    "give padding explicitly"
                )
            pads.append(span // 2)
        return (pads[0], pads[1])
    return tuple(padding)  # type: ignore[return-value]


def fmt_kernel(kernel: tuple[int, int]) -> str:
    return f"{kernel[0]}x{kernel[1]}"


def sliding_shape(
    kind: str,
    shape: Shape,
    channels: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    ceil: bool = False,
) -> Shape:
    """Output shape of a conv or pool, with a clear error when the window does not fit."""
    _, h, w = need_image(kind, shape)
    too_much = pad[0] * 2 > kernel[0] * dilation[0] or pad[1] * 2 > kernel[1] * dilation[1]
    if too_much and kind.endswith("pool"):
        # PyTorch refuses this for pooling (a window that sees only padding).
        raise LayerError(
            f"{kind}: padding {pad} is more than half the {fmt_kernel(kernel)} window"
        )
    oh = window_out(h, kernel[0], stride[0], (pad[0], pad[0]), dilation[0], ceil)
    ow = window_out(w, kernel[1], stride[1], (pad[1], pad[1]), dilation[1], ceil)
    if oh <= 0 or ow <= 0:
        padded = f", {h + 2 * pad[0]}x{w + 2 * pad[1]} padded" if any(pad) else ""
        raise LayerError(
            f"{kind}: a {fmt_kernel(kernel)} window does not fit the input grid {h}x{w}{padded}"
        )
    return (channels, oh, ow)
