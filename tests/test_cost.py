"""The analytic cost of every spec against references nobody here wrote.

- fvcore (``FlopCountAnalysis(model.eval(), x)``) traced on the built model: its total equals the
  analytic fvcore-convention count exactly, node by node; with fvcore's BatchNorm and adaptive
  pooling handlers switched off it counts conv and linear MACs only, which must equal ours;
- the built module's own parameter and buffer counts;
- the published figures of ``/work/shared/reference-numbers.md`` (and the ``reference:`` block a
  spec carries);
- the Xception paper's worked example (Chollet 2017, quoted in seed 004).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import torch
from conftest import SPECS
from fvcore.nn import FlopCountAnalysis

import archdsl
from archdsl import SpecErrors
from archdsl.cost import BLOCK, LAYER, STAGE, CostReport, Counts
from archdsl.layers import KINDS
from archdsl.reference import Reference, references

# Kinds whose MACs are not conv/linear work that fvcore sees: LeNet-5's RBF output accumulates
# one squared difference per centre coordinate (archdsl/layers/rbf.py); fvcore counts 0 for it.
NOT_TRACED_MACS = {"rbf"}


def network_specs() -> list[Path]:
    """Every spec in specs/ that loads; only ``*_paper.yaml`` may fail (rejected by design).

    A spec that fails to load and is not a ``_paper`` file is kept, so that its test fails.
    """
    out = []
    for path in sorted(SPECS.glob("*.yaml")):
        try:
            archdsl.load(path)
        except SpecErrors:
            if path.stem.endswith("_paper"):
                continue
        out.append(path)
    return out


SPEC_PATHS = network_specs()


# fvcore's counts that are not multiply-accumulates (see /work/shared/reference-numbers.md).
NOT_MACS = {"batch_norm", "adaptive_avg_pool2d"}


def traced(model: torch.nn.Module, shape: tuple[int, ...]):
    """fvcore's total, its count per module, and its conv/linear MACs per module (its count
    without the BatchNorm and adaptive-pooling operators), from one trace at batch 1."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            fca = FlopCountAnalysis(model.eval(), torch.zeros(1, *shape))
            fca.unsupported_ops_warnings(False)
            fca.uncalled_modules_warnings(False)
            by_op = fca.by_module_and_operator()
        finally:
            logging.disable(logging.NOTSET)
    by_module = {m: sum(ops.values()) for m, ops in by_op.items()}
    macs = {m: sum(n for op, n in ops.items() if op not in NOT_MACS) for m, ops in by_op.items()}
    return fca.total(), by_module, macs


@pytest.mark.parametrize("path", SPEC_PATHS, ids=lambda p: p.stem)
def test_analytic_counts_equal_the_built_model_and_fvcore(path: Path) -> None:
    spec = archdsl.load(path)
    report = spec.cost()
    model = spec.build().eval()
    assert report.total.params == sum(p.numel() for p in model.parameters())
    assert report.total.buffers == sum(b.numel() for b in model.buffers())

    total, by_module, macs_by_module = traced(model, spec.input_shape)
    assert report.total.fvcore == total
    wrong = [(r.path, r.counts.fvcore, by_module.get(r.path, 0)) for r in report.rows()
             if not r.train_only and r.counts.fvcore != by_module.get(r.path, 0)]
    assert not wrong, f"fvcore differs at {wrong[:5]}"

    macs_total = macs_by_module[""]
    seen = [r for r in report.rows() if r.path in {n.path for n in eval_layers(spec)}]
    traced_rows = [r for r in seen if spec_kind(spec, r.path) not in NOT_TRACED_MACS]
    assert sum(r.counts.macs for r in traced_rows) == macs_total
    for row in traced_rows:
        assert row.counts.macs == macs_by_module.get(row.path, 0), row.path
    assert report.total.macs == sum(r.counts.macs for r in seen)
    assert report.total.flops == 2 * report.total.macs


def eval_layers(spec: archdsl.Spec) -> list:
    """The layers that run in eval mode (not inside an auxiliary head)."""
    heads = [n for n in spec.ir.walk() if type(n).__name__ == "Aux"]
    skip = {id(x) for h in heads for x in h.walk()}
    return [n for n in spec.ir.layers() if id(n) not in skip]


def spec_kind(spec: archdsl.Spec, path: str) -> str:
    return next(layer.kind for layer in spec.ir.layers() if layer.path == path)


@pytest.mark.parametrize("path", SPEC_PATHS, ids=lambda p: p.stem)
def test_rows_roll_up_to_their_parents_and_the_total(path: Path) -> None:
    report = archdsl.load(path).cost()
    assert sum((s.counts for s in report.stages), Counts()) == report.total
    for row in report.rows(LAYER):
        if row.children and not (row.train_only and row.level == STAGE):
            assert sum((c.counts for c in row.children), Counts()) == row.counts, row.path
    spec = archdsl.load(path)
    assert [r.path for r in report.rows(STAGE)] == [n.path for n in spec.top_level()]
    # Every layer has exactly one row (as a stage, a block or a layer of its block).
    layer_rows = [r.path for r in report.rows(LAYER) if r.kind in KINDS]
    assert sorted(layer_rows) == sorted(n.path for n in spec.ir.layers())
    assert all(r.level < LAYER for r in report.rows(LAYER) if r.kind not in KINDS)


# Published figures, /work/shared/reference-numbers.md (torchvision / timm reference models):
# (spec, knobs, figures). Only the specs present are checked.
V15 = {"stride_at": "3x3"}  # torchvision's ResNet-50/101/152 ("v1.5": stride on the 3x3)
PUBLISHED = [
    ("lenet5_modern", {}, {"params": 61_706, "macs": 416_520}),
    ("alexnet_torchvision", {}, {"params": 61_100_840, "macs": 714_188_480,
                                 "fvcore": 714_197_696}),
    ("googlenet_torchvision", {}, {"params": 6_624_904, "fvcore": 1_504_878_688}),
    ("bn_inception", {}, {"params": 11_295_240, "macs": 2_032_600_064}),
    ("inception_v3", {}, {"params": 23_834_568, "fvcore": 5_731_282_144}),
    ("inception_v4", {}, {"params": 42_679_816, "fvcore": 12_284_251_296}),
    ("inception_resnet_v2", {}, {"params": 55_843_464, "fvcore": 13_182_930_592}),
    ("vgg_a", {}, {"params": 132_863_336, "macs": 7_609_090_048, "fvcore": 7_609_115_136}),
    ("vgg_b", {}, {"params": 133_047_848, "macs": 11_308_466_176, "fvcore": 11_308_491_264}),
    ("vgg_d", {}, {"params": 138_357_544, "macs": 15_470_264_320, "fvcore": 15_470_289_408}),
    ("vgg_e", {}, {"params": 143_667_240, "macs": 19_632_062_464, "fvcore": 19_632_087_552}),
    ("resnet18", {}, {"params": 11_689_512, "macs": 1_814_073_344, "fvcore": 1_819_065_856}),
    ("resnet34", {}, {"params": 21_797_672, "macs": 3_663_761_408, "fvcore": 3_671_262_720}),
    ("resnet50", V15, {"params": 25_557_032, "macs": 4_089_184_256, "fvcore": 4_111_512_576}),
    ("resnet101", V15, {"params": 44_549_160, "macs": 7_801_405_440, "fvcore": 7_833_969_664}),
    ("resnet152", V15, {"params": 60_192_808, "macs": 11_513_626_624,
                        "fvcore": 11_558_835_200}),
    ("xception", {}, {"params": 22_855_952, "fvcore": 8_399_882_600}),
    ("mobilenet_v1", {}, {"params": 4_231_976, "fvcore": 578_875_904}),
]
# Published only to four significant digits there ("5.713G", "1.498G").
PUBLISHED_ROUNDED_MACS = {"inception_v3": 5.713e9, "googlenet_torchvision": 1.498e9}


@pytest.mark.parametrize(("name", "knobs", "figures"),
                         [c for c in PUBLISHED if (SPECS / f"{c[0]}.yaml").exists()],
                         ids=lambda c: c if isinstance(c, str) else "")
def test_published_figures(name: str, knobs: dict, figures: dict) -> None:
    total = archdsl.load(SPECS / f"{name}.yaml", **knobs).cost().total
    for metric, value in figures.items():
        assert total.get(metric) == value, metric
    if name in PUBLISHED_ROUNDED_MACS:
        assert round(total.macs, -6) == PUBLISHED_ROUNDED_MACS[name]


def published(path: Path) -> list[Reference]:
    return [r for r in references(archdsl.load(path))
            if any(getattr(r, m) is not None for m in ("params", "macs", "fvcore"))]


@pytest.mark.parametrize("path", [p for p in SPEC_PATHS if published(p)], ids=lambda p: p.stem)
def test_the_published_figures_a_spec_names(path: Path) -> None:
    """A spec's ``reference:`` numbers (from papers and reference-numbers.md) at its own input:
    exact, or as the reference says: ``rounding: 1e6`` (a table's "133M": within half a unit)
    or ``tolerance: 0.02`` (an approximate figure: within 2%)."""
    for ref in published(path):
        total = archdsl.load(path, **ref.set).cost().total
        for metric in ("params", "macs", "fvcore"):
            expected = getattr(ref, metric)
            if expected is None:
                continue
            got, why = total.get(metric), (metric, got_source(ref))
            if ref.rounding:
                assert abs(got - expected) <= ref.rounding / 2, why
            elif getattr(ref, "tolerance", None):
                assert abs(got / expected - 1) <= ref.tolerance, why
            else:
                assert got == expected, why


def got_source(ref: Reference) -> str:
    return ref.source or str(ref.loc)


HEAD = "input: [16, 8, 8]\n"


def test_the_xception_worked_example(write_spec) -> None:
    # Chollet 2017 via seed 004: a 3x3 conv 16 -> 32 has 16 x 32 x 3 x 3 = 4,608 weights; the
    # separable form (1x1 16 -> 32, then a depthwise 3x3 per channel) has 512 + 288 = 800.
    plain = write_spec(HEAD + "network: [conv 3x3 32 nobias]\n", "plain.yaml")
    separable = write_spec(HEAD + "network: [conv 1x1 32 nobias, conv 3x3 32 depthwise nobias]\n",
                           "separable.yaml")
    assert archdsl.load(plain).cost().total.params == 4_608
    sep = archdsl.load(separable).cost()
    assert sep.total.params == 800
    assert [r.counts.params for r in sep.rows()] == [512, 288]


EDGE_CASES = """\
input: [12, 33, 32]
params: {aux: true}
defaults:
  conv: {norm: batchnorm, act: relu}
blocks:
  head:
    seq: [gap, linear 5]
network:
  - conv 1x7 24 groups=4 V              # grouped, rectangular, valid padding
  - maxpool 3x3 /2 ceil V               # ceil mode: 33x26 -> 16x13 (floor mode: 16x12)
  - {aux: head, name: side, when: $aux}
  - conv 3x3 24 depthwise /2            # depthwise, strided, odd sizes
  - residual:
      scale: 0.2
      body: [conv 1x1 8, conv 3x1 24 linear]
      after: relu
  - avgpool 3x3 /2 V ceil exclude_pad
  - adaptive_avgpool 2
  - flatten
  - linear 10
"""


def test_edge_cases_are_exact(write_spec) -> None:
    """Grouped/depthwise and rectangular convs, valid padding, ceil-mode pooling, a scaled
    residual sum (fvcore ignores add and mul, as we do) and an auxiliary head (its weights count,
    its eval-mode MACs do not)."""
    spec = archdsl.load(write_spec(EDGE_CASES))
    report = spec.cost()
    model = spec.build().eval()
    assert report.total.params == sum(p.numel() for p in model.parameters())
    total, _, macs = traced(model, spec.input_shape)
    assert report.total.fvcore == total
    assert report.total.macs == macs[""]
    rows = {r.path: r for r in report.rows()}
    assert rows["maxpool"].out_shape == (24, 16, 13)
    assert rows["side"].train_only and rows["side"].counts.macs == 0
    assert rows["side"].counts.params == 24 * 5 + 5
    # The residual sum and its scale: the block costs exactly its body.
    residual = next(r for r in report.rows() if r.kind == "residual")
    assert residual.counts.macs == sum(
        r.counts.macs for r in report.rows() if r.path.startswith(residual.path + ".body."))
    # Without the head, fvcore's count is unchanged and the parameters drop by the head's.
    without = archdsl.load(spec.path, aux=False).cost()
    assert without.total.fvcore == report.total.fvcore
    assert without.total.params == report.total.params - rows["side"].counts.params


def test_depth_granularity() -> None:
    report = archdsl.load(SPECS / "inception_v4.yaml").cost()
    stages = report.rows(STAGE)
    assert [r.path for r in stages] == ["stem_v4", "inception_a", "reduction_a", "inception_b",
                                        "reduction_b", "inception_c", "gap", "dropout", "linear"]
    blocks = [r.path for r in report.rows(BLOCK) if r.level == BLOCK]
    assert blocks == [f"inception_a.{i}" for i in range(4)] + \
        [f"inception_b.{i}" for i in range(7)] + [f"inception_c.{i}" for i in range(3)]
    layers = [r for r in report.rows(LAYER) if r.level == LAYER]
    assert len(layers) == sum(1 for n in archdsl.load(SPECS / "inception_v4.yaml").ir.layers()
                              ) - 3  # gap, dropout and linear are stages themselves
    # The same repeat costs the same; Figure 4 block at 35x35: every conv's MACs add up.
    a0, a3 = report.node("inception_a.0"), report.node("inception_a.3")
    assert a0.counts == a3.counts
    assert report.node("inception_a").counts.macs == 4 * a0.counts.macs


def test_report_is_plain_data() -> None:
    report = archdsl.load(SPECS / "inception_v4.yaml").cost()
    assert isinstance(report, CostReport)
    d = report.as_dict(BLOCK)
    for key in ("name", "input", "params", "buffers", "macs", "flops", "fvcore", "activations",
                "nodes"):
        assert key in d
    assert d["input"] == [3, 299, 299] and d["flops"] == 2 * d["macs"]
    assert all(isinstance(d[k], int) for k in ("params", "macs", "fvcore", "activations"))
