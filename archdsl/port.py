"""Porting weights from a reference implementation into a model built from a spec.

``port_weights(spec_or_module, source)`` pairs the tensors of the two state dicts (parameters and
buffers, batch-norm running statistics included; ``num_batches_tracked`` counters are left out
on both sides, as old checkpoints lack them) by structure, never by name, and copies them.

How tensors are paired
----------------------
Both state dicts list tensors in module registration order. Ours is taken as a flat list. The
reference's dotted names give its module tree: each module holds its own tensors (one unit, kept
in order) and its submodules (units that may move). The matcher walks the reference tree
against our list:

* a module's units are taken in registration order whenever the next one fits (all its tensors,
  recursively, have the shapes of our next tensors);
* when it does not fit, the other not yet used units of the *same* module are tried at that
  place; if exactly one fits, it is taken there (a local reordering, reported), and the walk goes
  on. This covers references that register a residual block's shortcut before its body (timm's
  ``legacy_xception``: ``skip``, ``skipbn``, ``rep``), where our ``Residual`` registers the body
  first; torchvision's ResNets register ``downsample`` after the body, as we do.
* if none fits, or several do (shapes cannot tell them apart), nothing is guessed: the unit is
  kept in place and the positions where shapes then differ are reported as mismatches.

Reordering never crosses a module boundary of the reference, and a unit that moves must match
in full, so a pairing that is accepted is one the shapes leave no doubt about.

A port with any mismatch or left-over tensor is refused (:class:`PortError`, carrying the
report) unless ``partial=True``, which copies the pairs before the first mismatch only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .layers.base import fmt_shape

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .spec import Spec

Shape = tuple[int, ...]
IGNORED_SUFFIXES = ("num_batches_tracked",)


class PortError(Exception):
    """The weights cannot be ported (bad source, or tensors that do not pair)."""

    def __init__(self, message: str, report: PortReport | None = None) -> None:
        super().__init__(message)
        self.report = report


# --- the structural matcher (pure Python: names and shapes) ------------------------------------

@dataclass
class _Module:
    """A module of the reference: its units are leaf groups (tensor indices) and submodules."""

    prefix: str
    units: list[_Module | list[int]] = field(default_factory=list)


def _module_tree(names: list[str]) -> _Module:
    root = _Module("")
    by_prefix = {"": root}
    for i, name in enumerate(names):
        parts = name.split(".")
        node = root
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            child = by_prefix.get(prefix)
            if child is None:
                child = by_prefix[prefix] = _Module(prefix)
                node.units.append(child)
            node = child
        if node.units and isinstance(node.units[-1], list):
            node.units[-1].append(i)
        else:
            node.units.append([i])
    return root


def _unit_name(unit: _Module | list[int], names: list[str]) -> str:
    return unit.prefix if isinstance(unit, _Module) else names[unit[0]]


@dataclass
class Alignment:
    """The reference's tensors in the order that pairs them with ours, and what was done."""

    order: list[int]  # indices into the reference list, one per position of ours
    reordered: list[str]  # local reorderings taken
    doubts: list[str]  # places where several units fitted (ambiguous, not reordered)


class _Matcher:
    def __init__(self, ours: list[Shape], theirs: list[Shape], names: list[str]) -> None:
        self.ours, self.theirs, self.names = ours, theirs, names
        self._fits: dict[tuple[int, int], list[int] | None] = {}

    def fit(self, unit: _Module | list[int], pos: int) -> list[int] | None:
        """The reference indices of ``unit`` in the order that matches ours from ``pos``, or
        None. Memoised: each unit is tried at each position once."""
        key = (id(unit), pos)
        if key not in self._fits:
            self._fits[key] = self._fit(unit, pos)
        return self._fits[key]

    def _fit(self, unit: _Module | list[int], pos: int) -> list[int] | None:
        if isinstance(unit, list):
            end = pos + len(unit)
            if end > len(self.ours):
                return None
            ok = all(self.ours[pos + k] == self.theirs[i] for k, i in enumerate(unit))
            return list(unit) if ok else None
        out: list[int] = []
        left = list(unit.units)
        while left:
            chosen = self._choose(left, pos + len(out))
            if chosen is None:
                return None
            got, at = chosen
            out += got
            del left[at]
        return out

    def _choose(self, left: list, pos: int) -> tuple[list[int], int] | None:
        first = self.fit(left[0], pos)
        if first is not None:
            return first, 0
        hits = [(got, k) for k, u in enumerate(left[1:], 1) if (got := self.fit(u, pos))]
        return hits[0] if len(hits) == 1 else None

    def order(self, unit: _Module | list[int], pos: int, out: Alignment) -> int:
        """Best-effort walk that never fails: appends to ``out.order``; returns the new pos."""
        if isinstance(unit, list):
            out.order += unit
            return pos + len(unit)
        left = list(unit.units)
        while left:
            k = 0 if self.fit(left[0], pos) is not None else None
            if k is None:
                hits = [j for j, u in enumerate(left[1:], 1) if self.fit(u, pos) is not None]
                if len(hits) == 1:
                    k = hits[0]
                    out.reordered.append(f"{_unit_name(left[k], self.names)} paired before "
                                         f"{_unit_name(left[0], self.names)}")
                elif hits:  # (when nothing fits, the mismatches themselves say where)
                    which = ", ".join(_unit_name(left[j], self.names) for j in hits)
                    out.doubts.append(f"at our tensor {pos}: {which} all fit (ambiguous)")
            # Recursing (also into a unit that fits) records the reorderings made inside it.
            pos = self.order(left[k or 0], pos, out)
            del left[k or 0]
        return pos


def align(ours: list[Shape], theirs: list[tuple[str, Shape]]) -> Alignment:
    """Order the reference's (name, shape) list to pair with our shapes (module docstring)."""
    names = [n for n, _ in theirs]
    matcher = _Matcher(ours, [s for _, s in theirs], names)
    out = Alignment([], [], [])
    matcher.order(_module_tree(names), 0, out)
    return out


# --- the report -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    index: int  # position in our state dict (num_batches_tracked left out)
    ours: str
    ours_shape: Shape
    theirs: str
    theirs_shape: Shape

    def __str__(self) -> str:
        return (f"#{self.index}: ours {self.ours} {fmt_shape(self.ours_shape) or 'scalar'}"
                f" vs reference {self.theirs} {fmt_shape(self.theirs_shape) or 'scalar'}")


@dataclass
class PortReport:
    """What a port paired, and everything that did not pair."""

    source: str
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (ours, reference) names
    mismatches: list[Mismatch] = field(default_factory=list)
    left_ours: list[tuple[str, Shape]] = field(default_factory=list)
    left_theirs: list[tuple[str, Shape]] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)
    ignored: int = 0  # num_batches_tracked entries left out
    copied: int = 0  # tensors actually written into the model
    elements: int = 0  # numbers copied
    model: Any = None  # the model the weights went into

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.left_ours or self.left_theirs)

    def summary(self, limit: int = 20) -> str:
        lines = [f"from {self.source}: {len(self.pairs)} tensors paired, "
                 f"{len(self.mismatches)} mismatched, {len(self.left_ours)} of ours and "
                 f"{len(self.left_theirs)} of the reference left over "
                 f"({self.ignored} num_batches_tracked ignored)"]
        lines += [f"  reordered: {r}" for r in self.reordered]
        lines += [f"  {d}" for d in self.doubts[:limit]]
        lines += [f"  mismatch {m}" for m in self.mismatches[:limit]]
        if len(self.mismatches) > limit:
            lines.append(f"  ... and {len(self.mismatches) - limit} more mismatches")
        for side, left in (("ours", self.left_ours), ("reference", self.left_theirs)):
            shown = ", ".join(f"{n} {fmt_shape(s)}" for n, s in left[:5])
            if left:
                more = f", ... ({len(left) - 5} more)" if len(left) > 5 else ""
                lines.append(f"  left over in {side}: {shown}{more}")
        if self.copied:
            lines.append(f"  copied {self.copied} tensors ({self.elements:,} numbers)")
        return "\n".join(lines)


def pair_up(ours: list[tuple[str, Shape]], theirs: list[tuple[str, Shape]],
            source: str = "") -> PortReport:
    """Pair two (name, shape) lists structurally; the report lists every mismatch."""
    al = align([s for _, s in ours], theirs)
    ordered = [theirs[i] for i in al.order]
    report = PortReport(source, reordered=al.reordered, doubts=al.doubts)
    for k in range(min(len(ours), len(ordered))):
        (a, sa), (b, sb) = ours[k], ordered[k]
        if sa == sb:
            report.pairs.append((a, b))
        else:
            report.mismatches.append(Mismatch(k, a, sa, b, sb))
    report.left_ours = ours[len(ordered):]
    report.left_theirs = ordered[len(ours):]
    return report


# --- torch side -------------------------------------------------------------------------------

def reference_model(model: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Build ``timm:NAME``, ``torchvision:NAME`` or ``pretrainedmodels:NAME`` without weights."""
    lib, _, name = model.partition(":")
    kw = dict(kwargs or {})
    try:
        if lib == "timm":
            import timm

            if name not in timm.list_models():
                raise PortError(f"timm has no model {name!r}")
            return timm.create_model(name, pretrained=False, **kw)
        if lib == "torchvision":
            import torchvision

            if name not in torchvision.models.list_models():
                raise PortError(f"torchvision has no model {name!r}")
            return torchvision.models.get_model(name, weights=None, **kw)
        if lib == "pretrainedmodels":
            import pretrainedmodels

            if name not in pretrainedmodels.model_names:
                raise PortError(f"pretrainedmodels has no model {name!r}")
            return getattr(pretrainedmodels, name)(pretrained=None, **kw)
    except ImportError as exc:
        raise PortError(f"{model}: cannot import {lib} ({exc})") from None
    except TypeError as exc:
        raise PortError(f"{model}: bad constructor arguments {kw}: {exc}") from None
    raise PortError(f"unknown source {model!r}: expected timm:NAME, torchvision:NAME, "
                    "pretrainedmodels:NAME or a state-dict file")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file: a plain state dict, an archdsl checkpoint (``state_dict``), or
    a training checkpoint with ``model``; ``.safetensors`` files too. No code is unpickled."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise PortError(f"{path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is one clear message
        raise PortError(f"{path}: not a readable state dict ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor)
                                                for v in data.values()):
        raise PortError(f"{path}: holds no state dict (a mapping of names to tensors)")
    return dict(data)


def _source_state(source: Any, kwargs: Mapping[str, Any] | None) -> tuple[str, Mapping]:
    from torch import nn

    if isinstance(source, nn.Module):
        return type(source).__name__, source.state_dict()
    if isinstance(source, Mapping):
        return "a state dict", source
    text = str(source)
    if ":" in text and text.partition(":")[0] in ("timm", "torchvision", "pretrainedmodels"):
        return text, reference_model(text, kwargs).state_dict()
    return text, read_state_dict(text)


def _entries(state: Mapping[str, Any]) -> tuple[list[tuple[str, Shape]], int]:
    kept = [(k, tuple(v.shape)) for k, v in state.items()
            if not k.endswith(IGNORED_SUFFIXES)]
    return kept, len(state) - len(kept)


def port_weights(target: Spec | nn.Module, source: Any = None, *,
                 kwargs: Mapping[str, Any] | None = None, partial: bool = False) -> PortReport:
    """Copy a reference's weights into ``target`` (a Spec, which is built, or a module).

    ``source``: ``timm:NAME`` / ``torchvision:NAME`` / ``pretrainedmodels:NAME`` (built with
    ``pretrained=False`` and ``kwargs``), a state-dict file, an ``nn.Module`` or a state dict;
    by default the spec's ``reference`` model. Raises :class:`PortError` when anything does not
    pair, unless ``partial`` (then the pairs before the first mismatch are copied).
    The report's ``model`` is the model the weights went into.
    """
    import torch
    from torch import nn

    if source is None and not isinstance(target, nn.Module):
        from .reference import model_reference

        ref = model_reference(target)
        if ref is None:
            raise PortError(f"{target.path}: the spec names no reference model for these "
                            "knobs; give a source (timm:NAME, torchvision:NAME or a file)")
        source, kwargs = ref.model, {**ref.kwargs, **(kwargs or {})}
    if source is None:
        raise PortError("no source to port from")
    name, theirs_state = _source_state(source, kwargs)  # first: a bad source fails fast
    model = target if isinstance(target, nn.Module) else target.build()
    ours_state = model.state_dict(keep_vars=True)
    ours, ignored = _entries(ours_state)
    theirs, ignored_theirs = _entries(theirs_state)
    report = pair_up(ours, theirs, name)
    report.ignored = ignored + ignored_theirs
    report.model = model
    if not report.ok and not partial:
        raise PortError(f"cannot port from {name}: the tensors do not pair up", report)
    limit = report.mismatches[0].index if report.mismatches else len(report.pairs)
    with torch.no_grad():
        for ours_name, theirs_name in report.pairs[:limit]:
            dest, src = ours_state[ours_name], theirs_state[theirs_name]
            dest.copy_(src.detach().to(dest.device))
            report.copied += 1
            report.elements += dest.numel()
    return report


def randomise_norm_statistics(model: Any) -> None:
    """Give every batch norm running statistics and affine parameters that are not the
    identity, so that a port that swapped two of them would change the outputs (imports torch).
    """
    import torch
    from torch import nn

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)
