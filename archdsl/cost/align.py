"""Line up the cost of several specs row by row: by module path, or by grid size.

Two variants of one network share their module paths (``inception_a``, ``conv3_x``), so their
rows pair by path. Two different networks rarely do (Inception-v4's ``inception_a`` is
Inception-ResNet-v2's ``ir_a``); the papers compare them by the grid each stage works on
(35x35, 17x17, 8x8 in Szegedy et al. 2017, Figure 9), so their stages are grouped by grid.

A stage's grid is the spatial size of its output, as the papers label their stages ("Output:
35x35x384", ResNet's "output size" column). The first stage is the ``stem`` when it shrinks the
input's grid (it reads the image and does most of the downsampling, so it has a row of its own);
stages whose output has no spatial size (pooled features, the classifier) are the ``head``.
Every stage is in exactly one group, so the groups add up to the network's total.

``auto`` aligns by path when at least half of all the row paths are found in every spec
(:data:`AUTO_SHARE`), else by grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .report import STAGE, CostReport, Counts, NodeCost, add_up

ALIGNMENTS = ("auto", "grid", "path")
AUTO_SHARE = 0.5  # the share of paths common to all specs above which ``auto`` picks ``path``
STEM, HEAD = "stem", "head"


@dataclass
class AlignedRow:
    """One row of a comparison: a group key and, per spec, its counts and what it holds."""

    key: str  # a module path, a grid ("35x35"), "stem" or "head"
    level: int  # STAGE for grids; the node's level for paths (for indentation)
    counts: list[Counts | None]  # per spec; None where the spec has no such row
    members: list[list[str]]  # per spec: the stage paths grouped here


@dataclass
class Alignment:
    by: str  # "grid" or "path"
    rows: list[AlignedRow]


def grid_key(row: NodeCost, first: bool, input_grid: tuple[int, ...]) -> str:
    """The group of a stage: "stem", "HxW" of its output, or "head"."""
    out = tuple(row.out_shape[1:])
    if len(out) != 2 or out == (1, 1):
        return HEAD
    if first and out != input_grid:
        return STEM
    return f"{out[0]}x{out[1]}"


def by_grid(report: CostReport) -> dict[str, tuple[Counts, list[str]]]:
    """Stage counts summed per grid group, in the order the groups first appear."""
    input_grid = tuple(report.input_shape[1:])
    groups: dict[str, list[NodeCost]] = {}
    for i, stage in enumerate(report.stages):
        groups.setdefault(grid_key(stage, i == 0, input_grid), []).append(stage)
    return {k: (add_up(s.counts for s in v), [s.path for s in v]) for k, v in groups.items()}


def _grid_order(key: str) -> tuple[int, int]:
    """stem first, then the larger grids, the head last."""
    if key == STEM:
        return (0, 0)
    if key == HEAD:
        return (2, 0)
    h, w = key.split("x")
    return (1, -int(h) * int(w))


def path_share(reports: Sequence[CostReport], depth: int) -> float:
    """The share of row paths (over all specs) that every spec has."""
    paths = [{r.path for r in rep.rows(depth)} for rep in reports]
    union = set().union(*paths)
    common = set.intersection(*paths) if paths else set()
    return len(common) / len(union) if union else 1.0


def choose(reports: Sequence[CostReport], depth: int, how: str = "auto") -> str:
    """``how`` itself, or for ``auto`` the alignment the paths suggest."""
    if how not in ALIGNMENTS:
        raise ValueError(f"alignment {how!r}: expected one of {', '.join(ALIGNMENTS)}")
    if how != "auto":
        return how
    return "path" if path_share(reports, depth) >= AUTO_SHARE else "grid"


def align(reports: Sequence[CostReport], depth: int = STAGE, how: str = "auto") -> Alignment:
    """The rows of a side-by-side comparison (``depth`` applies to path alignment only)."""
    by = choose(reports, depth, how)
    if by == "grid":
        groups = [by_grid(rep) for rep in reports]
        keys = sorted(dict.fromkeys(k for g in groups for k in g), key=_grid_order)
        rows = [AlignedRow(k, STAGE, [g[k][0] if k in g else None for g in groups],
                           [g[k][1] if k in g else [] for g in groups]) for k in keys]
        return Alignment(by, rows)
    per_spec = [{r.path: r for r in rep.rows(depth)} for rep in reports]
    order: dict[str, NodeCost] = {}
    for rows_ in per_spec:
        for path, row in rows_.items():
            order.setdefault(path, row)
    rows = [AlignedRow(path, first.level,
                       [r[path].counts if path in r else None for r in per_spec],
                       [[path] if path in r else [] for r in per_spec])
            for path, first in order.items()]
    return Alignment(by, rows)
