"""Port a reference implementation's weights into the model of a spec and save a checkpoint.

Tensors are paired by structure (order and shape; units of the reference move only where the
shapes and our module tree leave no doubt, see archdsl/port.py); every mismatch is listed. Where
several pairings fit the shapes equally, each is tried and the one whose outputs equal the
reference's is kept ("decided by outputs"); an ambiguity that the outputs do not settle is
listed with its pairings. Then the pairing is checked: both models run in eval mode on one random
input (batch-norm statistics randomised in copies) and must agree within 1e-4 of the reference's
largest output; the report gives the largest difference. A state-dict file has nothing to run:
it is paired by shapes only. Without --partial nothing is written unless every tensor pairs
without doubt and the outputs agree; --partial copies the tensors before the first mismatch and
says what was left. --from defaults to the spec's reference model.

A timm / torchvision / pretrainedmodels model is built without weights: what is ported is its
random initialisation, and the output says so. --pretrained takes the model's published weights
from your cache instead (timm: the Hugging Face cache, HF_HOME; torchvision: TORCH_HOME/hub/
checkpoints); nothing is downloaded, and when they are not there the error says where it looked.

Exit status: 0 ported (with --partial: what pairs was copied, and written with -o); 1 a check
failed (tensors that do not pair, an ambiguous pairing, outputs that differ); 2 bad spec or
command line, published weights not in the cache; 3 an internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..checkpoint import format_for
from ..jsonout import add_format_option, emit
from ..progress import progress
from ..usage import UsageError, add_spec_options, load_from_args

HELP = "load a reference model's weights (timm, torchvision, a file) into a spec's model"
EXAMPLES = """\
  archdsl port inception_v4 --from timm:inception_v4 --pretrained -o v4.safetensors
  archdsl port resnet18 --from resnet18-f37072fd.pth -o r18.pt     # a state-dict file
  archdsl port resnet50 --set stride_at=3x3            # the spec's own reference
  archdsl port resnet18 --format json                  # the report as JSON (docs/json.md)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file or library name (archdsl list)")
    add_spec_options(p)
    p.add_argument("--from", dest="source", metavar="SOURCE",
                   help="timm:NAME, torchvision:NAME, pretrainedmodels:NAME or a state-dict "
                   "file (.pt, .pth, .safetensors; default: the spec's reference model)")
    p.add_argument("--pretrained", action="store_true",
                   help="port the reference's published weights from your cache (timm, "
                   "torchvision; never downloaded) instead of its random initialisation")
    p.add_argument("--kwargs", metavar="JSON", default=None,
                   help='constructor arguments of the reference, e.g. \'{"num_classes": 10}\'')
    p.add_argument("--partial", action="store_true",
                   help="copy the tensors before the first mismatch instead of refusing "
                   "(outputs are not checked)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="do not compare outputs with the reference after pairing")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write an archdsl checkpoint with the ported weights (atomically)")
    add_format_option(p)


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
    if args.output:
        format_for(args.output)  # a bad file name fails before the port
        if Path(args.output).suffix.lower() not in (".pt", ".pth", ".safetensors"):
            raise UsageError(f"{args.output}: port writes a checkpoint: .pt, .pth or "
                             ".safetensors")
    spec = load_from_args(args)
    kwargs = _kwargs(args.kwargs)
    from ..port import RANDOM_INIT, PortError, port_weights  # imports torch

    as_json = args.format == "json"
    try:
        with progress(f"porting {args.source or 'the reference'} into {spec.name}"):
            report = port_weights(spec, args.source, kwargs=kwargs, partial=args.partial,
                                  verify=args.verify, pretrained=args.pretrained)
    except PortError as exc:
        if exc.report is None:
            raise UsageError(str(exc)) from None
        if as_json:
            emit("port", False, name=spec.name, file=str(spec.path), error=str(exc),
                 **report_fields(exc.report), written=None)
        print(exc.report.summary(), file=sys.stderr)
        hint = (" (--no-verify skips the output check)" if exc.report.paired
                else " (--partial copies the agreeing prefix)")
        print(f"archdsl port: {exc}; nothing written{hint}", file=sys.stderr)
        return 1
    if not as_json:
        print(f"{spec.name} ({spec.path}): {report.summary()}")
        print(f"  weights: {report.weights}")
    if report.weights == RANDOM_INIT:  # on stderr too with JSON: nobody should miss it
        print(f"WARNING: {report.source} was built without its published weights: the ported "
              "weights are its random initialisation, not a trained network (--pretrained "
              "takes the published ones from your cache)", file=sys.stderr if as_json else None)
    if args.output:
        from ..checkpoint import save

        try:
            fmt = save(spec, report.model, args.output)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        if not as_json:
            print(f"  wrote {args.output} ({fmt})")
    if not report.paired and not as_json:  # --partial: what was asked is done
        print(f"  partial: {report.copied} tensors copied; the rest keeps its initialisation")
    if as_json:
        emit("port", report.ok or args.partial, name=spec.name, file=str(spec.path), error=None,
             **report_fields(report), written=args.output)
    return 0 if (report.ok or args.partial) else 1


def report_fields(report: Any) -> dict[str, Any]:
    """The JSON form of a :class:`archdsl.port.PortReport` (shapes in docs/json.md)."""
    check = report.check
    return {
        "source": report.source,
        "weights": report.weights,
        "paired": len(report.pairs),
        "copied": report.copied,
        "elements": report.elements,
        "mismatches": [str(m) for m in report.mismatches],
        "doubts": list(report.doubts),
        "by_outputs": list(report.by_outputs),
        "check": None if check is None else {
            "ok": check.ok, "max_diff": check.max_diff, "tolerance": check.tolerance,
            "input": list(check.input_shape), "problem": check.problem},
        "unchecked": report.unchecked,
    }
