"""The JSON of every command (docs/json.md): the shared keys, each command's keys and types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SPECS

from archdsl.cli import main

LENET, RESNET18 = str(SPECS / "lenet5.yaml"), str(SPECS / "resnet18.yaml")
SHAPE = "shape"  # a list of ints


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    status = main([*argv, "--format", "json"])
    out = capsys.readouterr().out
    doc = json.loads(out)  # exactly one object, nothing else on stdout
    assert doc["version"] == 1 and doc["command"] == argv[0]
    assert doc["ok"] is (status == 0)
    return status, doc


def check_types(obj: dict, types: dict) -> None:
    for key, typ in types.items():
        assert key in obj, key
        if typ == SHAPE:
            assert isinstance(obj[key], list) and all(isinstance(d, int) for d in obj[key])
        else:
            assert isinstance(obj[key], typ), (key, obj[key])


ERROR = {"file": str, "line": int, "col": int, "message": str, "path": str}


def test_validate(capsys, write_spec):
    bad = write_spec("name: bad\ninput: [3, 32, 32]\nnetwork:\n  - conv 3x3 nosuch\n")
    status, doc = run_json(capsys, "validate", LENET, str(SPECS / "lib" / "resnet.yaml"),
                           str(bad))
    assert status == 2
    net, lib, failed = doc["specs"]
    check_types(net, {"file": str, "ok": bool, "kind": str, "name": str, "input": SHAPE,
                      "output": SHAPE, "params": int})
    assert net["params"] == 60_000 and net["kind"] == "network"  # LeNet-5: 60,000 (the paper)
    check_types(lib, {"kind": str, "blocks": list})
    assert lib["kind"] == "library" and "bottleneck" in lib["blocks"]
    assert failed["ok"] is False and failed["errors"]
    check_types(failed["errors"][0], ERROR)
    assert failed["errors"][0]["line"] == 4


def test_errors_of_a_failed_run(capsys, tmp_path: Path):
    status, doc = run_json(capsys, "cost", str(tmp_path / "none.yaml"))
    assert status == 2 and doc["errors"][0]["message"]
    check_types(doc["errors"][0], ERROR)


def test_cost(capsys):
    status, doc = run_json(capsys, "cost", LENET, RESNET18)
    assert status == 0
    check_types(doc, {"units": dict, "specs": list, "ratios_to_first": dict, "aligned": dict})
    check_types(doc["specs"][0], {"name": str, "path": str, "input": SHAPE, "output": SHAPE,
                                  "knobs": dict, "params": int, "macs": int, "nodes": list})
    assert doc["aligned"]["by"] in ("grid", "path")


def test_match(capsys):
    status, doc = run_json(capsys, "match", str(SPECS / "resnet50.yaml"), "--to",
                           str(SPECS / "resnet34.yaml"), "--knob", "input", "--tolerance", "0.03")
    assert status == 0
    check_types(doc, {"spec": str, "file": str, "target": dict, "knob": str, "metric": str,
                      "tolerance": float, "result": dict})
    check_types(doc["result"], {"achieved": int, "ratio": float, "input": SHAPE,
                                "evaluations": int})
    assert abs(doc["result"]["achieved"] / doc["target"]["macs"] - 1) <= doc["tolerance"]


def test_draw(capsys, tmp_path: Path):
    status, doc = run_json(capsys, "draw", LENET)
    assert status == 0 and doc["dot"].startswith("digraph") and doc["written"] == []
    status, doc = run_json(capsys, "draw", LENET, "-o", str(tmp_path / "l.dot"))
    assert doc["written"] == [str(tmp_path / "l.dot")] and doc["format"] == "dot"
    assert (tmp_path / "l.dot").read_text().startswith("digraph")


def test_export(capsys, tmp_path: Path):
    status, doc = run_json(capsys, "export", LENET)
    check_types(doc, {"name": str, "file": str, "lines": int, "source": str})
    assert doc["lines"] == doc["source"].count("\n") and doc["written"] is None
    status, doc = run_json(capsys, "export", LENET, "-o", str(tmp_path / "l.py"))
    assert doc["source"] is None and (tmp_path / "l.py").read_text().count("\n") == doc["lines"]


def test_schema(capsys):
    status, doc = run_json(capsys, "schema")
    assert status == 0 and doc["schema"]["type"] == "object"


@pytest.mark.slow
def test_build(capsys, tmp_path: Path):
    status, doc = run_json(capsys, "build", LENET, "-o", str(tmp_path / "l.pt"))
    check_types(doc, {"name": str, "input": SHAPE, "output": SHAPE, "params": int,
                      "buffers": int, "seconds": float, "stages": list, "written": dict})
    assert doc["output"] == [10] and sum(s["params"] for s in doc["stages"]) == doc["params"]
    assert (tmp_path / "l.pt").is_file() and doc["written"]["format"] == "checkpoint"


@pytest.mark.slow
def test_port(capsys):
    status, doc = run_json(capsys, "port", RESNET18, "--from", "timm:resnet18")
    assert status == 0
    check_types(doc, {"source": str, "paired": int, "copied": int, "elements": int,
                      "mismatches": list, "check": dict})
    # torchvision's and timm's resnet18 has 11,689,512 parameters; BN running stats come too
    assert doc["copied"] == doc["paired"] and doc["elements"] > 11_689_512
    assert doc["check"]["ok"] is True


def test_list(capsys):
    status, doc = run_json(capsys, "list", "resnet*")
    assert status == 0 and doc["models"]
    for model in doc["models"]:
        check_types(model, {"name": str, "family": str, "references": list, "verified": str,
                            "knobs": dict})
        assert model["name"].startswith("resnet")
    names = [m["name"] for m in doc["models"]]
    assert names == sorted(names) and "resnet50" in names


@pytest.mark.slow
def test_checkpoint(capsys, tmp_path: Path):
    target = tmp_path / "l.safetensors"
    assert main(["build", LENET, "-o", str(target)]) == 0
    capsys.readouterr()
    status, doc = run_json(capsys, "checkpoint", str(target))
    assert status == 0
    check_types(doc, {"format": str, "spec_name": str, "spec_sha256": str, "sources": list,
                      "knobs": dict, "input": SHAPE, "params": int, "weights": str})
    assert doc["params"] == 60_000 and len(doc["spec_sha256"]) == 64


def test_space(capsys):
    status, doc = run_json(capsys, "space", str(SPECS / "search" / "digits_cnn.yaml"))
    assert status == 0
    check_types(doc, {"dimensions": list, "size": int, "method": str, "cost": dict,
                      "inside": int, "share": float})
    # The share is the count inside over the candidates evaluated (all of them: exhaustive).
    assert doc["method"] == "exhaustive" and doc["evaluated"] == doc["size"]
    assert doc["share"] == pytest.approx(doc["inside"] / doc["evaluated"])
    for metric in ("params", "macs"):
        assert doc["cost"][metric]["min"] <= doc["cost"][metric]["max"]
