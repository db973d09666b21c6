"""Validate a spec, infer its shapes, build the PyTorch module and check it with one forward pass.

Prints each top-level block with its output shape and parameter count, then the totals; with
``-o`` writes the model in the format its file name ends with: ``.pt`` / ``.pth`` a checkpoint
carrying the spec text and hash, ``.safetensors`` the same as safetensors, ``.onnx`` ONNX,
``.torchscript`` TorchScript, ``.py`` the standalone PyTorch source; other endings are refused.
"""

from __future__ import annotations

import argparse
import time

from .. import ir
from ..checkpoint import KNOWN, format_for
from ..layers.base import fmt_shape
from ..table import render
from ..usage import UsageError, add_spec_options, load_from_args

HELP = "build the PyTorch model of a spec, summarise it, optionally save it"
EPILOG = """examples:
  archdsl build inception_v4                          a library network by name
  archdsl build specs/resnet50.yaml --set num_classes=10 -o r50.safetensors
  archdsl build inception_v4 --input 3x224x224 -o v4.onnx
  archdsl checkpoint r50.safetensors                  rebuild it and check its hash"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = f"{EPILOG}\n\n{p.epilog}" if p.epilog else EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("spec", help="spec file or library name (archdsl list)")
    add_spec_options(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"write the model here (atomically), in the format its name ends with: "
                        f"{KNOWN}")


def run(args: argparse.Namespace) -> int:
    fmt = format_for(args.output) if args.output else None  # refuse a bad name before building
    spec = load_from_args(args)
    rows = [
        (n.name, ir.describe(n), fmt_shape(n.out_shape), ir.param_count(n))
        for n in spec.top_level()
    ]
    print(f"{spec.name} ({spec.path}): input {fmt_shape(spec.input_shape)}")
    print(render(("name", "block", "output (CxHxW)", "params"), rows, indent="  "))
    total = spec.param_count()
    print(f"  total: {total:,} trainable parameters, {ir.buffer_count(spec.ir):,} buffers")

    import torch  # only here: validate/cost/draw never load it

    start = time.perf_counter()
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
    took = time.perf_counter() - start
    print(f"  built and ran one forward pass on zeros 1x{fmt_shape(spec.input_shape)} -> "
          f"1x{fmt_shape(got)} (as inferred) in {took:.2f} s")
    if args.output:
        from ..checkpoint import save

        try:
            save(spec, model, args.output, fmt)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"  wrote {args.output} ({fmt})")
    return 0
