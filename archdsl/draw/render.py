"""DOT text to a file: as is (``dot``), or laid out by the Graphviz ``dot`` program.

Output is atomic: a figure is written whole or not at all, also when ``dot`` is missing or fails.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..atomic import atomic_path, write_text_atomic

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = ("the Graphviz `dot` program is not installed "
                "(apt-get install graphviz / brew install graphviz)")
TIMEOUT_S = 120


class RenderError(Exception):
    """Graphviz is missing or failed (one-line message)."""


def find_dot(which: Callable[[str], str | None] = shutil.which) -> str:
    """The path of the ``dot`` program, or RenderError saying how to install it."""
    path = which("dot")
    if not path:
        raise RenderError(INSTALL_HINT)
    return path


def format_of(path: str | Path, given: str | None) -> str:
    """The output format: the one given, else the file's extension, else svg."""
    if given:
        return given
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix == "gv":
        return "dot"
    return suffix if suffix in FORMATS else "svg"


def render_bytes(dot_text: str, fmt: str, *, dot: str | None = None, dpi: int | None = None,
                 which: Callable[[str], str | None] = shutil.which) -> bytes:
    """Lay out ``dot_text`` with Graphviz into ``fmt`` (svg, png or pdf)."""
    if fmt not in FORMATS or fmt == "dot":
        raise ValueError(f"cannot render to {fmt!r}")
    program = dot or find_dot(which)
    cmd = [program, f"-T{fmt}"]
    if dpi and fmt == "png":
        cmd.append(f"-Gdpi={dpi}")
    try:
        done = subprocess.run(cmd, input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise RenderError(INSTALL_HINT) from None
    except subprocess.TimeoutExpired:
        raise RenderError(f"Graphviz `dot` took over {TIMEOUT_S} s and was stopped") from None
    if done.returncode != 0 or not done.stdout:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"Graphviz `dot` failed: {why[0] if why else 'no output'}")
    return done.stdout


def write_figure(dot_text: str, target: str | Path, fmt: str, *, dot: str | None = None,
                 dpi: int | None = None,
                 which: Callable[[str], str | None] = shutil.which) -> None:
    """Write the figure to ``target`` atomically, as DOT text or rendered by Graphviz."""
    if fmt == "dot":
        write_text_atomic(target, dot_text)
        return
    data = render_bytes(dot_text, fmt, dot=dot, dpi=dpi, which=which)  # before touching target
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
