"""Saving a built model: a checkpoint that carries its spec, TorchScript, or ONNX.

A checkpoint holds the spec text (with its libraries), the knobs and input it was resolved with,
and a hash over all of them, beside the state dict, so that the weights can always be matched
to the exact network they belong to. Every format is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import __version__
from .atomic import atomic_path
from .spec import Spec

FORMATS = ("checkpoint", "torchscript", "onnx")


def save(spec: Spec, model: nn.Module, target: str | Path, fmt: str = "checkpoint") -> None:
    model = model.eval()
    example = torch.zeros(1, *spec.input_shape)
    with atomic_path(target) as tmp:
        if fmt == "checkpoint":
            torch.save(
                {
                    "archdsl_version": __version__,
                    "spec_name": spec.name,
                    "spec_sources": spec.sources,
                    "spec_sha256": spec.sha256(),
                    "params": spec.params,
                    "input": list(spec.input_shape),
                    "state_dict": model.state_dict(),
                },
                tmp,
            )
        elif fmt == "torchscript":
            torch.jit.script(model).save(str(tmp))
        elif fmt == "onnx":
            torch.onnx.export(model, (example,), str(tmp), input_names=["input"],
                              output_names=["output"], dynamo=False)
        else:
            raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save` (weights only: no code is unpickled)."""
    return torch.load(path, map_location="cpu", weights_only=True)
