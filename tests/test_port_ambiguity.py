"""``archdsl port`` never reports success on a wrong pairing.

Where two pairings of the tensors fit the shapes, the matcher decides by our module tree, or
tries each pairing that fits and keeps the one whose outputs equal the reference's, or refuses;
after pairing, the whole model's outputs are compared with the reference's (archdsl/port.py).
The references here register a residual's shortcut before its body (torchvision's RegNet and
timm's ResNet-v2 do), or use two same-shaped layers in another order than they register them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SPECS
from torch import nn

import archdsl
from archdsl.cli import main
from archdsl.port import (
    MAX_CANDIDATES,
    PortError,
    align,
    check_outputs,
    pair_up,
    port_weights,
    randomise_norm_statistics,
    reference_model,
)

ATOL = RTOL = 1e-4

RESIDUAL = """
    name: shortcut_first
    input: [4, 8, 8]
    defaults: {conv: {norm: batchnorm, act: relu}}
    network:
      - residual: {body: [conv 1x1 8, conv 3x3 8 noact], shortcut: conv 1x1 8 noact, after: relu}
    """


def conv_bn(c_in: int, c_out: int, k: int, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, *([nn.ReLU()] if relu else []))


class ProjFirst(nn.Module):
    """torchvision RegNet's registration order: ``proj`` (with the shapes of the body's first
    conv) before the body ``f``."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = conv_bn(4, 8, 1, relu=False)
        self.f = nn.Sequential(conv_bn(4, 8, 1), conv_bn(8, 8, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(x) + self.f(x))


def outputs(model: nn.Module, reference: nn.Module, shape: tuple[int, ...]) -> tuple:
    x = torch.randn(2, *shape)
    with torch.no_grad():
        return model.eval()(x), reference.eval()(x)


def test_a_shortcut_registered_first_pairs_with_our_shortcut(write_spec) -> None:
    torch.manual_seed(0)
    spec = archdsl.load(write_spec(RESIDUAL))
    reference = ProjFirst().eval()
    randomise_norm_statistics(reference)
    report = port_weights(spec, reference)
    pairs = dict(report.pairs)
    assert pairs["0.shortcut.conv.weight"] == "proj.0.weight"
    assert pairs["0.body.0.conv.weight"] == "f.0.0.weight"
    assert report.reordered == ["f paired before proj"] and report.decided
    assert report.check is not None and report.check.ok
    ours, theirs = outputs(report.model, reference, spec.input_shape)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)

    # The pairing a greedy matcher took (proj first, f's layers then reordered to fit) has the
    # same shapes everywhere, and the output check refuses it.
    greedy = {"0.body.0": "proj", "0.body.1": "f.1", "0.shortcut": "f.0"}
    inside = {"conv": "0", "bn": "1"}  # our conv layer's modules -> conv_bn's
    wrong = []
    for ours_name, _ in report.pairs:
        module, layer, tensor = ours_name.rsplit(".", 2)
        wrong.append((ours_name, f"{greedy[module]}.{inside[layer]}.{tensor}"))
    assert sorted(t for _, t in wrong) == sorted(t for _, t in report.pairs)
    check = check_outputs(report.model, reference, wrong, spec.input_shape)
    assert not check.ok and check.max_diff > 100 * check.tolerance


def test_shapes_alone_cannot_tell_the_shortcut_from_the_first_conv(write_spec) -> None:
    spec = archdsl.load(write_spec(RESIDUAL))
    ours = [(k, tuple(v.shape)) for k, v in spec.build().state_dict().items()
            if "num_batches" not in k]
    theirs = [(k, tuple(v.shape)) for k, v in ProjFirst().state_dict().items()
              if "num_batches" not in k]
    blind = align([s for _, s in ours], theirs)  # without our module names
    assert len(blind.doubts) == 1 and not blind.reordered
    assert "[proj -> " in blind.doubts[0] and "[f -> " in blind.doubts[0]
    seeing = align([s for _, s in ours], theirs, [n for n, _ in ours])
    assert not seeing.doubts and "f paired with 0.body, not proj" in seeing.decided[0]


class Swappable(nn.Module):
    """``last`` registered first; ``a`` and ``b`` have the same shapes: which one runs first
    cannot be told from them."""

    def __init__(self) -> None:
        super().__init__()
        self.last = nn.Conv2d(4, 8, 1)
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.b(self.a(x)))


THREE_CONVS = """
    name: three
    input: [4, 6, 6]
    network: [conv 3x3 4, conv 3x3 4, conv 1x1 8]
    """


def test_a_moved_unit_among_same_shaped_siblings_is_settled_by_the_outputs(write_spec) -> None:
    torch.manual_seed(0)
    spec = archdsl.load(write_spec(THREE_CONVS))
    reference = Swappable()
    # The shapes alone leave it open: refused without the output check.
    with pytest.raises(PortError, match="ambiguous.*the output check may settle it") as err:
        port_weights(spec, reference, verify=False)
    (doubt,) = err.value.report.doubts
    assert "[a -> conv, b -> conv_2, last -> conv_3]" in doubt
    assert "a and b (same shapes) swapped" in doubt
    # Both orders of a and b are tried; only the one forward uses gives the reference's outputs.
    report = port_weights(spec, reference)
    pairs = dict(report.pairs)
    assert (pairs["conv.weight"], pairs["conv_2.weight"], pairs["conv_3.weight"]) == (
        "a.weight", "b.weight", "last.weight")
    (note,) = report.by_outputs
    assert "[a -> conv, b -> conv_2, last -> conv_3]" in note and "of the 2 pairings" in note
    assert not report.doubts and report.check is not None and report.check.ok
    assert "decided by outputs: (the reference)" in report.summary()
    ours, theirs = outputs(report.model, reference, spec.input_shape)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)


class Parallel(nn.Module):
    """``a`` and ``b`` summed: either pairing of them gives the same outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.last = nn.Conv2d(4, 8, 1)
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.a(x) + self.b(x))


TWIN_BRANCHES = """
    name: twins
    input: [4, 6, 6]
    network:
      - add: [conv 3x3 4, conv 3x3 4]
      - conv 1x1 8
    """


def test_a_tie_the_outputs_cannot_settle_is_refused(write_spec) -> None:
    # Two pairings that both give the reference's outputs: nothing tells which is meant.
    spec = archdsl.load(write_spec(TWIN_BRANCHES))
    target = spec.build()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(PortError, match="ambiguous") as err:
        port_weights(target, Parallel(), input_shape=spec.input_shape)
    report = err.value.report
    assert report is not None and not report.ok and report.copied == 0 and not report.by_outputs
    (doubt,) = report.doubts
    assert "2 of its 2 pairings that fit the shapes give the reference's outputs" in doubt
    assert "[a -> 0.branch0, b -> 0.branch1, last -> conv]" in doubt
    assert "[b -> 0.branch0, a -> 0.branch1, last -> conv]" in doubt
    for k, v in target.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} was written by a refused port"

    # No pairing gives the reference's outputs (ours has a ReLU the reference lacks): refused too,
    # naming every pairing tried.
    relu = archdsl.load(write_spec(THREE_CONVS.replace("conv 3x3 4,", "conv 3x3 4 relu,", 1)))
    with pytest.raises(PortError, match="ambiguous") as err:
        port_weights(relu, Swappable())
    (doubt,) = err.value.report.doubts
    assert "none of its 2 pairings that fit the shapes gives the reference's outputs" in doubt
    assert "[a -> conv, b -> conv_2, last -> conv_3]" in doubt
    assert "[b -> conv, a -> conv_2, last -> conv_3]" in doubt


MINI_PREACT = """
    name: mini_preact
    input: [3, 16, 16]
    defaults:
      conv: {bias: false}
    blocks:
      preact_bottleneck:                # as in specs/resnetv2_50.yaml
        args: {c: null, s: 1}
        seq:
          - {batchnorm: relu, name: norm1, when: $(s != 1 or in.channels != 4 * c)}
          - residual:
              body:
                - {batchnorm: relu, name: norm1, when: $(s == 1 and in.channels == 4 * c)}
                - conv 1x1 $c as conv1
                - batchnorm relu as norm2
                - conv 3x3 $c /$s as conv2
                - batchnorm relu as norm3
                - conv 1x1 $(4 * c) as conv3
              shortcut:
                - {conv: 1x1 $(4 * c) /$s, when: $(s != 1 or in.channels != 4 * c)}
    network:
      - conv 3x3 8 as stem
      - preact_bottleneck 8 2
      - preact_bottleneck 8
    """


def test_timm_preact_units_are_settled_on_the_unit_alone(write_spec) -> None:
    # timm's own ResNet-v2 stage: PreActBottleneck registers downsample (32x8x1x1) before norm1,
    # and conv3 has its shapes, as norm1, norm2, norm3 (8 each) have each other's: 3! x 2
    # pairings fit the shapes. Each is tried on the unit alone, on the input it gets in timm.
    from collections import OrderedDict

    from timm.layers import BatchNormAct2d, create_conv2d
    from timm.models.resnetv2 import ResNetStage

    torch.manual_seed(0)
    reference = nn.Sequential(OrderedDict(
        stem=nn.Conv2d(3, 8, 3, padding=1, bias=False),
        stage=ResNetStage(8, 32, stride=2, dilation=1, depth=2, conv_layer=create_conv2d,
                          norm_layer=BatchNormAct2d))).eval()
    randomise_norm_statistics(reference)
    spec = archdsl.load(write_spec(MINI_PREACT))
    report = port_weights(spec, reference)
    pairs = dict(report.pairs)
    assert pairs["preact_bottleneck.1.shortcut.0.weight"] == "stage.blocks.0.downsample.conv.weight"
    assert pairs["preact_bottleneck.1.body.conv3.weight"] == "stage.blocks.0.conv3.weight"
    assert pairs["preact_bottleneck.norm1.bn.weight"] == "stage.blocks.0.norm1.weight"
    (note,) = report.by_outputs
    assert note.startswith("stage.blocks.0: ") and "of the 12 pairings" in note
    assert "on the module alone" in note
    assert report.ok and report.check is not None
    assert report.check.max_diff <= report.check.tolerance
    ours, theirs = outputs(report.model, reference, spec.input_shape)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)


class Nested(nn.Module):
    """:class:`Swappable` inside a module of its own, with a head after it."""

    def __init__(self) -> None:
        super().__init__()
        self.body = Swappable()
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_a_tie_no_module_of_ours_holds_is_settled_on_the_whole_model(write_spec) -> None:
    # Our three convs are not one module: the candidates are tried on the whole model instead.
    torch.manual_seed(0)
    spec = archdsl.load(write_spec(THREE_CONVS.replace("conv 1x1 8]", "conv 1x1 8, conv 1x1 2]")))
    reference = Nested()
    report = port_weights(spec, reference)
    (note,) = report.by_outputs
    assert note.startswith("body: [body.a -> conv, body.b -> conv_2, body.last -> conv_3]")
    assert "on the whole model" in note and report.ok
    ours, theirs = outputs(report.model, reference, spec.input_shape)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)


def test_a_tie_with_too_many_pairings_is_not_tried() -> None:
    # A unit that must move and k same-shaped siblings: k! pairings fit the shapes.
    def tie(k: int):
        ours = [(f"x{i}", (1,)) for i in range(k)] + [("y", (2,))]
        theirs = [("m.head.w", (2,))] + [(f"m.u{i}.w", (1,)) for i in range(k)]
        (found,) = align([s for _, s in ours], theirs, [n for n, _ in ours]).ties
        return found

    assert len(tie(4).candidates) == 24 == MAX_CANDIDATES  # 4!: tried
    assert len({c.order for c in tie(4).candidates}) == 24
    assert tie(5).candidates == ()  # 5! = 120: refused without trying


class UsedInOtherOrder(nn.Module):
    """Two same-shaped convs registered as ``a``, ``b`` (or ``b``, ``a``) and run as ``b`` then
    ``a``; the output is a tuple, as a model with an auxiliary head gives."""

    def __init__(self, registered_as_run: bool = False) -> None:
        super().__init__()
        for name in ("b", "a") if registered_as_run else ("a", "b"):
            setattr(self, name, nn.Conv2d(4, 4, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.a(torch.relu(self.b(x)))
        return y, y.mean()


TWO_CONVS = """
    name: two
    input: [4, 6, 6]
    network: [conv 3x3 4 relu, conv 3x3 4]
    """


def test_the_output_check_refuses_what_shapes_accept(write_spec) -> None:
    torch.manual_seed(0)
    spec = archdsl.load(write_spec(TWO_CONVS))
    reference = UsedInOtherOrder()
    accepted = port_weights(spec, reference, verify=False)  # shapes alone: a -> 0, b -> 1
    assert accepted.paired and accepted.check is None and "verify=False" in accepted.unchecked
    with pytest.raises(PortError, match="outputs differ") as err:
        port_weights(spec, reference)
    check = err.value.report.check
    assert check is not None and not check.ok and check.max_diff > check.tolerance
    assert "DIFFER" in err.value.report.summary()

    # Registered in the order they run, the same module passes, tuple output and all.
    reference = UsedInOtherOrder(registered_as_run=True)
    report = port_weights(spec, reference)
    assert report.check is not None and report.check.ok
    assert report.check.max_diff <= report.check.tolerance
    ours, (theirs, _) = outputs(report.model, reference, spec.input_shape)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)


class SumFirst(nn.Module):
    """A residual with a 0.5-scaled body whose shortcut, of the body's shapes, registers first."""

    def __init__(self) -> None:
        super().__init__()
        self.shortcut = conv_bn(4, 8, 1, relu=False)
        self.body = conv_bn(4, 8, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + 0.5 * self.body(x)


def test_a_shortcut_with_the_body_shapes_is_caught_by_the_outputs(write_spec) -> None:
    spec = archdsl.load(write_spec("""
        name: twins
        input: [4, 5, 5]
        defaults: {conv: {norm: batchnorm}}
        network:
          - residual: {body: conv 1x1 8, shortcut: conv 1x1 8, scale: 0.5}
        """))
    with pytest.raises(PortError, match="outputs differ"):
        port_weights(spec, SumFirst())


def test_a_state_dict_is_paired_by_shapes_only_and_says_so(write_spec) -> None:
    spec = archdsl.load(write_spec(RESIDUAL))
    donor = port_weights(spec, ProjFirst()).model
    report = port_weights(spec, donor.state_dict())
    assert report.check is None and "shapes" in report.unchecked
    assert "outputs not compared" in report.summary()


def test_the_check_leaves_models_and_random_state_alone(write_spec) -> None:
    spec = archdsl.load(write_spec(RESIDUAL))
    report = port_weights(spec, ProjFirst())
    reference = ProjFirst()
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    rng = torch.get_rng_state()
    check_outputs(report.model, reference, report.pairs, spec.input_shape)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, state[k]) for k, v in reference.state_dict().items())


# --- torchvision's RegNet: proj registered before f ------------------------------------------

MINI_REGNET = """
    name: mini_regnet
    input: [3, 32, 32]
    defaults: {conv: {norm: batchnorm, act: relu}}
    network:
      - conv 3x3 8 /2
      - residual:
          body: [conv 1x1 16, conv 3x3 16 /2 groups=2, conv 1x1 16 noact]
          shortcut: conv 1x1 16 /2 noact
          after: relu
      - residual:
          body: [conv 1x1 32, conv 3x3 32 /2 groups=4, conv 1x1 32 noact]
          shortcut: conv 1x1 32 /2 noact
          after: relu
      - residual: {body: [conv 1x1 32, conv 3x3 32 groups=4, conv 1x1 32 noact], after: relu}
      - gap
      - linear 10
    """


def test_torchvision_regnet_blocks_pair_proj_with_the_shortcut(write_spec) -> None:
    # torchvision's own RegNet classes at a small size (no squeeze-excitation: the language has
    # no multiply yet). With a bottleneck multiplier of 1, proj has the shapes of f.a.
    from torchvision.models.regnet import BlockParams, RegNet

    torch.manual_seed(0)
    params = BlockParams(depths=[1, 2], widths=[16, 32], group_widths=[8, 8],
                         bottleneck_multipliers=[1.0, 1.0], strides=[2, 2], se_ratio=None)
    reference = RegNet(params, num_classes=10, stem_width=8).eval()
    spec = archdsl.load(write_spec(MINI_REGNET))
    assert spec.param_count() == sum(p.numel() for p in reference.parameters())
    randomise_norm_statistics(reference)
    report = port_weights(spec, reference)
    stage = "trunk_output.block{0}.block{0}-0"
    assert report.reordered == [f"{stage.format(i)}.f paired before {stage.format(i)}.proj"
                                for i in (1, 2)]
    assert dict(report.pairs)["1.shortcut.conv.weight"] == f"{stage.format(1)}.proj.0.weight"
    assert report.check is not None and report.check.ok
    ours, theirs = outputs(report.model, reference, spec.input_shape)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)


REGNET_Y_400MF = SPECS / "regnet_y_400mf.yaml"


def test_regnet_y_400mf_ports_from_torchvision() -> None:
    torch.manual_seed(0)
    spec = archdsl.load(REGNET_Y_400MF)
    reference = reference_model("torchvision:regnet_y_400mf").eval()
    randomise_norm_statistics(reference)
    report = port_weights(spec, reference)
    assert report.ok and report.copied == len(report.pairs)
    assert report.check is not None and report.check.max_diff <= report.check.tolerance
    ours, theirs = outputs(report.model, reference, spec.input_shape)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)


# --- the command's exit status ------------------------------------------------------------------

def test_port_exit_status(write_spec, monkeypatch, capsys, tmp_path: Path) -> None:
    spec = str(write_spec(TWO_CONVS))
    out = tmp_path / "two.pt"

    def fake(model: str, kwargs=None, pretrained: bool = False) -> nn.Module:
        return {"torchvision:other_order": UsedInOtherOrder, "torchvision:three": Swappable,
                "torchvision:twins": Parallel}[model]()

    monkeypatch.setattr("archdsl.port.reference_model", fake)
    three = str(write_spec(THREE_CONVS, "three.yaml"))
    assert main(["port", three, "--from", "torchvision:three"]) == 0
    assert "decided by outputs" in capsys.readouterr().out
    twins = str(write_spec(TWIN_BRANCHES, "twins.yaml"))
    assert main(["port", twins, "--from", "torchvision:twins"]) == 1
    assert "ambiguous" in capsys.readouterr().err
    assert main(["port", spec, "--from", "torchvision:other_order", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "outputs differ" in err and "DIFFER" in err and not out.exists()
    assert "--partial" not in err and "--no-verify" in err  # all paired: --partial cannot help
    assert main(["port", spec, "--from", "torchvision:other_order", "--no-verify"]) == 0
    assert "outputs not compared: skipped" in capsys.readouterr().out
    assert main(["port", spec, "--from", "torchvision:three", "--kwargs", "[1]"]) == 2


def test_a_pathological_module_tree_is_refused_not_searched_forever(monkeypatch) -> None:
    # A unit that must move, and siblings of 1 .. 25 same-shaped tensors: every subset of them
    # tiles our list, so the order search has 2**25 states. It gives up (and refuses) instead.
    monkeypatch.setattr("archdsl.port.SEARCH_LIMIT", 2_000)
    ours = [(f"x{i}", (1,)) for i in range(325)] + [("y", (2,))]
    theirs = [("m.head.w", (2,))] + [(f"m.u{k}.t{j}", (1,)) for k in range(1, 26)
                                     for j in range(k)]
    report = pair_up(ours, theirs)
    assert not report.ok and report.agreeing_prefix == 0
    assert "gave up after 2,000 states" in report.doubts[0]


def test_the_matcher_recovers_regnet_y_400mf_from_a_list_in_our_order() -> None:
    # torchvision's regnet_y_400mf, squeeze-excitation included, against the same tensors in
    # the order and module tree our Residual gives them (body f, then shortcut proj): the matcher
    # must find exactly the identity pairing, though each proj has the shapes of its f.a.
    import re

    state = reference_model("torchvision:regnet_y_400mf").state_dict()
    theirs = [(k, tuple(v.shape)) for k, v in state.items() if "num_batches" not in k]

    def ours_name(name: str) -> tuple[str, int]:
        m = re.fullmatch(r"trunk_output\.block(\d+)\.block\d+-(\d+)\.(f|proj)\.(.*)", name)
        if m is None:
            return name, 0
        stage, block, part, rest = m.groups()
        return f"s{stage}.{block}.{'body' if part == 'f' else 'shortcut'}.{rest}", part == "proj"

    def block_of(name: str) -> str:
        return name.split(".f.")[0].split(".proj.")[0]

    # Stable sort: within a block, f's tensors before proj's; blocks and the rest keep order.
    keyed = [(block_of(n), ours_name(n)[1], i) for i, (n, _) in enumerate(theirs)]
    first_of: dict[str, int] = {}
    for block, _, i in keyed:
        first_of.setdefault(block, i)
    order = sorted(range(len(theirs)), key=lambda i: (first_of[keyed[i][0]], keyed[i][1], i))
    ours = [(ours_name(theirs[i][0])[0], theirs[i][1]) for i in order]
    assert sum(1 for n, _ in ours if ".shortcut." in n) == 4 * 5  # 4 stages, conv + BN each

    al = align([s for _, s in ours], theirs, [n for n, _ in ours])
    assert not al.doubts and al.order == order
    assert len(al.reordered) == 4 and all(r.endswith(".proj") for r in al.reordered)


def test_a_reference_that_cannot_run_on_the_input_fails_the_check(write_spec) -> None:
    spec = archdsl.load(write_spec(TWO_CONVS))
    reference = UsedInOtherOrder(registered_as_run=True)
    reference.forward = lambda x: reference.a(x.flatten(1))  # not a conv input any more
    with pytest.raises(PortError, match="the output check failed: the reference does not run"):
        port_weights(spec, reference)
    assert port_weights(spec, reference, verify=False).paired
