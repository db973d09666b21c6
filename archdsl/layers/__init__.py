"""The registry of layer kinds: every module in this package that defines kinds adds them here.

A kind module calls :func:`register` on an instance of its :class:`LayerKind` subclass; this
package imports all its modules once, so that adding a kind never means editing a list.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import LayerKind

KINDS: dict[str, LayerKind] = {}


def register(kind: LayerKind) -> LayerKind:
    if kind.name in KINDS:
        raise RuntimeError(f"layer kind {kind.name!r} is defined twice")
    KINDS[kind.name] = kind
    return kind


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


_discover()
