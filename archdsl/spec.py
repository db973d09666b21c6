"""The public face of a loaded spec: ``archdsl.load(path, **overrides)`` returns a :class:`Spec`.

Loading reads, validates and resolves the spec to the IR; nothing here imports torch until
:meth:`Spec.build` is called.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ir
from .errors import ErrorSink, Loc, SpecErrors
from .expr import evaluate_value
from .knobs import blame_params, override_problems
from .layers.base import Shape, fmt_shape, numel
from .program import Program, read_program
from .resolve import MAX_NODES, Resolver
from .suggest import did_you_mean

if TYPE_CHECKING:
    from torch import nn

    from .cost import CostReport
    from .draw import Diagram

# A spec over these sizes is refused before anything is allocated (``allow_large`` lifts them):
# a typo such as 40960 filters for 4096 should not take the machine down. Counted in values
# (4 bytes each as float32): weights are parameters and buffers; activations are the input and
# every layer's output; one tensor is one layer's weights, the input or one layer's output.
MAX_PARAMS = 2_000_000_000
MAX_ACTIVATIONS = 2_000_000_000
MAX_TENSOR = 500_000_000


@dataclass
class Spec:
    """A resolved spec: the parsed program, the knobs it was resolved with, and its IR."""

    program: Program
    params: dict[str, Any]
    input_shape: Shape
    ir: ir.Seq

    @property
    def name(self) -> str:
        return self.program.doc.name or self.program.path.stem

    @property
    def path(self) -> Path:
        return self.program.path

    @property
    def sources(self) -> dict[str, str]:
        return self.program.sources

    def sha256(self) -> str:
        """One hash over the spec and its libraries, with the knobs it was resolved with."""
        h = hashlib.sha256()
        for name in sorted(self.sources):
            h.update(name.encode() + b"\0" + self.sources[name].encode() + b"\0")
        h.update(repr(sorted(self.params.items())).encode())
        h.update(repr(self.input_shape).encode())
        return h.hexdigest()

    @property
    def output_shape(self) -> Shape:
        return self.ir.out_shape

    @property
    def aux_output_shapes(self) -> dict[str, Shape]:
        """Output shape of each auxiliary head, by the head's path (in spec order)."""
        return {n.path: n.head.out_shape for n in self.ir.items
                if isinstance(n, ir.Aux) and n.head is not None}

    def shapes(self) -> dict[str, Shape]:
        """Inferred output shape of every node (block, structure and layer), by module path."""
        return {n.path: n.out_shape for n in self.ir.walk() if n.path}

    def top_level(self) -> list[ir.Node]:
        return self.ir.items

    def param_count(self) -> int:
        return ir.param_count(self.ir)

    def cost(self) -> CostReport:
        """Parameters, MACs, fvcore flops and activations, totals and per node (no torch)."""
        from .cost import cost_report

        return cost_report(self)

    def build(self) -> nn.Module:
        """The torch module (imports torch)."""
        from .torch_build import build_module

        return build_module(self.ir)

    def draw(self, block: str | None = None, **options: Any) -> Diagram:
        """The overview figure, or ``block``'s; ``options`` are those of
        :class:`archdsl.draw.DrawOptions` (``cost=True``, ``rankdir="LR"``, ...)."""
        from .draw import Diagram, DrawOptions, draw_block, draw_overview

        opts = DrawOptions(**options)
        if block:
            return Diagram(f"{self.name}: {block}", draw_block(self, block, opts))
        return Diagram(self.name, draw_overview(self, opts))

    def __repr__(self) -> str:  # the default would print the whole program and IR
        return (f"<Spec {self.name} ({self.path}): {fmt_shape(self.input_shape)} -> "
                f"{fmt_shape(self.output_shape)}, {self.param_count():,} params>")

    def _repr_html_(self) -> str:
        from .notebook import spec_html

        return spec_html(self)


def load(
    path: str | Path,
    *,
    input: str | Shape | None = None,
    library: list[str | Path] | None = None,
    allow_large: bool = False,
    **overrides: Any,
) -> Spec:
    """Load, validate and resolve a spec; ``overrides`` set its ``params`` (e.g. num_classes).

    ``path`` is a spec file or the name of a network of the library (``"inception_v4"``,
    :func:`archdsl.list_models` lists them).
    """
    prog = read_named(path, library)
    return resolve_program(prog, overrides, input=input, allow_large=allow_large)


def read_named(path: str | Path, library: list[str | Path] | None = None) -> Program:
    """Read a spec file, or the library network of that name (SpecErrors when neither)."""
    from .library import find_spec, shown_name

    try:
        found = find_spec(path)
    except LookupError as exc:
        raise SpecErrors.one(Loc(str(path), 1, 1), str(exc)) from None
    shown = None if found == Path(path) else shown_name(found)
    return read_program(found, library, shown=shown)


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the library's networks, as ``archdsl.load`` takes them; ``pattern`` is a shell
    glob such as ``"resnet*"`` (``timm.list_models`` alike)."""
    from .library import model_names

    return model_names(pattern)


def resolve_program(prog: Program, overrides: dict[str, Any], *,
                    input: str | Shape | None = None, allow_large: bool = False) -> Spec:
    """Resolve a read program with these knobs and this input: :meth:`Program.resolve`."""
    if prog.is_library:
        shown = prog.shown
        prog.check()
        raise SpecErrors.one(Loc(shown, 1, 1), "this file is a library of blocks (it has no "
                                               "'network'); archdsl validate checks it alone")
    sink = ErrorSink()
    sink.errors.extend(prog.errors)
    params = resolve_params(prog, overrides, sink)
    if len(sink.errors) > len(prog.errors) or prog.input is None:
        sink.raise_if_any()  # a missing input was reported when the program was read
    shape = resolve_input(prog, input, params)
    resolver = Resolver(prog, params, sink, MAX_NODES * (10 if allow_large else 1))
    root = resolver.network(shape)
    sink.errors = blame_params(prog, params, overrides, sink.errors)
    sink.raise_if_any()
    assert root is not None
    spec = Spec(prog, params, shape, root)
    if not allow_large:
        check_size(spec)
    return spec


def resolve_params(prog: Program, overrides: dict[str, Any], sink: ErrorSink) -> dict[str, Any]:
    """Evaluate the spec's knobs in order (a knob may use earlier ones), after overrides."""
    shown = prog.shown
    if prog.choices or prog.search:
        # A trial's values: dimensions by name (``stage2.c``) or knob; training knobs do not
        # reach the network.
        aliases = prog.aliases
        train = {c.name for c in prog.choices if not c.architecture}
        train |= set(prog.search.train) if prog.search else set()
        overrides = {aliases.get(k, k): v for k, v in overrides.items() if k not in train}
    for key in overrides:
        if key not in prog.params:
            known = ", ".join(prog.params) or "none"
            sink.add(Loc(shown, 1, 1), f"unknown parameter {key!r} (the spec has {known})"
                                       f"{did_you_mean(key, prog.params, sep='; ')}")
    for key, why in override_problems(prog, overrides).items():
        sink.add(prog.params[key].loc, f"{key}={overrides[key]!r} was given: {why}")
    values: dict[str, Any] = {}
    for key, val in prog.params.items():
        if key in overrides:
            values[key] = overrides[key]
            continue
        try:
            values[key] = evaluate_value(val.value, values)
        except SpecErrors as exc:
            sink.extend(exc)
    return values


_SHAPE_RE = re.compile(r"^\s*\d+(\s*x\s*\d+)*\s*$")


def parse_shape(text: str) -> Shape:
    """'3x224x224' -> (3, 224, 224)."""
    if not _SHAPE_RE.match(text):
        raise ValueError(f"{text!r} is not a shape like 3x224x224")
    return tuple(int(p) for p in text.split("x"))


def resolve_input(prog: Program, given: str | Shape | None, params: dict[str, Any]) -> Shape:
    assert prog.input is not None
    loc = prog.input.loc
    if given is not None:
        loc = Loc("<--input>", 1, 1)
        try:
            shape = parse_shape(given) if isinstance(given, str) else tuple(given)
        except ValueError as exc:
            raise SpecErrors.one(loc, str(exc)) from None
    else:
        raw = evaluate_value(prog.input.value, params)
        try:
            shape = parse_shape(str(raw)) if isinstance(raw, str) else tuple(raw)
        except (ValueError, TypeError) as exc:
            raise SpecErrors.one(loc, str(exc)) from None
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise SpecErrors.one(loc, f"input must be three positive sizes C x H x W, got {shape!r}")
    return shape  # type: ignore[return-value]


def check_size(spec: Spec) -> None:
    """Refuse a network whose tensors would not fit (see MAX_PARAMS, MAX_ACTIVATIONS and
    MAX_TENSOR); the resolver's node budget has already bounded the work to get here."""
    from .cost import totals

    counts = totals(spec.ir)
    weights, inputs = counts.params + counts.buffers, numel(spec.input_shape)
    acts = counts.activations + inputs
    loc = spec.program.network.loc if spec.program.network else Loc(str(spec.path), 1, 1)
    lift = "; pass --allow-large to build it anyway"
    if weights > MAX_PARAMS:
        raise SpecErrors.one(loc, f"the network has {counts.params:,} parameters and "
                                  f"{counts.buffers:,} buffer values, {weights:,} weights over "
                                  f"the limit of {MAX_PARAMS:,}{lift}")
    if acts > MAX_ACTIVATIONS:
        raise SpecErrors.one(loc, f"the network makes {acts:,} activations (input and layer "
                                  f"outputs) for input {fmt_shape(spec.input_shape)}, over the "
                                  f"limit of {MAX_ACTIVATIONS:,}{lift}")
    if inputs > MAX_TENSOR:
        where = spec.program.input.loc if spec.program.input else loc
        raise SpecErrors.one(where, f"the input {fmt_shape(spec.input_shape)} has {inputs:,} "
                                    f"values, over the limit of {MAX_TENSOR:,} for one "
                                    f"tensor{lift}")
    size, layer = ir.largest_layer(spec.ir)
    if size > MAX_TENSOR and layer is not None:
        cost = layer.cost()
        what = "weights" if cost.params + cost.buffers >= cost.activations else "outputs"
        raise SpecErrors.one(layer.loc, f"{layer.kind} at {layer.path}: {size:,} {what}, over "
                                        f"the limit of {MAX_TENSOR:,} values for one "
                                        f"layer{lift}")
