"""What each cost metric means, how its numbers are written, and how budgets are read.

MACs and FLOPs are the most confused units in this field, so every number archdsl prints carries
its unit: a metric's ``unit`` is appended to human-readable values and named in every column
header. JSON and CSV carry exact integers under the metric's key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str  # JSON/CSV key and --metric / --budget name
    header: str  # column header in text and Markdown tables
    unit: str  # appended to a human-readable value
    meaning: str  # one line for the legend


METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("params", "params", "params", "trainable parameters (weights, biases, BN gamma/beta)"),
    Metric("buffers", "buffers", "buffers",
           "non-trainable tensors: BN running mean/var and num_batches_tracked"),
    Metric("macs", "MACs", "MACs",
           "multiply-accumulates of conv and linear layers, bias excluded (torchvision "
           "convention); residual adds and scales count 0"),
    Metric("flops", "FLOPs (2xMACs)", "FLOPs",
           "floating-point operations = 2 x MACs (one multiply and one add per MAC)"),
    Metric("fvcore", "fvcore (MAC-based)", "fvcore flops",
           "fvcore.nn.FlopCountAnalysis(model.eval(), x).total(): MACs + 2 x every BatchNorm "
           "output + every adaptive-average-pool input; counts a MAC as one 'flop'"),
    Metric("activations", "activations", "activations",
           "output elements of every layer (batch 1); concat and residual sums add none"),
)}

# The order of metrics in reports.
ORDER = ("params", "buffers", "macs", "flops", "fvcore", "activations")

_SUFFIXES = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
_QUANTITY_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([kKmMgGtT]?)\s*$")


def human(n: float) -> str:
    """12284251296 -> '12.28 G'; 956 -> '956' (decimal prefixes, four significant digits)."""
    for scale, suffix in _SUFFIXES:
        if abs(n) >= scale:
            return f"{n / scale:.4g} {suffix}"
    return f"{n:.4g}" if isinstance(n, float) else str(n)


def show(metric: str, n: float) -> str:
    """A value with its unit: '12.28 G MACs', '42.68 M params'."""
    return f"{human(n)} {METRICS[metric].unit}"


def parse_quantity(text: str) -> int:
    """'10G' -> 10**10, '40M', '1.5e9', '250k' (decimal K/M/G/T). ValueError when malformed."""
    m = _QUANTITY_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a number like 10G, 40M, 1.5e9")
    value = float(m.group(1)) * 10 ** int(m.group(2) or 0)
    if m.group(3):
        value *= dict((s, k) for k, s in _SUFFIXES)[m.group(3).upper()]
    return round(value)


def ratio(value: int, base: int) -> float | None:
    return value / base if base else None


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.3f}x"
