"""The network library by name: list_models / load(NAME), `archdsl list`, includes found in the
package's library from anywhere, and the knobs every network has (no torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SPECS, network_specs

import archdsl
from archdsl.cli import main
from archdsl.library import library_dir
from archdsl.reference import eval_counts, published_checks, references


def test_the_library_is_the_specs_folder_in_a_clone() -> None:
    assert library_dir() == SPECS.resolve()
    names = archdsl.list_models()
    assert names == sorted(p.stem for p in SPECS.glob("*.yaml"))
    assert archdsl.list_models("resnet1*") == ["resnet101", "resnet110", "resnet152", "resnet18"]


def test_load_by_name_is_load_by_path() -> None:
    by_name = archdsl.load("inception_v4", num_classes=10)
    by_path = archdsl.load(SPECS / "inception_v4.yaml", num_classes=10)
    assert by_name.name == "inception_v4" and by_name.output_shape == (10,)
    assert by_name.param_count() == by_path.param_count()
    assert by_name.sources.keys() != {"inception_v4"}  # named by file, for messages


def test_an_unknown_name_suggests_the_closest(capsys) -> None:
    with pytest.raises(archdsl.SpecErrors, match="did you mean 'inception_v4'"):
        archdsl.load("inceptoin_v4")
    assert main(["build", "inceptoin_v4"]) == 2
    assert "did you mean 'inception_v4'" in capsys.readouterr().err


def test_a_spec_copied_anywhere_finds_the_package_library(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "my_v4.yaml"
    copy.parent.mkdir()
    shutil.copy(SPECS / "inception_v4.yaml", copy)
    assert "include: [lib/inception.yaml]" in copy.read_text()
    spec = archdsl.load(copy, width=0.5)
    assert any(name.endswith("lib/inception.yaml") for name in spec.sources)
    # A library folder next to the spec comes first: its block replaces the package's.
    lib = copy.parent / "lib"
    lib.mkdir()
    text = (SPECS / "lib" / "inception.yaml").read_text().replace(
        "conv 3x3 32 /2 V                # 149x149x32", "conv 3x3 48 /2 V", 1)
    (lib / "inception.yaml").write_text(text)
    assert archdsl.load(copy).param_count() != archdsl.load("inception_v4").param_count()


def test_includes_still_cannot_leave_the_allowed_folders(write_spec) -> None:
    path = write_spec("""
        input: [3, 8, 8]
        include: [../../../../../../../../etc/passwd]
        network: [gap]
    """)
    with pytest.raises(archdsl.SpecErrors, match="outside the spec's library"):
        archdsl.load(path)


NETWORKS = [p.stem for p in network_specs()]


@pytest.mark.parametrize("name", NETWORKS)
def test_every_network_takes_its_family_knobs(name: str) -> None:
    default = archdsl.load(name)
    knobs = {"num_classes": 7}
    if "width" in default.params:
        knobs["width"] = 0.5
    small = archdsl.load(name, **knobs)
    assert small.output_shape[-1] == 7
    if "width" in default.params:
        assert small.param_count() < archdsl.load(name, num_classes=7).param_count()
        # width 1 is the verified network: the same counts, and the published ones hold.
        same = archdsl.load(name, width=1.0)
        assert same.cost().total == default.cost().total
        for ref in references(default):
            if ref.fits(default.params):
                assert all(c.ok for c in published_checks(ref, eval_counts(default)))


def test_inception_v4_width_and_depth() -> None:
    base = archdsl.load("inception_v4")
    half = archdsl.load("inception_v4", width=0.5)
    assert base.param_count() == 42_679_816  # timm inception_v4 (the spec's reference)
    stem = half.shapes()["stem_v4"]
    assert stem == (192, 35, 35)  # 384 filters of the stem's last concat, halved
    shallow = archdsl.load("inception_v4", depth=0.5)
    assert shallow.shapes()["stem_v4"] == base.shapes()["stem_v4"]
    assert shallow.param_count() < base.param_count()


def test_list_filters_and_json_shape(capsys) -> None:
    assert main(["list", "resnet*", "--max-params", "30M", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 1
    names = [m["name"] for m in data["models"]]
    assert "resnet50" in names and "resnet101" not in names  # 44.5 M parameters
    assert all(n.startswith("resnet") for n in names)
    r50 = next(m for m in data["models"] if m["name"] == "resnet50")
    assert r50["params"] == archdsl.load("resnet50").param_count()
    assert set(r50) >= {"name", "family", "params", "macs", "references", "verified", "knobs"}
    assert "torchvision:resnet50" in r50["references"] and r50["verified"] == "model"
    assert main(["list", "--family", "vgg"]) == 0
    out = capsys.readouterr().out
    assert "vgg_d" in out and "resnet50" not in out
    assert main(["list", "--max-macs", "ten"]) == 2


def test_match_by_name_writes_a_spec_that_loads_where_it_is_written(tmp_path: Path,
                                                                     capsys) -> None:
    out = tmp_path / "variants" / "irv1.yaml"
    out.parent.mkdir()
    assert main(["match", "inception_resnet_v1", "--to", "inception_v3", "--knob", "width",
                 "-o", str(out)]) == 0
    assert "--library" not in capsys.readouterr().out
    assert "include: [lib/inception_resnet.yaml]" in out.read_text()
    assert archdsl.load(out).params["width"] < 1.0  # no --library needed
