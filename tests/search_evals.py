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


def arch(model: Any, spec: Any, context: Any) -> dict[str, float]:
    """An "accuracy" that depends on the architecture and the training knobs alone (not on the
    seed, the host or the order of trials) yet is no simple function of size: a hash of the
    built model's layers and the knobs. Sleeps SEARCH_EVAL_SLEEP seconds over 4 steps."""
    import hashlib

    text = f"{model!r} {sorted(context.knobs.items())}"
    accuracy = 0.5 + 0.4 * int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    delay = float(os.environ.get("SEARCH_EVAL_SLEEP", "0"))
    for step in range(1, 5):
        time.sleep(delay / 4)
        context.report(step, accuracy * step / 4)
    return {"accuracy": accuracy}


def costly(model: Any, spec: Any, context: Any) -> dict[str, float]:
    """A curve set by the cost alone: dearer networks are worse at every step (accuracy
    1 - params / 20,000 times step / 4). Stops when told to."""
    params = sum(p.numel() for p in model.parameters())
    final = 1 - params / 20_000
    value = 0.0
    for step in range(1, 5):
        value = final * step / 4
        if context.report(step, value):
            break
    return {"accuracy": value}


def interrupt(model: Any, spec: Any, context: Any) -> dict[str, float]:
    """quick, but Ctrl-C (KeyboardInterrupt) in trial SEARCH_EVAL_INTERRUPT."""
    if str(context.trial_number) == os.environ.get("SEARCH_EVAL_INTERRUPT"):
        context.report(1, 0.1)
        raise KeyboardInterrupt
    return quick(model, spec, context)
