"""The Inception specs of the foundation are timm's networks: same parameters, same tensors.

timm (``pretrained=False``) is the reference nobody here wrote. Beyond the total parameter count,
the state dicts must list tensors of the same shapes in the same order, which is what lets the
published weights be ported one to one.
"""

from __future__ import annotations

import pytest
import timm
from conftest import SPECS

import archdsl

CASES = [
    ("inception_v3", "inception_v3", 23_834_568),
    ("inception_v4", "inception_v4", 42_679_816),
    ("inception_resnet_v2", "inception_resnet_v2", 55_843_464),
]


def shapes(state: dict) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for k, t in state.items() if not k.endswith("num_batches_tracked")]


@pytest.mark.parametrize(("spec_name", "timm_name", "published"), CASES,
                         ids=[c[0] for c in CASES])
def test_same_network_as_timm(spec_name: str, timm_name: str, published: int) -> None:
    spec = archdsl.load(SPECS / f"{spec_name}.yaml")
    reference = timm.create_model(timm_name, pretrained=False)
    ref_params = sum(p.numel() for p in reference.parameters())
    assert ref_params == published  # /work/shared/reference-numbers.md
    assert spec.param_count() == ref_params
    assert shapes(spec.build().state_dict()) == shapes(reference.state_dict())


def test_inception_resnet_v1_follows_the_figures() -> None:
    spec = archdsl.load(SPECS / "inception_resnet_v1.yaml")
    by_name = {n.name: n for n in spec.top_level()}
    # Output depths the figures give: stem 35x35x256 (Figure 14), Reduction-A 17x17x896,
    # Reduction-B 8x8x1792 (Figure 12).
    assert by_name["stem_v1"].out_shape == (256, 35, 35)
    assert by_name["reduction_a"].out_shape == (896, 17, 17)
    assert by_name["reduction_b"].out_shape == (1792, 8, 8)
    assert [by_name[b].repeat for b in ("ir_a", "ir_b", "ir_c")] == [5, 10, 5]
    # Each residual block ends in a linear 1x1 with a bias and no BN; every other conv has BN
    # and no bias.
    for layer in spec.ir.layers():
        if layer.kind != "conv":
            continue
        f = layer.fields
        if f.act is None:
            assert f.norm is None and f.has_bias and f.kernel == (1, 1)
        else:
            assert f.norm == "batchnorm" and not f.has_bias
    head = [n.kind for n in spec.top_level()[-3:]]
    assert head == ["gap", "dropout", "linear"]
