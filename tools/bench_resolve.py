"""Benchmark: resolving a read program again against reading the file again, and the cost of
many distinct block calls against one repeated call.

Printed side by side in one run, the measurements interleaved round by round (so that the
machine's load falls on all of them alike), medians over the rounds, with the load average:

1. distinct variants of Inception-ResNet-v2 resolved and costed (totals) per second:
   - ``reuse``: ``program.resolve(knobs)`` on a program read once (the reuse API), and
   - ``re-read``: ``archdsl.load(path, **knobs)``, which reads and parses the file each time;
   for two kinds of variants: ``depth`` (repeat counts change, blocks stay: what a depth or
   block-choice search resolves) and ``width`` (every layer's filters change);
2. loading a spec of 10,000 distinct block calls against one of ``x10000`` (target: within 3x).

Targets from the issue: at least 1,000 depth variants a second through the reuse API; 10,000
distinct calls within 3x of ``x10000``.

Usage: python tools/bench_resolve.py [--rounds 5] [--variants 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.cost import totals  # noqa: E402
from archdsl.program import read_program  # noqa: E402

SPEC = ROOT / "specs" / "inception_resnet_v2.yaml"


def per_second(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def calls_spec(folder: Path, distinct: bool, n: int = 10_000) -> Path:
    """A spec of ``n`` calls of a small block: distinct calls, or one call repeated."""
    head = ("name: calls\ninput: [3, 4, 4]\nblocks:\n"
            "  blk: {args: [c], seq: [conv 1x1 $c]}\nnetwork:\n")
    body = "".join(f"  - blk {i % 7 + 1}\n" for i in range(n)) if distinct \
        else f"  - blk 1 x{n}\n"
    path = folder / ("distinct.yaml" if distinct else "repeat.yaml")
    path.write_text(head + body, encoding="utf-8")
    return path


def one_round(r: int, n: int, distinct: Path, repeat: Path) -> dict[str, float]:
    """Every measurement once; round ``r`` uses knob values no round used before, so that
    every variant is a network not resolved yet."""

    def depth(i: int) -> dict[str, float]:
        return {"depth": 0.3 + (r * n + i) * 0.0137 % 2.0, "dropout": (r * n + i) * 1e-6}

    def width(i: int) -> dict[str, float]:
        return {"width": 0.5 + (r * n + i) * 1e-4}

    program = read_program(SPEC)  # read once per round: the reuse API's only file read
    few = max(n // 10, 5)
    row = {
        "depth: reuse": per_second(lambda i: totals(program.resolve(depth(i)).ir), n),
        "depth: re-read": per_second(lambda i: totals(archdsl.load(SPEC, **depth(i)).ir), few),
        "width: reuse": per_second(lambda i: totals(program.resolve(width(i)).ir), few),
        "width: re-read": per_second(lambda i: totals(archdsl.load(SPEC, **width(i)).ir), few),
    }
    start = time.perf_counter()
    archdsl.load(distinct)
    row["10000 distinct calls: s"] = time.perf_counter() - start
    start = time.perf_counter()
    archdsl.load(repeat)
    row["x10000: s"] = time.perf_counter() - start
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", type=int, default=200, help="variants per round and kind")
    args = ap.parse_args(argv)
    n = args.variants
    folder = Path(tempfile.mkdtemp())
    distinct, repeat = calls_spec(folder, True), calls_spec(folder, False)

    results: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for key, value in one_round(r, n, distinct, repeat).items():
            results.setdefault(key, []).append(value)

    med = {k: statistics.median(v) for k, v in results.items()}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"archdsl resolve benchmark: {SPEC.name}, {args.rounds} rounds interleaved, "
          f"medians; load average {load} on {os.cpu_count()} cores")
    print(f"{'variants':<8} {'reuse /s':>10} {'re-read /s':>11} {'ratio':>7}")
    for kind in ("depth", "width"):
        reuse, reread = med[f"{kind}: reuse"], med[f"{kind}: re-read"]
        print(f"{kind:<8} {reuse:>10,.0f} {reread:>11,.0f} {reuse / reread:>6.1f}x")
    d, x = med["10000 distinct calls: s"], med["x10000: s"]
    print(f"10,000 distinct block calls: {d:.3f} s; x10000: {x:.3f} s; ratio {d / x:.2f}x")
    ok_variants = med["depth: reuse"] >= 1000
    ok_calls = d / x <= 3
    print(f"targets: >= 1,000 depth variants/s through reuse: "
          f"{'met' if ok_variants else 'NOT met'}; distinct calls within 3x: "
          f"{'met' if ok_calls else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
