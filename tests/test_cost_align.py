"""Side-by-side cost by grid size (as Szegedy et al. 2017 compare their networks) or module path,
and a run over many specs that goes on past the ones that fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SPECS

import archdsl
from archdsl.cli import main
from archdsl.cost import align, by_grid
from archdsl.cost.report import add_up

V4, IRV2 = SPECS / "inception_v4.yaml", SPECS / "inception_resnet_v2.yaml"


def grid_of_stage(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[2]}"


@pytest.fixture(scope="module")
def reports():
    return archdsl.load(V4).cost(), archdsl.load(IRV2).cost()


def test_inception_v4_and_resnet_v2_align_by_grid(reports):
    alignment = align(list(reports))
    assert alignment.by == "grid"  # their stage names differ: inception_a vs ir_a, ...
    keys = [r.key for r in alignment.rows]
    assert keys[:1] == ["stem"] and keys[-1:] == ["head"]
    assert [k for k in keys if "x" in k] == ["35x35", "17x17", "8x8"]  # the paper's grids
    for i, rep in enumerate(reports):
        # Each network's rows add up to its own total ...
        assert add_up(r.counts[i] for r in alignment.rows).as_dict() == rep.total.as_dict()
        # ... and each grid row is the sum of the stages whose output has that grid.
        for row in alignment.rows:
            if "x" not in row.key:
                continue
            own = [s for s in rep.stages[1:] if len(s.out_shape) == 3
                   and grid_of_stage(s.out_shape) == row.key]
            assert row.counts[i].macs == sum(s.counts.macs for s in own)
            assert row.members[i] == [s.path for s in own]


def test_grid_rows_follow_the_papers_figure_9(reports):
    # Figure 9: Reduction-A outputs 17x17x1024, Reduction-B 8x8x1536.
    groups = by_grid(reports[0])
    assert "reduction_a" in groups["17x17"][1] and "reduction_b" in groups["8x8"][1]
    assert groups["stem"][1] == [reports[0].stages[0].path]


def test_variants_of_one_network_align_by_path():
    a = archdsl.load(SPECS / "resnet50.yaml").cost()
    b = archdsl.load(SPECS / "resnet50.yaml", num_classes=10).cost()
    alignment = align([a, b])
    assert alignment.by == "path"
    fc = next(r for r in alignment.rows if r.key == "fc")
    assert fc.counts[0].macs == 2048 * 1000 and fc.counts[1].macs == 2048 * 10
    assert align([a, b], how="grid").by == "grid"


def test_cli_side_by_side_by_grid(capsys, reports):
    assert main(["cost", str(V4), str(IRV2), "--align", "auto"]) == 0
    out = capsys.readouterr().out
    assert "MACs per grid" in out
    for line in out.splitlines():
        assert len(line) <= 100, line
    row = next(line.split() for line in out.splitlines() if line.startswith("17x17"))
    v4, irv2 = (add_up(s.counts for s in rep.stages if len(s.out_shape) == 3
                       and s is not rep.stages[0] and s.out_shape[1:] == (17, 17)).macs
                for rep in reports)
    assert row[-1] == f"{irv2 / v4:.3f}x"


def test_cli_json_carries_the_alignment(capsys, reports):
    assert main(["cost", str(V4), str(IRV2), "--format", "json", "--align", "grid"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1 and doc["command"] == "cost" and doc["ok"] is True
    assert doc["aligned"]["by"] == "grid"
    for label, rep in zip(("inception_v4", "inception_resnet_v2"), reports, strict=True):
        assert sum(r["specs"][label]["macs"] for r in doc["aligned"]["rows"]) == rep.total.macs


def test_many_specs_report_the_good_ones_and_locate_the_bad(tmp_path: Path, capsys):
    shutil.copytree(SPECS / "lib", tmp_path / "lib")
    for name in ("lenet5", "resnet18"):
        shutil.copy(SPECS / f"{name}.yaml", tmp_path)
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\ninput: [3, 32, 32]\nnetwork:\n  - conv 3x3 16\n  - nosuch 3\n")
    paths = sorted(str(p) for p in tmp_path.glob("*.yaml"))
    assert main(["cost", *paths]) == 2
    out, err = capsys.readouterr()
    assert "lenet5" in out and "resnet18" in out
    assert f"{bad}:5:" in err
    assert main(["cost", *paths, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and [s["name"] for s in doc["specs"]] == ["lenet5", "resnet18"]
    assert doc["errors"][0]["file"] == str(bad) and doc["errors"][0]["line"] == 5
