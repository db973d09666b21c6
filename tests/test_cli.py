"""The archdsl command: build, validate and schema; errors as file:line:col, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SPECS

import archdsl


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_build_summarises_checks_and_saves(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    res = run("build", "specs/inception_v4.yaml", "--set", "num_classes=10",
              "--input", "3x224x224", "-o", str(out))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("inception_v4 (specs/inception_v4.yaml): input 3x224x224")
    table = {ln.split()[0]: ln for ln in lines[3:12]}
    assert list(table) == ["stem_v4", "inception_a", "reduction_a", "inception_b",
                           "reduction_b", "inception_c", "gap", "dropout", "linear"]
    assert "inception_a x4" in table["inception_a"]
    assert "reduction_a k=192 l=224 m=256 n=384" in table["reduction_a"]
    assert table["linear"].split()[-1] == f"{1536 * 10 + 10:,}"
    spec = archdsl.load(SPECS / "inception_v4.yaml", num_classes=10)
    assert f"total: {spec.param_count():,} trainable parameters" in res.stdout
    assert "-> 1x10 (as inferred)" in res.stdout
    assert out.is_file()


def test_bad_spec_gives_located_errors_and_no_output(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ninput: [3, 32, 32]\nnetwork:\n  - conv 3x3 8\n  - convv 3x3 8\n")
    out = tmp_path / "model.pt"
    for command in ("build", "validate"):
        res = run(command, str(spec), *(["-o", str(out)] if command == "build" else []))
        assert res.returncode == 2
        assert res.stderr.splitlines()[0].startswith(
            f"{spec}:5:5: unknown layer kind or block 'convv'; did you mean 'conv'")
        assert "Traceback" not in res.stderr
    assert not out.exists()
    res = run("build", str(tmp_path / "missing.yaml"))
    assert res.returncode == 2 and "no such spec file" in res.stderr
    res = run("build", "specs/inception_v4.yaml", "--set", "num_clases=3")
    assert res.returncode == 2 and "did you mean 'num_classes'" in res.stderr


def test_validate_reports_every_spec() -> None:
    res = run("validate", "specs/inception_v3.yaml", "specs/inception_resnet_v2_paper.yaml",
              "specs/inception_v4.yaml")
    assert res.returncode == 2
    assert "specs/inception_v3.yaml: ok: inception_v3" in res.stdout
    assert "specs/inception_v4.yaml: ok: inception_v4" in res.stdout
    assert "body gives 1154 channels, shortcut carries 1152" in res.stderr
    assert "body gives 2048 channels, shortcut carries 2144" in res.stderr


def test_schema_is_json() -> None:
    res = run("schema")
    assert res.returncode == 0
    schema = json.loads(res.stdout)
    assert "conv" in schema["$defs"]["node"]["anyOf"][2]["properties"]


def test_spec_layer_and_validate_import_no_torch() -> None:
    code = (
        "import sys, archdsl\n"
        "from archdsl.cli import main\n"
        "spec = archdsl.load('specs/inception_resnet_v2.yaml')\n"
        "spec.shapes(); spec.param_count()\n"
        "assert main(['validate', 'specs/inception_v4.yaml']) == 0\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "print('torch modules:', len(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "torch modules: 0" in res.stdout


def test_variants_of_one_spec_side_by_side() -> None:
    res = run("cost", "specs/resnet50.yaml", "specs/resnet50.yaml@stride_at=3x3", "--format",
              "json")
    assert res.returncode == 0, res.stderr
    specs = json.loads(res.stdout)["specs"]
    assert [s["name"] for s in specs] == ["resnet50", "resnet50@stride_at=3x3"]
    # The paper puts the stride on the first 1x1, torchvision ("v1.5") on the 3x3: the published
    # MACs of torchvision's resnet50 (reference-numbers.md) belong to the second.
    assert specs[1]["macs"] == 4_089_184_256
    assert specs[0]["macs"] < specs[1]["macs"]
