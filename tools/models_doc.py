"""Write docs/models.md: every spec of specs/, what it encodes, its counts, and its verification.

For each spec: the header comment (what it encodes), ``cites``, knobs, parameters, MACs and
fvcore flops (eval mode, auxiliary heads left out), and for each entry of its ``reference:``
block the checks, actually run:

* a reference model (timm / torchvision / pretrainedmodels, ``pretrained=False``): equal
  parameter counts; our analytic fvcore count equal to ``fvcore.nn.FlopCountAnalysis`` on the
  reference model (at the reference's ``check_input``); its weights ported with
  ``archdsl.port``, whose own check compares eval outputs on one random input (tolerance 1e-4
  times the reference's largest output);
* published counts: equal, or equal after the published rounding, or within the tolerance.

    python tools/models_doc.py [-o docs/models.md] [--counts-only]

``--counts-only`` skips everything that needs torch (no model is built).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.atomic import write_text_atomic  # noqa: E402
from archdsl.errors import SpecErrors  # noqa: E402
from archdsl.program import read_program  # noqa: E402
from archdsl.reference import (  # noqa: E402
    Reference,
    eval_counts,
    published_checks,
    references,
)

SPECS = ROOT / "specs"


@dataclass
class Check:
    what: str
    ok: bool

    def __str__(self) -> str:
        return f"{'pass' if self.ok else 'FAIL'}: {self.what}"


@dataclass
class RefResult:
    ref: Reference
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def count_checks(ours: dict[str, int], ref: Reference) -> list[Check]:
    return [Check(str(c), c.ok) for c in published_checks(ref, ours)]


def model_checks(path: Path, ref: Reference, spec: archdsl.Spec) -> list[Check]:
    """Build the reference, compare parameters and fvcore, port and compare outputs."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    from archdsl.port import (
        PortError,
        port_weights,
        reference_model,
    )

    torch.manual_seed(0)
    reference = reference_model(ref.model or "", ref.kwargs).eval()
    theirs = sum(p.numel() for p in reference.parameters())
    checks = [Check(f"params equal to {ref.model}'s {theirs:,}", spec.param_count() == theirs)]
    small = archdsl.load(path, input=ref.check_input, **ref.set) if ref.check_input else spec
    x = torch.randn(1, *small.input_shape)
    counter = FlopCountAnalysis(reference, x)
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    fv, ours = int(counter.total()), eval_counts(small)["fvcore"]
    shape = "x".join(map(str, small.input_shape))
    checks.append(Check(f"fvcore on {ref.model} at {shape} = {fv:,}, ours {ours:,}", fv == ours))
    # The port checks outputs itself (batch-norm statistics randomised, so that a swapped
    # tensor would show); its check is the one reported here.
    try:
        report = port_weights(small, reference)
    except PortError as exc:
        return [*checks, Check(f"port: {exc}", False)]
    check = report.check
    assert check is not None
    moved = f", {len(report.reordered)} local reorderings" if report.reordered else ""
    checks.append(Check(f"ported {report.copied} tensors{moved}; eval outputs at {shape} "
                        f"differ by at most {check.max_diff:.1e}", check.ok))
    return checks


@dataclass
class Entry:
    path: Path
    about: str
    cites: str = ""
    knobs: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    input: str = ""
    error: str = ""
    results: list[RefResult] = field(default_factory=list)


def header_comment(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(lines)


def examine(path: Path, with_torch: bool) -> Entry:
    entry = Entry(path, header_comment(path))
    try:
        prog = read_program(path)
        refs = references(prog)
        spec = archdsl.load(path)
    except SpecErrors as exc:
        entry.error = str(exc.errors[0]).replace(str(ROOT) + "/", "")
        return entry
    entry.cites = prog.doc.cites or ""
    entry.knobs = dict(spec.params)
    entry.counts = eval_counts(spec)
    entry.input = "x".join(map(str, spec.input_shape))
    for ref in refs:
        result = RefResult(ref)
        knobbed = archdsl.load(path, **ref.set) if ref.set else spec
        result.checks += count_checks(eval_counts(knobbed), ref)
        if ref.model and with_torch:
            result.checks += model_checks(path, ref, knobbed)
        entry.results.append(result)
    return entry


def fmt(n: int) -> str:
    return f"{n / 1e6:,.2f}M" if n < 1e9 else f"{n / 1e9:,.3f}G"


def render(entries: list[Entry], with_torch: bool) -> str:
    """The page; nothing in it depends on when or how fast it ran, so reruns change nothing."""
    out = [
        "# The network library",
        "",
        "Every spec of `specs/`, what it encodes, its counts at its default knobs and input, and",
        "its verification against references nobody here wrote. Written by `tools/models_doc.py`,",
        "which ran every check listed" + ("" if with_torch else " except those that need torch")
        + " (`make models`). Every name below loads by name: `archdsl.load(\"resnet50\")`,",
        "`archdsl build resnet50`; `archdsl list` shows the same table from the installed package.",
        "",
        "Parameters are trainable ones (auxiliary heads included); MACs are conv + linear",
        "multiply-accumulates and fvcore is what `fvcore.nn.FlopCountAnalysis` counts, both in",
        "eval mode (auxiliary heads do not run). Reference models are built with",
        "`pretrained=False`; ported outputs must agree within 1e-4 times the reference's largest "
        "output (the port's own check).",
        "",
        "| spec | input | params | MACs | fvcore | verified against | result |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for e in entries:
        name = f"[{e.path.stem}](#{e.path.stem})"
        if e.error:
            out.append(f"| {name} | | | | | | does not load (by design) |")
            continue
        against = "; ".join(
            (r.ref.model or "published counts") + (f" ({fmt_set(r.ref.set)})" if r.ref.set else "")
            for r in e.results) or "-"
        if not e.results:
            verdict = "no reference"
        else:
            verdict = "pass" if all(r.ok for r in e.results) else "**FAIL**"
        c = e.counts
        out.append(f"| {name} | {e.input} | {c['params']:,} | {fmt(c['macs'])} | "
                   f"{fmt(c['fvcore'])} | {against} | {verdict} |")
    for e in entries:
        out += ["", f"## {e.path.stem}", "", f"`specs/{e.path.name}`. {e.about}"]
        if e.error:
            out += ["", f"Rejected when loaded, as intended: `{e.error}`"]
            continue
        if e.cites:
            out += ["", f"Cites: {e.cites}."]
        if e.knobs:
            out += ["", "Knobs: " + ", ".join(f"`{k}={v}`" for k, v in e.knobs.items()) + "."]
        if not e.results:
            out += ["", "No reference block: nothing outside archdsl to compare with."]
        for r in e.results:
            title = r.ref.model or "published counts"
            knobs = f" with {fmt_set(r.ref.set)}" if r.ref.set else ""
            out += ["", f"* **{title}**{knobs} ({r.ref.source or 'no source given'}):"]
            out += [f"  * {c}" for c in r.checks] or ["  * (no checks ran)"]
    return "\n".join(out) + "\n"


def fmt_set(knobs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in knobs.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "models.md"))
    parser.add_argument("--counts-only", action="store_true",
                        help="skip the checks that build models (no torch)")
    args = parser.parse_args()
    start = time.perf_counter()
    entries = []
    for path in sorted(SPECS.glob("*.yaml")):
        print(f"{path.stem} ...", file=sys.stderr, flush=True)
        entries.append(examine(path, not args.counts_only))
    took = time.perf_counter() - start
    write_text_atomic(args.output, render(entries, not args.counts_only))
    failed = [e.path.stem for e in entries if any(not r.ok for r in e.results)]
    print(f"wrote {args.output}; {len(entries)} specs in {took:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else "; every check passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
