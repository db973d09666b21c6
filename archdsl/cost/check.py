"""``archdsl cost --check fvcore``: the analytic counts against the built model's.

This is the one cost path that imports torch: it builds the module, counts its parameters and
buffers, and traces it with ``fvcore.nn.FlopCountAnalysis`` in eval mode at batch 1, per module
as well as in total, so that a disagreement is pinned to the node where it starts.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from .report import CostReport


@dataclass
class FvcoreCheck:
    spec: str
    analytic: int  # fvcore-convention count from the IR
    traced: int  # fvcore's total on the built model
    params: int  # analytic
    built_params: int
    buffers: int  # analytic
    built_buffers: int
    seconds: float  # tracing time (building excluded)
    mismatches: list[tuple[str, int, int]] = field(default_factory=list)  # path, ours, fvcore

    @property
    def ok(self) -> bool:
        return (self.analytic == self.traced and self.params == self.built_params
                and self.buffers == self.built_buffers)

    def lines(self) -> list[str]:
        verdict = "equal" if self.ok else "DIFFERENT"
        out = [f"check fvcore: {self.spec}: {verdict}: fvcore flops (MAC-based) analytic "
               f"{self.analytic:,}, traced {self.traced:,} ({self.seconds:.2f} s); params "
               f"analytic {self.params:,}, built {self.built_params:,}; buffers analytic "
               f"{self.buffers:,}, built {self.built_buffers:,}"]
        out += [f"check fvcore: {self.spec}: {path or '<network>'}: analytic {ours:,}, "
                f"fvcore {theirs:,}" for path, ours, theirs in self.mismatches[:10]]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "ok": self.ok, "analytic": self.analytic,
                "traced": self.traced, "params": self.params, "built_params": self.built_params,
                "buffers": self.buffers, "built_buffers": self.built_buffers,
                "trace_seconds": round(self.seconds, 3),
                "mismatches": [{"path": p, "analytic": a, "fvcore": f}
                               for p, a, f in self.mismatches]}


def fvcore_count(model: Any, input_shape: tuple[int, ...]) -> tuple[int, dict[str, int]]:
    """fvcore's total and per-module counts for ``model`` (already in eval mode) at batch 1."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    x = torch.zeros(1, *input_shape)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # "unsupported operator aten::max_pool2d" etc.
        try:
            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            return int(analysis.total()), {k: int(v) for k, v in analysis.by_module().items()}
        finally:
            logging.disable(previous)


def check_fvcore(spec: Any, report: CostReport) -> FvcoreCheck:
    """Build ``spec`` and compare fvcore's count, parameters and buffers with ``report``."""
    from ..usage import UsageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fvcore's imports trip torch deprecation warnings
            import fvcore.nn  # noqa: F401
            import torch  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--check fvcore needs torch and fvcore ({exc})") from None
    model = spec.build().eval()
    start = time.perf_counter()
    traced, by_module = fvcore_count(model, spec.input_shape)
    seconds = time.perf_counter() - start
    mismatches = [(row.path, row.counts.fvcore, by_module.get(row.path, 0))
                  for row in report.rows() if not row.train_only
                  and row.counts.fvcore != by_module.get(row.path, 0)]
    return FvcoreCheck(
        report.name, report.total.fvcore, traced,
        report.total.params, sum(p.numel() for p in model.parameters()),
        report.total.buffers, sum(b.numel() for b in model.buffers()),
        seconds, mismatches)
