"""archdsl: describe convolutional networks in YAML; build, cost and draw them from the spec.

``archdsl.load(path, **overrides)`` reads a spec into a :class:`Spec`; ``spec.build()`` gives the
``torch.nn.Module``; ``export_source(spec)`` the text of a standalone PyTorch file.
``load("inception_v4")`` loads a network of the packaged library by name (``list_models()``);
``load_checkpoint(path)`` rebuilds a saved model. Importing this package does not import torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import Loc, SpecError, SpecErrors
from .export import export_source
from .spec import Spec, list_models, load
from .version import __version__

if TYPE_CHECKING:
    from .checkpoint import Checkpoint

__all__ = ["Loc", "Spec", "SpecError", "SpecErrors", "__version__", "export_source",
           "list_models", "load", "load_checkpoint"]


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Rebuild the model a checkpoint was saved from, check its spec hash and load its weights
    (imports torch): :func:`archdsl.checkpoint.load_checkpoint`."""
    from .checkpoint import load_checkpoint as load

    return load(path)
