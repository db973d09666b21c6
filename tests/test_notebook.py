"""What a notebook shows: short reprs, small HTML tables, inline SVG, records and DataFrames."""

from __future__ import annotations

import sys

import pytest
from conftest import SPECS

import archdsl
from archdsl.cost.report import BLOCK, LAYER, STAGE


@pytest.fixture(scope="module")
def spec():
    return archdsl.load(SPECS / "inception_v4.yaml")


@pytest.fixture(scope="module")
def report(spec):
    return spec.cost()


def test_reprs_are_short(spec, report):
    assert len(repr(spec)) < 200 and spec.name in repr(spec)
    assert len(repr(report)) < 200 and f"{report.total.macs:,}" in repr(report)


def test_html_tables_list_the_stages_and_stay_small(spec, report):
    for obj in (spec, report):
        page = obj._repr_html_()
        assert page.startswith("<table>") and len(page) < 8_000
        for stage in report.stages:
            assert f">{stage.path}<" in page
    assert f"{report.total.params / 1e6:.4g} M params" in report._repr_html_()


@pytest.mark.parametrize("depth,level", [("stage", STAGE), ("block", BLOCK), ("layer", LAYER),
                                         (1, STAGE), (2, BLOCK), (3, LAYER), ("2", BLOCK)])
def test_every_documented_depth(report, depth, level):
    rows = report.rows(depth)
    assert rows == report.rows(level)
    assert max(r.level for r in rows) == level
    assert report.as_dict(depth)["nodes"] == report.as_dict(level)["nodes"]


@pytest.mark.parametrize("depth", ["blocks", 0, 4, True])
def test_a_wrong_depth_is_named(report, depth):
    with pytest.raises(ValueError, match="expected one of 'stage', 'block', 'layer'"):
        report.rows(depth)


def test_records_and_pandas(report):
    records = report.to_records("layer")
    assert len(records) == len(report.rows(LAYER))
    leaves = [rec for rec, row in zip(records, report.rows(LAYER), strict=True)
              if not row.children]
    assert sum(r["macs"] for r in leaves) == report.total.macs  # the leaves add up
    df = report.to_pandas("stage")
    assert list(df["path"]) == [s.path for s in report.stages]
    assert int(df["params"].sum()) == report.total.params


def test_pandas_missing_is_said_plainly(report, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match=r"archdsl\[notebook\]"):
        report.to_pandas()


def test_diagram_shows_as_svg(spec, tmp_path):
    figure = spec.draw("inception_c", cost=True)
    assert "inception_c" in repr(figure) and len(repr(figure)) < 200
    svg = figure._repr_svg_()
    assert svg.lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE")) and "</svg>" in svg
    assert figure.save(tmp_path / "c.dot").read_text() == figure.dot


def test_diagram_without_graphviz_says_so(spec, monkeypatch):
    monkeypatch.setenv("PATH", "")
    svg = spec.draw()._repr_svg_()
    assert "<svg" in svg and "Graphviz" in svg
