"""Source locations and the errors that carry them.

Every complaint about a spec names the place it comes from as ``file:line:col`` (1-based, as
editors count), so that a user can jump straight to it.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class SpecError:
    """One problem with a spec: where, in which block (``path``), and what."""

    loc: Loc
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.loc}: {where}{self.message}"


class SpecErrors(Exception):
    """All the problems found in a spec; raised once, after collecting as many as possible."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = _dedupe(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    @classmethod
    def one(cls, loc: Loc, message: str, path: str = "") -> SpecErrors:
        return cls([SpecError(loc, message, path)])


def _dedupe(errors: list[SpecError]) -> list[SpecError]:
    """Drop exact repeats (the same error reported through two routes), keeping order."""
    seen: set[SpecError] = set()
    out = []
    for e in errors:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


class ErrorSink:
    """Collects errors while a pass continues, so that one run reports them all."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def add(self, loc: Loc, message: str, path: str = "") -> None:
        self.errors.append(SpecError(loc, message, path))

    def extend(self, exc: SpecErrors, path: str = "") -> None:
        for e in exc.errors:
            self.errors.append(SpecError(e.loc, e.message, e.path or path))

    def raise_if_any(self) -> None:
        if self.errors:
            raise SpecErrors(self.errors)
