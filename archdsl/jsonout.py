"""The JSON every command prints with ``--format json``: one versioned object per run.

``{"version": 1, "command": "validate", "ok": true, ...}`` where the other keys are the
command's own (documented in docs/json.md). ``version`` changes only when a key is removed or
changes its meaning; new keys may appear in any version. ``ok`` is false exactly when the exit
status is not 0; located errors are listed under ``errors`` as objects with ``file``, ``line``,
``col``, ``message`` and ``path`` (the block path, or "").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from .errors import SpecError

VERSION = 1


def add_format_option(p: argparse.ArgumentParser, *more: str, default: str = "text") -> None:
    """``--format DEFAULT|json`` (plus ``more`` choices of the command)."""
    choices = [default, "json", *more]
    p.add_argument("--format", default=default, choices=choices,
                   help=f"output: {', '.join(choices)} (default {default}; json: "
                        "see docs/json.md)")


def document(command: str, ok: bool = True, **fields: Any) -> dict[str, Any]:
    """The versioned object of one run of ``command``."""
    return {"version": VERSION, "command": command, "ok": ok, **fields}


def dumps(command: str, ok: bool = True, **fields: Any) -> str:
    return json.dumps(document(command, ok, **fields), indent=2, default=str) + "\n"


def emit(command: str, ok: bool = True, **fields: Any) -> None:
    """Print the object on stdout."""
    sys.stdout.write(dumps(command, ok, **fields))


def error_dicts(errors: Iterable[SpecError]) -> list[dict[str, Any]]:
    return [{"file": e.loc.file, "line": e.loc.line, "col": e.loc.col, "message": e.message,
             "path": e.path} for e in errors]
