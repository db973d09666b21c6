"""The typed top level of a spec file (pydantic v2), and its located validation.

The node syntax under ``blocks`` and ``network`` is read by :mod:`archdsl.syntax`; this model
checks everything around it and gives ``archdsl schema`` its JSON Schema.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import SpecError, SpecErrors
from .source import YNode, locate


class SpecDocument(BaseModel):
    """A spec file: a network, or (without ``network``) a library of blocks to include."""

    model_config = ConfigDict(extra="forbid")

    name: Optional[str] = Field(None, description="the network's name")
    cites: Optional[Union[str, list[str]]] = Field(None, description="papers and figures encoded")
    description: Optional[str] = None
    input: Optional[Union[str, list[Union[int, str]]]] = Field(
        None, description="input shape C x H x W, e.g. [3, 299, 299] or '3x299x299'"
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="global knobs, overridable with --set / load(**kw)"
    )
    defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="field defaults per layer kind, e.g. {conv: {norm: bn}}"
    )
    include: list[str] = Field(
        default_factory=list, description="block libraries: next to this file, in a --library "
        "folder or in the package's library (lib/resnet.yaml)"
    )
    blocks: dict[str, Any] = Field(default_factory=dict, description="reusable named blocks")
    network: Optional[list[Any]] = Field(None, description="the network, a sequence of nodes")
    search: Optional[dict[str, Any]] = Field(
        None, description="a space's search: {budget: {macs: 40M}, constraints: [...], "
        "objectives: {accuracy: maximize}, sampler: tpe, seed: 0, train: {lr: 0.01}} "
        "(docs/search.md)",
    )
    reference: Optional[Union[dict[str, Any], list[dict[str, Any]]]] = Field(
        None,
        description="what the spec is verified against: {model: 'timm:inception_v4' | "
        "'torchvision:NAME' | ..., kwargs: {...}, params: N, macs: N, source: '...'}",
    )


def validate_document(root: YNode, filename: str) -> SpecDocument:
    """Validate the top level; every error is located through the YAML tree."""
    try:
        return SpecDocument.model_validate(root.plain_value())
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            path = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            where = ".".join(str(p) for p in path)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = f"unknown key (a spec has {', '.join(SpecDocument.model_fields)})"
            errors.append(SpecError(locate(root, path), f"{where}: {msg}" if where else msg))
        raise SpecErrors(errors) from None
