"""Cost reports as text, Markdown, JSON and CSV; one spec, or several side by side.

Text and Markdown write human-readable values (``12.28 G``) under headers that name the unit;
JSON and CSV write exact integers under the metric's key. With several specs, every value has
its ratio to the first spec's, and with exactly two a per-node difference column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from ..jsonout import document
from ..layers.base import fmt_shape
from ..table import WIDTH, markdown, wrap
from ..table import render as text_table
from .align import align
from .report import LEVEL_NAMES, STAGE, CostReport, NodeCost
from .units import METRICS, ORDER, fmt_ratio, human, ratio, show

FORMATS = ("text", "md", "json", "csv")
ROW_METRICS = ("params", "macs", "fvcore", "activations")


# --- tables ------------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool],
          md: bool = False, width: int | None = WIDTH) -> str:
    """A Markdown table, or a text one that fits ``width`` (:mod:`archdsl.table`)."""
    if md:
        return markdown(headers, rows, right)
    return text_table(headers, rows, right=right, width=width)


def _node_cell(row: NodeCost, md: bool) -> str:
    pad = ("&emsp;" if md else "  ") * (row.level - 1)
    return pad + (row.path or row.name)


def _signed(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "") + human(abs(n))


def legend(metrics: Sequence[str], md: bool = False, width: int | None = WIDTH) -> str:
    bullet = "- " if md else "  "
    head = "Units:" if not md else "**Units**"
    lines = [f"{bullet}{METRICS[m].header}: {METRICS[m].meaning}" for m in metrics]
    text = "\n".join([head, *lines])
    return text if md else wrap(text, width, "    ")


# --- one spec ------------------------------------------------------------------------------------
def render_one(report: CostReport, depth: int, md: bool = False,
               width: int | None = WIDTH) -> str:
    heads = ["node", "what", "output", "params", "MACs", "% of MACs", "fvcore (MAC-based)",
             "activations"]
    total_macs = report.total.macs
    rows = []
    for row in report.rows(depth):
        c = row.counts
        share = f"{100 * c.macs / total_macs:.1f}%" if total_macs else "n/a"
        rows.append([_node_cell(row, md), row.what, fmt_shape(row.out_shape), human(c.params),
                     human(c.macs), share, human(c.fvcore), human(c.activations)])
    right = [False, False, False, True, True, True, True, True]
    title = (f"{report.name} ({report.path}): input {fmt_shape(report.input_shape)} -> "
             f"output {fmt_shape(report.output_shape)}, per {LEVEL_NAMES[depth]}")
    title = f"### {title}" if md else wrap(title, width)
    return "\n".join([title, "", table(heads, rows, right, md, width), "",
                      wrap(totals(report, md), None if md else width, "         "), "",
                      legend(("params", "macs", "flops", "fvcore", "activations"), md, width)])


def totals(report: CostReport, md: bool = False) -> str:
    t = report.total
    lines = [
        f"{show('params', t.params)} ({t.params:,}) and {show('buffers', t.buffers)} "
        f"({t.buffers:,}); weights {t.weight_mb:.4g} MB as float32",
        f"{show('macs', t.macs)} ({t.macs:,}) = {show('flops', t.flops)} (FLOPs = 2 x MACs)",
        f"{show('fvcore', t.fvcore)} ({t.fvcore:,}; MAC-based: MACs + BatchNorm + adaptive "
        "pooling)",
        f"{show('activations', t.activations)} ({t.activations:,} layer output elements)",
    ]
    if md:
        return "**Total**\n\n" + "\n".join(f"- {line}" for line in lines)
    return "total: " + "\n       ".join(lines)


# --- several specs -------------------------------------------------------------------------------
def spec_labels(reports: Sequence[CostReport]) -> list[str]:
    """Column names: the spec names, made unique when the same name appears twice."""
    labels: list[str] = []
    for r in reports:
        label, n = r.name, 2
        while label in labels:
            label, n = f"{r.name}#{n}", n + 1
        labels.append(label)
    return labels


def ratios(reports: Sequence[CostReport]) -> dict[str, dict[str, float | None]]:
    """Each spec's totals divided by the first spec's, per metric."""
    base = reports[0].total
    return {label: {m: ratio(r.total.get(m), base.get(m)) for m in ORDER}
            for label, r in zip(spec_labels(reports), reports, strict=True)}


def render_many(reports: Sequence[CostReport], depth: int, metric: str, md: bool = False,
                how: str = "auto", width: int | None = WIDTH) -> str:
    labels = spec_labels(reports)
    base = reports[0]
    heads = ["metric"]
    right = [False]
    for i, label in enumerate(labels):
        heads.append(label)
        right.append(True)
        if i:
            heads.append(f"/ {labels[0]}")
            right.append(True)
    rows = []
    for m in ORDER:
        cells = [METRICS[m].header]
        for i, r in enumerate(reports):
            cells.append(show(m, r.total.get(m)))
            if i:
                cells.append(fmt_ratio(ratio(r.total.get(m), base.total.get(m))))
        rows.append(cells)
    title = f"{len(reports)} specs; ratios to {labels[0]}"
    parts = [f"### {title}" if md else title, "", table(heads, rows, right, md, width)]
    parts += ["", per_node(reports, labels, depth, metric, md, how, width), "",
              legend(ORDER, md, width)]
    return "\n".join(parts)


def per_node(reports: Sequence[CostReport], labels: Sequence[str], depth: int, metric: str,
             md: bool = False, how: str = "auto", width: int | None = WIDTH) -> str:
    """One metric per aligned row (:mod:`archdsl.cost.align`), a column per spec."""
    alignment = align(reports, depth, how)
    two = len(reports) == 2
    if two:
        heads = ["grid" if alignment.by == "grid" else "node", *labels, "difference", "ratio"]
    else:
        heads = ["grid" if alignment.by == "grid" else "node", *labels,
                 *(f"{lab} / {labels[0]}" for lab in labels[1:])]
    rows = []
    for row in alignment.rows:
        nums = [c.get(metric) if c is not None else None for c in row.counts]
        pad = ("&emsp;" if md else "  ") * (row.level - 1)
        cells = [pad + row.key] + ["-" if n is None else human(n) for n in nums]
        if two:
            a, b = nums
            cells.append("-" if a is None or b is None else _signed(b - a))
        for n in nums[1:]:
            cells.append("-" if n is None or nums[0] is None else fmt_ratio(ratio(n, nums[0])))
        rows.append(cells)
    unit = METRICS[metric].header
    if alignment.by == "grid":
        title = (f"{unit} per grid (stages grouped by the grid size of their output; "
                 f"--align path pairs module paths)")
    else:
        title = f"{unit} per {LEVEL_NAMES[depth]} (nodes matched by module path)"
    if two:
        title += f"; difference = {labels[1]} - {labels[0]}, ratio = {labels[1]} / {labels[0]}"
    title = f"#### {title}" if md else wrap(title, width)
    parts = [title, "", table(heads, rows, [False] + [True] * (len(heads) - 1), md, width)]
    if alignment.by == "grid":
        members = [f"{label}: " + "; ".join(f"{r.key} = {', '.join(r.members[i])}"
                                            for r in alignment.rows if r.members[i])
                   for i, label in enumerate(labels)]
        parts += ["", *(f"- {m}" if md else wrap(m, width) for m in members)]
    return "\n".join(parts)


# --- machine formats -----------------------------------------------------------------------------
def render_json(reports: Sequence[CostReport], depth: int, extra: dict[str, Any],
                align_by: str = "auto") -> str:
    doc = document("cost", units={m: METRICS[m].meaning for m in ORDER},
                   specs=[r.as_dict(depth) for r in reports])
    if len(reports) > 1:
        doc["ratios_to_first"] = ratios(reports)
        doc["aligned"] = aligned_dict(reports, depth, align_by)
    doc.update(extra)
    return json.dumps(doc, indent=2, default=str) + "\n"


def aligned_dict(reports: Sequence[CostReport], depth: int, how: str) -> dict[str, Any]:
    """The comparison rows as JSON: per row, each spec's exact counts (null where absent)."""
    alignment = align(reports, depth, how)
    labels = spec_labels(reports)
    return {"by": alignment.by, "rows": [
        {"key": r.key, "specs": {label: None if c is None else {**c.as_dict(), "stages": m}
                                 for label, c, m in zip(labels, r.counts, r.members,
                                                        strict=True)}}
        for r in alignment.rows]}


CSV_COLUMNS = ("spec", "level", "path", "name", "kind", "what", "output", *ORDER, "train_only")


def render_csv(reports: Sequence[CostReport], depth: int) -> str:
    """A row per node and a ``total`` row (level ``network``) per spec; exact integers."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    for label, rep in zip(spec_labels(reports), reports, strict=True):
        out.writerow([label, "network", "", "total", "network", rep.path,
                      fmt_shape(rep.output_shape), *rep.total.as_dict().values(), False])
        for row in rep.rows(depth):
            out.writerow([label, LEVEL_NAMES[row.level], row.path, row.name, row.kind, row.what,
                          fmt_shape(row.out_shape), *row.counts.as_dict().values(),
                          row.train_only])
    return buf.getvalue()


def render(reports: Sequence[CostReport], fmt: str, depth: int = STAGE, metric: str = "macs",
           extra: dict[str, Any] | None = None, *, align_by: str = "auto",
           width: int | None = WIDTH) -> str:
    """The whole report in one of :data:`FORMATS` (``extra``: more JSON keys); several specs
    are aligned by ``align_by`` (one of :data:`ALIGNMENTS`); text fits ``width`` columns."""
    if fmt == "json":
        return render_json(reports, depth, extra or {}, align_by)
    if fmt == "csv":
        return render_csv(reports, depth)
    md = fmt == "md"
    if len(reports) == 1:
        return render_one(reports[0], depth, md, width) + "\n"
    return render_many(reports, depth, metric, md, align_by, width) + "\n"
