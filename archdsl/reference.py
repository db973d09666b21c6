"""The ``reference:`` block of a spec: what the spec is verified against.

A spec may name, at its top level, one reference or a list of them::

    reference:
      model: timm:inception_v4        # timm:NAME, torchvision:NAME or pretrainedmodels:NAME
      kwargs: {}                      # passed to the reference's constructor (never pretrained)
      set: {aux: true}                # the spec's knobs under which it is this reference
      check_input: 3x160x160          # a smaller input for the equality checks (speed)
      params: 42679816                # published trainable parameters
      macs: 12270000000               # published multiply-accumulates at the spec's input
      fvcore: 12284251296             # fvcore.nn.FlopCountAnalysis total at the spec's input
      rounding: 1000000               # published counts are rounded to this unit (a table's "133M")
      tolerance: 0.02                 # or: agree within this relative error (approximate figures)
      source: timm inception_v4; reference-numbers.md

Every key is optional except that a reference needs a ``model`` or a published number. The
``archdsl port`` command takes its default ``--from`` here, the tests check every reference, and
``tools/models_doc.py`` lists them. No torch here: a reference is only read, never built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import Loc, SpecError, SpecErrors
from .source import YMap, YNode, YSeq, locate

LIBRARIES = ("timm", "torchvision", "pretrainedmodels")


class _ReferenceFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Optional[str] = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    check_input: Optional[str] = None
    params: Optional[int] = Field(None, ge=0)
    macs: Optional[int] = Field(None, ge=0)
    fvcore: Optional[int] = Field(None, ge=0)
    rounding: Optional[float] = Field(None, gt=0)
    tolerance: Optional[float] = Field(None, gt=0, lt=1)
    source: str = ""
    note: str = ""

    @field_validator("model")
    @classmethod
    def _known_library(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            lib, colon, name = v.partition(":")
            if not colon or lib not in LIBRARIES or not name:
                raise ValueError(f"model must be LIBRARY:NAME with LIBRARY one of "
                                 f"{', '.join(LIBRARIES)}, got {v!r}")
        return v

    @field_validator("check_input", mode="before")
    @classmethod
    def _shape_text(cls, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return "x".join(str(d) for d in v)
        return v


@dataclass(frozen=True)
class Reference:
    """One parsed reference of a spec."""

    loc: Loc
    model: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)
    check_input: str | None = None
    params: int | None = None
    macs: int | None = None
    fvcore: int | None = None
    rounding: float | None = None
    tolerance: float | None = None
    source: str = ""
    note: str = ""

    @property
    def library(self) -> str | None:
        return self.model.partition(":")[0] if self.model else None

    @property
    def model_name(self) -> str | None:
        return self.model.partition(":")[2] if self.model else None

    def fits(self, params: dict[str, Any]) -> bool:
        """Whether a spec resolved with these knobs is this reference (its ``set`` holds)."""
        return all(params.get(k) == v for k, v in self.set.items())


def read_references(root: YNode, raw: Union[dict, list, None]) -> list[Reference]:
    """Parse a document's ``reference`` value; errors carry the location of the bad value."""
    if raw is None:
        return []
    yref = root.get("reference") if isinstance(root, YMap) else None
    items = raw if isinstance(raw, list) else [raw]
    out: list[Reference] = []
    errors: list[SpecError] = []
    for i, item in enumerate(items):
        ynode = yref.items[i] if isinstance(yref, YSeq) and i < len(yref.items) else yref
        here = ynode.loc if ynode is not None else Loc("<unknown>", 0, 0)
        try:
            f = _ReferenceFields.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                loc = locate(ynode, tuple(err["loc"])) if ynode is not None else here
                where = ".".join(str(p) for p in err["loc"])
                errors.append(SpecError(loc, f"reference.{where}: {err['msg']}"
                                        if where else f"reference: {err['msg']}"))
            continue
        if f.model is None and f.params is None and f.macs is None and f.fvcore is None:
            errors.append(SpecError(here, "a reference needs a model or a published count "
                                          "(params, macs or fvcore)"))
            continue
        out.append(Reference(here, **f.model_dump()))
    if errors:
        raise SpecErrors(errors)
    return out


def references(spec: Any) -> list[Reference]:
    """The references of a loaded :class:`archdsl.Spec` (or a :class:`Program`)."""
    prog = getattr(spec, "program", spec)
    return read_references(prog.root, prog.doc.reference)


def model_reference(spec: Any) -> Reference | None:
    """The first reference with a model that fits the knobs the spec was loaded with."""
    params = getattr(spec, "params", {})
    for ref in references(spec):
        if ref.model and ref.fits(params):
            return ref
    return None


@dataclass(frozen=True)
class CountCheck:
    """One published count of a reference against the spec's own."""

    metric: str
    ours: int
    published: int
    ok: bool
    how: str  # "=", "rounds to" or "within 2% of"

    def __str__(self) -> str:
        return f"{self.metric} {self.ours:,} {self.how} the published {self.published:,}"


def published_checks(ref: Reference, ours: dict[str, int]) -> list[CountCheck]:
    """Compare ``ours`` (params, macs, fvcore) with the reference's published counts, exactly,
    to the reference's rounding, or within its tolerance."""
    checks = []
    for metric in ("params", "macs", "fvcore"):
        published = getattr(ref, metric)
        if published is None:
            continue
        got = ours[metric]
        if ref.tolerance is not None:
            ok, how = abs(got - published) <= ref.tolerance * published, \
                f"within {ref.tolerance:.0%} of"
        elif ref.rounding is not None:
            ok, how = round(got / ref.rounding) * ref.rounding == published, "rounds to"
        else:
            ok, how = got == published, "="
        checks.append(CountCheck(metric, got, published, ok, how))
    return checks


def eval_counts(spec: Any) -> dict[str, int]:
    """What published figures count: trainable parameters (auxiliary heads included) and
    eval-mode MACs and fvcore (heads left out: they run in training only)."""
    total = spec.cost().total
    return {"params": total.params, "macs": total.macs, "fvcore": total.fvcore}
