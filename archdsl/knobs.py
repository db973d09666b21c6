"""Knob values blamed where they are set: a ``--set`` value of the wrong kind, and a ``params``
entry whose value a layer cannot use.

A knob's default says what kind of value it takes: ``--set n=five`` for ``n: 3`` is refused as
``--set n=five: n must be an integer (its default 3 in x.yaml:5:6 is one)`` before anything is
resolved. Numbers are one kind (``width: 1`` takes 0.5) and true/false another; a knob whose
default is text, a list or null takes anything (a text default may itself be the mistake).

A wrong value written under ``params`` (``num_classes: ten``) only fails where a layer uses it;
that error then also names the params entry, and the entry gets an error of its own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .errors import Loc, SpecError
from .expr import evaluate_value

if TYPE_CHECKING:
    from .program import Program


def kind(value: Any) -> str | None:
    """What a default asks for, in words; None when anything goes."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return None


def fits(value: Any, default: Any) -> bool:
    want = kind(default)
    if want in ("an integer", "a number"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want == "true or false":
        return isinstance(value, bool)
    return True


def defaults(prog: Program) -> dict[str, tuple[Any, Loc]]:
    """Each knob's default value (evaluated in order) and where it is written."""
    values: dict[str, Any] = {}
    out: dict[str, tuple[Any, Loc]] = {}
    for key, val in prog.params.items():
        try:
            values[key] = evaluate_value(val.value, values)
        except Exception:  # noqa: BLE001 -- reported when the spec is resolved
            continue
        out[key] = (values[key], val.loc)
    return out


def override_problems(prog: Program, overrides: dict[str, Any]) -> dict[str, str]:
    """``{knob: "n must be an integer (its default 3 in x.yaml:5:6 is one)"}`` for each
    override whose kind differs from its default's."""
    known = defaults(prog)
    out = {}
    for key, value in overrides.items():
        if key in known and not fits(value, known[key][0]):
            default, loc = known[key]
            out[key] = (f"{key} must be {kind(default)} (its default {_show(default)} in {loc} "
                        f"is one)")
    return out


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


_NUMERIC_COMPLAINT = re.compile(r"integer|number|float")


def blame_params(prog: Program, params: dict[str, Any], overrides: dict[str, Any],
                 errors: list[SpecError]) -> list[SpecError]:
    """Errors at uses of a text-valued knob where a number was wanted, told again at the
    ``params`` entry that set it (the use's error names the entry too)."""
    text_knobs = {k for k, v in params.items()
                  if isinstance(v, str) and k in prog.params and k not in overrides}
    if not text_knobs:
        return errors
    out = []
    for err in errors:
        used = _knobs_used(prog, err.loc, text_knobs)
        if not used or not _NUMERIC_COMPLAINT.search(err.message):
            out.append(err)
            continue
        entries = ", ".join(f"params: {k}: {params[k]!r} at {prog.params[k].loc}" for k in used)
        out.append(SpecError(err.loc, f"{err.message} (the value comes from {entries})",
                             err.path))
        for k in used:
            out.append(SpecError(prog.params[k].loc, f"params: {k}: {params[k]!r} is text, but "
                                 f"{err.loc} uses it as a number", ""))
    return out


def _knobs_used(prog: Program, loc: Loc, names: set[str]) -> list[str]:
    """The knobs of ``names`` that the source line at ``loc`` refers to with ``$``."""
    text = prog.sources.get(loc.file)
    if text is None or loc.line < 1:
        return []
    lines = text.split("\n")
    if loc.line > len(lines):
        return []
    line = lines[loc.line - 1]
    refs = set(re.findall(r"\$([A-Za-z_]\w*)", line))
    for inner in re.findall(r"\$\(([^)]*)\)", line):
        refs |= set(re.findall(r"[A-Za-z_]\w*", inner))
    return sorted(refs & names)
