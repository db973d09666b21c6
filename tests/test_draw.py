"""Diagrams (``archdsl draw``): the DOT graph's structure against the IR and the paper's figures,
determinism, rendering through Graphviz, the missing-``dot`` path, and no torch on the way.

Figures of Szegedy et al. 2017 (arXiv:1602.07261) are the reference for what a block looks like:
Figure 3 (stem: three Filter concats of two inputs each), Figure 4 (Inception-A: four branches),
Figure 6 (Inception-C: two branches split again, six inputs to the Filter concat), Figure 9 (the
overview's shapes 299x299x3, 35x35x384, 17x17x1024, 8x8x1536, and the repeats x4, x7, x3).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, network_specs

import archdsl
from archdsl import ir
from archdsl.cli import main
from archdsl.draw import (
    INSTALL_HINT,
    DrawOptions,
    RenderError,
    block_title,
    draw_block,
    draw_overview,
    write_figure,
)

V4 = SPECS / "inception_v4.yaml"


# --- a small reader of the DOT we write ------------------------------------------------------
@dataclass
class Dot:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> attributes
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    cluster_labels: dict[str, str] = field(default_factory=dict)  # cluster -> label, as text

    def of_class(self, cls: str) -> list[str]:
        return [n for n, a in self.nodes.items() if a.get("class") == cls]

    def into(self, head: str) -> list[tuple[str, str, dict[str, str]]]:
        return [e for e in self.edges if e[1] == head]

    def out_of(self, tail: str) -> list[tuple[str, str, dict[str, str]]]:
        return [e for e in self.edges if e[0] == tail]

    def text(self, node: str) -> str:
        """A node's label as plain text (HTML markup and line breaks dropped)."""
        label = self.nodes[node].get("label", "")
        return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", label)).strip()


def _attrs(text: str) -> dict[str, str]:
    """Parse ``[a="x", b=<...>]`` (HTML values may nest angle brackets)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(text):
        m = re.compile(r"\s*,?\s*(\w+)=").match(text, i)
        if not m:
            break
        key, i = m.group(1), m.end()
        if text[i] == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out[key] = text[i + 1:j].replace('\\"', '"').replace("\\\\", "\\")
            i = j + 1
        else:
            assert text[i] == "<", text[i:]
            depth, j = 0, i
            while True:
                depth += {"<": 1, ">": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            out[key] = text[i + 1:j - 1]
            i = j
    return out


def parse(dot: str) -> Dot:
    g = Dot()
    for line in dot.splitlines():
        line = line.strip()
        if m := re.fullmatch(r'subgraph "(cluster_[^"]*)" \{', line):
            g.clusters.append(m.group(1))
        elif g.clusters and (m := re.fullmatch(r"label=(.*);", line)):
            label = _attrs(f"label={m.group(1)}")["label"]
            g.cluster_labels[g.clusters[-1]] = re.sub(r"<[^>]*>", "", label)
        elif m := re.fullmatch(r'"([^"]+)" -> "([^"]+)"(?: \[(.*)\])?;', line):
            g.edges.append((m.group(1), m.group(2), _attrs(m.group(3) or "")))
        elif m := re.fullmatch(r'"([^"]+)"(?: \[(.*)\])?;', line):
            g.nodes[m.group(1)] = _attrs(m.group(2) or "")
    return g


@pytest.fixture(scope="module")
def v4() -> archdsl.Spec:
    return archdsl.load(V4)


def first_call(spec: archdsl.Spec, block: str) -> ir.Node:
    return next(n for n in spec.ir.walk() if n.block == block)


# --- block schematics ----------------------------------------------------------------------------
@pytest.mark.parametrize("block", ["stem_v4", "inception_a", "reduction_a", "inception_b",
                                   "reduction_b", "inception_c"])
def test_one_box_per_layer_labelled_by_its_kind(v4: archdsl.Spec, block: str) -> None:
    node = first_call(v4, block)
    g = parse(draw_block(v4, block))
    layers = {lay.path: lay for lay in node.layers()}
    assert set(g.of_class("layer")) == set(layers)
    for path, lay in layers.items():
        assert g.text(path) == lay.label
        # Each box is fed by exactly one edge carrying (on the first edge of a tensor) its shape.
        assert len(g.into(path)) == 1
    # Every box leads somewhere: nothing is left dangling below the output.
    tails = {e[0] for e in g.edges}
    assert all(p in tails for p in layers)


def test_paper_labels_appear_as_in_the_figures(v4: archdsl.Spec) -> None:
    texts = {parse(draw_block(v4, b)).text(n) for b in ("stem_v4", "inception_a", "reduction_b")
             for n in parse(draw_block(v4, b)).of_class("layer")}
    for label in ("3x3 Conv (32 stride 2 V)", "3x3 Conv (32 V)", "3x3 MaxPool (stride 2 V)",
                  "1x7 Conv (64)", "3x3 Conv (96 stride 2 V)", "3x3 Avg Pooling",
                  "1x1 Conv (96)", "3x3 Conv (320 stride 2 V)"):
        assert label in texts


@pytest.mark.parametrize(("block", "inputs"), [
    ("inception_a", [4]),  # Figure 4
    ("inception_b", [4]),  # Figure 5
    ("reduction_a", [3]),  # Figure 7
    ("reduction_b", [3]),  # Figure 8
    ("stem_v4", [2, 2, 2]),  # Figure 3
    ("inception_c", [6]),  # Figure 6: 1 + 2 + 2 + 1, the nested splits feed the concat directly
])
def test_filter_concat_inputs_match_the_figures(v4: archdsl.Spec, block: str,
                                                inputs: list[int]) -> None:
    g = parse(draw_block(v4, block))
    concats = g.of_class("concat")
    assert [g.text(c) for c in concats] == ["Filter concat"] * len(inputs)
    assert [len(g.into(c)) for c in concats] == inputs


def test_concat_edges_follow_the_ir_branches(v4: archdsl.Spec) -> None:
    """Into the concat: the last box of every branch, in spec order; a nested split (Figure 6)
    hangs off the box before it."""
    node = first_call(v4, "inception_c")
    assert isinstance(node, ir.Merge)
    g = parse(draw_block(v4, "inception_c"))
    (concat,) = g.of_class("concat")
    expected: list[str] = []
    for branch in node.branches:
        last = branch.items[-1] if isinstance(branch, ir.Seq) else branch
        if isinstance(last, ir.Merge):
            expected += [b.path for b in last.branches]
            for b in last.branches:  # the split's boxes both read the box before the split
                assert [e[0] for e in g.into(b.path)] == [branch.items[-2].path]
        else:
            expected.append(last.path)
    assert [e[0] for e in g.into(concat)] == expected
    # The concat's output shape goes to the output: 8x8x1536 (Figure 6).
    assert g.into("#output")[0][2]["label"] == "8x8x1536"


def test_block_input_fans_out_to_every_branch_with_its_shape_once(v4: archdsl.Spec) -> None:
    g = parse(draw_block(v4, "inception_a"))
    out = g.out_of("#input")
    assert len(out) == 4
    assert [e[2].get("label") for e in out] == ["35x35x384", None, None, None]


RESIDUAL_SPEC = """
name: tiny_res
input: [8, 9, 9]
defaults:
  conv: {norm: batchnorm, act: relu}
blocks:
  res_a:
    residual:
      scale: 0.17
      body:
        - concat:
            - conv 1x1 4
            - [conv 1x1 4, conv 3x3 6]
        - conv 1x1 $in.channels linear
      after: relu
  down_b:
    residual:
      body: [conv 3x3 16 /2, conv 3x3 16 linear]
      shortcut: conv 1x1 16 /2 linear
      after: relu
network:
  - res_a x2
  - down_b
  - gap
  - linear 3
"""


def test_residual_block_has_shortcut_scale_sum_and_activation(write_spec: Callable) -> None:
    spec = archdsl.load(write_spec(RESIDUAL_SPEC))
    node = first_call(spec, "res_a")
    assert isinstance(node, ir.Residual)
    g = parse(draw_block(spec, "res_a"))
    add = f"{node.path}#add"
    scale = f"{node.path}#scale"
    assert g.text(add) == "+" and g.nodes[add]["class"] == "add"
    assert g.text(scale) == "x0.17"
    # The body's last layer (the Linear 1x1 expansion) is scaled, then summed.
    expansion = node.body.items[-1]
    assert g.text(expansion.path) == "1x1 Conv (8 Linear)"
    assert [e[0] for e in g.into(scale)] == [expansion.path]
    into_add = g.into(add)
    assert sorted(e[0] for e in into_add) == sorted([scale, "#input"])
    shortcut = [e for e in into_add if e[0] == "#input"]
    assert shortcut[0][2]["class"] == "shortcut"
    # The activation after the sum reads the sum and feeds the output.
    assert [e[0] for e in g.into(node.after.path)] == [add]
    assert g.text(node.after.path) == "ReLU"
    assert [e[0] for e in g.into("#output")] == [node.after.path]
    assert "x0.17: the residual branch scaled before the sum" in g.text("#legend")


def test_projection_shortcut_is_drawn_as_its_layer(write_spec: Callable) -> None:
    spec = archdsl.load(write_spec(RESIDUAL_SPEC))
    node = first_call(spec, "down_b")
    assert isinstance(node, ir.Residual) and node.shortcut is not None
    g = parse(draw_block(spec, "down_b"))
    add = f"{node.path}#add"
    assert f"{node.path}#scale" not in g.nodes  # scale 1: nothing drawn
    assert [e[0] for e in g.into(node.shortcut.path)] == ["#input"]
    shortcut = [e for e in g.into(add) if e[2].get("class") == "shortcut"]
    assert [e[0] for e in shortcut] == [node.shortcut.path]
    assert shortcut[0][2]["label"] == "5x5x16"
    assert g.text(node.shortcut.path) == "1x1 Conv (16 stride 2 Linear)"


def test_inception_resnet_v2_block_b_as_tf_slim_builds_it() -> None:
    """Figure 17 with TF-slim's depths: two branches, expansion to 1088, scale 0.10."""
    spec = archdsl.load(SPECS / "inception_resnet_v2.yaml")
    g = parse(draw_block(spec, "ir_b"))
    (concat,) = g.of_class("concat")
    assert len(g.into(concat)) == 2
    assert [g.text(n) for n in g.of_class("scale")] == ["x0.1"]
    assert "1x1 Conv (1088 Linear)" in {g.text(n) for n in g.of_class("layer")}
    assert len([e for e in g.edges if e[2].get("class") == "shortcut"]) == 1


def test_unused_and_unknown_blocks_are_refused_clearly() -> None:
    from archdsl.draw import BlockNotDrawable

    googlenet = archdsl.load(SPECS / "googlenet.yaml")  # aux: false, so aux_head is not called
    with pytest.raises(BlockNotDrawable, match="defined but the network does not use it"):
        draw_block(googlenet, "aux_head")
    with pytest.raises(BlockNotDrawable, match="did you mean 'inception_a'"):
        draw_block(archdsl.load(V4), "inception_aa")


# --- overview --------------------------------------------------------------------------------
def test_overview_shapes_and_repeats_match_figure_9(v4: archdsl.Spec) -> None:
    g = parse(draw_overview(v4))
    chain = ["#input"] + [item.path for item in v4.ir.items] + ["#output"]
    edges = [(e[0], e[1]) for e in g.edges]
    assert edges == list(zip(chain, chain[1:], strict=False))
    # The shape on every edge is the inferred one, in the paper's H x W x C.
    shapes = [e[2]["label"] for e in g.edges]
    inferred = [v4.input_shape] + [item.out_shape for item in v4.ir.items]
    assert shapes == ["x".join(map(str, (s[1], s[2], s[0]) if len(s) == 3 else s))
                      for s in inferred]
    # ... which are Figure 9's.
    assert shapes[:7] == ["299x299x3", "35x35x384", "35x35x384", "17x17x1024", "17x17x1024",
                          "8x8x1536", "8x8x1536"]
    assert shapes[-3:] == ["1536", "1536", "1000"]
    titles = [g.text(item.path) for item in v4.ir.items]
    assert titles == ["Stem", "Inception-A x4", "Reduction-A", "Inception-B x7", "Reduction-B",
                      "Inception-C x3", "Avg Pooling", "Dropout (keep 0.8)", "FC (1000)"]


def test_overview_expand_opens_blocks_in_clusters(v4: archdsl.Spec) -> None:
    closed = parse(draw_overview(v4))
    assert closed.clusters == [] and closed.of_class("layer") == ["gap", "dropout", "linear"]
    opened = parse(draw_overview(v4, DrawOptions(expand=1)))
    # One frame per stage; a repeat of identical blocks is drawn once, titled with its count.
    assert opened.clusters == ["cluster_stem_v4", "cluster_inception_a", "cluster_reduction_a",
                               "cluster_inception_b", "cluster_reduction_b", "cluster_inception_c"]
    layer_paths = set(opened.of_class("layer"))
    once = first_call(v4, "inception_a")
    assert {lay.path for lay in once.layers()} <= layer_paths
    assert not any(p.startswith("inception_a.1.") for p in layer_paths)
    assert len(opened.of_class("concat")) == 3 + 1 + 1 + 1 + 1 + 1  # stem 3, one per stage
    assert opened.cluster_labels["cluster_inception_a"] == "Inception-A x4"
    assert opened.cluster_labels["cluster_inception_c"] == "Inception-C x3"
    assert opened.cluster_labels["cluster_stem_v4"] == "Stem"


def test_cost_gives_params_and_macs_per_box() -> None:
    """Totals against the references: timm inception_v4 has 42,679,816 parameters; torchvision
    alexnet 61,100,840 parameters and 714,188,480 MACs (shared/reference-numbers.md)."""
    v4 = archdsl.load(V4)
    dot = draw_overview(v4, DrawOptions(cost=True))
    assert "42.7M params" in dot
    g = parse(dot)
    for item in v4.ir.items:
        assert "params" in g.text(item.path) and "MACs" in g.text(item.path)
    alex = draw_overview(archdsl.load(SPECS / "alexnet_torchvision.yaml"), DrawOptions(cost=True))
    assert "61.1M params, 714M MACs in total" in alex
    block = parse(draw_block(v4, "inception_a", DrawOptions(cost=True)))
    conv = first_call(v4, "inception_a").branches[0]  # 1x1 conv 384 -> 96, BN: 96*384 + 2*96
    # 96 x 384 weights + 2 x 96 BN; 96 x 384 x 35 x 35 multiply-accumulates.
    assert block.text(conv.path) == "1x1 Conv (96) 37.1K params, 45.2M MACs"


def test_auxiliary_heads_are_side_branches() -> None:
    spec = archdsl.load(SPECS / "googlenet.yaml", aux=True)
    g = parse(draw_overview(spec))
    aux = [n for n in spec.ir.items if isinstance(n, ir.Aux)]
    assert [a.name for a in aux] == ["aux1", "aux2"]
    for a in aux:
        i = spec.ir.items.index(a)
        before, after = spec.ir.items[i - 1], spec.ir.items[i + 1]
        assert f"cluster_{a.path}" in g.clusters
        # The head reads the previous block's output; the main path skips the head.
        assert [e[0] for e in g.into(a.head.path)] == [before.path]
        assert [e[0] for e in g.into(after.path)] == [before.path]
        assert [e[0] for e in g.into(f"{a.path}#out")] == [a.head.path]
        assert g.into(f"{a.path}#out")[0][2]["label"] == "1000"


def test_aux_head_reading_an_earlier_output(write_spec: Callable) -> None:
    spec = archdsl.load(write_spec("""
        name: tapped
        input: [3, 16, 16]
        network:
          - conv 3x3 4 as stem
          - conv 3x3 8 /2 as mid
          - {aux: [gap, linear 2], name: side, from: stem}
          - gap
          - linear 5
    """))
    g = parse(draw_overview(spec, DrawOptions(expand=1)))
    assert [e[0] for e in g.into("side.head.0")] == ["stem"]
    assert g.into("side.head.0")[0][2].get("label") in (None, "16x16x4")
    assert [e[0] for e in g.into("gap")] == ["mid"]


def test_unknown_ir_structures_are_drawn_generically(v4: archdsl.Spec) -> None:
    """A structure added to the IR later must not crash the figures before they learn it."""

    @dataclass
    class Future(ir.Node):
        inner: list[ir.Node] = field(default_factory=list)

        def children(self) -> list[ir.Node]:
            return self.inner

    gap, drop = v4.ir.items[-3], v4.ir.items[-2]
    wrapped = Future("future", "future", gap.loc, gap.in_shape, drop.out_shape, inner=[gap, drop])
    spec = archdsl.load(V4)
    spec.ir.items[-3:-1] = [wrapped]
    g = parse(draw_overview(spec))
    assert "cluster_future" in g.clusters
    assert [e[0] for e in g.into("dropout")] == ["gap"]


def test_block_titles_are_derived_from_names() -> None:
    assert block_title("inception_a") == "Inception-A"
    assert block_title("reduction_b") == "Reduction-B"
    assert block_title("stem_v4") == "Stem"
    assert block_title("ir_c") == "IR-C"
    assert block_title("aux_head") == "Aux Head"
    assert block_title("mixed_5b") == "Mixed-5b"
    assert block_title("inception") == "Inception"


# --- every spec, determinism, no torch ----------------------------------------------------------
DRAW_ALL = """
import sys
import archdsl
from archdsl.draw import draw_block, draw_overview, called_blocks, DrawOptions
for path in sys.argv[1:]:
    spec = archdsl.load(path)
    sys.stdout.write(draw_overview(spec, DrawOptions(cost=True, expand=2)))
    for name in called_blocks(spec):
        sys.stdout.write(draw_block(spec, name, DrawOptions(cost=True)))
from archdsl.cli import main
assert main(["draw", sys.argv[1], "--cost", "--expand", "3", "--format", "dot", "-o", "-"]) == 0
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
"""


def test_every_spec_draws_deterministically_without_torch() -> None:
    """Two runs in fresh interpreters with different hash seeds give the same bytes."""
    paths = [str(p) for p in network_specs()]
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", DRAW_ALL, *paths], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr
        outs.append(done.stdout)
    assert outs[0] == outs[1]
    assert outs[0].count("digraph ") >= 2 * len(paths)


# --- rendering, the command, and the missing-dot path ---------------------------------------------
def test_svg_rendered_by_dot_has_every_box(tmp_path: Path, v4: archdsl.Spec) -> None:
    target = tmp_path / "a.svg"
    write_figure(draw_block(v4, "inception_a"), target, "svg")
    root = ET.parse(target).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    groups = root.findall(".//svg:g", ns)
    layers = [g for g in groups if g.get("class") == "node layer"]
    # Figure 4: 1 + 2 + 3 + 2 boxes.
    assert len(layers) == len(list(first_call(v4, "inception_a").layers())) == 8
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Filter concat" in texts and "35x35x384" in texts
    assert not list(tmp_path.glob(".*.tmp"))


def test_command_writes_overview_block_and_all_blocks(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert main(["draw", str(V4), "-o", str(tmp_path / "v4.svg")]) == 0
    assert ET.parse(tmp_path / "v4.svg").getroot().tag.endswith("svg")
    assert main(["draw", str(V4), "--block", "inception_c", "-o", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["draw", str(V4), "--rankdir", "LR", "--format", "dot"]) == 0
    assert 'rankdir="LR"' in capsys.readouterr().out
    assert main(["draw", str(SPECS / "googlenet.yaml"), "--all-blocks", "--format", "dot",
                 "-o", str(tmp_path / "g")]) == 0
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["inception.dot"]
    assert "skipped block 'aux_head'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--block", "nope"], "has no block 'nope'"),
    (["--format", "png"], "--format png writes a file: give it with -o FILE"),
    (["--all-blocks"], "give the folder with -o DIR"),
    (["--expand", "-1"], "--expand must be 0 or more"),
])
def test_command_errors_are_one_line(argv: list[str], message: str,
                                     capsys: pytest.CaptureFixture) -> None:
    assert main(["draw", str(V4), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("archdsl draw: ")


def test_missing_dot_fails_in_one_line_without_a_file(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "empty")}  # no `dot` anywhere on PATH
    run = [sys.executable, "-m", "archdsl", "draw", str(V4)]
    done = subprocess.run([*run, "-o", str(tmp_path / "v4.svg")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr == f"archdsl draw: {INSTALL_HINT}\n"
    assert INSTALL_HINT == ("the Graphviz `dot` program is not installed "
                            "(apt-get install graphviz / brew install graphviz)")
    assert list(tmp_path.iterdir()) == []
    # DOT text needs no Graphviz.
    done = subprocess.run([*run, "-o", str(tmp_path / "v4.dot")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "v4.dot").read_text().startswith('digraph "inception_v4" {')


def test_write_figure_with_no_dot_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "x.svg"
    target.write_text("old figure")
    with pytest.raises(RenderError, match="not installed"):
        write_figure("digraph { a }", target, "svg", which=lambda _name: None)
    assert target.read_text() == "old figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.svg"]


def test_broken_dot_input_is_reported_not_written(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="Graphviz `dot` failed"):
        write_figure("digraph { a -> }", tmp_path / "bad.svg", "svg")
    assert list(tmp_path.iterdir()) == []
