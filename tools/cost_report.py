"""Write docs/cost-report.md: the Inception-v4 paper's two cost claims, checked from the specs.

Szegedy et al. 2017 (arXiv:1602.07261), section 3.2, designed Inception-ResNet-v1 to have
"roughly the computational cost of Inception-v3" and Inception-ResNet-v2 to match "the raw cost"
of Inception-v4, without giving numbers. This script counts the four networks from their specs
(IR only, no torch), prints the ratios, breaks the cost down by grid size, and asks
``archdsl match`` which width multiplier would make each residual network match exactly.

Usage: python tools/cost_report.py [-o docs/cost-report.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.atomic import write_text_atomic  # noqa: E402
from archdsl.cost import METRICS, CostReport, Counts, human  # noqa: E402
from archdsl.cost.report import add_up  # noqa: E402
from archdsl.match import MatchError, Problem, find_knob, solve  # noqa: E402

SPECS = ROOT / "specs"
# (baseline, residual variant, the paper's words)
CLAIMS = [
    ("inception_v3", "inception_resnet_v1",
     "Inception-ResNet-v1 has roughly the computational cost of Inception-v3"),
    ("inception_v4", "inception_resnet_v2",
     "Inception-ResNet-v2 matches the raw cost of Inception-v4"),
]
TITLES = {"inception_v3": "Inception-v3", "inception_v4": "Inception-v4",
          "inception_resnet_v1": "Inception-ResNet-v1",
          "inception_resnet_v2": "Inception-ResNet-v2"}
TOLERANCE = 0.01


def md_table(headers: list[str], rows: list[list[str]], right_from: int = 1) -> str:
    rule = ["---" if i < right_from else "---:" for i in range(len(headers))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [headers, rule, *rows])


def by_grid(report: CostReport) -> dict[str, Counts]:
    """Stage costs grouped by the grid they work on: the stem, then each input grid size."""
    groups: dict[str, list[Counts]] = {}
    for i, row in enumerate(report.stages):
        shape = row.node.in_shape
        key = "stem" if i == 0 else (f"{shape[1]}x{shape[2]}" if len(shape) == 3 else "head")
        groups.setdefault(key, []).append(row.counts)
    return {k: add_up(v) for k, v in groups.items()}


def pct(a: int, b: int) -> str:
    return f"{(a / b - 1) * 100:+.1f}%"


def claim_section(base: str, variant: str, words: str, reports: dict[str, CostReport]) -> str:
    a, b = reports[base].total, reports[variant].total
    lines = [f"### {TITLES[variant]} vs {TITLES[base]}", "", f"The paper: *{words}.*", ""]
    rows = []
    for m in ("params", "macs", "fvcore", "activations"):
        rows.append([METRICS[m].header, f"{a.get(m):,}", f"{b.get(m):,}",
                     f"{b.get(m) / a.get(m):.3f}", pct(b.get(m), a.get(m))])
    lines.append(md_table(["metric", TITLES[base], TITLES[variant], "ratio", "difference"],
                          rows))
    ga, gb = by_grid(reports[base]), by_grid(reports[variant])
    grids = list(dict.fromkeys([*ga, *gb]))
    rows = [[g, human(ga.get(g, Counts()).macs), human(gb.get(g, Counts()).macs),
             human(ga.get(g, Counts()).params), human(gb.get(g, Counts()).params)]
            for g in grids]
    lines += ["", "Where the cost sits (stages grouped by the grid they work on; MACs and "
              "params):", "",
              md_table(["grid", f"{TITLES[base]} MACs", f"{TITLES[variant]} MACs",
                        f"{TITLES[base]} params", f"{TITLES[variant]} params"], rows)]
    lines += ["", match_line(base, variant, reports)]
    return "\n".join(lines)


def match_line(base: str, variant: str, reports: dict[str, CostReport]) -> str:
    spec = archdsl.load(SPECS / f"{variant}.yaml")
    try:
        knob = find_knob(spec, "width")
    except MatchError as exc:
        return f"No width knob to match with: {exc}."
    target = reports[base].total.macs
    problem = Problem(spec.program, knob, "macs", target, spec.input_shape)
    try:
        r = solve(problem, TOLERANCE)
    except MatchError as exc:
        return f"`archdsl match --knob width` finds no width within {TOLERANCE:.0%}: {exc}."
    params = archdsl.load(spec.path, width=r.value).cost().total.params
    return (f"Matched within {TOLERANCE:.0%} by `archdsl match specs/{variant}.yaml "
            f"--to specs/{base}.yaml --knob width --metric macs`: width {r.value} (channels "
            f"rounded to multiples of 8) gives {r.achieved:,} MACs, {r.ratio:.4f}x "
            f"{TITLES[base]}'s, with {params:,} params "
            f"({params / reports[base].total.params:.3f}x).")


def build() -> str:
    needed = [n for pair in CLAIMS for n in pair[:2]]
    missing = [n for n in needed if not (SPECS / f"{n}.yaml").exists()]
    reports = {n: archdsl.load(SPECS / f"{n}.yaml").cost() for n in needed if n not in missing}
    out = [
        "# Cost report: the Inception-v4 paper's cost claims",
        "",
        "Generated by `python tools/cost_report.py` from the specs in `specs/` (IR only, no "
        "model is built); do not edit by hand. Conventions are those of "
        "[cost.md](cost.md): **MACs** are conv and linear multiply-accumulates without biases "
        "(torchvision's convention), **FLOPs = 2 x MACs**, **fvcore** is "
        "`fvcore.nn.FlopCountAnalysis(model.eval(), x).total()` (MACs plus BatchNorm and "
        "adaptive pooling; a MAC counts as one \"flop\"), all at batch 1 and 3x299x299.",
        "",
        "Szegedy, Ioffe, Vanhoucke, Alemi, *Inception-v4, Inception-ResNet and the Impact of "
        "Residual Connections on Learning*, AAAI 2017 (arXiv:1602.07261), section 3.2, gives "
        "the two claims below in words only; it publishes no parameter or operation counts.",
        "",
        "## The four networks",
        "",
    ]
    rows = [[TITLES[n], f"{r.total.params:,}", f"{r.total.macs:,}", f"{r.total.flops:,}",
             f"{r.total.fvcore:,}", f"{r.total.activations:,}"] for n, r in reports.items()]
    out.append(md_table(["network", "params", "MACs", "FLOPs (2xMACs)", "fvcore (MAC-based)",
                         "activations"], rows))
    out += ["", "Inception-v3, Inception-v4 and Inception-ResNet-v2 are the TF-slim forms (timm's "
            "`inception_v3`, `inception_v4`, `inception_resnet_v2`; their parameter counts and "
            "fvcore totals equal the published figures, see `tests/test_cost.py`). "
            "Inception-ResNet-v1 follows the paper's Figures 10-15 (no reference "
            "implementation exists). The paper's own Inception-ResNet-v2 figures do not "
            "compose (`specs/inception_resnet_v2_paper.yaml` is rejected with the mismatched "
            "depths), so the released TF-slim network stands in for it.", "", "## The claims", ""]
    for base, variant, words in CLAIMS:
        if base in missing or variant in missing:
            out += [f"### {TITLES[variant]} vs {TITLES[base]}", "",
                    "Not checked: missing spec(s) "
                    f"{', '.join(m for m in (base, variant) if m in missing)}.", ""]
            continue
        out += [claim_section(base, variant, words, reports), ""]
    out += ["## Verdict", ""]
    for base, variant, _ in CLAIMS:
        if base in reports and variant in reports:
            a, b = reports[base].total, reports[variant].total
            out.append(f"- {TITLES[variant]} against {TITLES[base]}: MACs {pct(b.macs, a.macs)} "
                       f"(ratio {b.macs / a.macs:.3f}), parameters {pct(b.params, a.params)} "
                       f"(ratio {b.params / a.params:.3f}), activations "
                       f"{pct(b.activations, a.activations)}.")
    out += ["", "The paper gives no numbers, so \"roughly\" and \"matches\" are judged by the "
            "reader from the ratios above; the width multipliers found by `archdsl match` show "
            "how far each residual network is from an exact MAC match.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "cost-report.md"))
    args = ap.parse_args(argv)
    text = build()
    write_text_atomic(args.output, text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
