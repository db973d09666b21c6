"""The network library by name: list_models / load(NAME), `archdsl list`, includes found in the
package's library from anywhere, and the knobs every network has (no torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SPECS, network_specs

import archdsl
from archdsl.checkpoint import spec_of
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


# Networks whose input size is fixed by their head: a 7x7 average pool over the last grid (the
# papers' GoogLeNet and BN-Inception), LeNet-5's C5 (a 5x5 conv that must see a 5x5 map).
FIXED_INPUT = {"bn_inception", "googlenet", "lenet5"}
# A smaller input of each size the library uses (the timm check inputs, a CIFAR crop).
SMALLER = {224: 128, 227: 160, 299: 160, 32: 24}


@pytest.mark.parametrize("name", NETWORKS)
def test_every_network_takes_its_family_knobs(name: str) -> None:
    default = archdsl.load(name)
    assert archdsl.load(name, num_classes=7).output_shape == (7,)
    variants = [{}]
    if "width" in default.params:
        variants += [{"width": 0.5}, {"width": 1.5}]
    if "depth" in default.params:
        variants += [{"depth": 0.5}, {"depth": 1.5}, {"width": 0.5, "depth": 0.5}]
    full = archdsl.load(name, num_classes=7).param_count()
    for knobs in variants[1:]:
        spec = archdsl.load(name, num_classes=7, **knobs)
        assert spec.output_shape == (7,), knobs
        more = knobs.get("width", 1) > 1 or knobs.get("depth", 1) > 1
        assert (spec.param_count() > full) if more else (spec.param_count() < full), knobs
    c, h, _ = default.input_shape
    smaller = (c, SMALLER[h], SMALLER[h])
    if name in FIXED_INPUT:
        with pytest.raises(archdsl.SpecErrors, match="does not fit"):
            archdsl.load(name, input=smaller)
    else:
        for knobs in variants:
            assert archdsl.load(name, num_classes=7, input=smaller, **knobs).output_shape == (7,)
    for knob in ("width", "depth"):
        if knob in default.params:
            # 1 is the verified network: the same counts, and the published ones hold.
            same = archdsl.load(name, **{knob: 1.0})
            assert same.cost().total == default.cost().total
    for ref in references(default):
        if ref.fits(default.params):
            assert all(c.ok for c in published_checks(ref, eval_counts(default)))


def test_the_families_have_their_knobs() -> None:
    """Which networks lack a width or depth knob, and why, is a short list (README)."""
    no_width = {n for n in NETWORKS if "width" not in archdsl.load(n).params}
    # LeNet-5's C3 connection table (Table I) is defined for 6 maps to 16; RegNet and
    # ShuffleNet have their own width knobs (w0/wa/wm, channels).
    assert no_width == {"lenet5", "regnet_y_400mf", "shufflenet_v2_x0_5"}
    resnets = [n for n in NETWORKS if n.startswith(("resnet", "seresnet", "plain"))]
    for name in resnets:
        params = archdsl.load(name).params
        assert "depth" in params or "n" in params, name  # the CIFAR nets: n units per stage


# Networks whose width knob scales channels only: the same layers at every width (a shortcut
# whose condition compared scaled with unscaled channels once added projections everywhere).
SAME_LAYERS = [n for n in NETWORKS if n.startswith(("resnet", "seresnet", "plain", "xception",
                                                    "vgg", "inception", "lenet5_modern"))]


@pytest.mark.parametrize("name", SAME_LAYERS)
def test_width_changes_channels_not_layers(name: str) -> None:
    base = archdsl.load(name).shapes()
    for width in (0.5, 1.5):
        scaled = archdsl.load(name, width=width).shapes()
        assert scaled.keys() == base.keys(), width
        grids = {k: v[1:] for k, v in scaled.items() if len(v) == 3}
        assert grids == {k: v[1:] for k, v in base.items() if len(v) == 3}


def test_cifar_option_a_pads_to_the_scaled_channels() -> None:
    half = archdsl.load("resnet20", width=0.5)
    shapes = half.shapes()
    assert [shapes[f"stage{i}"][0] for i in (1, 2, 3)] == [8, 16, 32]
    # The shortcut of stage 2's first unit: every other pixel, then 8 zero maps added to 8.
    pad = next(k for k in shapes if k.startswith("stage2") and "shortcut" in k
               and shapes[k][0] == 16)
    assert shapes[pad] == (16, 16, 16)
    plain = archdsl.load("plain20", width=0.5)
    assert half.param_count() == plain.param_count()  # option A adds no parameters
    # Projection shortcuts (option B) at width 0.5 only where the stage changes.
    b = archdsl.load("resnet20", width=0.5, shortcut="B").shapes()
    assert [k for k in b if k.startswith("stage") and k[-2:] == ".2"] == [
        "stage2.unit.shortcut.2", "stage3.unit.shortcut.2"]


@pytest.mark.slow  # builds four timm ResNets (~6 s)
def test_resnet_knobs_match_timm_resnets() -> None:
    """Width and depth give the networks timm builds with those channels and blocks."""
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet
    from torch import nn

    def timm_params(block: type, layers: list[int], width: float, **block_args: object) -> int:
        channels = tuple(int(c * width) for c in (64, 128, 256, 512))
        net = ResNet(block, layers, channels=channels, block_args=block_args)
        # timm keeps its plain stem at 64 filters; ours scales it with stage 1, as every conv:
        # the same stem and first unit at stage 1's width, built from timm's own classes.
        c, out = channels[0], channels[0] * block.expansion
        net.conv1, net.bn1 = nn.Conv2d(3, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c)
        down = None if out == c else nn.Sequential(nn.Conv2d(c, out, 1, bias=False),
                                                   nn.BatchNorm2d(out))
        net.layer1[0] = block(c, c, downsample=down, **block_args)
        return sum(p.numel() for p in net.parameters())

    assert archdsl.load("resnet18", width=0.5).param_count() == timm_params(
        BasicBlock, [2, 2, 2, 2], 0.5)
    assert archdsl.load("resnet50", width=0.75, blocks=[2, 3, 4, 2]).param_count() == (
        timm_params(Bottleneck, [2, 3, 4, 2], 0.75))
    # SE: the gate's width from the scaled channels, rounded as timm rounds it (at 0.625 the
    # first stage's 160 channels squeeze to 10 -> 8, where div() would give 16).
    assert archdsl.load("seresnet50", width=0.625).param_count() == timm_params(
        Bottleneck, [3, 4, 6, 3], 0.625, attn_layer="se")
    assert archdsl.load("resnet50", blocks=[3, 4, 23, 3]).param_count() == (
        archdsl.load("resnet101").param_count())


def test_vgg_depth_multiplies_the_convs_of_each_group() -> None:
    # Column A (1, 1, 2, 2, 2 convs per group) at depth 2 has column E's 2, 2, 4, 4, 4.
    assert archdsl.load("vgg_a", depth=2).param_count() == archdsl.load("vgg_e").param_count()
    # and E at depth 0.5 is A again (2 halves to 1, 4 to 2).
    assert archdsl.load("vgg_e", depth=0.5).param_count() == archdsl.load("vgg_a").param_count()


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "plain20", "lenet5_modern"])
def test_small_networks_at_half_width_run(name: str) -> None:
    import torch

    spec = archdsl.load(name, width=0.5, num_classes=7)
    model = spec.build().eval()
    assert sum(p.numel() for p in model.parameters()) == spec.param_count()
    with torch.no_grad():
        out = model(torch.randn(2, *spec.input_shape))
    assert out.shape == (2, 7)


def test_lenet_width_rounds_to_whole_maps() -> None:
    shapes = archdsl.load("lenet5_modern", width=0.5).shapes()
    assert [v[0] for v in shapes.values()][:3] == [3, 3, 8]  # 6 and 16 maps halved, not 8 and 8


def test_library_specs_hash_the_same_from_any_installation(tmp_path: Path, monkeypatch) -> None:
    """A library spec's sources are named archdsl:..., not by where the library is."""
    here = archdsl.load("seresnet50", width=0.5)
    assert list(here.sources) == ["archdsl:seresnet50.yaml", "archdsl:lib/resnet.yaml",
                                  "archdsl:lib/se.yaml"]
    assert archdsl.load(SPECS / "seresnet50.yaml", width=0.5).sha256() == here.sha256()
    other = tmp_path / "site-packages" / "archdsl" / "library"
    shutil.copytree(SPECS, other)
    monkeypatch.setattr("archdsl.library.library_dir", lambda: other)
    there = archdsl.load("seresnet50", width=0.5)
    assert there.program.path.is_relative_to(other)  # read from the other installation
    assert there.sha256() == here.sha256()
    # A checkpoint's sources rebuild the spec with no library on disk at all.
    shutil.rmtree(other)
    data = {"spec_sources": there.sources, "spec_sha256": there.sha256(),
            "params": there.params, "input": list(there.input_shape)}
    assert spec_of(data).param_count() == here.param_count()
    shutil.copytree(SPECS, other)
    # The text is part of the hash: an edited copy of the library hashes differently.
    (other / "lib" / "se.yaml").write_text((other / "lib" / "se.yaml").read_text() + "\n# edited\n")
    assert archdsl.load("seresnet50", width=0.5).sha256() != here.sha256()


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
