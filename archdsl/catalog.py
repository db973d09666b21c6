"""One row per network of the library: what ``archdsl list`` shows (no torch).

Each spec is resolved at its own knobs and counted from its IR; "verified" says what the spec is
checked against: ``model`` when it names a reference model (timm / torchvision /
pretrainedmodels, whose parameters, fvcore count and ported outputs the test suite compares),
``counts`` when only published counts are given and all of them hold, ``FAIL`` when one does
not, ``-`` without a reference.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import SpecErrors
from .library import model_names
from .reference import published_checks, references

# The family of a network, by its name (first match); a family's networks share knob names.
FAMILIES = (
    ("inception*", "inception"), ("bn_inception", "inception"), ("googlenet*", "inception"),
    ("xception", "inception"), ("resnet*", "resnet"), ("seresnet*", "resnet"),
    ("plain*", "resnet"), ("vgg*", "vgg"), ("mobilenet*", "mobilenet"), ("lenet*", "lenet"),
    ("alexnet*", "alexnet"), ("regnet*", "regnet"), ("shufflenet*", "shufflenet"),
)


def family(name: str) -> str:
    return next((f for pattern, f in FAMILIES if fnmatch.fnmatchcase(name, pattern)), name)


@dataclass
class Entry:
    """One network of the library, resolved at its own knobs."""

    name: str
    family: str
    input: list[int] = field(default_factory=list)
    params: int | None = None
    macs: int | None = None
    knobs: dict[str, Any] = field(default_factory=dict)
    references: list[str] = field(default_factory=list)  # reference models
    verified: str = "-"
    cites: str = ""
    error: str = ""  # why the spec does not resolve (the *_paper specs, by design)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def entry(name: str) -> Entry:
    from .spec import load

    row = Entry(name, family(name))
    try:
        spec = load(name)
    except SpecErrors as exc:
        row.error = str(exc.errors[0].message) if exc.errors else str(exc)
        row.verified = "rejected"
        return row
    counts = spec.cost().total
    row.input, row.params, row.macs = list(spec.input_shape), counts.params, counts.macs
    row.knobs = dict(spec.params)
    cites = spec.program.doc.cites
    row.cites = "; ".join(cites) if isinstance(cites, list) else (cites or "")
    refs = references(spec)
    row.references = [r.model for r in refs if r.model]
    ours = {"params": counts.params, "macs": counts.macs, "fvcore": counts.fvcore}
    checks = [c for r in refs if r.fits(spec.params) for c in published_checks(r, ours)]
    if checks and not all(c.ok for c in checks):
        row.verified = "FAIL"
    elif row.references:
        row.verified = "model"
    elif checks:
        row.verified = "counts"
    return row


def catalog(pattern: str | None = None, *, families: list[str] | None = None,
            max_params: int | None = None, max_macs: int | None = None) -> list[Entry]:
    """The library's networks matching a name glob, families and limits, by name."""
    rows = [entry(n) for n in model_names(pattern)
            if not families or family(n) in families]
    return [r for r in rows
            if (max_params is None or (r.params is not None and r.params <= max_params))
            and (max_macs is None or (r.macs is not None and r.macs <= max_macs))]
