"""The network library that ships with archdsl: specs by name, and where includes are found.

The specs live in ``specs/`` at the top of the source tree (``specs/lib/`` holds the shared block
libraries); a built wheel carries the same files as the package data ``archdsl/library/`` (see
setup.py). :func:`library_dir` finds whichever this installation has, so a name such as
``inception_v4`` and an include such as ``lib/resnet.yaml`` work the same from a clone, an
editable install and a wheel.

An include is looked for, in this order: next to the including file, in each ``--library``
folder, then in the package's library. Includes never leave those folders (see program.py).
Among a program's sources (what checkpoints carry and spec hashes cover) the library's files are
named ``archdsl:resnet50.yaml``, ``archdsl:lib/resnet.yaml``: not by where they are installed.
"""

from __future__ import annotations

import fnmatch
import os
from functools import lru_cache
from pathlib import Path

from .suggest import did_you_mean

SPEC_SUFFIX = ".yaml"
# How a file of the package's library is named among a program's sources (and so in checkpoints
# and spec hashes): ``archdsl:lib/resnet.yaml``, the same from every clone and installation.
SOURCE_PREFIX = "archdsl:"


@lru_cache(maxsize=1)
def library_dir() -> Path:
    """The folder of the packaged specs: ``archdsl/library`` in a wheel, ``specs/`` in a clone."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "library", here.parent / "specs"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"archdsl's network library is missing (looked in {here / 'library'} "
                       f"and {here.parent / 'specs'}): a broken installation")


def model_names(pattern: str | None = None) -> list[str]:
    """Names of the library's networks (``lib/`` block libraries left out), sorted; ``pattern``
    is a shell glob such as ``"resnet*"``."""
    names = sorted(p.stem for p in library_dir().glob(f"*{SPEC_SUFFIX}"))
    return [n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern)]


def is_name(text: str) -> bool:
    """Whether ``text`` reads as a library name rather than a path (no folder, no suffix)."""
    return bool(text) and os.sep not in text and "/" not in text and not text.endswith(
        (SPEC_SUFFIX, ".yml"))


def spec_path(name: str) -> Path:
    """The packaged spec called ``name``; LookupError (with did-you-mean) when there is none."""
    if not is_name(name):
        raise LookupError(f"{name}: no such spec file")
    path = library_dir() / f"{name}{SPEC_SUFFIX}"
    if path.is_file():
        return path
    raise LookupError(f"{name!r} is neither a spec file nor a network of the library"
                      f"{did_you_mean(name, model_names(), sep='; ')} "
                      "(archdsl list shows the library)")


def find_spec(text: str | os.PathLike[str]) -> Path:
    """A spec given as a path, or as the name of a library network (a file of that name in the
    current folder wins). LookupError when it is neither."""
    path = Path(text)
    if path.is_file():
        return path
    return spec_path(str(text))


def source_name(path: Path, shown: str) -> str:
    """The name a spec file has among a program's sources: ``archdsl:`` and its path relative
    to the package's library for a file of that library (so a spec hashes the same wherever
    archdsl is installed), ``shown`` (the name in messages) for any other file."""
    try:
        relative = path.resolve().relative_to(library_dir())
    except (OSError, RuntimeError, ValueError):
        return shown
    return SOURCE_PREFIX + relative.as_posix()


def shown_name(path: Path) -> str:
    """How a library spec is named in messages: relative to the current folder when under it."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)
