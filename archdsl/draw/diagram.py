"""A drawn figure as an object: ``spec.draw()`` in Python, shown inline by Jupyter.

:class:`Diagram` holds the DOT text; ``_repr_svg_`` lays it out with Graphviz when a notebook
shows it, and ``save(path)`` writes it in the format of the file's extension. Without the
``dot`` program the notebook shows a one-line SVG that says so instead of raising.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from .render import RenderError, format_of, render_bytes, write_figure


@dataclass
class Diagram:
    """A figure of a spec: its DOT text and what it shows."""

    title: str  # "inception_v4" or "inception_v4: inception_c"
    dot: str

    def svg(self) -> str:
        """The figure laid out by Graphviz as SVG text (RenderError without Graphviz)."""
        return render_bytes(self.dot, "svg").decode("utf-8")

    def save(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write the figure (svg, png, pdf or dot; by default from the extension), atomically."""
        write_figure(self.dot, path, format_of(path, fmt))
        return Path(path)

    def _repr_svg_(self) -> str:
        try:
            return self.svg()
        except RenderError as exc:
            return _message_svg(f"{self.title}: cannot lay out the diagram: {exc}")

    def __repr__(self) -> str:
        return f"<Diagram {self.title}: {self.dot.count(chr(10))} lines of DOT>"


def _message_svg(text: str) -> str:
    width = 7 * len(text) + 20
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="30">'
            f'<text x="10" y="20" font-family="sans-serif" font-size="12">'
            f"{html.escape(text)}</text></svg>")
