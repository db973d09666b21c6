"""Source locations and the errors that carry them.

Every complaint about a spec names the place it comes from as ``file:line:col`` (1-based, as
editors count), so that a user can jump straight to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """A position in a spec file (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, cols: int) -> Loc:
        """The same line, ``cols`` characters further right (a token inside a one-line layer)."""
        return Loc(self.file, self.line, self.col + cols)


UNKNOWN = Loc("<unknown>", 0, 0)

# Characters that end a line for str.splitlines and many readers besides "\n" (U+2028, a form
# feed ...): quoted from a spec into a message, they would cut its `file:line:col:` line in two.
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode() for c in
                "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


@dataclass(frozen=True)
class SpecError:
    """One problem with a spec: where, in which block (``path``), and what."""

    loc: Loc
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.loc}: {where}{self.message}".translate(_LINE_BREAKS)


class SpecErrors(Exception):
    """All the problems found in a spec; raised once, after collecting as many as possible."""

    def __init__(self, errors: list[SpecError]) -> None:
        # In file order, as an editor lists them (the resolver finds them in call order).
        self.errors = sorted(_dedupe(errors), key=lambda e: (e.loc.file, e.loc.line, e.loc.col))
        super().__init__("\n".join(str(e) for e in self.errors))

    @classmethod
    def one(cls, loc: Loc, message: str, path: str = "") -> SpecErrors:
        return cls([SpecError(loc, message, path)])


_REPEAT_RE = re.compile(r"repeat (\d+) of (\d+)")

# The resolver marks each block call of a chain with its line (``unit<SITE>19<SITE>``); a chain
# of nested calls shows them (``stage (line 23) > unit (line 19, repeat 1 of 2) > inner (line
# 13)``), so an error deep inside says which calls led there; a single call needs none.
SITE = "\x1f"
_SITE_RE = re.compile(SITE + r"([^" + SITE + r"]*)" + SITE + r"(?: \((repeat \d+ of \d+)\))?")


def show_chain(path: str) -> str:
    """A call chain as shown: call sites named when calls nest, dropped for a single call."""
    if SITE not in path:
        return path
    if " > " not in path:
        return _SITE_RE.sub(lambda m: f" ({m.group(2)})" if m.group(2) else "", path)

    def site(m: re.Match[str]) -> str:
        at = m.group(1) if ":" in m.group(1) else f"line {m.group(1)}"
        return f" ({at}, {m.group(2)})" if m.group(2) else f" ({at})"

    return _SITE_RE.sub(site, path)


def _dedupe(errors: list[SpecError]) -> list[SpecError]:
    """Drop exact repeats and fold the same error in every repeat of a block into one line.

    A wrong block repeated ten times fails the same way ten times; the first is shown, with
    how many more repeats fail alike.
    """
    groups: dict[tuple[Loc, str, str], list[SpecError]] = {}
    for e in errors:
        key = (e.loc, e.message, _REPEAT_RE.sub("repeat", e.path))
        group = groups.setdefault(key, [])
        if e not in group:
            group.append(e)
    out = []
    for group in groups.values():
        first = group[0]
        if len(group) > 1:
            more = len(group) - 1
            first = SpecError(first.loc, f"{first.message} (and in {more} more "
                                         f"repeat{'s' if more > 1 else ''})", first.path)
        out.append(first)
    return out


class ErrorSink:
    """Collects errors while a pass continues, so that one run reports them all."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def add(self, loc: Loc, message: str, path: str = "") -> None:
        self.errors.append(SpecError(loc, message, show_chain(path)))

    def extend(self, exc: SpecErrors, path: str = "") -> None:
        for e in exc.errors:
            self.errors.append(SpecError(e.loc, e.message, show_chain(e.path or path)))

    def raise_if_any(self) -> None:
        if self.errors:
            raise SpecErrors(self.errors)
