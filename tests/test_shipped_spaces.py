"""The spaces shipped in specs/search/: each validates, each has candidates inside its budget
(tests/test_space.py runs `archdsl space` on every one), a sampled candidate of each builds in
torch, and the iso-cost Inception-ResNet space is centred on Inception-v3's MACs, as archdsl
counts them, with Inception-ResNet-v1 as its default candidate (Szegedy et al. 2017 matched the
two networks' cost).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch
from conftest import SPECS

import archdsl
from archdsl.cli import main
from archdsl.search.space import SearchSpace

SPACES = sorted((SPECS / "search").glob("*.yaml"))
IR_ISO = SPECS / "search" / "inception_resnet_iso.yaml"


def test_the_spaces_the_docs_name_are_shipped() -> None:
    names = {p.name for p in SPACES}
    assert {"digits_cnn.yaml", "cifar_resnet.yaml", "cifar_blocks.yaml",
            "inception_resnet_iso.yaml"} <= names
    table = (SPECS.parent / "docs" / "search.md").read_text(encoding="utf-8")
    readme = (SPECS.parent / "README.md").read_text(encoding="utf-8")
    for name in names:  # every shipped space has its row and its README paragraph
        assert f"`specs/search/{name}`" in table and f"specs/search/{name}" in readme


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_every_shipped_space_validates(path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    assert "every choice checked" in capsys.readouterr().out


def _feasible(space: SearchSpace, seed: int) -> dict:
    rng = random.Random(seed)
    for _ in range(1000):
        values = space.sample_values(rng)
        if space.feasible(values):
            return values
    raise AssertionError(f"no feasible candidate in 1000 draws of {space.path}")


@pytest.mark.parametrize("path", [p for p in SPACES if p != IR_ISO], ids=lambda p: p.stem)
def test_a_sampled_candidate_builds_with_the_right_output(path: Path) -> None:
    space = SearchSpace.read(path)
    values = _feasible(space, seed=1)
    spec = space.resolve(values)
    model = spec.build().eval()
    x = torch.randn(2, *spec.input_shape)
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == (2, spec.params["num_classes"])
    assert sum(p.numel() for p in model.parameters()) == space.cost(values).params


def test_a_sampled_inception_resnet_candidate_builds_on_a_smaller_input() -> None:
    # 299x299 is slow on a CPU; the network is the same at 107x107 (the smallest input its
    # valid convolutions take is far below), so only the activations shrink.
    space = SearchSpace.read(IR_ISO)
    values = _feasible(space, seed=1)
    knobs = {k: v for k, v in values.items() if space.choice(k).architecture}
    spec = archdsl.load(IR_ISO, input=(3, 107, 107), **knobs)
    assert spec.param_count() == space.cost(values).params
    with torch.no_grad():
        y = spec.build().eval()(torch.randn(1, 3, 107, 107))
    assert tuple(y.shape) == (1, 1000)


def test_inception_resnet_band_is_centred_on_inception_v3s_macs() -> None:
    space = SearchSpace.read(IR_ISO)
    assert space.budget is not None and space.budget.metric == "macs"
    assert space.budget.low is not None
    v3 = archdsl.load(SPECS / "inception_v3.yaml").cost().total.macs
    assert space.budget.low < v3 < space.budget.high
    # +-10%, rounded to three digits in the file
    assert space.budget.low / v3 == pytest.approx(0.9, abs=0.002)
    assert space.budget.high / v3 == pytest.approx(1.1, abs=0.002)


def test_inception_resnet_default_candidate_is_inception_resnet_v1_inside_the_band() -> None:
    space = SearchSpace.read(IR_ISO)
    default = space.fill({})
    v1 = archdsl.load(SPECS / "inception_resnet_v1.yaml")
    assert space.cost(default) == v1.cost().total
    # the same modules, in the same places: v1's state dict (and checkpoints) fit the default
    as_plain = archdsl.load(IR_ISO)
    assert [n.path for n in as_plain.ir.layers()] == [n.path for n in v1.ir.layers()]
    assert space.feasible(default)  # the paper's own network is inside the band
    assert v1.cost().total.macs > archdsl.load(SPECS / "inception_v3.yaml").cost().total.macs


def test_inception_resnet_candidates_differ_inside_the_band() -> None:
    space = SearchSpace.read(IR_ISO)
    rng = random.Random(0)
    inside = []
    for _ in range(200):
        values = space.sample_values(rng)
        if space.feasible(values):
            inside.append(values)
    assert len(inside) >= 10  # about a fifth of the space (archdsl space)
    macs = [space.cost(v).macs for v in inside]
    params = [space.cost(v).params for v in inside]
    assert all(space.budget.low <= m <= space.budget.high for m in macs)
    assert max(params) > 1.3 * min(params)  # same MACs, differently shaped networks
    assert len({space.arch_hash(v) for v in inside}) == len(inside)


def test_se_on_basic_blocks_is_timms_seresnet18(write_spec: Callable[..., Path]) -> None:
    """The `se` argument of lib/resnet.yaml's basic block (cifar_blocks.yaml uses it) places
    and sizes the gate as timm's SE-ResNet-18 does: same parameters, same tensors in order."""
    spec = archdsl.load(write_spec("""
        name: seresnet18
        input: [3, 64, 64]
        include: [lib/resnet.yaml]
        defaults:
          conv: {norm: batchnorm, act: relu}
        network:
          - conv 7x7 64 /2 as conv1
          - maxpool 3x3 /2 as pool1
          - basic_stage 64 2 s=1 se=16 as conv2_x
          - basic_stage 128 2 se=16 as conv3_x
          - basic_stage 256 2 se=16 as conv4_x
          - basic_stage 512 2 se=16 as conv5_x
          - gap
          - linear 1000 as fc
        """))
    reference = timm.create_model("seresnet18", pretrained=False)

    def shapes(state: dict) -> list[tuple[int, ...]]:
        return [tuple(t.shape) for k, t in state.items()
                if not k.endswith("num_batches_tracked")]

    assert spec.param_count() == sum(p.numel() for p in reference.parameters())
    assert shapes(spec.build().state_dict()) == shapes(reference.state_dict())
