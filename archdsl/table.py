"""Plain-text and Markdown tables for reports (numbers right-aligned, text left-aligned).

Text tables fit :data:`WIDTH` columns by default, as a terminal shows them: a text column that
is too wide is cut short with ``...``, and when the numbers alone are too wide the table is
split into column blocks, each repeating the first column (as pandas prints wide frames).
Numbers are never cut. ``width=None`` (``--wide``) gives the full table on long lines.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

WIDTH = 100  # default width of text output, in characters
MIN_TEXT = 12  # a text column is never cut narrower than this
KEEP_FIRST = 24  # a first column (the row names, repeated in every block) up to this is kept
GAP = "  "
ELLIPSIS = "..."


def render(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "",
           right: Sequence[bool] | None = None, width: int | None = WIDTH) -> str:
    """A text table; ``right[i]`` right-aligns column i (default: columns of numbers)."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in r] for r in rows]
    if right is None:
        right = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(headers))]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if width is not None:
        _shrink_text(widths, right, width - len(indent))
    blocks = _column_blocks(widths, width - len(indent)) if width is not None else \
        [list(range(len(widths)))]
    out = []
    for cols in blocks:
        lines = []
        for j, r in enumerate(cells):
            parts = [_fit(r[i], widths[i], right[i]) for i in cols]
            lines.append(indent + GAP.join(parts).rstrip())
            if j == 0:
                lines.append(indent + GAP.join("-" * widths[i] for i in cols))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def markdown(headers: Sequence[str], rows: Sequence[Sequence[object]],
             right: Sequence[bool]) -> str:
    """A Markdown table (never cut: a renderer wraps it)."""
    rule = ["---:" if r else "---" for r in right]
    lines = [[str(h) for h in headers], rule, *[[_cell(c) for c in r] for r in rows]]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |"
                     for line in lines)


def wrap(text: str, width: int | None = WIDTH, indent: str = "  ") -> str:
    """Prose lines folded to ``width`` (continuations indented); ``None`` leaves them."""
    if width is None:
        return text
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent=indent + _lead(line),
                      break_long_words=False, break_on_hyphens=False) if len(line) > width
        else line for line in text.split("\n"))


def _lead(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" "))]


def _shrink_text(widths: list[int], right: Sequence[bool], width: int) -> None:
    """Cut the widest text columns until the table fits or none can be cut further."""
    while _total(widths) > width:
        text = [i for i, r in enumerate(right) if not r and widths[i] > MIN_TEXT
                and not (i == 0 and widths[0] <= KEEP_FIRST)]
        if not text:
            return
        widest = max(text, key=lambda i: widths[i])
        widths[widest] = max(MIN_TEXT, widths[widest] - (_total(widths) - width))


def _column_blocks(widths: list[int], width: int) -> list[list[int]]:
    """Columns split into blocks that fit, each block led by the first column."""
    blocks: list[list[int]] = [[0]]
    for i in range(1, len(widths)):
        if len(blocks[-1]) > 1 and _total([widths[j] for j in blocks[-1]] + [widths[i]]) > width:
            blocks.append([0])
        blocks[-1].append(i)
    return blocks


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + len(GAP) * (len(widths) - 1)


def _fit(text: str, w: int, right: bool) -> str:
    if len(text) > w:
        text = text[:w - len(ELLIPSIS)] + ELLIPSIS
    return text.rjust(w) if right else text.ljust(w)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
