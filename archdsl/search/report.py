"""The report of a search: Pareto fronts on the exact cost axis, plots, hypervolume, tables, EDFs.

Two layers. The pure one works on plain records (one dict per trial: ``number``, ``state``,
``values`` {objective or metric name: value}, ``params``, ``macs``, ``flops``, ``arch_hash``,
``spec_sha256``) and needs neither Optuna nor torch: :func:`summarise`, :func:`write_records`.
:func:`write_report` reads those records from an Optuna study and calls it.

What the numbers mean:

- Front: the trials no other trial dominates on (quality, cost), quality being the first
  objective that is not a cost (accuracy, maximised) and cost the exact count archdsl made
  before training (MACs, params), minimised. Equal points are all on the front (as Optuna's).
- Hypervolume: the area dominated by the front in the plane (quality, cost / reference cost),
  bounded by the reference point (quality 0 for a maximised quality, else the worst seen; cost:
  the budget's upper end on that metric, else 1.1 x the largest cost seen). A maximised
  accuracy in [0, 1] thus gives a hypervolume in [0, 1]. The curve is the hypervolume after each
  finished trial, in trial order.
- Best at each budget: each front point, cheapest first, is the best quality reachable at a
  budget of its cost.
- Error EDFs (Radosavovic et al. 2019, "On Network Design Spaces for Visual Recognition"):
  F(e) = share of a space's trials with error (1 - accuracy) below e. Normalised by cost, each
  trial is weighted so that every cost bin (10 bins, log-spaced over the cost range the spaces
  share) weighs the same in every space; trials outside the shared range weigh nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..atomic import write_atomic, write_text_atomic
from ..table import render

VERSION = 1
COSTS = ("macs", "params")
COST_NAMES = ("params", "macs", "flops")
EDF_BINS = 10
Record = Mapping[str, Any]


# ---------------------------------------------------------------------------------------------
# Fronts and hypervolume (pure)

def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether a dominates b, both written to be minimised."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True))


def pareto_indices(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates (directions: maximize/minimize each)."""
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    mins = [tuple(s * v for s, v in zip(signs, p, strict=True)) for p in points]
    return [i for i, p in enumerate(mins)
            if not any(dominates(q, p) for j, q in enumerate(mins) if j != i)]


def hypervolume_2d(points: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """Area dominated by minimisation points (x, y) and bounded by ``reference``: sweep along
    x; each point that lowers the best y so far adds the strip (ref x - x) x (best y - y)."""
    area, best_y = 0.0, float(reference[1])
    for x, y in sorted((float(x), float(y)) for x, y in points):
        if x < reference[0] and y < best_y:
            area += (reference[0] - x) * (best_y - y)
            best_y = y
    return area


# ---------------------------------------------------------------------------------------------
# Records (pure)

def value(rec: Record, name: str) -> float | None:
    """A trial's objective or metric (``values``), else its top-level field (params ...)."""
    v = (rec.get("values") or {}).get(name, rec.get(name))
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def complete(records: Iterable[Record], quality: str, cost: str) -> list[Record]:
    return [r for r in records if r.get("state", "COMPLETE") == "COMPLETE"
            and value(r, quality) is not None and value(r, cost) is not None]


def front(records: Sequence[Record], quality: tuple[str, str], cost: str) -> list[Record]:
    """The Pareto front on (quality, exact cost), cheapest first (ties: trial number)."""
    done = complete(records, quality[0], cost)
    pts = [(value(r, quality[0]), value(r, cost)) for r in done]
    keep = pareto_indices(pts, [quality[1], "minimize"])  # type: ignore[arg-type]
    return sorted((done[i] for i in keep),
                  key=lambda r: (value(r, cost), r.get("number", 0)))


def reference_point(records: Sequence[Record], quality: tuple[str, str], cost: str,
                    budget: Mapping[str, Any] | None) -> tuple[float, float]:
    """(quality, cost) of the hypervolume's reference point (see the module docstring)."""
    done = complete(records, quality[0], cost)
    qs = [value(r, quality[0]) for r in done] or [0.0]
    ref_q = min(0.0, *qs) if quality[1] == "maximize" else max(qs)  # type: ignore[type-var]
    high = budget_on(budget, cost)
    ref_c = high[1] if high else 1.1 * max((value(r, cost) for r in done), default=0.0)
    ref_c = ref_c or 1.0  # every cost 0 (or a budget of 0): any positive scale will do
    return float(ref_q), float(ref_c)  # type: ignore[arg-type]


def budget_on(budget: Mapping[str, Any] | None, cost: str) -> tuple[float | None, float] | None:
    """The budget band (low, high) on the axis ``cost``, if the budget is on that axis
    (a FLOPs budget is a MACs band of half the figures)."""
    if not budget:
        return None
    scale = {("flops", "macs"): 0.5, ("macs", "flops"): 2.0}.get((budget["metric"], cost))
    if budget["metric"] != cost and scale is None:
        return None
    scale = scale or 1.0
    low = budget.get("low")
    return (None if low is None else low * scale), budget["high"] * scale


def hypervolume(records: Sequence[Record], quality: tuple[str, str], cost: str,
                reference: tuple[float, float]) -> float:
    sign = -1.0 if quality[1] == "maximize" else 1.0
    pts = [(sign * value(r, quality[0]), value(r, cost) / reference[1])  # type: ignore[operator]
           for r in complete(records, quality[0], cost)]
    return hypervolume_2d(pts, (sign * reference[0], 1.0))


def hypervolume_curve(records: Sequence[Record], quality: tuple[str, str], cost: str,
                      reference: tuple[float, float]) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the finished trials up to it), in trial order."""
    done = sorted(complete(records, quality[0], cost), key=lambda r: r.get("number", 0))
    return [(int(r.get("number", i)), hypervolume(done[:i + 1], quality, cost, reference))
            for i, r in enumerate(done)]


def best_at_budget(records: Sequence[Record], quality: tuple[str, str],
                   cost: str) -> list[dict[str, Any]]:
    """One row per front point, cheapest first: at a budget of its cost, the best trial."""
    return [{"budget": value(r, cost), quality[0]: value(r, quality[0]),
             "trial": r.get("number"), "params": r.get("params"), "macs": r.get("macs")}
            for r in front(records, quality, cost)]


# ---------------------------------------------------------------------------------------------
# Error distribution functions (pure)

def edf(errors: Sequence[float], weights: Sequence[float] | None = None
        ) -> tuple[np.ndarray, np.ndarray]:
    """The (weighted) empirical distribution: sorted errors and F at each (share <= error)."""
    e = np.asarray(errors, dtype=float)
    w = np.ones_like(e) if weights is None else np.asarray(weights, dtype=float)
    order = np.argsort(e, kind="stable")
    e, w = e[order], w[order]
    total = w.sum()
    return e, (np.cumsum(w) / total if total > 0 else np.zeros_like(w))


def cost_weights(costs: Mapping[str, Sequence[float]], bins: int = EDF_BINS
                 ) -> dict[str, np.ndarray]:
    """Per-trial weights making every shared log-spaced cost bin weigh the same in each space."""
    positive = {k: np.asarray(v, dtype=float) for k, v in costs.items()}
    lows = [float(v[v > 0].min()) for v in positive.values() if (v > 0).any()]
    lo = max(lows, default=0.0)
    hi = min((float(v.max()) for v in positive.values() if len(v)), default=0.0)
    out = {}
    if not hi > lo or len(lows) < len(positive):
        return {k: np.ones(len(v)) / max(1, len(v)) for k, v in positive.items()}
    edges = np.geomspace(lo, hi, bins + 1)
    for k, v in positive.items():
        idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
        inside = (v >= lo) & (v <= hi)
        counts = np.bincount(idx[inside], minlength=bins)
        w = np.where(inside, 1.0 / np.maximum(counts[idx], 1), 0.0)
        out[k] = w / w.sum() if w.sum() > 0 else w
    return out


def edf_summary(spaces: Mapping[str, Sequence[Record]]) -> list[dict[str, Any]]:
    """Per space (label -> records): its complete trials' count and error quantiles (the
    figures behind the error EDF plot, for report.json)."""
    out = []
    for label, recs in spaces.items():
        errors = sorted(1 - value(r, "accuracy") for r in  # type: ignore[operator]
                        complete(recs, "accuracy", "accuracy"))
        quantiles = ({k: float(np.quantile(errors, q)) for k, q in
                      (("min", 0), ("q25", .25), ("median", .5), ("q75", .75), ("max", 1))}
                     if errors else {})
        out.append({"space": label, "n": len(errors), "error": quantiles})
    return out


# ---------------------------------------------------------------------------------------------
# The summary and its files

def summarise(records: Sequence[Record], *, quality: tuple[str, str] = ("accuracy", "maximize"),
              budget: Mapping[str, Any] | None = None,
              baselines: Sequence[tuple[str, Mapping[str, Any]]] = (),
              name: str = "", objectives: Sequence[tuple[str, str]] = (),
              others: Mapping[str, Sequence[Record]] | None = None) -> dict[str, Any]:
    """The content of report.json (version 1): every figure of the report, no timestamp.
    ``others``: further spaces (label -> records) summarised beside this one in ``error_edf``
    (accuracy studies only)."""
    states: dict[str, int] = {}
    for r in records:
        states[str(r.get("state", "COMPLETE"))] = states.get(str(r.get("state", "COMPLETE")), 0) + 1
    axes = {}
    for cost in COSTS:
        ref = reference_point(records, quality, cost, budget)
        axes[cost] = {
            "reference_point": {quality[0]: ref[0], cost: ref[1]},
            "hypervolume": hypervolume(records, quality, cost, ref),
            "hypervolume_curve": [[n, hv] for n, hv in
                                  hypervolume_curve(records, quality, cost, ref)],
            "front": [int(r["number"]) for r in front(records, quality, cost)],
            "best_at_budget": best_at_budget(records, quality, cost),
        }
    return {
        "version": VERSION,
        "study": name,
        "objectives": [list(o) for o in objectives],
        "quality": list(quality),
        "budget": dict(budget) if budget else None,
        "trials": {"total": len(records), "by_state": dict(sorted(states.items()))},
        "axes": axes,
        "proxy_correlations": proxy_correlations(records, quality[0]),
        "baselines": [{"name": n, **{k: m[k] for k in sorted(m)}} for n, m in baselines],
        "error_edf": (edf_summary({name or "this study": records, **(others or {})})
                      if quality[0] == "accuracy" else []),
        "records": [_plain(r) for r in sorted(records, key=lambda r: r.get("number", 0))],
    }


def proxy_correlations(records: Sequence[Record], quality: str) -> list[dict[str, Any]]:
    """When trials carry zero-cost proxies, their rank correlations with params, MACs and the
    quality on the same trials (the literature finds params and MACs hard to beat)."""
    from .proxies import COST_PROXIES, PROXIES

    done = [{**r, **(r.get("values") or {})} for r in records
            if r.get("state", "COMPLETE") == "COMPLETE"]
    used = [p for p in PROXIES if p not in COST_PROXIES and p != quality
            and any(value(r, p) is not None for r in done)]
    if not used:
        return []
    from .proxies import rank_correlations

    return [{"proxy": c.proxy, "vs": c.against, "n": c.n, "spearman": c.spearman,
             "kendall": c.kendall} for c in rank_correlations(done, used, [*COST_PROXIES, quality])]


def text_tables(summary: Mapping[str, Any], markdown: bool = False) -> str:
    """The best-at-each-budget tables (plain text for the terminal, or markdown), and the
    proxies' rank correlations when there are any."""
    q = summary["quality"][0]
    parts = []
    for cost, axis in summary["axes"].items():
        rows = [[_int(r["budget"]), round(r[q], 4), r["trial"], _int(r["params"]),
                 _int(r["macs"])] for r in axis["best_at_budget"]]
        head = [f"{cost} <=", f"best {q}", "trial", "params", "macs"]
        title = (f"Best {q} at each {cost} budget (hypervolume "
                 f"{axis['hypervolume']:.4f}, reference {_ref(axis['reference_point'])})")
        parts.append(f"### {title}\n\n{_markdown(head, rows)}" if markdown
                     else f"{title}\n{render(head, rows, indent='  ')}")
    if summary.get("proxy_correlations"):
        head = ["proxy", "vs", "n", "spearman", "kendall"]
        rows = [[c["proxy"], c["vs"], c["n"], round(c["spearman"], 3), round(c["kendall"], 3)]
                for c in summary["proxy_correlations"]]
        title = "Rank correlation of the proxies with params, MACs and " + q
        parts.append(f"### {title}\n\n{_markdown(head, rows)}" if markdown
                     else f"{title}\n{render(head, rows, indent='  ')}")
    return "\n\n".join(parts)


def write_records(records: Sequence[Record], out_dir: str | Path, *,
                  quality: tuple[str, str] = ("accuracy", "maximize"),
                  budget: Mapping[str, Any] | None = None,
                  baselines: Sequence[tuple[str, Mapping[str, Any]]] = (),
                  others: Mapping[str, Sequence[Record]] | None = None,
                  name: str = "", objectives: Sequence[tuple[str, str]] = (),
                  echo: TextIO | None = None) -> Path:
    """Write report.json, report.md and the plots into ``out_dir``; return report.md's path.
    ``others``: further studies (name -> records) drawn beside this one in the error EDFs."""
    out = Path(out_dir)
    summary = summarise(records, quality=quality, budget=budget, baselines=baselines, name=name,
                        objectives=objectives, others=others)
    figures = []
    for cost in COSTS:
        stem = f"{quality[0]}_vs_{cost}"
        plot_front(records, quality, cost, budget, baselines, out / stem)
        figures.append(stem)
    plot_hypervolume(summary, out / "hypervolume")
    figures.append("hypervolume")
    spaces = {name or "this study": records, **(others or {})}
    if quality[0] == "accuracy":
        for norm in (None, "macs"):
            stem = "error_edf" + (f"_by_{norm}" if norm else "")
            plot_edfs(spaces, out / stem, normalise_by=norm)
            figures.append(stem)
    write_text_atomic(out / "report.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    md = _report_md(summary, figures)
    path = out / "report.md"
    write_text_atomic(path, md)
    if echo is not None:
        echo.write(text_tables(summary) + "\n")
    return path


def write_report(study: Any, space: Any, out_dir: str | Path,
                 baselines: Sequence[tuple[str, Mapping[str, Any]]] = (), *,
                 others: Mapping[str, Any] | None = None, echo: TextIO | None = None) -> Path:
    """The report of an Optuna study (``space``: its SearchSpace, or None); ``others``: name ->
    study or records to compare in the error EDFs. Returns the path of report.md."""
    objectives = objectives_of(study, space)
    quality = next(((n, d) for n, d in objectives if n not in COST_NAMES), ("accuracy", "maximize"))
    budget = None
    if space is not None and getattr(space, "budget", None) is not None:
        b = space.budget
        budget = {"metric": b.metric, "low": b.low, "high": b.high}
    more = {k: (v if isinstance(v, Sequence) else records_of(v, objectives_of(v, None)))
            for k, v in (others or {}).items()}
    return write_records(records_of(study, objectives), out_dir, quality=quality, budget=budget,
                         baselines=baselines, others=more, name=study.study_name,
                         objectives=objectives, echo=echo)


def objectives_of(study: Any, space: Any) -> list[tuple[str, str]]:
    """(name, direction) of each objective: the space's, else those ``archdsl search create``
    recorded, else the study's metric names, else accuracy first."""
    directions = [d.name.lower() for d in study.directions]
    if space is not None and getattr(space, "objectives", None):
        return [(n, d) for n, d in space.objectives]
    recorded = getattr(study, "user_attrs", {}).get("objectives")
    if recorded and len(recorded) == len(directions):
        return [(str(n), str(d)) for n, d in recorded]
    names = getattr(study, "metric_names", None)
    if not names:
        defaults = ["accuracy", "macs", "params"]
        names = [defaults[i] if i < len(defaults) else f"objective{i}"
                 for i in range(len(directions))]
    return list(zip(names, directions, strict=True))


def records_of(study: Any, objectives: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Plain records of an Optuna study's trials (metrics from the user attribute ``metrics``
    when the driver stored it; the objectives' values win)."""
    out = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        values = dict(attrs.get("metrics") or {})
        if t.values is not None:
            values.update({n: float(v) for (n, _), v in zip(objectives, t.values, strict=True)})
        out.append({"number": t.number, "state": t.state.name, "values": values,
                    **{k: attrs.get(k) for k in ("params", "macs", "flops", "arch_hash",
                                                 "spec_sha256")},
                    "knobs": dict(t.params)})
    return out


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib's object API with the Agg canvas: no pyplot, no global backend switch)

def plot_front(records: Sequence[Record], quality: tuple[str, str], cost: str,
               budget: Mapping[str, Any] | None, baselines: Sequence[tuple[str, Mapping]],
               stem: Path) -> None:
    """Quality against cost: every trial, the front as a step line, the budget band shaded,
    the baselines marked; written as stem.svg and stem.png."""
    fig, ax = _figure()
    done = complete(records, quality[0], cost)
    ax.scatter([value(r, cost) for r in done], [value(r, quality[0]) for r in done], s=14,
               color="0.6", label=f"trials ({len(done)})", zorder=2)
    pts = [(value(r, cost), value(r, quality[0])) for r in front(records, quality, cost)]
    if pts:
        xs, ys = zip(*pts, strict=True)
        ax.step(xs, ys, where="post", color="C0", lw=1.5, zorder=3)
        ax.scatter(xs, ys, s=24, color="C0", label=f"Pareto front ({len(pts)})", zorder=4)
    band = budget_on(budget, cost)
    if band:
        lo = band[0] if band[0] is not None else ax.get_xlim()[0]
        ax.axvspan(lo, band[1], color="C2", alpha=0.12, label="budget", zorder=1)
    for i, (name, m) in enumerate(baselines):
        x, y = value(m, cost), value(m, quality[0])
        if x is not None and y is not None:
            ax.scatter([x], [y], marker="*", s=120, color=f"C{3 + i % 6}", zorder=5, label=name)
    positive = [value(r, cost) for r in done if (value(r, cost) or 0) > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(f"{cost} (exact count)")
    ax.set_ylabel(quality[0])
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, stem)


def plot_hypervolume(summary: Mapping[str, Any], stem: Path) -> None:
    """The hypervolume after each finished trial, on both cost axes."""
    fig, ax = _figure()
    for i, (cost, axis) in enumerate(summary["axes"].items()):
        if axis["hypervolume_curve"]:
            n, hv = zip(*axis["hypervolume_curve"], strict=True)
            ref = _ref(axis["reference_point"])
            ax.step(n, hv, where="post", color=f"C{i}",
                    label=f"{summary['quality'][0]} vs {cost} (reference {ref})")
    ax.set_xlabel("trial number")
    ax.set_ylabel("hypervolume (cost / reference cost)")
    ax.set_ylim(0, 1 if summary["quality"][1] == "maximize" else None)
    ax.grid(alpha=0.3)
    if any(a["hypervolume_curve"] for a in summary["axes"].values()):
        ax.legend(loc="lower right", fontsize=8)
    _save(fig, stem)


def plot_edfs(spaces: Mapping[str, Sequence[Record]], stem: Path,
              normalise_by: str | None = None) -> None:
    """Error EDFs of several spaces in one plot (optionally normalised by cost)."""
    fig, ax = _figure()
    done = {k: complete(v, "accuracy", normalise_by or "accuracy") for k, v in spaces.items()}
    done = {k: v for k, v in done.items() if v}
    weights = (cost_weights({k: [value(r, normalise_by) for r in v] for k, v in done.items()})
               if normalise_by and done else {})
    for i, (k, v) in enumerate(done.items()):
        e, f = edf([1 - value(r, "accuracy") for r in v], weights.get(k))  # type: ignore[operator]
        ax.step(np.concatenate([[e[0]], e]), np.concatenate([[0.0], f]), where="post",
                color=f"C{i}", label=f"{k} (n={len(v)})")
    ax.set_xlabel("error (1 - accuracy)")
    ax.set_ylabel("cumulative share of trials" + (f", normalised by {normalise_by}"
                                                  if normalise_by else ""))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    if done:
        ax.legend(loc="lower right", fontsize=8)
    _save(fig, stem)


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Any, stem: Path) -> None:
    import matplotlib

    fig.tight_layout()
    # Same trials, same bytes: no date in the SVG, fixed ids (hash salt), no software tag in PNG.
    with matplotlib.rc_context({"svg.hashsalt": "archdsl", "svg.fonttype": "path"}):
        write_atomic(stem.with_suffix(".svg"),
                     lambda p: fig.savefig(p, format="svg", metadata={"Date": None}))
        write_atomic(stem.with_suffix(".png"),
                     lambda p: fig.savefig(p, format="png", metadata={"Software": None}))


# ---------------------------------------------------------------------------------------------
# Markdown

def _report_md(summary: Mapping[str, Any], figures: Sequence[str]) -> str:
    q = summary["quality"][0]
    t = summary["trials"]
    states = ", ".join(f"{n} {k.lower()}" for k, n in t["by_state"].items())
    lines = [f"# Search report{': ' + summary['study'] if summary['study'] else ''}", "",
             f"{t['total']} trials ({states}). Quality: {q} ({summary['quality'][1]}); costs are "
             "archdsl's exact counts.", ""]
    if summary["budget"]:
        b = summary["budget"]
        band = f"[{_int(b['low'])}, {_int(b['high'])}]" if b.get("low") is not None \
            else f"<= {_int(b['high'])}"
        lines += [f"Budget: {b['metric']} {band}.", ""]
    lines += [line for f in figures for line in (f"![{f}]({f}.svg)", "")]
    lines += [text_tables(summary, markdown=True), ""]
    if len(summary.get("error_edf", [])) > 1:
        head = ["space", "trials", "min", "q25", "median", "q75", "max"]
        rows = [[e["space"], e["n"], *(round(e["error"][k], 4) if e["error"] else ""
                                        for k in head[2:])] for e in summary["error_edf"]]
        lines += ["### Error (1 - accuracy) of each space", "", _markdown(head, rows), ""]
    if summary["baselines"]:
        keys = [q, "params", "macs"]
        lines += ["### Baselines", "",
                  _markdown(["name", *keys], [[b["name"], *(_int(b.get(k)) for k in keys)]
                                              for b in summary["baselines"]]), ""]
    return "\n".join(lines)


def _markdown(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def _int(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _ref(ref: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" if abs(v) < 1000 else f"{k} {v:,.0f}" for k, v in ref.items())


def _plain(rec: Record) -> dict[str, Any]:
    return json.loads(json.dumps(dict(rec), sort_keys=True, default=str))
