"""Saving a built model, in the format its file name says, and loading an archdsl checkpoint back.

A checkpoint (``.pt`` / ``.pth``: a torch file; ``.safetensors``: the same in safetensors, the
spec in its string metadata) holds the spec text with its libraries, the knobs and input it was
resolved with, and a hash over all of them (:meth:`Spec.sha256`), beside the state dict.
:func:`load_checkpoint` rebuilds the network from those sources alone (no file of the spec is
read), checks the hash, and loads the weights. ``.onnx`` and ``.torchscript`` files are exports
for other runtimes; ``.py`` is the standalone PyTorch source (:func:`archdsl.export_source`).
Every format is written atomically. No code is ever unpickled when reading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_path
from .errors import SpecErrors
from .spec import Spec
from .usage import UsageError
from .version import __version__

if TYPE_CHECKING:
    from torch import nn

# File name ending -> what is written. The checkpoint formats can be loaded back.
FORMATS = {".pt": "checkpoint", ".pth": "checkpoint", ".safetensors": "safetensors",
           ".onnx": "onnx", ".torchscript": "torchscript", ".py": "source"}
LOADABLE = (".pt", ".pth", ".safetensors")
KNOWN = ", ".join(FORMATS)


class CheckpointError(Exception):
    """A file that is not a usable archdsl checkpoint. ``check_failed``: it is one, but its
    spec hash or weights do not match (exit 1 in the CLI; anything else is exit 2)."""

    def __init__(self, message: str, check_failed: bool = False) -> None:
        super().__init__(message)
        self.check_failed = check_failed


def format_for(target: str | Path) -> str:
    """The format a file name asks for; UsageError listing the known endings otherwise."""
    suffix = Path(target).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{target}: unknown file ending {suffix or '(none)'!r}; the model is "
                         f"written in the format its name ends with: {KNOWN}")
    return FORMATS[suffix]


def _metadata(spec: Spec) -> dict[str, Any]:
    return {"archdsl_version": __version__, "spec_name": spec.name,
            "spec_sources": spec.sources, "spec_sha256": spec.sha256(),
            "params": spec.params, "input": list(spec.input_shape)}


def save(spec: Spec, model: nn.Module, target: str | Path, fmt: str | None = None) -> str:
    """Write ``model`` (built from ``spec``) to ``target`` in ``fmt`` (default: by its ending);
    returns the format written."""
    fmt = fmt or format_for(target)
    import torch

    model = model.eval()
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401 -- torch.onnx.export needs it; say so before starting
        except ImportError:
            raise UsageError("writing .onnx needs the onnx package: pip install "
                             "'archdsl[torch]' (or pip install onnx)") from None
    with atomic_path(target) as tmp:
        if fmt == "checkpoint":
            torch.save({**_metadata(spec), "state_dict": model.state_dict()}, tmp)
        elif fmt == "safetensors":
            from safetensors.torch import save_file

            meta = {k: v if isinstance(v, str) else json.dumps(v)
                    for k, v in _metadata(spec).items()}
            state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(tmp), metadata=meta)
        elif fmt == "torchscript":
            torch.jit.script(model).save(str(tmp))
        elif fmt == "onnx":
            example = torch.zeros(1, *spec.input_shape)
            torch.onnx.export(model, (example,), str(tmp), input_names=["input"],
                              output_names=["output"], dynamo=False)
        elif fmt == "source":
            from .export import export_source

            tmp.write_text(export_source(spec), encoding="utf-8")
        else:
            raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS.values())})")
    return fmt


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw contents of a checkpoint: the :func:`save` metadata and ``state_dict``.
    CheckpointError when the file is not an archdsl checkpoint."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LOADABLE:
        raise CheckpointError(f"{path}: not a checkpoint file name (one of "
                              f"{', '.join(LOADABLE)}; .onnx and .torchscript are exports)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        if suffix == ".safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            data: Any = {k: v if k in ("archdsl_version", "spec_name", "spec_sha256")
                         else json.loads(v) for k, v in meta.items()}
            data["state_dict"] = load_file(str(path))
        else:
            import torch

            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is one clear message
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({type(exc).__name__}: "
                              f"{first})") from None
    needed = ("spec_sources", "spec_sha256", "params", "input", "state_dict")
    if not isinstance(data, dict) or any(k not in data for k in needed):
        raise CheckpointError(f"{path}: not an archdsl checkpoint (it carries no spec); "
                              "archdsl port --from FILE takes a plain state dict")
    return data


def spec_of(data: dict[str, Any], path: str | Path = "<checkpoint>") -> Spec:
    """Rebuild the spec a checkpoint carries, from its sources alone; checks the hash."""
    from .program import read_program

    sources = data["spec_sources"]
    if not isinstance(sources, dict) or not sources:
        raise CheckpointError(f"{path}: the checkpoint's spec sources are empty")
    top = next(iter(sources))
    try:
        program = read_program(Path(top), sources=sources)
        spec = program.resolve(dict(data["params"]), input=tuple(data["input"]),
                               allow_large=True)
    except SpecErrors as exc:
        raise CheckpointError(f"{path}: its spec does not resolve: {exc.errors[0]}",
                              check_failed=True) from None
    if spec.sha256() != data["spec_sha256"]:
        raise CheckpointError(f"{path}: the spec hash does not match: the spec text or knobs "
                              f"were changed after saving (stored {data['spec_sha256'][:12]}..., "
                              f"the sources give {spec.sha256()[:12]}...)", check_failed=True)
    return spec


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt spec and model (eval mode) with the weights in it."""

    path: Path
    spec: Spec
    model: nn.Module
    sha256: str
    format: str


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model an archdsl checkpoint (.pt, .pth, .safetensors) was saved from, check
    the spec hash, load the weights (every tensor, by name and shape).

    >>> ckpt = archdsl.load_checkpoint("v4.pt")          # doctest: +SKIP
    >>> ckpt.model(x), ckpt.spec.name, ckpt.spec.params   # doctest: +SKIP

    Raises :class:`CheckpointError` when the file is not a checkpoint, the hash does not match,
    or the weights do not fit the network.
    """
    data = read_checkpoint(path)
    spec = spec_of(data, path)
    model = spec.build()
    try:
        model.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:400]
        raise CheckpointError(f"{path}: the weights do not fit the network: {detail}",
                              check_failed=True) from None
    return Checkpoint(Path(path), spec, model.eval(), spec.sha256(),
                      FORMATS[Path(path).suffix.lower()])
