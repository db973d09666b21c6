"""Load an archdsl checkpoint back and check it: rebuild the network from the spec sources it
carries (no spec file is read), compare the spec hash, load every weight by name and shape.

Prints the spec's name, hash, knobs, input, parameters and whether the weights fit.

Exit status: 0 the checkpoint loads; 1 a check failed (the spec hash does not match: text or
knobs changed after saving; weights that do not fit the network); 2 not a readable archdsl
checkpoint, or a bad command line; 3 an internal error.
"""

from __future__ import annotations

import argparse
import sys

from ..jsonout import add_format_option, emit
from ..usage import UsageError

HELP = "rebuild a saved checkpoint's model from its embedded spec; check hash and weights"
EXAMPLES = """\
  archdsl build resnet50 -o r50.safetensors && archdsl checkpoint r50.safetensors
  archdsl checkpoint v4.pt --format json
  python -c "import archdsl; print(archdsl.load_checkpoint('v4.pt').spec.params)\""""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CKPT", help="a .pt, .pth or .safetensors checkpoint")
    add_format_option(p)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError, load_checkpoint, read_checkpoint

    try:
        ckpt = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        if not exc.check_failed:
            raise UsageError(str(exc)) from None
        stored = read_checkpoint(args.checkpoint)
        if args.format == "json":
            emit("checkpoint", False, problem=str(exc), spec_name=stored.get("spec_name"),
                 spec_sha256=stored["spec_sha256"])
        else:
            print(f"{args.checkpoint}: {stored.get('spec_name', '?')}, spec sha256 "
                  f"{stored['spec_sha256']}")
        print(f"archdsl checkpoint: FAILED: {exc}", file=sys.stderr)
        return 1
    spec = ckpt.spec
    params = spec.param_count()
    if args.format == "json":
        emit("checkpoint", format=ckpt.format, spec_name=spec.name, spec_sha256=ckpt.sha256,
             sources=list(spec.sources), knobs=spec.params, input=list(spec.input_shape),
             params=params, weights="match")
        return 0
    knobs = ", ".join(f"{k}={v}" for k, v in spec.params.items()) or "none"
    print(f"{args.checkpoint}: {spec.name} ({ckpt.format})")
    print(f"  spec sha256 {ckpt.sha256} (matches its {len(spec.sources)} source files: "
          f"{', '.join(spec.sources)})")
    print(f"  knobs: {knobs}; input {'x'.join(map(str, spec.input_shape))}")
    print(f"  {params:,} trainable parameters; every weight loaded (names and shapes match)")
    return 0
