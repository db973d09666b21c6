"""What Jupyter shows for a Spec or a CostReport: a small HTML table (the stages), not a dump.

Kept small on purpose: a notebook cell showing a report should fit a screen, so only stages
are listed; ``report.to_pandas(depth="layer")`` gives every row.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import ir
from .layers.base import fmt_shape

if TYPE_CHECKING:
    from .cost import CostReport
    from .spec import Spec

MAX_ROWS = 40  # rows shown before "... and N more"


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], caption: str,
               right: Sequence[bool]) -> str:
    def cell(tag: str, value: object, r: bool) -> str:
        align = ' style="text-align:right"' if r else ' style="text-align:left"'
        return f"<{tag}{align}>{html.escape(str(value))}</{tag}>"

    shown = list(rows[:MAX_ROWS])
    more = len(rows) - len(shown)
    body = ["<tr>" + "".join(cell("td", v, r) for v, r in zip(row, right, strict=True)) + "</tr>"
            for row in shown]
    if more:
        body.append(f'<tr><td colspan="{len(headers)}">... and {more} more</td></tr>')
    head = "<tr>" + "".join(cell("th", h, r) for h, r in zip(headers, right, strict=True))
    return (f"<table><caption style=\"text-align:left\">{html.escape(caption)}</caption>"
            f"<thead>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def spec_html(spec: Spec) -> str:
    rows = [(n.name, ir.describe(n), fmt_shape(n.out_shape), f"{ir.param_count(n):,}")
            for n in spec.top_level()]
    caption = (f"{spec.name} ({spec.path}): input {fmt_shape(spec.input_shape)} -> "
               f"{fmt_shape(spec.output_shape)}, {spec.param_count():,} params")
    return html_table(("name", "block", "output", "params"), rows, caption,
                      (False, False, False, True))


def report_html(report: CostReport) -> str:
    from .cost.units import human, show

    t = report.total
    rows = []
    for row in report.stages:
        c = row.counts
        share = f"{100 * c.macs / t.macs:.1f}%" if t.macs else "n/a"
        rows.append((row.path or row.name, row.what, fmt_shape(row.out_shape), human(c.params),
                     human(c.macs), share))
    caption = (f"{report.name}: {show('params', t.params)}, {show('macs', t.macs)}, "
               f"{show('activations', t.activations)} (input {fmt_shape(report.input_shape)})")
    return html_table(("stage", "what", "output", "params", "MACs", "% of MACs"), rows, caption,
                      (False, False, False, True, True, True))
