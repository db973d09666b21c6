"""Cost budgets: ``macs=10G,params=40M`` read, and a report checked against them."""

from __future__ import annotations

from dataclasses import dataclass

from .report import CostReport
from .units import METRICS, human, parse_quantity, show


@dataclass(frozen=True)
class BudgetResult:
    spec: str
    metric: str
    limit: int
    value: int

    @property
    def over(self) -> bool:
        return self.value > self.limit

    @property
    def excess(self) -> int:
        return self.value - self.limit

    def message(self) -> str:
        unit = METRICS[self.metric].unit
        if self.over:
            pct = f" (+{100 * self.excess / self.limit:.1f}%)" if self.limit else ""
            return (f"{self.spec}: {self.metric} over budget by {show(self.metric, self.excess)}"
                    f"{pct}: {show(self.metric, self.value)} > {human(self.limit)} {unit}")
        return (f"{self.spec}: {self.metric} within budget: {show(self.metric, self.value)} "
                f"<= {human(self.limit)} {unit}")

    def as_dict(self) -> dict[str, object]:
        return {"spec": self.spec, "metric": self.metric, "limit": self.limit,
                "value": self.value, "over": self.over, "excess": max(self.excess, 0)}


def parse_budget(items: list[str]) -> dict[str, int]:
    """['macs=10G,params=40M'] -> {'macs': 10_000_000_000, 'params': 40_000_000}.

    ValueError with a one-line message when a key or number is wrong.
    """
    out: dict[str, int] = {}
    for item in items:
        for part in item.split(","):
            key, eq, value = part.partition("=")
            key = key.strip().lower()
            if not eq or not key:
                raise ValueError(f"{part!r}: expected METRIC=LIMIT, e.g. macs=10G")
            if key not in METRICS:
                raise ValueError(f"{key!r} is not a metric (one of {', '.join(METRICS)})")
            try:
                out[key] = parse_quantity(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
    return out


def check_budget(report: CostReport, budget: dict[str, int]) -> list[BudgetResult]:
    return [BudgetResult(report.name, metric, limit, report.total.get(metric))
            for metric, limit in budget.items()]
