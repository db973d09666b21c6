"""The published weights of a timm or torchvision model, from the user's cache only.

archdsl never downloads: ``archdsl port --from timm:NAME --pretrained`` takes the file that
``timm.create_model(NAME, pretrained=True)`` or ``torchvision.models.get_model(NAME,
weights="DEFAULT")`` left in the cache, and says where it looked when there is none:

* timm: the Hugging Face hub cache (``$HF_HUB_CACHE``, default ``$HF_HOME/hub``, default
  ``~/.cache/huggingface/hub``), ``models--timm--<model.tag>/snapshots/<rev>/model.safetensors``
  (or ``pytorch_model.bin``), for the model's default pretrained tag; older timm weights with a
  download URL only: the torch hub folder below;
* torchvision: ``$TORCH_HOME/hub/checkpoints/<file of the weights' URL>`` (default
  ``~/.cache/torch/hub/checkpoints``).

The hub library is put in offline mode (``HF_HUB_OFFLINE=1``) before it is used, so nothing
here tries the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from torch import nn

HF_FILES = ("model.safetensors", "pytorch_model.bin")
SUPPORTED = ("timm", "torchvision")


class NotCached(LookupError):
    """The published weights are not in the cache (the message says where it looked)."""


@dataclass(frozen=True)
class Published:
    """Where a model's published weights are, and what they were looked up as."""

    model: str  # timm:NAME or torchvision:NAME
    path: Path
    tag: str  # timm's pretrained tag or torchvision's weights name


def _torch_hub_file(url: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _hf_cached(repo_id: str) -> tuple[Path | None, list[str]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants, try_to_load_from_cache

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    looked = [str(folder / "snapshots" / "*" / f) for f in HF_FILES]
    for filename in HF_FILES:
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found), looked
    return None, looked


def find_published(model: str, reference: nn.Module) -> Published:
    """The cached published weights of ``model`` (``reference`` is that model, built without
    weights); NotCached when they are not on this machine."""
    lib, _, name = model.partition(":")
    looked: list[str] = []
    if lib == "timm":
        cfg: dict[str, Any] = dict(getattr(reference, "pretrained_cfg", None) or {})
        tag = cfg.get("tag") or cfg.get("hf_hub_id") or name
        if cfg.get("hf_hub_id"):
            path, looked = _hf_cached(cfg["hf_hub_id"])
            if path is not None:
                return Published(model, path, str(tag))
        if cfg.get("url"):
            path = _torch_hub_file(cfg["url"])
            looked.append(str(path))
            if path.is_file():
                return Published(model, path, str(tag))
        if not looked:
            raise NotCached(f"{model}: timm publishes no weights for this model")
        how = f"timm.create_model({name!r}, pretrained=True)"
    elif lib == "torchvision":
        import torchvision

        weights = torchvision.models.get_model_weights(name).DEFAULT
        path = _torch_hub_file(weights.url)
        if path.is_file():
            return Published(model, path, str(weights))
        looked = [str(path)]
        how = f"torchvision.models.get_model({name!r}, weights='DEFAULT')"
    else:
        raise NotCached(f"{model}: --pretrained takes weights of {' or '.join(SUPPORTED)} "
                        "models; give the file with --from FILE")
    raise NotCached(f"{model}: its published weights are not in the cache (archdsl does not "
                    f"download); looked for {' and '.join(looked)}. Fetch them once with "
                    f"python -c \"import {lib}; {how}\" (HF_HOME / TORCH_HOME choose the cache), "
                    "or give a weights file with --from FILE")


def build_published(model: str, kwargs: dict[str, Any], reference: nn.Module) -> nn.Module:
    """``model`` with its published weights from the cache (NotCached when they are not there):
    timm loads the file itself (its key filters and classifier handling apply); torchvision's
    state dict loads as torchvision loads it."""
    published = find_published(model, reference)
    lib, _, name = model.partition(":")
    if lib == "timm":
        import timm

        overlay = {"file": str(published.path), "source": ""}
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    import torch

    state = torch.load(published.path, map_location="cpu", weights_only=True)
    reference.load_state_dict(state, strict=True)
    return reference
