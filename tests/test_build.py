"""Every network spec compiles to a torch module whose every shape is the inferred one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SPECS, network_specs
from torch_checks import check_every_shape

import archdsl
from archdsl import SpecErrors
from archdsl.checkpoint import read_checkpoint, save


def other_input(spec: archdsl.Spec) -> tuple[int, int, int]:
    """A second input size the network accepts: 3/4 of its own, else 5/4, else 64 more
    (BN-Inception, like Cadene's, needs grids that stay even down to 14x14)."""
    c, h, w = spec.input_shape
    for size in (round(h * 0.75), round(h * 1.25), h + 64):
        shape = (c, size, round(w * size / h))
        try:
            archdsl.load(spec.path, input=shape)
            return shape
        except SpecErrors:
            continue
    raise AssertionError(f"{spec.name} accepts no other input size")


@pytest.mark.parametrize("path", network_specs(), ids=lambda p: p.stem)
def test_spec_builds_with_inferred_shapes(path: Path) -> None:
    spec = archdsl.load(path)
    check_every_shape(spec)
    check_every_shape(archdsl.load(path, input=other_input(spec)))


def test_module_names_follow_the_spec() -> None:
    model = archdsl.load(SPECS / "inception_v4.yaml").build()
    names = [n for n, _ in model.named_children()]
    assert names == ["stem_v4", "inception_a", "reduction_a", "inception_b", "reduction_b",
                     "inception_c", "gap", "dropout", "linear"]
    modules = dict(model.named_modules())
    # Inception-A repeat 3, second branch, its 3x3 conv (Figure 4).
    conv = modules["inception_a.3.branch1.1.conv"]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (64, 96, (3, 3))
    v2 = dict(archdsl.load(SPECS / "inception_resnet_v2.yaml").build().named_modules())
    assert v2["ir_b.19"].scale == pytest.approx(0.10)
    # TF-slim's last block: unscaled and without the ReLU after the sum.
    assert v2["ir_c_last"].scale == 1.0
    assert isinstance(v2["ir_c_last"].after, torch.nn.Identity)
    assert isinstance(v2["ir_c.8"].after, torch.nn.ReLU)


def test_overrides_from_python_change_the_model() -> None:
    spec = archdsl.load(SPECS / "inception_v4.yaml", num_classes=10, input="3x224x224")
    assert spec.output_shape == (10,)
    model = spec.build().eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 10)


def test_torchscript_and_compile_fullgraph() -> None:
    spec = archdsl.load(SPECS / "inception_resnet_v2.yaml", input="3x160x160")
    model = spec.build().eval()
    x = torch.randn(1, *spec.input_shape)
    with torch.no_grad():
        ref = model(x)
        scripted = torch.jit.script(model)
        assert torch.allclose(scripted(x), ref, atol=1e-5)
        # fullgraph=True raises on any graph break: the forward is plain tensor code.
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        assert torch.allclose(compiled(x), ref, atol=1e-5)


def test_checkpoint_carries_spec_and_weights(tmp_path: Path) -> None:
    spec = archdsl.load(SPECS / "inception_v3.yaml", input="3x128x128", num_classes=7)
    model = spec.build().eval()
    target = tmp_path / "model.pt"
    save(spec, model, target)
    ckpt = read_checkpoint(target)
    assert ckpt["spec_sha256"] == spec.sha256()
    assert ckpt["params"]["num_classes"] == 7
    # The library's files are named as the library names them, wherever it is installed.
    assert ckpt["spec_sources"]["archdsl:inception_v3.yaml"] == spec.path.read_text()
    fresh = spec.build().eval()
    fresh.load_state_dict(ckpt["state_dict"])
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_onnx_export(tmp_path: Path, write_spec) -> None:
    import onnx

    path = write_spec("""
        name: small
        input: [3, 32, 32]
        defaults: {conv: {norm: batchnorm, act: relu}}
        network:
          - conv 3x3 16
          - residual: {body: [conv 3x3 16, conv 1x1 16 linear], scale: 0.2, after: relu}
          - concat: [conv 1x1 8, [avgpool 3x3, conv 1x1 8]]
          - gap
          - linear 10
    """)
    spec = archdsl.load(path)
    target = tmp_path / "small.onnx"
    save(spec, spec.build(), target, "onnx")
    graph = onnx.load(str(target))
    onnx.checker.check_model(graph)
    dims = graph.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 10]


def test_absent_shortcut_and_after_keep_their_names_but_are_not_called() -> None:
    model = archdsl.load(SPECS / "xception.yaml", input="3x71x71").build().eval()
    identities = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Identity)}
    assert "middle.0.shortcut" in identities and "middle.0.after" in identities
    called: list[str] = []
    for name, m in identities.items():
        m.register_forward_hook(lambda _m, _i, _o, name=name: called.append(name))
    with torch.no_grad():
        model(torch.randn(1, 3, 71, 71))
    assert called == []
