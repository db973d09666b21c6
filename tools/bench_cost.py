"""Benchmark: analytic cost from the spec against fvcore tracing the built model.

For every network spec in specs/ (``*_paper.yaml`` files that fail validation by design are
left out), in one run on this machine, best of N runs each:

- ``load+cost``: ``archdsl.load(path).cost()``: read, validate, resolve and count, from the text;
- ``cost``: ``spec.cost()`` on an already-loaded spec (the IR is in memory);
- ``build``: ``spec.build()``, reported on its own and excluded from ``fvcore``;
- ``fvcore``: ``FlopCountAnalysis(model.eval(), x).total()`` on the built model, batch 1.

Ratios are fvcore's time over the analytic one, three ways: ``trace/cost`` (each from its own
in-memory form: IR vs built module), ``trace/load+cost`` (fvcore still gets its model for free),
and end to end from the spec (``build+trace`` vs ``load+cost``). The issue's targets are checked
at the end: >= 100x on Inception-ResNet-v2 and < 50 ms for any single spec (load+cost).

Usage: python tools/bench_cost.py [--repeat 20] [--fvcore-repeat 3] [SPEC ...]
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl import SpecErrors  # noqa: E402

TARGET_SPEC = "inception_resnet_v2"
TARGET_SPEEDUP = 100
TARGET_MS = 50


def best_of(n: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def network_specs(paths: list[str]) -> list[Path]:
    found = [Path(p) for p in paths] or sorted((ROOT / "specs").glob("*.yaml"))
    out = []
    for path in found:
        try:
            archdsl.load(path)
        except SpecErrors:
            if path.stem.endswith("_paper"):
                continue  # rejected by design
            raise
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", help="spec files (default: every spec in specs/)")
    ap.add_argument("--repeat", type=int, default=20, help="runs of the analytic paths")
    ap.add_argument("--fvcore-repeat", type=int, default=3, help="runs of fvcore tracing")
    args = ap.parse_args(argv)

    warnings.simplefilter("ignore")  # torch deprecation chatter on importing fvcore
    logging.disable(logging.WARNING)  # fvcore's "unsupported operator" lines
    import torch  # the reference side only
    from fvcore.nn import FlopCountAnalysis

    def trace(model: torch.nn.Module, x: torch.Tensor) -> int:
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return analysis.total()

    rows = []
    for path in network_specs(args.specs):
        spec = archdsl.load(path)
        t_load_cost = best_of(args.repeat, lambda p=path: archdsl.load(p).cost())
        t_cost = best_of(args.repeat, spec.cost)
        start = time.perf_counter()
        model = spec.build().eval()
        t_build = time.perf_counter() - start
        x = torch.zeros(1, *spec.input_shape)
        with torch.no_grad():
            counted = trace(model, x)
            t_fvcore = best_of(args.fvcore_repeat, lambda m=model, x=x: trace(m, x))
        if counted != spec.cost().total.fvcore:
            print(f"warning: {path.stem}: fvcore counts {counted:,}, the spec "
                  f"{spec.cost().total.fvcore:,}", file=sys.stderr)
        rows.append((path.stem, t_load_cost, t_cost, t_build, t_fvcore))

    print(f"archdsl cost benchmark: best of {args.repeat} (analytic) / {args.fvcore_repeat} "
          f"(fvcore) runs; Python {platform.python_version()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.machine()}")
    head = ("spec", "load+cost ms", "cost ms", "build ms", "fvcore ms", "trace/cost",
            "trace/load+cost", "build+trace/load+cost")
    table = [head]
    for name, lc, c, b, f in rows:
        table.append((name, f"{lc * 1e3:.2f}", f"{c * 1e3:.2f}", f"{b * 1e3:.0f}",
                      f"{f * 1e3:.0f}", f"{f / c:.0f}x", f"{f / lc:.0f}x",
                      f"{(b + f) / lc:.0f}x"))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))

    status = 0
    slowest = max(rows, key=lambda r: r[1])
    ok = slowest[1] * 1e3 < TARGET_MS
    status |= not ok
    print(f"\n{'PASS' if ok else 'FAIL'}: slowest load+cost {slowest[1] * 1e3:.1f} ms "
          f"({slowest[0]}), target < {TARGET_MS} ms")
    for name, lc, c, b, f in rows:
        if name == TARGET_SPEC:
            ok = f / c >= TARGET_SPEEDUP
            status |= not ok
            print(f"{'PASS' if ok else 'FAIL'}: {name}: cost {f / c:.0f}x faster than fvcore "
                  f"tracing (target >= {TARGET_SPEEDUP}x); from the spec text, load+cost is "
                  f"{f / lc:.0f}x faster than tracing alone and {(b + f) / lc:.0f}x faster than "
                  "build+trace")
    return status


if __name__ == "__main__":
    sys.exit(main())
