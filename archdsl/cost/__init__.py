"""Cost from the spec: parameters, MACs/FLOPs, fvcore's count and activations, from the IR alone.

``archdsl.load(path).cost()`` gives a :class:`CostReport`; :func:`render` writes it as text,
Markdown, JSON or CSV. Nothing here imports torch (only ``archdsl cost --check fvcore`` does).
"""

from __future__ import annotations

from .align import ALIGNMENTS, Alignment, align, by_grid
from .budget import BudgetResult, check_budget, parse_budget
from .render import FORMATS, render
from .report import BLOCK, LAYER, STAGE, CostReport, Counts, NodeCost, cost_report, totals
from .units import METRICS, ORDER, human, parse_quantity, show

__all__ = [
    "ALIGNMENTS", "BLOCK", "FORMATS", "LAYER", "METRICS", "ORDER", "STAGE", "Alignment",
    "BudgetResult", "CostReport", "Counts", "NodeCost", "align", "by_grid", "check_budget",
    "cost_report", "human", "parse_budget", "parse_quantity", "render", "show", "totals",
]
