"""Port a reference implementation's weights into the model of a spec and save a checkpoint.

Tensors are paired by structure (order and shape; units of the reference move only where the
shapes and our module tree leave no doubt, see archdsl/port.py); every mismatch is listed. Where
several pairings fit the shapes equally, each is tried and the one whose outputs equal the
reference's is kept ("decided by outputs"); an ambiguity that the outputs do not settle is
listed with its pairings. Then the pairing is checked: both models run in eval mode on one random
input (batch-norm statistics randomised in copies) and must agree within 1e-4 of the reference's
largest output; the report gives the largest difference. A state-dict file has nothing to run:
it is paired by shapes only. Without --partial nothing is written unless every tensor pairs
without doubt and the outputs agree. --from defaults to the spec's reference model.

Exit status: 0 ported; 1 a check failed (tensors that do not pair, an ambiguous pairing,
outputs that differ; with --partial, anything left unpaired); 2 bad spec or command line;
3 an internal error.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..usage import UsageError, add_spec_options, load_from_args

HELP = "load a reference model's weights (timm, torchvision, a file) into a spec's model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file")
    add_spec_options(p)
    p.add_argument("--from", dest="source", metavar="SOURCE",
                   help="timm:NAME, torchvision:NAME, pretrainedmodels:NAME or a state-dict "
                   "file (default: the spec's reference model)")
    p.add_argument("--kwargs", metavar="JSON", default=None,
                   help='constructor arguments of the reference, e.g. \'{"num_classes": 10}\'')
    p.add_argument("--partial", action="store_true",
                   help="copy the tensors before the first mismatch instead of refusing "
                   "(outputs are not checked)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="do not compare outputs with the reference after pairing")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write an archdsl checkpoint with the ported weights (atomically)")


def _kwargs(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--kwargs: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise UsageError("--kwargs: expected a JSON object")
    return value


def run(args: argparse.Namespace) -> int:
    spec = load_from_args(args)
    kwargs = _kwargs(args.kwargs)
    from ..port import PortError, port_weights  # imports torch

    try:
        report = port_weights(spec, args.source, kwargs=kwargs, partial=args.partial,
                              verify=args.verify)
    except PortError as exc:
        if exc.report is None:
            raise UsageError(str(exc)) from None
        print(exc.report.summary(), file=sys.stderr)
        hint = (" (--no-verify skips the output check)" if exc.report.paired
                else " (--partial copies the agreeing prefix)")
        print(f"archdsl port: {exc}; nothing written{hint}", file=sys.stderr)
        return 1
    print(f"{spec.name} ({spec.path}): {report.summary()}")
    if args.output:
        from ..checkpoint import save

        try:
            save(spec, report.model, args.output)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"  wrote {args.output} (checkpoint)")
    return 0 if report.ok else 1
