"""archdsl: describe convolutional networks in YAML; build, cost and draw them from the spec.

``archdsl.load(path, **overrides)`` reads a spec into a :class:`Spec`; ``spec.build()`` gives the
``torch.nn.Module``. Importing this package does not import torch.
"""

from .errors import Loc, SpecError, SpecErrors
from .spec import Spec, load

__all__ = ["Loc", "Spec", "SpecError", "SpecErrors", "load"]
__version__ = "0.1.0"
