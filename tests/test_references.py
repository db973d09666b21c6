"""Every spec against its ``reference:`` block: the registry of these tests is the specs.

For a reference model (timm / torchvision / pretrainedmodels, built with ``pretrained=False``):
equal parameter counts; our analytic fvcore count (the sum of ``LayerCost.fvcore``) equal to
``fvcore.nn.FlopCountAnalysis`` on the *reference* model; and, after porting the reference's
weights (batch-norm statistics and affine parameters randomised first, so that a swapped tensor
shows), equal eval outputs on the same random input: ``|ours - theirs| <= 1e-4 + 1e-4 |theirs|``.
These run at the reference's ``check_input`` when it gives one (a smaller image, for speed).
Published counts of the block (params, macs, fvcore) are checked at the spec's own input, exactly
or to the published ``rounding`` / relative ``tolerance``.
Adding a spec with a ``reference:`` block adds its tests.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, SPECS, network_specs
from fvcore.nn import FlopCountAnalysis
from torch import nn

import archdsl
from archdsl.port import (
    PortError,
    align,
    pair_up,
    port_weights,
    randomise_norm_statistics,
    reference_model,
)
from archdsl.program import read_program
from archdsl.reference import Reference, eval_counts, published_checks, references

ATOL = RTOL = 1e-4


def _cases() -> list[tuple[Path, Reference]]:
    return [(path, ref) for path in network_specs() for ref in references(read_program(path))]


CASES = _cases()
MODEL_CASES = [(p, r) for p, r in CASES if r.model]
COUNT_CASES = [(p, r) for p, r in CASES if not r.model]


def _id(case: tuple[Path, Reference]) -> str:
    path, ref = case
    knobs = ",".join(f"{k}={v}" for k, v in ref.set.items())
    return f"{path.stem}[{knobs}]" if knobs else path.stem


def check_published(spec: archdsl.Spec, ref: Reference) -> None:
    for check in published_checks(ref, eval_counts(spec)):
        assert check.ok, str(check)


def fvcore_total(model: nn.Module, x: torch.Tensor) -> int:
    counter = FlopCountAnalysis(model.eval(), x)
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(counter.total())


def test_the_registry_is_not_empty() -> None:
    # Every timm / torchvision network of the issue has its reference block.
    models = {r.model for _, r in MODEL_CASES}
    wanted = {"torchvision:vgg11", "torchvision:vgg19_bn", "torchvision:resnet152",
              "timm:legacy_xception", "timm:mobilenetv1_100", "timm:inception_v4",
              "torchvision:resnet18"}
    assert wanted <= models


@pytest.mark.parametrize("case", MODEL_CASES, ids=[_id(c) for c in MODEL_CASES])
def test_reference_model(case: tuple[Path, Reference]) -> None:
    path, ref = case
    torch.manual_seed(0)
    spec = archdsl.load(path, **ref.set)
    check_published(spec, ref)  # at the spec's own input
    reference = reference_model(ref.model, ref.kwargs).eval()
    assert spec.param_count() == sum(p.numel() for p in reference.parameters())

    small = archdsl.load(path, input=ref.check_input, **ref.set) if ref.check_input else spec
    x = torch.randn(1, *small.input_shape)
    assert eval_counts(small)["fvcore"] == fvcore_total(reference, x)

    randomise_norm_statistics(reference)
    report = port_weights(small, reference)
    assert report.ok and report.copied == len(report.pairs)
    model = report.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("case", COUNT_CASES, ids=[_id(c) for c in COUNT_CASES])
def test_published_counts(case: tuple[Path, Reference]) -> None:
    path, ref = case
    spec = archdsl.load(path, **ref.set)
    check_published(spec, ref)
    # What a count rests on is the built module too.
    if ref.params is not None and ref.rounding is None and ref.tolerance is None:
        model = spec.build()
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == ref.params


# --- ResNet: the stride placement Table 1 counts -----------------------------------------------

@pytest.mark.parametrize("depth", [50, 101, 152])
def test_resnet_table_one_counts_the_stride_on_the_first_1x1(depth: int) -> None:
    # He et al. 2016, Table 1: 3.8, 7.6, 11.3 x 10^9 FLOPs (multiply-adds). The paper's figures
    # agree with the first-1x1 placement to within 2% but not with torchvision's (v1.5).
    paper = {50: 3.8e9, 101: 7.6e9, 152: 11.3e9}[depth]
    v1 = eval_counts(archdsl.load(SPECS / f"resnet{depth}.yaml", stride_at="1x1"))["macs"]
    v15 = eval_counts(archdsl.load(SPECS / f"resnet{depth}.yaml", stride_at="3x3"))["macs"]
    assert abs(v1 - paper) / paper < 0.02
    assert abs(v1 - paper) < abs(v15 - paper)


def test_plain34_is_resnet34_without_shortcuts() -> None:
    plain = archdsl.load(SPECS / "plain34.yaml")
    res = archdsl.load(SPECS / "resnet34.yaml")
    assert not any(isinstance(n, archdsl.ir.Residual) for n in plain.ir.walk())
    projections = [n for n in res.ir.walk() if isinstance(n, archdsl.ir.Residual)
                   and n.shortcut is not None and n.shortcut.items]
    extra = sum(archdsl.ir.param_count(n.shortcut) for n in projections)
    assert len(projections) == 3  # option B: only where the dimensions grow
    assert plain.param_count() == res.param_count() - extra


# --- the sepconv kind -------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {"filters": 32, "kernel": 3, "norm": "bn", "act": "relu"},
    {"filters": 24, "kernel": 5, "stride": 2, "multiplier": 2, "mid_norm": "bn",
     "mid_act": "relu6", "norm": "bn", "act": "relu6"},
    {"filters": 8, "kernel": "3x1", "padding": "valid", "bias": True},
])
def test_sepconv_is_depthwise_then_pointwise(fields: dict) -> None:
    from archdsl.layers import KINDS

    kind = KINDS["sepconv"]
    f = kind.fields(**fields)
    shape = (16, 20, 20)
    out = kind.infer(f, shape)
    module = kind.build(f, shape, out).eval()
    randomise_norm_statistics(module)
    x = torch.randn(1, *shape)
    with torch.no_grad():
        got = module(x)
    assert tuple(got.shape[1:]) == out
    # The same computation written out with torch.nn.functional.
    dw, pw = module.depthwise, module.pointwise
    y = F.conv2d(x, dw.weight, None, dw.stride, dw.padding, dw.dilation, groups=16)
    if f.mid_norm:
        y = F.batch_norm(y, module.mid_bn.running_mean, module.mid_bn.running_var,
                         module.mid_bn.weight, module.mid_bn.bias, eps=f.eps)
    y = F.relu6(y) if f.mid_act == "relu6" else y
    y = F.conv2d(y, pw.weight, pw.bias)
    if f.norm:
        y = F.batch_norm(y, module.bn.running_mean, module.bn.running_var, module.bn.weight,
                         module.bn.bias, eps=f.eps)
    y = {"relu": F.relu, "relu6": F.relu6}.get(f.act, lambda t: t)(y)
    torch.testing.assert_close(got, y)
    cost = kind.cost(f, shape, out)
    assert cost.params == sum(p.numel() for p in module.parameters())
    assert cost.buffers == sum(b.numel() for b in module.buffers())
    assert cost.fvcore == fvcore_total(module, x)


def test_sepconv_has_the_weights_of_the_seed_example() -> None:
    # Seed 004: a 3x3 conv from 16 to 32 channels has 16 x 32 x 3 x 3 = 4,608 weights; the
    # separable form has 800 when the pointwise comes first (16 x 32 + 32 x 9); Xception's
    # order (depthwise first) has 16 x 9 + 16 x 32 = 656.
    from archdsl.layers import KINDS

    sep, conv = KINDS["sepconv"], KINDS["conv"]
    f = sep.fields(filters=32, kernel=3, bias=False)
    assert sep.cost(f, (16, 8, 8), (32, 8, 8)).params == 656
    g = conv.fields(filters=32, kernel=3, bias=False)
    assert conv.cost(g, (16, 8, 8), (32, 8, 8)).params == 4608
    pointwise_first = conv.fields(filters=32, kernel=1, bias=False)
    depthwise_after = sep.fields(filters=32, kernel=3, bias=False)
    total = (conv.cost(pointwise_first, (16, 8, 8), (32, 8, 8)).params
             + sep.cost(depthwise_after, (32, 8, 8), (32, 8, 8)).params - 32 * 32)
    assert total == 800


def test_costs_of_these_specs_load_no_torch() -> None:
    names = sorted({p.stem for p, _ in CASES})
    code = (
        "import sys, archdsl\n"
        f"for n in {names!r}:\n"
        f"    s = archdsl.load(r'{SPECS}/' + n + '.yaml')\n"
        "    [l.kind_def.cost(l.fields, l.in_shape, l.out_shape) for l in s.ir.layers()]\n"
        "from archdsl.reference import references\n"
        "from archdsl import port\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- the structural matcher --------------------------------------------------------------------

def test_align_pairs_a_shortcut_registered_first() -> None:
    # timm's legacy_xception registers skip, skipbn before rep; ours: body, then shortcut.
    theirs = [("b.skip.weight", (8, 4, 1, 1)), ("b.skipbn.weight", (8,)),
              ("b.rep.0.weight", (4, 1, 3, 3)), ("b.rep.1.weight", (8, 4, 1, 1)),
              ("b.rep.2.weight", (8,)), ("fc.weight", (2, 8))]
    ours = [(4, 1, 3, 3), (8, 4, 1, 1), (8,), (8, 4, 1, 1), (8,), (2, 8)]
    al = align(ours, theirs)
    assert [theirs[i][0] for i in al.order] == [
        "b.rep.0.weight", "b.rep.1.weight", "b.rep.2.weight", "b.skip.weight",
        "b.skipbn.weight", "fc.weight"]
    assert al.reordered == ["b.rep paired before b.skip"] and not al.doubts


def test_align_refuses_to_guess_between_units_of_the_same_shapes() -> None:
    # Two siblings fit where the registered one does not: nothing is moved.
    theirs = [("m.a.weight", (3,)), ("m.b.weight", (5,)), ("m.c.weight", (5,))]
    report = pair_up([("x", (5,)), ("y", (5,)), ("z", (3,))], theirs)
    assert report.doubts and not report.reordered and not report.ok
    assert report.mismatches[0].index == 0 and report.mismatches[0].theirs == "m.a.weight"


def test_a_mismatch_is_reported_with_both_names_and_shapes() -> None:
    theirs = [("conv.weight", (8, 3, 3, 3)), ("fc.weight", (1000, 8)), ("fc.bias", (1000,))]
    ours = [("c.weight", (8, 3, 3, 3)), ("head.weight", (10, 8)), ("head.bias", (10,)),
            ("extra", (4,))]
    report = pair_up(ours, theirs, "test")
    assert [(m.index, m.ours, m.ours_shape, m.theirs, m.theirs_shape)
            for m in report.mismatches] == [
        (1, "head.weight", (10, 8), "fc.weight", (1000, 8)),
        (2, "head.bias", (10,), "fc.bias", (1000,))]
    assert report.left_ours == [("extra", (4,))] and not report.left_theirs
    text = report.summary()
    assert "#1: ours head.weight 10x8 vs reference fc.weight 1000x8" in text
    assert "left over in ours: extra 4" in text


def test_port_refuses_a_partial_match_unless_asked() -> None:
    spec = archdsl.load(SPECS / "resnet18.yaml", num_classes=10)
    reference = reference_model("torchvision:resnet18")
    with pytest.raises(PortError) as err:
        port_weights(spec, reference)
    assert err.value.report is not None and len(err.value.report.mismatches) == 2
    report = port_weights(spec, reference, partial=True)
    assert report.copied == 100  # all but fc.weight and fc.bias
    model = report.model
    torch.testing.assert_close(model.conv1.conv.weight, reference.conv1.weight)


# --- the command ---------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archdsl", "port", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_port_command_writes_a_checkpoint_that_loads(tmp_path: Path) -> None:
    out = tmp_path / "mobilenet.pt"
    done = run_cli("specs/mobilenet_v1.yaml", "--set", "act=relu6", "--input", "3x64x64",
                   "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "137 tensors paired, 0 mismatched" in done.stdout
    from archdsl.checkpoint import read_checkpoint

    state = read_checkpoint(out)["state_dict"]
    ref = reference_model("timm:mobilenetv1_100")
    # The default --from is the spec's reference for act=relu6: timm's mobilenetv1_100; a fresh
    # reference has other random weights, so only the shapes can agree here.
    assert [tuple(v.shape) for k, v in state.items() if "num_batches" not in k] == [
        tuple(v.shape) for k, v in ref.state_dict().items() if "num_batches" not in k]
    # The checkpoint is itself a source: its weights go into a fresh model unchanged.
    spec = archdsl.load(SPECS / "mobilenet_v1.yaml", act="relu6", input="3x64x64")
    model = port_weights(spec, out).model
    for name, tensor in model.state_dict().items():
        if "num_batches" not in name:
            torch.testing.assert_close(tensor, state[name], rtol=0, atol=0)


def test_port_command_refuses_and_writes_nothing(tmp_path: Path, capsys) -> None:
    from archdsl.cli import main

    out = tmp_path / "x.pt"
    resnet18 = str(SPECS / "resnet18.yaml")
    code = main(["port", resnet18, "--from", "torchvision:resnet34", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "mismatch #" in err and "nothing written" in err
    code = main(["port", resnet18, "--from", str(tmp_path / "missing.pt")])
    assert code == 2 and "no such file" in capsys.readouterr().err
    code = main(["port", str(SPECS / "mobilenet_v1.yaml")])  # act=relu: no reference model fits
    assert code == 2 and "no reference model" in capsys.readouterr().err


def test_bad_reference_block_is_located(write_spec) -> None:
    path = write_spec("""
        name: t
        input: [3, 8, 8]
        network: [conv 3x3 4]
        reference: {model: 'timm', params: x}
        """)
    with pytest.raises(archdsl.SpecErrors) as err:
        references(read_program(path))
    text = str(err.value)
    assert ":4:" in text and "LIBRARY:NAME" in text and "params" in text



# --- SE-ResNet and RegNetY: the papers' formulas ---------------------------------------------

def test_se_adds_the_parameters_of_the_papers_formula() -> None:
    # Hu et al. 2018, section 4: SE blocks add (2/r) sum_s N_s C_s^2 weights (N_s blocks of
    # output width C_s in stage s; Table 1), plus the biases of their two FC layers.
    stages = [(3, 256), (4, 512), (6, 1024), (3, 2048)]
    r = 16
    se = archdsl.load(SPECS / "seresnet50.yaml", se=r).param_count()
    plain = archdsl.load(SPECS / "seresnet50.yaml", se=0).param_count()
    assert plain == archdsl.load(SPECS / "resnet50.yaml", stride_at="3x3").param_count()
    assert se - plain == sum(n * (2 * c * c // r + c // r + c) for n, c in stages)


def _regnet_y_init_params() -> list:
    """What each of torchvision's regnet_y_* builders passes to BlockParams.from_init_params,
    caught before any model is built (the big ones have hundreds of millions of weights)."""
    import torchvision.models as tvm
    from torchvision.models import regnet

    class Caught(Exception):
        pass

    seen: list[dict] = []

    def catch(cls, **kwargs):
        seen.append(kwargs)
        raise Caught

    names = sorted(n for n in tvm.list_models(module=tvm) if n.startswith("regnet_y_"))
    original = regnet.BlockParams.__dict__["from_init_params"]
    regnet.BlockParams.from_init_params = classmethod(catch)
    try:
        for name in names:
            with contextlib.suppress(Caught):  # every builder calls it: zip checks that
                tvm.get_model(name)
    finally:
        regnet.BlockParams.from_init_params = original
    return [pytest.param(name, init, id=name) for name, init in zip(names, seen, strict=True)]


@pytest.mark.parametrize("name,init", _regnet_y_init_params())
def test_regnet_widths_follow_the_quantized_linear_function(name: str, init: dict) -> None:
    # Radosavovic et al. 2020, eq. 2-4, written in the spec's params, against torchvision's
    # BlockParams for every RegNetY it builds (two small ones are built and counted too).
    from torchvision.models.regnet import BlockParams

    theirs = BlockParams.from_init_params(**init)
    assert len(theirs.widths) == 4  # the spec's network has four stages
    knobs = {"d": init["depth"], "w0": init["w_0"], "wa": init["w_a"], "wm": init["w_m"],
             "g": init["group_width"], "se": init["se_ratio"]}
    spec = archdsl.load(SPECS / "regnet_y_400mf.yaml", **knobs)
    assert spec.params["widths"] == theirs.widths
    assert spec.params["depths"] == theirs.depths
    assert spec.params["group_widths"] == theirs.group_widths
    if name in ("regnet_y_800mf", "regnet_y_1_6gf"):
        reference = reference_model(f"torchvision:{name}")
        assert spec.param_count() == sum(p.numel() for p in reference.parameters())
