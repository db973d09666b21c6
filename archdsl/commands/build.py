"""Validate a spec, infer its shapes, build the PyTorch module and check it with one forward pass.

Prints each top-level block with its output shape and parameter count, then the totals; with
``-o`` writes the model in the format its file name ends with (archdsl/checkpoint.py: a
checkpoint or safetensors file carrying the spec text and hash, TorchScript, ONNX, source).
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from .. import ir
from ..checkpoint import KNOWN, format_for
from ..jsonout import emit
from ..layers.base import fmt_shape
from ..progress import progress
from ..table import WIDTH, render
from ..usage import UsageError, add_spec_options, add_wide_option, load_from_args

if TYPE_CHECKING:
    from torch import nn

    from ..spec import Spec

HELP = "build the PyTorch model of a spec, summarise it, optionally save it"
EXAMPLES = """\
  archdsl build inception_v4                          # a library network by name
  archdsl build specs/inception_v4.yaml --set num_classes=10 --input 3x224x224 -o model.pt
  archdsl build resnet50 -o r50.safetensors           # the format follows the file name
  archdsl build resnet50 --input 3x224x224 -o r50.onnx
  archdsl build resnet50 --format json                # the summary as JSON (docs/json.md)
  archdsl checkpoint r50.safetensors                  # rebuild it and check its hash"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file or library name (archdsl list)")
    add_spec_options(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"write the model here (atomically), in the format its name ends with: "
                        f"{KNOWN}")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="the summary on stdout: a table, or JSON (docs/json.md)")
    add_wide_option(p)


def run(args: argparse.Namespace) -> int:
    file_format = format_for(args.output) if args.output else None  # refuse a bad name first
    spec = load_from_args(args)
    as_json = args.format == "json"
    rows = [
        (n.name, ir.describe(n), fmt_shape(n.out_shape), ir.param_count(n))
        for n in spec.top_level()
    ]
    total = spec.param_count()
    buffers = ir.buffer_count(spec.ir)
    if not as_json:
        print(f"{spec.name} ({spec.path}): input {fmt_shape(spec.input_shape)}")
        print(render(("name", "block", "output (CxHxW)", "params"), rows, indent="  ",
                     width=None if args.wide else WIDTH))
        print(f"  total: {total:,} trainable parameters, {buffers:,} buffers")

    start = time.perf_counter()
    with progress(f"building {spec.name}"):
        model, got = _build_and_run(spec, total)
    took = time.perf_counter() - start
    if args.output:
        from ..checkpoint import save

        try:
            with progress(f"writing {args.output}"):
                save(spec, model, args.output, file_format)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if as_json:
        emit("build", name=spec.name, file=str(spec.path), input=list(spec.input_shape),
             output=list(got), params=total, buffers=buffers, seconds=round(took, 3),
             stages=[{"name": name, "block": block, "output": list(node.out_shape),
                      "params": params} for (name, block, _, params), node
                     in zip(rows, spec.top_level(), strict=True)],
             written={"file": args.output, "format": file_format} if args.output else None)
        return 0
    print(f"  built and ran one forward pass on zeros 1x{fmt_shape(spec.input_shape)} -> "
          f"1x{fmt_shape(got)} (as inferred) in {took:.2f} s")
    if args.output:
        print(f"  wrote {args.output} ({file_format})")
    return 0


def _build_and_run(spec: Spec, total: int) -> tuple[nn.Module, tuple[int, ...]]:
    """The module, checked against the spec: parameter count and one forward pass on zeros."""
    import torch  # only here: validate/cost/draw never load it

    model = spec.build().eval()
    built = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if built != total:
        raise RuntimeError(f"internal error: the module has {built:,} parameters, "
                           f"the spec {total:,}")
    with torch.no_grad():
        out = model(torch.zeros(1, *spec.input_shape))
    got = tuple(out.shape[1:])
    if got != spec.output_shape:
        raise RuntimeError(f"internal error: forward gave {fmt_shape(got)}, "
                           f"inferred {fmt_shape(spec.output_shape)}")
    return model, got
