"""The in-place operations of built models change no gradient, and autograd accepts them.

The reference is an out-of-place forward written here: it walks the built module tree the way
the IR reads (a sequence chains, a concat joins its branches, a residual is
``after(shortcut(x) + scale * body(x))``) on a copy of the model whose activations all work out
of place. Gradients of every parameter and of the input, in training mode, must agree.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import SPECS, network_specs
from torch import nn

import archdsl
from archdsl import SpecErrors, ir
from archdsl.torch_build import Concat, Product, Residual, Sequence, Sum

BATCH = 2  # batch norm in training mode needs more than one value per channel


def reference_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's function, every operation out of place."""
    if isinstance(module, Residual):
        y = reference_forward(module.body, x)
        shortcut = module.shortcut
        s = x if isinstance(shortcut, nn.Identity) else reference_forward(shortcut, x)
        return reference_forward(module.after, s + module.scale * y)
    if isinstance(module, Concat):
        return torch.cat([reference_forward(b, x) for b in module], 1)
    if isinstance(module, (Sum, Product)):
        outs = [reference_forward(b, x) for b in module]
        out = outs[0]
        for y in outs[1:]:
            out = out + y if isinstance(module, Sum) else out * y
        return out
    if type(module) in (nn.Sequential, Sequence):
        for item in module:
            x = reference_forward(item, x)
        return x
    return module(x)


def out_of_place_copy(model: nn.Module) -> nn.Module:
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    return twin


def gradients(model: nn.Module, x: torch.Tensor, forward) -> dict[str, torch.Tensor]:
    """Gradients of every parameter and of the input after ``forward(model, x).sum()`` (squared,
    so that every gradient depends on the values, not only on the graph)."""
    x = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # the same dropout masks on both sides
    out = forward(model, x)
    (out.square().sum()).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    grads["<input>"] = x.grad
    return grads


def assert_same_gradients(spec: archdsl.Spec) -> nn.Module:
    torch.manual_seed(0)
    model = spec.build().train()
    reference = out_of_place_copy(model)
    x = torch.randn(BATCH, *spec.input_shape)
    ours = gradients(model, x, lambda m, t: m(t))
    theirs = gradients(reference, x, reference_forward)
    assert ours.keys() == theirs.keys()
    for name, g in ours.items():
        assert g is not None and theirs[name] is not None, name
        torch.testing.assert_close(g, theirs[name], rtol=0, atol=1e-6, msg=name)
    return model


def sums_in_place(model: nn.Module, x: torch.Tensor) -> dict[str, bool]:
    """For each residual block: whether its output is the storage of its body's output (the
    sum went in place), from hooks on one eval forward pass."""
    body_out: dict[str, int] = {}
    result: dict[str, bool] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, Residual):
            body_out[name] = 0

            def on_body(_m, _i, out, name=name):
                body_out[name] = out.data_ptr()

            def on_block(_m, _i, out, name=name):
                result[name] = out.data_ptr() == body_out[name]

            handles += [m.body.register_forward_hook(on_body), m.register_forward_hook(on_block)]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return {name: result[name] for name in body_out}  # module order (hooks ran inner first)


HEAD = """
name: small
input: [3, 16, 16]
defaults: {conv: {norm: batchnorm, act: relu}, sepconv: {norm: batchnorm}}
network:
"""

# name -> (network items, whether each residual's sum goes in place, in module order)
STRUCTURES = {
    "identity_shortcut": (
        "- residual: {body: [conv 3x3 3, conv 3x3 3 noact]}", [True]),
    "identity_shortcut_after_relu": (
        "- conv 3x3 8\n- residual: {body: [conv 3x3 8, conv 3x3 8 noact], after: relu}",
        [True]),
    "projection_shortcut": (
        "- residual: {body: [conv 3x3 16 /2, conv 3x3 16 noact],"
        " shortcut: conv 1x1 16 /2 noact, after: relu}", [True]),
    "scale": (
        "- conv 3x3 8\n- residual: {body: [conv 3x3 8, conv 1x1 8 linear], scale: 0.2,"
        " after: relu}", [True]),
    "scale_body_ends_in_relu": (
        "- conv 3x3 8\n- residual: {body: [conv 3x3 8], scale: 0.3, after: relu}", [False]),
    "body_ends_in_relu": (
        "- conv 3x3 8\n- residual: {body: [conv 3x3 8, relu], after: relu}", [False]),
    "concat_body": (
        "- conv 3x3 8\n- residual: {body: [concat: [conv 1x1 4 linear, [conv 1x1 2,"
        " conv 3x3 4 linear]]], after: relu}", [True]),
    "nested_residuals": (
        "- conv 3x3 8\n"
        "- residual:\n"
        "    body:\n"
        "      - residual: {body: [conv 3x3 8, conv 3x3 8 noact], after: relu}\n"
        "      - residual: {body: [conv 3x3 8, conv 3x3 8 noact], scale: 0.5}\n"
        "    after: relu",
        [True, True, True]),
    "nested_residual_after_relu_last": (
        "- conv 3x3 8\n"
        "- residual: {body: [residual: {body: [conv 3x3 8 noact], after: relu}], scale: 0.5}",
        [False, True]),
    "activations_between_free_outputs": (
        "- conv 3x3 8 noact\n- relu\n- sepconv 3x3 8\n- relu\n- maxpool 3x3 /2\n- relu\n"
        "- residual: {body: [relu, sepconv 3x3 8, relu, sepconv 3x3 8, maxpool 3x3 /2],"
        " shortcut: conv 1x1 8 /2 noact}\n- relu", [True]),
}


def small_spec(write_spec, items: str) -> archdsl.Spec:
    """The network ``items`` (YAML list lines) on HEAD's input, then a 5-way classifier."""
    body = "\n".join("  " + line for line in (items + "\n- gap\n- linear 5").splitlines())
    return archdsl.load(write_spec(HEAD + body))


@pytest.mark.parametrize("name", STRUCTURES)
def test_structure_gradients_equal_out_of_place(name: str, write_spec) -> None:
    items, expected = STRUCTURES[name]
    spec = small_spec(write_spec, items)
    model = assert_same_gradients(spec)
    # The optimisation the gradients are checked against is really there (or rightly absent).
    assert list(sums_in_place(model, torch.randn(1, *spec.input_shape)).values()) == expected


# name -> (network items, the branch each add merge sums into, in module order; -1: none)
MERGES = {
    "identity_and_projection": (
        "- conv 3x3 8\n- add: [identity, [conv 1x1 16, conv 1x1 8 noact]]", [1]),
    "identity_and_relu": ("- conv 3x3 8\n- add: [identity, [conv 1x1 8]]", [-1]),
    "broadcast_branch": ("- conv 3x3 8\n- add: [[gap keepdims, conv 1x1 8 noact], conv 3x3 8"
                         " noact]", [1]),
    "three_branches_first_free": (
        "- conv 3x3 8\n- add: [conv 3x3 8 noact, identity, conv 1x1 8 noact]", [0]),
    "three_branches_first_not": (
        "- conv 3x3 8\n- add: [identity, conv 3x3 8 noact, conv 1x1 8 noact]", [-1]),
    "gated_then_relu": (
        "- conv 3x3 8\n- mul: [identity, [gap keepdims, conv 1x1 8 act=sigmoid]]\n- relu",
        []),
}


@pytest.mark.parametrize("name", MERGES)
def test_merge_gradients_equal_out_of_place(name: str, write_spec) -> None:
    items, expected = MERGES[name]
    spec = small_spec(write_spec, items)
    model = assert_same_gradients(spec)
    assert [m.into for m in model.modules() if isinstance(m, Sum)] == expected
    # The sum really is made in the chosen branch's output tensor.
    seen: list[bool] = []
    for m in model.modules():
        if isinstance(m, Sum) and m.into >= 0:
            ptr: dict[str, int] = {}
            m[m.into].register_forward_hook(lambda _m, _i, out, p=ptr: p.update(b=out.data_ptr()))
            m.register_forward_hook(
                lambda _m, _i, out, p=ptr: seen.append(out.data_ptr() == p["b"]))
    with torch.no_grad():
        model.eval()(torch.randn(1, *spec.input_shape))
    assert seen == [True] * sum(i >= 0 for i in expected)


def test_activations_go_in_place_only_on_fresh_tensors() -> None:
    model = archdsl.load(SPECS / "xception.yaml", input="3x71x71").build()
    mods = dict(model.named_modules())
    middle = "middle.0.body.0"  # the repeat of (ReLU, SeparableConv)
    # The block's first ReLU reads the shortcut's input too; the others follow a batch norm.
    assert [mods[f"{middle}.{i}.0"].inplace for i in range(3)] == [False, True, True]


def test_resnet18_gradients_equal_out_of_place() -> None:
    spec = archdsl.load(SPECS / "resnet18.yaml", input="3x64x64", num_classes=10)
    model = assert_same_gradients(spec)
    assert all(sums_in_place(model, torch.randn(1, 3, 64, 64)).values())


def test_inception_resnet_blocks_gradients_equal_out_of_place() -> None:
    # Two blocks of each kind, the last one unscaled and without the ReLU (TF-slim's).
    spec = archdsl.load(SPECS / "inception_resnet_v2.yaml", input="3x75x75", depth=0.2,
                        num_classes=10)
    model = assert_same_gradients(spec)
    in_place = sums_in_place(model, torch.randn(1, 3, 75, 75))
    blocks = [n.path for n in spec.ir.walk() if isinstance(n, ir.Residual)]
    assert list(in_place) == blocks and "ir_c_last" in blocks and all(in_place.values())


def small_input(path: Path) -> archdsl.Spec:
    """The spec at the smallest of a few input sizes it accepts (its own if none)."""
    spec = archdsl.load(path)
    c, h, _ = spec.input_shape
    for size in (64, 96, 128, 160):
        if size < h:
            try:
                return archdsl.load(path, input=(c, size, size))
            except SpecErrors:
                continue
    return spec


@pytest.mark.parametrize("path", network_specs(), ids=lambda p: p.stem)
def test_training_step_has_no_inplace_error(path: Path) -> None:
    spec = small_input(path)
    model = spec.build().train()
    x = torch.randn(BATCH, *spec.input_shape, requires_grad=True)
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)
    sum(o.square().sum() for o in outs).backward()  # raises if an in-place op broke autograd
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())
