"""Checks of built modules against the IR, shared by the tests that import torch."""

from __future__ import annotations

import torch

import archdsl


def check_every_shape(spec: archdsl.Spec) -> None:
    """Run one forward pass with a hook on every module and compare with the IR's shapes."""
    model = spec.build().eval()
    shapes = spec.shapes()
    modules = dict(model.named_modules())
    missing = [p for p in shapes if p not in modules]
    assert not missing, f"IR nodes without a module: {missing[:5]}"
    seen: dict[str, tuple[int, ...]] = {}

    def hook(name: str):
        def record(_mod, _inp, out):
            if isinstance(out, torch.Tensor):
                seen[name] = tuple(out.shape[1:])
        return record

    for name in shapes:
        modules[name].register_forward_hook(hook(name))
    with torch.no_grad():
        out = model(torch.zeros(1, *spec.input_shape))
    assert tuple(out.shape) == (1, *spec.output_shape)
    wrong = {n: (seen.get(n), s) for n, s in shapes.items() if seen.get(n) != s}
    assert not wrong, f"torch vs inferred shapes differ: {list(wrong.items())[:5]}"
    assert sum(p.numel() for p in model.parameters()) == spec.param_count()
