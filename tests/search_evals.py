"""Evaluation functions for the search tests (``--eval search_evals:quick`` with tests/ on the
path): fast and deterministic, no data set."""

from __future__ import annotations

import os
import time
from typing import Any


def quick(model: Any, spec: Any, context: Any) -> dict[str, float]:
    """An "accuracy" that grows with the parameter count; sleeps SEARCH_EVAL_SLEEP seconds."""
    params = sum(p.numel() for p in model.parameters())
    delay = float(os.environ.get("SEARCH_EVAL_SLEEP", "0"))
    steps = 4
    for step in range(1, steps + 1):
        time.sleep(delay / steps)
        context.report(step, step / steps)
    (context.scratch / "seen.txt").write_text(f"{context.seed} {sorted(context.knobs)}\n")
    return {"accuracy": params / (params + 10_000.0), "pid": float(os.getpid())}


def broken(model: Any, spec: Any, context: Any) -> dict[str, float]:
    raise ValueError("this evaluation always fails")
