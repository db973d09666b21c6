"""``archdsl cost``: formats, side-by-side ratios, budgets, the fvcore check, errors, no torch."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys

import pytest
from conftest import ROOT, SPECS

import archdsl
from archdsl.cli import main

V3, V4 = SPECS / "inception_v3.yaml", SPECS / "inception_v4.yaml"
IRV1, IRV2 = SPECS / "inception_resnet_v1.yaml", SPECS / "inception_resnet_v2.yaml"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["cost", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_has_the_totals_and_rows(capsys) -> None:
    status, out, _ = run(capsys, V4, "--format", "json", "--depth", "2")
    assert status == 0
    doc = json.loads(out)
    (spec,) = doc["specs"]
    total = archdsl.load(V4).cost().total
    assert spec["name"] == "inception_v4" and spec["input"] == [3, 299, 299]
    for metric in ("params", "buffers", "macs", "fvcore", "activations"):
        assert spec[metric] == total.get(metric)
    assert spec["flops"] == 2 * spec["macs"]
    assert {n["level"] for n in spec["nodes"]} == {"stage", "block"}
    stages = [n for n in spec["nodes"] if n["level"] == "stage"]
    assert sum(n["macs"] for n in stages) == spec["macs"]
    assert "2 x MACs" in doc["units"]["flops"]


def test_csv_is_exact_integers(capsys) -> None:
    status, out, _ = run(capsys, V4, "--format", "csv", "--depth", "3", "--input", "3x224x224")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    total = next(r for r in rows if r["level"] == "network")
    expected = archdsl.load(V4, input="3x224x224").cost().total
    assert int(total["macs"]) == expected.macs and int(total["fvcore"]) == expected.fvcore
    layers = [r for r in rows if r["level"] != "network" and r["kind"] == "conv"]
    assert sum(int(r["macs"]) for r in layers) + 1536 * 1000 == expected.macs  # + the linear


def test_text_and_markdown_name_their_units(capsys) -> None:
    status, text, _ = run(capsys, V4)
    assert status == 0
    assert "12.25 G MACs" in text and "24.51 G FLOPs" in text and "FLOPs = 2 x MACs" in text
    assert "fvcore flops" in text and "42.68 M params" in text
    status, md, _ = run(capsys, V4, "--format", "md")
    assert status == 0
    header = next(line for line in md.splitlines() if line.startswith("| node"))
    assert "| MACs |" in header and "fvcore (MAC-based)" in header
    assert "| inception_b | inception_b x7 |" in md


def test_side_by_side_ratios(capsys) -> None:
    status, out, _ = run(capsys, V3, IRV1, "--format", "json")
    assert status == 0
    doc = json.loads(out)
    a, b = (s["macs"] for s in doc["specs"])
    assert doc["ratios_to_first"]["inception_resnet_v1"]["macs"] == pytest.approx(b / a)
    assert doc["ratios_to_first"]["inception_v3"]["params"] == 1.0
    status, text, _ = run(capsys, V3, IRV1)
    assert f"{b / a:.3f}x" in text
    # Two variants of one spec: the per-stage difference view lines up their stages.
    status, text, _ = run(capsys, IRV1, IRV1, "--set", "num_classes=10", "--metric", "params")
    assert status == 0 and "difference" in text


def test_budget_exit_status(capsys) -> None:
    status, out, _ = run(capsys, V4, "--budget", "macs=13G,params=50M")
    assert status == 0 and "within budget" in out
    status, out, _ = run(capsys, V4, "--budget", "macs=10G,params=50M")
    assert status == 1
    line = next(x for x in out.splitlines() if "over budget" in x)
    # 12,253,974,624 MACs against 10 G: 2.254 G over, 22.5%.
    assert "macs over budget by 2.254 G MACs (+22.5%)" in line
    status, _, err = run(capsys, V4, "--budget", "macs=10G", "--format", "json")
    assert status == 1 and "over budget" in err


@pytest.mark.parametrize("bad", ["macs", "gpus=3", "macs=lots", "params=-1"])
def test_bad_budget_is_a_usage_error(capsys, bad: str) -> None:
    status, out, err = run(capsys, V4, "--budget", bad)
    assert status == 2 and not out
    assert err.startswith("archdsl cost: --budget") and len(err.splitlines()) == 1


def test_check_fvcore(capsys) -> None:
    status, out, _ = run(capsys, SPECS / "lenet5_modern.yaml", "--check", "fvcore")
    assert status == 0 and "check fvcore: lenet5_modern: equal" in out


def test_bad_spec_is_located(capsys, write_spec) -> None:
    path = write_spec("input: [3, 8, 8]\nnetwork:\n  - conv 3x3 16\n  - conv 9x9 8 V\n")
    status, out, err = run(capsys, path)
    assert status == 2 and not out
    assert err.splitlines()[0].startswith(f"{path}:4:")


def test_output_file(capsys, tmp_path) -> None:
    target = tmp_path / "out" / "cost.json"
    status, out, _ = run(capsys, V4, "--format", "json", "-o", target)
    assert status == 0 and not out
    assert json.loads(target.read_text())["specs"][0]["macs"] == archdsl.load(V4).cost().total.macs


NO_TORCH = """
import sys
from archdsl.cli import main
status = main({argv!r})
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "fvcore")))
print("LOADED", loaded)
sys.exit(status)
"""


@pytest.mark.parametrize("argv", [
    ["cost", str(IRV2), "--depth", "3", "--format", "json"],
    ["cost", str(V3), str(IRV1), "--budget", "macs=100G", "--format", "md"],
    ["match", str(IRV1), "--to", str(V3), "--knob", "width"],
], ids=["cost", "compare", "match"])
def test_cost_and_match_import_no_torch(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", NO_TORCH.format(argv=argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


def test_the_cost_report_in_docs_is_current() -> None:
    """docs/cost-report.md is what tools/cost_report.py writes from today's specs."""
    spec = importlib.util.spec_from_file_location("cost_report", ROOT / "tools" / "cost_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.build()
    assert (ROOT / "docs" / "cost-report.md").read_text() == text, \
        "run: python tools/cost_report.py"
    # The claims it reports are the ratios of the four specs' totals.
    v3, irv1 = archdsl.load(V3).cost().total, archdsl.load(IRV1).cost().total
    assert f"MACs {(irv1.macs / v3.macs - 1) * 100:+.1f}% (ratio {irv1.macs / v3.macs:.3f})" in text
